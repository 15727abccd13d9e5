"""losskit.compat.tf's keras dice/Dice and tversky/Tversky against Keras 3 (TensorFlow backend).

Values in float32 and float64 (and float16 for the functions), every ``axis`` form,
the loss classes' reductions with ``sample_weight`` and their constructors in Keras's
argument order, ``get_config``; the gradients (torch autograd of the adapter and
``losskit`` under JAX) against ``tf.GradientTape`` in ``y_pred`` and ``y_true``; targets
outside [0, 1] computed as Keras; the NaN rule under ``jax.jit``; the deliberate errors.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import numpy as np
import pytest

from _frameworks import tensorflow
from _refs_segmentation import keras_ref
from conftest import assert_close
from losskit.compat import tf as ltf

KL = ltf.keras.losses


@functools.cache
def maps(shape: tuple[int, ...] = (3, 4, 5, 2)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    p = rng.uniform(size=shape)
    t = (rng.uniform(size=shape) < 0.4).astype(np.float64)
    return p, t


def keras() -> Any:
    return tensorflow()[1]


OPTIONS = {"dice": {}, "tversky": dict(alpha=0.8, beta=0.3)}
AXES = [None, (1, 2, 3), (1, 2), -1, [2, -1]]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["dice", "tversky"])
def test_functions_match_keras(name, dtype):
    """Every axis form, in Keras's own dtype (float32 and float64 in, the same out)."""
    p, t = maps()
    p, t = p.astype(dtype), t.astype(dtype)
    for axis in AXES:
        expected = np.asarray(getattr(keras().losses, name)(t, p, axis=axis, **OPTIONS[name]))
        got = getattr(KL, name)(t, p, axis=axis, **OPTIONS[name])
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert_close(got, expected, dtype, err_msg=f"{name} axis={axis}")


@pytest.mark.parametrize("name", ["dice", "tversky"])
def test_float16_and_lists(name):
    """float16 in, float16 out (losskit sums in float32, Keras in float16: within a
    float16 rounding); Python lists become float32, as TensorFlow converts them."""
    p, t = maps((2, 3, 3, 1))
    p16, t16 = p.astype(np.float16), t.astype(np.float16)
    expected = np.asarray(getattr(keras().losses, name)(t16, p16, axis=(1, 2), **OPTIONS[name]))
    got = getattr(KL, name)(t16, p16, axis=(1, 2), **OPTIONS[name])
    assert got.dtype == np.float16 and got.shape == expected.shape
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=2e-3, atol=1e-3)
    as_lists = getattr(KL, name)(t.tolist(), p.tolist(), **OPTIONS[name])
    expected = np.asarray(getattr(keras().losses, name)(t.tolist(), p.tolist(), **OPTIONS[name]))
    assert np.asarray(as_lists).dtype == np.float32
    assert_close(as_lists, expected, "float32")


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("name", ["dice", "tversky"])
def test_gradients_match_keras(backend, name):
    """d/dy_pred and d/dy_true of sum(coef * loss), float64, against tf.GradientTape."""
    p, t = maps()
    for axis in (None, (1, 2)):
        per, dp, dt = keras_ref(name, p, t, axis=axis, **OPTIONS[name])
        coef = np.random.default_rng(1).uniform(0.5, 2.0, size=per.shape)
        _, dp, dt = keras_ref(name, p, t, coef, axis=axis, **OPTIONS[name])
        fn = functools.partial(getattr(KL, name), axis=axis, **OPTIONS[name])
        if backend == "torch":
            torch = pytest.importorskip("torch")
            pt, tt = torch.tensor(p, requires_grad=True), torch.tensor(t, requires_grad=True)
            value = fn(tt, pt)
            (torch.tensor(coef) * value).sum().backward()
            got = value.detach().numpy(), pt.grad.numpy(), tt.grad.numpy()
        else:
            jax = pytest.importorskip("jax")

            def total(a: Any, b: Any, coef: Any = coef, fn: Any = fn) -> Any:
                return (coef * fn(b, a)).sum()

            got = (
                np.asarray(fn(t, p)),
                *map(np.asarray, jax.jit(jax.grad(total, argnums=(0, 1)))(p, t)),
            )
        assert_close(got[0], per, err_msg=f"{name} axis={axis}")
        assert_close(got[1], dp, kind="grad", err_msg=f"{name} d/dy_pred axis={axis}")
        assert_close(got[2], dt, kind="grad", err_msg=f"{name} d/dy_true axis={axis}")


CLASS_CASES = [
    # (constructor kwargs, sample_weight shape or None)
    (dict(), None),
    (dict(), (3,)),
    (dict(axis=(1, 2, 3)), (3,)),
    (dict(axis=(1, 2), reduction="sum"), (3, 2)),
    (dict(axis=(1, 2), reduction=None), None),
    (dict(axis=(1, 2), reduction="none"), (3, 1)),
    (dict(axis=(1, 2, 3), reduction="mean_with_sample_weight"), (3,)),
    (dict(axis=(1, 2, 3), reduction="mean"), None),
    (dict(axis=(1, 2, 3), dtype="float64"), (3,)),
]


@pytest.mark.parametrize("name", ["Dice", "Tversky"])
@pytest.mark.parametrize("kwargs, weight", CLASS_CASES)
def test_classes_match_keras(name, kwargs, weight):
    """The Keras Loss call: cast to float32 (or ``dtype``), the function, then Keras's
    reduction with the sample weight (a 0-d loss left as it is)."""
    p, t = maps()
    options = dict(alpha=0.8, beta=0.3) if name == "Tversky" else {}
    sw = None if weight is None else np.random.default_rng(3).uniform(0.1, 2.0, size=weight)
    ours = getattr(KL, name)(**options, **kwargs)
    theirs = getattr(keras().losses, name)(**options, **kwargs)
    expected = np.asarray(theirs(t, p, sample_weight=sw))
    got = ours(t, p, sample_weight=sw)
    assert np.asarray(got).dtype == expected.dtype and np.shape(got) == expected.shape
    assert_close(got, expected, str(expected.dtype), err_msg=f"{name} {kwargs}")
    assert ours.get_config() == theirs.get_config()


def test_constructors_take_keras_positional_order():
    """Dice(reduction, name, axis, dtype) and Tversky(alpha, beta, reduction, name, axis,
    dtype), as Keras's constructors: positional arguments mean the same."""
    for name, args in (("Dice", ("sum", "d", (1, 2))), ("Tversky", (0.1, 0.9, "sum", "tv", -1))):
        ours, theirs = getattr(KL, name), getattr(keras().losses, name)
        assert list(inspect.signature(ours).parameters) == list(
            inspect.signature(theirs).parameters
        )
        assert ours(*args).get_config() == theirs(*args).get_config()
        p, t = maps()
        assert_close(ours(*args)(t, p), np.asarray(theirs(*args)(t, p)), "float32")


def test_targets_outside_unit_interval_computed_as_keras():
    """The core refuses targets outside [0, 1]; Keras computes with them, so does the adapter."""
    p, t = maps()
    t = t * 1.5 - 0.2
    for name in ("dice", "tversky"):
        expected = np.asarray(getattr(keras().losses, name)(t, p, axis=(1, 2, 3)))
        assert_close(getattr(KL, name)(t, p, axis=(1, 2, 3)), expected)


def test_scalar_inputs():
    expected = np.asarray(keras().losses.dice(np.float64(1.0), np.float64(0.25)))
    got = KL.dice(np.float64(1.0), np.float64(0.25))
    assert np.shape(got) == () and np.asarray(got).dtype == np.float64
    assert_close(got, expected)


def test_nan_rule_under_jit():
    """A y_pred outside [0, 1] inside jax.jit: its loss is NaN, the others Keras's."""
    jax = pytest.importorskip("jax")
    p, t = maps()
    bad = p.copy()
    bad[2, 0, 0, 0] = 1.25
    for name in ("dice", "tversky"):
        fn = getattr(KL, name)
        value = np.asarray(jax.jit(lambda a, b, fn=fn: fn(b, a, axis=(1, 2, 3)))(bad, t))
        assert np.isnan(value[2]) and np.isfinite(value[:2]).all()
        assert_close(value[:2], np.asarray(getattr(keras().losses, name)(t, p, axis=(1, 2, 3)))[:2])


def test_nan_rule_without_summed_axis():
    """Keras dice(axis=()) inside jax.jit: one loss per element, NaN only where y_pred is
    out of [0, 1] (nothing summed: the bad mask is the element's own); the others Keras's,
    y_true = 2 included (Keras computes with any target)."""
    jax = pytest.importorskip("jax")
    p, t = np.array([[0.5, 1.5], [0.2, 0.3]]), np.array([[1.0, 0.0], [0.0, 2.0]])
    value = np.asarray(jax.jit(lambda a, b: KL.dice(b, a, axis=()))(p, t))
    grad = np.asarray(jax.jit(jax.grad(lambda a, b: KL.dice(b, a, axis=()).sum()))(p, t))
    bad = np.array([[False, True], [False, False]])
    assert np.isnan(value[bad]).all() and np.isfinite(value[~bad]).all(), value
    assert np.isnan(grad[bad]).all() and np.isfinite(grad[~bad]).all(), grad
    expected = np.asarray(keras().losses.dice(t, p, axis=()))
    assert_close(value[~bad], expected[~bad])


@pytest.mark.parametrize(
    "call, error, text",
    [
        (
            lambda p, t: KL.dice(t, p * 3),
            ValueError,
            "`y_pred` must be probabilities in [0, 1]; got ",
        ),
        (
            lambda p, t: KL.tversky(t, p, alpha=-1.0),
            ValueError,
            "`alpha` must be a finite number >= 0; got -1.0",
        ),
        (
            lambda p, t: KL.Dice(axis=(1, 5))(t, p),
            ValueError,
            "`axis` must be None, an int or a tuple of distinct ints in [-4, 4) for 4-d `y_pred`; "
            "got (1, 5)",
        ),
        (
            lambda p, t: KL.dice(t[:, :1], p),
            ValueError,
            "`y_true` must have the shape of `y_pred` (3, 4, 5, 2); got (3, 1, 5, 2)",
        ),
        (
            lambda p, t: KL.Dice(reduction="avg"),
            ValueError,
            "Invalid value for argument `reduction`.",
        ),
    ],
)
def test_errors(call, error, text):
    p, t = maps()
    with pytest.raises(error) as info:
        call(p, t)
    assert str(info.value).startswith(text), str(info.value)
