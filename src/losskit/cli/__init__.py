"""The ``losskit`` command line: train, eval, explain, list, plot, bench.

Thin over the library: training is :func:`losskit.train.train_model`, the
losses come from :mod:`losskit.catalogue`, figures from :mod:`losskit.plots`
(imported only when a figure is asked for). One module per command, each
with ``add_parser(sub)`` and ``run(args)``; what they share (the one-line
error, option parsing, JSON output) is in :mod:`losskit.cli._common`.

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
import os
import sys
import warnings
from collections.abc import Sequence

# Named so that none shadows a builtin: importing a submodule binds its name in
# this package's namespace, where `main` uses `list` (hence listing, evaluate).
from . import bench, evaluate, explain, listing, plot, train
from ._common import PROG, CliError, Parser, error_line, join_negative_values, warn_lines

__all__ = ["CliError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Loss functions with exact gradients: train, evaluate, explain, plot.",
    )
    try:
        from importlib.metadata import version

        ver = version("losskit")
    except Exception:
        ver = "unknown"
    parser.add_argument("--version", action="version", version=f"{PROG} {ver}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in (train, evaluate, explain, listing, plot, bench):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = ""
    # A warning that escapes a command (NumPy's included) is one line too, never
    # Python's two-line "file:line: Warning" with the source line under it.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if argv and argv[0] == "bench":  # its own parser takes the rest as given
                command = "bench"
                return bench.run(argparse.Namespace(rest=argv[1:]))
            parser = build_parser()
            args, extra = parser.parse_known_args(join_negative_values(argv))
            command = args.command or ""
            if not command:
                parser.print_help(sys.stderr)
                return 2
            if extra and not getattr(args, "accepts_extra", False):
                raise CliError(f"unrecognized arguments: {' '.join(extra)}", 2)
            args.extra = extra
            code = int(args.func(args))
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else 0
        except KeyboardInterrupt:
            warn_lines(caught, command)
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            if os.environ.get("LOSSKIT_DEBUG"):
                raise
            warn_lines(caught, command)
            code, line = error_line(exc, command)
            print(line, file=sys.stderr)
            return code
        warn_lines(caught, command)
        return code
