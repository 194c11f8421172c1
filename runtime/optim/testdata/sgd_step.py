"""One SGD step of spec/tiny.cnn in PyTorch, for runtime/optim's TestSGDStepMatchesPyTorch.

Run from the repository root with Debian's PyTorch 1.13:

    apt-get install -y python3-torch python3-torchvision
    /usr/bin/python3 runtime/optim/testdata/sgd_step.py

It loads runtime/weights/testdata/tiny.safetensors (the PyTorch-made weights of the
tiny net) into torch.nn's tiny net, runs a batch of 2 inputs given by a formula both
languages evaluate exactly (x[i] = ((i*7919) % 1000)/500 - 1, NCHW order) in
evaluation mode (dropout off, batch norm with running statistics, so no random mask
is involved), takes the mean cross-entropy against labels [3, 7], runs backward and one
torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=5e-4) step, and writes
sgd_step.json: {"loss", "logits", "params": {name: [values after the step]}}.
"""
import importlib.util
import json
import os

import torch

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "tinymake", os.path.join(here, "..", "..", "weights", "testdata", "make.py"))
tinymake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tinymake)

m = tinymake.Tiny()
sd = tinymake.read_safetensors(os.path.join(here, "..", "..", "weights", "testdata", "tiny.safetensors"))
m.load_state_dict(sd, strict=False)
m.eval()

n = 2
x = torch.tensor([((i * 7919) % 1000) / 500 - 1 for i in range(n * 3 * 23 * 23)], dtype=torch.float32).reshape(n, 3, 23, 23)
labels = torch.tensor([3, 7])
opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
opt.zero_grad()
logits = m(x)
loss = torch.nn.functional.cross_entropy(logits, labels)
loss.backward()
opt.step()

out = {
    "torch_version": torch.__version__,
    "loss": loss.item(),
    "logits": logits.detach().reshape(-1).tolist(),
    "params": {k: v.detach().reshape(-1).tolist() for k, v in m.named_parameters()},
}
with open(os.path.join(here, "sgd_step.json"), "w") as f:
    json.dump(out, f)
print("loss", out["loss"])
