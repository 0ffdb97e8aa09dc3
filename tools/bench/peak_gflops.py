"""This CPU's attainable rates, the yardstick for profile:'s achieved GFLOP/s.

Times large square torch.mm (MKL for float32, oneDNN for bfloat16) over three sizes and a 3x3
convolution in NHWC (oneDNN; 32 x 256 x 28 x 28, 256 filters) on all of torch's threads, and
prints the best of each; runner's MFU divides by the higher of the two, as here. On this
project's AMD CPU MKL's float32 GEMM takes an AVX2 path, so the convolution is the higher.
    /opt/runner/venv-torch2.11.0/bin/python tools/bench/peak_gflops.py
"""
import time

import torch


def timed(fn, flop, reps):
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return flop * reps / (time.perf_counter() - t) / 1e9


def matmul_rate(n, dtype, reps):
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return timed(lambda: torch.mm(a, b), 2 * n**3, reps)


def conv_rate(dtype, reps):
    x = torch.randn(32, 256, 28, 28).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).to(dtype).contiguous(memory_format=torch.channels_last)
    return timed(lambda: torch.conv2d(x, w, padding=1), 2 * 32 * 28 * 28 * 256 * 256 * 9, reps)


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}")
    with torch.no_grad():
        for dtype in (torch.float32, torch.bfloat16):
            mm = max(matmul_rate(n, dtype, reps) for n, reps in ((1024, 20), (2048, 5), (4096, 2)))
            conv = max(conv_rate(dtype, 5) for _ in range(2))
            name = str(dtype).replace("torch.", "")
            print(f"peak {name}: matmul {mm:.1f} GFLOP/s, 3x3 convolution {conv:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
