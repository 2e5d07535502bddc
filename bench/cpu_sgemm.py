#!/usr/bin/python3
"""NumPy and PyTorch float32 matrix products on the CPU (OpenBLAS), at the
products that bench/cpugemm times for gograd: the eight products of an MLP
784-512-256-10 training step on a batch of 128, stored as gograd stores
them (a transposed operand is a transposed view), and square sizes.

Each figure is the median of --reps timed batches of about --batch seconds,
after a warm-up batch. Prints one line per library and product:
    gemm numpy <name> <gflops>
    gemm torch <name> <gflops>
and the step's eight products back to back as step_all_8. Run it with
Debian's Python (/usr/bin/python3), where python3-torch lives.
"""
import argparse
import os
import statistics
import time

import numpy as np
import torch

PRODUCTS = [  # name, m, k, n, transA, transB (as bench/cpugemm)
    ("fc1_fwd_128x784x512_NT", 128, 784, 512, False, True),
    ("fc1_dW_512x128x784_TN", 512, 128, 784, True, False),
    ("fc2_fwd_128x512x256_NT", 128, 512, 256, False, True),
    ("fc2_dW_256x128x512_TN", 256, 128, 512, True, False),
    ("fc2_dx_128x256x512_NN", 128, 256, 512, False, False),
    ("fc3_fwd_128x256x10_NT", 128, 256, 10, False, True),
    ("fc3_dW_10x128x256_TN", 10, 128, 256, True, False),
    ("fc3_dx_128x10x256_NN", 128, 10, 256, False, False),
    ("square_512", 512, 512, 512, False, False),
    ("square_1024", 1024, 1024, 1024, False, False),
    ("square_2048", 2048, 2048, 2048, False, False),
]
STEP = 8  # the first eight products make up a training step


def measure(fn, reps, batch):
    """Median calls per second over reps batches of about batch seconds."""
    n, t0 = 0, time.perf_counter()
    while n < 10 or time.perf_counter() - t0 < batch / 2:
        fn()
        n += 1
    per = (time.perf_counter() - t0) / n
    calls = max(1, int(batch / per))
    rates = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        rates.append(calls / (time.perf_counter() - t))
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=float, default=0.2)
    args = ap.parse_args()
    print("# torch %s numpy %s | intra-op threads %d | OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s"
          % (torch.__version__, np.__version__, torch.get_num_threads(),
             os.environ.get("OPENBLAS_CORETYPE"), os.environ.get("OPENBLAS_L2_SIZE")))
    rng = np.random.default_rng(1)
    ops = []
    for name, m, k, n, ta, tb in PRODUCTS:
        a = (rng.random((k, m) if ta else (m, k), dtype=np.float32) * 2 - 1)
        b = (rng.random((n, k) if tb else (k, n), dtype=np.float32) * 2 - 1)
        a, b = (a.T if ta else a), (b.T if tb else b)
        ops.append((name, 2.0 * m * k * n, a, b, np.empty((m, n), np.float32),
                    torch.from_numpy(a.base if ta else a), torch.from_numpy(b.base if tb else b), ta, tb,
                    torch.empty((m, n))))

    def np_fn(o):
        return lambda: np.matmul(o[2], o[3], out=o[4])

    def torch_fn(o):
        ta_, tb_ = o[5].t() if o[7] else o[5], o[6].t() if o[8] else o[6]
        return lambda: torch.mm(ta_, tb_, out=o[9])

    with torch.no_grad():
        for lib, make in (("numpy", np_fn), ("torch", torch_fn)):
            fns = []
            for o in ops:
                fn = make(o)
                fns.append(fn)
                print("gemm %s %s %.1f" % (lib, o[0], measure(fn, args.reps, args.batch) * o[1] / 1e9), flush=True)
            step_flops = sum(o[1] for o in ops[:STEP])

            def step():
                for fn in fns[:STEP]:
                    fn()
            print("gemm %s step_all_8 %.1f" % (lib, measure(step, args.reps, args.batch) * step_flops / 1e9), flush=True)


if __name__ == "__main__":
    main()
