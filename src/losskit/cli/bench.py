"""``losskit bench [ctc|linear|vocab-parallel] ...``: forwarded to a benchmark module
(imported only here).

Without a subject it times the softmax cross-entropy family (:mod:`losskit.benchmark`).
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from ._common import CliError

#: ``losskit bench SUBJECT`` -> the module whose ``main(argv)`` runs it.
SUBJECTS = {
    "softmax": "losskit.benchmark",
    "ctc": "losskit.benchmark_ctc",
    "linear": "losskit.benchmark_linear",
    "vocab-parallel": "losskit.benchmark_vocab_parallel",
}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="speed against torch/jax and the floor (softmax, ctc, linear, vocab-parallel)",
        add_help=False,
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rest = list(args.rest)
    subject = rest.pop(0) if rest and rest[0] in SUBJECTS else "softmax"
    try:
        benchmark = importlib.import_module(SUBJECTS[subject])
    except ImportError as exc:
        raise CliError(f"the {subject} benchmark is not available: {exc}") from None
    code = benchmark.main(rest)
    return int(code or 0)
