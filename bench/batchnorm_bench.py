#!/usr/bin/python3
"""Times one forward and backward pass of torch.nn.functional.batch_norm in
training at the shapes of gograd's cnn model, on the CPU, to set beside

    go test ./device -run '^$' -bench BenchmarkBatchNorm -benchtime 50x

Usage: /usr/bin/python3 bench/batchnorm_bench.py [--reps 50] [--threads N]
It prints PyTorch's version and threads (by default as many as the CPUs
this process may run on, as Go's GOMAXPROCS), then the fastest and the
median ms per step for each shape, over --reps steps after 5 warm-up steps.
"""
import argparse
import os
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for n, c, h, w in [(128, 32, 28, 28), (128, 64, 14, 14)]:
        x = torch.randn(n, c, h, w, requires_grad=True)
        weight = torch.ones(c, requires_grad=True)
        bias = torch.zeros(c, requires_grad=True)
        rm, rv = torch.zeros(c), torch.ones(c)
        g = torch.randn(n, c, h, w)
        times = []
        for i in range(args.reps + 5):
            t = time.perf_counter()
            y = F.batch_norm(x, rm, rv, weight, bias, training=True, momentum=0.1, eps=1e-5)
            dx, dw, db = torch.autograd.grad(y, (x, weight, bias), g)
            if i >= 5:
                times.append(time.perf_counter() - t)
        times.sort()
        print(f"batch_norm {n}x{c}x{h}x{w}: forward+backward {1e3 * times[0]:.2f} ms fastest, "
              f"{1e3 * times[len(times) // 2]:.2f} ms median")


if __name__ == "__main__":
    main()
