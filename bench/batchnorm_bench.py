#!/usr/bin/python3
"""Times one forward and backward pass of torch.nn.functional.batch_norm in
training at the shapes of gograd's cnn model, on the CPU, to set beside

    go test ./device -run '^$' -bench BenchmarkBatchNorm -benchtime 50x

Usage: /usr/bin/python3 bench/batchnorm_bench.py [--reps 50]
It prints the threads and the BLAS PyTorch uses, then ms per step for each
shape (the median of --reps steps after 5 warm-up steps).
"""
import argparse
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
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
        print(f"batch_norm {n}x{c}x{h}x{w}: {1e3 * times[len(times) // 2]:.2f} ms forward+backward")


if __name__ == "__main__":
    main()
