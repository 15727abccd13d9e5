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
import re
import sys
import tempfile
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
    """``"2,0.5,6"`` -> ``array([2. , 0.5, 6. ])``; every value present and finite.

    An empty value (``1,,2``) is refused rather than skipped: it is a typo, and
    skipping it would shift every later value to the wrong class.
    """
    if not text.strip():
        raise CliError(f"{what} is empty", 2)
    parts = text.replace(" ", "").split(",")
    values = []
    for i, part in enumerate(parts, 1):
        where = f"value {i} of {len(parts)}"
        if not part:
            raise CliError(f"{what} has an empty value ({where} in {text!r})", 2)
        try:
            value = float(part)
        except ValueError:
            msg = f"{what} must be numbers separated by commas; got {text!r}"
            raise CliError(msg, 2) from None
        if not math.isfinite(value):
            overflow = part.lower().lstrip("+-") not in ("inf", "infinity", "nan")
            why = ", beyond the float64 range" if overflow else ""
            raise CliError(f"{what} must be finite numbers; got {part!r} ({where}){why}", 2)
        values.append(value)
    return np.array(values)


def number(kind: type[int] | type[float], rule: str, ok: Callable[[Any], bool]) -> Any:
    """An argparse ``type=``: a finite ``kind`` for which ``ok`` holds.

    argparse prefixes the message with the flag: ``argument --lr: must be a
    finite number > 0; got 'inf'``.
    """
    noun = "an integer" if kind is int else "a finite number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {noun}{rule and ' '}{rule}; got {text!r}")
        return value

    return parse


POSITIVE = number(float, "> 0", lambda v: v > 0)
NON_NEGATIVE = number(float, ">= 0", lambda v: v >= 0)
COUNT = number(int, ">= 1", lambda v: v >= 1)
NON_NEGATIVE_INT = number(int, ">= 0", lambda v: v >= 0)
MOMENTUM = number(float, "in [0, 1)", lambda v: 0 <= v < 1)
FRACTION = number(float, "in (0, 1)", lambda v: 0 < v < 1)
PROBABILITY = number(float, "in [0, 1]", lambda v: 0 <= v <= 1)
CLIP = number(float, "in [0, 0.5)", lambda v: 0 <= v < 0.5)  # the core's rule for eps

# A value that starts like a negative number: argparse knows -1 and -.5 as values,
# but takes -1,2 or -1e308 or -inf for an option.
_NEGATIVE_VALUE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--targets -1,2`` -> ``--targets=-1,2``, so argparse reads it as the value it is."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return out + list(argv[i:])
        if (
            token.startswith("--")
            and "=" not in token
            and i + 1 < len(argv)
            and _NEGATIVE_VALUE.match(argv[i + 1])
        ):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
        else:
            out.append(token)
            i += 1
    return out


def check_output_path(flag: str, path: str, ext: str) -> None:
    """Refuse, before any work, an output path that cannot be written."""
    if not path.lower().endswith(ext):
        raise CliError(f"{flag} must be a {ext} file; got {path!r}", 2)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"{flag}: no such directory: {os.path.dirname(path)}")
    if os.path.isdir(path):
        raise CliError(f"{flag}: {path} is a directory")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CliError(f"{flag}: cannot write {path}: permission denied")
    # Creating a file is the only sure test (read-only mounts, ACLs, root or not).
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".losskit-check-")
    except OSError as exc:
        msg = f"{flag}: cannot write into {os.path.dirname(path) or '.'}: {exc.strerror or exc}"
        raise CliError(msg) from None
    os.close(fd)
    os.unlink(probe)


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
    info: LossInfo,
    pairs: Sequence[tuple[str, str]],
    *,
    training: bool = False,
    fixed: Sequence[str] = (),
) -> dict[str, Any]:
    """``[("label-smoothing", "0.1")]`` -> ``{"label_smoothing": 0.1}``, checked.

    With ``training``, the options the training loop sets itself (reduction,
    axis, sample_weight) are refused with the reason. ``fixed`` names options
    the command sets itself (refused beforehand by the command, and not
    offered in the list of options).
    """
    from ..train.objective import LOOP_OWNED, check_loop_owned

    params = inspect.signature(info.fn).parameters
    allowed = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    allowed = [n for n in allowed if n not in fixed]
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
    elif isinstance(exc, MemoryError):
        text = f"not enough memory ({str(exc) or 'no details'})"
    elif isinstance(exc, FileNotFoundError):
        text = f"no such file: {exc.filename}"
    elif isinstance(exc, OSError) and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    elif isinstance(exc, CliError | ValueError | TypeError | ImportError | OSError):
        text = str(exc)
    else:
        text = f"internal error ({type(exc).__name__}: {exc}); LOSSKIT_DEBUG=1 shows the traceback"
    return code, f"{prefix}: error: {one_line(text)}"
