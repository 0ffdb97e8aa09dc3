#!/usr/bin/env python3
"""The reference input pipeline: torchvision ImageFolder + DataLoader with the same
transforms as the runner's imagefolder dataflow (RandomResizedCrop(224) + horizontal
flip + ToTensor + Normalize), on the same files. One warm-up batch, then the epoch.
    /opt/runner/venv-torch2.11.0/bin/python tools/bench/torchvision_loader.py ROOT/train [--workers 1] [--batch 64]
Run it with the project venv's python (torchvision 0.26)."""
import argparse
import time

import torch
from torchvision import datasets, transforms

p = argparse.ArgumentParser()
p.add_argument("train_dir")
p.add_argument("--workers", type=int, default=1)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--size", type=int, default=224)
a = p.parse_args()
torch.set_num_threads(1)
tf = transforms.Compose([
    transforms.RandomResizedCrop(a.size),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])
ds = datasets.ImageFolder(a.train_dir, tf)
dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers, drop_last=True)
it = iter(dl)
next(it)  # warm-up: workers started
t0 = time.perf_counter()
n = 0
for x, y in it:
    n += x.shape[0]
s = time.perf_counter() - t0
print(f"torchvision: {a.workers} worker process(es), batch {a.batch} | {n} images in {s:.2f} s = {n / s:.1f} images/s")
