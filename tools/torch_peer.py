# torch_peer.py: copied unchanged from ../shared/peers/torch_peer.py so that it travels
# to the GPU machine with the tree (tools/gpu_check.sh runs it beside rn50 bench).
# Peer measurement: torchvision ResNet-50 training step throughput on one GPU,
# synthetic on-device batches (no input pipeline), bf16 autocast, channels_last.
import json, os, sys, time, torch, torch.nn as nn, torchvision

def bench(mode, bs=256, warm=15, iters=40, dtype=torch.bfloat16):
    torch.manual_seed(0)
    m = torchvision.models.resnet50().cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-5)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    xs = [torch.randn(bs, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last) for _ in range(3)]
    ys = [torch.randint(0, 1000, (bs,), device="cuda") for _ in range(3)]
    def step(x, y):
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            loss = crit(m(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    f = step
    if mode == "compile":
        m = torch.compile(m)
    t0 = time.time()
    for i in range(warm):
        f(xs[i % 3], ys[i % 3])
    torch.cuda.synchronize()
    warm_s = time.time() - t0
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for i in range(iters):
        f(xs[i % 3], ys[i % 3])
    e.record(); torch.cuda.synchronize()
    ms = s.elapsed_time(e) / iters
    mem = torch.cuda.max_memory_allocated() / 2**30
    del m, opt; torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    return dict(mode=mode, bs=bs, dtype=str(dtype), ms_per_step=ms, img_s=bs * 1000 / ms, warm_s=warm_s, peak_gib=mem)

if __name__ == "__main__":
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    out = []
    for mode, dt in [("eager", torch.bfloat16), ("eager", None), ("compile", torch.bfloat16)]:
        r = bench(mode, dtype=dt)
        print(json.dumps(r), flush=True)
        out.append(r)
    json.dump(out, open(os.path.join(os.environ.get("OUT", "."), "torch_peer.json"), "w"), indent=1)
