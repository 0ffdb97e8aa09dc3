"""This CPU's attainable matrix-multiply rate, the yardstick for profile:'s achieved GFLOP/s.

Times large square torch.mm (MKL for float32, oneDNN for bfloat16) on all of torch's threads and
prints the best of several sizes; achieved / this is the share of the machine a run uses (MFU).
    /opt/runner/venv-torch2.11.0/bin/python tools/bench/peak_gflops.py
"""
import time

import torch


def rate(n, dtype, reps):
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}")
    for dtype in (torch.float32, torch.bfloat16):
        best = max(rate(n, dtype, reps) for n, reps in ((1024, 20), (2048, 5), (4096, 2)))
        print(f"peak {str(dtype).replace('torch.', '')} matmul: {best:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
