"""The margin losses' numbers from the frameworks themselves, in float64.

For tests/test_losses_margin.py.

Each reference takes the core's arguments as float64 / int64 NumPy and returns
``(per, d_x, d_truth)``: the unreduced losses (one per element or per
example, as the core's ``reduction="none"``), the derivative of their sum
with respect to the prediction, and with respect to a floating truth (None
where the framework gives none).  They come from Keras 3 (TensorFlow backend,
``tf.GradientTape``), optax (``jax.grad``) or ``torch.nn.functional``
(autograd), never from losskit.  Keras averages its elementwise hinges over
the last axis; called on a trailing axis of size 1 it returns them per element.

The cases keep every hinge at least ``GAP`` away from its kink and every
maximum over classes untied, so that each framework's derivative is the
derivative (the kinks are tested apart).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _frameworks import tensorflow

GAP = 0.05

ELEMENTWISE = ("hinge", "squared_hinge", "soft_margin", "hinge_embedding", "perceptron")
ROWWISE = ("categorical_hinge", "multilabel_margin", "multilabel_soft_margin")
SPARSE = ("multiclass_hinge", "multi_margin", "multiclass_perceptron")
NAMES = ELEMENTWISE + ROWWISE + SPARSE


# --------------------------------------------------------------------------- cases


def _signs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.choice([-1.0, 1.0], size=shape)


def _away(rng: np.random.Generator, shape: tuple[int, ...], kink: float, scale: float = 2.0):
    """Normal draws at least GAP from ``kink``."""
    x = rng.normal(size=shape) * scale
    close = np.abs(x - kink) < GAP
    return np.where(close, kink + np.sign(x - kink + 1e-300) * 3 * GAP, x)


def _multilabel_labels(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    """Targets first, then -1 and padding anywhere in [-1, C); one row of each corner."""
    rows = []
    for i in range(n):
        k = [2, 0, c, 1][i % 4]  # 2 targets, none (-1 first), all classes, 1
        targets = list(rng.permutation(c)[:k])
        rest = [] if k == c else [-1, *rng.integers(-1, c, size=c - k - 1)]
        rows.append(targets + rest)
    return np.array(rows, dtype=np.int64)


def _untied(rng: np.random.Generator, shape: tuple[int, ...], label_shift: np.ndarray | None):
    """Scores whose maxima (after adding ``label_shift``) and hinges are clear of ties."""
    while True:
        s = rng.normal(size=shape) * 2
        a = s if label_shift is None else s + label_shift
        srt = np.sort(a, axis=-1)
        if np.all(srt[..., -1] - srt[..., -2] > GAP):
            return s


def make_case(name: str, rng: np.random.Generator, shape: tuple[int, ...] = (4, 5)):
    """``(x, truth, options)`` away from every kink and tie."""
    n, c = shape[0], shape[-1]
    if name in ("hinge", "squared_hinge"):
        t = _signs(rng, shape)
        return t * _away(rng, shape, 1.0), t, {}  # t p away from 1
    if name == "perceptron":
        t = _signs(rng, shape)
        return _away(rng, shape, 0.0), t, {}
    if name == "soft_margin":
        return rng.normal(size=shape) * 3, _signs(rng, shape), {}
    if name == "hinge_embedding":
        return _away(rng, shape, 1.5, scale=1.5), _signs(rng, shape), {"margin": 1.5}
    if name == "categorical_hinge":
        t = np.eye(c)[rng.integers(0, c, size=shape[:-1])]
        while True:
            p = _untied(rng, shape, None)
            wrong = (1 - t) * p
            srt = np.sort(wrong, axis=-1)
            m = 1 + srt[..., -1] - (t * p).sum(-1)
            if np.all(srt[..., -1] - srt[..., -2] > GAP) and np.all(np.abs(m) > GAP):
                return p, t, {}
    if name == "multilabel_soft_margin":
        return (
            rng.normal(size=shape) * 3,
            rng.uniform(0, 1, size=shape),
            {"class_weight": rng.uniform(0.2, 2.0, size=c)},
        )
    if name == "multilabel_margin":
        return rng.normal(size=shape) * 2, _multilabel_labels(rng, n, c), {}
    y = rng.integers(0, c, size=shape[:-1])
    onehot = np.eye(c)[y]
    if name == "multiclass_hinge":
        return _untied(rng, shape, 1 - onehot), y, {}
    if name == "multiclass_perceptron":
        return _untied(rng, shape, None), y, {}
    if name == "multi_margin":
        while True:
            s = rng.normal(size=shape) * 2
            m = 1.0 - (s * onehot).sum(-1, keepdims=True) + s
            if np.all(np.abs(m)[onehot == 0] > GAP):
                return s, y, {"p": 1, "margin": 1.0, "class_weight": rng.uniform(0.2, 2, size=c)}
    raise AssertionError(name)  # pragma: no cover


# --------------------------------------------------------------------------- frameworks


def keras_ref(name: str, x: np.ndarray, t: np.ndarray, *, elementwise: bool):
    """Keras's ``keras.losses.<name>`` with its gradient in ``y_pred`` and ``y_true``."""
    tf, keras = tensorflow()
    if elementwise:
        x, t = x[..., None], t[..., None]
    xv, tv = tf.Variable(x), tf.Variable(np.asarray(t, dtype=np.float64))
    with tf.GradientTape() as tape:
        per = getattr(keras.losses, name)(tv, xv)
        total = tf.reduce_sum(per)
    dx, dt = tape.gradient(total, [xv, tv])
    shape = x.shape[:-1] if elementwise else x.shape
    return (
        per.numpy(),
        dx.numpy().reshape(shape),
        None if dt is None else dt.numpy().reshape(shape),
    )


def optax_ref(name: str, x: np.ndarray, truth: np.ndarray, *, float_truth: bool):
    import jax
    import jax.numpy as jnp
    import optax

    fn = getattr(optax.losses, name)
    xj, tj = jnp.asarray(x), jnp.asarray(truth)
    per = np.asarray(fn(xj, tj))
    if float_truth:
        dx, dt = jax.grad(lambda a, b: jnp.sum(fn(a, b)), argnums=(0, 1))(xj, tj)
        return per, np.asarray(dx), np.asarray(dt)
    return per, np.asarray(jax.grad(lambda a: jnp.sum(fn(a, tj)))(xj)), None


def torch_ref(name: str, x: np.ndarray, truth: np.ndarray, **options: Any):
    import torch
    import torch.nn.functional as F

    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    floating = truth.dtype.kind == "f"
    tt = torch.tensor(truth, dtype=torch.float64 if floating else torch.int64)
    # torch differentiates multilabel_soft_margin_loss (written in Python) in its targets;
    # soft_margin_loss's kernel refuses, so there its documented formula is differentiated
    tt.requires_grad_(floating and name in ("multilabel_soft_margin", "soft_margin"))
    options = {
        k: torch.tensor(v, dtype=torch.float64) if isinstance(v, np.ndarray) else v
        for k, v in options.items()
    }
    if "class_weight" in options:
        options["weight"] = options.pop("class_weight")
    fn = getattr(F, f"{name}_loss")
    if name in ("multi_margin", "multilabel_margin") and xt.ndim > 2:
        raise AssertionError("torch takes (N, C) here")  # pragma: no cover
    if name == "soft_margin":  # the docs' formula: its numbers, moderate inputs here
        per = torch.log1p(torch.exp(-tt * xt))
        assert torch.equal(per, fn(xt.detach(), tt.detach(), reduction="none"))
    else:
        per = fn(xt, tt, reduction="none", **options)
    grads = torch.autograd.grad(per.sum(), [xt, tt] if tt.requires_grad else [xt])
    dt = grads[1].numpy() if len(grads) > 1 else None
    return per.detach().numpy(), grads[0].numpy(), dt


def reference(name: str, x: np.ndarray, truth: np.ndarray, options: dict[str, Any]):
    """``(per, d_x, d_truth)`` of loss ``name`` from its anchor framework."""
    if name in ("hinge", "squared_hinge"):
        return keras_ref(name, x, truth, elementwise=True)
    if name == "categorical_hinge":
        return keras_ref(name, x, truth, elementwise=False)
    if name == "hinge_optax":
        return optax_ref("hinge_loss", x, truth, float_truth=True)
    if name == "perceptron":
        return optax_ref("perceptron_loss", x, truth, float_truth=True)
    if name in ("multiclass_hinge", "multiclass_perceptron"):
        return optax_ref(f"{name}_loss", x, truth, float_truth=False)
    return torch_ref(name, x, truth, **options)


def core_reduce(
    per: np.ndarray,
    dper: np.ndarray,
    reduction: str,
    sample_weight: np.ndarray | None = None,
    counts: np.ndarray | None = None,
):
    """The core's reduction (README, _reduce.py) of unreduced losses and their derivative.

    ``"mean"`` is ``sum(s l) / sum(s c)``, 0 when nothing counts; ``counts`` is
    each example's class weight (``multi_margin``), 1 without.
    """
    s = np.ones(per.shape)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float64)
        s = np.broadcast_to(sw.reshape(sw.shape + (1,) * (per.ndim - sw.ndim)), per.shape)
    c = np.ones(per.shape) if counts is None else counts
    coef = s
    if reduction == "mean":
        den = float((s * c).sum())
        coef = s / den if den else np.zeros(per.shape)
    value = s * per if reduction == "none" else (coef * per).sum()
    extra = dper.ndim - per.ndim
    return value, dper * coef.reshape(coef.shape + (1,) * extra)
