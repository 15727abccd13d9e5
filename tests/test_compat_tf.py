"""losskit.compat.tf against TensorFlow 2 / Keras 3 (TensorFlow backend) themselves.

Each test runs TensorFlow's or Keras's own function and the adapter on the
same NumPy inputs and compares values and dtypes (NumPy in, NumPy out); the
``check`` helper also runs the adapter on torch tensors and compares torch
autograd's gradient with ``tf.GradientTape``'s (where torch is installed: the
values are checked without it).  Where the adapter departs
from TensorFlow on purpose (``ValueError`` instead of ``InvalidArgumentError``)
the test pins both.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import losskit
from _frameworks import tensorflow
from losskit.compat import tf as ctf

try:  # torch checks the gradients; without it the values are still checked
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

RNG = np.random.default_rng(2021)
TOL = {np.float32: {"rtol": 2e-6, "atol": 2e-7}, np.float64: {"rtol": 1e-12, "atol": 1e-14}}


@pytest.fixture(scope="module")
def tf():
    return tensorflow()[0]


@pytest.fixture(scope="module")
def keras():
    return tensorflow()[1]


def tf_value_and_grad(tf, fn, pred):
    x = tf.constant(pred)
    with tf.GradientTape() as tape:
        tape.watch(x)
        v = fn(x)
        total = tf.reduce_sum(v)
    return v.numpy(), tape.gradient(total, x).numpy()


def check(tf, ours, theirs, pred, *, grad=True, rtol=None, atol=None):
    """``ours(pred)`` against ``theirs(pred)`` (both callables of the prediction only).

    Value and dtype with NumPy in; with ``grad`` also the value and gradient
    with torch tensors in (torch autograd) against TensorFlow's tape, where
    torch is installed.
    """
    tol = TOL[pred.dtype.type]
    tol = {"rtol": rtol or tol["rtol"], "atol": atol or tol["atol"]}
    v_ref, g_ref = tf_value_and_grad(tf, theirs, pred)
    v = ours(pred)
    assert isinstance(v, np.ndarray) or np.isscalar(v)
    v = np.asarray(v)
    assert v.dtype == v_ref.dtype and v.shape == np.shape(v_ref)
    np.testing.assert_allclose(v, v_ref, **tol)
    if grad and torch is not None:
        leaf = torch.tensor(pred, requires_grad=True)
        vt = ours(leaf)
        assert isinstance(vt, torch.Tensor)
        (gt,) = torch.autograd.grad(vt.sum(), leaf)
        np.testing.assert_allclose(vt.detach().numpy(), v_ref, **tol)
        np.testing.assert_allclose(gt.numpy(), g_ref, **tol)
    return v


def softmax_rows(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


DTYPES = [np.float32, np.float64]


# --------------------------------------------------------------------------- tf.nn


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [None, -1, 0, 1])
def test_softmax(tf, dtype, axis):
    x = (RNG.normal(size=(3, 4, 5)) * 5).astype(dtype)
    check(tf, lambda z: ctf.nn.softmax(z, axis=axis), lambda z: tf.nn.softmax(z, axis=axis), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_cross_entropy_with_logits(tf, dtype, axis):
    x = (RNG.normal(size=(3, 4, 5)) * 4).astype(dtype)
    t = softmax_rows(RNG.normal(size=(3, 4, 5)), axis).astype(dtype)
    check(
        tf,
        lambda z: ctf.nn.softmax_cross_entropy_with_logits(labels=t, logits=z, axis=axis),
        lambda z: tf.nn.softmax_cross_entropy_with_logits(labels=t, logits=z, axis=axis),
        x,
    )


def test_softmax_cross_entropy_with_logits_unnormalised_labels(tf):
    # TF takes labels that do not sum to 1 and gives -sum(t log softmax(z)); its
    # gradient is then softmax(z) - t, which TF documents as incorrect.  The
    # adapter gives the same value and the true derivative, sum(t) softmax(z) - t.
    pytest.importorskip("torch")
    x = RNG.normal(size=(3, 5))
    t = 2 * softmax_rows(RNG.normal(size=(3, 5)))
    v_ref, g_ref = tf_value_and_grad(
        tf, lambda z: tf.nn.softmax_cross_entropy_with_logits(labels=t, logits=z), x
    )
    leaf = torch.tensor(x, requires_grad=True)
    v = ctf.nn.softmax_cross_entropy_with_logits(labels=t, logits=leaf)
    (g,) = torch.autograd.grad(v.sum(), leaf)
    np.testing.assert_allclose(v.detach().numpy(), v_ref, rtol=1e-12)
    np.testing.assert_allclose(g_ref, softmax_rows(x) - t, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g.numpy(), 2 * softmax_rows(x) - t, rtol=1e-10, atol=1e-14)


def test_softmax_cross_entropy_with_logits_lists_are_float32(tf):
    # TensorFlow's docstring example: Python lists become float32 tensors.
    logits = [[4.0, 2.0, 1.0], [0.0, 5.0, 1.0]]
    labels = [[1.0, 0.0, 0.0], [0.0, 0.8, 0.2]]
    ref = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits).numpy()
    v = ctf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    assert v.dtype == ref.dtype == np.float32
    np.testing.assert_allclose(v, [0.16984604, 0.82474494], rtol=1e-6)
    np.testing.assert_allclose(v, ref, rtol=1e-6)


def test_half_precision_logits_give_half_loss(tf):
    x = (RNG.normal(size=(4, 6)) * 3).astype(np.float16)
    t = softmax_rows(RNG.normal(size=(4, 6))).astype(np.float16)
    y = np.array([0, 5, 2, 3])
    ref = tf.nn.softmax_cross_entropy_with_logits(labels=t, logits=x).numpy()
    v = ctf.nn.softmax_cross_entropy_with_logits(labels=t, logits=x)
    assert v.dtype == ref.dtype == np.float16
    np.testing.assert_allclose(v, ref, rtol=2e-3)
    ref = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x).numpy()
    v = ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)
    assert v.dtype == ref.dtype == np.float16
    np.testing.assert_allclose(v, ref, rtol=2e-3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape", [(6,), (2, 3)])
def test_sparse_softmax_cross_entropy_with_logits(tf, dtype, label_dtype, shape):
    x = (RNG.normal(size=(*shape, 5)) * 4).astype(dtype)
    y = RNG.integers(0, 5, size=shape).astype(label_dtype)
    check(
        tf,
        lambda z: ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z),
        lambda z: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z),
        x,
    )


def test_sparse_label_out_of_range_raises_value_error(tf):
    x = np.zeros((2, 3), dtype=np.float32)
    # TensorFlow raises on CPU too (and gives NaN on GPU); the adapter raises ValueError.
    with pytest.raises(tf.errors.InvalidArgumentError, match="label value of 3"):
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=np.array([0, 3]), logits=x)
    with pytest.raises(
        ValueError, match=r"^`labels` must be in \[0, 3\); got 3 at position \(1,\)$"
    ):
        ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=np.array([0, 3]), logits=x)
    x3 = np.zeros((2, 2, 3), dtype=np.float32)
    msg = r"^`labels` must be in \[0, 3\); got -1 at position \(1, 0\)$"
    with pytest.raises(ValueError, match=msg):
        ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=[[0, 1], [-1, 2]], logits=x3)
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.sparse_categorical_crossentropy(np.array([[0, 1], [-1, 2]]), x3 + 1 / 3)


def test_sparse_float_labels_are_refused(tf):
    x = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not in the list of allowed values"):
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=np.array([0.0, 1.0]), logits=x)
    with pytest.raises(TypeError, match=r"^`labels` must be an integer array of class ids"):
        ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=np.array([0.0, 1.0]), logits=x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_cross_entropy_with_logits(tf, dtype):
    x = np.array([[-3.0, 0.5, 100.0, -100.0], [2.0, -1.0, 1e4, -1e4], [-40.0, 17.0, -0.3, 0.7]])
    z = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.5, 0.5], [0.2, 1.0, 0.3, 0.9]])
    x, z = x.astype(dtype), z.astype(dtype)
    check(
        tf,
        lambda a: ctf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=a),
        lambda a: tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=a),
        x,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [1.5, 0.25, "per-class", "per-row", "full"])
def test_weighted_cross_entropy_with_logits(tf, dtype, pos_weight):
    x = np.array([[-3.0, 0.5, 30.0, -30.0], [2.0, -1.0, 4.0, -4.0], [-10.0, 17.0, -0.3, 0.7]])
    z = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.5, 0.5], [0.2, 1.0, 0.3, 0.9]])
    x, z = x.astype(dtype), z.astype(dtype)
    q = {
        "per-class": np.array([2.0, 1.0, 0.5, 3.0], dtype=dtype),
        "per-row": np.array([[2.0], [0.5], [4.0]], dtype=dtype),  # broadcast like any TF op
        "full": RNG.random(size=(3, 4)).astype(dtype) * 3,
    }.get(pos_weight, pos_weight)
    # TensorFlow forms (1-z) x + ... + max(-x, 0), which cancels to ~1 ulp of |x|
    # in float32 where the loss is tiny; the core's per-sign form is exact there.
    atol = 1e-5 if dtype == np.float32 else None
    check(
        tf,
        lambda a: ctf.nn.weighted_cross_entropy_with_logits(labels=z, logits=a, pos_weight=q),
        lambda a: tf.nn.weighted_cross_entropy_with_logits(labels=z, logits=a, pos_weight=q),
        x,
        atol=atol,
    )


def test_double_softmax_warning_passes_through(tf):
    p = softmax_rows(RNG.normal(size=(4, 3))).astype(np.float32)
    t = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    ref = tf.nn.softmax_cross_entropy_with_logits(labels=t, logits=p).numpy()
    with pytest.warns(losskit.ProbabilitiesAsLogitsWarning, match="categorical_cross_entropy"):
        v = ctf.nn.softmax_cross_entropy_with_logits(labels=t, logits=p)
    np.testing.assert_allclose(v, ref, rtol=1e-6)  # the numbers stay TensorFlow's


# --------------------------------------------------------------------------- keras functions


def probs_with_edges(dtype, shape=(5, 4)):
    """Probability rows including exact 0 and 1, and rows that do not sum to 1."""
    p = softmax_rows(RNG.normal(size=shape) * 2)
    p[0] = [0.0, 1.0, 0.0, 0.0]
    p[1] = [0.0, 0.5, 0.0, 0.0]  # the dense loss renormalises it to one-hot
    p[2] = [0.5, 1.0, 0.5, 0.0]  # sums to 2
    p[3, :2] = [0.0, 0.0]
    return p.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_categorical_crossentropy(tf, keras, dtype, from_logits, label_smoothing):
    pred = RNG.normal(size=(5, 4)).astype(dtype) if from_logits else probs_with_edges(dtype)
    y = np.eye(4, dtype=dtype)[[1, 0, 3, 0, 2]]
    y[4] = [0.25, 0.25, 0.5, 0.0]  # soft
    kwargs = {"from_logits": from_logits, "label_smoothing": label_smoothing}
    check(
        tf,
        lambda p: ctf.keras.losses.categorical_crossentropy(y, p, **kwargs),
        lambda p: keras.losses.categorical_crossentropy(y, p, **kwargs),
        pred,
    )


def test_categorical_crossentropy_renormalises_then_clips(keras):
    # Keras divides each row by its sum first and clips afterwards: a row
    # [0, 0.5, 0, 0] costs -log(1 - 1e-7) for class 1 and -log(1e-7) for class 0.
    p = np.array([[0.0, 0.5, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0]])
    y = np.eye(4)[[1, 0]]
    v = ctf.keras.losses.categorical_crossentropy(y, p)
    np.testing.assert_allclose(v, [-math.log(1 - 1e-7), -math.log(1e-7)], rtol=1e-12)
    np.testing.assert_allclose(v, keras.losses.categorical_crossentropy(y, p).numpy(), rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_crossentropy_axis_with_smoothing(tf, keras, axis, from_logits):
    # Keras smooths with C = the size of the *last* axis whatever `axis` is (here 5, not 3 or 4).
    shape = (3, 4, 5)
    pred = RNG.normal(size=shape) if from_logits else softmax_rows(RNG.normal(size=shape), axis)
    y = softmax_rows(RNG.normal(size=shape) * 3, axis)
    kwargs = {"from_logits": from_logits, "label_smoothing": 0.2, "axis": axis}
    check(
        tf,
        lambda p: ctf.keras.losses.categorical_crossentropy(y, p, **kwargs),
        lambda p: keras.losses.categorical_crossentropy(y, p, **kwargs),
        pred,
        # Those targets no longer sum to 1; on logits TF's gradient is then
        # softmax - t (see the unnormalised-labels test), the adapter's the true one.
        grad=not from_logits,
    )


def test_probabilities_outside_the_unit_interval_raise(keras):
    # Keras clips any y_pred into [1e-7, 1 - 1e-7] and returns a number; the
    # adapter refuses a "probability" outside [0, 1] (categorical rows may sum
    # to anything positive: Keras renormalises them).
    p = np.array([[0.2, 1.5, 0.3], [0.2, 0.3, 0.5]])
    assert np.isfinite(keras.losses.sparse_categorical_crossentropy(np.array([1, 0]), p)).all()
    assert np.isfinite(keras.losses.binary_crossentropy(np.ones((2, 3)), p)).all()
    msg = r"^`y_pred` must be probabilities in \[0, 1\]; got 1.5 at position \(0, 1\)$"
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.sparse_categorical_crossentropy(np.array([1, 0]), p)
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.binary_crossentropy(np.ones((2, 3)), p)
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.BinaryCrossentropy()(np.ones((2, 3)), p)
    with pytest.raises(ValueError, match=r"must be probabilities in \[0, 1\]; got -0.1"):
        ctf.keras.losses.categorical_crossentropy(np.eye(3)[:2], [[0.6, 0.5, -0.1], [0, 1, 0]])


@pytest.mark.parametrize(
    ("row", "found"),
    [([1.5, 0.5], "1.5 at position (0, 0)"), ([-0.5, 0.5], "-0.5 at position (0, 0)")],
)
def test_categorical_crossentropy_checks_the_range_before_renormalising(keras, row, found):
    # Keras divides by the row sum first: [1.5, 0.5] becomes [0.75, 0.25] and
    # costs log 4 silently, [-0.5, 0.5] becomes [-inf, inf] (clipped to a
    # near-zero loss).  The adapter refuses the value the user passed, where it
    # was passed, before any division (so no RuntimeWarning from NumPy either).
    y = np.array([[0.0, 1.0]], dtype=np.float32)
    p = np.array([row], dtype=np.float32)
    assert np.isfinite(keras.losses.categorical_crossentropy(y, p).numpy()).all()
    msg = f"^`y_pred` must be probabilities in \\[0, 1\\]; got {re.escape(found)}$"
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.categorical_crossentropy(y, p)
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.CategoricalCrossentropy()(y, p)


def test_categorical_crossentropy_row_of_zeros(keras):
    # A row of zeros has no distribution to renormalise to: Keras divides 0 by
    # 0 and returns NaN; the adapter names the row instead.
    y = np.eye(3)[[0, 1]]
    p = np.array([[0.2, 0.3, 0.5], [0.0, 0.0, 0.0]])
    assert np.isnan(keras.losses.categorical_crossentropy(y, p).numpy()[1])
    msg = r"^`y_pred` rows must have a positive sum to be renormalised; got 0.0 at position \(1,\)$"
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.categorical_crossentropy(y, p)
    # The class axis is `axis`, and the position is that of the row without it.
    with pytest.raises(ValueError, match=r"got 0.0 at position \(1,\)$"):
        ctf.keras.losses.categorical_crossentropy(y.T, p.T, axis=0)


def test_categorical_crossentropy_argument_errors(keras):
    y = np.eye(3)[[0, 1]]
    with pytest.raises(ValueError, match="`axis` must be of type `int`"):
        keras.losses.categorical_crossentropy(y, y, axis=True)
    with pytest.raises(ValueError, match=r"^`axis` must be of type `int`. Received: axis=True"):
        ctf.keras.losses.categorical_crossentropy(y, y, axis=True)
    one = np.ones((2, 1))
    with pytest.warns(SyntaxWarning, match="Consider using 'binary_crossentropy'"):
        keras.losses.categorical_crossentropy(one, one)
    with pytest.warns(SyntaxWarning, match="Consider using 'binary_crossentropy'"):
        ctf.keras.losses.categorical_crossentropy(one, one)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_categorical_crossentropy(tf, keras, dtype, from_logits):
    pred = RNG.normal(size=(5, 4)).astype(dtype) if from_logits else probs_with_edges(dtype)
    y = np.array([1, 0, 3, 0, 2])
    check(
        tf,
        lambda p: ctf.keras.losses.sparse_categorical_crossentropy(y, p, from_logits),
        lambda p: keras.losses.sparse_categorical_crossentropy(y, p, from_logits),
        pred,
    )


def test_sparse_categorical_crossentropy_clips_then_renormalises(keras):
    # Unlike the dense loss: clip to [1e-7, 1-1e-7] first, then the softmax of
    # the log renormalises the clipped row, -log(clip(p)[y] / sum(clip(p))).
    p = np.array([[0.0, 0.5, 0.0, 0.0], [0.5, 1.0, 0.5, 0.0]])
    y = np.array([0, 1])
    c = np.clip(p, 1e-7, 1 - 1e-7)
    expected = -np.log(c[[0, 1], y] / c.sum(-1))
    v = ctf.keras.losses.sparse_categorical_crossentropy(y, p)
    np.testing.assert_allclose(v, expected, rtol=1e-12)
    np.testing.assert_allclose(
        v, keras.losses.sparse_categorical_crossentropy(y, p).numpy(), rtol=1e-12
    )
    # Where clipping adds mass the two orders part: a one-hot row over 1000
    # classes costs 1e-7 densely but -log((1 - 1e-7) / (1 + 998e-7)) ~ 1e-4 sparsely.
    wide = np.eye(1000)[[0]]
    dense = ctf.keras.losses.categorical_crossentropy(wide, wide)
    sparse = ctf.keras.losses.sparse_categorical_crossentropy(np.array([0]), wide)
    np.testing.assert_allclose(dense, keras.losses.categorical_crossentropy(wide, wide), rtol=1e-9)
    np.testing.assert_allclose(
        sparse, keras.losses.sparse_categorical_crossentropy(np.array([0]), wide), rtol=1e-9
    )
    np.testing.assert_allclose(dense, [1e-7], rtol=1e-6)
    np.testing.assert_allclose(sparse, [math.log((1 + 998e-7) / (1 - 1e-7))], rtol=1e-9)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([[1], [0], [3]]),  # (N, 1) labels are squeezed
        np.array([1.0, 0.0, 3.0], dtype=np.float32),  # float labels are cast to int64
        np.array([1, 0, 3], dtype=np.int32),
    ],
    ids=["n-by-1", "float", "int32"],
)
def test_sparse_categorical_crossentropy_labels(keras, labels):
    p = softmax_rows(RNG.normal(size=(3, 4))).astype(np.float32)
    ref = keras.losses.sparse_categorical_crossentropy(labels, p).numpy()
    v = ctf.keras.losses.sparse_categorical_crossentropy(labels, p)
    np.testing.assert_allclose(v, ref, rtol=1e-6)
    assert v.dtype == ref.dtype


@pytest.mark.parametrize("axis", [-1, 2])
def test_sparse_categorical_crossentropy_3d(tf, keras, axis):
    p = softmax_rows(RNG.normal(size=(2, 3, 4)))
    y = RNG.integers(0, 4, size=(2, 3))
    check(
        tf,
        lambda a: ctf.keras.losses.sparse_categorical_crossentropy(y, a, axis=axis),
        lambda a: keras.losses.sparse_categorical_crossentropy(y, a, axis=axis),
        p,
    )


def test_sparse_categorical_crossentropy_only_last_axis(keras):
    p = softmax_rows(RNG.normal(size=(2, 3, 4)))
    y = RNG.integers(0, 2, size=(3, 4))
    msg = r"^Only axis=-1 is currently supported. Received: axis=0$"
    with pytest.raises(ValueError, match=msg):
        keras.losses.sparse_categorical_crossentropy(y, p, axis=0)
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.sparse_categorical_crossentropy(y, p, axis=0)


@pytest.mark.parametrize("ignore_class", [-1, 3])
def test_sparse_categorical_crossentropy_ignore_class(tf, keras, ignore_class):
    # Ignored positions get a loss of 0 (and no gradient).
    p = softmax_rows(RNG.normal(size=(6, 4)))
    y = np.array([1, ignore_class, 3, 0, ignore_class, 2])
    f = keras.losses.sparse_categorical_crossentropy
    check(
        tf,
        lambda a: ctf.keras.losses.sparse_categorical_crossentropy(y, a, ignore_class=ignore_class),
        lambda a: f(y, a, ignore_class=ignore_class),
        p,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("axis", [-1, 0])
def test_binary_crossentropy(tf, keras, dtype, from_logits, label_smoothing, axis):
    if from_logits:
        pred = np.array([[-3.0, 0.5, 30.0], [2.0, -1.0, 0.25], [-30.0, 17.0, -0.3]])
    else:
        # exact 0 and 1, and values inside the clip band (1e-7 is clipped in the dtype)
        pred = np.array([[0.0, 1.0, 1e-9], [1 - 1e-9, 0.5, 0.3], [0.999, 1e-3, 0.7]])
    y = np.array([[1.0, 0.0, 1.0], [1.0, 0.5, 0.0], [0.0, 1.0, 0.2]])
    pred, y = pred.astype(dtype), y.astype(dtype)
    kwargs = {"from_logits": from_logits, "label_smoothing": label_smoothing, "axis": axis}
    check(
        tf,
        lambda p: ctf.keras.losses.binary_crossentropy(y, p, **kwargs),
        lambda p: keras.losses.binary_crossentropy(y, p, **kwargs),
        pred,
    )


def test_binary_crossentropy_clips_in_the_input_dtype_without_epsilon_in_the_log(keras):
    # Keras 3 clips p to [1e-7, 1 - 1e-7] *in p's dtype* and takes log(1 - p)
    # with no epsilon added: in float32, 1 - float32(1 - 1e-7) = 2**-23.
    t = np.array([[0.0], [1.0]])
    p = np.array([[1.0], [0.0]])
    v64 = ctf.keras.losses.binary_crossentropy(t, p)
    v32 = ctf.keras.losses.binary_crossentropy(t.astype(np.float32), p.astype(np.float32))
    np.testing.assert_allclose(v64, [-math.log1p(-(1 - 1e-7)), -math.log(1e-7)], rtol=1e-9)
    np.testing.assert_allclose(v32, [23 * math.log(2), -math.log(np.float32(1e-7))], rtol=1e-6)
    np.testing.assert_allclose(v64, keras.losses.binary_crossentropy(t, p).numpy(), rtol=1e-12)
    ref32 = keras.losses.binary_crossentropy(t.astype(np.float32), p.astype(np.float32)).numpy()
    np.testing.assert_allclose(v32, ref32, rtol=1e-6)


BCE_EDGES_T = [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.3, 1.0, 1.0, 0.0, 0.5]
BCE_EDGES_P = [0.0, 1e-7, 1e-4, 3e-3, 0.3, 0.0, 1e-9, 0.0, 0.25, 1.0, 1.0]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_binary_crossentropy_takes_log_of_one_minus_p_rounded_in_the_dtype(keras, dtype):
    # Keras 3 takes log(1 - p) with 1 - p rounded to y_pred's dtype (no log1p):
    # for p = 0 it costs -log(1 - 1.19e-7) = 1.19e-7 in float32, not 1e-7, and
    # 0 in float16, where 1 - 1e-4 rounds to 1 as well.
    t = np.array(BCE_EDGES_T, dtype=dtype)[:, None]
    p = np.array(BCE_EDGES_P, dtype=dtype)[:, None]
    ref = keras.losses.binary_crossentropy(t, p).numpy()
    v = ctf.keras.losses.binary_crossentropy(t, p)
    assert v.dtype == ref.dtype == dtype
    rtol = {np.float16: 1e-3, np.float32: 1e-6, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(v, ref, rtol=rtol, atol=0)
    if dtype == np.float32:
        np.testing.assert_allclose(v[0], -math.log(1 - 2**-23), rtol=1e-6)


def test_binary_crossentropy_half_precision_certain_and_right_is_zero(keras):
    # In float16 Keras's upper clip bound 1 - 1e-7 rounds to 1, so p = 1 with
    # t = 1 forms 0 * log(0) = NaN.  The prediction is valid and right: the
    # adapter gives the loss 0 (a deliberate difference, in the docstring).
    t = np.array([[1.0, 1.0]], dtype=np.float16)
    p = np.array([[1.0, 0.5]], dtype=np.float16)
    assert np.isnan(keras.losses.binary_crossentropy(t, p).numpy()).all()
    v = ctf.keras.losses.binary_crossentropy(t, p)
    np.testing.assert_allclose(v, [math.log(2) / 2], rtol=1e-3)
    v = ctf.keras.losses.binary_crossentropy(t, p, axis=0)
    np.testing.assert_array_equal(v, [0.0, np.float16(math.log(2))])
    if torch is not None:
        leaf = torch.tensor(p, requires_grad=True)
        (g,) = torch.autograd.grad(ctf.keras.losses.binary_crossentropy(t, leaf).sum(), leaf)
        assert torch.isfinite(g).all()


def test_keras_functions_in_half_precision(keras):
    # Keras computes in y_pred's dtype: float16 in, float16 out, and its clip
    # bound 1 - 1e-7 rounds to 1 in float16, so p = 1 with t = 0 costs inf.
    t = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]], dtype=np.float16)
    p = np.array([[1.0, 0.0, 0.5], [0.25, 0.125, 0.75]], dtype=np.float16)
    y = np.array([1, 0])
    pairs = [
        ("binary_crossentropy", (t, p)),
        ("categorical_crossentropy", (t / t.sum(-1, keepdims=True), p)),
        ("sparse_categorical_crossentropy", (y, p)),
        ("mean_squared_error", (t, p)),
        ("mean_absolute_error", (t, p)),
    ]
    for name, args in pairs:
        ref = getattr(keras.losses, name)(*args).numpy()
        v = getattr(ctf.keras.losses, name)(*args)
        assert v.dtype == ref.dtype == np.float16, name
        np.testing.assert_allclose(v, ref, rtol=2e-3, err_msg=name)
    assert np.isinf(ctf.keras.losses.binary_crossentropy(t, p)[0])


def test_label_smoothing_outside_the_unit_interval(keras):
    # Keras does not check (and returns a number); the adapter refuses.
    y = np.eye(3)[[0, 1]]
    ref = keras.losses.categorical_crossentropy(y, y + 0.1, label_smoothing=1.5)
    assert np.isfinite(ref.numpy()).all()
    msg = r"^`label_smoothing` must be a number in \[0, 1\]; got 1.5$"
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.categorical_crossentropy(y, y + 0.1, label_smoothing=1.5)
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.BinaryCrossentropy(label_smoothing=1.5)(y, y / 2)


@pytest.mark.parametrize("name", ["mean_squared_error", "mean_absolute_error"])
@pytest.mark.parametrize("shapes", [((4, 3), (4, 3)), ((5,), (5,)), ((4, 1), (4,)), ((4,), (4, 1))])
def test_regression_functions(tf, keras, name, shapes):
    y = RNG.normal(size=shapes[0])
    pred = RNG.normal(size=shapes[1])
    check(
        tf,
        lambda p: getattr(ctf.keras.losses, name)(y, p),
        lambda p: getattr(keras.losses, name)(y, p),
        pred,
    )


def test_regression_functions_do_not_broadcast(keras):
    # Keras broadcasts (2, 3) against (3,) silently; the core refuses.
    assert keras.losses.mean_squared_error(np.zeros((2, 3)), np.ones(3)).shape == (2,)
    msg = r"must have the shape of `pred` \(3,\); got \(2, 3\) \(losskit does not broadcast\)$"
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.mean_squared_error(np.zeros((2, 3)), np.ones(3))


def test_regression_aliases(tf):
    y, p = RNG.normal(size=(3, 2)), RNG.normal(size=(3, 2))
    for alias, ref in [("MSE", tf.keras.losses.MSE), ("MAE", tf.keras.losses.MAE)]:
        np.testing.assert_allclose(getattr(ctf.keras.losses, alias)(y, p), ref(y, p).numpy())
    assert ctf.keras.losses.mse is ctf.keras.losses.MSE is ctf.keras.losses.mean_squared_error
    assert ctf.keras.losses.mae is ctf.keras.losses.MAE is ctf.keras.losses.mean_absolute_error


# --------------------------------------------------------------------------- keras classes


def class_cases():
    """(class name, constructor kwargs, y_true, y_pred, loss shape) for the class tests."""
    p3 = softmax_rows(RNG.normal(size=(2, 3, 4)))
    y3 = np.eye(4)[RNG.integers(0, 4, size=(2, 3))]
    p2 = probs_with_edges(np.float64)
    ids = np.array([1, 0, 3, 0, 2])
    b = RNG.random(size=(4, 3))
    return [
        ("CategoricalCrossentropy", {}, np.eye(4)[ids], p2),
        ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, y3, p3 * 5),
        ("SparseCategoricalCrossentropy", {}, ids, p2),
        ("SparseCategoricalCrossentropy", {"from_logits": True}, ids[:, None], p2 * 3),
        ("BinaryCrossentropy", {"label_smoothing": 0.2}, np.round(b), b),
        ("BinaryCrossentropy", {"from_logits": True, "axis": 0}, np.round(b), b * 8 - 4),
        ("BinaryCrossentropy", {}, np.round(b[:, 0]), b[:, :1].copy()),  # (N,) vs (N, 1)
        ("MeanSquaredError", {}, b, b[::-1].copy()),
        ("MeanAbsoluteError", {}, b, b[::-1].copy()),
    ]


CASES = class_cases()
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weights", [None, "batch-column", "full"])
def test_classes(tf, keras, case, reduction, weights):
    name, kwargs, y, p = CASES[case]
    loss_shape = tuple(np.shape(getattr(keras.losses, name)(**kwargs, reduction=None)(y, p)))
    sw = None
    if weights == "batch-column":
        sw = RNG.random(size=(loss_shape[0], 1))
    elif weights == "full":
        sw = RNG.random(size=loss_shape)
    ref = getattr(keras.losses, name)(**kwargs, reduction=reduction)
    ours = getattr(ctf.keras.losses, name)(**kwargs, reduction=reduction)
    check(
        tf,
        lambda a: ours(y, a, sample_weight=sw),
        lambda a: ref(y, a, sample_weight=sw),
        p,
        rtol=2e-6,
        atol=1e-6,
    )
    # float64 in, float32 out: a Keras loss computes in keras.config.floatx().
    assert ours(y, p).dtype == np.float32


def test_class_dtype_argument(keras):
    y, p = np.eye(3)[[0, 2]], softmax_rows(RNG.normal(size=(2, 3)))
    ref = keras.losses.CategoricalCrossentropy(dtype="float64")(y, p).numpy()
    v = ctf.keras.losses.CategoricalCrossentropy(dtype="float64")(y, p)
    assert v.dtype == ref.dtype == np.float64
    np.testing.assert_allclose(v, ref, rtol=1e-12)


def test_sample_weight_of_batch_shape_does_not_broadcast_over_more_axes(tf, keras):
    # A (N,) weight against an (N, d) loss: Keras multiplies without aligning
    # and TensorFlow raises; the adapter raises ValueError.
    y = np.eye(4)[RNG.integers(0, 4, size=(2, 3))]
    p = softmax_rows(RNG.normal(size=(2, 3, 4)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Incompatible shapes"):
        keras.losses.CategoricalCrossentropy()(y, p, sample_weight=np.array([0.3, 0.7]))
    msg = r"^`sample_weight` of shape \(2,\) does not broadcast against the loss of shape \(2, 3\)$"
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.CategoricalCrossentropy()(y, p, sample_weight=np.array([0.3, 0.7]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_class_ignore_class(tf, keras, reduction, weighted):
    # The ignored positions are masked; "sum_over_batch_size" and "mean" average
    # over the counted ones only.
    p = softmax_rows(RNG.normal(size=(6, 4)))
    y = np.array([1, -1, 3, 0, -1, 2])
    sw = RNG.random(size=6) if weighted else None
    ref = keras.losses.SparseCategoricalCrossentropy(ignore_class=-1, reduction=reduction)
    ours = ctf.keras.losses.SparseCategoricalCrossentropy(ignore_class=-1, reduction=reduction)
    check(tf, lambda a: ours(y, a, sw), lambda a: ref(y, a, sw), p, rtol=2e-6, atol=1e-6)


def test_sparse_class_all_ignored_is_zero(keras):
    p = softmax_rows(RNG.normal(size=(3, 4)))
    y = np.array([-1, -1, -1])
    ref = keras.losses.SparseCategoricalCrossentropy(ignore_class=-1)(y, p).numpy()
    v = ctf.keras.losses.SparseCategoricalCrossentropy(ignore_class=-1)(y, p)
    assert float(v) == float(ref) == 0.0


def test_sparse_class_positional_order_and_no_label_smoothing(keras):
    # SparseCategoricalCrossentropy(from_logits, ignore_class, reduction, axis): not the
    # (from_logits, label_smoothing, axis, reduction) of the other two.
    x = RNG.normal(size=(4, 3))
    y = np.array([0, 2, 1, 2])
    ref = keras.losses.SparseCategoricalCrossentropy(True, 2, "sum", -1)(y, x).numpy()
    v = ctf.keras.losses.SparseCategoricalCrossentropy(True, 2, "sum", -1)(y, x)
    np.testing.assert_allclose(v, ref, rtol=1e-6)
    with pytest.raises(TypeError, match="label_smoothing"):
        keras.losses.SparseCategoricalCrossentropy(label_smoothing=0.1)
    with pytest.raises(TypeError, match="label_smoothing"):
        ctf.keras.losses.SparseCategoricalCrossentropy(label_smoothing=0.1)  # type: ignore[call-arg]


def test_invalid_reduction(keras):
    with pytest.raises(ValueError, match="Invalid value for argument `reduction`"):
        keras.losses.MeanSquaredError(reduction="bogus")
    msg = (
        r"^Invalid value for argument `reduction`. Expected one of \{'sum_over_batch_size', "
        r"'sum', 'mean', 'mean_with_sample_weight', 'none', None\}. Received: reduction=bogus$"
    )
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.MeanSquaredError(reduction="bogus")


def test_empty_batch_is_not_reduced(keras):
    y, p = np.zeros((0, 3)), np.zeros((0, 3))
    ref = keras.losses.MeanSquaredError()(y, p).numpy()
    v = ctf.keras.losses.MeanSquaredError()(y, p)
    assert v.shape == ref.shape == (0,)


def test_keras_docstring_examples():
    # The numbers printed in Keras 3's own docstrings (rounded there).
    y_true, y_pred = [[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
    cce = ctf.keras.losses.CategoricalCrossentropy()
    assert float(cce(y_true, y_pred)) == pytest.approx(1.177, abs=5e-4)
    assert float(cce(y_true, y_pred, sample_weight=np.array([0.3, 0.7]))) == pytest.approx(
        0.814, abs=5e-4
    )
    cce = ctf.keras.losses.CategoricalCrossentropy(reduction="sum")
    assert float(cce(y_true, y_pred)) == pytest.approx(2.354, abs=5e-4)
    cce = ctf.keras.losses.CategoricalCrossentropy(reduction=None)
    np.testing.assert_allclose(cce(y_true, y_pred), [0.0513, 2.303], atol=5e-4)
    scce = ctf.keras.losses.SparseCategoricalCrossentropy()
    assert float(scce(np.array([1, 2]), y_pred)) == pytest.approx(1.177, abs=5e-4)
    bce = ctf.keras.losses.BinaryCrossentropy(from_logits=True)
    y_true, y_pred = [0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8]
    assert float(bce(y_true, y_pred)) == pytest.approx(0.8654, abs=2e-4)
    y_true, y_pred = [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]]
    assert float(bce(y_true, y_pred, sample_weight=[0.8, 0.2])) == pytest.approx(0.243, abs=1e-3)
    bce = ctf.keras.losses.BinaryCrossentropy(from_logits=True, reduction="sum")
    assert float(bce(y_true, y_pred)) == pytest.approx(1.730, abs=1e-3)
    bce = ctf.keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)
    np.testing.assert_allclose(bce(y_true, y_pred), [0.235, 1.496], atol=1e-3)


# --------------------------------------------------------------------------- kinds


def test_jax_jit_and_grad(tf):
    jax = pytest.importorskip("jax")
    x = RNG.normal(size=(4, 3))
    y = np.array([0, 2, -1, 1])
    p = softmax_rows(x)
    loss = ctf.keras.losses.SparseCategoricalCrossentropy(ignore_class=-1)
    ref = tensorflow()[1].losses.SparseCategoricalCrossentropy(ignore_class=-1)
    _, g_ref = tf_value_and_grad(tf, lambda a: ref(y, a), p.astype(np.float32))
    v = jax.jit(lambda a: loss(y, a))(jax.numpy.asarray(p))
    g = jax.grad(lambda a: loss(y, a))(jax.numpy.asarray(p))
    np.testing.assert_allclose(float(v), float(ref(y, p)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g), g_ref, rtol=1e-5, atol=1e-7)


def test_jax_jit_categorical_crossentropy_on_probabilities(keras):
    # The clip bound is rounded to y_pred's dtype without reading a traced value.
    jax = pytest.importorskip("jax")
    y = np.eye(3)[[0, 2]].astype(np.float32)
    p = np.array([[0.2, 0.3, 0.5], [0.0, 0.25, 0.25]], dtype=np.float32)
    ref = keras.losses.categorical_crossentropy(y, p).numpy()
    for fn in (
        lambda a: ctf.keras.losses.categorical_crossentropy(y, a),
        lambda a: ctf.keras.losses.CategoricalCrossentropy(reduction=None)(y, a),
    ):
        v = jax.jit(fn)(jax.numpy.asarray(p))
        np.testing.assert_allclose(np.asarray(v), ref, rtol=1e-6)


@pytest.mark.slow
def test_runs_without_torch(tf):
    # Without torch the values are still checked against TensorFlow's; only
    # the torch-autograd half of `check` is left out (a fresh interpreter in
    # which `import torch` fails).
    import subprocess
    import sys
    from pathlib import Path

    test = "tests/test_compat_tf.py::test_sigmoid_cross_entropy_with_logits"
    # A finder that refuses torch, as if it were not installed (None in
    # sys.modules would not do: array-api-compat looks torch up there).
    code = f"""
import sys

import pytest


class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {{name!r}}")


sys.meta_path.insert(0, NoTorch())
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-rs", {test!r}]))
"""
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout and "skipped" not in run.stdout, run.stdout


def test_kind_in_is_kind_out():
    pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    x = RNG.normal(size=(3, 4))
    y = np.array([0, 3, 1])
    fns = [
        lambda a: ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=a),
        lambda a: ctf.keras.losses.sparse_categorical_crossentropy(y, a, from_logits=True),
        lambda a: ctf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, a),
    ]
    for fn in fns:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            v_np, v_t, v_j = fn(x), fn(torch.tensor(x)), fn(jax.numpy.asarray(x))
        assert isinstance(v_np, np.ndarray) or np.isscalar(v_np)
        assert isinstance(v_t, torch.Tensor)
        assert isinstance(v_j, jax.Array)
        np.testing.assert_allclose(v_t.numpy(), v_np, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(v_j), v_np, rtol=1e-12)


def test_array_api_strict_on_another_device():
    xs = pytest.importorskip("array_api_strict")
    d = xs.Device("device1")
    x, p = RNG.normal(size=(4, 3)), softmax_rows(RNG.normal(size=(4, 3)))
    y, t = np.array([0, 2, -1, 1]), np.round(RNG.random(size=(4, 3)))
    losses = ctf.keras.losses
    calls = [
        lambda f: ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=f(abs(y)), logits=f(x)),
        lambda f: ctf.nn.weighted_cross_entropy_with_logits(
            labels=f(t), logits=f(x), pos_weight=2.0
        ),
        lambda f: losses.CategoricalCrossentropy(label_smoothing=0.1)(f(t), f(p)),
        lambda f: losses.SparseCategoricalCrossentropy(ignore_class=-1)(f(y), f(p), f(np.ones(4))),
        lambda f: losses.BinaryCrossentropy(reduction="mean_with_sample_weight")(
            f(t), f(p), f(np.ones((4, 1)))
        ),
        lambda f: losses.MeanAbsoluteError(reduction=None)(f(t), f(p)),
    ]
    for i, call in enumerate(calls):
        ref = call(lambda a: a)
        v = call(lambda a: xs.asarray(a, device=d))
        assert v.device == d, i
        back = np.asarray(xs.asarray(v, device=xs.Device("CPU_DEVICE")))
        np.testing.assert_allclose(back, ref, rtol=1e-6, err_msg=str(i))


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((3, 1), (3, 3)), "must have the same shape. Received: target.shape=(3, 1), "),
        (((3, 3), (3, 1)), "must have the same shape. Received: target.shape=(3, 3), "),
        (((3,), (3, 1)), "must have the same rank (ndim). Received: target.shape=(3,), "),
        (((2, 4), (2, 3)), "must have the same shape. Received: target.shape=(2, 4), "),
    ],
    ids=["n1-vs-nc", "nc-vs-n1", "rank", "classes"],
)
@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_keras_functions_refuse_mismatched_shapes(keras, shapes, message, name, from_logits):
    # Keras 3's binary_crossentropy / categorical_crossentropy take y_true of
    # y_pred's shape only; a (3, 1) y_true against (3, 3) was broadcast silently.
    y = np.ones(shapes[0], dtype=np.float32)
    p = np.full(shapes[1], 0.5, dtype=np.float32)
    kwargs = {"from_logits": from_logits, "label_smoothing": 0.1}
    msg = f"^{re.escape(f'Arguments `target` and `output` {message}output.shape={shapes[1]}')}$"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # categorical's one-class warning
        with pytest.raises(ValueError, match=re.escape(message)):
            getattr(keras.losses, name)(y, p, **kwargs)
        with pytest.raises(ValueError, match=msg):
            getattr(ctf.keras.losses, name)(y, p, **kwargs)


@pytest.mark.parametrize("name", ["BinaryCrossentropy", "CategoricalCrossentropy"])
def test_keras_classes_refuse_what_squeezing_does_not_fix(keras, name):
    # The example: BinaryCrossentropy()(y_true (3, 1), y_pred (3, 3))
    # returned 1.2654; Keras raises.  A rank difference of one trailing size-1
    # axis is still squeezed or expanded away, as in Keras.
    y, p = np.ones((3, 1), dtype=np.float32), np.full((3, 3), 0.5, dtype=np.float32)
    with pytest.raises(ValueError, match="must have the same shape"):
        getattr(keras.losses, name)()(y, p)
    msg = (
        r"^Arguments `target` and `output` must have the same shape\. "
        r"Received: target\.shape=\(3, 1\), output\.shape=\(3, 3\)$"
    )
    with pytest.raises(ValueError, match=msg):
        getattr(ctf.keras.losses, name)()(y, p)
    ok_y, ok_p = np.array([0.0, 1.0, 1.0]), np.array([[0.2], [0.7], [0.9]])
    if name == "BinaryCrossentropy":
        ref = keras.losses.BinaryCrossentropy()(ok_y, ok_p).numpy()
        np.testing.assert_allclose(ctf.keras.losses.BinaryCrossentropy()(ok_y, ok_p), ref, 1e-6)


def test_keras_categorical_needs_rank_1(keras):
    # Keras fails deep inside (IndexError); the adapter gives Keras's own rule.
    with pytest.raises(IndexError):
        keras.losses.categorical_crossentropy(np.float32(1), np.float32(0.5))
    msg = r"^Arguments `target` and `output` must be at least rank 1\. Received: target\.shape=\(\)"
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.categorical_crossentropy(np.float32(1), np.float32(0.5))


@pytest.mark.parametrize(
    ("y", "p_shape", "message"),
    [
        (
            np.array([0, 1, 2]),
            (2, 3),
            "Arguments `target` and `output` must have the same shape up until the last "
            "dimension: target.shape=(3,), output.shape=(2, 3)",
        ),
        (
            np.array([[[0]], [[1]]]),
            (2, 3),
            "Argument `output` must have rank (ndim) `target.ndim - 1`. Received: "
            "target.shape=(2, 1, 1), output.shape=(2, 3)",
        ),
    ],
    ids=["shape", "rank"],
)
def test_keras_sparse_shape_messages(keras, y, p_shape, message):
    p = np.full(p_shape, 1 / 3, dtype=np.float32)
    with pytest.raises(ValueError, match=re.escape(message)):
        keras.losses.sparse_categorical_crossentropy(y, p)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ctf.keras.losses.sparse_categorical_crossentropy(y, p)
    # The class squeezes a trailing size-1 axis of y_true first, as Keras's.
    try:
        ref = keras.losses.SparseCategoricalCrossentropy()(y, p).numpy()
    except ValueError as error:
        with pytest.raises(ValueError, match=f"^{re.escape(str(error))}$"):
            ctf.keras.losses.SparseCategoricalCrossentropy()(y, p)
    else:
        v = ctf.keras.losses.SparseCategoricalCrossentropy()(y, p)
        np.testing.assert_allclose(v, ref, rtol=1e-6)


def test_keras_sparse_scalar_prediction(keras):
    with pytest.raises(IndexError):  # Keras fails deep inside
        keras.losses.sparse_categorical_crossentropy(np.array(0), np.float32(1))
    msg = r"^Argument `output` must be at least rank 1\. Received: output\.shape=\(\)$"
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.sparse_categorical_crossentropy(np.array(0), np.float32(1))


@pytest.mark.parametrize("name", ["sigmoid_cross_entropy_with_logits", "weighted"])
def test_tf_nn_sigmoid_shape_errors_name_labels_and_logits(tf, name):
    x, z = np.zeros((2, 3), np.float32), np.ones((2, 1), np.float32)
    extra = {"pos_weight": 2.0} if name == "weighted" else {}
    fn = "weighted_cross_entropy_with_logits" if name == "weighted" else name
    message = "`logits` and `labels` must have the same shape, received ((2, 3) vs (2, 1))."
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(tf.nn, fn)(labels=z, logits=x, **extra)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        getattr(ctf.nn, fn)(labels=z, logits=x, **extra)


def test_tf_nn_sparse_shape_errors_name_labels_and_logits(tf):
    x = np.zeros((2, 3), np.float32)
    for labels, message in [
        (
            np.array([0, 1, 2]),
            "`labels.shape` must equal `logits.shape` except for the last dimension. "
            "Received: labels.shape=(3,) and logits.shape=(2, 3)",
        ),
        (
            np.array([[0], [1]]),
            "`labels.shape.rank` must equal `logits.shape.rank - 1`. Received: "
            "labels.shape=(2, 1) of rank 2 and logits.shape=(2, 3) of rank 2",
        ),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x)
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x)
    with pytest.raises(ValueError, match="`logits` cannot be a scalar"):
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=np.array(0), logits=np.float32(1))
    with pytest.raises(ValueError, match=r"^`logits` cannot be a scalar; got a 0-d array$"):
        ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=np.array(0), logits=np.float32(1))


@pytest.mark.parametrize(
    ("labels_shape", "logits_shape", "axis"),
    [
        ((1, 4), (3, 4), -1),
        ((4,), (3, 4), -1),
        ((3, 1), (3, 4), -1),
        ((1, 1, 4), (2, 3, 4), -1),
        ((4,), (2, 3, 4), -1),
        ((1, 3), (2, 3), 0),
        ((2, 1), (2, 3), 0),
    ],
    ids=str,
)
def test_tf_nn_softmax_labels_broadcast_as_tf(tf, labels_shape, logits_shape, axis):
    # TensorFlow flattens labels and logits to rows of classes and broadcasts
    # those: one row of labels serves every row of the logits, one column every
    # class.  Rows of labels sum to 1 where they span the classes; a column does
    # not, and TF's logits gradient is then softmax - t (see the unnormalised-
    # labels test), so only values are compared there.
    t = softmax_rows(RNG.normal(size=labels_shape), axis)
    x = RNG.normal(size=logits_shape)
    spans = t.shape[axis] == x.shape[axis]
    check(
        tf,
        lambda a: ctf.nn.softmax_cross_entropy_with_logits(labels=t, logits=a, axis=axis),
        lambda a: tf.nn.softmax_cross_entropy_with_logits(labels=t, logits=a, axis=axis),
        x,
        grad=spans,
    )


def test_tf_nn_softmax_labels_that_do_not_broadcast(tf):
    t, x = RNG.random((2, 1, 3)), RNG.normal(size=(2, 2, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be broadcastable"):
        tf.nn.softmax_cross_entropy_with_logits(labels=t, logits=x)
    msg = (
        r"^`labels` must broadcast against `logits` as TensorFlow flattens them to rows of "
        r"classes: logits of shape \(2, 2, 3\) are \[4, 3\], labels of shape \(2, 1, 3\) are "
        r"\[2, 3\]$"
    )
    with pytest.raises(ValueError, match=msg):
        ctf.nn.softmax_cross_entropy_with_logits(labels=t, logits=x)
    msg = r"^`labels` must broadcast against `logits` .* labels of shape \(2, 3\) are \[2, 3\]$"
    with pytest.raises(ValueError, match=msg):
        ctf.nn.softmax_cross_entropy_with_logits(labels=RNG.random((2, 3)), logits=RNG.random(4))


# --------------------------------------------------------------------- values the core refuses


def test_keras_soft_targets_of_any_value_are_kerass(keras):
    # Keras computes with y_true outside [0, 1] (the core refuses it for its
    # own losses); so does the adapter.
    y = np.array([[1.5, -0.5, 0.0], [2.0, 0.0, -1.0]])
    p = softmax_rows(RNG.normal(size=(2, 3)))
    x = RNG.normal(size=(2, 3))
    for name, pred, kwargs in [
        ("categorical_crossentropy", p, {}),
        ("categorical_crossentropy", x, {"from_logits": True}),
        ("binary_crossentropy", p, {}),
        ("binary_crossentropy", x, {"from_logits": True}),
    ]:
        ref = getattr(keras.losses, name)(y, pred, **kwargs).numpy()
        np.testing.assert_allclose(getattr(ctf.keras.losses, name)(y, pred, **kwargs), ref, 1e-12)
    sw = np.array([-1.0, 2.0])  # Keras takes a negative sample weight too
    ref = keras.losses.CategoricalCrossentropy(dtype="float64")(y, p, sw).numpy()
    v = ctf.keras.losses.CategoricalCrossentropy(dtype="float64")(y, p, sw)
    np.testing.assert_allclose(v, ref, rtol=1e-12)


def test_tf_nn_labels_and_pos_weight_of_any_value_are_tfs(tf):
    z = np.array([[1.5, -0.5, 0.0], [2.0, 0.0, -1.0]])
    x = RNG.normal(size=(2, 3))
    q = np.array([-1.0, 2.0, 0.5])
    pairs = [
        ("softmax_cross_entropy_with_logits", {}),
        ("sigmoid_cross_entropy_with_logits", {}),
        ("weighted_cross_entropy_with_logits", {"pos_weight": q}),
    ]
    for name, extra in pairs:
        ref = getattr(tf.nn, name)(labels=z, logits=x, **extra).numpy()
        v = getattr(ctf.nn, name)(labels=z, logits=x, **extra)
        np.testing.assert_allclose(v, ref, rtol=1e-12, err_msg=name)


def test_uint64_labels_name_their_value(tf):
    x = np.zeros((2, 3), np.float32)
    y = np.array([0, 2**64 - 1], dtype=np.uint64)
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)
    msg = r"^`labels` must be in \[0, 3\); got 18446744073709551615 at position \(1,\)$"
    with pytest.raises(ValueError, match=msg):
        ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)
    with pytest.raises(ValueError, match=msg):
        ctf.keras.losses.sparse_categorical_crossentropy(y, x + 1 / 3)
    ok = np.array([0, 2], dtype=np.uint64)
    ref = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ok.astype(np.int64), logits=x)
    np.testing.assert_allclose(
        ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=ok, logits=x), ref.numpy()
    )
