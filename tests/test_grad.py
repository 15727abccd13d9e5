"""value_and_grad: analytic gradients against central finite differences and autograd.

Finite differences are taken in float64 on losskit's own value, so they check
that the gradient belongs to the value; test_classification/test_regression
check the value itself against the frameworks.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

import losskit as lk
from conftest import (
    LOSS_NAMES,
    REFS,
    SPARSE,
    assert_close,
    make_case,
    ref_dense_xent,
    ref_sparse_xent,
    softmax_np,
)

REDUCTIONS = ("none", "sum", "mean")

# option sets per loss (every option of that loss appears at least once)
OPTIONS = {
    "softmax_cross_entropy": [
        {},
        {"label_smoothing": 0.3},
        {"label_smoothing": 0.1, "sample_weight": [1, 2, 0, 0.5, 3]},
    ],
    "sparse_softmax_cross_entropy": [
        {},
        {"class_weight": [1.0, 0.3, 2.0, 1.5]},
        {"ignore_index": 2},
        {
            "class_weight": [1.0, 0.3, 2.0, 1.5],
            "label_smoothing": 0.2,
            "ignore_index": 2,
            "sample_weight": [1, 2, 0.1, 0.5, 3],
        },
    ],
    "categorical_cross_entropy": [{}, {"eps": 0.0}, {"sample_weight": [1, 2, 0, 0.5, 3]}],
    "sparse_categorical_cross_entropy": [{}, {"eps": 0.0}, {"sample_weight": [1, 2, 0, 0.5, 3]}],
    "binary_cross_entropy": [{}, {"eps": 0.0}, {"sample_weight": [1, 2, 0, 0.5, 3]}],
    "sigmoid_cross_entropy": [
        {},
        {"pos_weight": 3.0},
        {"pos_weight": [0.5, 1, 2, 4]},
        {"pos_weight": 2.0, "label_smoothing": 0.2, "sample_weight": [1, 2, 0, 0.5, 3]},
    ],
    "mean_squared_error": [{}, {"sample_weight": [1, 2, 0, 0.5, 3]}],
    "mean_absolute_error": [{}, {"sample_weight": [1, 2, 0, 0.5, 3]}],
}
CASES = [
    (name, i, red) for name in LOSS_NAMES for i in range(len(OPTIONS[name])) for red in REDUCTIONS
]


def _np_opts(opts):
    return {
        k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v) for k, v in opts.items()
    }


def central_differences(f, x, h):
    """d sum(f(x)) / dx by central differences, element by element."""
    g = np.zeros_like(x)
    flat = g.reshape(-1)
    for i in range(x.size):
        xp_, xm = x.copy(), x.copy()
        xp_.reshape(-1)[i] += h
        xm.reshape(-1)[i] -= h
        flat[i] = (np.sum(f(xp_)) - np.sum(f(xm))) / (2 * h)
    return g


@pytest.mark.parametrize("name,i,reduction", CASES, ids=[f"{n}-{i}-{r}" for n, i, r in CASES])
def test_gradient_vs_finite_differences(name, i, reduction):
    rng = np.random.default_rng(100 + i)
    x, truth = make_case(name, rng, shape=(5, 4))
    if name == "sparse_softmax_cross_entropy" and "ignore_index" in OPTIONS[name][i]:
        truth[[1, 3]] = 2
    opts = dict(_np_opts(OPTIONS[name][i]), reduction=reduction)
    fn = getattr(lk, name)
    value, grad = lk.value_and_grad(fn)(x, truth, **opts)
    h = (
        1e-7
        if name
        in ("categorical_cross_entropy", "sparse_categorical_cross_entropy", "binary_cross_entropy")
        else 1e-6
    )
    with warnings.catch_warnings():
        # a probability row nudged by h no longer sums to exactly 1
        warnings.simplefilter("ignore", lk.UnnormalizedProbabilitiesWarning)
        fd = central_differences(lambda z: fn(z, truth, **opts), x, h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)
    # and against the torch-autograd reference
    exp_v, exp_g = REFS[name](x, truth, **opts)
    assert_close(value, exp_v)
    assert_close(grad, exp_g, kind="grad")


def test_none_reduction_gradient_is_that_of_the_sum():
    """Each example's gradient sits in its own row: d sum(loss_i) / d x."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3))
    y = np.array([0, 2, 1, 2])
    _, g = lk.value_and_grad(lk.sparse_softmax_cross_entropy)(x, y, reduction="none")
    # d/dz_i of loss_i = softmax(z_i) - onehot(y_i)  (derivative of -log softmax)
    np.testing.assert_allclose(g, softmax_np(x) - np.eye(3)[y], rtol=1e-12, atol=1e-15)
    _, g_sum = lk.value_and_grad(lk.sparse_softmax_cross_entropy)(x, y, reduction="sum")
    np.testing.assert_allclose(g, g_sum, rtol=1e-12, atol=1e-15)
    _, g_mean = lk.value_and_grad(lk.sparse_softmax_cross_entropy)(x, y, reduction="mean")
    np.testing.assert_allclose(g_mean, g_sum / 4, rtol=1e-12, atol=1e-15)


def test_partial_is_accepted():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 5))
    y = rng.integers(0, 5, size=6)
    loss = functools.partial(lk.sparse_softmax_cross_entropy, label_smoothing=0.1, reduction="sum")
    v, g = lk.value_and_grad(loss)(x, y)
    exp_v, exp_g = ref_sparse_xent(x, y, label_smoothing=0.1, reduction="sum")
    assert_close(v, exp_v)
    assert_close(g, exp_g, kind="grad")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_grad_out_buffer_and_in_place(dtype, sparse):
    """grad_out receives the gradient; it may be the logits array itself."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 7)).astype(dtype)
    if sparse:
        truth, fn, ref = (
            rng.integers(0, 7, size=64),
            lk.sparse_softmax_cross_entropy,
            ref_sparse_xent,
        )
    else:
        truth, fn, ref = (
            softmax_np(rng.normal(size=(64, 7))).astype(dtype),
            lk.softmax_cross_entropy,
            ref_dense_xent,
        )
    exp_v, exp_g = ref(x.astype(np.float64), truth, label_smoothing=0.1)
    buf = np.full_like(x, np.nan)
    v, g = lk.value_and_grad(fn)(x, truth, label_smoothing=0.1, grad_out=buf)
    assert_close(v, exp_v, dtype)
    assert_close(buf, exp_g, dtype, kind="grad")
    assert_close(g, exp_g, dtype, kind="grad")
    x2 = x.copy()
    v, g = lk.value_and_grad(fn)(x2, truth, label_smoothing=0.1, grad_out=x2)
    assert_close(v, exp_v, dtype)
    assert_close(x2, exp_g, dtype, kind="grad")
    assert_close(g, exp_g, dtype, kind="grad")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["sparse_softmax_cross_entropy", "softmax_cross_entropy"])
def test_large_batch_default_path_equals_portable_and_torch(dtype, name):
    """A batch large enough for the fast NumPy path: same numbers as the portable path."""
    rng = np.random.default_rng(6)
    n, c = 4096, 37
    x = (rng.normal(size=(n, c)) * 3).astype(dtype)
    if name == "sparse_softmax_cross_entropy":
        truth = rng.integers(0, c, size=n)
        truth[::17] = -1
        opts = dict(
            class_weight=rng.uniform(0.5, 2, size=c).astype(dtype),
            ignore_index=-1,
            label_smoothing=0.05,
        )
    else:
        truth = softmax_np(rng.normal(size=(n, c))).astype(dtype)
        opts = dict(label_smoothing=0.05)
    fn = getattr(lk, name)
    v_fast, g_fast = lk.value_and_grad(fn)(x, truth, **opts)
    with lk.portable():
        v_port, g_port = lk.value_and_grad(fn)(x, truth, **opts)
    exp_v, exp_g = REFS[name](x.astype(np.float64), truth, **opts)
    for v, g in ((v_fast, g_fast), (v_port, g_port)):
        assert_close(v, exp_v, dtype)
        assert_close(g, exp_g, dtype, kind="grad")


@pytest.mark.parametrize("name", [n for n in LOSS_NAMES if n not in SPARSE])
def test_value_and_grad_on_torch_and_jax_matches_autograd(autograd_xp, name):
    """The analytic gradient on torch/jax input equals the framework's own autograd."""
    xp = autograd_xp
    rng = np.random.default_rng(8)
    x, t = make_case(name, rng, shape=(3, 4))
    fn = getattr(lk, name)
    xb, tb = xp.asarray(x), xp.asarray(t)
    v, g = lk.value_and_grad(fn)(xb, tb)
    v_ag, g_ag = xp.autograd(fn, xb, tb)
    assert_close(xp.to_numpy(v), xp.to_numpy(v_ag))
    assert_close(xp.to_numpy(g), xp.to_numpy(g_ag), kind="grad")


# --------------------------------------------------------------------------
# the NumPy fast path sees the same inputs users pass: options, strides, extremes
# --------------------------------------------------------------------------

BIG_N, BIG_C = 4096, 37


def _both_paths(fn, x, truth, **opts):
    out = lk.value_and_grad(fn)(x, truth, **opts)
    with lk.portable():
        port = lk.value_and_grad(fn)(x, truth, **opts)
    return out, port


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["F-order", "strided", "axis0"])
def test_large_batch_any_layout(dtype, layout):
    rng = np.random.default_rng(13)
    base = (rng.normal(size=(BIG_N, 2 * BIG_C)) * 3).astype(dtype)
    y = rng.integers(0, BIG_C, size=BIG_N)
    sw = rng.uniform(0, 2, size=BIG_N).astype(dtype)
    if layout == "F-order":
        x, axis = np.asfortranarray(base[:, :BIG_C]), -1
    elif layout == "strided":
        x, axis = base[:, ::2][:, :BIG_C], -1
    else:
        x, axis = np.ascontiguousarray(base[:, :BIG_C].T), 0
    opts = dict(
        axis=axis,
        label_smoothing=0.1,
        sample_weight=sw,
        class_weight=np.linspace(0.5, 1.5, BIG_C).astype(dtype),
    )
    exp_v, exp_g = ref_sparse_xent(x.astype(np.float64), y, **opts)
    for v, g in _both_paths(lk.sparse_softmax_cross_entropy, x, y, **opts):
        assert_close(v, exp_v, dtype)
        assert_close(g, exp_g, dtype, kind="grad")
    t = softmax_np(rng.normal(size=x.shape), axis=axis).astype(dtype)
    opts = dict(axis=axis, label_smoothing=0.1, sample_weight=sw)
    exp_v, exp_g = ref_dense_xent(x.astype(np.float64), t, **opts)
    for v, g in _both_paths(lk.softmax_cross_entropy, x, t, **opts):
        assert_close(v, exp_v, dtype)
        assert_close(g, exp_g, dtype, kind="grad")


def test_large_batch_all_ignored_and_extremes_float32():
    rng = np.random.default_rng(14)
    x = (rng.normal(size=(BIG_N, BIG_C)) * 3).astype(np.float32)
    y = np.full(BIG_N, -1)
    for v, g in _both_paths(
        lk.sparse_softmax_cross_entropy, x, y, ignore_index=-1, label_smoothing=0.1
    ):
        assert v == 0.0
        assert not np.any(g)
    # rows of ±3e38 and ±1e4 among ordinary ones; labels where the loss is representable
    x[::7, 0], x[::7, 1] = 3e38, -3e38
    x[3::7, 2], x[3::7, 3] = 1e4, -1e4
    y = rng.integers(0, BIG_C, size=BIG_N)
    y[::7] = 0
    y[3::7] = 2
    exp_v, exp_g = ref_sparse_xent(x.astype(np.float64), y, reduction="none")
    for v, g in _both_paths(lk.sparse_softmax_cross_entropy, x, y, reduction="none"):
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
        np.testing.assert_allclose(v, exp_v, rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(g, exp_g, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    "name",
    [
        "sigmoid_cross_entropy",
        "binary_cross_entropy",
        "mean_squared_error",
        "mean_absolute_error",
        "categorical_cross_entropy",
        "sparse_categorical_cross_entropy",
    ],
)
def test_grad_out_every_loss(name):
    """grad_out is accepted by every loss's value_and_grad and receives the gradient."""
    x, truth = make_case(name, np.random.default_rng(15), shape=(6, 5))
    exp_v, exp_g = REFS[name](x, truth)
    buf = np.full_like(x, np.nan)
    v, g = lk.value_and_grad(getattr(lk, name))(x, truth, grad_out=buf)
    assert_close(v, exp_v)
    assert_close(buf, exp_g, kind="grad")
    assert_close(g, exp_g, kind="grad")
