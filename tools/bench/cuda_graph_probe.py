"""How much of a small model's training step on a GPU is the host launching kernels: the same
step timed eager and captured whole in one CUDA graph (forward, backward and the optimizer step,
as in PyTorch's "whole-network capture"), in PyTorch, for the issue-17 recipe's models.

Research for a CUDA-graph step in runner (issue 17, "On a GPU" in the README): resnet8 at batch
128 keeps an H200 busy 11-23% of a step, so a graph, which replays the step's kernels in one
launch, bounds what such a step could gain. Not a test; needs a CUDA GPU.

    python3 tools/bench/cuda_graph_probe.py [--steps 300] [--batch 128] [--model resnet8|mlp]

The step: channels_last (resnet8), cross entropy, SGD Nesterov momentum 0.9, weight decay 5e-4
with fused=True, synthetic inputs already on the GPU, cuDNN autotuning on; fp32 (TF32 off, as
runner's default) and bf16 autocast (its weight cache off, as capture needs). Prints ms per step
for eager and for the graph's replay, each the mean over --steps after a warm-up.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_train import ResNet8  # noqa: E402


def build(name, batch):
    if name == "resnet8":
        model = ResNet8().cuda().to(memory_format=torch.channels_last)
    else:
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                              nn.Linear(512, 10)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4, fused=True)
    x = torch.randn(batch, 1, 28, 28, device="cuda")
    if name == "resnet8":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device="cuda")
    return model, opt, x, y


def ms_per_call(fn, steps):
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps * 1e3


def probe(name, amp, batch, steps):
    model, opt, x, y = build(name, batch)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp, cache_enabled=False):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    def eager():
        opt.zero_grad(set_to_none=True)
        step()

    for _ in range(30):  # cuDNN autotuning, the optimizer's momentum buffers
        eager()
    eager_ms = ms_per_call(eager, steps)
    side = torch.cuda.Stream()  # warm-up on a side stream before capture, as PyTorch's docs do
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            eager()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)  # the backward in the graph allocates the grads from its pool
    with torch.cuda.graph(graph):
        loss = step()
    graph.replay()
    torch.cuda.synchronize()
    assert torch.isfinite(loss).item(), "the graph's loss is not finite"
    graph_ms = ms_per_call(graph.replay, steps)
    label = f"{name} {'bf16' if amp else 'fp32'} batch {batch}"
    print(f"{label}: eager {eager_ms:.3f} ms/step, CUDA graph {graph_ms:.3f} ms/step "
          f"({eager_ms / graph_ms:.2f}x); {steps} steps each", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--model", default="all", choices=["all", "resnet8", "mlp"])
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("cuda_graph_probe.py needs a CUDA GPU")
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}", flush=True)
    for name in (["resnet8", "mlp"] if a.model == "all" else [a.model]):
        for amp in (False, True):
            try:
                probe(name, amp, a.batch, a.steps)
            except Exception as e:  # one failed capture should not hide the other figures
                print(f"{name} {'bf16' if amp else 'fp32'}: failed: {type(e).__name__}: {str(e).splitlines()[0]}",
                      flush=True)


if __name__ == "__main__":
    main()
