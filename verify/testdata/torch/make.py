#!/usr/bin/python3
"""Generate PyTorch reference data for package verify (verify/torch_test.go).

Regenerate (from the module root):

    apt-get install -y python3-torch python3-torchvision
    /usr/bin/python3 verify/testdata/torch/make.py

For every net below this writes verify/testdata/torch/<name>.cnn (the net in cnngen's
spec format, spec/FORMAT.md) and verify/testdata/torch/<name>.json (what PyTorch
computes for it). Each net is written twice by hand, once as spec text and once with
torch.nn modules laid out like torchvision's AlexNet/VGG (nn.Sequential attributes
`features` / `classifier`, top-level `avgpool` and `flatten`), so the spec's parameter
names must equal model.state_dict()'s keys; the Go test checks that they do.

Everything is float64 (model.double()) and seeded, so the output is reproducible
for a given PyTorch version. ReLU is built with inplace=False (the spec's `relu` means
ReLU(inplace=True); the values are the same, but in-place modules hide the tensors
whose gradients are recorded here).

JSON schema (one file per net; every float is written with repr, which round-trips
float64 exactly):

  {
    "name": "tiny_all",                  # the spec's `net` name
    "spec": "tiny_all.cnn",              # spec file, relative to this directory
    "torch_version": "1.13.0a0",
    "batch": 2,                          # n
    "modes": {
      "eval":  MODE,                     # model.eval()
      "train": MODE                      # model.train()
    }
  }

  MODE = {
    "input":  TENSOR,                    # x, NCHW, shape [n, C, H, W]
    "labels": [int, ...],                # n class indices
    "masks":  {layer: [0/1, ...]},       # train: one flat mask per dropout layer, in the
                                         # layout of that layer's input (NCHW or n×F);
                                         # eval: {}
    "state":  {key: TENSOR},             # model.state_dict() before the forward pass:
                                         # params and buffers (num_batches_tracked as a
                                         # float, shape [])
    "order":  [layer, ...],              # module paths in the order PyTorch ran them
    "outputs": {layer: TENSOR},          # output of every module, by module path:
                                         # "features.0", "avgpool", "flatten",
                                         # "classifier.1", ...
    "logits": TENSOR,                    # model(x), shape [n, classes]
    "loss": float,                       # F.cross_entropy(logits, labels), mean over n
    "grad_input": TENSOR,                # dloss/dx
    "grad_outputs": {layer: TENSOR},     # dloss/d(output of each module)
    "grad_params": {key: TENSOR},        # dloss/dparam, by state_dict key
    "buffers_after": {key: TENSOR}       # running_mean / running_var after the forward
                                         # pass (updated in train, unchanged in eval)
  }

  TENSOR = {"shape": [int, ...], "data": [float, ...]}   # data flat, row-major

Dropout in train mode: PyTorch's own masks cannot be reproduced outside PyTorch, so each
nn.Dropout is a MaskedDropout (a subclass, same state_dict) whose forward multiplies by
a stored 0/1 mask drawn here from a seeded generator: y = x * (mask / (1 - p)), which is
how ATen's dropout scales (noise.bernoulli_(1 - p).div_(1 - p); input * noise).
"""

import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class MaskedDropout(nn.Dropout):
    """nn.Dropout whose training-mode mask is given, not drawn."""

    mask = None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        return x * (self.mask.view_as(x) / (1 - self.p))


class Net(nn.Module):
    """Runs its top-level children in the order given, like torchvision's
    AlexNet/VGG forward (features, avgpool, flatten, classifier)."""

    def __init__(self, parts):
        super().__init__()
        self.order = []
        for name, mod in parts:
            self.add_module(name, mod)
            self.order.append(name)

    def forward(self, x):
        for name in self.order:
            x = getattr(self, name)(x)
        return x


def relu():
    return nn.ReLU(inplace=False)


def seq(*mods):
    return nn.Sequential(*mods)


# Each entry: name, batch, spec text, builder of the torch model, and optional input
# transform. The comments in the spec text name each module as PyTorch does.
NETS = []


def net(name, batch, spec, build, input_fn=None):
    NETS.append(dict(name=name, batch=batch, spec=spec, build=build, input_fn=input_fn))


# ---- conv: stride 2, asymmetric padding, floor division of the output size, non-square
# kernel, groups, asymmetric stride, no bias, depthwise; an identity adaptive avgpool.
net("conv", 2, """\
# Convolution edge cases.
net conv
input 4 9 8

features
  conv 4 6 k3 s2 p1x2     # features.0: 6x5x5; stride 2, padding 1 (H) 2 (W), W floors
  relu                    # features.1
  conv 6 k3x2 g2          # features.2: 6x3x4; 3x2 kernel, 2 groups
  conv 4 k2 s1x2 p1 g2 nobias  # features.3: 4x4x3; stride 1x2, groups, no bias
  conv 4 k1 g4            # features.4: 4x4x3; depthwise 1x1
avgpool 4 3               # identity: the size already matches
classifier
  linear 3                # classifier.0 (flatten implied before it)
""", lambda: Net([
    ("features", seq(
        nn.Conv2d(4, 6, 3, stride=2, padding=(1, 2)),
        relu(),
        nn.Conv2d(6, 6, (3, 2), groups=2),
        nn.Conv2d(6, 4, 2, stride=(1, 2), padding=1, groups=2, bias=False),
        nn.Conv2d(4, 4, 1, groups=4),
    )),
    ("avgpool", nn.AdaptiveAvgPool2d((4, 3))),
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(nn.Linear(48, 3))),
]))

# ---- maxpool: overlapping windows, floor mode with unused rows/columns, padding (-inf),
# a non-square kernel.
net("maxpool", 2, """\
# Max pooling edge cases.
net maxpool
input 3 11 10

features
  maxpool k3 s2           # features.0: 3x5x4; overlapping, last column unused
  maxpool k3 s2 p1        # features.1: 3x3x2; padded windows
  maxpool k2x1 s1         # features.2: 3x2x2; non-square kernel
classifier
  linear 4                # classifier.0
""", lambda: Net([
    ("features", seq(
        nn.MaxPool2d(3, 2),
        nn.MaxPool2d(3, 2, 1),
        nn.MaxPool2d((2, 1), 1),
    )),
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(nn.Linear(12, 4))),
]))


def quantize(x):
    # Multiples of 0.5, shifted down so that about half of the first pool's maxima are
    # <= 0 and the relu after it makes runs of zeros: many ties inside pooling windows.
    return torch.round(x * 2) / 2 - 1.5


# ---- maxpool ties: a quantized input, so windows hold several equal maxima (nonzero
# ones, and zeros after the relu). PyTorch (CPU) takes the first maximum in row-major
# window order (val > maxval), and routes the whole gradient to it.
net("maxpool_ties", 2, """\
# Max pooling with ties: the input is quantized to multiples of 0.5.
net maxpool_ties
input 2 9 9

features
  maxpool k3 s2           # features.0: 2x4x4; ties among nonzero maxima
  relu                    # features.1
  maxpool k2 s1 p1        # features.2: 2x5x5; ties among zeros, padded windows
classifier
  linear 3                # classifier.0
""", lambda: Net([
    ("features", seq(
        nn.MaxPool2d(3, 2),
        relu(),
        nn.MaxPool2d(2, 1, 1),
    )),
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(nn.Linear(50, 3))),
]), input_fn=quantize)

# ---- adaptive average pooling: non-dividing downsampling (7 -> 3, 6 -> 4, overlapping
# windows of unequal size) and upsampling (3 -> 5, 4 -> 5, windows repeat elements).
net("avgpool", 2, """\
# Adaptive average pooling edge cases.
net avgpool
input 2 7 6

features
  avgpool 3 4             # features.0: 2x3x4; 7->3 and 6->4 do not divide
avgpool 5                 # 2x5x5; output larger than input
classifier
  linear 3                # classifier.0
""", lambda: Net([
    ("features", seq(nn.AdaptiveAvgPool2d((3, 4)))),
    ("avgpool", nn.AdaptiveAvgPool2d((5, 5))),
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(nn.Linear(50, 3))),
]))

# ---- local response normalization: AlexNet-2012's (5, 1e-4, 0.75, 2), an even size
# with a large alpha (window pads size/2 channels before, (size-1)/2 after), a size
# wider than the channel count.
net("lrn", 2, """\
# Local response normalization edge cases.
net lrn
input 7 3 3

features
  lrn 5 alpha1e-4 beta0.75 k2        # features.0: AlexNet-2012
  lrn 4 alpha=0.1 beta=0.75 k=1      # features.1: even size, visible effect
  lrn 9 alpha0.3 beta0.6 k0.5        # features.2: window wider than 7 channels
classifier
  linear 3                           # classifier.0
""", lambda: Net([
    ("features", seq(
        nn.LocalResponseNorm(5, 1e-4, 0.75, 2),
        nn.LocalResponseNorm(4, 0.1, 0.75, 1),
        nn.LocalResponseNorm(9, 0.3, 0.6, 0.5),
    )),
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(nn.Linear(63, 3))),
]), input_fn=lambda x: 3 * x)  # larger activations: the alpha=1e-4 layer matters more

# ---- batch norm: after a bias-free conv, after a relu (non-centred input), with
# non-default eps and momentum; batch 3. Train mode uses batch statistics (biased
# variance) and updates running_var with the unbiased one.
net("batchnorm", 3, """\
# Batch normalization.
net batchnorm
input 3 4 4

features
  conv 4 k3 p1 nobias             # features.0
  batchnorm                       # features.1
  relu                            # features.2
  batchnorm eps1e-3 momentum0.3   # features.3
classifier
  linear 3                        # classifier.0
""", lambda: Net([
    ("features", seq(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        relu(),
        nn.BatchNorm2d(4, eps=1e-3, momentum=0.3),
    )),
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(nn.Linear(64, 3))),
]))

# ---- dropout: p=0.3 on a 4-D activation, default p=0.5, p=0.3 between linears.
net("dropout", 2, """\
# Dropout: masks are given in the JSON (train mode); identity in eval.
net dropout
input 3 2 2

features
  dropout 0.3             # features.0: on a C×H×W activation
classifier
  dropout                 # classifier.0: p = 0.5
  linear 10               # classifier.1
  relu                    # classifier.2
  dropout 0.3             # classifier.3
  linear 3                # classifier.4
""", lambda: Net([
    ("features", seq(MaskedDropout(0.3))),
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(
        MaskedDropout(0.5),
        nn.Linear(12, 10),
        relu(),
        MaskedDropout(0.3),
        nn.Linear(10, 3),
    )),
]))

# ---- linear: with and without bias, declared input size, implicit flatten of the
# input with no features section.
net("linear", 3, """\
# Linear layers.
net linear
input 2 2 3

classifier
  linear 12 7             # classifier.0 (flatten implied before it)
  relu                    # classifier.1
  linear 6 nobias         # classifier.2
  relu                    # classifier.3
  linear 4                # classifier.4
""", lambda: Net([
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(
        nn.Linear(12, 7),
        relu(),
        nn.Linear(7, 6, bias=False),
        relu(),
        nn.Linear(6, 4),
    )),
]))


def with_zeros(x):
    # Exact zeros at every 5th element: ReLU's gradient at 0 is 0 in PyTorch.
    x = x.clone()
    x.view(-1)[::5] = 0
    return x


# ---- relu: applied to the input (with exact zeros) and after a conv.
net("relu", 2, """\
# ReLU, including inputs that are exactly zero.
net relu
input 3 3 3

features
  relu                    # features.0: input has exact zeros
  conv 4 k2               # features.1
  relu                    # features.2
classifier
  linear 3                # classifier.0
""", lambda: Net([
    ("features", seq(relu(), nn.Conv2d(3, 4, 2), relu())),
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(nn.Linear(16, 3))),
]), input_fn=with_zeros)

# ---- flatten written explicitly, straight after features (no avgpool).
net("flatten", 2, """\
# An explicit flatten.
net flatten
input 2 3 3

features
  conv 3 k2               # features.0: 3x2x2
flatten                   # the module "flatten"
classifier
  linear 4                # classifier.0
""", lambda: Net([
    ("features", seq(nn.Conv2d(2, 3, 2))),
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(nn.Linear(12, 4))),
]))

# ---- vgg: the `vgg` shorthand with batch norm expands like torchvision's make_layers.
net("vgg_bn", 2, """\
# torchvision's make_layers(cfg, batch_norm=True) on a small cfg.
net vgg_bn
input 3 8 8

features
  vgg 4 M 6 6 M batchnorm   # features.0..12: conv bn relu M conv bn relu conv bn relu M
avgpool 2                   # identity (2x2 already)
classifier
  linear 5                  # classifier.0
""", lambda: Net([
    ("features", seq(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), relu(), nn.MaxPool2d(2, 2),
        nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), relu(),
        nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6), relu(), nn.MaxPool2d(2, 2),
    )),
    ("avgpool", nn.AdaptiveAvgPool2d((2, 2))),
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(nn.Linear(24, 5))),
]))

# ---- tiny_all: every kind together, in AlexNet-2012 order.
net("tiny_all", 2, """\
# Every layer kind in one small net, AlexNet-2012 style.
net tiny_all
input 3 13 13

features
  conv 4 k5 s2 p2                # features.0: 4x7x7
  relu                           # features.1
  lrn 5 alpha1e-4 beta0.75 k2    # features.2: window wider than half the channels
  maxpool k3 s2                  # features.3: 4x3x3, overlapping
  conv 8 k3 p1 g2                # features.4: 8x3x3, grouped
  batchnorm                      # features.5
  relu                           # features.6
avgpool 2                        # 8x2x2: 3->2, overlapping windows
classifier
  dropout 0.5                    # classifier.0
  linear 10                      # classifier.1
  relu                           # classifier.2
  dropout 0.5                    # classifier.3
  linear 5                       # classifier.4
""", lambda: Net([
    ("features", seq(
        nn.Conv2d(3, 4, 5, stride=2, padding=2),
        relu(),
        nn.LocalResponseNorm(5, 1e-4, 0.75, 2),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(4, 8, 3, padding=1, groups=2),
        nn.BatchNorm2d(8),
        relu(),
    )),
    ("avgpool", nn.AdaptiveAvgPool2d((2, 2))),
    ("flatten", nn.Flatten(1)),
    ("classifier", seq(
        MaskedDropout(0.5),
        nn.Linear(32, 10),
        relu(),
        MaskedDropout(0.5),
        nn.Linear(10, 5),
    )),
]))


def tensor(t):
    t = t.detach()
    if t.dtype != torch.float64:
        t = t.to(torch.float64)
    return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}


def randomize_bn(model, g):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(c, generator=g, dtype=torch.float64))
                m.bias.copy_(0.3 * torch.randn(c, generator=g, dtype=torch.float64))
                m.running_mean.copy_(0.5 * torch.randn(c, generator=g, dtype=torch.float64))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g, dtype=torch.float64))
                m.num_batches_tracked.fill_(7)


def leaf_modules(model):
    return [(n, m) for n, m in model.named_modules() if n and not list(m.children())]


def run_mode(model, state0, x, labels, train, g):
    model.load_state_dict(state0)
    model.train(train)

    outputs = {}
    inputs_shape = {}
    hooks = []
    for name, mod in leaf_modules(model):
        def hook(mod, inp, out, name=name):
            outputs[name] = out
            inputs_shape[name] = inp[0].shape
        hooks.append(mod.register_forward_hook(hook))

    # Dropout masks: drawn before the forward pass, in the shape of each dropout
    # layer's input, which a dry run (without masks, in eval mode) tells us.
    masks = {}
    dropouts = [(n, m) for n, m in leaf_modules(model) if isinstance(m, MaskedDropout)]
    if train and dropouts:
        model.eval()
        with torch.no_grad():
            model(x)
        model.train()
        for name, mod in dropouts:
            shape = inputs_shape[name]
            mask = (torch.rand(shape, generator=g, dtype=torch.float64) >= mod.p).to(torch.float64)
            mod.mask = mask
            masks[name] = [int(v) for v in mask.reshape(-1).tolist()]
        # The dry run ran in eval mode: put the state back for the real pass.
        model.load_state_dict(state0)
        model.train()
    outputs.clear()

    xi = x.clone().requires_grad_(True)
    logits = model(xi)
    loss = F.cross_entropy(logits, labels)
    for h in hooks:
        h.remove()

    names = list(outputs)
    params = list(model.named_parameters())
    grads = torch.autograd.grad(
        loss, [xi] + [outputs[n] for n in names] + [p for _, p in params])
    g_in, g_out, g_par = grads[0], grads[1:1 + len(names)], grads[1 + len(names):]

    after = model.state_dict()
    return {
        "input": tensor(x),
        "labels": labels.tolist(),
        "masks": masks,
        "state": {k: tensor(v) for k, v in state0.items()},
        "order": names,
        "outputs": {n: tensor(outputs[n]) for n in names},
        "logits": tensor(logits),
        "loss": loss.item(),
        "grad_input": tensor(g_in),
        "grad_outputs": {n: tensor(t) for n, t in zip(names, g_out)},
        "grad_params": {n: tensor(t) for (n, _), t in zip(params, g_par)},
        "buffers_after": {k: tensor(v) for k, v in after.items()
                          if k.endswith(".running_mean") or k.endswith(".running_var")},
    }


def parse_input_line(spec):
    for line in spec.splitlines():
        f = line.split("#")[0].split()
        if f and f[0] == "input":
            return [int(v) for v in f[1:4]]
    raise ValueError("no input line")


def main():
    torch.set_default_dtype(torch.float64)
    for i, d in enumerate(NETS):
        name = d["name"]
        torch.manual_seed(1000 + i)
        g = torch.Generator().manual_seed(2000 + i)
        model = d["build"]().double()
        randomize_bn(model, g)
        state0 = {k: v.clone() for k, v in model.state_dict().items()}

        n = d["batch"]
        chw = parse_input_line(d["spec"])
        x = torch.randn([n] + chw, generator=g, dtype=torch.float64)
        if d["input_fn"]:
            x = d["input_fn"](x)
        with torch.no_grad():
            classes = model.eval()(x).shape[1]
        labels = torch.randint(0, classes, (n,), generator=g)

        modes = {}
        for mode in ("eval", "train"):
            modes[mode] = run_mode(model, state0, x, labels, mode == "train", g)

        doc = {
            "name": name,
            "spec": name + ".cnn",
            "torch_version": torch.__version__,
            "batch": n,
            "modes": modes,
        }
        with open(os.path.join(HERE, name + ".cnn"), "w") as f:
            f.write(d["spec"])
        path = os.path.join(HERE, name + ".json")
        with open(path, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print("%-14s %8d bytes" % (name + ".json", os.path.getsize(path)))


if __name__ == "__main__":
    main()
