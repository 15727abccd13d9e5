"""What every command shares: the one-line error, argument parsing helpers, output helpers.

An error for the user is a :class:`CliError` (or a ``ValueError``/``OSError``
from the library, whose messages are already one line); :func:`error_line`
turns any exception into the single ``losskit CMD: error: ...`` line that
:func:`losskit.cli.main` prints.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import IO, Any, NoReturn

import numpy as np

from .. import catalogue
from ..catalogue import LossInfo, UnknownLossError

PROG = "losskit"


class CliError(Exception):
    """An error for the user: printed as one line, exit with ``code``."""

    def __init__(self, message: str, code: int = 1, prog: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and does not exit by itself."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message, code=2, prog=self.prog)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def make_console(stream: IO[str]) -> Any:
    from rich.console import Console

    width = None if stream.isatty() else 120
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, markup=False)


def floats(text: str, what: str) -> np.ndarray:
    """``"2,0.5,6"`` -> ``array([2. , 0.5, 6. ])``."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise CliError(f"{what} must be numbers separated by commas; got {text!r}", 2) from None
    if not values:
        raise CliError(f"{what} is empty", 2)
    return np.array(values)


def ints(text: str, what: str) -> tuple[int, ...]:
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


def lookup(name: str) -> LossInfo:
    try:
        return catalogue.lookup(name)
    except UnknownLossError as exc:
        raise CliError(str(exc), 2) from None


def fmt(x: Any, digits: int = 6) -> str:
    """A number or a vector, short: ``0.0221552`` or ``[0.0179, 0.004, -0.0219]``."""
    arr = np.asarray(x, dtype=np.float64) + 0.0  # no "-0"
    if arr.ndim == 0:
        return f"{float(arr):.{digits}g}"
    return "[" + ", ".join(f"{float(v):.{min(digits, 4)}g}" for v in arr.ravel()) + "]"


def option_value(text: str) -> Any:
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
        from ..train.data import load_array

        return load_array(text, what="option")
    return text


def loss_options(
    info: LossInfo, pairs: Sequence[tuple[str, str]], *, training: bool = False
) -> dict[str, Any]:
    """``[("label-smoothing", "0.1")]`` -> ``{"label_smoothing": 0.1}``, checked.

    With ``training``, the options the training loop sets itself (reduction,
    axis, sample_weight) are refused with the reason.
    """
    from ..train.objective import LOOP_OWNED, check_loop_owned

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
        options[key] = value.strip().lower() if key == "reduction" else option_value(value)
    return options


def pair(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key, value


def option_pairs(extra: Sequence[str]) -> list[tuple[str, str]]:
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


def warn_lines(caught: Sequence[warnings.WarningMessage], command: str) -> None:
    seen = set()
    for w in caught:
        line = f"{PROG} {command}: warning: {one_line(str(w.message))}"
        if line not in seen:
            seen.add(line)
            print(line, file=sys.stderr)


def call_quietly(command: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` turning the library's warnings into one-line messages on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    warn_lines(caught, command)
    return result


def dump_json(obj: Any) -> None:
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


def error_line(exc: BaseException, command: str) -> tuple[int, str]:
    """The exit status and the one line printed for an exception that ends ``command``."""
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
        text = f"internal error ({type(exc).__name__}: {exc}); LOSSKIT_DEBUG=1 shows the traceback"
    return code, f"{prefix}: error: {one_line(text)}"
