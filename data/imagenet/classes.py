#!/usr/bin/python3
"""Writes classes.txt: the 1000 ImageNet-1k class names, one a line, in class order.

The names are torchvision's (the meta["categories"] of every ImageNet weight enum,
e.g. AlexNet_Weights.IMAGENET1K_V1, kept in torchvision.models._meta), so index i of
the file is output i of a torchvision ImageNet classifier. Run it with Debian's
interpreter and torchvision (apt-get install -y python3-torchvision), from this
directory:

    /usr/bin/python3 classes.py
"""

import torchvision
from torchvision.models import AlexNet_Weights
from torchvision.models._meta import _IMAGENET_CATEGORIES

names = AlexNet_Weights.IMAGENET1K_V1.meta["categories"]
assert names == _IMAGENET_CATEGORIES
assert len(names) == 1000 and len(set(names)) == 1000, "expected 1000 distinct names"
assert all(n and n == n.strip() and "\n" not in n for n in names)

with open("classes.txt", "w", encoding="utf-8") as f:
    for n in names:
        f.write(n + "\n")
print(f"wrote classes.txt: {len(names)} names from torchvision {torchvision.__version__}")
