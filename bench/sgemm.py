#!/usr/bin/env python3
"""cuBLAS SGEMM through torch.matmul, with TF32 off, at the sizes that the Go
benchmark BenchmarkCUDASgemm times: the square 4096 and 1024 products and the
products of an MLP 784-512-256-10 training step on a batch of 128.

Timing: CUDA events around batches of about 2 GFLOP, after warm-up, median
over --reps batches; inputs uniform in [-1, 1). Prints one parseable line per
size:
    sgemm torch MxKxN_TR tflops=T us=U
where TR is NN, TN or NT (a transposed operand is a transposed view, as the
Go side stores it) and us is the time of one product.
"""
import argparse
import statistics

import torch

CASES = [  # m, k, n, transA, transB (as BenchmarkCUDASgemm)
    (4096, 4096, 4096, False, False),
    (1024, 1024, 1024, False, False),
    (128, 784, 512, False, False),
    (784, 128, 512, True, False),
    (128, 512, 256, False, False),
    (128, 256, 512, False, True),
    (512, 128, 256, True, False),
    (128, 256, 10, False, False),
    (128, 10, 256, False, True),
    (256, 128, 10, True, False),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda")
    print("# torch %s, CUDA %s, %s, allow_tf32=%s" % (torch.__version__, torch.version.cuda,
          torch.cuda.get_device_name(0), torch.backends.cuda.matmul.allow_tf32))
    g = torch.Generator(device=dev).manual_seed(1)
    for m, k, n, ta, tb in CASES:
        # Stored as the Go side stores them: a is [k,m] when transposed.
        a = torch.rand((k, m) if ta else (m, k), device=dev, generator=g) * 2 - 1
        b = torch.rand((n, k) if tb else (k, n), device=dev, generator=g) * 2 - 1
        a = a.t() if ta else a
        b = b.t() if tb else b
        out = torch.empty((m, n), device=dev)
        flops = 2.0 * m * k * n
        inner = max(1, int(2e9 / flops))
        for _ in range(3):
            torch.matmul(a, b, out=out)
        torch.cuda.synchronize()
        times = []
        for _ in range(args.reps):
            start = torch.cuda.Event(enable_timing=True)
            stop = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                torch.matmul(a, b, out=out)
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop) / 1e3 / inner)
        t = statistics.median(times)
        tr = ("T" if ta else "N") + ("T" if tb else "N")
        print("sgemm torch %dx%dx%d_%s tflops=%.2f us=%.2f" % (m, k, n, tr, flops / t / 1e12, t * 1e6), flush=True)


if __name__ == "__main__":
    main()
