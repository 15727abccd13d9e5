"""Datasets for the training loop: scikit-learn's bundled sets and the user's files.

Everything here returns a :class:`Dataset` (features ``X`` as float64, target
``y`` as class ids ``0..K-1`` or real values, and the task). :func:`split`
makes a seeded, stratified train/validation/test split and
:class:`Standardizer` learns its mean and scale from the training split only,
so nothing about the validation or test rows leaks into training.

Every problem with the user's data raises :class:`DataError`, a
``ValueError`` whose message is one line naming the file, the row or column,
and what was wrong.

Examples
--------
>>> import numpy as np
>>> ds = Dataset(X=np.arange(40.0).reshape(20, 2), y=np.arange(20) % 2, task="binary")
>>> parts = split(ds, seed=0, val=0.2, test=0.2)
>>> len(parts.y_train), len(parts.y_val), len(parts.y_test)
(12, 4, 4)
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "BUILTIN",
    "DataError",
    "Dataset",
    "Split",
    "Standardizer",
    "UnknownDatasetError",
    "infer_task",
    "load",
    "load_array",
    "load_builtin",
    "load_csv",
    "load_npy",
    "split",
]

BUILTIN = ("digits", "iris", "wine", "breast_cancer", "diabetes")
TASKS = ("multiclass", "binary", "regression")
# A numeric target with at most this many distinct integer values is read as classes.
MAX_CLASSES_INFERRED = 20


class DataError(ValueError):
    """A problem with the data; the message is one line meant for the user."""


class UnknownDatasetError(DataError):
    """A built-in dataset name that does not exist (the message suggests the closest)."""


@dataclass
class Dataset:
    """Features, target and task; ``y`` is int64 ids for classification."""

    X: np.ndarray
    y: np.ndarray
    task: str
    name: str = "data"
    feature_names: list[str] = field(default_factory=list)
    target_name: str = "target"
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float64)
        if self.task not in TASKS:
            msg = f"task must be one of {', '.join(TASKS)}; got {self.task!r}"
            raise DataError(msg)
        if self.task == "regression":
            self.y = np.asarray(self.y, dtype=np.float64)
        else:
            self.y = np.asarray(self.y).astype(np.int64)
            if self.class_names is None:
                self.class_names = [str(c) for c in range(int(self.y.max()) + 1)]
        if not self.feature_names:
            self.feature_names = [f"x{i}" for i in range(self.X.shape[1])]

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return 0 if self.task == "regression" else len(self.class_names or ())

    def describe(self) -> str:
        n, d = self.X.shape
        what = "real target" if self.task == "regression" else f"{self.n_classes} classes"
        return f"{self.name}: {n} samples, {d} features, {what} ({self.task})"


@dataclass
class Split:
    """Seeded train/validation/test parts of a dataset."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    def parts(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {
            "train": (self.X_train, self.y_train),
            "val": (self.X_val, self.y_val),
            "test": (self.X_test, self.y_test),
        }


class Standardizer:
    """``(x - mean) / scale`` with mean and scale learnt from the data given to ``fit``.

    A constant column gets scale 1, so it maps to 0 instead of NaN.

    >>> s = Standardizer().fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> s.transform(np.array([[2.0, 5.0]]))
    array([[0., 0.]])
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> Standardizer:
        self.mean_ = np.mean(x, axis=0)
        std = np.std(x, axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        assert self.mean_ is not None and self.scale_ is not None, "fit first"
        return (x - self.mean_) / self.scale_

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        assert self.mean_ is not None and self.scale_ is not None, "fit first"
        return x * self.scale_ + self.mean_


# -- built-in datasets -----------------------------------------------------------------


def load_builtin(name: str) -> Dataset:
    """One of scikit-learn's bundled datasets (no download): digits, iris, wine, ...."""
    if name not in BUILTIN:
        close = difflib.get_close_matches(name, BUILTIN, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        msg = f"unknown dataset {name!r}; {hint}choose one of {', '.join(BUILTIN)}"
        raise UnknownDatasetError(msg)
    try:
        from sklearn import datasets
    except ImportError:  # pragma: no cover - the cli extra installs it
        msg = "the built-in datasets need scikit-learn: pip install 'losskit[cli]'"
        raise DataError(msg) from None
    bunch: Any = getattr(datasets, f"load_{name}")()
    if name == "diabetes":
        task, classes = "regression", None
    else:
        classes = [str(c) for c in bunch.target_names]
        task = "binary" if len(classes) == 2 else "multiclass"
    return Dataset(
        X=bunch.data,
        y=bunch.target,
        task=task,
        name=name,
        feature_names=[str(f) for f in getattr(bunch, "feature_names", [])],
        target_name="target",
        class_names=classes,
    )


# -- the user's files --------------------------------------------------------------------


def infer_task(y: np.ndarray, task: str | None = None) -> tuple[np.ndarray, str, list[str] | None]:
    """Turn a raw target column into ``(y, task, class_names)``.

    Text labels, and numbers that are all integers with at most
    ``MAX_CLASSES_INFERRED`` distinct values, are classes (binary with two);
    anything else is regression. ``task`` forces ``"classification"``
    (binary or multiclass by the number of classes) or ``"regression"``.

    >>> infer_task(np.array(["cat", "dog", "cat"]))[1:]
    ('binary', ['cat', 'dog'])
    >>> infer_task(np.array([0.5, 1.5, 2.0]))[1]
    'regression'
    """
    if task not in (None, "classification", "regression", *TASKS):
        msg = f"unknown task {task!r}; choose classification or regression"
        raise DataError(msg)
    numeric = y.dtype.kind in "biuf"
    if task is None:
        if not numeric:
            task = "classification"
        else:
            values = np.unique(y)
            few = values.size <= MAX_CLASSES_INFERRED
            task = "classification" if few and np.all(values == np.round(values)) else "regression"
    if task == "regression":
        if not numeric:
            msg = "a regression target must be numeric; the target column holds text"
            raise DataError(msg)
        return y.astype(np.float64), "regression", None
    values, ids = np.unique(y, return_inverse=True)
    if values.size < 2:
        msg = f"a classification target needs at least 2 classes; got {values.size}"
        raise DataError(msg)
    if numeric and np.all(values == np.round(values)):
        names = [str(int(v)) for v in values]
    else:
        names = [str(v) for v in values]
    return ids.astype(np.int64), "binary" if values.size == 2 else "multiclass", names


def _read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    try:
        # utf-8-sig: Excel starts its UTF-8 CSVs with a byte-order mark, which would
        # otherwise stick to the first column's name.
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError:
        msg = f"malformed CSV {path}: not UTF-8 text"
        raise DataError(msg) from None
    except csv.Error as exc:
        msg = f"malformed CSV {path}: {exc}"
        raise DataError(msg) from None
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        msg = f"{path} is empty"
        raise DataError(msg)
    header = [h.strip() for h in rows[0]]
    if len(rows) < 2:
        msg = f"{path} has a header but no data rows"
        raise DataError(msg)
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            msg = (
                f"malformed CSV {path}: row {i} has {len(row)} fields, the header has {len(header)}"
            )
            raise DataError(msg)
    return header, rows[1:]


def _parse_float(text: str, path: str, row: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        what = "missing value" if not text.strip() else f"{text.strip()!r} is not a number"
        msg = f"malformed CSV {path}: row {row}, column {column!r}: {what}"
        raise DataError(msg) from None
    if not math.isfinite(value):
        msg = f"malformed CSV {path}: row {row}, column {column!r}: {text.strip()!r} is not finite"
        raise DataError(msg)
    return value


def _no_column(target: str, path: str, columns: list[str]) -> DataError:
    shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
    return DataError(f"column {target!r} is not in {path}; its columns are: {shown}")


def load_csv(path: str | os.PathLike[str], target: str, *, task: str | None = None) -> Dataset:
    """A CSV file with a header row; ``target`` names the column to predict.

    All other columns must be numbers. The target may be numbers or text labels.
    """
    path = os.fspath(path)
    header, rows = _read_csv(path)
    if target not in header:
        raise _no_column(target, path, header)
    t = header.index(target)
    features = [h for i, h in enumerate(header) if i != t]
    if not features:
        msg = f"{path} has no feature columns besides {target!r}"
        raise DataError(msg)
    X = np.array(
        [
            [_parse_float(c, path, r, header[j]) for j, c in enumerate(row) if j != t]
            for r, row in enumerate(rows, start=2)
        ],
        dtype=np.float64,
    )
    raw = [row[t].strip() for row in rows]
    for r, v in enumerate(raw, start=2):
        if not v:
            msg = f"malformed CSV {path}: row {r}, column {target!r}: missing value"
            raise DataError(msg)
        if _is_float(v) and not math.isfinite(float(v)):  # nan/inf, also among text labels
            msg = f"malformed CSV {path}: row {r}, column {target!r}: {v!r} is not finite"
            raise DataError(msg)
    try:
        y_raw: np.ndarray = np.array([float(v) for v in raw])
    except ValueError:
        y_raw = np.array(raw)
    y, task, classes = infer_task(y_raw, task)
    name = os.path.splitext(os.path.basename(path))[0]
    return Dataset(
        X, y, task, name=name, feature_names=features, target_name=target, class_names=classes
    )


def load_array(path: str | os.PathLike[str], *, what: str = "array") -> np.ndarray:
    """A numeric array from ``.npy``, ``.csv`` (numbers only, optional header) or ``.json``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        msg = f"no such file: {path}"
        raise DataError(msg)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            msg = f"cannot read {path} as .npy: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            raise DataError(msg) from None
    elif ext == ".json":
        try:
            with open(path, encoding="utf-8-sig") as fh:  # a BOM, if any, is not JSON
                arr = np.asarray(json.load(fh))
        except (ValueError, UnicodeDecodeError) as exc:
            msg = f"malformed JSON {path}: {exc}"
            raise DataError(msg) from None
    elif ext in (".csv", ".txt"):
        # utf-8-sig: a byte-order mark would make the first number unreadable, and
        # the first row would then be taken for a header and dropped.
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
        if not rows:
            msg = f"{path} is empty"
            raise DataError(msg)
        try:
            [float(c) for c in rows[0]]
        except ValueError:
            rows = rows[1:]  # a header row
        width = len(rows[0]) if rows else 0
        values = []
        for r, row in enumerate(rows, start=1):
            if len(row) != width:
                msg = f"malformed CSV {path}: row {r} has {len(row)} fields, row 1 has {width}"
                raise DataError(msg)
            try:
                values.append([float(c) for c in row])
            except ValueError:
                bad = next(c for c in row if not _is_float(c))
                msg = f"malformed CSV {path}: row {r}: {bad.strip()!r} is not a number"
                raise DataError(msg) from None
        if not values:
            msg = f"{path} has no data rows"
            raise DataError(msg)
        arr = np.array(values)
        if arr.shape[1] == 1:
            arr = arr[:, 0]
    else:
        msg = f"cannot read {what} from {path}: use a .npy, .csv or .json file"
        raise DataError(msg)
    if arr.dtype.kind not in "biuf":
        msg = f"{path} must hold numbers; got dtype {arr.dtype}"
        raise DataError(msg)
    return arr


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_finite(arr: np.ndarray, path: str, what: str) -> None:
    """One line naming the first NaN/inf: row and column counted from 0, as NumPy does."""
    bad = ~np.isfinite(arr)
    if np.any(bad):
        where = np.argwhere(bad)[0]
        at = f"row {where[0]}" + (f", column {where[1]}" if arr.ndim == 2 else "")
        msg = f"malformed {path}: {what} must be finite; got {arr[tuple(where)]} at {at} (from 0)"
        raise DataError(msg)


def load_npy(
    path: str | os.PathLike[str], target: str | os.PathLike[str], *, task: str | None = None
) -> Dataset:
    """Features from a 2-D ``.npy``; target from a file (``.npy``/``.csv``) or a column index."""
    path = os.fspath(path)
    X = load_array(path, what="features")
    if X.ndim != 2:
        msg = f"{path} must hold a 2-D array (samples x features); got shape {X.shape}"
        raise DataError(msg)
    target = os.fspath(target)
    if target.lstrip("-").isdigit():
        col = int(target)
        if not -X.shape[1] <= col < X.shape[1]:
            msg = f"column {col} is not in {path}; it has {X.shape[1]} columns"
            raise DataError(msg)
        X = X.astype(np.float64)
        _check_finite(X, path, "features and target")  # rows and columns as in the file
        y_raw = X[:, col]
        X = np.delete(X, col, axis=1)
    else:
        y_raw = load_array(target, what="target")
        if y_raw.ndim == 2 and y_raw.shape[1] == 1:
            y_raw = y_raw[:, 0]
        if y_raw.ndim != 1 or y_raw.shape[0] != X.shape[0]:
            msg = (
                f"target {target} must hold one value per row of {path} "
                f"({X.shape[0]}); got shape {y_raw.shape}"
            )
            raise DataError(msg)
        if y_raw.dtype.kind == "f":
            _check_finite(y_raw, target, "the target")
    _check_finite(X.astype(np.float64), path, "features")
    y, task, classes = infer_task(y_raw, task)
    name = os.path.splitext(os.path.basename(path))[0]
    return Dataset(X, y, task, name=name, class_names=classes, target_name=os.path.basename(target))


def load(
    *,
    dataset: str | None = None,
    data: str | None = None,
    target: str | None = None,
    task: str | None = None,
) -> Dataset:
    """``dataset=NAME`` for a built-in set, or ``data=FILE, target=COLUMN|FILE``."""
    if dataset is not None:
        return load_builtin(dataset)
    if data is None:
        msg = "give a built-in dataset or a data file"
        raise DataError(msg)
    if target is None:
        msg = f"{data}: name the target column (or target file)"
        raise DataError(msg)
    if not os.path.exists(data):
        msg = f"no such file: {data}"
        raise DataError(msg)
    ext = os.path.splitext(data)[1].lower()
    if ext == ".csv":
        return load_csv(data, target, task=task)
    if ext == ".npy":
        return load_npy(data, target, task=task)
    msg = f"cannot read {data}: use a .csv file with a header row, or a .npy array"
    raise DataError(msg)


# -- splitting ---------------------------------------------------------------------------


def split(ds: Dataset, *, val: float = 0.15, test: float = 0.2, seed: int = 0) -> Split:
    """A seeded split; classification is stratified (each class in every part)."""
    if not (0 < val < 1 and 0 < test < 1 and val + test < 1):
        msg = f"validation and test fractions must be in (0, 1) with sum < 1; got {val}, {test}"
        raise DataError(msg)
    rng = np.random.default_rng(seed)
    n = ds.y.shape[0]
    if ds.task == "regression":
        groups = [np.arange(n)]
    else:
        groups = [np.flatnonzero(ds.y == c) for c in range(ds.n_classes)]
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for idx in groups:
        idx = rng.permutation(idx)
        n_test = round(idx.size * test)
        n_val = round(idx.size * val)
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    picked = {k: rng.permutation(np.concatenate(v)) for k, v in parts.items()}
    for k, v in picked.items():
        if v.size == 0:
            msg = f"{ds.name} has too few rows ({n}) for a {k} split"
            raise DataError(msg)
    X, y = ds.X, ds.y
    tr, va, te = picked["train"], picked["val"], picked["test"]
    return Split(X[tr], y[tr], X[va], y[va], X[te], y[te])
