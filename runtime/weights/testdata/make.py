#!/usr/bin/python3
"""Writes the PyTorch round-trip fixtures of package runtime/weights.

Run it with Debian's interpreter and PyTorch (apt-get install -y python3-torch),
from this directory:

    /usr/bin/python3 make.py            # (re)write the fixtures below
    /usr/bin/python3 make.py --check F  # check a safetensors file F (written by Go)
                                        # against tiny.pth

It builds the net of spec/tiny.cnn with torch.nn, so that its state_dict keys are
exactly the generated model's names (features.0.weight, ..., features.5.running_mean,
classifier.4.bias), gives it seeded random weights and batch-norm statistics, and
writes:

  tiny.pth               torch.save(model.state_dict(), "tiny.pth")   (zip prefix "tiny")
  tiny_f16.pth           the state_dict in float16, saved to an in-memory buffer
                         (zip prefix "archive")
  tiny.safetensors       F32, written by hand from the format (8-byte little-endian
                         header length, JSON header, raw little-endian data): Debian's
                         PyTorch 1.13 has no safetensors package
  tiny_f16.safetensors   F16
  tiny_bf16.safetensors  BF16
  tiny_expect.json       per variant and tensor: dtype, shape, the SHA-256 of the
                         values as little-endian float32 (after widening), the first
                         values and the float64 sum, all computed by PyTorch; and
                         the float32 model's logits (eval mode) for the input
                         x[i] = sin(i), i < 3·23·23, NCHW

num_batches_tracked (int64) is kept in every file, as torch.save writes it.
"""

import hashlib
import io
import json
import struct
import sys

import torch
import torch.nn as nn


class Tiny(nn.Module):
    """spec/tiny.cnn in torch.nn, named as torchvision names its modules."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=2, padding=1),               # features.0
            nn.ReLU(inplace=True),                                  # features.1
            nn.LocalResponseNorm(3, alpha=1e-2, beta=0.75, k=2.0),  # features.2
            nn.MaxPool2d(3, 2),                                     # features.3
            nn.Conv2d(8, 12, 3, padding=1, groups=2),               # features.4
            nn.BatchNorm2d(12),                                     # features.5
            nn.ReLU(inplace=True),                                  # features.6
        )
        self.avgpool = nn.AdaptiveAvgPool2d((3, 3))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),                                        # classifier.0
            nn.Linear(108, 32),                                     # classifier.1
            nn.ReLU(inplace=True),                                  # classifier.2
            nn.Dropout(0.25),                                       # classifier.3
            nn.Linear(32, 10),                                      # classifier.4
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64"}
ST_TORCH = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
            "I64": torch.int64}


def model():
    torch.manual_seed(20240531)
    m = Tiny()
    with torch.no_grad():
        bn = m.features[5]
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.num_batches_tracked.fill_(7)
    return m.eval()


def raw(t):
    """The tensor's bytes, little-endian, in its own dtype."""
    t = t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.float32:
        return t.numpy().astype("<f4").tobytes()
    if t.dtype == torch.int64:
        return t.numpy().astype("<i8").tobytes()
    raise ValueError(t.dtype)


def write_safetensors(path, sd):
    """The safetensors format by hand: header keys sorted (as the reference library
    writes them), data in state_dict order, header padded with spaces to 8 bytes."""
    header, data, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in sd.items():
        b = raw(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        data.append(b)
        off += len(b)
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        f.write(b"".join(data))


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(buf[8 + n + b:8 + n + end]),
                             dtype=ST_TORCH[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out


def expect(sd):
    out = {}
    for name, t in sd.items():
        e = {"dtype": DTYPES[t.dtype], "shape": list(t.shape)}
        if t.dtype != torch.int64:
            f = t.float().contiguous().flatten()
            e["sha256"] = hashlib.sha256(f.numpy().astype("<f4").tobytes()).hexdigest()
            e["first"] = f[:4].tolist()
            e["sum"] = f.double().sum().item()
        else:
            e["value"] = t.flatten().tolist()
        out[name] = e
    return out


def halve(sd, dtype):
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        want = torch.load("tiny.pth")
        got = read_safetensors(sys.argv[2])
        m = Tiny()
        # The Go writer keeps no num_batches_tracked: load non-strictly for it only.
        res = m.load_state_dict(got, strict=False)
        assert not res.unexpected_keys, res
        assert all(k.endswith("num_batches_tracked") for k in res.missing_keys), res
        for k, v in got.items():
            assert torch.equal(v, want[k]), k
        print("ok: %d tensors of %s equal tiny.pth" % (len(got), sys.argv[2]))
        return

    sd = model().state_dict()
    torch.save(sd, "tiny.pth")
    half = halve(sd, torch.float16)
    buf = io.BytesIO()
    torch.save(half, buf)  # zip prefix "archive"
    with open("tiny_f16.pth", "wb") as f:
        f.write(buf.getvalue())
    write_safetensors("tiny.safetensors", sd)
    write_safetensors("tiny_f16.safetensors", half)
    bf = halve(sd, torch.bfloat16)
    write_safetensors("tiny_bf16.safetensors", bf)

    # Read everything back with PyTorch before trusting it.
    assert list(torch.load("tiny.pth").keys()) == list(sd.keys())
    for path, ref in (("tiny.safetensors", sd), ("tiny_f16.safetensors", half),
                      ("tiny_bf16.safetensors", bf)):
        got = read_safetensors(path)
        for k, v in ref.items():
            assert torch.equal(got[k], v), (path, k)
    m = Tiny()
    m.load_state_dict(torch.load("tiny.pth"))
    m.eval()
    for k, v in torch.load("tiny_f16.pth").items():
        assert torch.equal(v, half[k]), k

    exp = {"F32": expect(sd), "F16": expect(half), "BF16": expect(bf)}
    x = torch.sin(torch.arange(3 * 23 * 23, dtype=torch.float64)).float()
    with torch.no_grad():
        exp["logits"] = m(x.reshape(1, 3, 23, 23)).flatten().tolist()
    with open("tiny_expect.json", "w") as f:
        json.dump(exp, f, indent=1, sort_keys=True)
        f.write("\n")
    w = sd["features.0.weight"]
    print("features.0.weight[0,0,0,:3] =", w[0, 0, 0, :3].tolist())
    print("classifier.4.bias =", sd["classifier.4.bias"].tolist())


if __name__ == "__main__":
    main()
