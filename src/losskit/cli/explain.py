"""``losskit explain``: one example computed step by step, checked against the library.

Every catalogued loss is explained: the input and the truth, what the
formula reads (softmax, sigmoid, ...), the loss of each element or of the
example with its formula from the catalogue, the mean, and the gradient from
:func:`losskit.value_and_grad` checked against finite differences of the
loss (:mod:`losskit.cli._fd`).  The eight losses of the tutorials are also
computed by hand, step by step (:mod:`losskit.cli._hand_steps`), and the
library must agree with those steps too.  The loss's own options come from
the command line as ``--name VALUE``, as in ``losskit eval``.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import sys
from typing import Any

import numpy as np

from .. import catalogue
from ..catalogue import LossInfo
from ._common import (
    PROG,
    CliError,
    call_quietly,
    dump_json,
    floats,
    fmt,
    lookup,
    loss_options,
    option_pairs,
)
from ._fd import H_TEXT, Check, check_gradient
from ._hand_steps import Step, hand_steps, handles

# The input flags and the kind of input each names (--pred: any real prediction).
_INPUT_FLAGS = {
    "--logits": "logits",
    "--probs": "probs",
    "--log-probs": "log_probs",
    "--scores": "scores",
    "--pred": "real",
}
_KIND_FLAG = {
    "logits": "--logits",
    "probs": "--probs",
    "log_probs": "--log-probs",
    "scores": "--scores",
    "rates": "--pred",
    "real": "--pred",
}
_SYMBOL = {
    "logits": "logits z",
    "probs": "probabilities p",
    "log_probs": "log-probabilities log q",
    "scores": "scores s",
}
# The same loss against a distribution, for a distribution given to a loss of class ids.
_DENSE = {
    "sparse_softmax_cross_entropy": "softmax_cross_entropy",
    "sparse_categorical_cross_entropy": "categorical_cross_entropy",
}
# Set by explain itself: one example (or one row of elements), the mean.
_FIXED = ("reduction", "axis", "sample_weight")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="a loss step by step for one example",
        description="Print the computation of a loss for one example, each step with its "
        "formula, and check the gradient against finite differences: e.g. `losskit explain "
        "sparse_softmax_cross_entropy --logits 2,0.5,6 --label 2`, `losskit explain huber "
        "--pred 0.5,3 --targets 0,0 --delta 1.5`. Any option of the loss is given as "
        "--option-name VALUE (--gamma 1, --margin 2, --label-smoothing 0.1, "
        "--class-weight 1,2,1); gaussian_nll's variances as --var. A loss of several arrays "
        "takes each by its name, rows split by ';': `losskit explain triplet_margin --anchor "
        "0,0 --positive 1,0 --negative 0,1.5`, `losskit explain ntxent --embeddings "
        "'1,0;0.8,0.6;0,1' --labels 0,0,1`. `losskit explain ctc` shows the alignment lattice "
        "(--labels, --frames, --classes, --blank, --logits, --out FILE.png).",
        allow_abbrev=False,  # `--p 2` (multi_margin's p) is not --pred or --probs
    )
    p.add_argument("name", metavar="NAME", help="a loss (see `losskit list`)")
    p.add_argument("--logits", metavar="Z", help="comma-separated logits")
    p.add_argument("--probs", metavar="P", help="comma-separated probabilities")
    p.add_argument("--log-probs", metavar="LOG_Q", help="comma-separated log-probabilities")
    p.add_argument("--scores", metavar="S", help="comma-separated scores (margin losses)")
    p.add_argument("--pred", metavar="Y_HAT", help="comma-separated predictions")
    p.add_argument("--label", metavar="Y", help="the true class id (or 0/1, -1/1)")
    p.add_argument("--targets", metavar="T", help="comma-separated targets or distribution")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.set_defaults(func=run, accepts_extra=True)


def _own_flag(info: LossInfo) -> str:
    """The flag named after the loss's first argument (hinge's ``pred``: ``--pred``)."""
    first = next(iter(inspect.signature(info.fn).parameters))
    return "--" + first.replace("_", "-")


def _explain_input(args: argparse.Namespace, info: LossInfo) -> np.ndarray:
    given = {f: getattr(args, f[2:].replace("-", "_")) for f in _INPUT_FLAGS}
    given = {f: v for f, v in given.items() if v is not None}
    own = _own_flag(info)
    accepted = {own, _KIND_FLAG[info.input]}
    what = catalogue.INPUTS[info.input]
    if len(given) > 1:
        raise CliError(f"give one input, not {' and '.join(given)}: {info.name} takes {own}", 2)
    if not given:
        raise CliError(f"{info.name} takes {what}: give {own}", 2)
    flag, text = next(iter(given.items()))
    if flag in accepted:
        return floats(text, flag)
    msg = f"{info.name} takes {what}, not {flag[2:]}: give {own}"
    other = catalogue.counterpart(info, _INPUT_FLAGS[flag])
    if other is not None:
        msg += f" (for {flag[2:]} use {other.name})"
    raise CliError(msg, 2)


def _explain_truth(
    args: argparse.Namespace, info: LossInfo, x: np.ndarray, opts: dict[str, Any]
) -> np.ndarray:
    if args.label is None and args.targets is None:
        raise CliError(f"{info.name} needs the truth: give --label or --targets", 2)
    if args.label is not None and args.targets is not None:
        raise CliError("give --label or --targets, not both", 2)
    n = x.size
    flag_x = _own_flag(info)
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
            if opts.get("log_target"):
                msg = "with --log-target true give the target log-probabilities as --targets"
                raise CliError(msg, 2)
            return np.eye(n)[y]
        t = floats(args.targets, "--targets")
        if t.size != n:
            raise CliError(f"--targets has {_values(t.size)}; {flag_x} has {n} classes")
        if info.truth == "distributions":
            if not opts.get("log_target"):
                _check_unit_interval(t, "--targets", info, "a distribution over the classes")
            return t
        if np.count_nonzero(t) == 1 and t.max() == 1:
            return np.array(int(np.argmax(t)))
        dense = _DENSE.get(info.name)
        hint = f" (for a distribution use {dense})" if dense else ""
        msg = f"{info.name} takes one class id: give --label{hint}"
        raise CliError(msg, 2)
    # One truth per element (per class for the row losses), never one stretched over all.
    flag = "--label" if args.label is not None else "--targets"
    t = floats(args.label if args.label is not None else args.targets, flag)
    if t.size != n:
        raise CliError(f"{flag} has {_values(t.size)}; {flag_x} has {_values(n)}")
    if info.truth == "binary":
        _check_unit_interval(t, flag, info, "0/1, or a soft target in between")
    if info.truth == "label_sets":
        if not np.all(t == np.round(t)):
            msg = f"{flag} must be class ids ended by -1 (e.g. 3,0,-1,1); got {fmt(t)}"
            raise CliError(msg)
        return t.astype(np.int64)
    return t


def _values(n: int) -> str:
    return f"{n} value" if n == 1 else f"{n} values"


def _check_unit_interval(t: np.ndarray, flag: str, info: LossInfo, what: str) -> None:
    """Targets outside [0, 1] make a cross-entropy negative (2 log 0.8 > log 0.8)."""
    if t.min() < 0 or t.max() > 1:
        raise CliError(f"{flag} must be in [0, 1] for {info.name} ({what}); got {fmt(t)}")


def _split_options(
    info: LossInfo, extra: list[str]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The loss's keyword options and its extra arrays (``--var``) from the command line."""
    pairs, arrays = [], {}
    for raw, value in option_pairs(extra):
        key = raw.lstrip("-").replace("-", "_")
        if key in info.extra:
            arrays[key] = floats(value, f"--{key}")
        elif key in _FIXED:
            msg = (
                f"explain shows one example and its mean: --{key.replace('_', '-')} cannot be "
                "set (`losskit eval` takes it)"
            )
            raise CliError(msg, 2)
        else:
            pairs.append((raw, value))
    missing = [k for k in info.extra if k not in arrays]
    if missing:
        flags = " and ".join(f"--{k}" for k in missing)
        raise CliError(f"{info.name} needs {flags} (one value per prediction)", 2)
    return loss_options(info, pairs, fixed=_FIXED), arrays


def _uses_step(info: LossInfo, x: np.ndarray) -> list[Step]:
    """What the catalogue formula reads off the input, shown before the loss."""
    import losskit as lk

    if info.uses == "softmax" and info.per_example:
        return [("softmax", "p = softmax(z)", np.asarray(lk.softmax(x)))]
    if info.uses == "sigmoid":
        return [("sigmoid", "σ(z) = 1 / (1 + e^-z)", np.asarray(lk.sigmoid(x)))]
    if info.uses == "sparsemax":
        from ..losses.sparsemax import sparsemax

        return [("sparsemax (exact zeros)", "p = sparsemax(z) = max(z - τ, 0)", sparsemax(x))]
    if info.uses == "exp":
        return [("probabilities", "q = e^(log q)", np.exp(x))]
    return []


def _general_steps(
    info: LossInfo, x: np.ndarray, per: np.ndarray, per_grad: np.ndarray, value: float, grad: Any
) -> list[Step]:
    """The catalogue's formula with the library's numbers, then the mean."""
    steps = _uses_step(info, x)
    if info.per_example:
        steps.append(("loss of the example", info.formula, value))
        steps.append(("gradient", info.gradient, grad))
        return steps
    n = x.size
    steps.append(("loss per element" if n > 1 else "loss", info.formula, per))
    steps.append(("gradient per element" if n > 1 else "gradient", info.gradient, per_grad))
    if n > 1:
        steps.append((f"mean over the {n} elements", "L = (1/n) Σ L_i", value))
        steps.append(("gradient of the mean", "dL/dx_i = (1/n) dL_i/dx_i", grad))
    return steps


def run(args: argparse.Namespace) -> int:
    import losskit as lk

    info = lookup(args.name)
    if info.name == "ctc":  # the alignment lattice, step by step (and as a picture: --out)
        from ._explain_ctc import explain_ctc

        return explain_ctc(args)
    if info.explain_as:  # pairs, triplets, batches of embeddings: arrays by their names
        from ._explain_arrays import explain_arrays

        return explain_arrays(args, info)
    opts, arrays = _split_options(info, args.extra)
    x = _explain_input(args, info)
    t = _explain_truth(args, info, x, opts)
    if info.input == "probs" and (x.min() < 0 or x.max() > 1):
        raise CliError(f"--probs must be in [0, 1]; got {fmt(x)}")
    extras = [arrays[k] for k in info.extra]

    # The library first: it refuses bad options and values with its own one-line message.
    def batch(a: np.ndarray) -> np.ndarray:
        return a[None] if info.per_example else a

    fn = functools.partial(info.fn, **opts)
    ts, es = batch(t), [batch(e) for e in extras]
    lib_value, lib_grad = call_quietly("explain", lambda: lk.value_and_grad(fn)(batch(x), ts, *es))
    lib_value = float(lib_value)
    lib_grad = np.asarray(lib_grad, dtype=np.float64).reshape(x.shape)
    with np.errstate(all="ignore"):  # log 0 = -inf and x/0 = inf are the numbers to show
        if handles(info, opts):
            steps, loss, grad = hand_steps(info, x, t, opts)
            steps_agree: bool | None = bool(
                np.isclose(lib_value, loss, rtol=1e-5, atol=1e-9)
                and np.allclose(lib_grad, grad, rtol=1e-5, atol=1e-9)
            )
        else:
            unreduced = functools.partial(fn, reduction="none")
            per, per_grad = call_quietly(
                "explain", lambda: lk.value_and_grad(unreduced)(batch(x), ts, *es)
            )
            per = np.asarray(per, dtype=np.float64)
            per_grad = np.asarray(per_grad, dtype=np.float64).reshape(x.shape)
            steps = _general_steps(info, x, per, per_grad, lib_value, lib_grad)
            steps_agree = None
    fd = check_gradient(lambda v: fn(batch(v), ts, *es), x, lib_grad)
    agrees = steps_agree is not False and fd.agrees
    if args.json:
        dump_json(
            {
                "loss": info.name,
                "input": {"kind": info.input, "values": x},
                "truth": {"kind": info.truth, "values": t},
                **{k: v for k, v in arrays.items()},
                "options": opts,
                "steps": [
                    {"what": w, "formula": f, "value": np.asarray(v).tolist()} for w, f, v in steps
                ],
                "value": lib_value,
                "gradient": lib_grad,
                "finite_differences": {
                    "gradient": [None if np.isnan(v) else float(v) for v in fd.estimate],
                    "kinks": [i for i, _, _ in fd.kinks],
                    "not_taken": fd.not_taken,
                    "agrees": fd.agrees,
                },
                "agrees_with_library": agrees,
            }
        )
        return _verdict(agrees, steps_agree, fd)
    _print(info, x, t, arrays, opts, steps)
    mark = (
        ""
        if steps_agree is None
        else (" (agrees)" if steps_agree else " (DIFFERS from the steps above)")
    )
    print(f"  losskit.{info.name} gives loss {lib_value:.6g} and gradient {fmt(lib_grad)}{mark}")
    _print_fd(fd, x, lib_grad)
    return _verdict(agrees, steps_agree, fd)


def _print(
    info: LossInfo,
    x: np.ndarray,
    t: np.ndarray,
    arrays: dict[str, np.ndarray],
    opts: dict[str, Any],
    steps: list[Step],
) -> None:
    print(f"{info.name}: {info.summary}")
    if info.truth == "ids" and t.ndim == 0:
        truth = f"label y = {int(t)}"
    elif info.truth == "label_sets":
        truth = f"label sets y = [{', '.join(str(int(v)) for v in t)}]"
    else:
        truth = f"targets t = {fmt(t)}"
    shown = [f"{k} = {fmt(v)}" for k, v in arrays.items()]
    shown += [f"{k} = {_shown(v)}" for k, v in opts.items()]
    symbol = _SYMBOL.get(first := _own_flag(info)[2:].replace("-", "_"), "predictions ŷ")
    if info.input == "scores" and first == "pred":  # hinge's formulas write the score ŷ
        symbol = "scores ŷ"
    print(f"  input {symbol} = {fmt(x)}, {truth}" + "".join(f", {s}" for s in shown))
    wf = max(len(f) for _, f, _ in steps)
    ww = max(len(w) for w, _, _ in steps)
    for i, (what, formula, value) in enumerate(steps, 1):
        print(f"{i:>3}. {what:<{ww}}  {formula:<{wf}}  = {fmt(value)}")


def _shown(v: Any) -> str:
    if v is None or isinstance(v, bool | np.bool_):
        return str(v).lower() if v is not None else "none"
    return f"{v:g}" if isinstance(v, int | float) else fmt(v)


def _print_fd(fd: Check, x: np.ndarray, grad: np.ndarray) -> None:
    if fd.skipped:
        print(f"  finite differences: not taken ({fd.skipped})")
        return
    mark = "agrees" if fd.agrees else "DIFFERS from the library's gradient"
    print(f"  central finite differences ({H_TEXT}) give {fmt(fd.estimate)} ({mark})")
    for i, left, right in fd.kinks:
        print(
            f"    x[{i}] = {x.flat[i]:g} is at a kink: one-sided slopes {left:.4g} (left) and "
            f"{right:.4g} (right); the library's {grad.flat[i]:.4g} lies between (a subgradient)"
        )
    for i in fd.not_taken:
        print(f"    x[{i}] = {x.flat[i]:g}: no finite difference (the loss is not finite nearby)")


def _verdict(agrees: bool, steps_agree: bool | None, fd: Check) -> int:
    """0, or 1 with the reason on stderr: a failing exit always says why there."""
    if agrees:
        return 0
    if steps_agree is False:
        why = "the library's result differs from the steps"
    else:
        at = ", ".join(f"x[{i}]" for i in fd.differs)
        why = f"the library's gradient differs from finite differences of the loss at {at}"
    print(f"{PROG} explain: error: {why}", file=sys.stderr)
    return 1
