"""Times torch.nn.functional.conv2d forward and backward at the shapes of
gograd's cnn model (batch 128, 3x3, padding 1), as nn's BenchmarkConv2d
times gograd's, and prints PyTorch's BLAS and oneDNN configuration.

    /usr/bin/python3 bench/conv_torch.py [-reps 5] [-threads 0]
"""
import argparse
import time

import torch
import torch.nn.functional as F

SHAPES = [(1, 32, 28), (32, 32, 28), (32, 64, 14), (64, 64, 14)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-reps", type=int, default=5)
    ap.add_argument("-threads", type=int, default=0)
    ap.add_argument("-batch", type=int, default=128)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    print("torch", torch.__version__, "threads", torch.get_num_threads(),
          "mkldnn", torch.backends.mkldnn.is_available())
    print(torch.__config__.show())
    n = a.batch
    for cin, cout, hw in SHAPES:
        g = torch.Generator().manual_seed(1)
        x = torch.rand(n, cin, hw, hw, generator=g) * 2 - 1
        x.requires_grad_(cin > 1)  # the first layer's input is the data
        bound = 1 / (cin * 9) ** 0.5
        w = ((torch.rand(cout, cin, 3, 3, generator=g) * 2 - 1) * bound).requires_grad_()
        b = ((torch.rand(cout, generator=g) * 2 - 1) * bound).requires_grad_()

        def step():
            F.conv2d(x, w, b, padding=1).sum().backward()
            w.grad = b.grad = x.grad = None

        step()
        t0 = time.perf_counter()
        for _ in range(a.reps):
            step()
        dt = (time.perf_counter() - t0) / a.reps
        products = 3 if cin > 1 else 2
        flop = products * 2 * n * cout * hw * hw * cin * 9
        print(f"conv2d {cin}->{cout} {hw}x{hw}: {dt * 1e3:.1f} ms  {flop / dt / 1e9:.2f} GFLOP/s")


if __name__ == "__main__":
    main()
