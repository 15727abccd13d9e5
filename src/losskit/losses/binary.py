"""Binary cross-entropy: on probabilities and on logits (sigmoid fused in).

As in :mod:`losskit.losses.cross_entropy`, each public loss is a shell over an
implementation that also returns the gradient.
"""

from __future__ import annotations

from typing import Any

from .._arrays import (
    check_probs,
    clipped,
    pass_through,
    ratio,
    xlogy_safe,
)
from .._backend import Array, cast, compute_dtype, namespace, quiet_numpy, shape_of
from .._gradient import deliver, differentiable
from .._reduce import plan
from .._validation import (
    Invalid,
    check_fraction,
    check_paired,
    check_pos_weight,
    check_target_interval,
    check_weight_values,
)
from ..activations import exp_neg_abs, sigmoid_of

Result = tuple[Array, Array | None]


def _binary_cross_entropy(
    probs: Array,
    targets: Array,
    *,
    eps: float,
    reduction: str,
    sample_weight: Array | None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    xp, probs, targets, sample_weight = namespace(
        probs, targets, sample_weight, names=("targets", "sample_weight")
    )
    reduction = check_paired(xp, "probs", probs, "targets", targets, reduction, grad_out)
    eps, bad_probs = check_probs(xp, probs, eps)
    invalid = Invalid(xp, shape_of(probs))
    invalid.add(bad_probs)
    invalid.add(check_target_interval(xp, "targets", targets))
    dtype = compute_dtype(xp, probs.dtype)
    p, t = cast(xp, probs, dtype), cast(xp, targets, dtype)
    red = plan(xp, reduction, shape_of(p), dtype, sample_weight=sample_weight, invalid=invalid)
    invalid.watch(p, class_axis=False)  # p is clipped on its way to the loss
    with quiet_numpy(xp):
        pc, inside = clipped(xp, p, eps)
        # -(t log p + (1-t) log(1-p)), each product 0 where its weight and its
        # probability are both 0 (see xlogy_safe): no 0 * -inf in the value
        # or in autograd, and the exact derivative in t wherever it is finite.
        log_p = xp.log(xlogy_safe(xp, t, pc))
        log_not_p = xp.log1p(-xp.where((t == 1) & (pc == 1), xp.zeros_like(pc), pc))
        loss = -(t * log_p + (1 - t) * log_not_p)
        value = red.apply(loss)
        if not with_grad:
            return value, None
        # d loss / d p = -t/p + (1-t)/(1-p)  (0 where p was clipped)
        dp = pass_through(xp, ratio(xp, 1 - t, 1 - pc) - ratio(xp, t, pc), inside)
        grad = red.grad(dp, class_axis=False)
    return value, deliver(xp, grad, probs, grad_out)


@differentiable(_binary_cross_entropy)
def binary_cross_entropy(
    probs: Array,
    targets: Array,
    *,
    eps: float = 1e-7,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Binary cross-entropy of 0/1 (or soft) targets under predicted probabilities.

    .. math::
        \ell = -t \log \tilde p - (1-t) \log(1-\tilde p),
        \quad \tilde p = \mathrm{clip}(p, \epsilon, 1-\epsilon),
        \qquad \frac{\partial \ell}{\partial p} = \frac{\tilde p - t}{\tilde p (1-\tilde p)}
        \ \text{(0 where clipped)}

    One value per element under ``reduction="none"``.  ``probs`` must lie in
    [0, 1].  For logits use :func:`sigmoid_cross_entropy`, which never
    clips.

    Parameters
    ----------
    probs : array, real floating
        Predicted probabilities of class 1, in [0, 1].
    targets : array, the shape of ``probs``
        0/1 or soft targets in [0, 1].
    eps : float in [0, 0.5)
        The probabilities are clipped to ``[eps, 1 - eps]``.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> probs, targets = np.array([0.9, 0.2]), np.array([1.0, 0.0])
    >>> lk.binary_cross_entropy(probs, targets, reduction="none").round(6)  # -log .9, -log .8
    array([0.105361, 0.223144])
    """
    return _binary_cross_entropy(
        probs, targets, eps=eps, reduction=reduction, sample_weight=sample_weight
    )[0]


def _sigmoid_cross_entropy(
    logits: Array,
    targets: Array,
    *,
    pos_weight: Array | None,
    label_smoothing: float,
    reduction: str,
    sample_weight: Array | None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    xp, logits, targets, pos_weight, sample_weight = namespace(
        logits, targets, pos_weight, sample_weight, names=("targets", "pos_weight", "sample_weight")
    )
    reduction = check_paired(xp, "logits", logits, "targets", targets, reduction, grad_out)
    eps = check_fraction("label_smoothing", label_smoothing)
    invalid = Invalid(xp, shape_of(logits))
    invalid.add(check_target_interval(xp, "targets", targets))
    if pos_weight is not None:
        check_pos_weight(xp, pos_weight, logits)
        invalid.add(check_weight_values(xp, "pos_weight", pos_weight))
    dtype = compute_dtype(xp, logits.dtype)
    x, t = cast(xp, logits, dtype), cast(xp, targets, dtype)
    if eps:
        t = t * (1 - eps) + eps / 2
    red = plan(xp, reduction, shape_of(x), dtype, sample_weight=sample_weight, invalid=invalid)
    q = None if pos_weight is None else cast(xp, pos_weight, dtype)
    # tf.nn.weighted_cross_entropy_with_logits, q = 1 without pos_weight:
    # (1-t) z + (1 + (q-1) t) log(1 + e^-z), written per sign of z so that no
    # intermediate exceeds the result (1 + e^-z never formed for z < 0):
    #   z >= 0: (1-t) z + s log1p(e^-z);   z < 0: -q t z + s log1p(e^z)
    # with s = 1 + (q-1) t.   d/dz = (1-t) - s sigmoid(-z)
    scale = 1 if q is None else 1 + (q - 1) * t
    qt = t if q is None else q * t
    linear = xp.where(x < 0, -qt * x, (1 - t) * x)
    loss = linear + scale * xp.log1p(exp_neg_abs(xp, x))
    value = red.apply(loss)
    if not with_grad:
        return value, None
    dz = (1 - t) - scale * sigmoid_of(xp, -x)
    return value, deliver(xp, red.grad(dz, class_axis=False), logits, grad_out)


@differentiable(_sigmoid_cross_entropy)
def sigmoid_cross_entropy(
    logits: Array,
    targets: Array,
    *,
    pos_weight: Array | float | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Binary cross-entropy on logits: sigmoid and log fused, stable for any logit.

    .. math::
        \ell = \max(z, 0) - z t + \log(1 + e^{-|z|}), \qquad
        \frac{\partial \ell}{\partial z} = \sigma(z) - t

    With ``pos_weight`` q (a scalar or one weight per class on the last axis)
    the positive term is weighted as in ``tf.nn.weighted_cross_entropy_with_logits``
    and PyTorch's ``BCEWithLogitsLoss(pos_weight=q)``:
    ``ℓ = (1-t) z + (1 + (q-1) t) log(1 + e^{-z})``,
    ``∂ℓ/∂z = (1-t) - (1 + (q-1) t) σ(-z)``.
    Label smoothing ε makes the targets ``t (1-ε) + ε/2``.  One value per
    element under ``reduction="none"``.

    Parameters
    ----------
    logits : array, real floating
        Any real scores (the sigmoid is applied inside).
    targets : array, the shape of ``logits``
        0/1 or soft targets in [0, 1].
    pos_weight : float or array, optional
        Weight of the positive term: a scalar or one per class (last axis).
    label_smoothing : float in [0, 1]
        Targets become ``t (1 - ε) + ε/2``.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> z = np.array([-1e4, 0.0, 1e4], dtype=np.float32)
    >>> lk.sigmoid_cross_entropy(z, np.array([0.0, 1.0, 1.0], dtype=np.float32), reduction="none")
    array([0.       , 0.6931472, 0.       ], dtype=float32)
    """
    return _sigmoid_cross_entropy(
        logits,
        targets,
        pos_weight=pos_weight,
        label_smoothing=label_smoothing,
        reduction=reduction,
        sample_weight=sample_weight,
    )[0]
