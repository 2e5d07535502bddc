#!/usr/bin/python3
"""Writes batchnorm_torch.safetensors and batchnorm_state.safetensors, the
PyTorch references of nn's BatchNorm tests:

    /usr/bin/python3 nn/testdata/batchnorm_gen.py

batchnorm_torch.safetensors holds, for each case (bn1d2: BatchNorm1d(3) on
[6, 3]; bn1d3: BatchNorm1d(4) on [3, 4, 5]; bn2d: BatchNorm2d(3) on
[4, 3, 5, 6]; bn2d1: BatchNorm2d(2) on [1, 2, 3, 3]), the initial weight and
bias (random, so that the affine map is tested), then for each of three
training steps s the input x.s, the output y.s, the upstream gradient r.s,
the gradients gx.s, gw.s and gb.s of sum(y.s * r.s), and the buffers
running_mean.s, running_var.s and num_batches_tracked.s after the step; last,
an evaluation input xe and its output ye.

batchnorm_state.safetensors is the state_dict of torch.nn.Sequential(
BatchNorm2d(3), ReLU(), Flatten(2), BatchNorm1d(3)) after two training
steps, as PyTorch writes it (num_batches_tracked an int64 scalar); an
evaluation input of [5, 3, 2, 4] and its output are seq.xe and seq.ye in
batchnorm_torch.safetensors.

Safetensors is written by hand (Debian has no python3-safetensors).
"""
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def write(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype == torch.int64:
            dtype, raw = "I64", t.numpy().astype("<i8").tobytes()
        else:
            dtype, raw = "F32", t.detach().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    torch.manual_seed(12)
    out = {}
    cases = [("bn1d2", torch.nn.BatchNorm1d(3), (6, 3)), ("bn1d3", torch.nn.BatchNorm1d(4), (3, 4, 5)),
             ("bn2d", torch.nn.BatchNorm2d(3), (4, 3, 5, 6)), ("bn2d1", torch.nn.BatchNorm2d(2), (1, 2, 3, 3))]
    for name, m, shape in cases:
        with torch.no_grad():
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
        out[f"{name}.weight"] = m.weight.detach().clone()
        out[f"{name}.bias"] = m.bias.detach().clone()
        m.train()
        for s in range(3):
            x = (torch.randn(shape) * (1 + s) + 2 * s - 1).requires_grad_(True)
            r = torch.randn(shape)
            m.zero_grad()
            y = m(x)
            (y * r).sum().backward()
            for k, v in [("x", x), ("y", y), ("r", r), ("gx", x.grad), ("gw", m.weight.grad), ("gb", m.bias.grad),
                         ("running_mean", m.running_mean), ("running_var", m.running_var),
                         ("num_batches_tracked", m.num_batches_tracked)]:
                out[f"{name}.{k}.{s}"] = v.detach().clone()
        m.eval()
        xe = torch.randn(shape) * 2 + 0.5
        out[f"{name}.xe"] = xe
        out[f"{name}.ye"] = m(xe).detach()

    seq = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.ReLU(), torch.nn.Flatten(2), torch.nn.BatchNorm1d(3))
    seq.train()
    for _ in range(2):
        seq(torch.randn(5, 3, 2, 4) + 1)
    seq.eval()
    xe = torch.randn(5, 3, 2, 4)
    out["seq.xe"] = xe
    out["seq.ye"] = seq(xe).detach()
    write(os.path.join(HERE, "batchnorm_torch.safetensors"), out)
    write(os.path.join(HERE, "batchnorm_state.safetensors"), {k: v.detach() for k, v in seq.state_dict().items()})


if __name__ == "__main__":
    main()
