"""``losskit list``: every loss, what it takes and what it is for, by family."""

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
                    "family": i.family,
                    "input": i.input,
                    "truth": i.truth,
                    "inputs": list(i.inputs),
                    "extra": list(i.extra),
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
    from rich.text import Text

    table = Table(title="losskit losses")
    table.add_column("name", no_wrap=True)  # a name cut short is no name
    table.add_column("takes", max_width=16)  # "embeddings + positive + negative" wraps
    table.add_column("truth", no_wrap=True)
    table.add_column("trains", max_width=18)
    table.add_column("what it is for", overflow="fold")  # long aliases fold, never cut
    # Families in the catalogue's order, each under its heading (a family's rows are adjacent).
    for family in dict.fromkeys(i.family for i in rows):
        members = [i for i in rows if i.family == family]
        table.add_row(Text(catalogue.FAMILIES[family], style="bold"))
        for k, i in enumerate(members):
            also = f" (also: {', '.join(i.aliases)})" if i.aliases else ""
            table.add_row(
                i.name,
                " + ".join([i.input, *i.inputs, *i.extra]),
                i.truth,
                ", ".join(i.tasks) or "-",
                i.summary + also,
                end_section=k == len(members) - 1,
            )
    console = make_console(sys.stdout)
    console.print(table)
    legend = [
        "takes: " + "; ".join(f"{k} = {v}" for k, v in catalogue.INPUTS.items()),
        "truth: " + "; ".join(f"{k} = {v}" for k, v in catalogue.TRUTHS.items()),
        "trains: the tasks `losskit train` can use it for;  "
        "`losskit explain NAME` shows a loss step by step",
        "nll names negative_log_likelihood (log-probabilities, as torch's nll_loss); it used to "
        "name sparse_categorical_cross_entropy (probabilities), still there under that name",
    ]
    for line in legend:
        console.print(line)
    return 0
