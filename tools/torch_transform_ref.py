#!/usr/bin/python3
"""Reference outputs of torchvision's transforms for rn50's data tests.

usage: /usr/bin/python3 tools/torch_transform_ref.py JOBS
JOBS is a text file with one job per line; each writes the transformed image
as raw uint8 HWC RGB bytes to OUT:
  eval PATH RESIZE CROP OUT          Resize(RESIZE) + CenterCrop(CROP)
  crop PATH TOP LEFT H W SIZE FLIP OUT   resized_crop(TOP, LEFT, H, W, SIZE) (+ hflip if FLIP)
  progressive SRC DST                re-save SRC as a progressive JPEG (quality 90) for the test
Images are opened as torchvision's ImageFolder opens them (PIL, convert("RGB")).
Prints "torchvision X, PIL Y" and exits 0; exits 3 when torchvision is missing.
"""
import sys

try:
    import numpy as np
    import PIL
    import torchvision
    import torchvision.transforms as T
    import torchvision.transforms.functional as F
    from PIL import Image
except ImportError as e:  # the caller skips the comparison
    print("missing module: %s" % e)
    sys.exit(3)


def load(path):
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


def main():
    for line in open(sys.argv[1]):
        p = line.split()
        if not p:
            continue
        if p[0] == "eval":
            path, resize, crop, out = p[1], int(p[2]), int(p[3]), p[4]
            img = T.CenterCrop(crop)(T.Resize(resize)(load(path)))
        elif p[0] == "crop":
            path, top, left, h, w, size, flip, out = p[1], *map(int, p[2:8]), p[8]
            img = F.resized_crop(load(path), top, left, h, w, [size, size], T.InterpolationMode.BILINEAR)
            if flip:
                img = F.hflip(img)
        elif p[0] == "progressive":
            load(p[1]).save(p[2], "JPEG", quality=90, progressive=True)
            continue
        else:
            raise SystemExit("unknown job: " + line)
        np.asarray(img, dtype=np.uint8).tofile(out)
    print("torchvision %s, PIL %s" % (torchvision.__version__, PIL.__version__))


if __name__ == "__main__":
    main()
