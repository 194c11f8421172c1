#!/usr/bin/python3
"""Writes the fixtures that hold package imagenet's preprocessing to torchvision's.

Run it with Debian's interpreter, PyTorch, torchvision and Pillow, and libjpeg-turbo's
cjpeg for the one 4:4:0 file Pillow cannot write (apt-get install -y python3-torch
python3-torchvision python3-pil libjpeg-turbo-progs), from this directory:

    /usr/bin/python3 make.py

It draws a few synthetic images at odd sizes (gradients, a checkerboard with odd
cells, rings, thin lines, a band of noise; alpha and grey variants), saves them as
PNG and as JPEG (Pillow's libjpeg-turbo encoder at several qualities and chroma
subsamplings; cjpeg for 4:4:0), and runs each file through torchvision's ImageNet evaluation
transform, the way a PyTorch user does:

    img = PIL.Image.open(path).convert("RGB")
    x = Compose([Resize(256), CenterCrop(crop), ToTensor(),
                 Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])(img)

ToTensor divides 8-bit values by 255, so x is a function of the 8-bit image that
Resize and CenterCrop leave. That image is stored losslessly as NAME.want.png
(crop×crop RGB), after checking that ToTensor and Normalize of it give x bit for bit.
expect.json lists, per case: the input file, the crop, and the per-channel mean,
standard deviation, minimum and maximum of x computed by torch in float64, plus the
versions used. The Go test decodes the same input files, so JPEG decoding (Go's
image/jpeg against libjpeg-turbo) is part of what the JPEG cases measure.
"""

import hashlib
import json
import subprocess
import tempfile

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
ROW_STEP = 8  # NAME.want.png holds rows 0, 8, 16, ... of the crop


def synth(w, h, seed):
    """An RGB uint8 image of w×h with smooth and sharp content."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / (w - 1)
    g = 255 * y / (h - 1)
    b = 255 * (1 - (x + y) / (w + h - 2))
    img = np.stack([r, g, b], axis=-1)
    # A checkerboard of 7-pixel cells near the upper left corner.
    cb = ((x // 7 + y // 7) % 2 == 0) & (x < w / 3) & (y < h / 4)
    img[cb] = [240, 30, 60]
    # Rings around the centre.
    d = np.hypot(x - w * 0.6, y - h * 0.55)
    ring = (np.floor(d / 6) % 3 == 0) & (d < min(w, h) * 0.2)
    img[ring] = [20, 200, 90]
    # One-pixel lines, every 11 columns, in the lower left corner.
    lines = (x % 11 == 0) & (x < w / 3) & (y > h * 0.7)
    img[lines] = [255, 255, 255]
    # A patch of noise near the bottom right corner.
    patch = (x >= w * 0.7) & (x < w * 0.7 + 40) & (y >= h * 0.75) & (y < h * 0.75 + 24)
    img[patch] = rng.integers(0, 256, size=(int(patch.sum()), 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def tensor(path, crop):
    img = Image.open(path).convert("RGB")
    tf = T.Compose([T.Resize(256), T.CenterCrop(crop), T.ToTensor(), T.Normalize(MEAN, STD)])
    x = tf(img)
    # The 8-bit image behind x, checked to give x exactly.
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    u8 = torch.round((x * std + mean) * 255).clamp(0, 255).to(torch.uint8)
    again = T.Normalize(MEAN, STD)(T.ToTensor()(Image.fromarray(u8.permute(1, 2, 0).numpy(), "RGB")))
    assert torch.equal(again, x), path
    return x, u8


def main():
    cases = []
    a = synth(500, 375, 1)
    Image.fromarray(a).save("a_500x375.png")
    Image.fromarray(a).save("a_500x375_q90_420.jpg", quality=90, subsampling=2)
    b = synth(333, 500, 2)
    alpha = np.tile(np.linspace(0, 255, 333).astype(np.uint8), (500, 1))
    Image.fromarray(np.dstack([b, alpha]), "RGBA").save("b_333x500_rgba.png")
    Image.fromarray(b).save("b_333x500_q75_444.jpg", quality=75, subsampling=0)
    c = synth(427, 301, 3)
    Image.fromarray(c).save("c_427x301_q85_422.jpg", quality=85, subsampling=1)
    d = synth(150, 199, 4)
    Image.fromarray(d).convert("L").save("d_150x199_grey.png")
    Image.fromarray(d).convert("L").save("d_150x199_grey_q90.jpg", quality=90)
    with tempfile.NamedTemporaryFile(suffix=".ppm") as ppm, open("d_150x199_q85_440.jpg", "wb") as out:
        Image.fromarray(d).save(ppm.name)
        subprocess.run(["cjpeg", "-quality", "85", "-sample", "1x2", ppm.name], stdout=out, check=True)
    e = synth(263, 257, 5)
    Image.fromarray(e).save("e_263x257.png")

    for name, crop in [
        ("a_500x375.png", 224),
        ("a_500x375.png", 227),
        ("b_333x500_rgba.png", 224),
        ("d_150x199_grey.png", 224),
        ("e_263x257.png", 224),
        ("a_500x375_q90_420.jpg", 224),
        ("b_333x500_q75_444.jpg", 224),
        ("c_427x301_q85_422.jpg", 224),
        ("d_150x199_grey_q90.jpg", 224),
        ("d_150x199_q85_440.jpg", 224),
    ]:
        x, u8 = tensor(name, crop)
        want = f"{name.rsplit('.', 1)[0]}_{name.rsplit('.', 1)[1]}_{crop}.want.png"
        rows = u8[:, ::ROW_STEP, :].permute(1, 2, 0).numpy()
        Image.fromarray(np.ascontiguousarray(rows), "RGB").save(want, optimize=True)
        xd = x.double()
        cases.append({
            "input": name,
            "crop": crop,
            "want": want,
            "row_step": ROW_STEP,
            "sha256": hashlib.sha256(u8.permute(1, 2, 0).contiguous().numpy().tobytes()).hexdigest(),
            "mean": xd.mean(dim=(1, 2)).tolist(),
            "std": xd.std(dim=(1, 2), unbiased=False).tolist(),
            "min": xd.amin(dim=(1, 2)).tolist(),
            "max": xd.amax(dim=(1, 2)).tolist(),
        })

    with open("expect.json", "w") as f:
        json.dump({
            "made_by": "make.py",
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "pillow": PIL.__version__,
            "cases": cases,
        }, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
