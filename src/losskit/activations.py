"""Softmax, log-softmax, log-sum-exp, sigmoid and log-sigmoid, stable at any magnitude.

The stable forms used throughout losskit live here:

- softmax and log-sum-exp subtract the row maximum before exponentiating, so
  ``exp`` never sees a positive number;
- sigmoid exponentiates ``-|x|`` only;
- ``log(1 + e^x)`` is ``max(x, 0) + log1p(e^-|x|)``.

Half-precision input is computed in float32 and cast back.
"""

from __future__ import annotations

from typing import Any

from . import _dispatch, _torch_native
from ._backend import Array, cast, compute_dtype, namespace, quiet_numpy
from ._validation import check_class_axis, check_floating


def shifted_by_max(xp: Any, x: Array) -> tuple[Array, Array]:
    """``(x - m, m)`` with ``m`` the maximum over the last axis (kept).

    An infinite or empty maximum is replaced by 0 so that rows of ``-inf``
    give ``logsumexp = -inf`` rather than NaN.
    """
    if x.shape[-1] == 0:  # an empty class axis: nothing to shift
        return x, xp.zeros_like(xp.sum(x, axis=-1, keepdims=True))
    m = xp.max(x, axis=-1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return x - m, m


def log_softmax_last(xp: Any, x: Array) -> Array:
    """log_softmax over the last axis, in ``x``'s dtype; the portable kernel."""
    shifted, _ = shifted_by_max(xp, x)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


class NegLogSoftmax:
    """``-log softmax(x)`` over the last axis as ``2 * half_gap + log_norm``.

    ``half_gap = m/2 - x/2`` is half the distance below the row maximum ``m``;
    halving is exact, so it rounds exactly as ``m - x`` would, but it stays
    finite for any finite logits, where ``m - x`` overflows once logits of
    opposite sign approach the float maximum (3e38 - (-3e38)).  A weighted sum
    ``sum_c a_c (-log p_c)`` formed as ``(2 a_c) half_gap_c + a_c log_norm`` is
    therefore finite whenever its true value is representable, e.g. a
    label-smoothed loss over such logits.
    """

    def __init__(self, xp: Any, x: Array) -> None:
        self.xp = xp
        _, m = shifted_by_max(xp, x)
        self.half_gap = m / 2 - x / 2
        self.shifted = -2 * self.half_gap  # x - m, -inf where that overflows
        self.log_norm = xp.log(xp.sum(xp.exp(self.shifted), axis=-1, keepdims=True))

    def softmax(self) -> Array:
        return self.xp.exp(self.shifted - self.log_norm)

    def weighted_sum(self, a: Array) -> Array:
        """``sum_c a_c (-log p_c)`` over the last axis; classes with ``a_c = 0`` add 0.

        Only a zero weight on an infinite gap (a ``-inf`` logit, a mask) is
        special: ``0 * inf`` is NaN, so that term is 0 and so is its derivative
        in ``a_c`` (the convention of ``torch.xlogy``).  Everywhere else the
        product is formed, so the derivative in ``a_c`` is the exact
        ``-log p_c``, also where ``a_c = 0`` (targets are differentiated in
        distillation).  The gap is replaced before multiplying as well as the
        term after it, or autograd would form ``0 * inf`` in the backward pass.
        """
        xp = self.xp
        corner = (a == 0) & xp.isinf(self.half_gap)
        gap = xp.where(corner, xp.zeros_like(self.half_gap), self.half_gap)
        term = (2 * a) * gap + a * self.log_norm
        return xp.sum(xp.where(corner, xp.zeros_like(term), term), axis=-1)

    def at(self, index: Array, a: Array, gather: Any) -> Array:
        """``a * (-log p_index)`` per row, with ``gather(values, index)`` picking a class."""
        return (2 * a) * gather(self.xp, self.half_gap, index) + a * self.log_norm[..., 0]


def exp_neg_abs(xp: Any, x: Array) -> Array:
    """``e^-|x|``, never more than 1.

    ``-|x|`` is written as a ``where`` because autograd takes ``abs'(0) = 0``,
    which would drop the derivative of everything built on it at ``x = 0``
    (a zero-initialised logit); the ``where`` takes the ``-x`` side there.
    """
    return xp.exp(xp.where(x >= 0, -x, x))


def sigmoid_of(xp: Any, x: Array) -> Array:
    """``1 / (1 + e^-x)`` without exponentiating a positive number."""
    e = exp_neg_abs(xp, x)
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def log_sigmoid_of(xp: Any, x: Array) -> Array:
    """``log sigmoid(x) = min(x, 0) - log1p(e^-|x|)``, finite for any finite ``x``."""
    return xp.where(x >= 0, xp.zeros_like(x), x) - xp.log1p(exp_neg_abs(xp, x))


def _last_axis_op(x: Array, axis: int, op: Any, fast: Any, native: Any) -> Array:
    """Apply ``op(xp, x)`` over ``axis``, in the compute dtype, same dtype out.

    ``fast`` names the fused NumPy kernel, ``native`` the PyTorch function.
    """
    xp, x = namespace(x)
    check_floating(xp, "x", x)
    axis = check_class_axis("x", x, axis)
    if _torch_native.applies(xp):
        return native(x, axis, compute_dtype(xp, x.dtype))
    moved = xp.moveaxis(x, axis, -1) if axis != x.ndim - 1 else x
    result = _dispatch.rows(xp, fast, moved)
    if result is None:
        with quiet_numpy(xp):
            result = op(xp, cast(xp, moved, compute_dtype(xp, x.dtype)))
    result = cast(xp, result, x.dtype)
    return xp.moveaxis(result, -1, axis) if axis != x.ndim - 1 else result


def softmax(x: Array, /, *, axis: int = -1) -> Array:
    r"""Softmax along ``axis``: probabilities that sum to 1.

    .. math:: \mathrm{softmax}(x)_i = e^{x_i - m} / \sum_j e^{x_j - m},\quad m = \max_j x_j

    Gradient (Jacobian-vector product): ``d/dx (v . s) = s * (v - sum(v * s))``.

    Parameters
    ----------
    x : array of real floating dtype (NumPy, PyTorch, JAX, or a list)
    axis : int
        The class axis.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> lk.softmax(np.array([1.0, 2.0, 3.0])).round(4)
    array([0.09  , 0.2447, 0.6652])
    >>> lk.softmax(np.array([1e4, 0.0], dtype=np.float32))  # no overflow
    array([1., 0.], dtype=float32)
    """
    return _last_axis_op(
        x,
        axis,
        lambda xp, v: xp.exp(log_softmax_last(xp, v)),
        _dispatch.SOFTMAX,
        _torch_native.softmax,
    )


def log_softmax(x: Array, /, *, axis: int = -1) -> Array:
    r"""Log of the softmax along ``axis``, computed without taking ``log(softmax)``.

    .. math:: \log\mathrm{softmax}(x)_i = (x_i - m) - \log \sum_j e^{x_j - m}

    Gradient: ``d/dx (v . log_softmax(x)) = v - softmax(x) * sum(v)``.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> lk.log_softmax(np.array([0.0, 0.0])).round(6)
    array([-0.693147, -0.693147])
    >>> lk.log_softmax(np.array([1e4, 0.0], dtype=np.float32))  # log(0) never taken
    array([     0., -10000.], dtype=float32)
    """
    return _last_axis_op(
        x, axis, log_softmax_last, _dispatch.LOG_SOFTMAX, _torch_native.log_softmax
    )


def logsumexp(x: Array, /, *, axis: int = -1, keepdims: bool = False) -> Array:
    r"""``log(sum(exp(x)))`` along ``axis``, without overflow.

    .. math:: \mathrm{lse}(x) = m + \log \sum_j e^{x_j - m}

    Gradient: ``d lse / dx = softmax(x)``.  A row of ``-inf`` gives ``-inf``
    (as ``scipy.special.logsumexp``); an empty axis gives ``-inf`` too.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> float(lk.logsumexp(np.array([1000.0, 1000.0])))  # 1000 + log 2
    1000.6931471805599
    """
    xp, x = namespace(x)
    check_floating(xp, "x", x)
    axis = check_class_axis("x", x, axis)
    if _torch_native.applies(xp):
        result = _torch_native.logsumexp(x, axis, compute_dtype(xp, x.dtype))
        return xp.expand_dims(result, axis=axis) if keepdims else result
    moved = xp.moveaxis(x, axis, -1) if axis != x.ndim - 1 else x
    result = _dispatch.rows(xp, _dispatch.LOGSUMEXP, moved)
    if result is None:
        v = cast(xp, moved, compute_dtype(xp, x.dtype))
        with quiet_numpy(xp):
            shifted, m = shifted_by_max(xp, v)
            result = (m + xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True)))[..., 0]
    result = cast(xp, result, x.dtype)
    return xp.expand_dims(result, axis=axis) if keepdims else result


def sigmoid(x: Array, /) -> Array:
    r"""The logistic function ``1 / (1 + e^-x)``, elementwise.

    Computed as ``1/(1+e^-|x|)`` for ``x >= 0`` and ``e^-|x|/(1+e^-|x|)``
    otherwise, so no positive number is ever exponentiated.
    Gradient: ``sigmoid(x) (1 - sigmoid(x))``.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> lk.sigmoid(np.array([-1e4, 0.0, 1e4], dtype=np.float32))
    array([0. , 0.5, 1. ], dtype=float32)
    """
    xp, x = namespace(x)
    check_floating(xp, "x", x)
    return cast(xp, sigmoid_of(xp, cast(xp, x, compute_dtype(xp, x.dtype))), x.dtype)


def log_sigmoid(x: Array, /) -> Array:
    r"""``log(sigmoid(x)) = -log(1 + e^-x)``, elementwise, finite for any finite ``x``.

    Computed as ``min(x, 0) - log1p(e^-|x|)``.  Gradient: ``1 - sigmoid(x)``.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> lk.log_sigmoid(np.array([-1e4, 0.0], dtype=np.float32)).tolist()  # -1e4, -log 2
    [-10000.0, -0.6931471824645996]
    """
    xp, x = namespace(x)
    check_floating(xp, "x", x)
    v = cast(xp, x, compute_dtype(xp, x.dtype))
    return cast(xp, log_sigmoid_of(xp, v), x.dtype)
