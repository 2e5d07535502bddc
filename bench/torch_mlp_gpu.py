#!/usr/bin/env python3
"""MNIST MLP 784-512-256-10 (ReLU) in PyTorch eager on the GPU: the protocol of
anchors/torch_mnist_mlp.py (pixels/255, softmax cross-entropy averaged over
the batch, SGD lr 0.05 momentum 0.9, batch 128 reshuffled every epoch from a
fixed seed, last partial batch dropped: 468 batches = 59904 samples, PyTorch's
default init, loss.item() every step, test accuracy after each epoch), with
the whole data set copied to the GPU once and each batch gathered there.

Epoch time is the training loop only, synchronised at its end; the first
epoch is reported but counted as warm-up. Prints a CSV row per epoch and one
parseable summary line:
    mlp torch samples_per_s=S epoch_s=E test_acc=A epochs=N
where S and E are the medians over the epochs after the first.
"""
import argparse
import gzip
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def load_idx(path):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    ndim = int.from_bytes(buf[0:4], "big") & 0xFF
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-batch", type=int, default=1000)
    ap.add_argument("--data", default=os.environ.get("MNIST_DIR", "data"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("torch_mlp_gpu.py: no CUDA device")
    dev = torch.device("cuda")
    torch.manual_seed(args.seed)

    d = args.data
    xtr = load_idx(os.path.join(d, "train-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255.0
    ytr = load_idx(os.path.join(d, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    xte = load_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255.0
    yte = load_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    Xtr, Ytr = torch.from_numpy(xtr).to(dev), torch.from_numpy(ytr).to(dev)
    Xte, Yte = torch.from_numpy(xte).to(dev), torch.from_numpy(yte).to(dev)
    print("# torch %s, CUDA %s, %s; data on the GPU: train %s test %s" % (
        torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), tuple(Xtr.shape), tuple(Xte.shape)))

    model = nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(),
        nn.Linear(512, 256), nn.ReLU(),
        nn.Linear(256, 10),
    ).to(dev)
    lossf = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    gen = torch.Generator().manual_seed(args.seed)
    n = Xtr.shape[0]
    nb = n // args.batch

    def evaluate():
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, Xte.shape[0], args.eval_batch):
                out = model(Xte[i:i + args.eval_batch])
                correct += (out.argmax(1) == Yte[i:i + args.eval_batch]).sum().item()
        model.train()
        return correct / Xte.shape[0]

    print("epoch,train_s,samples_per_s,train_loss,test_acc")
    rates, times, acc = [], [], 0.0
    for ep in range(1, args.epochs + 1):
        perm = torch.randperm(n, generator=gen).to(dev)
        tot = 0.0
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for b in range(nb):
            idx = perm[b * args.batch:(b + 1) * args.batch]
            xb, yb = Xtr[idx], Ytr[idx]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(xb), yb)
            loss.backward()
            opt.step()
            tot += loss.item()
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        acc = evaluate()
        rate = nb * args.batch / dt
        print("%d,%.3f,%.0f,%.4f,%.4f" % (ep, dt, rate, tot / nb, acc), flush=True)
        if ep > 1 or args.epochs == 1:
            rates.append(rate)
            times.append(dt)
    print("mlp torch samples_per_s=%.0f epoch_s=%.3f test_acc=%.4f epochs=%d" % (
        statistics.median(rates), statistics.median(times), acc, args.epochs))


if __name__ == "__main__":
    main()
