"""``losskit eval``: a loss (and its gradient) on arrays read from files."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

import numpy as np

from ..catalogue import LossInfo
from ._common import (
    CliError,
    call_quietly,
    check_output_path,
    dump_json,
    lookup,
    loss_options,
    option_pairs,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="a loss (and its gradient) on arrays from files",
        description="Compute a loss on predictions and targets read from .npy, .csv or .json. "
        "Any option of the loss can be given as --option-name VALUE "
        "(e.g. --label-smoothing 0.1, --class-weight 1,2,1, --reduction none); "
        "gaussian_nll's variances as --var FILE.",
        allow_abbrev=False,  # `--p 2` (multi_margin's p) must not be read as --pred
    )
    p.add_argument("name", metavar="NAME", help="a loss (see `losskit list`)")
    p.add_argument("--pred", required=True, metavar="FILE", help="predictions (logits/probs/real)")
    p.add_argument("--target", required=True, metavar="FILE", help="labels or targets")
    p.add_argument("--grad", metavar="FILE.npy", help="also write d loss / d pred here")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.set_defaults(func=run, accepts_extra=True)


def _as_labels(t: np.ndarray, info: LossInfo) -> np.ndarray:
    """Class ids as int64, refusing what the cast would silently turn into another number.

    NaN, inf and floats beyond int64 (1e20) cast to -2**63 with a RuntimeWarning,
    and uint64 above 2**63 - 1 wraps to a negative id (which could even equal
    ``ignore_index``).
    """
    if t.dtype.kind in "bi":
        return t.astype(np.int64)
    flat = t.ravel()
    hint = " (too large for a class id)"
    if t.dtype.kind == "u":
        bad = np.flatnonzero(flat > np.iinfo(np.int64).max)
    else:
        finite = np.isfinite(flat)
        integral = finite & (flat == np.round(flat))
        bad = np.flatnonzero(~integral | (np.abs(np.where(finite, flat, 0.0)) >= 2.0**63))
        if bad.size and not finite[bad[0]]:
            hint = ""
        elif bad.size and not integral[bad[0]]:
            dense = "softmax" if info.input == "logits" else "categorical"
            hint = f" (for distributions use {dense}_cross_entropy)"
    if bad.size:
        where = tuple(int(i) for i in np.unravel_index(bad[0], t.shape))
        value = flat[bad[0]]
        shown = f"{value:g}" if t.dtype.kind == "f" else str(value)
        msg = (
            f"{info.name} needs integer class ids as the target; got {shown} "
            f"at position {where}{hint}"
        )
        raise CliError(msg)
    return t.astype(np.int64)


def run(args: argparse.Namespace) -> int:
    from ..train.data import load_array

    info = lookup(args.name)
    if info.inputs or info.truth == "none":  # pairs and triplets: more than --pred and --target
        import inspect

        params = inspect.signature(info.fn).parameters.values()
        arrays = ", ".join(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
        msg = (
            f"eval reads a prediction and a target; {info.name} takes {arrays}: call "
            f"losskit.{info.name} from Python (`losskit explain {info.name}` shows it on values)"
        )
        raise CliError(msg, 2)
    pairs = option_pairs(args.extra)
    # The loss's extra arrays (gaussian_nll's var) are files too; the rest are options.
    files = {k.lstrip("-"): v for k, v in pairs if k.lstrip("-") in info.extra}
    options = loss_options(info, [(k, v) for k, v in pairs if k.lstrip("-") not in files])
    missing = [k for k in info.extra if k not in files]
    if missing:
        raise CliError(f"{info.name} needs {' and '.join('--' + k for k in missing)} FILE", 2)
    if args.grad:  # .npy: np.save would append it; and a path that cannot be written fails now
        check_output_path("--grad", args.grad, ".npy")
    pred = load_array(args.pred, what="predictions")
    target = load_array(args.target, what="targets")
    extras = [load_array(files[k], what=k) for k in info.extra]
    if pred.dtype.kind != "f":
        pred = pred.astype(np.float64)
    if info.truth in ("ids", "label_sets", "groups", "sequences"):
        target = _as_labels(target, info)
    elif target.dtype.kind != "f":
        target = target.astype(pred.dtype)
    fn = functools.partial(info.fn, **options)
    import losskit as lk

    if args.grad:
        value, grad = call_quietly("eval", lambda: lk.value_and_grad(fn)(pred, target, *extras))
        grad = np.asarray(grad)
        try:
            np.save(args.grad, grad, allow_pickle=False)
        except OSError as exc:
            raise CliError(f"cannot write {args.grad}: {exc.strerror or exc}") from None
    else:
        value, grad = call_quietly("eval", lambda: fn(pred, target, *extras)), None
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
