"""Inputs for tests/test_traced.py: good cases for every loss and option, and bad values
planted into them, each knowing which unreduced losses it must turn NaN.

The shapes are small and fixed per case, so that one traced or compiled function per
good case serves every bad value planted into it (same shapes and dtypes: no retrace).
Array options (``class_weight``, ``sample_weight``, an array ``pos_weight``) travel as
arguments of the traced function, so their values are traced too; Python options
(``axis``, ``ignore_index``, ``label_smoothing``, ``eps``, a float ``pos_weight``) are
fixed at trace time.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

REDUCTIONS = ("none", "sum", "mean")

LOSS_NAMES = (
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
    "categorical_cross_entropy",
    "sparse_categorical_cross_entropy",
    "binary_cross_entropy",
    "sigmoid_cross_entropy",
    "mean_squared_error",
    "mean_absolute_error",
)
# the class axis is removed from the unreduced loss: one loss per example
CLASS_AXIS = LOSS_NAMES[:4]
SPARSE = ("sparse_softmax_cross_entropy", "sparse_categorical_cross_entropy")
PROBS = ("categorical_cross_entropy", "sparse_categorical_cross_entropy", "binary_cross_entropy")


@dataclasses.dataclass(frozen=True, eq=False)
class Case:
    """One call of one loss with good values: ``loss(x, truth, **static, **arrays)``."""

    id: str
    loss: str
    x: np.ndarray  # float64
    truth: np.ndarray  # int64 labels or float64 targets
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    static: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def keys(self) -> tuple[str, ...]:
        """The array options in the order the traced functions take them."""
        return tuple(sorted(self.arrays))

    @property
    def axis(self) -> int | None:
        """The class axis (normalised) of a softmax-family loss, else None."""
        if self.loss not in CLASS_AXIS:
            return None
        return int(self.static.get("axis", -1)) % self.x.ndim

    @property
    def unreduced_shape(self) -> tuple[int, ...]:
        shape = self.x.shape
        return shape if self.axis is None else shape[: self.axis] + shape[self.axis + 1 :]

    def grad_mask(self, affected: np.ndarray) -> np.ndarray:
        """The elements of ``x`` that belong to the unreduced losses marked in ``affected``."""
        if self.axis is None:
            return affected
        return np.broadcast_to(np.expand_dims(affected, self.axis), self.x.shape)

    def options(self, arrays: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**self.static, **(self.arrays if arrays is None else arrays)}

    def __repr__(self) -> str:
        return f"Case({self.id})"


@dataclasses.dataclass(frozen=True, eq=False)
class Bad:
    """``case`` with ``value`` planted at ``index`` of ``arg`` ("x", "truth" or an option).

    ``affected`` marks the unreduced losses that must be NaN where values cannot be
    read.  With ``strict`` every other unreduced loss must equal the good case's; a
    bad class weight only promises "at least the examples of that class", so it is
    not strict.
    """

    case: Case
    arg: str
    index: tuple[int, ...]
    value: float
    affected: np.ndarray
    strict: bool

    @property
    def id(self) -> str:
        where = ",".join(str(i) for i in self.index)
        return f"{self.case.id}-{self.arg}[{where}]={self.value:g}"

    @property
    def name(self) -> str:
        """The argument's name in losskit's signature (and so in its messages)."""
        if self.arg == "x":
            return "probs" if self.case.loss in PROBS else "logits"
        if self.arg == "truth":
            return "labels" if self.case.loss in SPARSE else "targets"
        return self.arg

    def planted(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """``(x, truth, arrays)`` of the case with the bad value in place (copies)."""
        c = self.case
        x, truth = c.x.copy(), c.truth.copy()
        arrays = {k: v.copy() for k, v in c.arrays.items()}
        target = {"x": x, "truth": truth}.get(self.arg)
        if target is None:
            target = arrays[self.arg]
        target[self.index] = self.value
        return x, truth, arrays

    def __repr__(self) -> str:
        return f"Bad({self.id})"


def bad(case: Case, arg: str, index: tuple[int, ...], value: float) -> Bad:
    """Plant ``value`` and work out which unreduced losses it affects (the spec's rule)."""
    affected = np.zeros(case.unreduced_shape, dtype=bool)
    strict = True
    if (
        arg in ("x", "truth")
        and case.axis is not None
        and not (arg == "truth" and case.loss in SPARSE)
    ):
        # an element of a probability row or target distribution: its example
        example = index[: case.axis] + index[case.axis + 1 :]
        affected[example] = True
    elif arg in ("x", "truth"):
        # a label (indexed like the unreduced loss) or an element of an elementwise loss
        affected[index] = True
    elif arg == "sample_weight":
        # batch-shaped or full: every loss element under that weight
        affected[index] = True
    elif arg == "class_weight":
        affected = case.truth == index[0]
        strict = False
    elif arg == "pos_weight":
        # one weight per class along the last axis, or a scalar for all
        affected[..., index[0] if index else slice(None)] = True
    else:  # pragma: no cover
        raise AssertionError(arg)
    assert affected.any(), f"{case.id}: {arg}{index} affects nothing"
    return Bad(case, arg, tuple(index), value, affected, strict)


# --------------------------------------------------------------------------- good cases


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


_rng = np.random.default_rng(20240607)
_LOGITS = np.round(_rng.normal(size=(4, 3)) * 2, 3)
_LOGITS_3D = np.round(_rng.normal(size=(4, 3, 2)) * 2, 3)
_PROBS = _softmax(_rng.normal(size=(4, 3)) * 0.5)
_PROBS_3D = _softmax(_rng.normal(size=(4, 3, 2)) * 0.5, axis=1)
# soft and one-hot rows, with zeros: a bad probability is planted where the
# target is 0, which a `where(t == 0, ...)` would otherwise hide
_DIST = np.array([[0.0, 0.0, 1.0], [0.2, 0.8, 0.0], [0.3, 0.3, 0.4], [0.0, 1.0, 0.0]])
_LABELS = np.array([2, 0, 1, 1])
_BINARY = np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 1.0], [0.5, 0.0, 1.0], [1.0, 1.0, 0.0]])
_P01 = np.round(_rng.uniform(0.05, 0.95, size=(4, 3)), 3)
# strictly inside (0, 1): a bad pos_weight affects every element of its column
_SOFT = np.round(_rng.uniform(0.1, 0.9, size=(4, 3)), 3)
_PRED = np.round(_rng.normal(size=(4, 3)), 3)
# never equal to the prediction: |p - t|'s derivative is 0 at a tie
_TARGET = _PRED + np.round(
    _rng.choice([-1.0, 1.0], size=(4, 3)) * _rng.uniform(0.2, 1.5, (4, 3)), 3
)

SCE = Case("sce", "softmax_cross_entropy", _LOGITS, _DIST)
SCE_OPTS = Case(
    "sce-opts",
    "softmax_cross_entropy",
    _LOGITS.T.copy(),  # classes on axis 0: four examples of three classes
    _DIST.T.copy(),
    arrays={"sample_weight": np.array([1.0, 0.5, 2.0, 0.0])},
    static={"axis": 0, "label_smoothing": 0.1},
)
SSCE = Case("ssce", "sparse_softmax_cross_entropy", _LOGITS, _LABELS)
SSCE_OPTS = Case(
    "ssce-opts",
    "sparse_softmax_cross_entropy",
    _LOGITS,
    np.array([2, -100, 1, 0]),
    arrays={
        "class_weight": np.array([1.0, 2.0, 0.5]),
        "sample_weight": np.array([1.0, 3.0, 0.5, 2.0]),
    },
    static={"ignore_index": -100, "label_smoothing": 0.1},
)
SSCE_AXIS = Case(
    "ssce-axis",
    "sparse_softmax_cross_entropy",
    _LOGITS_3D,  # (N, C, d) with the classes on axis 1, as PyTorch lays them out
    np.array([[0, 2], [1, -1], [2, 0], [1, 1]]),
    arrays={
        "class_weight": np.array([0.5, 0.0, 1.5]),
        "sample_weight": np.array([1.0, 2.0, 0.5, 1.0]),
    },
    static={"axis": 1, "ignore_index": -1},
)
CCE = Case("cce", "categorical_cross_entropy", _PROBS, _DIST)
CCE_OPTS = Case(
    "cce-opts",
    "categorical_cross_entropy",
    _PROBS.T.copy(),
    _DIST.T.copy(),
    arrays={"sample_weight": np.array([2.0, 1.0, 0.0, 0.5])},
    static={"axis": 0, "eps": 0.05},
)
CCE_EPS0 = Case("cce-eps0", "categorical_cross_entropy", _PROBS, _DIST, static={"eps": 0.0})
SCCE = Case("scce", "sparse_categorical_cross_entropy", _PROBS, _LABELS)
SCCE_OPTS = Case(
    "scce-opts",
    "sparse_categorical_cross_entropy",
    _PROBS_3D,
    np.array([[0, 2], [1, 0], [2, 2], [1, 0]]),
    arrays={"sample_weight": np.array([[1.0, 0.5], [2.0, 1.0], [0.0, 1.0], [1.5, 1.0]])},
    static={"axis": 1, "eps": 0.01},
)
BCE = Case("bce", "binary_cross_entropy", _P01, _BINARY)
BCE_OPTS = Case(
    "bce-opts",
    "binary_cross_entropy",
    _P01,
    _SOFT,
    arrays={"sample_weight": np.array([1.0, 0.5, 2.0, 0.0])},
    static={"eps": 0.01},
)
SIG = Case("sig", "sigmoid_cross_entropy", _LOGITS * 1.5, _BINARY)
SIG_OPTS = Case(
    "sig-opts",
    "sigmoid_cross_entropy",
    _LOGITS,
    _SOFT,
    arrays={
        "pos_weight": np.array([1.0, 2.0, 0.5]),
        "sample_weight": np.array([1.0, 0.5, 2.0, 1.0]),
    },
    static={"label_smoothing": 0.1},
)
SIG_POS_FLOAT = Case(
    "sig-pos-float", "sigmoid_cross_entropy", _LOGITS, _SOFT, static={"pos_weight": 2.0}
)
SIG_POS_0D = Case(
    "sig-pos-0d", "sigmoid_cross_entropy", _LOGITS, _SOFT, arrays={"pos_weight": np.array(1.5)}
)
MSE = Case("mse", "mean_squared_error", _PRED, _TARGET)
MSE_W = Case(
    "mse-weighted",
    "mean_squared_error",
    _PRED,
    _TARGET,
    arrays={"sample_weight": np.round(_rng.uniform(0.0, 2.0, size=(4, 3)), 3)},
)
MAE = Case("mae", "mean_absolute_error", _PRED, _TARGET)
MAE_W = Case(
    "mae-weighted",
    "mean_absolute_error",
    _PRED,
    _TARGET,
    arrays={"sample_weight": np.array([1.0, 0.0, 2.0, 0.5])},
)

CASES = (
    SCE,
    SCE_OPTS,
    SSCE,
    SSCE_OPTS,
    SSCE_AXIS,
    CCE,
    CCE_OPTS,
    CCE_EPS0,
    SCCE,
    SCCE_OPTS,
    BCE,
    BCE_OPTS,
    SIG,
    SIG_OPTS,
    SIG_POS_FLOAT,
    SIG_POS_0D,
    MSE,
    MSE_W,
    MAE,
    MAE_W,
)
# the richest case of each loss
RICHEST = (SCE_OPTS, SSCE_OPTS, CCE_OPTS, SCCE_OPTS, BCE_OPTS, SIG_OPTS, MSE_W, MAE_W)

NAN, INF = float("nan"), float("inf")

BAD = (
    # labels outside [0, C) that are not ignore_index
    bad(SSCE, "truth", (1,), -1),
    bad(SSCE, "truth", (2,), 3),
    bad(SSCE_OPTS, "truth", (0,), -1),  # ignore_index is -100, so -1 is a bad label
    bad(SSCE_OPTS, "truth", (3,), 3),
    bad(SSCE_AXIS, "truth", (1, 0), -2),  # ignore_index is -1
    bad(SSCE_AXIS, "truth", (2, 1), 3),
    bad(SCCE, "truth", (1,), -1),
    bad(SCCE, "truth", (0,), 3),
    bad(SCCE_OPTS, "truth", (0, 1), 3),
    # probabilities outside [0, 1] or NaN (at classes whose target is 0, where a
    # log taken of 1 instead would hide them)
    bad(CCE, "x", (1, 2), 1.5),
    bad(CCE, "x", (2, 0), NAN),
    bad(CCE, "x", (3, 0), -0.5),
    bad(CCE_OPTS, "x", (2, 1), 1.5),
    bad(CCE_EPS0, "x", (0, 0), -0.5),
    bad(SCCE, "x", (1, 2), 1.5),  # label 0: the bad class is not the one gathered
    bad(SCCE, "x", (2, 1), NAN),
    bad(SCCE_OPTS, "x", (1, 2, 0), 1.5),  # label (1, 0) is 1
    bad(BCE, "x", (1, 2), 1.5),
    bad(BCE, "x", (0, 0), NAN),
    bad(BCE, "x", (3, 1), -0.25),
    bad(BCE_OPTS, "x", (2, 2), 2.0),
    # targets outside [0, 1] or NaN
    bad(SCE, "truth", (1, 2), -0.5),
    bad(SCE, "truth", (2, 0), 1.5),
    bad(SCE, "truth", (3, 1), NAN),
    bad(SCE_OPTS, "truth", (0, 2), -1.0),
    bad(CCE, "truth", (0, 1), 2.0),
    bad(CCE, "truth", (1, 0), NAN),
    bad(BCE, "truth", (1, 1), -1.0),
    bad(BCE, "truth", (2, 0), 2.0),
    bad(BCE, "truth", (0, 2), NAN),
    bad(BCE_OPTS, "truth", (0, 0), 1.5),
    bad(SIG, "truth", (0, 1), -1.0),
    bad(SIG, "truth", (1, 1), 1.5),
    bad(SIG, "truth", (2, 2), NAN),
    bad(SIG_OPTS, "truth", (3, 0), -0.5),
    # weights: negative, NaN or infinite
    bad(SSCE_OPTS, "class_weight", (1,), -1.0),
    bad(SSCE_OPTS, "class_weight", (0,), NAN),
    bad(SSCE_OPTS, "class_weight", (2,), INF),
    bad(SSCE_AXIS, "class_weight", (2,), -0.5),
    bad(SSCE_OPTS, "sample_weight", (3,), -1.0),
    bad(SSCE_OPTS, "sample_weight", (0,), NAN),
    bad(SSCE_OPTS, "sample_weight", (2,), INF),
    bad(SCE_OPTS, "sample_weight", (1,), -2.0),
    bad(CCE_OPTS, "sample_weight", (3,), -INF),
    bad(SCCE_OPTS, "sample_weight", (2, 1), NAN),
    bad(BCE_OPTS, "sample_weight", (1,), -1.0),  # batch-shaped: a whole row of elements
    bad(SIG_OPTS, "sample_weight", (0,), INF),
    bad(MSE_W, "sample_weight", (1, 2), -0.5),
    bad(MAE_W, "sample_weight", (3,), NAN),
    bad(SIG_OPTS, "pos_weight", (1,), -1.0),
    bad(SIG_OPTS, "pos_weight", (2,), NAN),
    bad(SIG_OPTS, "pos_weight", (0,), INF),
    bad(SIG_POS_0D, "pos_weight", (), -1.0),
)
