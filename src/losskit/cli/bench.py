"""``losskit bench``: forwarded to :mod:`losskit.benchmark` (imported only here)."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import CliError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench", help="speed against torch/jax and the bandwidth floor", add_help=False
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import importlib

        benchmark = importlib.import_module("losskit.benchmark")
    except ImportError as exc:
        raise CliError(f"the benchmark is not available: {exc}") from None
    code = benchmark.main(list(args.rest))
    return int(code or 0)
