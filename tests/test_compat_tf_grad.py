"""losskit.compat.tf's derivatives with respect to every floating argument, against TensorFlow.

Each case runs one call written once for both modules, on real TensorFlow /
Keras 3 under ``tf.GradientTape`` and on the adapter under torch autograd and
``jax.grad``, and compares the value and the derivative with respect to every
floating argument TensorFlow differentiates: predictions, ``y_true`` /
``labels`` (soft targets, knowledge distillation), ``sample_weight`` and
``pos_weight``.  Everything in float64 (the Keras classes with
``dtype="float64"``).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from _frameworks import tensorflow
from losskit.compat import tf as ctf

RNG = np.random.default_rng(20270109)
TOL = {"rtol": 1e-10, "atol": 1e-12}


def softmax_rows(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def probs():
    p = softmax_rows(RNG.normal(size=(4, 3)))
    p[0] = [0.0, 0.7, 0.3]  # a zero probability (clipped by Keras)
    return p


def soft_targets():
    t = softmax_rows(RNG.normal(size=(4, 3)) * 2)
    t[1] = [0.0, 1.0, 0.0]  # one-hot: zero targets, whose derivative is -log p
    return t


def binary_targets():
    t = RNG.random((4, 3))
    t[0] = [0.0, 1.0, 0.5]
    return t


def keras_class(name, **kwargs):
    return lambda m, y_true, y_pred, sample_weight: getattr(m.keras.losses, name)(
        dtype="float64", **kwargs
    )(y_true, y_pred, sample_weight=sample_weight)


def cases():
    """name -> (call(module, **arrays), arrays, the arrays differentiated)."""
    x = RNG.normal(size=(4, 3)) * 3
    sw_rows = RNG.random(4) + 0.2
    sw_full = RNG.random((4, 3)) + 0.2
    ids = np.array([1, -1, 2, 0])
    return {
        "categorical-probs": (
            lambda m, y_true, y_pred: m.keras.losses.categorical_crossentropy(y_true, y_pred),
            {"y_true": soft_targets(), "y_pred": probs()},
            ["y_true", "y_pred"],
        ),
        "categorical-probs-smoothed": (
            lambda m, y_true, y_pred: m.keras.losses.categorical_crossentropy(
                y_true, y_pred, label_smoothing=0.2
            ),
            {"y_true": soft_targets(), "y_pred": probs()},
            ["y_true", "y_pred"],
        ),
        "categorical-logits": (
            lambda m, y_true, y_pred: m.keras.losses.categorical_crossentropy(
                y_true, y_pred, from_logits=True, label_smoothing=0.1
            ),
            {"y_true": soft_targets(), "y_pred": x},
            ["y_true", "y_pred"],
        ),
        "binary-probs": (
            lambda m, y_true, y_pred: m.keras.losses.binary_crossentropy(y_true, y_pred),
            {"y_true": binary_targets(), "y_pred": np.clip(probs() + 0.0, 0, 1)},
            ["y_true", "y_pred"],
        ),
        "binary-probs-edges": (
            # p = 0 and 1 with targets 0, 1 and between: Keras clips, and its
            # d/dt = log(1 - clip(p)) - log(clip(p)) stays finite in float64.
            lambda m, y_true, y_pred: m.keras.losses.binary_crossentropy(
                y_true, y_pred, label_smoothing=0.1
            ),
            {
                "y_true": np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]]),
                "y_pred": np.array([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]]),
            },
            ["y_true", "y_pred"],
        ),
        "binary-logits": (
            lambda m, y_true, y_pred: m.keras.losses.binary_crossentropy(
                y_true, y_pred, from_logits=True
            ),
            {"y_true": binary_targets(), "y_pred": x},
            ["y_true", "y_pred"],
        ),
        "CategoricalCrossentropy-weighted": (
            keras_class("CategoricalCrossentropy", label_smoothing=0.1),
            {"y_true": soft_targets(), "y_pred": probs(), "sample_weight": sw_rows},
            ["y_true", "y_pred", "sample_weight"],
        ),
        "CategoricalCrossentropy-mean-with-sample-weight": (
            keras_class(
                "CategoricalCrossentropy", from_logits=True, reduction="mean_with_sample_weight"
            ),
            {"y_true": soft_targets(), "y_pred": x, "sample_weight": sw_rows},
            ["y_true", "y_pred", "sample_weight"],
        ),
        "BinaryCrossentropy-weighted": (
            keras_class("BinaryCrossentropy", reduction="sum"),
            {"y_true": binary_targets(), "y_pred": probs(), "sample_weight": sw_rows[:, None]},
            ["y_true", "y_pred", "sample_weight"],
        ),
        "BinaryCrossentropy-logits-per-element-weight": (
            # reduction=None keeps the (N,) loss; a (4, 1) weight multiplies it.
            keras_class("BinaryCrossentropy", from_logits=True, reduction=None),
            {"y_true": binary_targets(), "y_pred": x, "sample_weight": sw_rows[:, None]},
            ["y_true", "y_pred", "sample_weight"],
        ),
        "SparseCategoricalCrossentropy-ignore-class": (
            keras_class("SparseCategoricalCrossentropy", ignore_class=-1),
            {"y_true": ids, "y_pred": probs(), "sample_weight": sw_rows},
            ["y_pred", "sample_weight"],
        ),
        "MeanSquaredError": (
            keras_class("MeanSquaredError", reduction="mean_with_sample_weight"),
            {"y_true": x[::-1].copy(), "y_pred": x, "sample_weight": sw_rows},
            ["y_true", "y_pred", "sample_weight"],
        ),
        "MeanAbsoluteError": (
            keras_class("MeanAbsoluteError"),
            {"y_true": x[::-1].copy() + 0.1, "y_pred": x, "sample_weight": sw_full[:, 0]},
            ["y_true", "y_pred", "sample_weight"],
        ),
        "nn.softmax_cross_entropy_with_logits": (
            lambda m, labels, logits: m.nn.softmax_cross_entropy_with_logits(
                labels=labels, logits=logits
            ),
            {"labels": soft_targets(), "logits": x},
            ["labels", "logits"],
        ),
        "nn.softmax_cross_entropy_with_logits-axis-0": (
            lambda m, labels, logits: m.nn.softmax_cross_entropy_with_logits(
                labels=labels, logits=logits, axis=0
            ),
            {"labels": soft_targets().T.copy(), "logits": x.T.copy()},
            ["labels", "logits"],
        ),
        "nn.softmax_cross_entropy_with_logits-broadcast-labels": (
            # TF broadcasts one row of labels over every row of logits (and then
            # fails to differentiate the labels: "Input to reshape is a tensor
            # with 12 values, but the requested shape has 3").
            lambda m, labels, logits: m.nn.softmax_cross_entropy_with_logits(
                labels=labels, logits=logits
            ),
            {"labels": np.array([0.2, 0.0, 0.8]), "logits": x},
            ["logits"],
        ),
        "nn.sigmoid_cross_entropy_with_logits": (
            lambda m, labels, logits: m.nn.sigmoid_cross_entropy_with_logits(
                labels=labels, logits=logits
            ),
            {"labels": binary_targets(), "logits": x},
            ["labels", "logits"],
        ),
        "nn.weighted_cross_entropy_with_logits": (
            lambda m, labels, logits, pos_weight: m.nn.weighted_cross_entropy_with_logits(
                labels=labels, logits=logits, pos_weight=pos_weight
            ),
            {"labels": binary_targets(), "logits": x, "pos_weight": np.array([2.0, 0.5, 1.5])},
            ["labels", "logits", "pos_weight"],
        ),
        "nn.weighted_cross_entropy_with_logits-scalar": (
            lambda m, labels, logits, pos_weight: m.nn.weighted_cross_entropy_with_logits(
                labels=labels, logits=logits, pos_weight=pos_weight
            ),
            {"labels": binary_targets(), "logits": x, "pos_weight": np.array(2.5)},
            ["labels", "logits", "pos_weight"],
        ),
    }


CASES = cases()


@pytest.fixture(scope="module")
def reference():
    tf, keras = tensorflow()
    return tf, SimpleNamespace(keras=keras, nn=tf.nn)


def tf_value_and_grads(tf, module, call, arrays, wrt):
    consts = {k: tf.constant(a) for k, a in arrays.items()}
    with tf.GradientTape() as tape:
        for k in wrt:
            tape.watch(consts[k])
        v = call(module, **consts)
        total = tf.reduce_sum(v)
    found = tape.gradient(total, [consts[k] for k in wrt])
    return v.numpy(), {k: g.numpy() for k, g in zip(wrt, found, strict=True)}


def assert_same(value, grads, v_ref, g_ref, what):
    np.testing.assert_allclose(np.asarray(value), v_ref, err_msg=f"{what} value", **TOL)
    for k, g in g_ref.items():
        assert grads[k] is not None, f"{what}: no gradient for {k}"
        np.testing.assert_allclose(np.asarray(grads[k]), g, err_msg=f"{what} d/d{k}", **TOL)


@pytest.mark.parametrize("case", list(CASES))
def test_torch_autograd_against_gradient_tape(reference, case):
    torch = pytest.importorskip("torch")
    tf, module = reference
    call, arrays, wrt = CASES[case]
    v_ref, g_ref = tf_value_and_grads(tf, module, call, arrays, wrt)
    tensors = {k: torch.tensor(a, requires_grad=k in wrt) for k, a in arrays.items()}
    v = call(ctf, **tensors)
    assert isinstance(v, torch.Tensor)
    found = torch.autograd.grad(v.sum(), [tensors[k] for k in wrt], allow_unused=True)
    grads = dict(zip(wrt, found, strict=True))
    assert_same(v.detach().numpy(), {k: g.numpy() for k, g in grads.items()}, v_ref, g_ref, case)


@pytest.mark.parametrize("case", list(CASES))
def test_jax_grad_against_gradient_tape(reference, case):
    jax = pytest.importorskip("jax")
    tf, module = reference
    call, arrays, wrt = CASES[case]
    v_ref, g_ref = tf_value_and_grads(tf, module, call, arrays, wrt)
    fixed = {k: jax.numpy.asarray(a) for k, a in arrays.items() if k not in wrt}

    def total(*inputs):
        return call(ctf, **fixed, **dict(zip(wrt, inputs, strict=True))).sum()

    inputs = [jax.numpy.asarray(arrays[k]) for k in wrt]
    found = jax.grad(total, argnums=tuple(range(len(wrt))))(*inputs)
    v = call(ctf, **{k: jax.numpy.asarray(a) for k, a in arrays.items()})
    assert_same(v, dict(zip(wrt, found, strict=True)), v_ref, g_ref, case)
