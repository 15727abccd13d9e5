"""``losskit eval``: a loss (and its gradient) on arrays read from files."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

import numpy as np

from ..catalogue import LossInfo
from ._common import CliError, call_quietly, dump_json, lookup, loss_options, option_pairs


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="a loss (and its gradient) on arrays from files",
        description="Compute a loss on predictions and targets read from .npy, .csv or .json. "
        "Any option of the loss can be given as --option-name VALUE "
        "(e.g. --label-smoothing 0.1, --class-weight 1,2,1, --reduction none).",
    )
    p.add_argument("name", metavar="NAME", help="a loss (see `losskit list`)")
    p.add_argument("--pred", required=True, metavar="FILE", help="predictions (logits/probs/real)")
    p.add_argument("--target", required=True, metavar="FILE", help="labels or targets")
    p.add_argument("--grad", metavar="FILE.npy", help="also write d loss / d pred here")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.set_defaults(func=run, accepts_extra=True)


def _as_labels(t: np.ndarray, info: LossInfo) -> np.ndarray:
    if t.dtype.kind in "iu":
        return t.astype(np.int64)
    if t.dtype.kind == "b":
        return t.astype(np.int64)
    bad = np.flatnonzero(t.ravel() != np.round(t.ravel()))
    if bad.size:
        where = tuple(int(i) for i in np.unravel_index(bad[0], t.shape))
        msg = (
            f"{info.name} needs integer class ids as the target; got {t.ravel()[bad[0]]:g} "
            f"at position {where} (for distributions use "
            f"{'softmax_cross_entropy' if info.input == 'logits' else 'categorical_cross_entropy'})"
        )
        raise CliError(msg)
    return t.astype(np.int64)


def run(args: argparse.Namespace) -> int:
    from ..train.data import load_array

    info = lookup(args.name)
    options = loss_options(info, option_pairs(args.extra))
    if args.grad and not args.grad.lower().endswith(".npy"):  # np.save would append .npy
        raise CliError(f"--grad must be a .npy file; got {args.grad!r}", 2)
    pred = load_array(args.pred, what="predictions")
    target = load_array(args.target, what="targets")
    if pred.dtype.kind != "f":
        pred = pred.astype(np.float64)
    if info.truth == "ids":
        target = _as_labels(target, info)
    elif target.dtype.kind != "f":
        target = target.astype(pred.dtype)
    fn = functools.partial(info.fn, **options)
    import losskit as lk

    if args.grad:
        value, grad = call_quietly("eval", lambda: lk.value_and_grad(fn)(pred, target))
        grad = np.asarray(grad)
        try:
            np.save(args.grad, grad, allow_pickle=False)
        except OSError as exc:
            raise CliError(f"cannot write {args.grad}: {exc.strerror or exc}") from None
    else:
        value, grad = call_quietly("eval", lambda: fn(pred, target)), None
    value = np.asarray(value)
    reduction = options.get("reduction", "mean")
    if args.json:
        out: dict[str, Any] = {
            "loss": info.name,
            "reduction": reduction,
            "value": value.tolist(),
            "shape": list(value.shape),
            "pred_shape": list(pred.shape),
        }
        if grad is not None:
            out["grad"] = {"path": args.grad, "shape": list(grad.shape)}
        dump_json(out)
    else:
        shown = f"{float(value):.7g}" if value.ndim == 0 else np.array2string(value, precision=6)
        print(f"{info.name} (reduction={reduction}): {shown}")
        if grad is not None:
            print(
                f"gradient d loss / d {info.input} {grad.shape} written to {args.grad}",
                file=sys.stderr,
            )
    return 0
