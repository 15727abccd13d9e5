"""``losskit plot``: a loss and its gradient, or one of the explanatory figures (matplotlib).

``losskit plot LOSS --out FILE.png`` draws any catalogued loss and its
gradient along one input (:func:`losskit.plots.loss_figure`);
``losskit plot FIGURE`` draws one of the tutorials' figures, and
``losskit plot all --out DIR`` writes every figure and every loss's picture.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .. import catalogue
from ..catalogue import UnknownLossError
from ._common import CliError

FIGURES = ("cross-entropy", "binary-cross-entropy", "mse-vs-mae", "sigmoid-gradient")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "plot",
        help="a loss and its gradient, or an explanatory figure",
        description="A loss name (see `losskit list`) draws that loss and its gradient along "
        "one input; " + ", ".join(FIGURES) + " (spelt with hyphens) are the tutorials' "
        "figures; `all` writes every "
        "figure and every loss's picture into the directory given by --out.",
    )
    p.add_argument("name", metavar="NAME", help=f"a loss name, {', '.join(FIGURES)}, or all")
    p.add_argument(
        "--out", required=True, metavar="FILE.png", help="where to write the PNG (all: a directory)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import plots

    # A figure by its hyphenated name only: binary_cross_entropy is the loss's picture,
    # binary-cross-entropy the tutorials' figure.
    key = args.name.strip().lower()
    jobs: list[tuple[str, Any]] = []  # (name, figure maker)
    if key == "all":
        jobs = [(n, plots.FIGURES[n]) for n in FIGURES]
        jobs += [(n, _loss_maker(plots, n)) for n in catalogue.names()]
    elif key in FIGURES:
        jobs = [(key, plots.FIGURES[key])]
    else:
        try:
            info = catalogue.lookup(args.name)
        except UnknownLossError as exc:
            figures = f"the figures: {', '.join(FIGURES)}, all"
            text = str(exc)
            shows = "(`losskit list` shows all)"
            msg = text.replace(shows, f"(`losskit list` shows all; {figures})")
            if msg == text:
                msg = f"{text} ({figures})"
            raise CliError(msg, 2) from None
        jobs = [(info.name, _loss_maker(plots, info.name))]
    if key == "all":
        os.makedirs(args.out, exist_ok=True)
        paths = [os.path.join(args.out, f"{n}.png") for n, _ in jobs]
    else:
        if not args.out.lower().endswith(".png"):
            raise CliError(f"--out must be a .png file; got {args.out!r}", 2)
        paths = [args.out]
    for (n, make), path in zip(jobs, paths, strict=True):
        plots.save(make(), path)
        print(f"{n}: written to {path}", file=sys.stderr)
    return 0


def _loss_maker(plots: Any, name: str) -> Any:
    return lambda: plots.loss_figure(name)
