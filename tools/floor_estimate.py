#!/usr/bin/env python3
"""floor_estimate.py: the lower bound on a ResNet-50 training step's time
from its arithmetic and from the memory traffic of rn50's own kernels
(docs/PERF.md, "Issue 6 (fast path)"). No GPU needed: it walks the ops as
src/model/net.c builds them (ResNet-50, 224 px, the GPU's 4 input channels)
and charges each kernel, as src/cuda implements it, for the activation bytes
it reads and writes from device memory (nothing assumed to stay in L2):

  forward   conv          x read once, y written (cuDNN implicit GEMM)
            BN (train)    stats pass reads x; apply reads x (+ residual r),
                          writes y (ReLU fused)
            max pool      x read, y written; avg pool x read
  backward  conv          bwd-filter reads x and dy; bwd-data reads dy, writes
                          dx (reads dx too when accumulating into it)
            BN            stats pass reads dy, x (+ y for the ReLU mask);
                          apply reads dy, x (+ y), (+ dx when accumulating),
                          writes dx and, at a block's end, dr (read too when
                          accumulating)
            max pool      dy and x read, dx written
  per step  SGD reads w, momentum, g, writes w, momentum, the act-dtype copy;
            gradients zeroed; conv weight gradients pass through an
            act-dtype scratch that a kernel adds to the fp32 gradient.
FLOPs: 2 per multiply-add of every conv and the fc, three times (forward,
backward-data, backward-filter; conv1 has no backward-data).

Usage: tools/floor_estimate.py [--batch 256] [--bytes 2]
"""
import argparse


def resnet50_ops(size=224, in_c=4):
    """(kind, x, y, r, relu, meta) in net.c's order; acts are (h, w, c)."""
    acts = [(size, size, in_c)]
    ops = []

    def conv(x, cout, k, stride, pad):
        h, w, c = acts[x]
        oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        acts.append((oh, ow, cout))
        cin = 3 if x == 0 else c  # conv1's padded channel holds zeros: no arithmetic
        ops.append(("conv", x, len(acts) - 1, -1, 0, dict(macs=oh * ow * cout * k * k * cin, params=cout * k * k * c)))
        return len(acts) - 1

    def bn(x, r, relu):
        acts.append(acts[x])
        ops.append(("bn", x, len(acts) - 1, r, relu, dict(params=2 * acts[x][2])))
        return len(acts) - 1

    t = conv(0, 64, 7, 2, 3)
    t = bn(t, -1, 1)
    h, w, c = acts[t]
    acts.append(((h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1, 64))
    ops.append(("maxpool", t, len(acts) - 1, -1, 0, {}))
    t = len(acts) - 1
    inplanes = 64
    for L, blocks in enumerate([3, 4, 6, 3]):
        planes = 64 << L
        for i in range(blocks):
            stride = 2 if (i == 0 and L > 0) else 1
            x = t
            u = bn(conv(x, planes, 1, 1, 0), -1, 1)
            u = bn(conv(u, planes, 3, stride, 1), -1, 1)
            u = conv(u, planes * 4, 1, 1, 0)
            ident = x
            if stride != 1 or inplanes != planes * 4:
                ident = bn(conv(x, planes * 4, 1, stride, 0), -1, 0)
            t = bn(u, ident, 1)
            inplanes = planes * 4
    acts.append((1, 1, inplanes))
    ops.append(("avgpool", t, len(acts) - 1, -1, 0, {}))
    acts.append((1, 1, 1000))
    ops.append(("fc", len(acts) - 2, len(acts) - 1, -1, 0, dict(macs=inplanes * 1000, params=inplanes * 1000 + 1000)))
    return acts, ops


def numel(a):
    return a[0] * a[1] * a[2]


def traffic(acts, ops):
    """activation elements read + written per image, by pass and op kind"""
    fwd, bwd = {}, {}

    def add(d, k, v):
        d[k] = d.get(k, 0) + v

    for kind, x, y, r, relu, _ in ops:
        X, Y = numel(acts[x]), numel(acts[y])
        if kind == "conv":
            add(fwd, "conv", X + Y)
        elif kind == "bn":
            add(fwd, "bn", 2 * X + (X if r >= 0 else 0) + Y)
        elif kind == "maxpool":
            add(fwd, "pool", X + Y)
        elif kind == "avgpool":
            add(fwd, "pool", X + Y)
    written = [0] * len(acts)
    written[ops[-1][2]] = 1
    for kind, x, y, r, relu, _ in reversed(ops):
        X, Y = numel(acts[x]), numel(acts[y])
        has_dx = x != 0
        if kind == "conv":
            add(bwd, "conv", X + Y)  # bwd-filter: x, dy
            if has_dx:
                add(bwd, "conv", Y + X + (X if written[x] else 0))  # bwd-data: dy, dx (+ old dx)
        elif kind == "bn":
            m = 3 if relu else 2  # dy, x (+ y)
            add(bwd, "bn", m * X)  # stats pass
            add(bwd, "bn", m * X + X + (X if written[x] else 0))  # apply: reads, dx (+ old dx)
            if r >= 0:
                add(bwd, "bn", X + (X if written[r] else 0))  # dr (+ old dr)
                written[r] = 1
        elif kind == "maxpool":
            add(bwd, "pool", Y + X + X + (X if written[x] else 0))
        elif kind == "avgpool":
            add(bwd, "pool", X + (X if written[x] else 0))
        if has_dx:
            written[x] = 1
    return fwd, bwd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--bytes", type=int, default=2, help="bytes per activation (bf16 / fp16: 2)")
    a = ap.parse_args()
    acts, ops = resnet50_ops()
    macs = sum(o[5].get("macs", 0) for o in ops)
    conv1_macs = ops[0][5]["macs"]
    params = sum(o[5].get("params", 0) for o in ops)
    flops = 2 * (3 * macs - conv1_macs)  # conv1: no backward-data
    fwd, bwd = traffic(acts, ops)
    e = a.bytes
    act_bytes = (sum(fwd.values()) + sum(bwd.values())) * e
    input_bytes = 224 * 224 * 3 + 224 * 224 * 4 * e  # uint8 upload read + normalised input written
    nconvw = sum(o[5]["params"] for o in ops if o[0] == "conv")
    step_bytes = params * (5 * 4 + e) + params * 4 + nconvw * (4 + e + 4)  # SGD, zero, wgrad add
    per_img = act_bytes + input_bytes + step_bytes / a.batch
    print(f"ResNet-50, 224 px, batch {a.batch}, {e}-byte activations")
    print(f"  multiply-adds per image, forward: {macs / 1e9:.2f} G; training FLOPs per image "
          f"(2 per MAC, forward + both backward GEMMs): {flops / 1e9:.1f} G")
    print(f"  parameters {params / 1e6:.1f} M; activations per image {sum(numel(x) for x in acts) / 1e6:.1f} M elements")
    for name, d in (("forward", fwd), ("backward", bwd)):
        print(f"  {name}: " + ", ".join(f"{k} {v * e / 1e6:.1f} MB" for k, v in sorted(d.items())) +
              f" (total {sum(d.values()) * e / 1e6:.1f} MB per image)")
    print(f"  input {input_bytes / 1e6:.2f} MB, per-step parameter kernels {step_bytes / 1e6:.0f} MB "
          f"({step_bytes / a.batch / 1e6:.2f} MB per image)")
    print(f"  bytes per image: {per_img / 1e6:.1f} MB")
    # the same with every BN / ReLU / add fused into the convolutions: only the
    # convs' own traffic (each conv output written once, read back in backward)
    fused = (fwd.get("conv", 0) + bwd.get("conv", 0) + fwd.get("pool", 0) + bwd.get("pool", 0)) * e + \
        input_bytes + step_bytes / a.batch
    print(f"  with BN, ReLU and add fused into the convs (conv and pool traffic only): {fused / 1e6:.1f} MB per image")
    for card, bw, tf in (("H100 SXM", 3.0e12, 790e12), ("H200", 4.3e12, 790e12)):
        t_mem, t_flop = per_img / bw, flops / tf
        print(f"  {card}: memory {t_mem * 1e6:.1f} us/img ({1 / t_mem:,.0f} img/s at {bw / 1e12:.1f} TB/s), "
              f"arithmetic {t_flop * 1e6:.1f} us/img ({1 / t_flop:,.0f} img/s at {tf / 1e12:.0f} TFLOP/s); "
              f"{'memory' if t_mem > t_flop else 'arithmetic'} dominates; floor {1 / max(t_mem, t_flop):,.0f} img/s "
              f"(both overlapped), {1 / (t_mem + t_flop):,.0f} img/s (one after the other); fused: memory "
              f"{1 / (fused / bw):,.0f} img/s")


if __name__ == "__main__":
    main()
