"""Every check on user input, and every error and warning message.

Messages follow one pattern: which argument, the rule, and what arrived,
e.g. ``\\`labels\\` must be in [0, 3) or equal ignore_index; got 5 at
position (1,)``.  Shape and dtype checks always run.  Checks that must read
values (label ranges, probability and target ranges, weights) raise where the
values can be read; where they cannot (inside ``jax.jit``, ``torch.compile``,
on the ``meta`` device) they return the traced mask of the bad values instead,
and the loss makes what those values affect NaN (:class:`Invalid`): never a
plausible number, never a host sync inside a compiled graph.  Warnings about
suspicious but valid input (double softmax, unnormalised rows) are skipped there.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _config
from ._backend import (
    Array,
    device_of,
    is_dtype,
    is_numpy,
    readable,
    shape_of,
    stop_gradient,
)

REDUCTIONS = ("mean", "sum", "none")


class LosskitWarning(UserWarning):
    """Base class of the warnings losskit gives for inputs that are probably wrong."""


class ProbabilitiesAsLogitsWarning(LosskitWarning):
    """Logits that look like probabilities: softmax would be applied twice."""


class UnnormalizedProbabilitiesWarning(LosskitWarning):
    """Probability rows that do not sum to 1."""


def check_reduction(reduction: Any) -> str:
    if reduction not in REDUCTIONS:
        choices = ", ".join(repr(r) for r in REDUCTIONS)
        msg = f"`reduction` must be one of {choices}; got {reduction!r}"
        raise ValueError(msg)
    return str(reduction)


def check_floating(xp: Any, name: str, x: Array) -> None:
    if not is_dtype(xp, x.dtype, "real floating"):
        msg = f"`{name}` must be a real floating-point array; got dtype {x.dtype}"
        raise TypeError(msg)


def check_numeric(xp: Any, name: str, x: Array) -> None:
    """Truth values (targets) may be float, int or bool; never complex or object."""
    if not is_dtype(xp, x.dtype, ("real floating", "integral", "bool")):
        msg = f"`{name}` must be a real numeric array; got dtype {x.dtype}"
        raise TypeError(msg)


# PyTorch has these dtypes but no comparison or indexing kernels for them
# ("lt_cpu" not implemented for 'UInt64').
_TORCH_UNSUPPORTED_LABELS = ("torch.uint16", "torch.uint32", "torch.uint64")


def check_labels_dtype(xp: Any, x: Array) -> None:
    if not is_dtype(xp, x.dtype, "integral"):
        msg = (
            f"`labels` must be an integer array of class ids; got dtype {x.dtype} "
            "(for one-hot or soft targets use the non-sparse loss)"
        )
        raise TypeError(msg)
    if str(x.dtype) in _TORCH_UNSUPPORTED_LABELS:
        msg = (
            f"`labels` must be a signed integer tensor or torch.uint8; got dtype {x.dtype}, "
            "which PyTorch cannot compare or index with (convert with labels.to(torch.int64))"
        )
        raise TypeError(msg)


def check_class_axis(name: str, x: Array, axis: int) -> int:
    """Normalise ``axis`` against ``x``'s dimensions; a class axis must exist."""
    ndim = len(x.shape)
    if ndim == 0:
        msg = f"`{name}` must have a class axis (at least 1 dimension); got a 0-d array"
        raise ValueError(msg)
    msg = f"`axis` must be an int in [{-ndim}, {ndim}) for {ndim}-d `{name}`; got {axis!r}"
    if not _is_int(axis):
        raise TypeError(msg)
    if not -ndim <= axis < ndim:
        raise ValueError(msg)
    return int(axis) % ndim


def check_same_shape(truth_name: str, truth: Array, pred_name: str, pred: Array) -> None:
    if shape_of(truth) != shape_of(pred):
        msg = (
            f"`{truth_name}` must have the shape of `{pred_name}` {shape_of(pred)}; "
            f"got {shape_of(truth)} (losskit does not broadcast)"
        )
        raise ValueError(msg)


def check_grad_out(xp: Any, grad_out: Any, pred: Array) -> None:
    """``grad_out`` is a writable NumPy array of the prediction's shape and dtype."""
    if grad_out is None:
        return
    if not (is_numpy(xp) and isinstance(grad_out, np.ndarray)):
        msg = (
            "`grad_out` must be a NumPy array and the predictions NumPy too; got "
            f"{type(grad_out).__name__} for predictions of {type(pred).__name__}"
        )
        raise TypeError(msg)
    if shape_of(grad_out) != shape_of(pred) or grad_out.dtype != pred.dtype:
        msg = (
            f"`grad_out` must have the predictions' shape {shape_of(pred)} and dtype "
            f"{pred.dtype}; got {shape_of(grad_out)} {grad_out.dtype}"
        )
        raise ValueError(msg)
    if not grad_out.flags.writeable:
        msg = "`grad_out` must be writeable; got a read-only array"
        raise ValueError(msg)


def check_paired(
    xp: Any,
    pred_name: str,
    pred: Array,
    truth_name: str,
    truth: Array,
    reduction: Any,
    grad_out: Any,
) -> str:
    """The checks every loss whose truth has the prediction's shape starts with.

    Returns the checked reduction.
    """
    reduction = check_reduction(reduction)
    check_floating(xp, pred_name, pred)
    check_numeric(xp, truth_name, truth)
    check_same_shape(truth_name, truth, pred_name, pred)
    check_grad_out(xp, grad_out, pred)
    return reduction


def check_labels_shape(labels: Array, logits_name: str, logits: Array, axis: int) -> None:
    expected = shape_of(logits)[:axis] + shape_of(logits)[axis + 1 :]
    if shape_of(labels) != expected:
        msg = (
            f"`labels` must have the shape of `{logits_name}` {shape_of(logits)} without "
            f"its class axis {axis}, that is {expected}; got {shape_of(labels)}"
        )
        raise ValueError(msg)


def _first_position(xp: Any, bad: Array) -> tuple[int, ...]:
    return tuple(int(i[0]) for i in xp.nonzero(bad))


def check_values(
    xp: Any,
    name: str,
    x: Array,
    bad_of: Callable[[Any, Array], Array],
    rule: str,
    as_value: Callable[[Any], Any] = float,
) -> Array | None:
    """Raise for the first element of ``x`` where ``bad_of(xp, x)`` holds, naming it.

    Returns None when the values were read and are all good.  Where they
    cannot be read now (a JAX tracer, ``torch.compile``, the ``meta`` device)
    nothing is read: the traced boolean mask ``bad_of(xp, x)`` is returned for
    the loss to turn into NaN (:class:`Invalid`).
    """
    if math.prod(x.shape) == 0:
        return None
    found = readable(xp, x)
    if found is None:
        return bad_of(xp, x)
    hxp, hx = found
    bad = bad_of(hxp, hx)
    if not bool(hxp.any(bad)):
        return None
    if hx.ndim == 0:
        where, value = "", as_value(hx)
    else:
        pos = _first_position(hxp, bad)
        where, value = f" at position {pos}", as_value(hx[pos])
    msg = f"`{name}` must be {rule}; got {value!r}{where}"
    raise ValueError(msg)


def check_label_range(
    xp: Any, labels: Array, num_classes: int, ignore_index: int | None
) -> Array | None:
    """Every label is a class id in [0, C) or the ignore index (see :func:`check_values`)."""

    def bad_of(xp: Any, y: Array) -> Array:
        bad = (y < 0) | (y >= num_classes)
        return bad if ignore_index is None else bad & (y != ignore_index)

    rule = f"in [0, {num_classes})"
    if ignore_index is not None:
        rule += f" or equal ignore_index={ignore_index}"
    return check_values(xp, "labels", labels, bad_of, rule, int)


_INT64_MIN, _INT64_END = -(2**63), 2**63


def check_ignore_index(ignore_index: Any) -> int | None:
    if ignore_index is None:
        return None
    if not _is_int(ignore_index):
        msg = f"`ignore_index` must be an int or None; got {ignore_index!r}"
        raise TypeError(msg)
    if not _INT64_MIN <= int(ignore_index) < _INT64_END:
        msg = f"`ignore_index` must fit in int64, [-2**63, 2**63); got {int(ignore_index)}"
        raise ValueError(msg)
    return int(ignore_index)


def _outside_unit_interval(xp: Any, x: Array) -> Array:
    return ~((x >= 0) & (x <= 1))  # written so that NaN is outside


def check_unit_interval(xp: Any, name: str, x: Array) -> Array | None:
    """Probabilities lie in [0, 1]; NaN is refused too (see :func:`check_values`)."""
    return check_values(xp, name, x, _outside_unit_interval, "probabilities in [0, 1]")


def check_target_interval(xp: Any, name: str, x: Array) -> Array | None:
    """Binary and soft targets lie in [0, 1] (a core rule; the compat adapters skip it)."""
    if not _config.core_rules():
        return None
    return check_values(xp, name, x, _outside_unit_interval, "in [0, 1]")


def _negative_or_not_finite(xp: Any, w: Array) -> Array:
    return ~((w >= 0) & (w < math.inf))  # NaN fails both comparisons


def check_weight_values(xp: Any, name: str, w: Array) -> Array | None:
    """Weights are finite and non-negative (a core rule; PyTorch allows negative ones)."""
    if not _config.core_rules() or is_dtype(xp, w.dtype, ("unsigned integer", "bool")):
        return None
    as_value = float if is_dtype(xp, w.dtype, "real floating") else int
    return check_values(xp, name, w, _negative_or_not_finite, "finite and non-negative", as_value)


class Invalid:
    """Bad values found where they could not be read: what they affect becomes NaN.

    ``mask`` has the shape of the unreduced loss (True where a bad value
    enters that element).  :meth:`poison` multiplies by NaN there rather than
    replacing with ``where``: the product carries NaN into the gradient under
    autograd too, while a ``where`` would give the bad examples a gradient of 0.

    A clip between the prediction and the loss (probabilities clipped to
    ``[eps, 1-eps]``) still stops that NaN: autograd's clip passes no gradient
    to a clipped element.  A loss that clips registers its prediction with
    :meth:`watch`; the value then also gets a term that is 0 forward wherever
    nothing is bad and whose derivative is NaN at the bad elements.
    """

    def __init__(self, xp: Any, shape: tuple[int, ...]) -> None:
        self.xp, self.shape = xp, shape
        self.mask: Array | None = None
        self._watched: tuple[Array, bool] | None = None

    def add(self, bad: Array | None) -> None:
        """Record ``bad`` (broadcastable to the unreduced shape, or None for nothing)."""
        if bad is None:
            return
        bad = self.xp.broadcast_to(bad, self.shape)
        self.mask = bad if self.mask is None else self.mask | bad

    def add_anywhere(self, bad: Array | None) -> None:
        """A bad value that enters every element (a class weight in a smoothed sum)."""
        if bad is not None:
            self.add(self.xp.any(bad))

    def watch(self, pred: Array, *, class_axis: bool) -> None:
        """Make the derivative in ``pred`` (class axis last if ``class_axis``) NaN where bad."""
        self._watched = (pred, class_axis)

    def _filled(self, mask: Array, like: Array, value: float, other: float) -> Array:
        xp, device = self.xp, device_of(like)
        a = xp.asarray(value, dtype=like.dtype, device=device)
        return xp.where(mask, a, xp.asarray(other, dtype=like.dtype, device=device))

    def poison(self, x: Array, *, class_axis: bool = False) -> Array:
        """``x`` with NaN where the mask is set (``class_axis``: ``x`` has one more, last axis)."""
        if self.mask is None:
            return x
        mask = self.mask[..., None] if class_axis else self.mask
        return x * self._filled(mask, x, math.nan, 1.0)

    def poison_value(self, loss: Array) -> Array:
        """:meth:`poison` for the unreduced loss, with the watched prediction's term."""
        loss = self.poison(loss)
        if self.mask is None or self._watched is None:
            return loss
        xp = self.xp
        pred, class_axis = self._watched
        mask = xp.broadcast_to(self.mask[..., None] if class_axis else self.mask, pred.shape)
        # where(mask, p - stop_gradient(p), 0) is 0 forward and has derivative 1
        # at the bad elements; times where(mask, NaN, 0) its derivative is NaN
        # there and 0 elsewhere (both wheres keep 0 * inf out of the backward).
        zero = xp.zeros_like(pred)
        moving = xp.where(mask, pred - stop_gradient(xp, pred), zero)
        term = moving * self._filled(mask, pred, math.nan, 0.0)
        return loss + (xp.sum(term, axis=-1) if class_axis else term)


def _is_real(value: Any) -> bool:
    """A real scalar: Python or NumPy ints and floats (bool is not a number here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _finite(value: Any) -> bool:
    # comparisons, not math.isfinite: under torch.compile a float option that changed
    # between calls is symbolic, and dynamo cannot trace math.isfinite on it
    return bool(-math.inf < value < math.inf)


def check_real(
    name: str,
    value: Any,
    rule: str = "a finite number",
    inside: Callable[[Any], bool] = _finite,
) -> float:
    """A real option (not a bool) for which ``inside(value)`` holds, as a float.

    ``rule`` says it in words for the message: TypeError for something that is
    not a real number, ValueError for one outside the rule (NaN included).
    The message is built only to raise: under torch.compile a float option
    that changed between calls is symbolic, and formatting it breaks the graph.
    """
    if not (_is_real(value) and inside(value)):
        msg = f"`{name}` must be {rule}; got {value!r}"
        raise (ValueError if _is_real(value) else TypeError)(msg)
    return float(value)


def check_fraction(name: str, value: Any, *, upper: float = 1.0, closed: bool = True) -> float:
    """A real number in [0, upper] (or [0, upper) when not ``closed``), as a float."""
    rule = f"a number in [0, {upper:g}{']' if closed else ')'}"
    if closed:
        return check_real(name, value, rule, lambda v: 0.0 <= v <= upper)
    return check_real(name, value, rule, lambda v: 0.0 <= v < upper)


def _negative(xp: Any, x: Array) -> Array:
    return ~(x >= 0)  # written so that NaN is refused too


def check_non_negative(xp: Any, name: str, x: Array) -> Array | None:
    """Counts, rates, variances are >= 0 (a core rule; the adapters skip it)."""
    if not _config.core_rules():
        return None
    return check_values(xp, name, x, _negative, "non-negative")


def check_class_weight(xp: Any, class_weight: Array, num_classes: int) -> None:
    if shape_of(class_weight) != (num_classes,):
        msg = (
            f"`class_weight` must have one weight per class, shape ({num_classes},); "
            f"got {shape_of(class_weight)}"
        )
        raise ValueError(msg)
    check_numeric(xp, "class_weight", class_weight)


def check_pos_weight(xp: Any, pos_weight: Array, logits: Array) -> None:
    """A scalar, or one weight per class along the last axis (as PyTorch)."""
    check_numeric(xp, "pos_weight", pos_weight)
    last = shape_of(logits)[-1:]
    if pos_weight.ndim == 0 or shape_of(pos_weight) == last:
        return
    msg = (
        f"`pos_weight` must be a scalar or have one weight per class along the last "
        f"axis of `logits`, shape {last}; got {shape_of(pos_weight)}"
    )
    raise ValueError(msg)


def check_sample_weight(xp: Any, sample_weight: Array, unreduced_shape: tuple[int, ...]) -> Array:
    """Return ``sample_weight`` reshaped to broadcast over the unreduced loss.

    It may have the shape of the batch, which is any leading part of the
    unreduced shape, e.g. ``(N,)`` for an ``(N, d1, d2)`` loss; trailing axes
    of size 1 are appended so it broadcasts from the left, never the right.
    """
    check_numeric(xp, "sample_weight", sample_weight)
    shape = shape_of(sample_weight)
    if shape != unreduced_shape[: len(shape)]:
        examples = sorted({unreduced_shape[:1], unreduced_shape})
        allowed = " or ".join(str(s) for s in examples)
        msg = (
            f"`sample_weight` must have the shape of the batch, a leading part of the "
            f"unreduced loss shape {unreduced_shape} such as {allowed}; got {shape}"
        )
        raise ValueError(msg)
    pad = len(unreduced_shape) - len(shape)
    return xp.reshape(sample_weight, shape + (1,) * pad)


def warn_if_probabilities(xp: Any, logits: Array, fn_name: str, probs_fn: str) -> None:
    """Warn when logits (class axis last) look like probabilities.

    Cheap on real logits: the first rows are looked at first, and ordinary
    logits (a negative value, or a value above 1, or a row not summing to 1)
    end the check there.  Only when those rows look like probabilities is the
    whole array examined.
    """
    if logits.ndim == 0 or logits.shape[-1] < 2 or math.prod(logits.shape) == 0:
        return
    # A few rows first, taken by indexing (no reshape: on a moved class axis
    # that would copy the whole array to look at four rows).
    first = logits[(0,) * (logits.ndim - 2) + (...,)] if logits.ndim > 2 else logits
    for part in (first[: min(4, first.shape[0]), ...] if first.ndim == 2 else first, logits):
        found = readable(xp, part)
        if found is None:
            return
        xp, sample = found
        looks = (
            bool(xp.all(sample >= 0))
            and bool(xp.all(sample <= 1))
            and bool(xp.all(xp.abs(xp.sum(sample, axis=-1) - 1) <= 1e-3))
        )
        if not looks:
            return
    msg = (
        f"`logits` given to {fn_name} look like probabilities (all in [0, 1], each row "
        f"summing to 1); {fn_name} applies softmax itself, so softmax would be applied "
        f"twice. Pass probabilities to {probs_fn} instead, or pass the raw logits."
    )
    warnings.warn(msg, ProbabilitiesAsLogitsWarning, stacklevel=4)


def warn_if_unnormalized(xp: Any, probs: Array, fn_name: str, input_dtype: Any) -> None:
    """Warn when probability rows (class axis last) do not sum to 1.

    ``probs`` is already in the compute dtype; the tolerance fits the dtype the
    caller passed, ``3 sqrt(eps)`` kept within [1e-6, 1e-2]: about 1e-3 for
    float32, 1e-6 for float64 and 1e-2 for half precision.
    """
    tol = min(max(3 * math.sqrt(float(xp.finfo(input_dtype).eps)), 1e-6), 1e-2)
    found = readable(xp, probs)
    if found is None or math.prod(probs.shape) == 0:
        return
    xp, probs = found
    off = xp.abs(xp.sum(probs, axis=-1) - 1) > tol
    if bool(xp.any(off)):
        pos = _first_position(xp, off) if off.ndim else ()
        total = float(xp.sum(probs, axis=-1)[pos]) if off.ndim else float(xp.sum(probs))
        msg = (
            f"`probs` given to {fn_name} should sum to 1 along the class axis; the row at "
            f"position {pos} sums to {total:.6g}. losskit does not renormalise them; "
            "if they are scores, not probabilities, use the softmax loss on logits."
        )
        warnings.warn(msg, UnnormalizedProbabilitiesWarning, stacklevel=4)
