"""``losskit list``: every loss, what it takes and what it is for."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import catalogue
from ._common import dump_json, make_console


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="every loss: what it takes and what it is for")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = list(catalogue.CATALOGUE.values())
    if args.json:
        dump_json(
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
    console = make_console(sys.stdout)
    console.print(table)
    console.print(
        "takes: logits (any real) | probs (in [0, 1]) | real;  "
        "truth: ids | distributions | binary (0/1 or soft) | real"
    )
    return 0
