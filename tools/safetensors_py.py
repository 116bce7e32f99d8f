#!/usr/bin/python3
"""safetensors_py.py: a PyTorch-side safetensors reader/writer written from
the format description with plain struct + json + torch (the `safetensors`
package is not installed here), used to cross-check rn50's C implementation.

  save(path, {name: tensor}, metadata)  /  load(path) -> (tensors, metadata)

load() validates strictly (header start, offsets tiling the data section,
byte sizes, duplicate names) so a file rn50 writes must pass it.

CLI (used by tests/io_safetensors_py.sh):
  fixture DIR            write py_all.safetensors (every dtype, special
                         values, a 0-dim I64 scalar, an empty tensor),
                         py_all_f32.safetensors (each tensor .float()),
                         resnet18.safetensors (torchvision state_dict)
  compare A B [--crc]    same names, dtypes, shapes and bytes; with --crc B's
                         metadata rn50.crc32c must equal the CRC-32C of its
                         data section
  load-resnet18 FILE     torchvision resnet18().load_state_dict(strict=True)
                         accepts FILE and equals the fixture's weights

Used by tests/model_cli.sh:
  torchvision-save ARCH FILE [CLASSES]
                         torchvision ARCH's state_dict after one training
                         forward (non-trivial running stats and counters)
  torchvision-load ARCH FILE [CLASSES]
                         torchvision ARCH().load_state_dict(strict=True)
                         accepts FILE (rn50's), its tensors in state_dict
                         order with state_dict's dtypes and shapes, values
                         unchanged by the load
  variants FILE DIR      from a valid state_dict FILE, broken copies in DIR:
                         missing (a tensor removed), extra (one added),
                         misshapen (a conv weight transposed), float_count
                         (a num_batches_tracked as F32), int_weight (fc.bias
                         as I64), nan (a NaN in a conv weight), shallow
                         (the last block removed: no ResNet depth matches),
                         not_resnet (no fc.weight), plus ok (the tensors
                         unchanged, without rn50's metadata)
Commands can be chained with "+" to pay for one Python start-up.
"""
import json
import os
import struct
import sys

import torch

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}
MAX_HEADER = 100_000_000


def tensor_bytes(t):
    t = t.detach().contiguous().reshape(-1)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def save(path, tensors, metadata=None):
    items = sorted(tensors.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = dict(metadata)
    for name, t in items:
        b = tensor_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def _pairs_no_dup(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in header")
    return dict(pairs)


def load_raw(path):
    """-> (entries {name: (dtype, shape, bytes)}, metadata, data_section)"""
    buf = open(path, "rb").read()
    if len(buf) < 8:
        raise ValueError(f"{path}: too short")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > MAX_HEADER or 8 + n > len(buf):
        raise ValueError(f"{path}: bad header length {n}")
    hb = buf[8:8 + n]
    if not hb.startswith(b"{"):
        raise ValueError(f"{path}: header does not start with '{{'")
    header = json.loads(hb.decode("utf-8"), object_pairs_hook=_pairs_no_dup)
    data = buf[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise ValueError(f"{path}: metadata must map strings to strings")
    spans, out = [], {}
    for name, e in header.items():
        dt = e["dtype"]
        shape = e["shape"]
        b, en = e["data_offsets"]
        if dt not in DTYPES or any((not isinstance(d, int)) or d < 0 for d in shape):
            raise ValueError(f"{path}: tensor {name}: bad dtype/shape")
        numel = 1
        for d in shape:
            numel *= d
        size = numel * torch.empty((), dtype=DTYPES[dt]).element_size()
        if not (0 <= b <= en) or en - b != size:
            raise ValueError(f"{path}: tensor {name}: offsets {b},{en} do not match size {size}")
        spans.append((b, en, name))
        out[name] = (dt, shape, data[b:en])
    pos = 0
    for b, en, name in sorted(spans):
        if b != pos:
            raise ValueError(f"{path}: tensor {name}: hole or overlap at {b} (expected {pos})")
        pos = en
    if pos != len(data):
        raise ValueError(f"{path}: data section {len(data)} bytes, tensors cover {pos}")
    return out, meta, data


def load(path):
    raw, meta, _ = load_raw(path)
    out = {}
    for name, (dt, shape, b) in raw.items():
        tdt = DTYPES[dt]
        if len(b) == 0:
            t = torch.empty(shape, dtype=tdt)
        elif tdt == torch.bool:
            t = torch.frombuffer(bytearray(b), dtype=torch.uint8).to(torch.bool).reshape(shape)
        else:
            t = torch.frombuffer(bytearray(b), dtype=tdt).reshape(shape)
        out[name] = t
    return out, meta


def _crc32c_table():
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        tab.append(c)
    return tab


def crc32c(data, crc=0):
    tab = _crc32c_table()
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ tab[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def fixture_tensors():
    g = torch.Generator().manual_seed(1234)
    t = {}
    t["f32"] = torch.randn(3, 4, 5, generator=g)
    t["f32_special"] = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e-45, -3.4e38, 1.17549435e-38])
    # every F16 bit pattern: zeros, subnormals, normals, infinities, NaNs
    t["f16_all"] = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.float16)
    t["bf16"] = (torch.randn(7, 9, generator=g) * 100).to(torch.bfloat16)
    t["bf16_special"] = torch.tensor([0, 0x8000, 0x7F80, 0xFF80, 0x7FC1, 0x0001, 0x8001, 0x3F80], dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    t["f64"] = torch.randn(2, 3, generator=g, dtype=torch.float64) * 1e10
    t["i64"] = torch.tensor([0, 1, -1, 2**62, -(2**63), 2**63 - 1, 16777217], dtype=torch.int64)
    t["bn1.num_batches_tracked"] = torch.tensor(12345678901, dtype=torch.int64)  # 0-dim scalar
    t["i32"] = torch.tensor([[-(2**31), 2**31 - 1], [7, -7]], dtype=torch.int32)
    t["i16"] = torch.tensor([-32768, 32767, 0], dtype=torch.int16)
    t["i8"] = torch.tensor([-128, 127, 5], dtype=torch.int8)
    t["u8"] = torch.tensor([0, 255, 128, 1, 2], dtype=torch.uint8)
    t["bool"] = torch.tensor([True, False, True], dtype=torch.bool)
    t["empty"] = torch.zeros(4, 0, 3)
    t["conv.weight"] = torch.randn(8, 3, 3, 3, generator=g)  # OIHW
    return t


def cmd_fixture(d):
    os.makedirs(d, exist_ok=True)
    t = fixture_tensors()
    save(os.path.join(d, "py_all.safetensors"), t, {"format": "pt", "note": "fixture \"quoted\" \u00e9"})
    save(os.path.join(d, "py_all_f32.safetensors"), {k: v.float() for k, v in t.items()})
    import torchvision
    torch.manual_seed(0)
    m = torchvision.models.resnet18()
    m.train()(torch.randn(2, 3, 32, 32))  # make running stats / counters non-trivial
    save(os.path.join(d, "resnet18.safetensors"), m.state_dict(), {"format": "pt"})
    print("fixture written to", d)


def bits_equal(a, b):
    return a.dtype == b.dtype and list(a.shape) == list(b.shape) and tensor_bytes(a) == tensor_bytes(b)


def cmd_compare(a, b, crc):
    ta, _ = load(a)
    tb, mb = load(b)
    bad = []
    if set(ta) != set(tb):
        bad.append(f"names differ: only in A {sorted(set(ta) - set(tb))}, only in B {sorted(set(tb) - set(ta))}")
    for k in sorted(set(ta) & set(tb)):
        if not bits_equal(ta[k], tb[k]):
            bad.append(f"tensor {k}: {ta[k].dtype}{list(ta[k].shape)} vs {tb[k].dtype}{list(tb[k].shape)} or bytes differ")
    if crc:
        _, _, data = load_raw(b)
        want = "%08x" % crc32c(data)
        if mb.get("rn50.crc32c") != want:
            bad.append(f"rn50.crc32c is {mb.get('rn50.crc32c')!r}, CRC-32C of the data section is {want}")
        n = struct.unpack("<Q", open(b, "rb").read(8))[0]
        if n % 8:
            bad.append(f"header length {n} not a multiple of 8")
    for m in bad:
        print("MISMATCH", m)
    print("compare", a, b, "ok" if not bad else "FAILED", f"({len(ta)} tensors)")
    return 1 if bad else 0


def cmd_load_resnet18(path, ref):
    import torchvision
    sd, _ = load(path)
    m = torchvision.models.resnet18()
    m.load_state_dict(sd, strict=True)
    refsd, _ = load(ref)
    got = m.state_dict()
    bad = [k for k in refsd if not bits_equal(got[k], refsd[k])]
    print("torchvision resnet18 load_state_dict(strict=True):", "ok" if not bad else f"FAILED {bad[:5]}")
    return 1 if bad else 0


def _model(arch, classes):
    import torchvision
    return getattr(torchvision.models, arch)(num_classes=classes)


def cmd_torchvision_save(arch, path, classes):
    torch.manual_seed(0)
    m = _model(arch, classes)
    with torch.no_grad():
        m.train()(torch.randn(2, 3, 32, 32))
    save(path, m.state_dict(), {"format": "pt"})
    print(f"torchvision {arch} ({classes} classes) state_dict written to {path}")
    return 0


def cmd_torchvision_load(arch, path, classes):
    raw, _, _ = load_raw(path)
    sd, _ = load(path)
    m = _model(arch, classes)
    ref = m.state_dict()
    bad = []
    if list(raw) != list(ref):
        bad.append("tensor order differs from state_dict(): first difference at "
                   + str(next((i, a, b) for i, (a, b) in enumerate(zip(list(raw) + [None] * len(ref), ref)) if a != b)))
    for k, v in ref.items():
        if k in sd and (sd[k].dtype != v.dtype or sd[k].shape != v.shape):
            bad.append(f"{k}: {sd[k].dtype}{list(sd[k].shape)}, state_dict has {v.dtype}{list(v.shape)}")
    try:
        m.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        bad.append(f"load_state_dict(strict=True) refused: {e}")
    got = m.state_dict()
    bad += [f"{k} changed by the load" for k in sd if k in got and not bits_equal(got[k], sd[k])][:5]
    for b in bad:
        print("MISMATCH", b)
    print(f"torchvision {arch}().load_state_dict(strict=True) of {path}:", "ok" if not bad else "FAILED",
          f"({len(sd)} tensors)")
    return 1 if bad else 0


def cmd_variants(path, d):
    os.makedirs(d, exist_ok=True)
    sd, _ = load(path)
    conv = next(k for k, v in sd.items() if v.dim() == 4 and v.shape[0] != v.shape[1])
    count = next(k for k in sd if k.endswith("num_batches_tracked"))
    running = [k for k in sd if k.endswith("running_var")][len(sd) // 50]
    out = {"ok": dict(sd)}
    out["missing"] = {k: v for k, v in sd.items() if k != running}
    out["extra"] = dict(sd, **{"layer5.0.conv1.weight": torch.zeros(8, 8, 3, 3)})
    out["misshapen"] = dict(sd, **{conv: sd[conv].transpose(0, 1).contiguous()})
    out["float_count"] = dict(sd, **{count: sd[count].float()})
    out["int_weight"] = dict(sd, **{"fc.bias": sd["fc.bias"].long()})
    nan = sd[conv].clone()
    nan.view(-1)[7] = float("nan")
    out["nan"] = dict(sd, **{conv: nan})
    out["shallow"] = {k: v for k, v in sd.items() if not k.startswith("layer4.1.")}
    out["not_resnet"] = {"encoder.weight": torch.ones(4, 4), "encoder.bias": torch.zeros(4)}
    for name, t in out.items():
        save(os.path.join(d, name + ".safetensors"), t, {"format": "pt"})
    # the tensor each variant breaks, for the test's message checks
    with open(os.path.join(d, "tensors.txt"), "w") as f:
        f.write(f"missing {running}\nextra layer5.0.conv1.weight\nmisshapen {conv}\nfloat_count {count}\n"
                f"int_weight fc.bias\nnan {conv}\n")
    print(f"variants of {path} written to {d}")
    return 0


def main(argv):
    if "+" in argv:  # chained commands
        rc, cmd = 0, []
        for a in argv + ["+"]:
            if a == "+":
                rc = max(rc, main(cmd))
                cmd = []
            else:
                cmd.append(a)
        return rc
    if len(argv) in (3, 4) and argv[0] in ("torchvision-save", "torchvision-load"):
        f = cmd_torchvision_save if argv[0] == "torchvision-save" else cmd_torchvision_load
        return f(argv[1], argv[2], int(argv[3]) if len(argv) == 4 else 1000)
    if len(argv) == 3 and argv[0] == "variants":
        return cmd_variants(argv[1], argv[2])
    if len(argv) >= 2 and argv[0] == "fixture":
        cmd_fixture(argv[1])
        return 0
    if len(argv) >= 3 and argv[0] == "compare":
        return cmd_compare(argv[1], argv[2], "--crc" in argv)
    if len(argv) == 3 and argv[0] == "load-resnet18":
        return cmd_load_resnet18(argv[1], argv[2])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
