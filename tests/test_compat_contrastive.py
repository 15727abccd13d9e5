"""losskit.compat.tf.keras.losses circle/Circle against Keras 3 (TensorFlow backend), float64.

The function's values on every backend and its derivatives in ``y_pred`` and
``ref_embeddings`` (torch autograd, ``jax.grad``) against ``tf.GradientTape``, with
Keras's options (``remove_diagonal``, ``ref_labels``, ``ref_embeddings``, ``gamma``,
``margin``), float and ``(N, 1)`` labels, embeddings that are not of unit length (the
distance clipped at 0) and the clip's tie (identical unit vectors); the class's
reductions and sample weights, Keras's mean over the anchors with a loss above 0, its
constructor; half precision; errors.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np
import pytest

from _refs_contrastive import embedding_case, keras_circle, keras_circle_class
from conftest import Backend, assert_close
from losskit.compat import tf as ltf

circle = ltf.keras.losses.circle
Circle = ltf.keras.losses.Circle


@functools.cache
def case() -> tuple[np.ndarray, ...]:
    """Unit-length embeddings (two of them identical: s = 1, the clip's tie, for a
    positive and for a negative pair), labels, and references with their labels."""
    e, y = embedding_case(n=10, d=5, seed=11)
    u = e / np.linalg.norm(e, axis=1, keepdims=True)
    u[[0, 1, -1]] = np.eye(5)[0]  # s = 1 exactly
    y = y.copy()
    y[1] = y[0]
    y[-1] = y[0] + 100  # a negative at s = 1
    rng = np.random.default_rng(12)
    refs = rng.normal(size=(7, 5))
    refs /= np.linalg.norm(refs, axis=1, keepdims=True)
    return u, y, refs, rng.integers(0, 4, size=7)


OPTIONS = {
    "default": {},
    "keep diagonal": {"remove_diagonal": False},
    "gamma margin": {"gamma": 12.0, "margin": 0.15},
    "references": {"ref": True},
    "references keep diagonal": {"ref": True, "remove_diagonal": False},
    "not unit length": {"scale": 1.7, "gamma": 20.0},
}


@functools.cache
def expected(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    u, y, refs, ref_y = case()
    options = dict(OPTIONS[name])
    x = u * options.pop("scale", 1.0)
    if options.pop("ref", False):
        options.update(ref_embeddings=refs, ref_labels=ref_y)
    w = np.linspace(0.5, 1.5, len(y))
    return keras_circle(y, x, weight=w, **options)


def call(xp: Backend, name: str, *, with_grad: bool) -> list[np.ndarray]:
    """The adapter's losses and, with ``with_grad`` (torch, JAX), the derivatives of
    ``sum(w l)`` in ``y_pred`` and (with references) ``ref_embeddings``."""
    u, y, refs, ref_y = case()
    options = dict(OPTIONS[name])
    x = u * options.pop("scale", 1.0)
    has_ref = options.pop("ref", False)
    w = xp.asarray(np.linspace(0.5, 1.5, len(y)))
    labels, ref_labels = xp.asarray(y), xp.asarray(ref_y)

    def losses(p, r):
        kw = options if r is None else {**options, "ref_embeddings": r, "ref_labels": ref_labels}
        return circle(labels, p, **kw)

    p, r = xp.asarray(x), xp.asarray(refs) if has_ref else None
    if not with_grad:
        if xp.name == "jax":
            import jax

            return [xp.to_numpy(jax.jit(losses)(p, r))]
        return [xp.to_numpy(losses(p, r))]
    if xp.name == "torch":
        import torch

        leaves = [t.requires_grad_(True) for t in (p, r) if t is not None]
        per = losses(p, r)
        grads = torch.autograd.grad((per * w).sum(), leaves)
        return [per.detach().numpy(), *(g.numpy() for g in grads)]
    import jax

    per, pullback = jax.vjp(jax.jit(losses), p, r)
    return [np.asarray(per), *(np.asarray(g) for g in pullback(w) if g is not None)]


@pytest.mark.parametrize("name", OPTIONS)
def test_function_values(xp, name):
    [got] = call(xp, name, with_grad=False)
    assert_close(got, expected(name)[0], err_msg=name)


@pytest.mark.parametrize("name", OPTIONS)
def test_function_derivatives(autograd_xp, name):
    """d/d y_pred and d/d ref_embeddings, Keras's slope at the clip's tie included."""
    per, *grads = call(autograd_xp, name, with_grad=True)
    ev, edx, edr = expected(name)
    assert_close(per, ev)
    assert_close(grads[0], edx, kind="grad", err_msg=name)
    if edr is not None:
        assert_close(grads[1], edr, kind="grad", err_msg=name)


def test_labels_as_keras_takes_them():
    """Float labels are truncated to int32, (N, 1) labels read as (N,), as Keras."""
    u, y, _, _ = case()
    per = circle(y, u)
    np.testing.assert_array_equal(circle(y.astype(np.float64) + 0.7, u), per)
    np.testing.assert_array_equal(circle(y[:, None], u), per)
    ev, _, _ = keras_circle(y.astype(np.float64) + 0.7, u)
    assert_close(per, ev)


@pytest.mark.parametrize(
    "reduction", ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", None]
)
def test_class_reductions(reduction):
    """Keras's class: its mean counts the anchors with a loss above 0 only (one anchor
    here has no positive and one no negative)."""
    u, y, _, _ = case()
    y = y.copy()
    y[4] = 99  # no positive: loss 0, masked out of the mean
    w = np.linspace(0.0, 2.0, len(y))
    for options in ({"dtype": "float64"}, {"dtype": "float64", "gamma": 5.0, "margin": 0.1}, {}):
        for weight in (None, w):
            kw = {"reduction": reduction, **options}
            expected = keras_circle_class(y, u, sample_weight=weight, **kw)
            got = Circle(**kw)(y, u, sample_weight=weight)
            dtype = "float64" if options else "float32"
            assert np.asarray(got).dtype == dtype
            assert_close(got, expected, dtype, err_msg=f"{kw} {weight is not None}")


def test_class_all_zero_and_signature(keras_losses):
    """Every loss 0 (no positive pairs): the mean of nothing is 0, as Keras's divide_no_nan;
    the constructor takes Keras's arguments in Keras's order."""
    u, _, _, _ = case()
    y = np.arange(len(u))
    assert float(Circle()(y, u)) == float(keras_circle_class(y, u)) == 0.0
    assert list(inspect.signature(Circle).parameters) == list(
        inspect.signature(keras_losses.Circle).parameters
    )
    loss = Circle(10.0, 0.2, False, "sum", "c")
    assert loss.get_config() == {
        "name": "c",
        "reduction": "sum",
        "gamma": 10.0,
        "margin": 0.2,
        "remove_diagonal": False,
    }


def test_half_precision():
    """float16 in, float16 out (computed in float32, rounded once), close to Keras's float32."""
    u, y, _, _ = case()
    got = circle(y, u.astype(np.float16), gamma=20.0)
    assert got.dtype == np.float16
    expected = keras_circle(y, u.astype(np.float16).astype(np.float64), gamma=20.0)[0]
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=2e-3, atol=1e-3)


def test_errors():
    u, y, refs, _ = case()
    with pytest.raises(ValueError, match=r"^`y_pred` must be a 2-d array \(batch, features\)"):
        circle(y[:1], u[0])
    with pytest.raises(ValueError, match=r"^`y_true` must have shape \(10,\) or \(10, 1\)"):
        circle(y[:-1], u)
    with pytest.raises(ValueError, match=r"^`ref_labels` must have shape \(7,\) or \(7, 1\)"):
        circle(y, u, ref_embeddings=refs, ref_labels=y)
    with pytest.raises(ValueError, match=r"^`ref_embeddings` must have the features of `y_pred`"):
        circle(y, u, ref_embeddings=refs[:, :3])
    with pytest.raises(TypeError, match=r"^`y_pred` must be a real floating-point array"):
        circle(y, u.astype(np.complex128))
    with pytest.raises(ValueError, match=r"^`gamma` must be a finite number; got nan"):
        circle(y, u, gamma=float("nan"))
