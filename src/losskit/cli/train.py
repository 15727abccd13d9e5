"""``losskit train``: train an MLP on a dataset with one loss, or several side by side."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import catalogue
from ..catalogue import LossInfo
from ._common import (
    COUNT,
    FRACTION,
    MOMENTUM,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    CliError,
    call_quietly,
    check_output_path,
    dump_json,
    ints,
    lookup,
    loss_options,
    make_console,
    pair,
)


def add_parser(sub: Any) -> None:
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
    p.add_argument("--epochs", type=COUNT, default=200, help="at most this many (default 200)")
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam")
    p.add_argument("--lr", type=POSITIVE, help="learning rate (adam 1e-3, sgd 1e-2)")
    p.add_argument("--momentum", type=MOMENTUM, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=NON_NEGATIVE, default=1e-4, help="L2 (default 1e-4)")
    p.add_argument("--batch-size", type=COUNT, default=32)
    p.add_argument(
        "--hidden", default="128", help="hidden widths, e.g. 64,32 (default 128; 0 = none)"
    )
    p.add_argument(
        "--activation", choices=["relu", "tanh"], help="default relu (tanh for regression)"
    )
    p.add_argument(
        "--patience",
        type=NON_NEGATIVE_INT,
        default=20,
        help="early stopping on validation loss (default 20; 0 = off)",
    )
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="NumPy seeds are >= 0")
    p.add_argument("--val", type=FRACTION, default=0.15, help="validation fraction (0.15)")
    p.add_argument("--test", type=FRACTION, default=0.2, help="test fraction (0.2)")
    p.add_argument("--plot", metavar="FILE.png", help="write the training curves")
    p.add_argument("--save", metavar="FILE.npz", help="write the fitted model (no pickle)")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _progress(quiet: bool) -> Any:
    """A live progress line on a terminal; none when quiet or when stderr is a file or a pipe
    (a log gets the summary on stdout, not a bar's last frame)."""
    console = make_console(sys.stderr)
    if quiet or not console.is_terminal:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=console,
    )


def _kept_stats(h: Any, metric: str) -> str:
    """The progress line's last words: the kept epoch's validation numbers, as in the table."""
    if not h.best_epoch:
        return ""
    k = h.best_epoch - 1
    return f"kept epoch {h.best_epoch}: val {h.val_loss[k]:.4f} {metric} {h.val_metric[k]:.3f}"


def _train_one(
    args: argparse.Namespace, ds: Any, info: LossInfo, options: dict[str, Any], parts: Any
) -> Any:
    from ..train import NonFiniteLossError, train_model

    progress = _progress(args.quiet)
    task_id = None
    metric = "R²" if ds.task == "regression" else "acc"
    last_val = ""

    def on_batch(epoch: int, done: int, total: int, running: float) -> None:
        if progress is not None and (done == total or done % 5 == 0):
            progress.update(task_id, stats=f"loss {running:.4f}{last_val}")

    def on_epoch(h: Any) -> None:
        nonlocal last_val
        last_val = f" · val {h.val_loss[-1]:.4f} {metric} {h.val_metric[-1]:.3f}"
        if progress is not None:
            progress.update(task_id, advance=1, stats=f"loss {h.train_loss[-1]:.4f}{last_val}")

    kwargs = dict(
        loss=info.name,
        loss_options=options,
        hidden=ints(args.hidden, "--hidden"),
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
    try:
        if progress is None:
            return call_quietly("train", lambda: train_model(ds, **kwargs))
        with progress:
            task_id = progress.add_task(info.name, total=args.epochs, stats="")
            try:
                result = call_quietly("train", lambda: train_model(ds, **kwargs))
            except BaseException:
                progress.live.transient = True  # the error line replaces the bar
                raise
            h = result.history
            stop = "early stop" if h.stopped_early else "all epochs"
            # The bar ends on the kept epoch's numbers, the ones the table reports.
            progress.update(
                task_id,
                total=h.epochs,
                description=f"{info.name} ({stop})",
                stats=_kept_stats(h, metric),
            )
            return result
    except NonFiniteLossError as exc:
        where = f"batch {exc.batch} of {exc.n_batches}" if exc.batch else "validation"
        lr = "the default --lr" if args.lr is None else f"--lr {args.lr:g}"
        msg = (
            f"{info.name}: the loss became {exc.value} at epoch {exc.epoch} ({where}); "
            f"training stopped: {lr} is too large for this network, try a smaller --lr"
        )
        raise CliError(msg) from None
    except MemoryError as exc:
        msg = f"not enough memory to train this network ({exc}): try a smaller --hidden"
        raise CliError(msg) from None


def _metric_cells(task: str, m: dict[str, float]) -> list[str]:
    if task == "regression":
        return [f"{m['loss']:.4f}", f"{m['r2']:.3f}", f"{m['mae']:.4g}"]
    return [f"{m['loss']:.4f}", f"{100 * m['accuracy']:.2f}%"]


def _metric_headers(task: str) -> list[str]:
    return ["loss", "R²", "MAE"] if task == "regression" else ["loss", "accuracy"]


def run(args: argparse.Namespace) -> int:
    from ..train import data

    if args.dataset is None and args.data is None:
        raise CliError("give --dataset NAME or --data FILE --target COLUMN", 2)
    if args.data is not None and args.target is None:
        raise CliError("--data needs --target COLUMN (or a target .npy file)", 2)
    if args.val + args.test >= 1:
        msg = f"--val and --test must add up to less than 1; got {args.val:g} + {args.test:g}"
        raise CliError(msg, 2)
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
        if path is not None:  # fail now, not after the training
            check_output_path(flag, path, ext)
    from ..train.objective import LossMismatchError, Objective

    # Everything is checked before any training, not during it; each loss's options
    # (file-valued ones included) are parsed and loaded once, here.
    pairs = [pair(o) for o in args.option]
    named = losses or ([args.loss] if args.loss else [])
    chosen = [(info, loss_options(info, pairs, training=True)) for info in map(lookup, named)]
    for info, _ in chosen:
        if not info.tasks:  # said before Objective's "does not fit <dataset>", which misleads here
            extra = "".join(f" and {k}" for k in info.extra)
            msg = (
                f"{info.name} is not one of the losses `losskit train` can use (it takes "
                f"{catalogue.INPUTS[info.input]} against {catalogue.TRUTHS[info.truth]}{extra}); "
                "`losskit list` shows the ones that train, `losskit eval` computes any loss "
                "on your arrays"
            )
            raise CliError(msg)
    hidden = ints(args.hidden, "--hidden")

    try:
        ds = data.load(dataset=args.dataset, data=args.data, target=args.target, task=args.task)
    except data.UnknownDatasetError as exc:
        raise CliError(str(exc), 2) from None
    if not chosen:
        info = catalogue.lookup(catalogue.default_loss(ds.task))
        chosen = [(info, loss_options(info, pairs, training=True))]
    n_outputs = 1
    for info, options in chosen:
        try:
            obj = Objective(info.name, ds.task, ds.n_classes, dataset=ds.name, **options)
        except LossMismatchError as exc:
            raise CliError(str(exc)) from None
        n_outputs = max(n_outputs, obj.n_outputs)
        out = np.full((2, obj.n_outputs), 1.0 / obj.n_outputs if obj.output else 0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj.value(out, obj.encode(ds.y[:2]))  # the library checks the option values
    parts = data.split(ds, val=args.val, test=args.test, seed=args.seed)
    _check_memory(args.hidden, [ds.X.shape[1], *hidden, n_outputs], parts.X_train.shape[0])
    if not args.json:
        print(ds.describe(), file=sys.stderr)
    if len(chosen) == 1:
        result = _train_one(args, ds, *chosen[0], parts)
        if args.save:
            result.save(args.save)
        if args.plot:
            from .. import plots

            plots.save(plots.training_curves(result.history, title=_title(result)), args.plot)
        if args.json:
            out = result.as_dict()
            out.update(saved=args.save, plot=args.plot)
            dump_json(out)
        else:
            _print_result(result)
            for what, path in (("model", args.save), ("figure", args.plot)):
                if path:
                    print(f"{what} written to {path}", file=sys.stderr)
        return 0

    results = [_train_one(args, ds, info, options, parts) for info, options in chosen]
    if args.plot:
        from .. import plots

        plots.save(plots.compare(results), args.plot)
    if args.json:
        dump_json(
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


def _check_memory(text: str, sizes: list[int], rows: int) -> None:
    """Refuse, before allocating, a network too large for this machine's memory.

    Counted in float64: the weights, their gradients, Adam's two moments, the
    best epoch's copy and the copy that replaces it (6 per parameter), and three
    arrays per unit for the forward pass over the training split (pre-activation,
    activation, ReLU mask), which the final evaluation makes.
    """
    params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    need = 8 * (6 * params + 3 * rows * sum(sizes[1:]))
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): let NumPy say
        return
    if need > have:
        net = "-".join(str(s) for s in sizes)
        msg = (
            f"--hidden {text}: training a {net} network ({params:,} parameters) needs about "
            f"{need / 2**30:,.0f} GiB, more than this machine's {have / 2**30:,.0f} GiB of memory"
        )
        raise CliError(msg)


def _seconds(s: float) -> str:
    """``0.042`` -> ``"42 ms"``, ``3.71`` -> ``"3.7 s"``, ``184.3`` -> ``"184 s"``."""
    if s < 1:
        return f"{1000 * s:.0f} ms"
    return f"{s:.1f} s" if s < 100 else f"{s:.0f} s"


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
    console = make_console(sys.stdout)
    console.print(_title(result))
    console.print(table)
    console.print(
        f"{h.epochs} epochs ({stop}, kept epoch {h.best_epoch}) in {_seconds(result.seconds)}; "
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
    for head in [*extra, "time"]:
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
            _seconds(r.seconds),
        )
    console = make_console(sys.stdout)
    console.print(
        f"{results[0].dataset.name}: the same network "
        f"({results[0].model.describe()}) trained with each loss"
    )
    console.print(table)
    console.print("(each loss is on its own scale: compare the accuracy, R² or MAE columns)")
