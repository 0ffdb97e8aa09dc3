"""The PyTorch reference of runner's synthetic training benchmarks: the same models (resnet8,
mlp 784-512-512-10, torchvision's ResNet-18), the same step (SGD Nesterov momentum 0.9, weight
decay 5e-4, cross entropy, optional bf16 autocast on the CPU, loss read every step), batch 128,
on random tensors made once before the loop (no input pipeline). Prints one line:
    reference <model> <amp> <samples/s of the training loop> <iterations>
Run it with the project venv's python (same torch as runner's LibTorch):
    /opt/runner/venv-torch2.11.0/bin/python tools/bench/reference_train.py --model resnet8 --iters 150
"""
import argparse
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        # ReLU and the residual add in place, as torchvision's ResNets (and runner's models) do
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)), inplace=True)))
        y += self.downsample(x) if self.downsample is not None else x
        return F.relu(y, inplace=True)


class ResNet8(nn.Module):
    """runner's resnet8 (plugins/models/resnet8.cpp): 16-32-64 channels, one block per stage."""

    def __init__(self, cin=1, classes=10, width=16):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = BasicBlock(width, width, 1)
        self.layer2 = BasicBlock(width, 2 * width, 2)
        self.layer3 = BasicBlock(2 * width, 4 * width, 2)
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def make(model):
    if model == "resnet8":
        return ResNet8(), (1, 28, 28)
    if model == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, 10)), (1, 28, 28)
    if model == "resnet18":
        import torchvision
        return torchvision.models.resnet18(num_classes=10), (3, 32, 32)
    raise SystemExit(f"unknown model {model}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet8", choices=["resnet8", "mlp", "resnet18"])
    ap.add_argument("--amp", default="none", choices=["none", "bf16"])
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="0: every core (os.sched_getaffinity)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads or len(os.sched_getaffinity(0)))
    torch.manual_seed(0)
    model, shape = make(a.model)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    batches = [(torch.randn(a.batch, *shape), torch.randint(0, 10, (a.batch,))) for _ in range(8)]
    start = time.perf_counter()
    for i in range(a.iters):
        x, y = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.amp == "bf16"):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
    elapsed = time.perf_counter() - start
    print(f"reference {a.model} {a.amp} {a.iters * a.batch / elapsed:.1f} {a.iters}")


if __name__ == "__main__":
    main()
