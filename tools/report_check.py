#!/usr/bin/python3
"""report_check.py: Python-side checks of rn50's report files
(src/train/report.c), used by tests/io_report_py.sh.

  report_check.py timm-summary ROWS OUT  write OUT exactly as timm's
                                         update_summary would for the rows in
                                         ROWS ("epoch train_loss eval_loss
                                         eval_top1 eval_top5 lr", hex floats)
  report_check.py repr FILE              every line "<hex float> <text>" must
                                         have text == repr(float)
  report_check.py page FILE              the page parses as XML; prints its
                                         panels and series
"""
import csv
import sys
import xml.etree.ElementTree as ET
from collections import OrderedDict


def update_summary(epoch, train_metrics, eval_metrics, filename, lr=None, write_header=False):
    # timm.utils.summary.update_summary (the csv part), unchanged in substance
    rowd = OrderedDict(epoch=epoch)
    rowd.update([("train_" + k, v) for k, v in train_metrics.items()])
    if eval_metrics:
        rowd.update([("eval_" + k, v) for k, v in eval_metrics.items()])
    if lr is not None:
        rowd["lr"] = lr
    with open(filename, mode="a") as cf:
        dw = csv.DictWriter(cf, fieldnames=rowd.keys())
        if write_header:
            dw.writeheader()
        dw.writerow(rowd)


def timm_summary(rows, out):
    for i, line in enumerate(open(rows)):
        f = line.split()
        ep = int(f[0])
        tl, el, t1, t5, lr = (float.fromhex(x) for x in f[1:])
        update_summary(ep, OrderedDict(loss=tl), OrderedDict([("loss", el), ("top1", t1), ("top5", t5)]), out,
                       lr=lr, write_header=(i == 0))
    return 0


def check_repr(path):
    bad = n = 0
    for line in open(path):
        h, s = line.split()
        n += 1
        want = repr(float.fromhex(h))
        if s != want:
            bad += 1
            if bad <= 5:
                print(f"repr mismatch: {h}: rn50 {s}, python {want}")
    print(f"{n} floats, {bad} differ from Python's repr")
    return 1 if bad or n == 0 else 0


def check_page(path):
    root = ET.parse(path).getroot()  # raises on malformed markup
    ns = "{http://www.w3.org/2000/svg}"
    svgs = list(root.iter(ns + "svg"))
    for svg in svgs:
        w, h = float(svg.get("width")), float(svg.get("height"))
        for pl in svg.iter(ns + "polyline"):
            pts = [tuple(map(float, p.split(","))) for p in pl.get("points").split()]
            assert all(0 <= x <= w and 0 <= y <= h for x, y in pts), "point outside the chart"
            print(f"series {pl.get('data-name')!r}: {len(pts)} points")
    print(f"{len(svgs)} charts, well-formed")
    return 0 if svgs else 1


def main(a):
    if len(a) == 3 and a[0] == "timm-summary":
        return timm_summary(a[1], a[2])
    if len(a) == 2 and a[0] == "repr":
        return check_repr(a[1])
    if len(a) == 2 and a[0] == "page":
        return check_page(a[1])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
