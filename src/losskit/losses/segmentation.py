"""Overlap losses of segmentation: Dice, generalized Dice, Tversky.

Each loss compares a predicted probability map with a target map through sums
over some of their axes (the pixels of an image, by default every axis but
the first, the batch): one loss per example, as the reductions expect.  With
``I = sum(p t)`` (the soft intersection), ``FP = sum(p (1 - t))`` and
``FN = sum((1 - p) t)``, the Tversky index of Salehi et al. (2017) is

    T = (I + smooth) / (I + alpha FP + beta FN + smooth + eps)

and the loss ``1 - T``; Dice is the Tversky index at ``alpha = beta = 1/2``,
``(I + smooth) / ((P + T) / 2 + smooth + eps)`` with ``P = sum(p)`` and
``T = sum(t)`` (that is ``(2 I + 2 smooth) / (P + T + 2 smooth + 2 eps)``),
as optax writes it.  ``smooth`` enters the numerator and the denominator (an
empty prediction of an empty target costs 0), ``eps`` the denominator only
(Keras's ``backend.epsilon()``); they must not both be 0.

The frameworks each choose differently (see ``losskit.compat``): Keras's
``dice`` is ``1 - 2 I / (P + T + 1e-7)`` (``smooth=0, eps=0.5e-7`` here),
summed over every axis by default; Keras's ``tversky`` weights
``sum(t (1 - p))`` by ``alpha`` (so its ``alpha`` is the core's ``beta``);
optax's ``dice_loss`` takes logits, sums over every axis but the first and
the last (one Dice per class, then their mean) with ``smooth=1``.

A single private shell (:func:`_overlap_impl`) does the namespace, the checks,
the compute dtype (half precision is summed in float32), the reduction and
``sample_weight`` and the analytic gradient; the sums are kept apart from the
formula, so torch autograd and ``jax.grad`` differentiate the value with
respect to every floating argument (targets included).
"""

from __future__ import annotations

import math
from typing import Any

from .._backend import Array, cast, compute_dtype, namespace, quiet_numpy, shape_of
from .._gradient import deliver, differentiable
from .._reduce import plan
from .._validation import (
    Invalid,
    _is_int,
    check_paired,
    check_real,
    check_target_interval,
    check_unit_interval,
)

__all__ = ["dice", "generalized_dice", "tversky"]

Result = tuple[Array, Array | None]


# --------------------------------------------------------------------------- checks


def _check_axes(
    name: str, shape: tuple[int, ...], axis: Any, skip: tuple[int, ...]
) -> tuple[int, ...]:
    """The axes summed over, normalised and sorted (None: every axis not in ``skip``)."""
    ndim = len(shape)
    if axis is None:
        return tuple(i for i in range(ndim) if i not in skip)
    items = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    msg = (
        f"`axis` must be None, an int or a tuple of distinct ints in [{-ndim}, {ndim}) "
        f"for {ndim}-d `{name}`; got {axis!r}"
    )
    if not all(_is_int(a) for a in items):
        raise TypeError(msg)
    if not all(-ndim <= a < ndim for a in items):
        raise ValueError(msg)
    axes = tuple(sorted(int(a) % ndim for a in items))
    if len(set(axes)) != len(axes):
        raise ValueError(msg)
    return axes


def _check_class_axis(shape: tuple[int, ...], class_axis: Any) -> int:
    ndim = len(shape)
    msg = (
        f"`class_axis` must be an int in [{-ndim}, {ndim}) for {ndim}-d `probs`; got {class_axis!r}"
    )
    if not _is_int(class_axis):
        raise TypeError(msg)
    if not -ndim <= class_axis < ndim:
        raise ValueError(msg)
    if int(class_axis) % ndim == 0:
        msg = (
            f"`class_axis` must not be the batch axis 0; got class_axis={class_axis!r} "
            f"for {ndim}-d `probs`"
        )
        raise ValueError(msg)
    return int(class_axis) % ndim


def _check_batch(name: str, x: Array) -> None:
    if len(x.shape) == 0:
        msg = f"`{name}` must have at least 1 dimension (the batch); got a 0-d array"
        raise ValueError(msg)


def _non_negative(name: str, value: Any) -> float:
    return check_real(name, value, "a finite number >= 0", lambda v: 0 <= v < math.inf)


def _check_smoothing(smooth: Any, eps: Any) -> tuple[float, float]:
    smooth, eps = _non_negative("smooth", smooth), _non_negative("eps", eps)
    if smooth == 0 and eps == 0:
        msg = (
            "`smooth` and `eps` must not both be 0: an empty prediction of an empty "
            "target would give 0/0"
        )
        raise ValueError(msg)
    return smooth, eps


# --------------------------------------------------------------------------- arrays


def _sum(xp: Any, x: Array, axes: tuple[int, ...]) -> Array:
    # torch reads dim=() as every axis: an empty tuple sums nothing here.
    return xp.sum(x, axis=axes) if axes else x


def _expand(xp: Any, x: Array, shape: tuple[int, ...], axes: tuple[int, ...]) -> Array:
    """``x`` (``shape`` without ``axes``) with size-1 axes put back at ``axes``."""
    return xp.reshape(x, tuple(1 if i in axes else n for i, n in enumerate(shape)))


def _any(xp: Any, bad: Array | None, axes: tuple[int, ...]) -> Array | None:
    """Whether a bad value enters each loss: the mask itself when nothing is summed."""
    if bad is None or not axes:
        return bad
    return xp.any(bad, axis=axes)


def _ratio_terms(xp: Any, num: Array, den: Array) -> tuple[Array, Array, Array]:
    """``(1 - num/den, num/den**2, 1/den)``: the loss and the two factors of its derivative.

    With ``L = 1 - N/D``, ``dL = (N dD - D dN) / D**2 = (N/D**2) dD - (1/D) dN``.
    ``N <= D`` for the core's options, so ``(N/D) (1/D)`` never overflows before ``1/D``.
    """
    inv = 1 / den
    share = num * inv
    return 1 - share, share * inv, inv


# --------------------------------------------------------------------------- the shell


def _overlap_impl(
    probs: Array,
    targets: Array,
    *,
    axis: Any,
    alpha: float,
    beta: float,
    smooth: Any,
    eps: Any,
    reduction: str,
    sample_weight: Array | None,
    generalized: bool = False,
    class_axis: Any = -1,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    """Tversky, or with ``generalized`` Dice over ``class_axis``, with the gradient."""
    xp, probs, targets, sample_weight = namespace(
        probs, targets, sample_weight, names=("targets", "sample_weight")
    )
    reduction = check_paired(xp, "probs", probs, "targets", targets, reduction, grad_out)
    _check_batch("probs", probs)
    smooth, eps = _check_smoothing(smooth, eps)
    shape = shape_of(probs)
    if generalized:
        class_axis = _check_class_axis(shape, class_axis)
        skip = (0, class_axis)
        axes = _check_axes("probs", shape, axis, skip)
        if class_axis in axes:
            msg = f"`axis` {axis!r} must not contain the class axis `class_axis`={class_axis}"
            raise ValueError(msg)
        if shape[class_axis] == 0:
            msg = "`probs` must have at least one class along `class_axis`; got 0 classes"
            raise ValueError(msg)
        gone = tuple(sorted((*axes, class_axis)))
    else:
        axes = gone = _check_axes("probs", shape, axis, (0,))
    kept = tuple(n for i, n in enumerate(shape) if i not in gone)
    invalid = Invalid(xp, kept)
    invalid.add(_any(xp, check_unit_interval(xp, "probs", probs), gone))
    invalid.add(_any(xp, check_target_interval(xp, "targets", targets), gone))
    dtype = compute_dtype(xp, probs.dtype)
    red = plan(xp, reduction, kept, dtype, sample_weight=sample_weight, invalid=invalid)
    p, t = cast(xp, probs, dtype), cast(xp, targets, dtype)
    with quiet_numpy(xp):
        if not generalized:
            loss, a, b = _tversky_terms(xp, p, t, axes, alpha, beta, smooth, eps)
        else:
            loss, a, b, w = _generalized_terms(xp, p, t, axes, class_axis, smooth, eps)
        value = red.apply(loss)
        if not with_grad:
            return value, None
        # Per example, dL/dp = a dD/dp - b dN/dp (see _ratio_terms), scaled by the reduction.
        a, b = red.grad(a, class_axis=False), red.grad(b, class_axis=False)
        if not generalized:
            # dN/dp = t, dD/dp = alpha + (1 - alpha - beta) t
            a, b = _expand(xp, a, shape, axes), _expand(xp, b, shape, axes)
            grad = a * (alpha + (1 - alpha - beta) * t) - b * t
        else:
            # dN/dp_c = w_c t, dD/dp_c = w_c / 2
            a, b = _expand(xp, a, shape, gone), _expand(xp, b, shape, gone)
            grad = _expand(xp, w, shape, axes) * (a / 2 - b * t)
    return value, deliver(xp, grad, probs, grad_out)


def _tversky_terms(
    xp: Any,
    p: Array,
    t: Array,
    axes: tuple[int, ...],
    alpha: float,
    beta: float,
    smooth: float,
    eps: float,
) -> tuple[Array, Array, Array]:
    inter = _sum(xp, p * t, axes)
    # I + alpha (P - I) + beta (T - I), summed without forming P - I (no
    # cancellation); at alpha = beta = 1/2 exactly (P + T) / 2.
    den = alpha * _sum(xp, p, axes) + beta * _sum(xp, t, axes)
    if alpha + beta != 1:
        den = den + (1 - alpha - beta) * inter
    return _ratio_terms(xp, inter + smooth, den + (smooth + eps))


def _generalized_terms(
    xp: Any,
    p: Array,
    t: Array,
    axes: tuple[int, ...],
    class_axis: int,
    smooth: float,
    eps: float,
) -> tuple[Array, Array, Array, Array]:
    """Generalized Dice per example and the class weights (class axis kept, size-1 elsewhere)."""
    c = class_axis - sum(1 for a in axes if a < class_axis)  # the class axis after the sums
    inter, total_p, total_t = _sum(xp, p * t, axes), _sum(xp, p, axes), _sum(xp, t, axes)
    w = _class_weights(xp, total_t, c)
    num = xp.sum(w * inter, axis=c) + smooth
    den = xp.sum(w * (total_p + total_t), axis=c) / 2 + (smooth + eps)
    loss, a, b = _ratio_terms(xp, num, den)
    return loss, a, b, w


def _class_weights(xp: Any, total_t: Array, c: int) -> Array:
    """Sudre's ``1/T_c**2``, normalised to sum to 1 over the classes of each example.

    Written as ``r_c**2 / sum(r**2)`` with ``r_c = min(T) / T_c`` (the smallest
    target sum among the present classes): no ``1/T**2`` overflows.  A class
    absent from an example (``T_c = 0``, Sudre's weight infinite) gets the
    weight of the rarest present class (``r_c = 1``, MONAI's rule), so a
    prediction of an absent class is still penalised; with no class present
    every class weighs the same.
    """
    present = total_t > 0
    big = xp.full_like(total_t, math.inf)
    smallest = xp.min(xp.where(present, total_t, big), axis=c, keepdims=True)
    any_present = smallest < math.inf
    one = xp.ones_like(total_t)
    smallest = xp.where(any_present, smallest, xp.ones_like(smallest))  # no inf in autograd
    r = xp.where(present, smallest / xp.where(present, total_t, one), one)
    r2 = r * r
    return r2 / xp.sum(r2, axis=c, keepdims=True)


# --------------------------------------------------------------------------- the losses


def _tversky(
    probs: Array,
    targets: Array,
    *,
    alpha: Any = 0.5,
    beta: Any = 0.5,
    axis: Any = None,
    smooth: Any = 1.0,
    eps: Any = 0.0,
    reduction: str = "mean",
    sample_weight: Array | None = None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    alpha, beta = _non_negative("alpha", alpha), _non_negative("beta", beta)
    return _overlap_impl(
        probs,
        targets,
        axis=axis,
        alpha=alpha,
        beta=beta,
        smooth=smooth,
        eps=eps,
        reduction=reduction,
        sample_weight=sample_weight,
        with_grad=with_grad,
        grad_out=grad_out,
    )


def _dice(
    probs: Array,
    targets: Array,
    *,
    axis: Any = None,
    smooth: Any = 1.0,
    eps: Any = 0.0,
    reduction: str = "mean",
    sample_weight: Array | None = None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    return _overlap_impl(
        probs,
        targets,
        axis=axis,
        alpha=0.5,
        beta=0.5,
        smooth=smooth,
        eps=eps,
        reduction=reduction,
        sample_weight=sample_weight,
        with_grad=with_grad,
        grad_out=grad_out,
    )


def _generalized_dice(
    probs: Array,
    targets: Array,
    *,
    class_axis: int = -1,
    axis: Any = None,
    smooth: Any = 1.0,
    eps: Any = 0.0,
    reduction: str = "mean",
    sample_weight: Array | None = None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    return _overlap_impl(
        probs,
        targets,
        axis=axis,
        alpha=0.5,
        beta=0.5,
        smooth=smooth,
        eps=eps,
        reduction=reduction,
        sample_weight=sample_weight,
        generalized=True,
        class_axis=class_axis,
        with_grad=with_grad,
        grad_out=grad_out,
    )


@differentiable(_tversky)
def tversky(
    probs: Array,
    targets: Array,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    axis: int | tuple[int, ...] | None = None,
    smooth: float = 1.0,
    eps: float = 0.0,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Tversky loss: one minus the Tversky index, false positives and negatives weighed apart.

    .. math::
        \ell = 1 - \frac{I + s}{I + \alpha\,FP + \beta\,FN + s + \epsilon},
        \quad I = \sum p t,\ FP = \sum p (1-t),\ FN = \sum (1-p) t

    .. math::
        \frac{\partial \ell}{\partial p} = \frac{N}{D^2}\,(\alpha + (1-\alpha-\beta) t)
            - \frac{t}{D}

    with ``N`` and ``D`` the numerator and denominator above.  The sums run
    over ``axis`` (None: every axis but the first, one loss per example; an
    int or a tuple of ints: the loss keeps the other axes, so ``axis=(1, 2)``
    of an ``(N, H, W, C)`` map gives one loss per example and class).
    ``alpha`` weighs the false positives (predicted, not in the target) and
    ``beta`` the false negatives (Salehi et al., optax's ``dice_loss``;
    Keras's ``tversky`` swaps them).  ``alpha = beta = 1/2`` is
    :func:`dice`.  ``probs`` must lie in [0, 1] and so must ``targets``;
    ``smooth`` (added above and below) and ``eps`` (below only) are >= 0 and
    not both 0, ``alpha`` and ``beta`` >= 0.

    Parameters
    ----------
    probs : array (N, ...), real floating
        Predicted probabilities in [0, 1]; the first axis is the batch.
    targets : array of ``probs``' shape, real numbers
        Target probabilities (one-hot or soft) in [0, 1]; differentiable too.
    alpha : float >= 0, default 0.5
        The weight of the false positives ``FP``.
    beta : float >= 0, default 0.5
        The weight of the false negatives ``FN``.
    axis : int, tuple of ints or None, default None
        The axes summed over (None: every axis but the first); the loss
        keeps the others.  ``()`` sums nothing: one loss per element.
    smooth : float >= 0, default 1.0
        Added to the numerator and the denominator.
    eps : float >= 0, default 0.0
        Added to the denominator only; ``smooth`` and ``eps`` are not both 0.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the unreduced losses (one per example and kept axis);
        ``"mean"``: their mean (weighted by ``sample_weight`` if given);
        ``"sum"``: their (weighted) sum.
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it (default
        None: every weight 1).

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> p = np.array([[0.9, 0.2, 0.0], [1.0, 1.0, 0.0]])
    >>> t = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    >>> # row 0: I = 0.9, FP = 0.2, FN = 0.1: 1 - 1.9 / (1.9 + 0.3 * 0.2 + 0.7 * 0.1)
    >>> # row 1: I = 1, FP = 1, FN = 0: 1 - 2 / (2 + 0.3)
    >>> lk.tversky(p, t, alpha=0.3, beta=0.7, reduction="none").round(6)
    array([0.064039, 0.130435])

    References
    ----------
    S. S. M. Salehi, D. Erdogmus, A. Gholipour, "Tversky loss function for image
    segmentation using 3D fully convolutional deep networks", MLMI 2017.
    """
    return _tversky(
        probs,
        targets,
        alpha=alpha,
        beta=beta,
        axis=axis,
        smooth=smooth,
        eps=eps,
        reduction=reduction,
        sample_weight=sample_weight,
    )[0]


@differentiable(_dice)
def dice(
    probs: Array,
    targets: Array,
    *,
    axis: int | tuple[int, ...] | None = None,
    smooth: float = 1.0,
    eps: float = 0.0,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Dice loss: one minus the soft Dice coefficient of a probability map and its target.

    .. math::
        \ell = 1 - \frac{I + s}{(P + T)/2 + s + \epsilon}
             = 1 - \frac{2I + 2s}{P + T + 2s + 2\epsilon},
        \quad I = \sum p t,\ P = \sum p,\ T = \sum t

    .. math::
        \frac{\partial \ell}{\partial p} = \frac{N}{2 D^2} - \frac{t}{D}

    with ``N = I + s`` and ``D = (P + T)/2 + s + ε``: the Tversky index at
    ``alpha = beta = 1/2`` (:func:`tversky`).  The sums run over ``axis``
    (None: every axis but the first, one loss per example; a tuple of axes:
    the loss keeps the others, e.g. one Dice per class with ``axis=(1, 2)``
    for ``(N, H, W, C)`` maps).  ``smooth`` (numerator and denominator; an
    empty prediction of an empty target costs 0) and ``eps`` (denominator
    only) are >= 0 and not both 0.  ``probs`` and ``targets`` lie in [0, 1].
    Keras's ``dice`` is ``smooth=0, eps=0.5e-7`` summed over every axis,
    optax's ``dice_loss`` this with its ``smooth`` per class, after softmax.

    Parameters
    ----------
    probs : array (N, ...), real floating
        Predicted probabilities in [0, 1]; the first axis is the batch.
    targets : array of ``probs``' shape, real numbers
        Target probabilities (one-hot or soft) in [0, 1]; differentiable too.
    axis : int, tuple of ints or None, default None
        The axes summed over (None: every axis but the first); the loss
        keeps the others.  ``()`` sums nothing: one loss per element.
    smooth : float >= 0, default 1.0
        Added to the numerator and the denominator.
    eps : float >= 0, default 0.0
        Added to the denominator only; ``smooth`` and ``eps`` are not both 0.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the unreduced losses (one per example and kept axis);
        ``"mean"``: their mean (weighted by ``sample_weight`` if given);
        ``"sum"``: their (weighted) sum.
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it (default
        None: every weight 1).

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> p = np.array([[0.9, 0.2, 0.0], [0.0, 0.0, 0.0]])
    >>> t = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> # 1 - (0.9 + 1) / ((1.1 + 1) / 2 + 1); an empty map of an empty target: 0
    >>> lk.dice(p, t, reduction="none").round(6)
    array([0.073171, 0.      ])

    References
    ----------
    F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: Fully convolutional neural networks
    for volumetric medical image segmentation", 3DV 2016.
    """
    return _dice(
        probs,
        targets,
        axis=axis,
        smooth=smooth,
        eps=eps,
        reduction=reduction,
        sample_weight=sample_weight,
    )[0]


@differentiable(_generalized_dice)
def generalized_dice(
    probs: Array,
    targets: Array,
    *,
    class_axis: int = -1,
    axis: int | tuple[int, ...] | None = None,
    smooth: float = 1.0,
    eps: float = 0.0,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Generalized Dice loss: Dice pooled over classes weighted by inverse squared size.

    .. math::
        \ell = 1 - \frac{\sum_c w_c I_c + s}{\tfrac12 \sum_c w_c (P_c + T_c) + s + \epsilon},
        \quad w_c = \frac{1/T_c^2}{\sum_k 1/T_k^2}

    .. math::
        \frac{\partial \ell}{\partial p_c} = w_c \Big(\frac{N}{2 D^2} - \frac{t_c}{D}\Big)

    with ``I_c = sum p_c t_c``, ``P_c = sum p_c``, ``T_c = sum t_c`` over
    ``axis`` (None: every axis but the first and ``class_axis``), ``N`` and
    ``D`` the numerator and denominator.  One loss per example (and per
    remaining axis).  The class weights (Sudre et al.'s ``1/T_c**2``) are
    computed per example from the targets and normalised to sum to 1, so
    ``smooth`` is on the scale of the rarest class; a class absent from the
    example (``T_c = 0``) takes the weight of the rarest present one (so
    predicting it is penalised, never inf or NaN), and an example with no
    target at all weighs every class the same.  One class gives :func:`dice`.
    optax's ``multiclass_generalized_dice_loss`` is a different loss (a
    weighted mean of per-class Dice losses, see ``losskit.compat.optax``).

    Parameters
    ----------
    probs : array (N, ..., C, ...), real floating
        Predicted probabilities in [0, 1]; the first axis is the batch.
    targets : array of ``probs``' shape, real numbers
        Target probabilities (one-hot or soft) per class in [0, 1]; differentiable too.
    class_axis : int, default -1
        The class axis; not the batch axis 0 (so ``probs`` has at least 2
        dimensions).
    axis : int, tuple of ints or None, default None
        The axes summed over (None: every axis but the first and ``class_axis``); the loss
        keeps the others.  Must not contain ``class_axis``.
    smooth : float >= 0, default 1.0
        Added to the numerator and the denominator.
    eps : float >= 0, default 0.0
        Added to the denominator only; ``smooth`` and ``eps`` are not both 0.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the unreduced losses (one per example and kept axis);
        ``"mean"``: their mean (weighted by ``sample_weight`` if given);
        ``"sum"``: their (weighted) sum.
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it (default
        None: every weight 1).

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> t = np.zeros((1, 4, 2)); t[0, :3, 0] = 1; t[0, 3, 1] = 1  # class 0: 3 pixels, 1: 1
    >>> p = np.full((1, 4, 2), 0.5)
    >>> # w = (1/9, 1) / (10/9) = (0.1, 0.9): 1 - (0.1*1.5 + 0.9*0.5 + 1) / ((0.1*5 + 0.9*3)/2 + 1)
    >>> lk.generalized_dice(p, t, reduction="none").round(6)
    array([0.384615])

    References
    ----------
    C. H. Sudre, W. Li, T. Vercauteren, S. Ourselin, M. J. Cardoso, "Generalised Dice
    overlap as a deep learning loss function for highly unbalanced segmentations",
    DLMIA 2017.
    """
    return _generalized_dice(
        probs,
        targets,
        class_axis=class_axis,
        axis=axis,
        smooth=smooth,
        eps=eps,
        reduction=reduction,
        sample_weight=sample_weight,
    )[0]
