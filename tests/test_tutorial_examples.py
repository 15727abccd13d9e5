"""The worked examples tutorials and reference docs use, with their published numbers.

Each test names its source.  Where the source's number is for a different
convention than losskit's core (Keras divides a sample-weighted sum by the
batch size; losskit's `mean` is the weighted mean), the core's number is
derived next to it and the relation to the published number is checked too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import run_loss


def test_tf_softmax_cross_entropy_with_logits_docstring(xp):
    # TensorFlow, tf.nn.softmax_cross_entropy_with_logits docstring
    # (tensorflow/python/ops/nn_ops.py, "Usage"):
    logits = [[4.0, 2.0, 1.0], [0.0, 5.0, 1.0]]
    labels = [[1.0, 0.0, 0.0], [0.0, 0.8, 0.2]]
    v, _ = run_loss(xp, "softmax_cross_entropy", logits, labels, "float32", reduction="none")
    np.testing.assert_allclose(v, [0.16984604, 0.82474494], rtol=1e-6)


def test_tf_sparse_softmax_cross_entropy_with_logits_docstring(xp):
    # TensorFlow, tf.nn.sparse_softmax_cross_entropy_with_logits docstring (nn_ops.py):
    logits = [[2.0, -5.0, 0.5, -0.1], [0.0, 0.0, 1.9, 1.4], [-100.0, 100.0, -100.0, -100.0]]
    labels = np.array([0, 3, 1])
    v, _ = run_loss(xp, "sparse_softmax_cross_entropy", logits, labels, "float32", reduction="none")
    np.testing.assert_allclose(v, [0.29750752, 1.1448325, 0.0], rtol=1e-6, atol=1e-7)


def test_tf_sigmoid_cross_entropy_with_logits_docstring(xp):
    # TensorFlow, tf.nn.sigmoid_cross_entropy_with_logits docstring (nn_impl.py):
    logits = [1.0, -1.0, 0.0, 1.0, -1.0, 0.0, 0.0]
    labels = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5]
    v, _ = run_loss(xp, "sigmoid_cross_entropy", logits, labels, "float32", reduction="none")
    np.testing.assert_allclose(
        v, [1.3132617, 0.3132617, 0.6931472, 0.3132617, 1.3132617, 0.6931472, 0.6931472], rtol=1e-6
    )


def test_tf_weighted_cross_entropy_with_logits_docstring(xp):
    # TensorFlow, tf.nn.weighted_cross_entropy_with_logits docstring (nn_impl.py):
    labels = [1.0, 0.5, 0.0]
    logits = [1.5, -0.1, -10.0]
    v, _ = run_loss(
        xp, "sigmoid_cross_entropy", logits, labels, "float32", pos_weight=1.5, reduction="none"
    )
    # TF's last element, 4.5776367e-05, is float32 cancellation in -10 + (10 + 4.54e-5);
    # the exact value is log1p(exp(-10)) = 4.5398899e-05 (derived), which a stable
    # float32 computation may give instead: accept either (they differ by 0.8%).
    np.testing.assert_allclose(v[:2], [3.0211994e-01, 8.8049585e-01], rtol=1e-5)
    np.testing.assert_allclose(v[2], math.log1p(math.exp(-10.0)), rtol=1e-2)
    v, _ = run_loss(
        xp, "sigmoid_cross_entropy", logits, labels, "float32", pos_weight=0.5, reduction="none"
    )
    np.testing.assert_allclose(v[:2], [1.00706644e-01, 5.08297503e-01], rtol=1e-5)
    np.testing.assert_allclose(v[2], math.log1p(math.exp(-10.0)), rtol=1e-2)


def test_keras_categorical_crossentropy_docstring(xp):
    # Keras 3, keras.losses.CategoricalCrossentropy docstring (keras/src/losses/losses.py):
    # y_true = [[0, 1, 0], [0, 0, 1]], y_pred = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
    # -> 1.177 (mean), 2.354 (sum), [0.0513, 2.303] (none), 0.814 with sample_weight [0.3, 0.7].
    y_true = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    y_pred = [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]
    v, _ = run_loss(xp, "categorical_cross_entropy", y_pred, y_true, reduction="mean")
    np.testing.assert_allclose(v, 1.177, atol=5e-4)
    v, _ = run_loss(xp, "categorical_cross_entropy", y_pred, y_true, reduction="sum")
    np.testing.assert_allclose(v, 2.354, atol=5e-4)
    v, _ = run_loss(xp, "categorical_cross_entropy", y_pred, y_true, reduction="none")
    np.testing.assert_allclose(v, [0.0513, 2.303], atol=5e-4)
    # Keras's 0.814 is (0.3*0.0513 + 0.7*2.3026) / 2 (batch size).  The core's mean is
    # the weighted mean: 1.6272 / (0.3 + 0.7) = 1.6272 (derived).
    sw = [0.3, 0.7]
    v, _ = run_loss(
        xp, "categorical_cross_entropy", y_pred, y_true, sample_weight=sw, reduction="sum"
    )
    np.testing.assert_allclose(v / 2, 0.814, atol=5e-4)
    v, _ = run_loss(xp, "categorical_cross_entropy", y_pred, y_true, sample_weight=sw)
    np.testing.assert_allclose(v, 0.3 * -math.log(0.95) + 0.7 * -math.log(0.1), rtol=1e-9)


def test_keras_sparse_categorical_crossentropy_docstring(xp):
    # Keras 3, keras.losses.SparseCategoricalCrossentropy docstring:
    # y_true = [1, 2], y_pred = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]] -> 1.177; sum 2.354.
    y_pred = [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]
    v, _ = run_loss(xp, "sparse_categorical_cross_entropy", y_pred, np.array([1, 2]))
    np.testing.assert_allclose(v, 1.177, atol=5e-4)
    v, _ = run_loss(
        xp, "sparse_categorical_cross_entropy", y_pred, np.array([1, 2]), reduction="sum"
    )
    np.testing.assert_allclose(v, 2.354, atol=5e-4)


def test_keras_binary_crossentropy_from_logits_docstring(xp):
    # Keras 3, keras.losses.BinaryCrossentropy(from_logits=True) docstring:
    # y_true = [0, 1, 0, 0], y_pred = [-18.6, 0.51, 2.94, -12.8] -> 0.8654;
    # as (2, 2): reduction=None gives per-row means [0.235, 1.496].
    y_true = [0.0, 1.0, 0.0, 0.0]
    y_pred = [-18.6, 0.51, 2.94, -12.8]
    # (Keras prints 4 digits, truncated: derived from max(x,0) - x t + log1p(exp(-|x|)),
    # the mean of [8.358e-09, 0.4703133, 2.9915157, 2.7607688e-06] is 0.86545795.)
    v, _ = run_loss(xp, "sigmoid_cross_entropy", y_pred, y_true)
    np.testing.assert_allclose(v, 0.8654, atol=1e-4)
    np.testing.assert_allclose(v, 0.86545795, rtol=1e-7)
    v, _ = run_loss(
        xp,
        "sigmoid_cross_entropy",
        np.reshape(y_pred, (2, 2)),
        np.reshape(y_true, (2, 2)),
        reduction="none",
    )
    assert v.shape == (2, 2)  # the core keeps one value per element
    np.testing.assert_allclose(v.mean(axis=1), [0.235, 1.496], atol=5e-4)


def test_keras2_binary_crossentropy_docs(xp):
    # tf.keras.losses.BinaryCrossentropy docs (TF 2.x / Keras 2, "Standalone usage"):
    # y_true = [[0, 1], [0, 0]], y_pred = [[0.6, 0.4], [0.4, 0.6]] -> 0.815.
    # Derived: row 1: (-log 0.4 - log 0.4)/2 = 0.91629; row 2: (-log 0.6 - log 0.4)/2 = 0.71356.
    v, _ = run_loss(xp, "binary_cross_entropy", [[0.6, 0.4], [0.4, 0.6]], [[0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(v, 0.815, atol=5e-4)
    np.testing.assert_allclose(
        v, (2 * -math.log(0.4) - math.log(0.6) - math.log(0.4)) / 4, rtol=1e-6
    )


def test_keras_regression_docstrings(xp):
    # Keras 3 docstrings: MeanSquaredError: y_true [1, 0, 1], y_pred [0.9, 0.1, 0.8] -> 0.02;
    # MeanAbsoluteError: y_true [1, 0.3, 1], y_pred [1.9, 0.3, 1.8] -> 0.5666667.
    v, _ = run_loss(xp, "mean_squared_error", [0.9, 0.1, 0.8], [1.0, 0.0, 1.0], "float32")
    np.testing.assert_allclose(v, 0.02, rtol=1e-5)
    v, _ = run_loss(xp, "mean_absolute_error", [1.9, 0.3, 1.8], [1.0, 0.3, 1.0], "float32")
    np.testing.assert_allclose(v, 0.5666667, rtol=1e-6)
    # tf.keras.losses.MeanSquaredError / MeanAbsoluteError docs (Keras 2):
    # y_true [[0, 1], [0, 0]], y_pred [[1, 1], [1, 0]] -> 0.5 for both.
    for name in ("mean_squared_error", "mean_absolute_error"):
        v, _ = run_loss(xp, name, [[1.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]])
        np.testing.assert_allclose(v, 0.5, rtol=1e-12)


def test_torch_bce_with_logits_pos_weight_docs(xp):
    # PyTorch, torch.nn.BCEWithLogitsLoss docstring: target ones [10, 64], output full 1.5,
    # pos_weight ones [64] -> tensor(0.20...) = -log(sigmoid(1.5)) = log1p(exp(-1.5)).
    v, _ = run_loss(
        xp,
        "sigmoid_cross_entropy",
        np.full((10, 64), 1.5),
        np.ones((10, 64)),
        "float32",
        pos_weight=np.ones(64),
    )
    np.testing.assert_allclose(v, 0.2014133, rtol=1e-5)  # float32 mean of 640 terms
    assert 0.20 <= float(v) < 0.21


def test_sklearn_log_loss_docstring(xp):
    # scikit-learn, sklearn.metrics.log_loss docstring:
    # log_loss(["spam", "ham", "ham", "spam"], [[.1, .9], [.9, .1], [.8, .2], [.35, .65]])
    # -> 0.21616 (classes sorted: ham = 0, spam = 1).
    probs = [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]]
    v, _ = run_loss(xp, "sparse_categorical_cross_entropy", probs, np.array([1, 0, 0, 1]))
    np.testing.assert_allclose(v, 0.21616, atol=5e-6)
    v, _ = run_loss(xp, "categorical_cross_entropy", probs, np.eye(2)[[1, 0, 0, 1]])
    np.testing.assert_allclose(v, 0.21616, atol=5e-6)


def test_optax_docstring(xp):
    # optax, optax.softmax_cross_entropy(_with_integer_labels) docstrings:
    # logits [[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]], labels [0, 1] -> [0.2761 2.9518].
    logits = [[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]]
    v, _ = run_loss(xp, "sparse_softmax_cross_entropy", logits, np.array([0, 1]), reduction="none")
    np.testing.assert_allclose(v, [0.2761, 2.9518], atol=5e-5)
    v, _ = run_loss(
        xp, "softmax_cross_entropy", logits, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], reduction="none"
    )
    np.testing.assert_allclose(v, [0.2761, 2.9518], atol=5e-5)


def test_cs231n_softmax_classifier_example(xp):
    # CS231n "Linear classification" notes, softmax classifier figure: cat image scores
    # [3.2, 5.1, -1.7] (cat, car, frog), true class cat; probabilities [0.13, 0.87, 0.00].
    # The notes print L = -log10(0.13) = 0.89; with the natural log used everywhere else:
    # derived L = ln(e^3.2 + e^5.1 + e^-1.7) - 3.2 = 2.0403552.
    v, g = run_loss(xp, "sparse_softmax_cross_entropy", [[3.2, 5.1, -1.7]], np.array([0]))
    np.testing.assert_allclose(v, 2.0403552, rtol=1e-7)
    np.testing.assert_allclose(g, [[0.13 - 1, 0.87, 0.00]], atol=5e-3)
    np.testing.assert_allclose(v / math.log(10), 0.89, atol=5e-3)


def test_d2l_softmax_regression_scratch_example(xp):
    # Dive into Deep Learning, "Softmax Regression Implementation from Scratch":
    # y_hat = [[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]], y = [0, 2] -> cross_entropy = [2.3026, 0.6931].
    v, _ = run_loss(
        xp,
        "sparse_categorical_cross_entropy",
        [[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]],
        np.array([0, 2]),
        reduction="none",
    )
    np.testing.assert_allclose(v, [2.3026, 0.6931], atol=5e-5)


def test_design_quick_start(xp):
    # losskit DESIGN.md "What a user does": logits [[2, 0.5, 6], [0.1, 0, 3]] float32,
    # labels [2, 1].  Derived: row 1: ln(e^2 + e^0.5 + e^6) - 6 = 0.0221552;
    # row 2: ln(e^0.1 + 1 + e^3) - 0 = 3.0996736; mean 1.5609144.
    # Gradient (mean): (softmax - onehot) / 2.
    logits = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
    v, g = run_loss(xp, "sparse_softmax_cross_entropy", logits, np.array([2, 1]), "float32")
    np.testing.assert_allclose(v, 1.5609144, rtol=1e-6)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(g, (p - np.eye(3)[[2, 1]]) / 2, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reduction,expected", [("mean", 1.5609144), ("sum", 3.1218288)])
def test_design_quick_start_lists(reduction, expected):
    import losskit as lk

    v = lk.sparse_softmax_cross_entropy(
        [[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]], [2, 1], reduction=reduction
    )
    np.testing.assert_allclose(v, expected, rtol=1e-6)
