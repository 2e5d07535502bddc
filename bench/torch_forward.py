#!/usr/bin/env python3
"""Inference of the MNIST MLP 784-512-256-10 (ReLU) in PyTorch eager on the
CPU: one forward pass and its softmax under torch.inference_mode, on 1 and
31 rows of random pixels, as gograd serve runs a lone request and a batched
pass. The peer of serve's BenchmarkForward; run both in the same minute:

    OPENBLAS_CORETYPE=SkylakeX python3 bench/torch_forward.py
    go test -run '^$' -bench Forward -benchtime 5000x ./serve

Prints, per thread count and number of rows, the median of 5 timings of
2000 passes each, in microseconds per pass:
    forward torch threads=T rows=R us_per_pass=U
"""
import statistics
import time

import torch


def main():
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10)).eval()
    for threads in (2, 1):
        torch.set_num_threads(threads)
        for rows in (1, 31):
            x = torch.rand(rows, 784)
            with torch.inference_mode():
                for _ in range(200):
                    torch.softmax(model(x), 1)
                times = []
                for _ in range(5):
                    t = time.perf_counter()
                    for _ in range(2000):
                        torch.softmax(model(x), 1)
                    times.append((time.perf_counter() - t) / 2000 * 1e6)
            print(f"forward torch threads={threads} rows={rows} us_per_pass={statistics.median(times):.1f}")


if __name__ == "__main__":
    main()
