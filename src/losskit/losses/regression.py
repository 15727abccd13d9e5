"""Regression losses: squared, absolute, Huber, log-cosh, percentage and log errors.

Each is one definition through :func:`losskit._define.elementwise_loss`: the
value of one element and its derivative with respect to the prediction.
Where ``pred - target`` may overflow although the loss does not (Huber with
``delta < 1``, the percentage error), the losses work on the half gap
``h = pred/2 - target/2``: halving is exact, so ``2 h`` rounds as
``pred - target`` would, but ``h`` stays finite for any finite inputs.
"""

from __future__ import annotations

import math
from typing import Any

from .._arrays import abs_flat_at_zero, pass_through
from .._backend import Array
from .._define import elementwise_loss
from .._validation import check_non_negative, check_real

# Keras's backend.epsilon(), the floor of the percentage and logarithmic errors.
KERAS_EPSILON = 1e-7


@elementwise_loss()
def mean_squared_error(xp: Any, pred: Array, target: Array) -> tuple[Array, Any]:
    r"""Squared error ``(pred - target)^2``, averaged over every element by default.

    .. math:: \ell = (p - t)^2, \qquad \partial \ell / \partial p = 2 (p - t)

    One value per element under ``reduction="none"``; ``"mean"`` is the mean
    over all elements (Keras's ``MeanSquaredError`` class, PyTorch's
    ``mse_loss``), the weighted mean with ``sample_weight``.

    Parameters
    ----------
    pred : array, real floating
        Predictions.
    target : array, the shape of ``pred``
        Targets.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

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

    Parameters
    ----------
    pred : array, real floating
        Predictions.
    target : array, the shape of ``pred``
        Targets.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> pred, target = np.array([1.0, 2.0, 4.0]), np.array([1.0, 0.0, 1.0])
    >>> round(float(lk.mean_absolute_error(pred, target)), 12)  # (0 + 2 + 3) / 3
    1.666666666667
    """
    diff = pred - target
    # d/dp |p - t| = sign(p - t), 0 at p = t
    return abs_flat_at_zero(xp, diff), lambda: xp.sign(diff)


@elementwise_loss()
def huber(xp: Any, pred: Array, target: Array, *, delta: float = 1.0) -> tuple[Array, Any]:
    r"""Huber loss: quadratic within ``delta`` of the target, linear beyond.

    .. math::
        \ell = \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
               \delta (|e| - \tfrac12 \delta) & |e| > \delta \end{cases},
        \quad e = p - t, \qquad
        \frac{\partial \ell}{\partial p} = \mathrm{clip}(e, -\delta, \delta)

    Replaces Keras's ``huber``/``Huber``, PyTorch's ``huber_loss``/``HuberLoss``
    and optax's ``huber_loss`` (same numbers; Keras then averages over the last
    axis).  PyTorch's ``smooth_l1_loss(beta=b)`` is ``huber(delta=b) / b``.
    ``delta`` must be a positive finite number.  The linear part is formed
    from the half gap, so it stays finite wherever its value is (``delta < 1``
    and errors beyond the float maximum).

    Parameters
    ----------
    pred : array, real floating
        Predictions.
    target : array, the shape of ``pred``
        Targets.
    delta : float > 0
        Where the quadratic part ends.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.regression import huber
    >>> pred, target = np.array([0.5, 3.0, -2.0]), np.zeros(3)
    >>> huber(pred, target, reduction="none")  # 0.5 * 0.5^2, 3 - 0.5, 2 - 0.5
    array([0.125, 2.5  , 1.5  ])

    References
    ----------
    P. J. Huber, "Robust Estimation of a Location Parameter", Ann. Math.
    Statist. 35(1), 1964.
    """
    delta = check_real("delta", delta, "a positive finite number", lambda v: 0 < v < math.inf)
    h = pred / 2 - target / 2  # e / 2, never overflowing
    a = xp.abs(h)
    quad = a <= delta / 2
    # The quadratic side sees 0 outside its region, so that neither side's
    # derivative is ever inf * 0 under autograd (the double-where idiom).
    hq = xp.where(quad, h, xp.zeros_like(h))
    value = xp.where(quad, 2 * hq * hq, (2 * delta) * a - delta * delta / 2)
    return value, lambda: xp.where(quad, 2 * h, delta * xp.sign(h))  # d/dp = clip(e, -δ, δ)


# Below this |error| log cosh is formed as log1p(2 sinh(e/2)^2), exact to
# rounding; above it |e| - log 2 + log1p(e^{-2|e|}) has no cancellation.
_LOG_COSH_SMALL = 1.0


@elementwise_loss()
def log_cosh(xp: Any, pred: Array, target: Array) -> tuple[Array, Any]:
    r"""Logarithm of the hyperbolic cosine of the error: quadratic near 0, linear far out.

    .. math::
        \ell = \log\cosh(e), \quad e = p - t, \qquad
        \frac{\partial \ell}{\partial p} = \tanh(e)

    Replaces Keras's ``log_cosh``/``LogCosh`` (which then averages over the
    last axis) and optax's ``log_cosh``.  Computed as
    ``|e| + log1p(exp(-2|e|)) - log 2`` for ``|e| >= 1`` (``exp`` never sees a
    positive number, finite for any finite error) and as
    ``log1p(2 sinh(e/2)^2)`` below, where the frameworks' ``logaddexp(e, -e) -
    log 2`` loses every digit (their ``log cosh(1e-9)`` is 0, not 5e-19).

    Parameters
    ----------
    pred : array, real floating
        Predictions.
    target : array, the shape of ``pred``
        Targets.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.regression import log_cosh
    >>> pred, target = np.array([0.0, 1e-9, 1e4]), np.zeros(3)
    >>> log_cosh(pred, target, reduction="none")  # 0, e^2/2, |e| - log 2
    array([0.00000000e+00, 5.00000000e-19, 9.99930685e+03])

    References
    ----------
    Keras, ``keras.losses.LogCosh``; optax, ``optax.losses.log_cosh``; P. Chen,
    G. Chen and S. Zhang, "Log Hyperbolic Cosine Loss Improves Variational
    Auto-Encoder", 2019.
    """
    e = pred - target
    a = xp.abs(e)
    small = a < _LOG_COSH_SMALL
    es = xp.where(small, e, xp.zeros_like(e))  # each side sees only its own region
    s = xp.sinh(es / 2)
    near = xp.log1p(2 * s * s)  # cosh e = 1 + 2 sinh^2(e/2)
    far = a + xp.log1p(xp.exp(-2 * a)) - math.log(2.0)
    return xp.where(small, near, far), lambda: xp.tanh(e)  # d/dp log cosh(e) = tanh(e)


@elementwise_loss()
def mean_absolute_percentage_error(xp: Any, pred: Array, target: Array) -> tuple[Array, Any]:
    r"""Absolute error as a percentage of the target, Keras's ``MeanAbsolutePercentageError``.

    .. math::
        \ell = 100 \frac{|p - t|}{\max(|t|, \epsilon)}, \qquad
        \frac{\partial \ell}{\partial p} = 100 \frac{\mathrm{sign}(p - t)}{\max(|t|, \epsilon)}

    with Keras's ``epsilon = 1e-7``, so a target of 0 gives ``1e9 |p|``.
    Replaces Keras's ``mean_absolute_percentage_error``/``mape``/``MAPE``/
    ``MeanAbsolutePercentageError`` (which average over the last axis).  The
    derivative at ``p = t`` is 0.  Formed from the half gap: finite wherever
    the percentage is (``t = 3e38, p = -3e38`` in float32 gives 200).

    Parameters
    ----------
    pred : array, real floating
        Predictions.
    target : array, the shape of ``pred``
        Targets (their size, at least 1e-7, divides the error).
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.regression import mean_absolute_percentage_error as mape
    >>> mape(np.array([110.0, 45.0]), np.array([100.0, 50.0]), reduction="none")
    array([10., 10.])

    References
    ----------
    Keras, ``keras.losses.MeanAbsolutePercentageError``; R. J. Hyndman and
    A. B. Koehler, "Another look at measures of forecast accuracy", Int. J.
    Forecasting 22(4), 2006.
    """
    h = pred / 2 - target / 2  # (p - t) / 2, never overflowing
    den = xp.clip(xp.abs(target), min=KERAS_EPSILON)
    value = 200 * (abs_flat_at_zero(xp, h) / den)  # 100 |2h| / den
    return value, lambda: (100 * xp.sign(h)) / den  # d/dp = 100 sign(p - t) / max(|t|, eps)


@elementwise_loss(checks=(("target", check_non_negative),))
def mean_squared_logarithmic_error(xp: Any, pred: Array, target: Array) -> tuple[Array, Any]:
    r"""Squared difference of ``log(1 + x)``, Keras's ``MeanSquaredLogarithmicError``.

    .. math::
        \ell = \left(\log(1 + \tilde p) - \log(1 + \tilde t)\right)^2,
        \quad \tilde x = \max(x, \epsilon), \qquad
        \frac{\partial \ell}{\partial p}
        = \frac{2 (\log(1+\tilde p) - \log(1+\tilde t))}{1 + \tilde p}
        \ \text{(0 where } p < \epsilon)

    with Keras's ``epsilon = 1e-7``.  Replaces Keras's
    ``mean_squared_logarithmic_error``/``msle``/``MSLE``/
    ``MeanSquaredLogarithmicError`` (which average over the last axis), with
    ``log1p`` where Keras forms ``log(x + 1)``: in float32 Keras's ``log(1e-7 +
    1)`` is 1.19e-7, losskit's 1e-7.  Predictions below epsilon are raised to
    it (no gradient there, as in Keras); targets must be non-negative.

    Parameters
    ----------
    pred : array, real floating
        Predictions (below 1e-7 taken as 1e-7).
    target : array, the shape of ``pred``
        Targets >= 0 (below 1e-7 taken as 1e-7).
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.regression import mean_squared_logarithmic_error as msle
    >>> e = np.e - 1  # log1p(e - 1) = 1
    >>> msle(np.array([e, 0.0]), np.array([0.0, e]), reduction="none").round(6)
    array([1., 1.])

    References
    ----------
    Keras, ``keras.losses.MeanSquaredLogarithmicError``.
    """
    pc = xp.clip(pred, min=KERAS_EPSILON)
    diff = xp.log1p(pc) - xp.log1p(xp.clip(target, min=KERAS_EPSILON))
    inside = ~(pred < KERAS_EPSILON)  # NaN passes, so its derivative is NaN too
    # d/dp = 2 (log1p(p~) - log1p(t~)) / (1 + p~), 0 where p was raised to eps
    return diff * diff, lambda: pass_through(xp, 2 * diff / (1 + pc), inside)
