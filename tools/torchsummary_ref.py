#!/usr/bin/python3
"""torchsummary_ref.py: the layer table that torchsummary's summary(model,
(3, S, S)) prints for a torchvision ResNet, the reference `rn50 summary` is
tested against (tests/model_py.sh). torchsummary is not installed here (no
PyPI), so this re-implements its summary() faithfully (torchsummary 1.5.1):

  - a forward hook on every module except nn.Sequential, nn.ModuleList and
    the model itself; one row per call, in call order (a block's shared ReLU
    appears each time it runs; the block itself after its last ReLU);
  - row name "<ClassName>-<row number>", output shape with batch_size -1,
    parameters = numel(weight) + numel(bias) of that module;
  - rows formatted "{:>20}  {:>25} {:>15}";
  - totals, and the four size lines with torchsummary's arithmetic (4 bytes a
    number, the output sizes counted twice for the gradients, batch_size -1
    inside the products, abs() outside).

One difference on purpose: torchsummary ends with a line of dashes after
"Estimated Total Size (MB)"; the trainer's spec file
(tests/fixtures/resnet50_summary.txt) does not, and neither does rn50.

usage: /usr/bin/python3 tools/torchsummary_ref.py [--cpu] [--state] OUT_DIR ARCH:SIZE[:CLASSES] ...
writes OUT_DIR/ARCH_SIZE_CLASSES.txt for each (CLASSES default 1000); with
--state also OUT_DIR/ARCH_CLASSES.state, the model's state_dict() as
"name dtype [shape]" lines in order (dtype F32 or I64), which
tests/model_py.sh compares with rn50's state table. The
models run on PyTorch's "meta" device (shapes only, no arithmetic): the table
is the same as on the CPU (--cpu runs them there, to check that) in a
fraction of the time.
"""
import contextlib
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torchvision


def summary_lines(model, input_size, batch_size=-1, device="cpu"):
    rows = OrderedDict()
    hooks = []

    def register_hook(module):
        def hook(module, input, output):
            class_name = str(module.__class__).split(".")[-1].split("'")[0]
            m_key = "%s-%i" % (class_name, len(rows) + 1)
            r = OrderedDict()
            r["input_shape"] = list(input[0].size())
            r["input_shape"][0] = batch_size
            if isinstance(output, (list, tuple)):
                r["output_shape"] = [[-1] + list(o.size())[1:] for o in output]
            else:
                r["output_shape"] = list(output.size())
                r["output_shape"][0] = batch_size
            params = 0
            if hasattr(module, "weight") and hasattr(module.weight, "size"):
                params += torch.prod(torch.LongTensor(list(module.weight.size())))
                r["trainable"] = module.weight.requires_grad
            if hasattr(module, "bias") and hasattr(module.bias, "size"):
                params += torch.prod(torch.LongTensor(list(module.bias.size())))
            r["nb_params"] = params
            rows[m_key] = r

        if not isinstance(module, nn.Sequential) and not isinstance(module, nn.ModuleList) and not (module == model):
            hooks.append(module.register_forward_hook(hook))

    if isinstance(input_size, tuple):
        input_size = [input_size]
    # batch of 2 for batchnorm, as torchsummary; on the device the model is on
    # (torchsummary: "cuda" or "cpu"; here "meta" too, shapes without arithmetic)
    x = [torch.rand(2, *s, device=device) for s in input_size]
    model.apply(register_hook)
    with torch.no_grad():
        model(*x)
    for h in hooks:
        h.remove()

    out = ["----------------------------------------------------------------",
           "{:>20}  {:>25} {:>15}".format("Layer (type)", "Output Shape", "Param #"),
           "================================================================"]
    total_params = 0
    total_output = 0
    trainable_params = 0
    for layer in rows:
        out.append("{:>20}  {:>25} {:>15}".format(layer, str(rows[layer]["output_shape"]),
                                                  "{0:,}".format(rows[layer]["nb_params"])))
        total_params += rows[layer]["nb_params"]
        total_output += np.prod(rows[layer]["output_shape"])
        if "trainable" in rows[layer] and rows[layer]["trainable"]:
            trainable_params += rows[layer]["nb_params"]

    total_input_size = abs(np.prod(input_size) * batch_size * 4. / (1024 ** 2.))
    total_output_size = abs(2. * total_output * 4. / (1024 ** 2.))
    total_params_size = abs(total_params.numpy() * 4. / (1024 ** 2.))
    total_size = total_params_size + total_output_size + total_input_size
    out += ["================================================================",
            "Total params: {0:,}".format(total_params),
            "Trainable params: {0:,}".format(trainable_params),
            "Non-trainable params: {0:,}".format(total_params - trainable_params),
            "----------------------------------------------------------------",
            "Input size (MB): %0.2f" % total_input_size,
            "Forward/backward pass size (MB): %0.2f" % total_output_size,
            "Params size (MB): %0.2f" % total_params_size,
            "Estimated Total Size (MB): %0.2f" % total_size]
    return out


@contextlib.contextmanager
def no_init():
    """Skips the random initialisation while a model is built: the table
    depends on shapes only, and initialising resnet152 takes a second."""
    names = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")]
    saved = {n: getattr(nn.init, n) for n in names}
    for n in names:
        setattr(nn.init, n, lambda t, *a, **k: t)
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(nn.init, n, f)


def main(argv):
    device = "cpu" if "--cpu" in argv else "meta"
    state = "--state" in argv
    argv = [a for a in argv if a not in ("--cpu", "--state")]
    if len(argv) < 2:
        print(__doc__)
        return 2
    out_dir = argv[0]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    for spec in argv[1:]:
        parts = spec.split(":")
        arch, size = parts[0], int(parts[1])
        classes = int(parts[2]) if len(parts) > 2 else 1000
        with no_init():
            model = getattr(torchvision.models, arch)(num_classes=classes)
        lines = summary_lines(model.to(device), (3, size, size), device=device)
        with open(os.path.join(out_dir, f"{arch}_{size}_{classes}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        if state:
            dt = {torch.float32: "F32", torch.int64: "I64"}
            with open(os.path.join(out_dir, f"{arch}_{classes}.state"), "w") as f:
                for k, v in model.state_dict().items():
                    f.write(f"{k} {dt.get(v.dtype, str(v.dtype))} {list(v.shape)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
