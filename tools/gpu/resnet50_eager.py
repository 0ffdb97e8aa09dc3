"""PyTorch eager reference of check 5 of tools/gpu/check.sh: the training step of runner's
configs/synthetic_resnet50.yaml in plain PyTorch. torchvision's resnet50 (1000 classes),
SGD lr 0.1 momentum 0.9 weight decay 1e-4, cross entropy with label smoothing 0.1, bf16
autocast, channels_last, cuDNN autotuning on; synthetic batches made once, already on the
device (no input pipeline), the loss never read inside the loop. `--warmup` iterations, then
`--iters` timed ones between two synchronisations. Prints one line:
    eager images_per_second=<float> peak_memory_mb=<float> device=<name> batch=<n> iters=<n>
peak memory: torch.cuda.max_memory_allocated (what runner's peak_memory_mb reports on CUDA);
on the CPU (the dry run) the process's peak resident set.
    python3 tools/gpu/resnet50_eager.py                      # batch 256, 224x224, 20 + 50 on cuda
    python3 tools/gpu/resnet50_eager.py --device cpu --batch 4 --size 64 --warmup 2 --iters 3
"""
import argparse
import resource
import time

import torch
import torch.nn.functional as F
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=224, help="image height and width")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--amp", default="bf16", choices=["bf16", "none"])
    a = ap.parse_args()
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)

    model = torchvision.models.resnet50(num_classes=1000).to(dev, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    batches = [(torch.randn(a.batch, 3, a.size, a.size, device=dev).contiguous(memory_format=torch.channels_last),
                torch.randint(0, 1000, (a.batch,), device=dev)) for _ in range(4)]

    def step(i):
        x, y = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.amp == "bf16"):
            loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    for i in range(a.warmup):
        step(i)
    sync()
    start = time.perf_counter()
    for i in range(a.iters):
        loss = step(i)
    sync()
    elapsed = time.perf_counter() - start
    if not torch.isfinite(loss).item():
        raise SystemExit(f"eager: the loss is {loss.item()}")
    if cuda:
        peak_mb = torch.cuda.max_memory_allocated(dev) / 2**20
        name = torch.cuda.get_device_name(dev).replace(" ", "_")
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        name = "cpu"
    print(f"eager images_per_second={a.iters * a.batch / elapsed:.1f} peak_memory_mb={peak_mb:.1f} "
          f"device={name} batch={a.batch} iters={a.iters}")


if __name__ == "__main__":
    main()
