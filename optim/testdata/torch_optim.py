#!/usr/bin/env python3
"""Writes torch_optim.json: torch.optim's trajectories for optim's tests.

Three parameter tensors take ten steps of fixed gradients. Parameter 0 has a
gradient on every step; parameter 1 first on step 3 and then on two steps of
three; parameter 2 on odd steps only (its gradient is None otherwise, so
torch.optim skips it). The gradients are large on the first steps and small
after, so that AMSGrad's maximum differs from the running estimate. For
each configuration the file holds the parameters after every step and the
final state_dict state, named "<i>.<key>" as optim.State names it.

Run it from this directory with PyTorch installed:

    python3 torch_optim.py
"""
import json

import numpy as np
import torch

STEPS = 10
SHAPES = [[5], [2, 3], [4]]


def active(step, i):
    if i == 0:
        return True
    if i == 1:
        return step >= 2 and step % 3 != 1
    return step % 2 == 1


CONFIGS = [
    {"name": "sgd", "optimizer": "sgd", "lr": 0.1},
    {"name": "sgd momentum dampening", "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "dampening": 0.3},
    {"name": "sgd nesterov weight decay", "optimizer": "sgd", "lr": 0.05, "momentum": 0.8, "weight_decay": 0.1, "nesterov": True},
    {"name": "sgd maximize", "optimizer": "sgd", "lr": 0.1, "maximize": True},
    {"name": "sgd maximize momentum weight decay", "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.1, "maximize": True},
    {"name": "adam", "optimizer": "adam", "lr": 0.05},
    {"name": "adam betas eps weight decay", "optimizer": "adam", "lr": 0.05, "betas": [0.8, 0.99], "eps": 1e-3, "weight_decay": 0.1},
    {"name": "adamw", "optimizer": "adamw", "lr": 0.05, "weight_decay": 0.1},
    {"name": "adam amsgrad", "optimizer": "adam", "lr": 0.05, "amsgrad": True},
    {"name": "adam amsgrad betas weight decay", "optimizer": "adam", "lr": 0.05, "betas": [0.9, 0.9], "weight_decay": 0.1, "amsgrad": True},
    {"name": "adamw amsgrad", "optimizer": "adamw", "lr": 0.05, "weight_decay": 0.1, "amsgrad": True},
    {"name": "adam maximize", "optimizer": "adam", "lr": 0.05, "weight_decay": 0.1, "maximize": True},
    {"name": "adamw maximize", "optimizer": "adamw", "lr": 0.05, "weight_decay": 0.1, "maximize": True},
    {"name": "adamw amsgrad maximize", "optimizer": "adamw", "lr": 0.05, "betas": [0.5, 0.9], "weight_decay": 0.1, "amsgrad": True, "maximize": True},
]


def optimizer(params, c):
    kw = {"lr": c["lr"], "weight_decay": c.get("weight_decay", 0.0), "maximize": c.get("maximize", False)}
    if c["optimizer"] == "sgd":
        return torch.optim.SGD(params, momentum=c.get("momentum", 0.0), dampening=c.get("dampening", 0.0),
                               nesterov=c.get("nesterov", False), **kw)
    cls = torch.optim.Adam if c["optimizer"] == "adam" else torch.optim.AdamW
    return cls(params, betas=tuple(c.get("betas", [0.9, 0.999])), eps=c.get("eps", 1e-8),
               amsgrad=c.get("amsgrad", False), foreach=False, **kw)


def main():
    rng = np.random.default_rng(7)
    init = [rng.uniform(-2, 2, size=s).astype(np.float32) for s in SHAPES]
    grads = []
    for step in range(STEPS):
        scale = 2.0 if step < 3 else 0.1
        grads.append([(rng.normal(size=s) * scale).astype(np.float32) if active(step, i) else None
                      for i, s in enumerate(SHAPES)])
    cases = []
    for c in CONFIGS:
        params = [torch.tensor(x.copy(), requires_grad=True) for x in init]
        opt = optimizer(params, c)
        traj = []
        for step in range(STEPS):
            for p, g in zip(params, grads[step]):
                p.grad = None if g is None else torch.tensor(g)
            opt.step()
            traj.append([p.detach().numpy().ravel().tolist() for p in params])
        state = {}
        for i, s in opt.state_dict()["state"].items():
            for k, v in s.items():
                if v is not None:
                    state[f"{i}.{k}"] = torch.as_tensor(v, dtype=torch.float32).numpy().ravel().tolist()
        cases.append(dict(c, params=traj, state=state))
    out = {
        "torch": torch.__version__,
        "shapes": SHAPES,
        "init": [x.ravel().tolist() for x in init],
        "grads": [[None if g is None else g.ravel().tolist() for g in gs] for gs in grads],
        "cases": cases,
    }
    with open("torch_optim.json", "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
