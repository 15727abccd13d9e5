"""Focal losses and the other cross-entropy variants: poly-1 and generalized cross-entropy.

``sigmoid_focal_loss`` and ``binary_focal_cross_entropy`` (one value per
element), ``categorical_focal_cross_entropy`` and ``poly1_cross_entropy`` (soft
targets over classes), ``softmax_focal_loss`` and ``generalized_cross_entropy``
(integer labels).  DESIGN.md's layout groups these with the cross-entropy
family (``cross_entropy.py``, ``binary.py``); they are kept apart so that
``cross_entropy.py``, which dispatches to the fused kernels, stays readable.

Every focal loss multiplies a cross-entropy ``ce`` by the modulating factor
``(1 - p_t)^gamma`` of Lin et al. (2017), ``q = 1 - p_t`` being the
probability the model gives to what did not happen.  For ``gamma >= 1`` it is
``q ** gamma``, whose derivative ``gamma q^(gamma-1)`` is finite everywhere.
For ``0 < gamma < 1`` that derivative is infinite at ``q = 0`` (a certain,
correct prediction): the chain rule would meet it with the 0 derivative of
``q`` in a target of 0 or 1, or with ``ce = 0``, and give NaN.  There the
factor is 0 with derivative 0 instead (where ``ce = 0`` too, the loss's exact
limit; where a clip holds ``ce`` at ``-log(1 - eps)``, the factor is held
still as the clip holds the cross-entropy).
"""

from __future__ import annotations

import math
from typing import Any

from .._arrays import clipped, gather_last, is_label, pass_through, ratio, xlogy_safe
from .._backend import Array
from .._define import elementwise_loss, rowwise_loss, sparse_loss
from .._validation import (
    _is_real,
    check_fraction,
    check_real,
    check_target_interval,
    check_unit_interval,
    warn_if_probabilities,
    warn_if_unnormalized,
)
from ..activations import NegLogSoftmax, exp_neg_abs, sigmoid_of

# -------------------------------------------------------------------------- options


def _check_alpha(alpha: Any, *, negative_disables: bool = False) -> float | None:
    """``alpha`` in [0, 1], or None for no weighting (and any negative number, if allowed)."""
    if alpha is None:
        return None
    off = ", or negative," if negative_disables else ""
    msg = f"`alpha` must be a number in [0, 1]{off} or None for no weighting; got {alpha!r}"
    if not _is_real(alpha):
        raise TypeError(msg)
    if negative_disables and float(alpha) < 0:
        return None
    if not 0 <= float(alpha) <= 1:
        raise ValueError(msg)
    return float(alpha)


# -------------------------------------------------------------------------- pieces


def _modulating(xp: Any, q: Array, gamma: float) -> Array:
    """The focal factor ``q ** gamma``: 1 for gamma = 0; for gamma < 1, 0 with derivative 0
    at q = 0 (see the module's docstring)."""
    if gamma == 0:
        return xp.ones_like(q)
    if gamma >= 1:
        return q**gamma
    zero = q == 0
    return xp.where(zero, xp.zeros_like(q), xp.where(zero, xp.ones_like(q), q) ** gamma)


def _slope(xp: Any, q: Array, gamma: float) -> Array:
    """``d q**gamma / d q = gamma q**(gamma-1)`` (0 at q = 0 for gamma < 1, as the factor's)."""
    if gamma == 0:
        return xp.zeros_like(q)
    if gamma >= 1:
        return gamma * q ** (gamma - 1)
    zero = q == 0
    return xp.where(
        zero, xp.zeros_like(q), gamma * xp.where(zero, xp.ones_like(q), q) ** (gamma - 1)
    )


def _balance(alpha: float | None, t: Array) -> Array | float:
    """``alpha_t = alpha t + (1 - alpha)(1 - t)`` (Lin et al.; linear in t), 1 if None."""
    return 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)


def _warn_unnormalized(xp: Any, p: Array, fn_name: str) -> None:
    """:func:`warn_if_unnormalized` for probabilities already in the compute dtype.

    The body cannot tell float32 input from half precision computed in
    float32, so float32 gets half precision's tolerance (1e-2): rows of
    float16/bfloat16 probabilities are not normalised to float32's 1e-3.
    """
    half = getattr(xp, "float16", None)
    dtype = half if half is not None and p.dtype == xp.float32 else p.dtype
    warn_if_unnormalized(xp, p, fn_name, dtype)


# -------------------------------------------------------------------------- binary


@elementwise_loss(pred="logits", truth="targets", checks=(("targets", check_target_interval),))
def sigmoid_focal_loss(
    xp: Any, logits: Array, targets: Array, *, alpha: float | None = 0.25, gamma: float = 2.0
) -> tuple[Array, Any]:
    r"""Focal loss on logits (Lin et al. 2017): sigmoid cross-entropy scaled by ``(1 - p_t)^gamma``.

    .. math::
        \ell = \alpha_t (1 - p_t)^\gamma\, \mathrm{ce}, \quad
        \mathrm{ce} = \log(1 + e^{z}) - t z, \quad
        1 - p_t = t\,\sigma(-z) + (1 - t)\,\sigma(z), \quad
        \alpha_t = \alpha t + (1 - \alpha)(1 - t)

    .. math::
        \frac{\partial \ell}{\partial z} = \alpha_t (1 - p_t)^\gamma
        \Big[\sigma(z) - t + \gamma (1 - 2t)\, \mathrm{ce}\,
        \frac{\sigma(z)\sigma(-z)}{1 - p_t}\Big]

    (for ``t = 1``: ``α (1-p)^γ [γ p log p - (1 - p)]``, Lin et al.'s eq.).
    ``1 - p_t`` is formed from ``σ(±z)``, never as ``1 - σ(z)``, so it keeps
    its relative precision (about ``e^{-|z|}`` for a confident prediction) and
    ``ce`` is the stable :func:`sigmoid_cross_entropy`: finite for any finite
    logit.  Soft targets in [0, 1] are taken as optax does.  ``alpha=None``, or
    a negative ``alpha`` (torchvision's and detectron2's ``-1``), disables the
    balancing; ``gamma=0`` gives ``alpha_t`` times sigmoid cross-entropy.
    Every derivative (logits, targets) is exact; for ``gamma < 1`` the
    factor's slope ``γ q^{γ-1}`` grows without bound as ``q → 0``.

    Replaces ``optax.sigmoid_focal_loss`` (its numbers with ``reduction="none"``
    and ``alpha=None``, optax's default, or the same ``alpha``), torchvision's
    ``sigmoid_focal_loss`` and Keras's ``binary_focal_crossentropy(from_logits=True)``:
    Keras's value is the mean over the last axis of this loss's
    ``reduction="none"`` values with ``alpha=None`` (``alpha`` when
    ``apply_class_balancing=True``) on targets smoothed beforehand as
    ``t (1 - s) + s/2``.

    Parameters
    ----------
    logits : array, real floating
        Any real scores.
    targets : array, the shape of ``logits``
        0/1 or soft targets in [0, 1].
    alpha : float or None
        Weight of the positive class (``1 - alpha`` for the negative); None or
        a negative number: no balancing.
    gamma : float >= 0
        The focusing exponent.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> z, t = np.array([2.0, -1.0, 1e4]), np.array([1.0, 1.0, 0.0])
    >>> # p_t = σ(2), σ(-1), σ(-1e4): 0.25 (1-p_t)^2 (-log p_t) with 1 - p_t = 0.119203,
    >>> # 0.731059, 1 (-log p_t = 0.126928, 1.313262, 1e4, α_t = 1 - 0.25 for t = 0)
    >>> lk.sigmoid_focal_loss(z, t, reduction="none").round(6)
    array([4.51000e-04, 1.75467e-01, 7.50000e+03])

    References
    ----------
    Lin, Goyal, Girshick, He, Dollár, "Focal Loss for Dense Object Detection", ICCV 2017.
    """
    alpha = _check_alpha(alpha, negative_disables=True)
    gamma = check_real("gamma", gamma, "a finite number >= 0", lambda v: 0 <= v < math.inf)
    z, t = logits, targets
    # log(1 + e^z) - t z, written per sign of z so nothing exceeds the result
    ce = xp.where(z < 0, -t * z, (1 - t) * z) + xp.log1p(exp_neg_abs(xp, z))
    s_pos, s_neg = sigmoid_of(xp, z), sigmoid_of(xp, -z)
    q = t * s_neg + (1 - t) * s_pos
    w = _modulating(xp, q, gamma)
    a_t = _balance(alpha, t)
    loss = a_t * w * ce

    def derivative() -> Array:
        # d/dz = α_t q^γ [σ(z) - t + γ (1 - 2t) ce σ(z)σ(-z)/q]   (σ(z)σ(-z)/q <= 1)
        r = ratio(xp, s_pos * s_neg, q)
        return a_t * w * ((s_pos - t) + gamma * (1 - 2 * t) * (ce * r))  # ce r first: no inf * 0

    return loss, derivative


@elementwise_loss(
    pred="probs",
    truth="targets",
    checks=(("probs", check_unit_interval), ("targets", check_target_interval)),
)
def binary_focal_cross_entropy(
    xp: Any,
    probs: Array,
    targets: Array,
    *,
    gamma: float = 2.0,
    alpha: float | None = None,
    eps: float = 1e-7,
) -> tuple[Array, Any]:
    r"""Focal loss on probabilities: binary cross-entropy scaled by ``(1 - p_t)^gamma``.

    .. math::
        \ell = \alpha_t\, (1 - p_t)^\gamma\, \big[-t \log \tilde p - (1-t) \log(1 - \tilde p)\big],
        \quad \tilde p = \mathrm{clip}(p, \epsilon, 1 - \epsilon),
        \quad 1 - p_t = t (1 - p) + (1 - t) p

    .. math::
        \frac{\partial \ell}{\partial p} = \alpha_t \Big[(1 - p_t)^\gamma
        \frac{\tilde p - t}{\tilde p (1 - \tilde p)}\ \text{(0 where clipped)}
        + \gamma (1 - p_t)^{\gamma - 1} (1 - 2t)\, \mathrm{ce}\Big]

    As Keras's ``binary_focal_crossentropy``, the factor is taken on the
    unclipped ``p`` and the cross-entropy on the clipped one, so the factor's
    derivative reaches ``p`` even where the clip holds the cross-entropy still.
    ``alpha`` (None: no balancing) gives ``α_t = α t + (1 - α)(1 - t)``, Keras's
    ``apply_class_balancing=True`` with that ``alpha``; Keras's
    ``label_smoothing`` s is targets ``t (1 - s) + s/2`` given here.  With
    ``gamma=0`` and no ``alpha`` it is :func:`binary_cross_entropy`.
    One value per element under ``reduction="none"`` (Keras averages the last
    axis).  For logits use :func:`sigmoid_focal_loss`, which never clips.

    Parameters
    ----------
    probs : array, real floating
        Predicted probabilities of class 1, in [0, 1].
    targets : array, the shape of ``probs``
        0/1 or soft targets in [0, 1].
    gamma : float >= 0
        The focusing exponent.
    alpha : float in [0, 1] or None
        Class balancing ``α t + (1 - α)(1 - t)``; None: none.
    eps : float in [0, 0.5)
        The cross-entropy's clip ``[eps, 1 - eps]``.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    Keras's documentation example (``y_true=[[0, 1], [0, 0]]``), whose
    per-row means are Keras's ``[0.330, 0.206]``:

    >>> import numpy as np, losskit as lk
    >>> p, t = np.array([[0.6, 0.4], [0.4, 0.6]]), np.array([[0.0, 1.0], [0.0, 0.0]])
    >>> v = lk.binary_focal_cross_entropy(p, t, gamma=2.0, reduction="none")
    >>> v.round(6)  # 0.6^2 (-log 0.4), 0.6^2 (-log 0.4); 0.4^2 (-log 0.6), 0.6^2 (-log 0.4)
    array([[0.329865, 0.329865],
           [0.081732, 0.329865]])
    >>> v.mean(axis=-1).round(3)
    array([0.33 , 0.206])

    References
    ----------
    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017; Keras 3
    ``keras.losses.binary_focal_crossentropy``.
    """
    gamma = check_real("gamma", gamma, "a finite number >= 0", lambda v: 0 <= v < math.inf)
    alpha = _check_alpha(alpha)
    eps = check_fraction("eps", eps, upper=0.5, closed=False)
    p, t = probs, targets
    pc, inside = clipped(xp, p, eps)
    # each product 0 where its weight and its probability are both 0 (xlogy_safe)
    log_p = xp.log(xlogy_safe(xp, t, pc))
    log_not_p = xp.log1p(-xp.where((t == 1) & (pc == 1), xp.zeros_like(pc), pc))
    ce = -(t * log_p + (1 - t) * log_not_p)
    q = t * (1 - p) + (1 - t) * p
    w = _modulating(xp, q, gamma)
    a_t = _balance(alpha, t)

    def derivative() -> Array:
        # d/dp = α_t [q^γ (p̃ - t)/(p̃ (1 - p̃)) (0 if clipped) + γ q^(γ-1) (1 - 2t) ce]
        dce = pass_through(xp, ratio(xp, 1 - t, 1 - pc) - ratio(xp, t, pc), inside)
        return a_t * (w * dce + _slope(xp, q, gamma) * (1 - 2 * t) * ce)

    return a_t * w * ce, derivative


# -------------------------------------------------------------------------- categorical


@rowwise_loss(
    pred="probs",
    truth="targets",
    checks=(("probs", check_unit_interval), ("targets", check_target_interval)),
)
def categorical_focal_cross_entropy(
    xp: Any,
    probs: Array,
    targets: Array,
    *,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    eps: float = 1e-7,
) -> tuple[Array, Any]:
    r"""Focal loss over classes on probabilities (Keras's ``categorical_focal_crossentropy``).

    .. math::
        \ell = -\sum_c \alpha\, (1 - \tilde p_c)^\gamma\, t_c \log \tilde p_c, \quad
        \tilde p = \mathrm{clip}(p, \epsilon, 1 - \epsilon)

    .. math::
        \frac{\partial \ell}{\partial p_c} = \alpha\, t_c \Big[\gamma (1 - \tilde p_c)^{\gamma - 1}
        \log \tilde p_c - \frac{(1 - \tilde p_c)^\gamma}{\tilde p_c}\Big]
        \ \text{(0 where clipped)}

    ``probs`` must lie in [0, 1].  Keras divides each row by its sum before
    clipping; losskit does not renormalise (rows that do not sum to 1 give
    :class:`UnnormalizedProbabilitiesWarning`, with half precision's
    tolerance, 1e-2, below float64), so the numbers are Keras's for
    normalised rows.  ``alpha`` in [0, 1] is one scalar weight, as Keras's
    default (None: 1);
    Keras's per-class ``alpha`` list is reached with ``alpha=1`` and targets
    ``alpha_c t_c`` (the loss is linear in ``t``).  Keras's
    ``label_smoothing`` s is targets ``t (1 - s) + s/C`` given here, its
    ``from_logits=True`` is ``probs = softmax(logits)``.  One value per
    example under ``reduction="none"``.

    Parameters
    ----------
    probs : array, real floating
        Predicted probabilities in [0, 1], rows summing to 1 along ``axis``.
    targets : array, the shape of ``probs``
        A distribution over classes along ``axis`` (one-hot or soft).
    axis : int
        The class axis.
    gamma : float >= 0
        The focusing exponent.
    alpha : float in [0, 1] or None
        One scalar weight (None: 1).
    eps : float in [0, 0.5)
        The probabilities are clipped to ``[eps, 1 - eps]``.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    Keras's documentation example:

    >>> import numpy as np, losskit as lk
    >>> t = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> p = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    >>> # 0.25 0.05^2 (-log .95) and 0.25 0.9^2 (-log .1)
    >>> lk.categorical_focal_cross_entropy(p, t, reduction="none").round(6)
    array([3.20000e-05, 4.66273e-01])

    References
    ----------
    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017; Keras 3
    ``keras.losses.categorical_focal_crossentropy``.
    """
    gamma = check_real("gamma", gamma, "a finite number >= 0", lambda v: 0 <= v < math.inf)
    scale = _check_alpha(alpha)
    a = 1.0 if scale is None else scale
    eps = check_fraction("eps", eps, upper=0.5, closed=False)
    p, t = probs, targets
    _warn_unnormalized(xp, p, "categorical_focal_cross_entropy")
    pc, inside = clipped(xp, p, eps)
    ce = -(t * xp.log(xlogy_safe(xp, t, pc)))  # per class; 0 where t = 0 and p̃ = 0
    q = 1 - pc
    w = _modulating(xp, q, gamma)
    loss = a * xp.sum(w * ce, axis=-1)

    def derivative() -> Array:
        # d/dp_c = α [q_c^γ (-t_c / p̃_c) - γ q_c^(γ-1) ce_c]   (0 where clipped)
        d = w * -ratio(xp, t, pc) - _slope(xp, q, gamma) * ce
        return a * pass_through(xp, d, inside)

    return loss, derivative


@rowwise_loss(pred="logits", truth="targets", checks=(("targets", check_target_interval),))
def poly1_cross_entropy(
    xp: Any, logits: Array, targets: Array, *, epsilon: float = 2.0
) -> tuple[Array, Any]:
    r"""Poly-1 loss (Leng et al. 2022): softmax cross-entropy plus ``epsilon (1 - p_t)``.

    .. math::
        \ell = -\sum_c t_c \log \mathrm{softmax}(z)_c + \epsilon \sum_c t_c (1 - p_c),
        \quad p = \mathrm{softmax}(z)

    .. math::
        \frac{\partial \ell}{\partial z} = \Big(\sum_c t_c\Big) p - t
        - \epsilon\, p \odot \big(t - \langle t, p \rangle\big)

    optax's ``poly_loss_cross_entropy`` exactly (``Σ t_c (1 - p_c)``, which is
    ``1 - ⟨t, p⟩`` for targets that sum to 1).  ``1 - p_c`` is formed as
    ``-expm1(log p_c)``, precise for a confident class, and the
    cross-entropy as :func:`softmax_cross_entropy`'s: finite for logits of any
    finite magnitude.  ``epsilon`` is any finite number (the paper uses
    ``[-1, ∞)``; ``epsilon=0`` is :func:`softmax_cross_entropy`).  One value per
    example under ``reduction="none"``.

    Parameters
    ----------
    logits : array, real floating
        Any real scores.
    targets : array, the shape of ``logits``
        A distribution over classes along ``axis`` (one-hot or soft).
    axis : int
        The class axis.
    epsilon : float
        Weight of the ``1 - p_t`` term (0: softmax cross-entropy).
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> z, t = np.array([[2.0, 1.0, 0.0]]), np.array([[1.0, 0.0, 0.0]])
    >>> # p_0 = 0.665241: -log p_0 + 2 (1 - p_0) = 0.407606 + 0.669518
    >>> lk.poly1_cross_entropy(z, t, reduction="none").round(6)
    array([1.077124])

    References
    ----------
    Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification
    Loss Functions", ICLR 2022.
    """
    epsilon = check_real("epsilon", epsilon)
    z, t = logits, targets
    warn_if_probabilities(xp, z, "poly1_cross_entropy", "a probability loss")
    nls = NegLogSoftmax(xp, z)
    one_minus_p = -xp.expm1(-(2 * nls.half_gap + nls.log_norm))
    loss = nls.weighted_sum(t) + epsilon * xp.sum(t * one_minus_p, axis=-1)

    def derivative() -> Array:
        # d/dz = sum(t) p - t - ε p (t - <t, p>)
        p = nls.softmax()
        tp = xp.sum(t * p, axis=-1, keepdims=True)
        return xp.sum(t, axis=-1, keepdims=True) * p - t - epsilon * p * (t - tp)

    return loss, derivative


# -------------------------------------------------------------------------- sparse


# Beyond this cross-entropy, 1 - p_y = -expm1(-ce) is 1 in float32 and float64
# alike (e^-100 = 4e-44) and its derivative e^-ce is below any rounding of the
# loss's; the factor is taken at the bound so that an infinite ce (logits
# ±3e38 in float32) never meets e^-ce = 0 in autograd's product.
_CE_SATURATED = 100.0


@sparse_loss(pred="logits", class_weight=True, ignore_index=True)
def softmax_focal_loss(
    xp: Any, logits: Array, labels: Array, *, gamma: float = 2.0
) -> tuple[Array, Any]:
    r"""Focal loss of integer labels under the softmax of logits (the dense-prediction form).

    .. math::
        \ell = -(1 - p_y)^\gamma \log p_y, \quad p = \mathrm{softmax}(z)

    Derivative, from ``∂ log p_y / ∂z_c = δ_cy - p_c`` and ``∂p_y/∂z_c = p_y (δ_cy - p_c)``:

    .. math::
        \frac{\partial \ell}{\partial z_c}
        = (\delta_{cy} - p_c)(1 - p_y)^{\gamma - 1}\big[\gamma p_y \log p_y - (1 - p_y)\big]
        = (1 - p_y)^\gamma \Big(1 + \gamma\, p_y \frac{-\log p_y}{1 - p_y}\Big)(p_c - \delta_{cy})

    The second form is what is computed: ``-log p_y / (1 - p_y)`` lies in
    ``[1, ∞)`` and ``p_y`` times it in ``(0, 1]``, so nothing overflows or
    divides by 0 (at ``p_y = 1`` the loss and its gradient are 0).
    ``-log p_y`` is :func:`sparse_softmax_cross_entropy`'s, computed stably from
    the log-softmax, and ``1 - p_y = -expm1(log p_y)``; ``gamma=0`` is
    :func:`sparse_softmax_cross_entropy` exactly.  ``class_weight`` is the
    per-class ``alpha`` of torchvision's and detectron2's focal losses (no
    ``1 - alpha`` for the other classes, as in the softmax form):
    ``alpha_y (1-p_y)^γ (-log p_y)``, and ``"mean"`` divides by the summed
    weight of the counted labels, as :func:`sparse_softmax_cross_entropy`.
    Examples labelled ``ignore_index`` count nowhere.  None of Keras, PyTorch
    or optax ships this loss (kornia's ``focal_loss`` is its one-hot form).

    Parameters
    ----------
    logits : array, real floating
        Any real scores.
    labels : integer array, the shape of ``logits`` without ``axis``
        Class ids in ``[0, C)`` (or ``ignore_index``).
    axis : int
        The class axis.
    class_weight : array (C,), optional
        Per-class weight (torchvision's ``alpha``).
    ignore_index : int, optional
        A label that counts nowhere.
    gamma : float >= 0
        The focusing exponent.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> z, y = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]]), np.array([0, 2])
    >>> # p_y = 0.665241, 1/3: 0.334759^2 * 0.407606 and (2/3)^2 log 3
    >>> lk.softmax_focal_loss(z, y, reduction="none").round(6)
    array([0.045678, 0.488272])

    References
    ----------
    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017 (section 3.2).
    """
    gamma = check_real("gamma", gamma, "a finite number >= 0", lambda v: 0 <= v < math.inf)
    warn_if_probabilities(xp, logits, "softmax_focal_loss", "a probability loss")
    nls = NegLogSoftmax(xp, logits)
    ce = nls.at(labels, xp.ones_like(nls.log_norm[..., 0]), gather_last)  # -log p_y
    saturated = xp.where(ce < _CE_SATURATED, ce, xp.full_like(ce, _CE_SATURATED))
    q = -xp.expm1(-saturated)  # 1 - p_y
    w = _modulating(xp, q, gamma)

    def derivative() -> Array:
        # d/dz = q^γ (1 + γ p_y (-log p_y)/q) (softmax(z) - onehot(y))
        p_y = 1 - q
        r = xp.where(ce == 0, xp.ones_like(ce), ratio(xp, p_y * ce, q))  # p_y ce / q, 1 at ce = 0
        r = xp.where(p_y == 0, xp.zeros_like(r), r)  # p_y ce -> 0 as ce -> inf
        p = nls.softmax()
        onehot = is_label(xp, labels, logits.shape[-1])
        return (w * (1 + gamma * r))[..., None] * xp.where(onehot, p - 1, p)

    return w * ce, derivative


@sparse_loss(pred="probs", checks=(("probs", check_unit_interval),))
def generalized_cross_entropy(
    xp: Any, probs: Array, labels: Array, *, q: float = 0.5
) -> tuple[Array, Any]:
    r"""Generalized cross-entropy (Zhang & Sabuncu 2018): ``(1 - p_y^q) / q``, noise-robust.

    .. math::
        \ell = \frac{1 - p_y^{\,q}}{q}, \qquad
        \frac{\partial \ell}{\partial p_c} = -[c = y]\, p_y^{\,q - 1}

    ``q`` in (0, 1]: ``q → 0`` is the cross-entropy ``-log p_y``, ``q = 1`` the
    mean absolute error ``1 - p_y``.  Computed as ``-expm1(q log p_y) / q``,
    precise for small ``q`` where ``1 - p_y^q`` would cancel; at ``p_y = 0`` the
    loss is ``1/q`` and its derivative ``-∞`` for ``q < 1`` (nothing is
    clipped, as in Keras).  ``probs`` must lie in [0, 1]; rows that do not sum
    to 1 give :class:`UnnormalizedProbabilitiesWarning` (tolerance as in
    :func:`categorical_focal_cross_entropy`).  Keras's
    ``categorical_generalized_cross_entropy(y_true, y_pred, q)`` takes the same
    integer labels and gives the same numbers.

    Parameters
    ----------
    probs : array, real floating
        Predicted probabilities in [0, 1], rows summing to 1 along ``axis``.
    labels : integer array, the shape of ``probs`` without ``axis``
        Class ids in ``[0, C)``.
    axis : int
        The class axis.
    q : float in (0, 1]
        0 is the cross-entropy's limit, 1 the mean absolute error.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> p, y = np.array([[0.25, 0.75], [0.5, 0.5]]), np.array([1, 0])
    >>> lk.generalized_cross_entropy(p, y, q=0.5, reduction="none").round(6)  # 2 (1 - sqrt p_y)
    array([0.267949, 0.585786])

    References
    ----------
    Zhang, Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural
    Networks with Noisy Labels", NeurIPS 2018.
    """
    q = check_real("q", q, "a number in (0, 1]", lambda v: 0 < v <= 1)
    _warn_unnormalized(xp, probs, "generalized_cross_entropy")
    p_y = gather_last(xp, probs, labels)
    positive = p_y > 0
    safe = xp.where(positive, p_y, xp.ones_like(p_y))
    # at p_y = 0 the power form gives 1/q and the true derivative (-inf, or -1 at q = 1)
    loss = xp.where(positive, -xp.expm1(q * xp.log(safe)) / q, (1 - p_y**q) / q)

    def derivative() -> Array:
        # d/dp_c = -[c = y] p_y^(q-1)
        d = -(p_y ** (q - 1))
        onehot = is_label(xp, labels, probs.shape[-1])
        return xp.where(onehot, d[..., None], xp.zeros_like(probs))

    return loss, derivative
