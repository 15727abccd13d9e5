"""Independent references for the contrastive and ranking losses, in float64.

For tests/test_losses_contrastive.py, tests/test_losses_ranking.py and
tests/test_compat_contrastive.py.  Each comes from a framework (optax through
``jax.grad``, Keras 3 through ``tf.GradientTape``) or from the papers' formulas
written in PyTorch as directly as they read (a Python loop over anchors, the
positives and negatives listed, ``torch.logsumexp``), never from losskit.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any

import numpy as np

from _frameworks import tensorflow

# --------------------------------------------------------------------------- cases


def embedding_case(n: int = 10, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of various lengths, labels with groups of 1 to 4 (one singleton)."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n, d)) * rng.uniform(0.3, 3.0, size=(n, 1))
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 4, 4, 5, 5][:n], dtype=np.int64)
    return e, rng.permutation(labels)


def positives(labels: np.ndarray) -> np.ndarray:
    """|P(i)|: the other examples with i's label."""
    return (labels[:, None] == labels[None, :]).sum(axis=1) - 1


# --------------------------------------------------------------------------- torch, the formulas


def _unit(e: Any) -> Any:
    return e / e.norm(dim=1, keepdim=True)


def torch_ntxent_rows(e: Any, labels: np.ndarray, temperature: float) -> Any:
    """Per anchor: mean over j in P(i) of -log(e^a_ij / (e^a_ij + sum_{k in N(i)} e^a_ik))."""
    import torch

    a = _unit(e) @ _unit(e).T / temperature
    rows = []
    for i in range(len(labels)):
        pos = [j for j in range(len(labels)) if j != i and labels[j] == labels[i]]
        neg = [k for k in range(len(labels)) if labels[k] != labels[i]]
        terms = [
            -a[i, j] + torch.logsumexp(torch.stack([a[i, j], *[a[i, k] for k in neg]]), 0)
            for j in pos
        ]
        rows.append(torch.stack(terms).mean() if terms else a[i, i] * 0)
    return torch.stack(rows)


def torch_circle_rows(e: Any, labels: np.ndarray, gamma: float, margin: float) -> Any:
    """Per anchor: log(1 + sum_P exp(-g a_p (s_p - 1 + m)) sum_N exp(g a_n (s_n - m)))."""
    import torch

    s = _unit(e) @ _unit(e).T
    rows = []
    for i in range(len(labels)):
        pos = [j for j in range(len(labels)) if j != i and labels[j] == labels[i]]
        neg = [k for k in range(len(labels)) if labels[k] != labels[i]]
        if not pos or not neg:
            rows.append(s[i, i] * 0)
            continue
        sp, sn = s[i, pos], s[i, neg]
        zp = -gamma * torch.clamp_min(1 + margin - sp, 0) * (sp - (1 - margin))
        zn = gamma * torch.clamp_min(sn + margin, 0) * (sn - margin)
        rows.append(torch.nn.functional.softplus(torch.logsumexp(zp, 0) + torch.logsumexp(zn, 0)))
    return torch.stack(rows)


def core_reduce(per: Any, reduction: str, weight: Any, counted: Any) -> Any:
    """The core's reduction: weighted; the mean over the anchors with a positive."""
    import torch

    w = torch.ones_like(per) if weight is None else weight
    if reduction == "none":
        return w * per
    if reduction == "sum":
        return (w * per).sum()
    den = (w * counted).sum()
    return (w * per).sum() / den if float(den.detach()) else (w * per).sum() * 0


def torch_reference(
    rows_of: Any,
    e: np.ndarray,
    labels: np.ndarray,
    reduction: str,
    weight: np.ndarray | None,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(value, d sum(value) / d e, d sum(value) / d weight)`` of the torch formula."""
    import torch

    et = torch.tensor(e, requires_grad=True)
    wt = None if weight is None else torch.tensor(weight, requires_grad=True)
    counted = torch.tensor((positives(labels) > 0).astype(np.float64))
    value = core_reduce(rows_of(et, labels, **options), reduction, wt, counted)
    inputs = [et] if wt is None else [et, wt]
    grads = torch.autograd.grad(value.sum(), inputs)
    dw = None if wt is None else grads[1].numpy()
    return value.detach().numpy(), grads[0].numpy(), dw


# --------------------------------------------------------------------------- optax


@functools.cache
def optax_ntxent_case(seed: int, temperature: float) -> tuple[float, np.ndarray]:
    """:func:`optax_ntxent` of ``embedding_case(seed=seed)``, computed once."""
    return optax_ntxent(*embedding_case(seed=seed), temperature)


def optax_ntxent(e: np.ndarray, labels: np.ndarray, temperature: float):
    """optax.ntxent's value and jax.grad in float64 (x64 is on, see conftest)."""
    import jax
    import jax.numpy as jnp
    import optax

    f = jax.jit(lambda x: optax.ntxent(x, jnp.asarray(labels), temperature))
    value, grad = jax.value_and_grad(f)(jnp.asarray(e, dtype=jnp.float64))
    return float(value), np.asarray(grad)


def optax_ranking(logits, labels, *, where=None, weights=None, reduce_fn="mean"):
    """optax.losses.ranking_softmax_loss's value and its gradients in logits and labels."""
    import jax
    import jax.numpy as jnp
    import optax

    fn = {"mean": jnp.mean, "sum": jnp.sum, None: None}[reduce_fn]
    kw = {
        "where": None if where is None else jnp.asarray(where),
        "weights": None if weights is None else jnp.asarray(weights),
    }

    def total(s, y):
        return jnp.sum(optax.losses.ranking_softmax_loss(s, y, reduce_fn=fn, **kw))

    value = optax.losses.ranking_softmax_loss(
        jnp.asarray(logits), jnp.asarray(labels), reduce_fn=fn, **kw
    )
    ds, dy = jax.grad(total, argnums=(0, 1))(jnp.asarray(logits), jnp.asarray(labels))
    return np.asarray(value), np.asarray(ds), np.asarray(dy)


# --------------------------------------------------------------------------- Keras


def keras_circle(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    weight: np.ndarray | None = None,
    normalize: bool = False,
    **options: Any,
):
    """Keras's ``circle`` per anchor and the GradientTape derivative of ``sum(w l)``.

    With ``normalize`` the embeddings are made unit length first (``x / ||x||``
    inside the tape), which is the core's circle.  Returns ``(per, d y_pred,
    d ref_embeddings or None)``.
    """
    tf, keras = tensorflow()
    x = tf.Variable(np.asarray(y_pred, dtype=np.float64))
    refs = options.pop("ref_embeddings", None)
    r = None if refs is None else tf.Variable(np.asarray(refs, dtype=np.float64))
    with tf.GradientTape() as tape:
        u = x / tf.norm(x, axis=1, keepdims=True) if normalize else x
        kw = dict(options)
        if r is not None:
            kw["ref_embeddings"] = r
        per = keras.losses.circle(tf.constant(y_true), u, **kw)
        w = tf.ones_like(per) if weight is None else tf.constant(weight)
        total = tf.reduce_sum(w * per)
    dx, dr = tape.gradient(total, [x, r] if r is not None else [x, x])
    return per.numpy(), dx.numpy(), None if r is None else dr.numpy()


def keras_circle_class(y_true, y_pred, *, sample_weight=None, **options: Any) -> np.ndarray:
    """``keras.losses.Circle(**options)(y_true, y_pred, sample_weight)`` as NumPy."""
    _, keras = tensorflow()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        out = keras.losses.Circle(**options)(y_true, y_pred, sample_weight=sample_weight)
    return np.asarray(out)
