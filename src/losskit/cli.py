"""The ``losskit`` command line: train, eval, explain, list, plot, bench.

Thin over the library: training is :func:`losskit.train.train_model`, the
losses come from :mod:`losskit.catalogue`, figures from :mod:`losskit.plots`
(imported only when a figure is asked for).

Results go to stdout; progress bars, warnings and errors go to stderr. With
``--json`` stdout holds exactly one JSON document, so it pipes into ``jq``.
Every error is one line on stderr, ``losskit CMD: error: what was wrong``,
and a non-zero exit: 2 for a command line that cannot be understood (an
unknown option, loss or dataset), 1 for everything else (a missing file, a
malformed CSV, a loss that does not fit the target). Set
``LOSSKIT_DEBUG=1`` to see the traceback instead.

Examples
--------
>>> main(["list", "--json"])  # doctest: +ELLIPSIS
[{"name": "softmax_cross_entropy", ...}]
0
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import IO, Any, NoReturn

import numpy as np

from . import catalogue
from .catalogue import LossInfo, UnknownLossError

__all__ = ["CliError", "main"]

PROG = "losskit"
FIGURES = ("cross-entropy", "binary-cross-entropy", "mse-vs-mae", "sigmoid-gradient")
_FIGURE_OF_INPUT = {
    ("logits", "ids"): "cross-entropy",
    ("logits", "distributions"): "cross-entropy",
    ("probs", "ids"): "cross-entropy",
    ("probs", "distributions"): "cross-entropy",
    ("logits", "binary"): "binary-cross-entropy",
    ("probs", "binary"): "binary-cross-entropy",
    ("real", "real"): "mse-vs-mae",
}


class CliError(Exception):
    """An error for the user: printed as one line, exit with ``code``."""

    def __init__(self, message: str, code: int = 1, prog: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and does not exit by itself."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message, code=2, prog=self.prog)


# -- small helpers ------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _console(stream: IO[str]) -> Any:
    from rich.console import Console

    width = None if stream.isatty() else 120
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, markup=False)


def _floats(text: str, what: str) -> np.ndarray:
    """``"2,0.5,6"`` -> ``array([2. , 0.5, 6. ])``."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise CliError(f"{what} must be numbers separated by commas; got {text!r}", 2) from None
    if not values:
        raise CliError(f"{what} is empty", 2)
    return np.array(values)


def _ints(text: str, what: str) -> tuple[int, ...]:
    if text.strip().lower() in ("", "none", "0"):
        return ()
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        msg = f"{what} must be integers separated by commas (e.g. 64,32); got {text!r}"
        raise CliError(msg, 2) from None
    if any(v < 1 for v in values):
        raise CliError(f"{what} must be positive; got {text!r}", 2)
    return values


def _lookup(name: str) -> LossInfo:
    try:
        return catalogue.lookup(name)
    except UnknownLossError as exc:
        raise CliError(str(exc), 2) from None


def _fmt(x: Any, digits: int = 6) -> str:
    """A number or a vector, short: ``0.0221552`` or ``[0.0179, 0.004, -0.0219]``."""
    arr = np.asarray(x, dtype=np.float64) + 0.0  # no "-0"
    if arr.ndim == 0:
        return f"{float(arr):.{digits}g}"
    return "[" + ", ".join(f"{float(v):.{min(digits, 4)}g}" for v in arr.ravel()) + "]"


def _option_value(text: str) -> Any:
    """Command-line option text as a Python value: number, bool, None, list, file, or text."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if "," in text:
        try:
            return np.array([float(v) for v in text.split(",")])
        except ValueError:
            pass
    if os.path.splitext(text)[1].lower() in (".npy", ".csv", ".json"):
        from .train.data import load_array

        return load_array(text, what="option")
    return text


def _loss_options(
    info: LossInfo, pairs: Sequence[tuple[str, str]], *, training: bool = False
) -> dict[str, Any]:
    """``[("label-smoothing", "0.1")]`` -> ``{"label_smoothing": 0.1}``, checked.

    With ``training``, the options the training loop sets itself (reduction,
    axis, sample_weight) are refused with the reason.
    """
    from .train.objective import LOOP_OWNED, check_loop_owned

    params = inspect.signature(info.fn).parameters
    allowed = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    if training:
        allowed = [n for n in allowed if n not in LOOP_OWNED]
    options: dict[str, Any] = {}
    for raw, value in pairs:
        key = raw.lstrip("-").replace("-", "_")
        if training:
            try:
                check_loop_owned([key])
            except ValueError as exc:
                raise CliError(str(exc), 2) from None
        if key not in allowed:
            shown = ", ".join("--" + a.replace("_", "-") for a in allowed)
            has = f"its options are: {shown}" if allowed else "it takes none"
            msg = f"{info.name} has no option --{raw.lstrip('-')}; {has}"
            raise CliError(msg, 2)
        options[key] = value.strip().lower() if key == "reduction" else _option_value(value)
    return options


def _pair(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key, value


def _option_pairs(extra: Sequence[str]) -> list[tuple[str, str]]:
    """Unknown ``--key value`` / ``--key=value`` tokens left over by argparse."""
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--") or token == "--":
            raise CliError(f"unrecognized argument: {token}", 2)
        if "=" in token:
            key, value = token.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(extra):
                raise CliError(f"option {token} needs a value", 2)
            key, value = token, extra[i + 1]
            i += 2
        pairs.append((key, value))
    return pairs


def _warn_lines(caught: Sequence[warnings.WarningMessage], command: str) -> None:
    seen = set()
    for w in caught:
        line = f"{PROG} {command}: warning: {_one_line(str(w.message))}"
        if line not in seen:
            seen.add(line)
            print(line, file=sys.stderr)


def _call_quietly(command: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` turning the library's warnings into one-line messages on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    _warn_lines(caught, command)
    return result


def _dump_json(obj: Any) -> None:
    def default(o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(type(o).__name__)

    def clean(o: Any) -> Any:  # NaN/inf are not JSON: write null
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [clean(v) for v in o]
        return o

    print(json.dumps(clean(json.loads(json.dumps(obj, default=default))), allow_nan=False))


# -- train ----------------------------------------------------------------------------------


def _add_train(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a small network on a dataset",
        description="Train an MLP with a losskit loss: progress per epoch, then a table of "
        "train/validation/test loss and accuracy (R² and MAE for regression).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--dataset", metavar="NAME", help="digits, iris, wine, breast_cancer, diabetes"
    )
    src.add_argument("--data", metavar="FILE", help="a .csv with a header row, or a .npy array")
    p.add_argument("--target", metavar="COLUMN|FILE", help="target column (or .npy/.csv file)")
    p.add_argument("--task", choices=["classification", "regression"], help="override inference")
    p.add_argument("--loss", metavar="NAME", help="default: the one that fits the task")
    p.add_argument("--compare", metavar="LOSS1,LOSS2", help="train once per loss, side by side")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="loss option, e.g. label_smoothing=0.1 (repeatable)",
    )
    p.add_argument("--epochs", type=int, default=200, help="at most this many (default 200)")
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam")
    p.add_argument("--lr", type=float, help="learning rate (adam 1e-3, sgd 1e-2)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="L2 (default 1e-4)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--hidden", default="128", help="hidden widths, e.g. 64,32 (default 128; 0 = none)"
    )
    p.add_argument(
        "--activation", choices=["relu", "tanh"], help="default relu (tanh for regression)"
    )
    p.add_argument(
        "--patience",
        type=int,
        default=20,
        help="early stopping on validation loss (default 20; 0 = off)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val", type=float, default=0.15, help="validation fraction (0.15)")
    p.add_argument("--test", type=float, default=0.2, help="test fraction (0.2)")
    p.add_argument("--plot", metavar="FILE.png", help="write the training curves")
    p.add_argument("--save", metavar="FILE.npz", help="write the fitted model (no pickle)")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _progress(quiet: bool) -> Any:
    if quiet:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[val]}"),
        TimeElapsedColumn(),
        console=_console(sys.stderr),
    )


def _train_one(
    args: argparse.Namespace, ds: Any, info: LossInfo, options: dict[str, Any], parts: Any
) -> Any:
    from .train import train_model

    progress = _progress(args.quiet)
    task_id = None
    metric = "R²" if ds.task == "regression" else "acc"

    def on_batch(epoch: int, done: int, total: int, running: float) -> None:
        if progress is not None and (done == total or done % 5 == 0):
            progress.update(task_id, loss=f"{running:.4f}")

    def on_epoch(h: Any) -> None:
        if progress is not None:
            progress.update(
                task_id,
                advance=1,
                loss=f"{h.train_loss[-1]:.4f}",
                val=f"val {h.val_loss[-1]:.4f} {metric} {h.val_metric[-1]:.3f}",
            )

    kwargs = dict(
        loss=info.name,
        loss_options=options,
        hidden=_ints(args.hidden, "--hidden"),
        activation=args.activation or ("tanh" if ds.task == "regression" else "relu"),
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        epochs=args.epochs,
        batch_size=args.batch_size,
        patience=args.patience or None,
        seed=args.seed,
        parts=parts,
        on_batch=on_batch,
        on_epoch=on_epoch,
    )
    if progress is None:
        return _call_quietly("train", lambda: train_model(ds, **kwargs))
    with progress:
        task_id = progress.add_task(f"{info.name}", total=args.epochs, loss="-", val="")
        result = _call_quietly("train", lambda: train_model(ds, **kwargs))
        h = result.history
        if h.stopped_early:
            progress.update(
                task_id,
                total=h.epochs,
                description=f"{info.name} (early stop, best epoch {h.best_epoch})",
            )
        return result


def _metric_cells(task: str, m: dict[str, float]) -> list[str]:
    if task == "regression":
        return [f"{m['loss']:.4f}", f"{m['r2']:.3f}", f"{m['mae']:.4g}"]
    return [f"{m['loss']:.4f}", f"{100 * m['accuracy']:.2f}%"]


def _metric_headers(task: str) -> list[str]:
    return ["loss", "R²", "MAE"] if task == "regression" else ["loss", "accuracy"]


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import data

    if args.dataset is None and args.data is None:
        raise CliError("give --dataset NAME or --data FILE --target COLUMN", 2)
    if args.data is not None and args.target is None:
        raise CliError("--data needs --target COLUMN (or a target .npy file)", 2)
    if args.epochs < 1 or args.batch_size < 1:
        raise CliError("--epochs and --batch-size must be at least 1", 2)
    if args.option and any("=" not in o for o in args.option):
        raise CliError("--option takes KEY=VALUE, e.g. --option label_smoothing=0.1", 2)
    losses = [s.strip() for s in args.compare.split(",") if s.strip()] if args.compare else []
    if args.compare and args.loss:
        raise CliError("give either --loss or --compare, not both", 2)
    if args.compare and len(losses) < 2:
        raise CliError("--compare needs at least two losses, e.g. --compare mse,cross_entropy", 2)
    if losses and args.save:
        raise CliError("--save keeps one model: use it with --loss, not --compare", 2)
    for flag, path, ext in (("--plot", args.plot, ".png"), ("--save", args.save, ".npz")):
        if path is None:
            continue
        if not path.lower().endswith(ext):
            raise CliError(f"{flag} must be a {ext} file; got {path!r}", 2)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):  # fail now, not after the training
            raise CliError(f"{flag}: no such directory: {os.path.dirname(path)}")
    from .train.objective import LossMismatchError, Objective
    from .train.optim import make_optimizer

    # Everything is checked before any training, not during it; each loss's options
    # (file-valued ones included) are parsed and loaded once, here.
    pairs = [_pair(o) for o in args.option]
    named = losses or ([args.loss] if args.loss else [])
    chosen = [(info, _loss_options(info, pairs, training=True)) for info in map(_lookup, named)]
    _ints(args.hidden, "--hidden")
    try:  # the optimiser's own checks of --lr and --momentum
        make_optimizer(
            args.optimizer, [], lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
        )
    except ValueError as exc:
        raise CliError(str(exc), 2) from None

    try:
        ds = data.load(dataset=args.dataset, data=args.data, target=args.target, task=args.task)
    except data.UnknownDatasetError as exc:
        raise CliError(str(exc), 2) from None
    if not chosen:
        info = catalogue.lookup(catalogue.default_loss(ds.task))
        chosen = [(info, _loss_options(info, pairs, training=True))]
    for info, options in chosen:
        try:
            obj = Objective(info.name, ds.task, ds.n_classes, dataset=ds.name, **options)
        except LossMismatchError as exc:
            raise CliError(str(exc)) from None
        out = np.full((2, obj.n_outputs), 1.0 / obj.n_outputs if obj.output else 0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj.value(out, obj.encode(ds.y[:2]))  # the library checks the option values
    parts = data.split(ds, val=args.val, test=args.test, seed=args.seed)
    if not args.json:
        print(ds.describe(), file=sys.stderr)
    if len(chosen) == 1:
        result = _train_one(args, ds, *chosen[0], parts)
        if args.save:
            result.save(args.save)
        if args.plot:
            from . import plots

            plots.save(plots.training_curves(result.history, title=_title(result)), args.plot)
        if args.json:
            out = result.as_dict()
            out.update(saved=args.save, plot=args.plot)
            _dump_json(out)
        else:
            _print_result(result)
            for what, path in (("model", args.save), ("figure", args.plot)):
                if path:
                    print(f"{what} written to {path}", file=sys.stderr)
        return 0

    results = [_train_one(args, ds, info, options, parts) for info, options in chosen]
    if args.plot:
        from . import plots

        plots.save(plots.compare(results), args.plot)
    if args.json:
        _dump_json(
            {
                "dataset": ds.name,
                "task": ds.task,
                "plot": args.plot,
                "runs": [r.as_dict() for r in results],
            }
        )
    else:
        _print_compare(results)
        if args.plot:
            print(f"figure written to {args.plot}", file=sys.stderr)
    return 0


def _title(result: Any) -> str:
    return f"{result.dataset.name} · {result.objective.name} · {result.model.describe()}"


def _print_result(result: Any) -> None:
    from rich.table import Table

    task = result.dataset.task
    h = result.history
    table = Table()
    table.add_column("split")
    for head in _metric_headers(task):
        table.add_column(head, justify="right")
    for split_name, label in (("train", "train"), ("val", "validation"), ("test", "test")):
        table.add_row(label, *_metric_cells(task, result.metrics[split_name]))
    stop = "early stop" if h.stopped_early else "all epochs"
    cfg = result.config
    console = _console(sys.stdout)
    console.print(_title(result))
    console.print(table)
    console.print(
        f"{h.epochs} epochs ({stop}, kept epoch {h.best_epoch}) in {result.seconds:.1f} s; "
        f"{cfg['optimizer']} lr={cfg['lr']:g}, batch {cfg['batch_size']}, seed {cfg['seed']}"
    )
    if task == "regression":
        console.print("(loss on the standardised target; MAE in the target's own unit)")


def _print_compare(results: Sequence[Any]) -> None:
    from rich.table import Table

    task = results[0].dataset.task
    table = Table()
    table.add_column("loss")
    for head in ("epochs", "train loss", "val loss", "test loss"):
        table.add_column(head, justify="right")
    extra = ["test R²", "test MAE"] if task == "regression" else ["val acc", "test acc"]
    for head in [*extra, "seconds"]:
        table.add_column(head, justify="right")
    for r in results:
        m = r.metrics
        if task == "regression":
            cells = [f"{m['test']['r2']:.3f}", f"{m['test']['mae']:.4g}"]
        else:
            cells = [f"{100 * m[s]['accuracy']:.2f}%" for s in ("val", "test")]
        table.add_row(
            r.objective.name,
            f"{r.history.epochs} (best {r.history.best_epoch})",
            *[f"{m[s]['loss']:.4f}" for s in ("train", "val", "test")],
            *cells,
            f"{r.seconds:.1f}",
        )
    console = _console(sys.stdout)
    console.print(
        f"{results[0].dataset.name}: the same network "
        f"({results[0].model.describe()}) trained with each loss"
    )
    console.print(table)
    console.print("(each loss is on its own scale: compare the accuracy, R² or MAE columns)")


# -- eval -----------------------------------------------------------------------------------


def _add_eval(sub: Any) -> None:
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
    p.set_defaults(func=_cmd_eval, accepts_extra=True)


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


def _cmd_eval(args: argparse.Namespace) -> int:
    from .train.data import load_array

    info = _lookup(args.name)
    options = _loss_options(info, _option_pairs(args.extra))
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
        value, grad = _call_quietly("eval", lambda: lk.value_and_grad(fn)(pred, target))
        grad = np.asarray(grad)
        try:
            np.save(args.grad, grad, allow_pickle=False)
        except OSError as exc:
            raise CliError(f"cannot write {args.grad}: {exc.strerror or exc}") from None
    else:
        value, grad = _call_quietly("eval", lambda: fn(pred, target)), None
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
        _dump_json(out)
    else:
        shown = f"{float(value):.7g}" if value.ndim == 0 else np.array2string(value, precision=6)
        print(f"{info.name} (reduction={reduction}): {shown}")
        if grad is not None:
            print(
                f"gradient d loss / d {info.input} {grad.shape} written to {args.grad}",
                file=sys.stderr,
            )
    return 0


# -- explain --------------------------------------------------------------------------------


def _add_explain(sub: Any) -> None:
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
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--pos-weight", type=float, help="sigmoid_cross_entropy's positive weight")
    p.add_argument("--eps", type=float, default=1e-7, help="clipping of probability losses")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.set_defaults(func=_cmd_explain)


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
        return _floats(given[info.input], _FLAG[info.input])
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
        t = _floats(args.targets, "--targets")
        if t.size != n:
            raise CliError(f"--targets has {t.size} values; the input has {n} classes")
        if info.truth == "distributions":
            return t
        if np.count_nonzero(t) == 1 and t.max() == 1:
            return np.array(int(np.argmax(t)))
        dense = info.name.replace("sparse_", "")
        msg = f"{info.name} takes one class id: give --label (for a distribution use {dense})"
        raise CliError(msg, 2)
    t = _floats(args.label if args.label is not None else args.targets, "--targets")
    if t.size == 1 and n > 1:
        t = np.full(n, t[0])
    if t.size != n:
        raise CliError(f"--targets has {t.size} values; the input has {n}")
    return t


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


def _cmd_explain(args: argparse.Namespace) -> int:
    import losskit as lk

    info = _lookup(args.name)
    if args.label_smoothing and info.name not in (
        "softmax_cross_entropy",
        "sparse_softmax_cross_entropy",
        "sigmoid_cross_entropy",
    ):
        raise CliError(f"{info.name} has no option --label-smoothing", 2)
    if args.pos_weight is not None and info.name != "sigmoid_cross_entropy":
        raise CliError(f"{info.name} has no option --pos-weight", 2)
    if not 0 <= args.label_smoothing <= 1:
        raise CliError(f"--label-smoothing must be in [0, 1]; got {args.label_smoothing:g}", 2)
    x = _explain_input(args, info)
    t = _explain_truth(args, info, x)
    if info.input == "probs" and (x.min() < 0 or x.max() > 1):
        raise CliError(f"--probs must be in [0, 1]; got {_fmt(x)}")
    with np.errstate(all="ignore"):  # log 0 = -inf and x/0 = inf are the numbers to show
        steps, loss, grad, opts = _explain_steps(info, x, t, args)

    # The same numbers from the library itself: the steps above are the formulas it computes.
    fn = functools.partial(info.fn, **opts)
    batch = info.truth in ("ids", "distributions")
    xs, ts = (x[None], t[None]) if batch else (x, t)
    lib_value, lib_grad = _call_quietly("explain", lambda: lk.value_and_grad(fn)(xs, ts))
    lib_value = float(lib_value)
    lib_grad = np.asarray(lib_grad).reshape(x.shape)
    agrees = bool(
        np.isclose(lib_value, loss, rtol=1e-5, atol=1e-9)
        and np.allclose(lib_grad, grad, rtol=1e-5, atol=1e-9)
    )
    if args.json:
        _dump_json(
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
        return 0
    what_t = "label y" if (info.truth == "ids" and t.ndim == 0) else "targets t"
    head = f"{info.name}: {info.summary}"
    print(head)
    symbol = {"logits": "logits z", "probs": "probabilities p", "real": "predictions ŷ"}
    print(
        f"  input {symbol[info.input]} = {_fmt(x)}, {what_t} = {_fmt(t) if t.ndim else int(t)}"
        + "".join(f", {k} = {v:g}" for k, v in opts.items())
    )
    wf = max(len(f) for _, f, _ in steps)
    ww = max(len(w) for w, _, _ in steps)
    for i, (what, formula, value) in enumerate(steps, 1):
        print(f"{i:>3}. {what:<{ww}}  {formula:<{wf}}  = {_fmt(value)}")
    mark = "agrees" if agrees else "DIFFERS from the steps above"
    print(
        f"  losskit.{info.name} gives loss {lib_value:.6g} and gradient {_fmt(lib_grad)} ({mark})"
    )
    return 0 if agrees else 1


# -- list -----------------------------------------------------------------------------------


def _add_list(sub: Any) -> None:
    p = sub.add_parser("list", help="every loss: what it takes and what it is for")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.set_defaults(func=_cmd_list)


def _cmd_list(args: argparse.Namespace) -> int:
    rows = list(catalogue.CATALOGUE.values())
    if args.json:
        _dump_json(
            [
                {
                    "name": i.name,
                    "input": i.input,
                    "truth": i.truth,
                    "tasks": list(i.tasks),
                    "summary": i.summary,
                    "formula": i.formula,
                    "gradient": i.gradient,
                    "aliases": list(i.aliases),
                    "replaces": i.replaces,
                }
                for i in rows
            ]
        )
        return 0
    from rich.table import Table

    table = Table(title="losskit losses")
    for head in ("name", "takes", "truth", "what it is for"):
        table.add_column(head)
    for i in rows:
        also = f" (also: {', '.join(i.aliases)})" if i.aliases else ""
        table.add_row(i.name, i.input, i.truth, i.summary + also)
    console = _console(sys.stdout)
    console.print(table)
    console.print(
        "takes: logits (any real) | probs (in [0, 1]) | real;  "
        "truth: ids | distributions | binary (0/1 or soft) | real"
    )
    return 0


# -- plot -----------------------------------------------------------------------------------


def _add_plot(sub: Any) -> None:
    p = sub.add_parser(
        "plot",
        help="explanatory figures of the losses",
        description="Figures: " + ", ".join(FIGURES) + "; a loss name picks its figure; "
        "`all` writes every figure into the directory given by --out.",
    )
    p.add_argument("name", metavar="NAME", help=f"{', '.join(FIGURES)}, a loss name, or all")
    p.add_argument("--out", required=True, metavar="FILE.png", help="where to write the PNG")
    p.set_defaults(func=_cmd_plot)


def _cmd_plot(args: argparse.Namespace) -> int:
    key = args.name.strip().lower().replace("_", "-")
    if key == "all":
        names = list(FIGURES)
    elif key in FIGURES:
        names = [key]
    else:
        try:
            info = catalogue.lookup(args.name)
        except UnknownLossError:
            msg = (
                f"unknown figure {args.name!r}; choose one of {', '.join(FIGURES)}, all, "
                "or a loss name"
            )
            raise CliError(msg, 2) from None
        names = [_FIGURE_OF_INPUT[(info.input, info.truth)]]
    if key == "all":
        os.makedirs(args.out, exist_ok=True)
        paths = [os.path.join(args.out, f"{n}.png") for n in names]
    else:
        if not args.out.lower().endswith(".png"):
            raise CliError(f"--out must be a .png file; got {args.out!r}", 2)
        paths = [args.out]
    from . import plots

    for n, path in zip(names, paths, strict=True):
        plots.save(plots.FIGURES[n](), path)
        print(f"{n}: written to {path}", file=sys.stderr)
    return 0


# -- bench ----------------------------------------------------------------------------------


def _add_bench(sub: Any) -> None:
    p = sub.add_parser(
        "bench", help="speed against torch/jax and the bandwidth floor", add_help=False
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    try:
        import importlib

        benchmark = importlib.import_module("losskit.benchmark")
    except ImportError as exc:
        raise CliError(f"the benchmark is not available: {exc}") from None
    code = benchmark.main(list(args.rest))
    return int(code or 0)


# -- main -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Loss functions with exact gradients: train, evaluate, explain, plot.",
    )
    try:
        from importlib.metadata import version

        ver = version("losskit")
    except Exception:
        ver = "unknown"
    parser.add_argument("--version", action="version", version=f"{PROG} {ver}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (_add_train, _add_eval, _add_explain, _add_list, _add_plot, _add_bench):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    command = ""
    try:
        if argv and argv[0] == "bench":
            command = "bench"
            return _cmd_bench(argparse.Namespace(rest=argv[1:]))
        args, extra = parser.parse_known_args(argv)
        command = args.command or ""
        if not command:
            parser.print_help(sys.stderr)
            return 2
        if extra and not getattr(args, "accepts_extra", False):
            raise CliError(f"unrecognized arguments: {' '.join(extra)}", 2)
        args.extra = extra
        return int(args.func(args))
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("LOSSKIT_DEBUG"):
            raise
        code = exc.code if isinstance(exc, CliError) else 1
        prefix = f"{PROG} {command}".rstrip()
        if isinstance(exc, CliError) and exc.prog:
            prefix = exc.prog
        missing = (getattr(exc, "name", None) or "") if isinstance(exc, ImportError) else ""
        missing = missing.split(".")[0]
        if missing in ("rich", "matplotlib", "sklearn"):
            text = f"this command needs {missing}: pip install 'losskit[cli]'"
        elif isinstance(exc, FileNotFoundError):
            text = f"no such file: {exc.filename}"
        elif isinstance(exc, OSError) and exc.filename:
            text = f"{exc.filename}: {exc.strerror}"
        elif isinstance(exc, CliError | ValueError | TypeError | ImportError | OSError):
            text = str(exc)
        else:
            text = (
                f"internal error ({type(exc).__name__}: {exc}); LOSSKIT_DEBUG=1 shows the traceback"
            )
        print(f"{prefix}: error: {_one_line(text)}", file=sys.stderr)
        return code
