#!/usr/bin/python3
"""tfevents_read.py: an independent reader of TensorBoard event files
(TFRecord framing + the Event/Summary/Value protobuf), written from the
format description with struct only, to check rn50's writer
(src/train/tb.c). `tensorboard` is not installed here.

  tfevents_read.py dump FILE [--protobuf]

prints one line per record:
  file_version=<s> step=<n>
  scalar step=<n> tag=<s> bits=<8 hex digits of the float32>
  session_start step=<n>
after checking both masked CRC-32Cs of every record and that the file ends on
a record boundary. With --protobuf each record is also parsed by Google's
protobuf library (Debian python3-protobuf) from a descriptor built at run
time, and must decode to the same fields. Exits 1 on any error.
"""
import struct
import sys


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


TABLE = _table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(buf):
    pos = 0
    while pos < len(buf):
        if pos + 12 > len(buf):
            raise ValueError(f"torn record header at byte {pos}")
        hdr = buf[pos:pos + 8]
        (n,) = struct.unpack("<Q", hdr)
        (lc,) = struct.unpack("<I", buf[pos + 8:pos + 12])
        if lc != masked(hdr):
            raise ValueError(f"bad length CRC at byte {pos}")
        if pos + 12 + n + 4 > len(buf):
            raise ValueError(f"torn record at byte {pos}")
        data = buf[pos + 12:pos + 12 + n]
        (dc,) = struct.unpack("<I", buf[pos + 12 + n:pos + 16 + n])
        if dc != masked(data):
            raise ValueError(f"bad data CRC at byte {pos}")
        yield data
        pos += 16 + n


def varint(b, i):
    v = shift = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return v, i


def fields(b):
    """-> list of (field, wire, value) where value is int or bytes."""
    out, i = [], 0
    while i < len(b):
        key, i = varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = varint(b, i)
        elif w == 1:
            v, i = b[i:i + 8], i + 8
        elif w == 5:
            v, i = b[i:i + 4], i + 4
        elif w == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError(f"wire type {w}")
        if i > len(b):
            raise ValueError("field runs past the message")
        out.append((f, w, v))
    return out


def decode_event(data):
    ev = {"wall_time": 0.0, "step": 0}
    for f, w, v in fields(data):
        if f == 1 and w == 1:
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif f == 2 and w == 0:
            ev["step"] = v - (1 << 64) if v >= 1 << 63 else v
        elif f == 3 and w == 2:
            ev["file_version"] = v.decode()
        elif f == 5 and w == 2:
            vals = []
            for sf, sw, sv in fields(v):
                if sf == 1 and sw == 2:
                    val = {}
                    for vf, vw, vv in fields(sv):
                        if vf == 1 and vw == 2:
                            val["tag"] = vv.decode()
                        elif vf == 2 and vw == 5:
                            val["bits"] = struct.unpack("<I", vv)[0]
                    vals.append(val)
            ev["values"] = vals
        elif f == 6 and w == 2:
            ev["session_status"] = dict((sf, sv) for sf, _, sv in fields(v)).get(1, 0)
    return ev


def protobuf_event_class():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fd = descriptor_pb2.FileDescriptorProto(name="rn50_check_event.proto", package="rn50chk", syntax="proto3")
    F = descriptor_pb2.FieldDescriptorProto

    def msg(name, flds):
        m = fd.message_type.add(name=name)
        for fname, num, typ, label, tname in flds:
            f = m.field.add(name=fname, number=num, type=typ, label=label)
            if tname:
                f.type_name = tname

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    msg("Value", [("tag", 1, F.TYPE_STRING, opt, None), ("simple_value", 2, F.TYPE_FLOAT, opt, None)])
    msg("Summary", [("value", 1, F.TYPE_MESSAGE, rep, ".rn50chk.Value")])
    msg("SessionLog", [("status", 1, F.TYPE_INT32, opt, None)])
    msg("Event", [("wall_time", 1, F.TYPE_DOUBLE, opt, None), ("step", 2, F.TYPE_INT64, opt, None),
                  ("file_version", 3, F.TYPE_STRING, opt, None),
                  ("summary", 5, F.TYPE_MESSAGE, opt, ".rn50chk.Summary"),
                  ("session_log", 6, F.TYPE_MESSAGE, opt, ".rn50chk.SessionLog")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    desc = pool.FindMessageTypeByName("rn50chk.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def check_with_protobuf(cls, data, ev):
    m = cls()
    m.ParseFromString(data)
    assert m.wall_time == ev["wall_time"] and m.step == ev["step"], "wall_time/step"
    assert m.file_version == ev.get("file_version", ""), "file_version"
    got = [(v.tag, struct.unpack("<I", struct.pack("<f", v.simple_value))[0]) for v in m.summary.value]
    assert got == [(v.get("tag"), v.get("bits")) for v in ev.get("values", [])], "summary values"
    assert m.session_log.status == ev.get("session_status", 0), "session_log"


def main(argv):
    if len(argv) < 2 or argv[0] != "dump":
        print(__doc__)
        return 2
    buf = open(argv[1], "rb").read()
    pcls = protobuf_event_class() if "--protobuf" in argv else None
    try:
        for data in records(buf):
            ev = decode_event(data)
            if pcls:
                check_with_protobuf(pcls, data, ev)
            if "file_version" in ev:
                print(f"file_version={ev['file_version']} step={ev['step']}")
            for v in ev.get("values", []):
                print(f"scalar step={ev['step']} tag={v['tag']} bits={v['bits']:08x}")
            if ev.get("session_status") == 1:
                print(f"session_start step={ev['step']}")
    except (ValueError, AssertionError, IndexError) as e:
        print(f"ERROR {argv[1]}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
