"""losskit's NumPy training loop against the same loop in PyTorch, side by side.

For each dataset: the same seeded split, the same standardisation (fitted on
the training rows), the same architecture with the same initial weights
(copied from losskit's seeded initialiser into torch), the same optimiser
(Adam, lr 1e-3, L2 weight decay 1e-4), the same mini-batch order and the same early stopping on
the validation loss. Only the arithmetic differs: losskit's losses and
hand-written backward passes in NumPy float64, against torch autograd in
float32.

It also checks the targets of the training issue on the default command
(`losskit train --dataset NAME`): digits >= 96% and breast_cancer >= 95%
test accuracy, each in under 30 s, and diabetes (MSE) test R² >= 0.45.

    python benchmarks/train_vs_torch.py                 # all three datasets
    python benchmarks/train_vs_torch.py --datasets digits --seeds 0,1,2

Exit status 1 when a target is missed. Never run as a test.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from losskit.train import MLP, Adam, Objective, Standardizer, fit, load_builtin, split
from losskit.train.fit import r2_score
from losskit.train.pipeline import (
    DEFAULT_HIDDEN,
    DEFAULT_WEIGHT_DECAY,
    blas_threads_for,
    train_model,
)

TARGETS = {
    "digits": ("accuracy", 0.96),
    "breast_cancer": ("accuracy", 0.95),
    "diabetes": ("r2", 0.45),
}
TIME_LIMIT_S = 30.0


def _prepare(name: str, seed: int):
    ds = load_builtin(name)
    parts = split(ds, seed=seed)
    xs = Standardizer().fit(parts.X_train)
    X = {k: xs.transform(x) for k, (x, _) in parts.parts().items()}
    y = {k: t for k, (_, t) in parts.parts().items()}
    if ds.task == "regression":
        ys = Standardizer().fit(parts.y_train)
        y = {k: ys.transform(t) for k, t in y.items()}
    return ds, X, y


def run_losskit(name: str, seed: int, epochs: int, patience: int) -> dict[str, float]:
    ds, X, y = _prepare(name, seed)
    obj = Objective(None, ds.task, ds.n_classes)
    act = "tanh" if ds.task == "regression" else "relu"
    net = MLP([ds.X.shape[1], *DEFAULT_HIDDEN, obj.n_outputs], activation=act, seed=seed)
    start = time.perf_counter()
    with blas_threads_for(net.sizes, 32):  # as `losskit train` runs it (one BLAS thread)
        h = fit(
            net,
            obj,
            X["train"],
            y["train"],
            X["val"],
            y["val"],
            epochs=epochs,
            optimizer=Adam(net.params(), lr=1e-3, weight_decay=DEFAULT_WEIGHT_DECAY),
            patience=patience,
            seed=seed,
        )
    seconds = time.perf_counter() - start
    pred = obj.predict(net.forward(X["test"]))
    score = (
        r2_score(y["test"], pred) if ds.task == "regression" else float(np.mean(pred == y["test"]))
    )
    return {"score": score, "epochs": h.epochs, "seconds": seconds}


def run_torch(name: str, seed: int, epochs: int, patience: int) -> dict[str, float]:
    import torch

    ds, X, y = _prepare(name, seed)
    obj = Objective(None, ds.task, ds.n_classes)
    act = "tanh" if ds.task == "regression" else "relu"
    ref = MLP([ds.X.shape[1], *DEFAULT_HIDDEN, obj.n_outputs], activation=act, seed=seed)
    layers: list[torch.nn.Module] = []
    weights = ref.params()
    for i in range(0, len(weights), 2):
        lin = torch.nn.Linear(*weights[i].shape)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(weights[i].T))
            lin.bias.copy_(torch.tensor(weights[i + 1]))
        layers.append(lin)
        if i + 2 < len(weights):
            layers.append(torch.nn.ReLU() if act == "relu" else torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    if ds.task == "multiclass":
        loss_fn = torch.nn.CrossEntropyLoss()
        to_t = lambda t: torch.tensor(t, dtype=torch.long)  # noqa: E731
    elif ds.task == "binary":
        loss_fn = torch.nn.BCEWithLogitsLoss()
        to_t = lambda t: torch.tensor(t, dtype=torch.float32).reshape(-1, 1)  # noqa: E731
    else:
        loss_fn = torch.nn.MSELoss()
        to_t = lambda t: torch.tensor(t, dtype=torch.float32).reshape(-1, 1)  # noqa: E731
    Xt = {k: torch.tensor(v, dtype=torch.float32) for k, v in X.items()}
    yt = {k: to_t(v) for k, v in y.items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=DEFAULT_WEIGHT_DECAY)
    rng = np.random.default_rng(seed)  # the same shuffling as losskit's fit
    n, batch = Xt["train"].shape[0], 32
    best, best_state, waited, epoch = float("inf"), None, 0, 0
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):  # noqa: B007
        order = torch.tensor(rng.permutation(n))
        model.train()
        for b in range(0, n, batch):
            idx = order[b : b + batch]
            opt.zero_grad()
            loss_fn(model(Xt["train"][idx]), yt["train"][idx]).backward()
            opt.step()
        with torch.no_grad():
            val = float(loss_fn(model(Xt["val"]), yt["val"]))
        if val < best:
            best, waited = val, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    seconds = time.perf_counter() - start
    assert best_state is not None
    model.load_state_dict(best_state)
    with torch.no_grad():
        out = model(Xt["test"]).numpy().astype(np.float64)
    pred = obj.predict(out)
    score = (
        r2_score(y["test"], pred) if ds.task == "regression" else float(np.mean(pred == y["test"]))
    )
    return {"score": score, "epochs": epoch, "seconds": seconds}


def check_targets(names: list[str]) -> bool:
    """The default `losskit train --dataset NAME` (seed 0) against the issue's targets."""
    ok = True
    print("\nTargets (default `losskit train --dataset NAME`, seed 0; time includes data loading):")
    for name in names:
        if name not in TARGETS:
            continue
        metric, goal = TARGETS[name]
        start = time.perf_counter()
        ds = load_builtin(name)
        result = train_model(
            ds,
            seed=0,
            activation="tanh" if ds.task == "regression" else "relu",
        )
        seconds = time.perf_counter() - start
        got = result.metrics["test"][metric]
        passed = got >= goal and seconds < TIME_LIMIT_S
        ok &= passed
        print(
            f"  {name:<14} test {metric} {got:.4f} (target >= {goal}) in {seconds:5.1f} s "
            f"(target < {TIME_LIMIT_S:.0f} s): {'PASS' if passed else 'FAIL'}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,breast_cancer,diabetes")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=20)
    args = parser.parse_args(argv)
    names = args.datasets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    try:
        import torch  # noqa: F401
    except ImportError:
        torch_ok = False
        print("torch is not installed: showing losskit only", file=sys.stderr)
    else:
        torch_ok = True
    print(
        "Same split, architecture, initial weights, optimiser and batch order; "
        "score = test accuracy (R² for diabetes)"
    )
    print(
        f"{'dataset':<14} {'seed':>4} | {'losskit':>8} {'epochs':>6} {'s':>6} | "
        f"{'torch':>8} {'epochs':>6} {'s':>6} | {'diff':>7}"
    )
    for name in names:
        diffs = []
        for seed in seeds:
            a = run_losskit(name, seed, args.epochs, args.patience)
            line = (
                f"{name:<14} {seed:>4} | {a['score']:8.4f} {a['epochs']:6d} {a['seconds']:6.2f} | "
            )
            if torch_ok:
                b = run_torch(name, seed, args.epochs, args.patience)
                diffs.append(a["score"] - b["score"])
                line += (
                    f"{b['score']:8.4f} {b['epochs']:6d} {b['seconds']:6.2f} | {diffs[-1]:+7.4f}"
                )
            print(line)
        if diffs:
            print(f"{'':<14} mean difference losskit - torch: {np.mean(diffs):+.4f}")
    return 0 if check_targets(names) else 1


if __name__ == "__main__":
    raise SystemExit(main())
