"""Writes conv_model.safetensors and conv_values.safetensors, the PyTorch
reference of nn's convolution and pooling tests (nn/conv_torch_test.go).

conv_model.safetensors is the state_dict of a small torch.nn.Sequential of
every convolutional layer; conv_values.safetensors holds an input, the
model's output, the gradients of a weighted sum of it with respect to the
input and every parameter, and single layers at further sizes.

    /usr/bin/python3 nn/testdata/conv_gen.py nn/testdata
"""
import json
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def save(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(torch.float32)
        b = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def model():
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(6, 8, 3, stride=2, padding=2, dilation=2, groups=2),
        nn.AvgPool2d(3, 1, 1),
        nn.Conv2d(8, 4, 1, bias=False),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 5),
    )


def main(out):
    torch.manual_seed(12)
    m = model()
    x = torch.randn(2, 3, 13, 11, requires_grad=True)
    y = m(x)
    wts = torch.randn(y.shape)
    (y * wts).sum().backward()
    save(out + "/conv_model.safetensors", m.state_dict())
    v = {"input": x, "output": y, "weights": wts, "grad.input": x.grad}
    for name, p in m.named_parameters():
        v["grad." + name] = p.grad
    # Single layers at further sizes: batch 1, 1 channel, stride 3,
    # overlapping max pooling with padding, non-divisible adaptive pooling.
    a = torch.randn(1, 1, 10, 7)
    w = torch.randn(2, 1, 4, 4)
    b = torch.randn(2)
    v["a"], v["a.w"], v["a.b"] = a, w, b
    v["a.conv"] = F.conv2d(a, w, b, stride=3, padding=2)
    v["a.max"] = F.max_pool2d(a, 3, 1, 1)
    v["a.avg"] = F.avg_pool2d(a, 4, 3, 2)
    v["a.adaptive3"] = F.adaptive_avg_pool2d(a, 3)
    save(out + "/conv_values.safetensors", v)
    print("torch", torch.__version__)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "nn/testdata")
