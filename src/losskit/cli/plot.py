"""``losskit plot``: the explanatory figures (matplotlib, imported only here)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .. import catalogue
from ..catalogue import UnknownLossError
from ._common import CliError

FIGURES = ("cross-entropy", "binary-cross-entropy", "mse-vs-mae", "sigmoid-gradient")
# The losses each figure shows; the other losses have no figure yet.
_FIGURE_OF_LOSS = {
    "softmax_cross_entropy": "cross-entropy",
    "sparse_softmax_cross_entropy": "cross-entropy",
    "categorical_cross_entropy": "cross-entropy",
    "sparse_categorical_cross_entropy": "cross-entropy",
    "binary_cross_entropy": "binary-cross-entropy",
    "sigmoid_cross_entropy": "binary-cross-entropy",
    "mean_squared_error": "mse-vs-mae",
    "mean_absolute_error": "mse-vs-mae",
}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "plot",
        help="explanatory figures of the losses",
        description="Figures: " + ", ".join(FIGURES) + "; a loss name picks its figure; "
        "`all` writes every figure into the directory given by --out.",
    )
    p.add_argument("name", metavar="NAME", help=f"{', '.join(FIGURES)}, a loss name, or all")
    p.add_argument("--out", required=True, metavar="FILE.png", help="where to write the PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
        if info.name not in _FIGURE_OF_LOSS:
            msg = (
                f"no figure shows {info.name} yet; choose one of {', '.join(FIGURES)}, all, "
                "or one of their losses (`losskit explain` shows any loss step by step)"
            )
            raise CliError(msg, 2)
        names = [_FIGURE_OF_LOSS[info.name]]
    if key == "all":
        os.makedirs(args.out, exist_ok=True)
        paths = [os.path.join(args.out, f"{n}.png") for n in names]
    else:
        if not args.out.lower().endswith(".png"):
            raise CliError(f"--out must be a .png file; got {args.out!r}", 2)
        paths = [args.out]
    from .. import plots

    for n, path in zip(names, paths, strict=True):
        plots.save(plots.FIGURES[n](), path)
        print(f"{n}: written to {path}", file=sys.stderr)
    return 0
