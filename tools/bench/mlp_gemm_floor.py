"""The float32 GEMM time of the mlp recipe (tools/bench/recipe_mlp.yaml: 784-512-512-10,
batch 128, 1,407 steps): the three forward addmm and the five backward mm of one training
step, on the venv's torch at 2 threads, best of 5 rounds of 200 steps. A lower bound for any
program that trains the recipe in float32 here (issue 17's mlp goal is 3x the reference's
whole-process time).
    /opt/runner/venv-torch2.11.0/bin/python tools/bench/mlp_gemm_floor.py [--threads N]
"""
import argparse
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=1407)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    b = 128
    x = torch.randn(b, 784)
    w1, w2, w3 = torch.randn(512, 784), torch.randn(512, 512), torch.randn(10, 512)
    b1, b2, b3 = torch.randn(512), torch.randn(512), torch.randn(10)
    h1, h2 = torch.randn(b, 512), torch.randn(b, 512)
    g1, g2, g3 = torch.randn(b, 512), torch.randn(b, 512), torch.randn(b, 10)

    def step():
        torch.addmm(b1, x, w1.t())  # forward
        torch.addmm(b2, h1, w2.t())
        torch.addmm(b3, h2, w3.t())
        torch.mm(g3, w3)  # layer 3: input gradient, weight gradient
        torch.mm(g3.t(), h2)
        torch.mm(g2, w2)  # layer 2
        torch.mm(g2.t(), h1)
        torch.mm(g1.t(), x)  # layer 1: weight gradient only

    for _ in range(50):
        step()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(200):
            step()
        best = min(best, (time.perf_counter() - t) / 200)
    flop = 2 * b * (784 * 512 + 512 * 512 + 512 * 10) * 3 - 2 * b * 784 * 512
    print(f"threads {args.threads}: {best * 1e3:.3f} ms per step ({flop / best / 1e9:.1f} GFLOP/s), "
          f"{best * args.steps:.2f} s for {args.steps} steps")


if __name__ == "__main__":
    main()
