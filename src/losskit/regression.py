"""Regression losses: mean squared error and mean absolute error."""

from __future__ import annotations

from typing import Any

from ._backend import Array, cast, compute_dtype, namespace, shape_of
from ._gradient import deliver, differentiable
from ._reduce import Reduction, plan
from ._validation import check_paired

Result = tuple[Array, Array | None]


def _prepare(
    pred: Array, target: Array, reduction: str, sample_weight: Array | None, grad_out: Any
) -> tuple[Any, Array, Array, Reduction]:
    """Validate, move to the compute dtype and plan the reduction (one value per element)."""
    xp, pred, target, sample_weight = namespace(
        pred, target, sample_weight, names=("target", "sample_weight")
    )
    reduction = check_paired(xp, "pred", pred, "target", target, reduction, grad_out)
    dtype = compute_dtype(xp, pred.dtype)
    red = plan(xp, reduction, shape_of(pred), dtype, sample_weight=sample_weight)
    return xp, pred, cast(xp, pred, dtype) - cast(xp, target, dtype), red


def _mean_squared_error(
    pred: Array,
    target: Array,
    *,
    reduction: str,
    sample_weight: Array | None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    xp, pred, diff, red = _prepare(pred, target, reduction, sample_weight, grad_out)
    value = red.apply(diff * diff)
    if not with_grad:
        return value, None
    # d/dp (p - t)^2 = 2 (p - t)
    return value, deliver(xp, red.grad(2 * diff, class_axis=False), pred, grad_out)


@differentiable(_mean_squared_error)
def mean_squared_error(
    pred: Array,
    target: Array,
    *,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Squared error ``(pred - target)^2``, averaged over every element by default.

    .. math:: \ell = (p - t)^2, \qquad \partial \ell / \partial p = 2 (p - t)

    One value per element under ``reduction="none"``; ``"mean"`` is the mean
    over all elements (Keras's ``MeanSquaredError`` class, PyTorch's
    ``mse_loss``), the weighted mean with ``sample_weight``.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> pred, target = np.array([1.0, 2.0, 4.0]), np.array([1.0, 0.0, 1.0])
    >>> float(lk.mean_squared_error(pred, target))  # (0 + 4 + 9) / 3
    4.333333333333333
    """
    return _mean_squared_error(pred, target, reduction=reduction, sample_weight=sample_weight)[0]


def _mean_absolute_error(
    pred: Array,
    target: Array,
    *,
    reduction: str,
    sample_weight: Array | None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    xp, pred, diff, red = _prepare(pred, target, reduction, sample_weight, grad_out)
    value = red.apply(xp.abs(diff))
    if not with_grad:
        return value, None
    # d/dp |p - t| = sign(p - t), taken as 0 at p = t (PyTorch's choice)
    return value, deliver(xp, red.grad(xp.sign(diff), class_axis=False), pred, grad_out)


@differentiable(_mean_absolute_error)
def mean_absolute_error(
    pred: Array,
    target: Array,
    *,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Absolute error ``|pred - target|``, averaged over every element by default.

    .. math:: \ell = |p - t|, \qquad \partial \ell / \partial p = \mathrm{sign}(p - t)

    The derivative at ``p = t`` is taken as 0, as PyTorch's ``l1_loss`` does.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> pred, target = np.array([1.0, 2.0, 4.0]), np.array([1.0, 0.0, 1.0])
    >>> round(float(lk.mean_absolute_error(pred, target)), 12)  # (0 + 2 + 3) / 3
    1.666666666667
    """
    return _mean_absolute_error(pred, target, reduction=reduction, sample_weight=sample_weight)[0]
