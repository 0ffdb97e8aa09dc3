"""The plain-PyTorch reference of runner's recipe benchmark (issue 17), on real Fashion-MNIST.

Recipe (runner: tools/bench/recipe_*.yaml): batch 128 (last partial batch kept), train-time
random crop with zero padding 2 + random horizontal flip, normalisation (x/255 - 0.2860) / 0.3530,
SGD Nesterov momentum 0.9 lr 0.1 weight decay 5e-4, cross entropy, LR per iteration: linear
0 -> 0.1 over the first epoch, then linear to 0 at the end of epoch 3; 3 epochs; test accuracy
on the 10,000 test images after every epoch (runner's configs validate every epoch too).
Models: `resnet8` (runner's, the class from reference_train.py) and `mlp` (784-512-512-10, ReLU).
Prints one line:
    reference <model> <amp> wall_s=<process wall incl. imports and data loading> train_s=<...> test_acc=<...>
Run it with the project venv's python (same torch as runner's LibTorch):
    /opt/runner/venv-torch2.11.0/bin/python tools/bench/reference_recipe.py --model resnet8 [--amp bf16]

wall_s is measured from before `import torch` (interpreter start-up is not in it; vs_pytorch.sh
times the whole process from outside); train_s is the training loop including the per-epoch
test evaluations.

Settings (the defaults), the fastest plain PyTorch found on this machine (AMD EPYC, 2 cores,
avx512_bf16, torch 2.11.0 from the project venv):
  * threads: torch's default, which is 2 here (= torch.set_num_threads(2); `--threads`);
  * no DataLoader: augmentation on whole uint8 batches with torch ops in the training process
    (`--workers 0`; `--workers N` runs the same batch augmentation in N DataLoader workers);
  * channels_last for resnet8 (model and every batch; `--channels-last 0` turns it off);
  * on a GPU (`--device cuda`): the whole data set on the GPU and the same batch augmentation
    there, cuDNN autotuning on (runner autotunes too), no host read but the per-epoch accuracy;
  * no torch.compile (not "plain"; its compile time would also count in the whole-process wall);
  * glibc malloc keeping freed memory, as runner does (`--malloc kept`, two mallopt calls through
    ctypes before torch loads; `--malloc glibc` for glibc's defaults). Measured after runner's
    page-fault fix, one run each: resnet8 fp32 1 epoch train_s 18.49 s with glibc's defaults
    (2.57 M minor page faults, 4.3 s system time) against 16.58 s kept (0.77 M, 1.5 s).
Measured, one run each in one sitting, one after the other (noise here is about +-20%), train_s:
  resnet8 fp32, 1 epoch (469 steps + test):   workers 0 + NCHW 38.9 s | workers 0 + channels_last 19.6 s
                                               workers 1 + NCHW 25.1 s | workers 1 + channels_last 19.6 s
                                               threads 1 + workers 1 + NCHW 41.3 s
  resnet8 bf16, 1 epoch:                       workers 0 + NCHW 14.5 s | workers 0 + channels_last 12.5 s
  mlp fp32, 3 epochs (two rounds):             workers 0  4.70 / 4.27 s | workers 1  7.60 / 6.91 s
                                               threads 1 + workers 1  8.38 / 8.51 s
So channels_last halves resnet8's step (oneDNN's NHWC kernels); a loader worker ties with inline
augmentation once channels_last is on and costs the mlp 60% (the worker takes a core from the
2-thread GEMMs and batches go through shared memory), so the reference has none.
"""
import time

_T0 = time.perf_counter()  # before the torch import: wall_s counts imports too

import ctypes
import sys


def keep_freed_memory():
    """glibc malloc as runner sets it (runner/src/util/system.cpp): blocks up to 32 MB from the
    heap, no trimming, so freed activations are reused instead of unmapped and faulted back in
    every step. Plain PyTorch can do it too, so the reference does (`--malloc glibc` turns it off)."""
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    assert libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1


if "--malloc" not in sys.argv or sys.argv[sys.argv.index("--malloc") + 1] != "glibc":
    keep_freed_memory()  # before torch allocates anything

import argparse
import gzip
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from reference_train import ResNet8

ROOT = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530
PAD = 2


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4)
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(*dims).copy())


def load(root):
    return (read_idx(f"{root}/train-images-idx3-ubyte.gz"), read_idx(f"{root}/train-labels-idx1-ubyte.gz").long(),
            read_idx(f"{root}/t10k-images-idx3-ubyte.gz"), read_idx(f"{root}/t10k-labels-idx1-ubyte.gz").long())


class Augment:
    """Crop+flip+normalise on a whole uint8 batch [B, 28, 28] with torch ops (no per-sample loop)."""

    def __init__(self, h=28, w=28, device="cpu"):
        self.h, self.w, self.device = h, w, device
        self.ar_h = torch.arange(h, device=device)
        self.ar_w = torch.arange(w, device=device)
        self.lut = ((torch.arange(256, dtype=torch.float32) / 255 - MEAN) / STD).to(device)

    def __call__(self, x, gen=None):
        b, dev = x.shape[0], self.device
        padded = F.pad(x, (PAD, PAD, PAD, PAD))  # zero bytes, as runner's fill 0
        dy = torch.randint(0, 2 * PAD + 1, (b, 1), generator=gen, device=dev)
        dx = torch.randint(0, 2 * PAD + 1, (b, 1), generator=gen, device=dev)
        flip = torch.rand(b, 1, generator=gen, device=dev) < 0.5
        rows = dy + self.ar_h                                              # [B, H]
        cols = dx + torch.where(flip, self.w - 1 - self.ar_w, self.ar_w)   # [B, W]
        out = padded[torch.arange(b, device=dev)[:, None, None], rows[:, :, None], cols[:, None, :]]
        return self.lut[out.long()].unsqueeze(1)                           # [B, 1, H, W] float


def normalise(x):
    return ((x.float() / 255 - MEAN) / STD).unsqueeze(1)


class BatchSet(torch.utils.data.Dataset):
    """For the DataLoader variant: __getitem__ gets a whole batch's indices (BatchSampler)."""

    def __init__(self, images, labels):
        self.images, self.labels, self.aug = images, labels, Augment()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        idx = torch.as_tensor(idx)
        return self.aug(self.images[idx]), self.labels[idx]


def batches_inline(images, labels, batch, aug):
    perm = torch.randperm(len(images), device=images.device)
    for i in range(0, len(images), batch):
        idx = perm[i:i + batch]
        yield aug(images[idx]), labels[idx]


def make_model(name):
    if name == "resnet8":
        return ResNet8()
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, 10))
    raise SystemExit(f"unknown model {name}")


@torch.no_grad()
def evaluate(model, images, labels, amp, channels_last, batch=1000):
    model.eval()
    correct = 0
    for i in range(0, len(images), batch):
        x = normalise(images[i:i + batch])
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            correct += (model(x).argmax(1) == labels[i:i + batch]).sum().item()
    model.train()
    return correct / len(images)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet8", choices=["resnet8", "mlp"])
    ap.add_argument("--amp", default="none", choices=["none", "bf16"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0: leave torch's default")
    ap.add_argument("--workers", type=int, default=0,
                    help="0: augment whole batches inline; N: a DataLoader with N workers doing the same")
    ap.add_argument("--channels-last", type=int, default=1, choices=[0, 1], help="resnet8 only")
    ap.add_argument("--eval-every-epoch", type=int, default=1, choices=[0, 1])
    ap.add_argument("--malloc", default="kept", choices=["kept", "glibc"],
                    help="kept: glibc malloc keeps freed memory (as runner); glibc: its defaults")
    ap.add_argument("--seed", type=int, default=543)
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="cuda: the whole data set on the GPU, augmented there, cuDNN autotuning on")
    ap.add_argument("--fused", type=int, default=0, choices=[0, 1],
                    help="torch.optim.SGD(fused=True): one fused kernel (runner's optimizer.fused: true)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr, xte, yte = (t.to(a.device) for t in load(a.root))
    if a.device == "cuda":
        torch.backends.cudnn.benchmark = True  # runner autotunes too unless deterministic
    model = make_model(a.model).to(a.device)
    cl = bool(a.channels_last) and a.model == "resnet8"
    if cl:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=True, weight_decay=5e-4,
                          fused=bool(a.fused) or None)
    steps_per_epoch = (len(xtr) + a.batch - 1) // a.batch
    total = steps_per_epoch * a.epochs

    def lr_at(it):  # piecewise linear [[0, 0], [1ep, lr], [Nep, 0]], per iteration
        if it < steps_per_epoch:
            return a.lr * it / steps_per_epoch
        return a.lr * max(0.0, (total - it) / (total - steps_per_epoch))

    aug = Augment(device=a.device)
    if a.workers and a.device == "cuda":
        raise SystemExit("--workers needs --device cpu (on cuda the data set and its augmentation live on the GPU)")
    if a.workers:
        loader = torch.utils.data.DataLoader(
            BatchSet(xtr, ytr), batch_size=None, num_workers=a.workers, persistent_workers=True,
            sampler=torch.utils.data.BatchSampler(torch.utils.data.RandomSampler(xtr), a.batch, drop_last=False),
            worker_init_fn=lambda _: torch.set_num_threads(1))
    it = 0
    acc = float("nan")
    start = time.perf_counter()
    for epoch in range(a.epochs):
        for x, y in (loader if a.workers else batches_inline(xtr, ytr, a.batch, aug)):
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            for g in opt.param_groups:
                g["lr"] = lr_at(it)
            with torch.autocast(a.device, dtype=torch.bfloat16, enabled=a.amp == "bf16"):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
        if a.eval_every_epoch or epoch == a.epochs - 1:
            acc = evaluate(model, xte, yte, a.amp, cl)
            print(f"epoch {epoch + 1}: loss {loss.item():.4f} test accuracy {acc:.4f} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    if a.device == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - start
    print(f"reference {a.model} {a.amp} wall_s={time.perf_counter() - _T0:.2f} train_s={train_s:.2f} "
          f"test_acc={acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
