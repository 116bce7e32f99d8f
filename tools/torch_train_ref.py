#!/usr/bin/python3
"""torch_train_ref.py: PyTorch's side of tests/train_torch.sh. Trains
torchvision's model on exactly the batches rn50 trained on (RN50_DUMP_BATCHES:
step, lr, images, labels of every micro-batch) from the same initial weights
with the same recipe, in float32 and float64, and compares rn50's loss curve
(metrics.jsonl, one line per step) and final weights with them.

usage:
  torch_train_ref.py init ARCH CLASSES OUT.safetensors
  torch_train_ref.py compare ARCH CLASSES INIT DUMP RUN_DIR --accum K --wd W --wd-bn 0|1 \
                     --momentum M --nesterov 0|1 --smoothing E

Prints ok/FAIL lines and RESULT p f. Tolerances (rn50 fp32 against PyTorch fp64,
and PyTorch's own fp32 against its fp64 as the measure of what fp32 allows):
  loss curve: max over steps of |rn50 - fp64| / fp64 <= max(1e-3, 3 x PyTorch fp32's)
  weights:    for every tensor, rel L2 of its change from the initial weights
              <= max(1e-2, 3 x PyTorch fp32's)
"""
import argparse
import json
import os
import struct
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def init(arch, classes, out):
    torch.manual_seed(0)
    m = getattr(torchvision.models, arch)(num_classes=classes)
    last = "bn3" if arch in ("resnet50", "resnet101", "resnet152") else "bn2"
    with torch.no_grad():  # small-residual init keeps fp32 well-conditioned
        for name, mod in m.named_modules():
            if isinstance(mod, torch.nn.BatchNorm2d) and name.endswith(last):
                mod.weight.fill_(0.1)
    safetensors_py.save(out, m.state_dict())


def read_dump(path):
    steps = []
    with open(path, "rb") as f:
        while True:
            h = f.read(24)
            if not h:
                break
            step, lr, n, crop = struct.unpack("<qdii", h)
            img = torch.frombuffer(bytearray(f.read(n * crop * crop * 3)), dtype=torch.uint8).view(n, crop, crop, 3)
            lab = torch.frombuffer(bytearray(f.read(4 * n)), dtype=torch.int32).long()
            steps.append((step, lr, img, lab))
    return steps


def train(arch, classes, init_sd, batches, a, dtype):
    m = getattr(torchvision.models, arch)(num_classes=classes)
    m.load_state_dict(init_sd)
    m.to(dtype).train()
    decay, rest = [], []
    for name, p in m.named_parameters():
        (decay if name.endswith("weight") and p.dim() > 1 else rest).append(p)
    opt = torch.optim.SGD([{"params": decay}, {"params": rest, "weight_decay": a.wd if a.wd_bn else 0.0}],
                          lr=0.1, momentum=a.momentum, nesterov=bool(a.nesterov), weight_decay=a.wd)
    crit = torch.nn.CrossEntropyLoss(label_smoothing=a.smoothing)
    losses = []
    for i in range(0, len(batches), a.accum):
        group = batches[i:i + a.accum]
        for g in opt.param_groups:
            g["lr"] = group[0][1]
        opt.zero_grad()
        total = 0.0
        for _, _, img, lab in group:
            x = ((img.permute(0, 3, 1, 2).to(dtype) / 255.0) - MEAN.to(dtype)) / STD.to(dtype)
            loss = crit(m(x), lab) / a.accum
            loss.backward()
            total += loss.item()
        opt.step()
        losses.append(total)
    return losses, {k: v.detach().double() for k, v in m.state_dict().items()}


def main():
    if sys.argv[1] == "init":
        init(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    p = argparse.ArgumentParser()
    for k in ("cmd", "arch", "classes", "init", "dump", "run"):
        p.add_argument(k)
    for k, t in (("--accum", int), ("--wd", float), ("--wd-bn", int), ("--momentum", float), ("--nesterov", int),
                 ("--smoothing", float)):
        p.add_argument(k, type=t, required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    init_sd, _ = safetensors_py.load(a.init)
    batches = read_dump(a.dump)
    classes = int(a.classes)
    l32, w32 = train(a.arch, classes, init_sd, batches, a, torch.float32)
    l64, w64 = train(a.arch, classes, init_sd, batches, a, torch.float64)
    rn = [json.loads(line) for line in open(os.path.join(a.run, "metrics.jsonl"))]
    rl = [r["loss"] for r in rn if r["type"] == "step"]
    mine, _ = safetensors_py.load(os.path.join(a.run, "model.safetensors"))
    npass = nfail = 0

    def check(name, cond):
        nonlocal npass, nfail
        print(("ok   " if cond else "FAIL ") + name)
        npass, nfail = npass + cond, nfail + (not cond)

    check(f"rn50 logged a loss for each of the {len(l64)} steps (got {len(rl)})", len(rl) == len(l64))
    n = min(len(rl), len(l64))
    e_ours = max(abs(rl[i] - l64[i]) / abs(l64[i]) for i in range(n))
    e_t32 = max(abs(l32[i] - l64[i]) / abs(l64[i]) for i in range(n))
    tol = max(1e-3, 3 * e_t32)
    print(f"  loss curve over {n} steps: rn50 vs fp64 {e_ours:.2e}, PyTorch fp32 vs fp64 {e_t32:.2e} (tol {tol:.1e})")
    print(f"  losses: first {l64[0]:.4f}, last {l64[-1]:.4f} (rn50 {rl[n-1]:.4f})")
    check("rn50's loss curve matches PyTorch's", e_ours <= tol)
    worst, worst_t32, bad = 0.0, 0.0, []
    for k, ref in w64.items():
        if not ref.is_floating_point():
            check(f"{k} equal", int(mine[k].item()) == int(ref.item()))
            continue
        base = init_sd[k].double()
        d_ref = ref - base
        den = d_ref.norm().item() or 1.0
        e = (mine[k].double() - base - d_ref).norm().item() / den
        et = (w32[k] - base - d_ref).norm().item() / den
        worst, worst_t32 = max(worst, e), max(worst_t32, et)
        if e > max(1e-2, 3 * et):
            bad.append(f"{k}: {e:.2e} (PyTorch fp32 {et:.2e})")
    print(f"  weights: worst rel err of a tensor's change rn50 {worst:.2e}, PyTorch fp32 {worst_t32:.2e}")
    check("rn50's final weights match PyTorch's" + ("" if not bad else ": " + "; ".join(bad[:5])), not bad)
    print(f"RESULT {npass} {nfail}")
    return 0 if nfail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
