"""Regression losses: mean squared error and mean absolute error."""

from __future__ import annotations

from typing import Any

from .._backend import Array
from .._define import elementwise_loss


@elementwise_loss()
def mean_squared_error(xp: Any, pred: Array, target: Array) -> tuple[Array, Any]:
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
    diff = pred - target
    return diff * diff, lambda: 2 * diff  # d/dp (p - t)^2 = 2 (p - t)


@elementwise_loss()
def mean_absolute_error(xp: Any, pred: Array, target: Array) -> tuple[Array, Any]:
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
    diff = pred - target
    return xp.abs(diff), lambda: xp.sign(diff)  # d/dp |p - t| = sign(p - t), 0 at p = t
