"""The plain formulas of losskit's losses, written from their definitions, for autograd.

Each ``ref_*`` takes an ``ops`` namespace (:data:`TORCH` or :data:`JAX`) and
the loss's own signature, and is differentiated by that framework's autograd
with respect to every floating argument: the predictions, the targets and the
weights.  The formulas are the textbook ones, with none of losskit's stability
devices (no halved gaps, no ``where`` around a log), so that an autograd
derivative of them is the derivative of the definition.  Where PyTorch ships
the same definition it is used: ``F.cross_entropy`` with probability targets
(which PyTorch differentiates with respect to the targets) and
``F.binary_cross_entropy_with_logits``.  PyTorch does not differentiate
``F.cross_entropy``'s ``weight`` nor BCE-with-logits's ``pos_weight``, so the
class weights enter as weighted targets of the soft cross-entropy and
``pos_weight`` is written out from PyTorch's documented formula.

The reduction is the core's (README, ``_reduce.py``'s docstring):
``"none"``: ``s * l``; ``"sum"``: ``sum(s * l)``; ``"mean"``:
``sum(s * l) / sum(s * c)`` with ``c`` the class weight of the label (0 for an
ignored example, 1 without class weights), and 0 when nothing is counted.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def _torch_ops() -> Any:
    import torch
    import torch.nn.functional as F

    def soft_xent(x, a):
        # F.cross_entropy with probability targets: -sum_c a_c log_softmax(x)_c,
        # classes on dim 1, so the rows are flattened to (N, C) first.
        c = x.shape[-1]
        flat = F.cross_entropy(x.reshape(-1, c), a.reshape(-1, c), reduction="none")
        return flat.reshape(x.shape[:-1])

    return SimpleNamespace(
        name="torch",
        soft_xent=soft_xent,
        bce_logits=lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
        log1p=torch.log1p,
        exp=torch.exp,
        log=torch.log,
        clip=torch.clamp,
        abs=torch.abs,
        where=torch.where,
        moveaxis=torch.movedim,
        onehot=lambda y, c, like: F.one_hot(y, c).to(like.dtype),
        gather_last=lambda x, y: torch.gather(x, -1, y[..., None])[..., 0],
        zeros_like=torch.zeros_like,
        ones_like=torch.ones_like,
        sum=lambda x: x.sum(),
    )


def _jax_ops() -> Any:
    import jax
    import jax.numpy as jnp

    return SimpleNamespace(
        name="jax",
        soft_xent=lambda x, a: -(a * jax.nn.log_softmax(x, axis=-1)).sum(axis=-1),
        bce_logits=lambda x, t: t * jax.nn.softplus(-x) + (1 - t) * jax.nn.softplus(x),
        log1p=jnp.log1p,
        exp=jnp.exp,
        log=jnp.log,
        clip=jnp.clip,
        abs=jnp.abs,
        where=jnp.where,
        moveaxis=jnp.moveaxis,
        onehot=lambda y, c, like: jax.nn.one_hot(y, c, dtype=like.dtype),
        gather_last=lambda x, y: jnp.take_along_axis(x, y[..., None], axis=-1)[..., 0],
        zeros_like=jnp.zeros_like,
        ones_like=jnp.ones_like,
        sum=jnp.sum,
    )


_OPS: dict[str, Any] = {}


def ops_for(name: str) -> Any:
    """The ops namespace of backend ``name`` ("torch" or "jax"), built once."""
    if name not in _OPS:
        _OPS[name] = _torch_ops() if name == "torch" else _jax_ops()
    return _OPS[name]


def softplus(ops, x):
    """``log(1 + e^x)``: ``x + log1p(e^-x)`` for ``x > 0``, ``log1p(e^x)`` otherwise.

    Each branch sees only the inputs it is selected for (the other side gets
    0), so neither ever exponentiates a large number, not even in the
    discarded branch, where ``inf * 0`` would put NaN into the gradient.
    """
    pos = x > 0
    xp = ops.where(pos, x, ops.zeros_like(x))
    xn = ops.where(pos, ops.zeros_like(x), x)
    return ops.where(pos, xp + ops.log1p(ops.exp(-xp)), ops.log1p(ops.exp(xn)))


# --------------------------------------------------------------------------- reduction


def reduce(ops, per, reduction, sample_weight=None, counts=None):
    """The core's reduction of the unreduced (already class-weighted) loss ``per``.

    ``sample_weight`` has a leading part of ``per``'s shape and broadcasts from
    the left; ``counts`` is ``c`` above, of ``per``'s shape (None: all 1).
    """
    s = ops.ones_like(per)
    if sample_weight is not None:
        pad = per.ndim - sample_weight.ndim
        s = s * sample_weight.reshape(tuple(sample_weight.shape) + (1,) * pad)
    weighted = s * per
    if reduction == "none":
        return weighted
    total = ops.sum(weighted)
    if reduction == "sum":
        return total
    assert reduction == "mean", reduction
    den = ops.sum(s if counts is None else s * counts)
    # nothing counted: 0 (the safe denominator keeps 0/0 out of the gradient)
    empty = den == 0
    return ops.where(empty, 0 * total, total / ops.where(empty, ops.ones_like(den), den))


# --------------------------------------------------------------------------- losses


def sparse_targets(ops, labels, num_classes, like, class_weight, ignore_index, label_smoothing):
    """PyTorch's weighted, smoothed sparse cross-entropy as soft targets ``a``.

    ``F.cross_entropy(weight=w, label_smoothing=e)`` is
    ``(1-e) w_y (-log p_y) + e/C sum_c w_c (-log p_c)``, i.e. the soft
    cross-entropy with ``a = (1-e) w_y onehot(y) + e/C w``; an ignored example
    has ``a = 0``.  Returns ``(a, c)`` with ``c = w_y`` (0 where ignored), what
    each example counts for in the mean (None: every example counts 1).
    """
    counted = None if ignore_index is None else labels != ignore_index
    safe = labels if counted is None else ops.where(counted, labels, ops.zeros_like(labels))
    onehot = ops.onehot(safe, num_classes, like)
    w = ops.ones_like(onehot) if class_weight is None else class_weight
    w_y = (onehot * w).sum(-1)
    a = (1 - label_smoothing) * w_y[..., None] * onehot + (label_smoothing / num_classes) * w
    counts = None if class_weight is None else w_y
    if counted is not None:
        mask = ops.where(counted, ops.ones_like(w_y), ops.zeros_like(w_y))
        a = a * mask[..., None]
        counts = mask if counts is None else counts * mask
    return a, counts


def ref_softmax_cross_entropy(
    ops, logits, targets, *, axis=-1, label_smoothing=0.0, reduction="mean", sample_weight=None
):
    """-sum_c t_c log softmax(z)_c, with t -> (1-e) t + e/C."""
    x = ops.moveaxis(logits, axis, -1)
    t = ops.moveaxis(targets, axis, -1)
    t = (1 - label_smoothing) * t + label_smoothing / x.shape[-1]
    return reduce(ops, ops.soft_xent(x, t), reduction, sample_weight)


def ref_sparse_softmax_cross_entropy(
    ops,
    logits,
    labels,
    *,
    axis=-1,
    class_weight=None,
    ignore_index=None,
    label_smoothing=0.0,
    reduction="mean",
    sample_weight=None,
):
    x = ops.moveaxis(logits, axis, -1)
    a, counts = sparse_targets(
        ops, labels, x.shape[-1], x, class_weight, ignore_index, label_smoothing
    )
    return reduce(ops, ops.soft_xent(x, a), reduction, sample_weight, counts)


def ref_categorical_cross_entropy(
    ops, probs, targets, *, axis=-1, eps=1e-7, reduction="mean", sample_weight=None
):
    """-sum_c t_c log clip(p_c, eps, 1-eps): clamp's derivative is 0 beyond the clip."""
    p = ops.clip(ops.moveaxis(probs, axis, -1), eps, 1 - eps)
    t = ops.moveaxis(targets, axis, -1)
    return reduce(ops, -(t * ops.log(p)).sum(-1), reduction, sample_weight)


def ref_sparse_categorical_cross_entropy(
    ops, probs, labels, *, axis=-1, eps=1e-7, reduction="mean", sample_weight=None
):
    p_y = ops.gather_last(ops.moveaxis(probs, axis, -1), labels)
    return reduce(ops, -ops.log(ops.clip(p_y, eps, 1 - eps)), reduction, sample_weight)


def ref_binary_cross_entropy(
    ops, probs, targets, *, eps=1e-7, reduction="mean", sample_weight=None
):
    """-(t log p + (1-t) log(1-p)) on p clipped to [eps, 1-eps]."""
    p = ops.clip(probs, eps, 1 - eps)
    per = -(targets * ops.log(p) + (1 - targets) * ops.log(1 - p))
    return reduce(ops, per, reduction, sample_weight)


def ref_sigmoid_cross_entropy(
    ops,
    logits,
    targets,
    *,
    pos_weight=None,
    label_smoothing=0.0,
    reduction="mean",
    sample_weight=None,
):
    """PyTorch's BCEWithLogitsLoss: -(q t log sigmoid(z) + (1-t) log(1 - sigmoid(z))).

    ``-log sigmoid(z) = softplus(-z)`` and ``-log(1 - sigmoid(z)) = softplus(z)``;
    smoothing makes the targets ``(1-e) t + e/2``.
    """
    t = (1 - label_smoothing) * targets + label_smoothing / 2
    if pos_weight is None:
        per = ops.bce_logits(logits, t)
    else:
        per = pos_weight * t * softplus(ops, -logits) + (1 - t) * softplus(ops, logits)
    return reduce(ops, per, reduction, sample_weight)


def ref_mean_squared_error(ops, pred, target, *, reduction="mean", sample_weight=None):
    return reduce(ops, (pred - target) ** 2, reduction, sample_weight)


def ref_mean_absolute_error(ops, pred, target, *, reduction="mean", sample_weight=None):
    return reduce(ops, ops.abs(pred - target), reduction, sample_weight)


REFS = {
    "softmax_cross_entropy": ref_softmax_cross_entropy,
    "sparse_softmax_cross_entropy": ref_sparse_softmax_cross_entropy,
    "categorical_cross_entropy": ref_categorical_cross_entropy,
    "sparse_categorical_cross_entropy": ref_sparse_categorical_cross_entropy,
    "binary_cross_entropy": ref_binary_cross_entropy,
    "sigmoid_cross_entropy": ref_sigmoid_cross_entropy,
    "mean_squared_error": ref_mean_squared_error,
    "mean_absolute_error": ref_mean_absolute_error,
}
