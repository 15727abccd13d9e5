"""Independent references for the segmentation losses (Dice, Tversky, generalized Dice).

Each reference returns ``(per, d_probs, d_targets)``: the unreduced losses and the
derivatives of ``sum(coef * per)`` with respect to the probabilities and the targets,
by the framework's own autograd, in float64.

- optax 0.2.8 ``dice_loss`` (probabilities, ``apply_softmax=False``): one loss per
  example and class over the spatial axes, ``1 - (I + s) / (I + a FP + b FN + s)``;
- Keras 3 ``dice`` and ``tversky`` (TensorFlow backend, ``tf.GradientTape``);
- the generalized Dice of Sudre et al. (2017) written in torch from the paper's
  formula, ``w_c = 1 / T_c**2`` taken as is and the infinite weight of an absent class
  replaced by the largest finite weight of the example (MONAI's rule, which losskit
  documents), the weights then divided by their sum.  Written apart from losskit's
  ``min(T) / T`` scaling on purpose.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _frameworks import tensorflow


def make_maps(
    rng: np.random.Generator, shape: tuple[int, ...], *, soft: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities over the last axis and one-hot (or soft) targets."""
    z = rng.normal(scale=2.0, size=shape)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    t = np.eye(shape[-1])[labels]
    if soft:
        t = 0.8 * t + 0.2 * rng.uniform(size=shape) / shape[-1]
    return p, t


def coefficients(
    shape: tuple[int, ...], reduction: str, sample_weight: np.ndarray | None
) -> np.ndarray:
    """d value / d per[i] of the core's reductions (the weighted mean for "mean")."""
    s = np.ones(shape)
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
        s = s * w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    if reduction == "mean":
        total = s.sum()
        return s / total if total else np.zeros(shape)
    return s


def reduce(per: np.ndarray, reduction: str, sample_weight: np.ndarray | None) -> np.ndarray:
    coef = coefficients(per.shape, reduction, sample_weight)
    return coef * per if reduction == "none" else np.sum(coef * per)


def optax_ref(
    p: np.ndarray,
    t: np.ndarray,
    coef: np.ndarray | None = None,
    *,
    axis: tuple[int, ...] | None = None,
    smooth: float = 1.0,
    alpha: float = 0.5,
    beta: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """optax's per-(example, class) dice_loss on probabilities (rows summing to 1)."""
    import jax
    import jax.numpy as jnp
    import optax

    def per(pp: Any, tt: Any) -> Any:
        return optax.losses.dice_loss(
            pp,
            tt,
            smooth=smooth,
            alpha=alpha,
            beta=beta,
            apply_softmax=False,
            reduction="none",
            axis=axis,
        )

    pj, tj = jnp.asarray(p), jnp.asarray(t)
    value = np.asarray(per(pj, tj))
    c = jnp.asarray(np.ones(value.shape) if coef is None else coef)
    dp, dt = jax.grad(lambda a, b: jnp.sum(c * per(a, b)), argnums=(0, 1))(pj, tj)
    return value, np.asarray(dp), np.asarray(dt)


def keras_ref(
    name: str,
    p: np.ndarray,
    t: np.ndarray,
    coef: np.ndarray | None = None,
    *,
    dtype: str = "float64",
    **options: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras 3's ``dice`` or ``tversky`` (y_true, y_pred order) and its tape gradients."""
    tf, keras = tensorflow()
    fn = getattr(keras.losses, name)
    pt, tt = tf.Variable(p.astype(dtype)), tf.Variable(t.astype(dtype))
    with tf.GradientTape() as tape:
        value = fn(tt, pt, **options)
        c = tf.constant(np.ones(value.shape) if coef is None else coef, dtype=value.dtype)
        total = tf.reduce_sum(c * value)
    dp, dt = tape.gradient(total, [pt, tt])
    return value.numpy(), dp.numpy(), dt.numpy()


def generalized_dice_ref(
    p: np.ndarray,
    t: np.ndarray,
    coef: np.ndarray | None = None,
    *,
    axis: tuple[int, ...],
    class_axis: int = -1,
    smooth: float = 1.0,
    eps: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sudre et al.'s generalized Dice in torch, float64: sums over ``axis``, classes on
    ``class_axis``."""
    import torch

    pt = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(t, dtype=torch.float64, requires_grad=True)
    c_ax = class_axis % p.ndim
    ptm, ttm = pt.movedim(c_ax, -1), tt.movedim(c_ax, -1)
    dims = [a - (a > c_ax) for a in axis]  # the summed axes once the classes are last
    inter = (ptm * ttm).sum(dim=dims)
    sum_p, sum_t = ptm.sum(dim=dims), ttm.sum(dim=dims)
    # Sudre: 1 / T**2, infinite for a class absent from the example (formed behind a
    # `where` so that autograd meets no inf); that class takes the largest finite weight.
    present = sum_t > 0
    raw = torch.where(present, 1.0 / torch.where(present, sum_t, 1.0) ** 2, 0.0)
    largest = raw.amax(dim=-1, keepdim=True)
    none_present = ~present.any(dim=-1, keepdim=True)
    w = torch.where(present, raw, largest.expand_as(raw))
    w = torch.where(none_present.expand_as(w), torch.ones_like(w), w)
    w = w / w.sum(dim=-1, keepdim=True)
    num = (w * inter).sum(-1) + smooth
    den = 0.5 * (w * (sum_p + sum_t)).sum(-1) + smooth + eps
    per = 1 - num / den
    c = torch.tensor(np.ones(tuple(per.shape)) if coef is None else coef, dtype=torch.float64)
    dp, dt = torch.autograd.grad((c * per).sum(), (pt, tt))
    return per.detach().numpy(), dp.numpy(), dt.numpy()
