"""``losskit explain``: one example computed step by step, checked against the library."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

import numpy as np

from .. import catalogue
from ..catalogue import LossInfo
from ._common import (
    CLIP,
    NON_NEGATIVE,
    PROBABILITY,
    PROG,
    CliError,
    call_quietly,
    dump_json,
    floats,
    fmt,
    lookup,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="a loss step by step for one example",
        description="Print the computation of a loss for one example, each step with its "
        "formula: e.g. `losskit explain sparse_softmax_cross_entropy --logits 2,0.5,6 --label 2`.",
    )
    p.add_argument("name", metavar="NAME", help="a loss (see `losskit list`)")
    p.add_argument("--logits", metavar="Z", help="comma-separated logits")
    p.add_argument("--probs", metavar="P", help="comma-separated probabilities")
    p.add_argument("--pred", metavar="Y_HAT", help="comma-separated predictions (regression)")
    p.add_argument("--label", metavar="Y", help="the true class id (or 0/1)")
    p.add_argument("--targets", metavar="T", help="comma-separated targets or distribution")
    p.add_argument("--label-smoothing", type=PROBABILITY, default=0.0)
    p.add_argument(
        "--pos-weight", type=NON_NEGATIVE, help="sigmoid_cross_entropy's positive weight"
    )
    p.add_argument("--eps", type=CLIP, default=1e-7, help="clipping of probability losses")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.set_defaults(func=run)


_OTHER = {
    "sparse_softmax_cross_entropy": "sparse_categorical_cross_entropy",
    "sparse_categorical_cross_entropy": "sparse_softmax_cross_entropy",
    "softmax_cross_entropy": "categorical_cross_entropy",
    "categorical_cross_entropy": "softmax_cross_entropy",
    "sigmoid_cross_entropy": "binary_cross_entropy",
    "binary_cross_entropy": "sigmoid_cross_entropy",
}
_FLAG = {"logits": "--logits", "probs": "--probs", "real": "--pred"}


def _explain_input(args: argparse.Namespace, info: LossInfo) -> np.ndarray:
    given = {k: getattr(args, k if k != "real" else "pred") for k in ("logits", "probs", "real")}
    given = {k: v for k, v in given.items() if v is not None}
    if info.input in given:
        return floats(given[info.input], _FLAG[info.input])
    if not given:
        raise CliError(
            f"{info.name} takes {catalogue.INPUTS[info.input]}: give {_FLAG[info.input]}", 2
        )
    wrong = next(iter(given))
    msg = (
        f"{info.name} takes {catalogue.INPUTS[info.input]}, not {_FLAG[wrong][2:]}: "
        f"give {_FLAG[info.input]}"
    )
    if info.name in _OTHER and catalogue.lookup(_OTHER[info.name]).input == wrong:
        msg += f" (for {_FLAG[wrong][2:]} use {_OTHER[info.name]})"
    raise CliError(msg, 2)


def _explain_truth(args: argparse.Namespace, info: LossInfo, x: np.ndarray) -> np.ndarray:
    if args.label is None and args.targets is None:
        raise CliError(f"{info.name} needs the truth: give --label or --targets", 2)
    if args.label is not None and args.targets is not None:
        raise CliError("give --label or --targets, not both", 2)
    n = x.size
    if info.truth in ("ids", "distributions"):
        if args.label is not None:
            try:
                y = int(args.label)
            except ValueError:
                raise CliError(f"--label must be a class id; got {args.label!r}", 2) from None
            if not 0 <= y < n:
                raise CliError(f"--label must be in [0, {n}) for {n} classes; got {y}")
            if info.truth == "ids":
                return np.array(y)
            return np.eye(n)[y]
        t = floats(args.targets, "--targets")
        if t.size != n:
            flag = _FLAG[info.input]
            raise CliError(f"--targets has {_values(t.size)}; {flag} has {n} classes")
        if info.truth == "distributions":
            _check_unit_interval(t, "--targets", info, "a distribution over the classes")
            return t
        if np.count_nonzero(t) == 1 and t.max() == 1:
            return np.array(int(np.argmax(t)))
        dense = info.name.replace("sparse_", "")
        msg = f"{info.name} takes one class id: give --label (for a distribution use {dense})"
        raise CliError(msg, 2)
    # One truth per element, never one stretched over all: a missing value is a mistake.
    flag = "--label" if args.label is not None else "--targets"
    t = floats(args.label if args.label is not None else args.targets, flag)
    if t.size != n:
        raise CliError(f"{flag} has {_values(t.size)}; {_FLAG[info.input]} has {_values(n)}")
    if info.truth == "binary":
        _check_unit_interval(t, flag, info, "0/1, or a soft target in between")
    return t


def _values(n: int) -> str:
    return f"{n} value" if n == 1 else f"{n} values"


def _check_unit_interval(t: np.ndarray, flag: str, info: LossInfo, what: str) -> None:
    """Targets outside [0, 1] make a cross-entropy negative (2 log 0.8 > log 0.8)."""
    if t.min() < 0 or t.max() > 1:
        raise CliError(f"{flag} must be in [0, 1] for {info.name} ({what}); got {fmt(t)}")


def _xlogy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a log b`` with ``0 log 0 = 0`` (a term with no weight adds nothing)."""
    return np.where(a == 0, 0.0, a * np.log(b))


def _xdivy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` with ``0 / 0 = 0``."""
    return np.where(a == 0, 0.0, a / b)


def _explain_steps(
    info: LossInfo, x: np.ndarray, t: np.ndarray, args: argparse.Namespace
) -> tuple[list[tuple[str, str, Any]], float, np.ndarray, dict[str, Any]]:
    """Hand-computed steps ``(what, formula, value)``, the loss, the gradient, the options."""
    import losskit as lk

    steps: list[tuple[str, str, Any]] = []
    opts: dict[str, Any] = {}
    name, eps_ls = info.name, args.label_smoothing
    if info.input == "logits" and info.truth in ("ids", "distributions"):
        C = x.size
        m = x.max()
        steps.append(("shift by the largest logit (stability)", "z - max(z)", x - m))
        e = np.exp(x - m)
        steps.append(("exponentiate", "e^(z - max z)", e))
        p = e / e.sum()
        steps.append(("normalise: softmax", "p = e^(z - max z) / Σ e^(z - max z)", p))
        lse = m + np.log(e.sum())
        steps.append(("log-sum-exp", "logsumexp(z) = max z + log Σ e^(z - max z)", lse))
        onehot = np.eye(C)[int(t)] if info.truth == "ids" else t
        if eps_ls:
            opts["label_smoothing"] = eps_ls
            onehot = (1 - eps_ls) * onehot + eps_ls / C
            steps.append(
                ("smooth the targets", f"t' = (1 - {eps_ls:g}) t + {eps_ls:g}/{C}", onehot)
            )
        logp = x - lse
        steps.append(("log-probabilities", "log p = z - logsumexp(z)", logp))
        if info.truth == "ids" and not eps_ls:
            y = int(t)
            steps.append((f"log-probability of the true class y = {y}", "log p_y", logp[y]))
            loss = -logp[y]
            steps.append(("loss: negative log-likelihood", "L = -log p_y", loss))
            grad = p - onehot
            steps.append(("gradient", "dL/dz = p - onehot(y)", grad))
        else:
            tt = "t'" if eps_ls else "t"
            loss = float(-(onehot * logp).sum())
            steps.append(("loss: cross-entropy", f"L = -Σ_c {tt}_c log p_c", loss))
            grad = p * onehot.sum() - onehot
            steps.append(("gradient", f"dL/dz = p·Σ{tt} - {tt}", grad))
        return steps, float(loss), grad, opts
    if info.input == "probs" and info.truth in ("ids", "distributions"):
        eps = args.eps
        opts["eps"] = eps
        onehot = np.eye(x.size)[int(t)] if info.truth == "ids" else t
        steps.append(("probabilities sum to", "Σ p", x.sum()))
        pc = np.clip(x, eps, 1 - eps)
        steps.append(("clip away from 0 and 1", f"p̃ = clip(p, {eps:g}, 1 - {eps:g})", pc))
        inside = (x >= eps) & (x <= 1 - eps)
        if info.truth == "ids":
            y = int(t)
            steps.append((f"probability of the true class y = {y}", "p̃_y", pc[y]))
            steps.append(("its log", "log p̃_y", np.log(pc[y])))
            loss = -np.log(pc[y])
            steps.append(("loss", "L = -log p̃_y", loss))
            grad = np.where(inside & (onehot != 0), -onehot / pc, 0.0)
            steps.append(("gradient (0 where clipped)", "dL/dp_c = -[c = y] / p̃_y", grad))
        else:
            steps.append(("log-probabilities", "log p̃", np.log(pc)))
            loss = float(-_xlogy(onehot, pc).sum())
            steps.append(("loss: cross-entropy", "L = -Σ_c t_c log p̃_c  (0 log 0 = 0)", loss))
            grad = np.where(inside & (onehot != 0), -onehot / pc, 0.0)
            steps.append(("gradient (0 where clipped)", "dL/dp_c = -t_c / p̃_c", grad))
        return steps, float(loss), grad, opts
    n = x.size
    if name == "sigmoid_cross_entropy":
        if eps_ls:
            opts["label_smoothing"] = eps_ls
            t = t * (1 - eps_ls) + eps_ls / 2
            steps.append(("smooth the targets", f"t' = t (1 - {eps_ls:g}) + {eps_ls:g}/2", t))
        sig = np.asarray(lk.sigmoid(x))
        steps.append(("probability of class 1: sigmoid", "p = σ(z) = 1 / (1 + e^-z)", sig))
        if args.pos_weight is not None:
            q = args.pos_weight
            opts["pos_weight"] = q
            softplus_neg = -np.asarray(lk.log_sigmoid(x))
            steps.append(("log(1 + e^-z), stably", "softplus(-z) = -log σ(z)", softplus_neg))
            per = (1 - t) * x + (1 + (q - 1) * t) * softplus_neg
            steps.append(
                ("loss per element", f"L = (1-t) z + (1 + ({q:g}-1) t) log(1 + e^-z)", per)
            )
            g = (1 - t) - (1 + (q - 1) * t) * np.asarray(lk.sigmoid(-x))
            steps.append(("gradient per element", "dL/dz = (1-t) - (1 + (q-1) t) σ(-z)", g))
        else:
            softplus = -np.asarray(lk.log_sigmoid(-x))
            steps.append(("log(1 + e^z), stably", "softplus(z) = -log σ(-z)", softplus))
            per = softplus - x * t
            steps.append(
                ("loss per element", "L = softplus(z) - z t = -[t log p + (1-t) log(1-p)]", per)
            )
            g = sig - t
            steps.append(("gradient per element", "dL/dz = σ(z) - t", g))
    elif name == "binary_cross_entropy":
        eps = args.eps
        opts["eps"] = eps
        pc = np.clip(x, eps, 1 - eps)
        steps.append(("clip away from 0 and 1", f"p̃ = clip(p, {eps:g}, 1 - {eps:g})", pc))
        steps.append(
            ("log-probabilities", "log p̃, log(1 - p̃)", np.concatenate([np.log(pc), np.log1p(-pc)]))
        )
        per = -(_xlogy(t, pc) + _xlogy(1 - t, 1 - pc))
        steps.append(("loss per element", "L = -[t log p̃ + (1-t) log(1-p̃)]  (0 log 0 = 0)", per))
        inside = (x >= eps) & (x <= 1 - eps)
        g = np.where(inside, _xdivy(-t, pc) + _xdivy(1 - t, 1 - pc), 0.0)
        steps.append(("gradient per element (0 where clipped)", "dL/dp = -t/p̃ + (1-t)/(1-p̃)", g))
    elif name == "mean_squared_error":
        r = x - t
        steps.append(("residual", "r = ŷ - y", r))
        per = r * r
        steps.append(("loss per element", "L = r²", per))
        g = 2 * r
        steps.append(("gradient per element", "dL/dŷ = 2 r", g))
    elif name == "mean_absolute_error":
        r = x - t
        steps.append(("residual", "r = ŷ - y", r))
        per = np.abs(r)
        steps.append(("loss per element", "L = |r|", per))
        g = np.sign(r)
        steps.append(("gradient per element", "dL/dŷ = sign(r)", g))
    else:  # pragma: no cover - a catalogue row without an explanation
        raise CliError(f"explain does not know {name} yet")
    if n > 1:
        steps.append((f"mean over the {n} elements", "L = (1/n) Σ L_i", per.mean()))
        steps.append(("gradient of the mean", "dL/dx_i = (1/n) dL_i/dx_i", g / n))
    return steps, float(per.mean()), g / n, opts


def run(args: argparse.Namespace) -> int:
    import losskit as lk

    info = lookup(args.name)
    if args.label_smoothing and info.name not in (
        "softmax_cross_entropy",
        "sparse_softmax_cross_entropy",
        "sigmoid_cross_entropy",
    ):
        raise CliError(f"{info.name} has no option --label-smoothing", 2)
    if args.pos_weight is not None and info.name != "sigmoid_cross_entropy":
        raise CliError(f"{info.name} has no option --pos-weight", 2)
    x = _explain_input(args, info)
    t = _explain_truth(args, info, x)
    if info.input == "probs" and (x.min() < 0 or x.max() > 1):
        raise CliError(f"--probs must be in [0, 1]; got {fmt(x)}")
    with np.errstate(all="ignore"):  # log 0 = -inf and x/0 = inf are the numbers to show
        steps, loss, grad, opts = _explain_steps(info, x, t, args)

    # The same numbers from the library itself: the steps above are the formulas it computes.
    fn = functools.partial(info.fn, **opts)
    batch = info.truth in ("ids", "distributions")
    xs, ts = (x[None], t[None]) if batch else (x, t)
    lib_value, lib_grad = call_quietly("explain", lambda: lk.value_and_grad(fn)(xs, ts))
    lib_value = float(lib_value)
    lib_grad = np.asarray(lib_grad).reshape(x.shape)
    agrees = bool(
        np.isclose(lib_value, loss, rtol=1e-5, atol=1e-9)
        and np.allclose(lib_grad, grad, rtol=1e-5, atol=1e-9)
    )
    if args.json:
        dump_json(
            {
                "loss": info.name,
                "input": {"kind": info.input, "values": x},
                "truth": {"kind": info.truth, "values": t},
                "options": opts,
                "steps": [
                    {"what": w, "formula": f, "value": np.asarray(v).tolist()} for w, f, v in steps
                ],
                "value": lib_value,
                "gradient": lib_grad,
                "agrees_with_library": agrees,
            }
        )
        return _verdict(agrees)
    what_t = "label y" if (info.truth == "ids" and t.ndim == 0) else "targets t"
    head = f"{info.name}: {info.summary}"
    print(head)
    symbol = {"logits": "logits z", "probs": "probabilities p", "real": "predictions ŷ"}
    print(
        f"  input {symbol[info.input]} = {fmt(x)}, {what_t} = {fmt(t) if t.ndim else int(t)}"
        + "".join(f", {k} = {v:g}" for k, v in opts.items())
    )
    wf = max(len(f) for _, f, _ in steps)
    ww = max(len(w) for w, _, _ in steps)
    for i, (what, formula, value) in enumerate(steps, 1):
        print(f"{i:>3}. {what:<{ww}}  {formula:<{wf}}  = {fmt(value)}")
    mark = "agrees" if agrees else "DIFFERS from the steps above"
    print(f"  losskit.{info.name} gives loss {lib_value:.6g} and gradient {fmt(lib_grad)} ({mark})")
    return _verdict(agrees)


def _verdict(agrees: bool) -> int:
    """0, or 1 with the reason on stderr: a failing exit always says why there."""
    if agrees:
        return 0
    print(f"{PROG} explain: error: the library's result differs from the steps", file=sys.stderr)
    return 1
