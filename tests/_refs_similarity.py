"""The similarity losses' numbers from the frameworks themselves, in float64.

For tests/test_losses_similarity.py and tests/test_compat_similarity.py.

Each reference takes float64 NumPy arrays and returns ``(per, grads)``: the
unreduced losses (one per example) and the derivatives of their sum with
respect to each floating argument, in order (None where the framework has
none), from ``torch.nn.functional`` (autograd), optax (``jax.grad``) or
Keras 3 (``tf.GradientTape``), never from losskit.

The cases keep every hinge at least ``GAP`` from its kink and every swap
clear of a tie, so that each framework's derivative is the derivative (the
kinks are tested apart).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _frameworks import tensorflow

GAP = 0.05
NAMES = ("cosine_distance", "cosine_embedding", "margin_ranking", "triplet_margin")


# --------------------------------------------------------------------------- cases


def make_case(name: str, n: int = 6, d: int = 5) -> tuple[tuple[np.ndarray, ...], dict]:
    """``(arrays, options)`` of the core's call, away from every kink and tie."""
    rng = np.random.default_rng(sum(map(ord, name)) + n + d)
    if name == "cosine_distance":
        p, t = rng.normal(size=(n, d)), rng.normal(size=(n, d))
        p[0] *= 1e-4  # a norm below eps: the clamp
        return (p, t), {"eps": 1e-3}
    if name == "cosine_embedding":
        margin = 0.1
        while True:
            x1, x2 = rng.normal(size=(n, d)), rng.normal(size=(n, d))
            cos = (x1 * x2).sum(-1) / np.linalg.norm(x1, axis=-1) / np.linalg.norm(x2, axis=-1)
            if np.all(np.abs(cos - margin) > GAP):
                break
        t = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
        return (x1, x2, t), {"margin": margin}
    if name == "margin_ranking":
        margin = 0.3
        t = rng.choice([-1.0, 1.0], size=n)
        while True:
            x1, x2 = rng.normal(size=n), rng.normal(size=n)
            if np.all(np.abs(margin - t * (x1 - x2)) > GAP):
                return (x1, x2, t), {"margin": margin}
    if name == "triplet_margin":
        while True:
            a, p, neg = (rng.normal(size=(n, d)) for _ in range(3))
            dp, dn = np.linalg.norm(a - p, axis=-1), np.linalg.norm(a - neg, axis=-1)
            m = 2.0 + dp - dn
            if np.all(np.abs(m) > GAP) and np.any(m < 0):
                return (a, p, neg), {"margin": 2.0}
    raise AssertionError(name)  # pragma: no cover


# --------------------------------------------------------------------------- torch


def torch_ref(name: str, arrays: tuple[np.ndarray, ...], **options: Any):
    """``torch.nn.functional``'s loss per example and the gradients of its sum."""
    import torch
    import torch.nn.functional as F

    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    fn = {
        "cosine_embedding": F.cosine_embedding_loss,
        "margin_ranking": F.margin_ranking_loss,
        "triplet_margin": F.triplet_margin_loss,
    }[name]
    if name == "triplet_margin":
        options = {k: v for k, v in options.items() if k != "eps_at"}
        if "p" not in options:
            options["p"] = 2
        options.setdefault("eps", 1e-6)
    per = fn(*ts, reduction="none", **options)
    grads = torch.autograd.grad(per.sum(), ts, allow_unused=True)
    return per.detach().numpy(), [None if g is None else g.numpy() for g in grads]


def torch_pairwise_distance(x: np.ndarray, y: np.ndarray, p: float, eps: float) -> np.ndarray:
    import torch

    return torch.pairwise_distance(torch.tensor(x), torch.tensor(y), p=p, eps=eps).numpy()


# --------------------------------------------------------------------------- optax


def optax_ref(name: str, arrays: tuple[np.ndarray, ...], **options: Any):
    """optax's loss (jax x64) per example and the gradients of its sum."""
    import jax
    import jax.numpy as jnp
    import optax

    js = tuple(jnp.asarray(a) for a in arrays)
    fn = {
        "cosine_distance": optax.losses.cosine_distance,
        "cosine_similarity": optax.losses.cosine_similarity,
        "triplet_margin": optax.losses.triplet_margin_loss,
    }[name]
    per = fn(*js, **options)
    grads = jax.grad(lambda *a: fn(*a, **options).sum(), argnums=tuple(range(len(js))))(*js)
    return np.asarray(per), [np.asarray(g) for g in grads]


# --------------------------------------------------------------------------- keras


def keras_ref(y_true: np.ndarray, y_pred: np.ndarray, axis: int = -1):
    """``keras.losses.cosine_similarity`` in float64 and its gradients in (y_true, y_pred)."""
    tf, keras = tensorflow()
    t, p = tf.Variable(y_true), tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        per = keras.losses.cosine_similarity(t, p, axis=axis)
        total = tf.reduce_sum(per)
    gt, gp = tape.gradient(total, [t, p])
    return per.numpy(), [gt.numpy(), gp.numpy()]


# --------------------------------------------------------------------------- reductions


def reduce(per: np.ndarray, grads: list, reduction: str, weight: np.ndarray | None):
    """The core's reduction of ``per`` (and of the first gradient) by hand."""
    w = (
        np.ones(per.shape)
        if weight is None
        else weight.reshape(weight.shape + (1,) * (per.ndim - weight.ndim))
    )
    w = np.broadcast_to(w, per.shape)
    coef = w if reduction != "mean" else (w / w.sum() if w.sum() else np.zeros_like(w))
    g = grads[0] * coef.reshape(coef.shape + (1,) * (grads[0].ndim - coef.ndim))
    if reduction == "none":
        return per * w, g
    value = (per * w).sum()
    return (value if reduction == "sum" else value / w.sum()), g
