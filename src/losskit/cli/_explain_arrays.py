"""``losskit explain`` for the losses of several arrays: pairs, triplets, batches of embeddings.

Each positional array of the loss is given by its parameter's name
(``--x1 1,0;0.6,0.8 --x2 ... --targets 1,-1``, ``--anchor``, ``--positive``,
``--negative``, ``--embeddings ... --labels ...``), rows separated by ``;``.
The catalogue row's ``explain_as`` says whether the arrays are the batch
itself (``"batch"``: a pair per row, the batch of embeddings) or one example
(``"example"``: a batch axis of 1 is added).  The loss of each example, the
reduced loss and the gradient with respect to the first array are shown,
and the gradient is checked against finite differences, as for every loss.
"""

from __future__ import annotations

import argparse
import functools
import inspect
from typing import Any

import numpy as np

from ..catalogue import LossInfo
from ._common import CliError, call_quietly, dump_json, floats, fmt, loss_options, option_pairs
from ._fd import check_gradient

# Flags argparse knows (explain's own); the other array flags arrive as extra options.
_PARSED = {"logits", "probs", "log_probs", "scores", "pred", "targets"}
_INTEGER_TRUTHS = ("groups", "ids", "label_sets", "sequences")
_FIXED = ("reduction", "sample_weight")


def array_names(info: LossInfo) -> list[str]:
    """The loss's positional arrays, in order: the first, the other inputs, the truth, extras."""
    params = inspect.signature(info.fn).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def rows(text: str, flag: str) -> np.ndarray:
    """``"1,0;0.6,0.8"`` -> a 2-D array (rows of equal length); ``"1,2"`` -> 1-D."""
    if ";" not in text:
        return floats(text, flag)
    parts = [floats(part, flag) for part in text.split(";")]
    sizes = {p.size for p in parts}
    if len(sizes) > 1:
        got = ", ".join(str(p.size) for p in parts)
        raise CliError(f"{flag}: every row must have as many values; got rows of {got}", 2)
    return np.stack(parts)


def _arrays(
    args: argparse.Namespace, info: LossInfo, names: list[str]
) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    """The arrays by name (from argparse or the extra options) and the loss's own options."""
    texts: dict[str, str] = {}
    for name in names:
        if name in _PARSED and getattr(args, name, None) is not None:
            texts[name] = getattr(args, name)
    for flag in ("--logits", "--probs", "--log-probs", "--scores", "--pred", "--label"):
        key = flag[2:].replace("-", "_")
        if getattr(args, key, None) is not None and key not in names:
            shown = ", ".join(_flag(n) for n in names)
            raise CliError(f"{info.name} takes {shown}; not {flag}", 2)
    options = []
    for raw, value in option_pairs(args.extra):
        key = raw.lstrip("-").replace("-", "_")
        if key in names:
            texts[key] = value
        else:
            options.append((raw, value))
    missing = [_flag(n) for n in names if n not in texts]
    if missing:
        shown = " ".join(f"{_flag(n)} ..." for n in names)
        msg = f"{info.name} needs {' and '.join(missing)} (give {shown}; rows split by ';')"
        raise CliError(msg, 2)
    arrays = {}
    for k, name in enumerate(names):
        a = rows(texts[name], _flag(name))
        truth = k == 1 + len(info.inputs) and info.truth != "none"
        if truth and info.truth in _INTEGER_TRUTHS:
            if not np.all(a == np.round(a)):
                raise CliError(f"{_flag(name)} must be integer ids; got {fmt(a)}", 2)
            a = a.astype(np.int64)
        elif not truth and info.explain_as == "batch" and info.per_example:
            a = np.atleast_2d(a)  # a single vector is a batch of one
        if info.explain_as == "example":
            a = a[None]
        arrays[name] = a
    return arrays, options


def _shown(a: np.ndarray) -> str:
    if a.ndim < 2:
        return fmt(a)
    return "[" + ", ".join(_shown(r) for r in a) + "]"


def explain_arrays(args: argparse.Namespace, info: LossInfo) -> int:
    """Run ``losskit explain`` for a loss whose catalogue row has ``explain_as``."""
    import losskit as lk

    from .explain import _print_fd, _verdict

    names = array_names(info)
    arrays, pairs = _arrays(args, info, names)
    for raw, _ in pairs:
        if raw.lstrip("-").replace("-", "_") in _FIXED:
            msg = (
                f"explain shows each example and the mean: {raw} cannot be set "
                "(`losskit eval` takes it)"
            )
            raise CliError(msg, 2)
    opts = loss_options(info, pairs, fixed=_FIXED)
    fn = functools.partial(info.fn, **opts)
    values = [arrays[n] for n in names]
    first, rest = values[0], values[1:]
    value, grad = call_quietly("explain", lambda: lk.value_and_grad(fn)(*values))
    if isinstance(grad, tuple):  # linear_cross_entropy: (d hidden, d weight, d bias)
        grad = grad[0]
    per = call_quietly("explain", lambda: fn(*values, reduction="none"))
    value = float(value)
    grad = np.asarray(grad, dtype=np.float64).reshape(first.shape)
    per = np.asarray(per, dtype=np.float64)
    fd = check_gradient(lambda v: fn(v.reshape(first.shape), *rest), first.ravel(), grad.ravel())
    steps: list[tuple[str, str, Any]] = [
        ("loss per example", info.formula, per),
        ("mean (reduction='mean')", "L = mean of the counted examples' losses", value),
        (f"gradient w.r.t. {names[0]}", info.gradient, grad),
    ]
    if args.json:
        dump_json(
            {
                "loss": info.name,
                "arrays": arrays,
                "options": opts,
                "steps": [
                    {"what": w, "formula": f, "value": np.asarray(v).tolist()} for w, f, v in steps
                ],
                "value": value,
                "gradient": grad,
                "finite_differences": {
                    "gradient": [None if np.isnan(v) else float(v) for v in fd.estimate],
                    "kinks": [i for i, _, _ in fd.kinks],
                    "not_taken": fd.not_taken,
                    "agrees": fd.agrees,
                },
                "agrees_with_library": fd.agrees,
            }
        )
        return _verdict(fd.agrees, None, fd)
    print(f"{info.name}: {info.summary}")
    shown = [f"{n} = {_shown(a)}" for n, a in arrays.items()]
    shown += [f"{k} = {v}" for k, v in opts.items()]
    print("  input " + ", ".join(shown))
    wf = max(len(f) for _, f, _ in steps)
    ww = max(len(w) for w, _, _ in steps)
    for i, (what, formula, v) in enumerate(steps, 1):
        text = _shown(np.asarray(v)) if np.ndim(v) else fmt(v)
        print(f"{i:>3}. {what:<{ww}}  {formula:<{wf}}  = {text}")
    print(f"  losskit.{info.name} gives loss {value:.6g} and gradient {_shown(grad)}")
    _print_fd(fd, first.ravel(), grad.ravel())
    return _verdict(fd.agrees, None, fd)
