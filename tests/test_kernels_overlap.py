"""Output buffers that overlap an input, on every kernel and loop shape.

The output (``out`` of the activations, ``grad_out`` of the cross-entropies)
may be the logits themselves; an output that partly overlaps the logits is
refused with one message on every path (before the fix the tiled loop and
the dense kernel wrote rows they had not read yet and returned wrong numbers).
Any other input that shares memory with the output (targets, labels, class
weights, row coefficients) gives the same answer as with separate arrays.
Expected numbers come from the same call on separate arrays, which
tests/test_kernels.py checks against a float64 reference and scipy.
"""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk
from losskit.kernels import dispatch

pytest.importorskip("numba")

PARTLY = "the output buffer partly overlaps the input; pass the input itself or a separate array"
SHAPES = {"tiled": 12, "rowwise": 300}  # C <= SMALL_C takes the tiled loop


def rng_logits(n, c, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c)) * 3


def sparse(x, g, e):
    y = np.arange(x.shape[0]) % x.shape[1]
    coef = np.linspace(0.5, 1.5, x.shape[0])
    return dispatch.sparse_xent_rows(x, y, None, None, e, coef, g)


def dense(x, g, e):
    t = np.random.default_rng(1).dirichlet(np.ones(x.shape[1]), x.shape[0])
    return dispatch.dense_xent_rows(x, t, e, np.linspace(0.5, 1.5, x.shape[0]), g)


CALLS = {
    "softmax": lambda x, out, e: dispatch.softmax_rows(x, out),
    "log_softmax": lambda x, out, e: dispatch.log_softmax_rows(x, out),
    "sparse": sparse,
    "dense": dense,
}


@pytest.fixture(params=list(SHAPES))
def c(request):
    return SHAPES[request.param]


@pytest.mark.parametrize("kernel", list(CALLS))
@pytest.mark.parametrize("e", [0.0, 0.1], ids=["plain", "smoothed"])
@pytest.mark.parametrize("shift", [1, -1, 5])  # rows: output ahead of, behind the input; elements
def test_partial_overlap_is_refused_on_every_path(kernel, c, e, shift):
    n = 301
    buf = rng_logits(n + 2, c)
    before = buf.copy()
    if shift == 5:  # the same rows, shifted by five elements within them
        flat = buf.reshape(-1)
        x, out = flat[: n * c].reshape(n, c), flat[5 : 5 + n * c].reshape(n, c)
    else:
        x, out = (buf[:n], buf[1 : n + 1]) if shift == 1 else (buf[1 : n + 1], buf[:n])
    with pytest.raises(ValueError, match=f"^{PARTLY}$"):
        CALLS[kernel](x, out, e)
    np.testing.assert_array_equal(buf, before)  # refused before anything was written


@pytest.mark.parametrize("kernel", list(CALLS))
@pytest.mark.parametrize("e", [0.0, 0.1], ids=["plain", "smoothed"])
def test_in_place_equals_a_separate_output(kernel, c, e):
    x = rng_logits(301, c)
    out = np.empty_like(x)
    expected = CALLS[kernel](x, out, e)
    inplace = x.copy()
    got = CALLS[kernel](inplace, inplace, e)
    np.testing.assert_allclose(inplace, out, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("where", ["same", "ahead", "behind"])
def test_dense_targets_sharing_the_gradient_buffer(c, where):
    n = 301
    x = rng_logits(n, c)
    coef = np.linspace(0.5, 1.5, n)
    t = np.random.default_rng(1).dirichlet(np.ones(c), n + 1)
    targets, grad = {
        "same": (t[1:], t[1:]),
        "ahead": (t[:-1], t[1:]),
        "behind": (t[1:], t[:-1]),
    }[where]
    separate_t, separate_g = targets.copy(), np.empty_like(x)
    expected = dispatch.dense_xent_rows(x, separate_t, 0.1, coef, separate_g)
    np.testing.assert_array_equal(dispatch.dense_xent_rows(x, targets, 0.1, coef, grad), expected)
    np.testing.assert_array_equal(grad, separate_g)


def test_sparse_weights_and_coefficients_sharing_the_gradient_buffer(c):
    n = 301
    x = rng_logits(n, c)
    y = np.arange(n) % c
    w_and_coef = np.linspace(0.5, 2.0, n * c).reshape(n, c)  # the gradient buffer
    w, coef = w_and_coef[0].copy(), w_and_coef[:, 1].copy()
    g = np.empty_like(x)
    expected = dispatch.sparse_xent_rows(x, y, w, None, 0.1, coef, g)
    buf = w_and_coef.copy()
    got = dispatch.sparse_xent_rows(x, y, buf[0], None, 0.1, buf[:, 1], buf)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(buf, g)


@pytest.mark.parametrize("loss", ["sparse", "dense"])
def test_public_value_and_grad_refuses_a_shifted_grad_out(c, loss):
    # The example of issue 7: the gradient written one row ahead of the logits.
    buf = np.zeros((301, c), np.float32)
    y = np.arange(300) % c
    if loss == "sparse":
        fn, truth = lk.sparse_softmax_cross_entropy, y
    else:
        fn, truth = lk.softmax_cross_entropy, np.eye(c, dtype=np.float32)[y]
    assert dispatch.use_kernel(buf[:-1])
    with pytest.raises(ValueError, match=f"^{PARTLY}$"):
        lk.value_and_grad(fn)(buf[:-1], truth, grad_out=buf[1:])
    # The portable path computes first and then writes grad_out: the right answer.
    with lk.portable():
        value, grad = lk.value_and_grad(fn)(buf[:-1], truth, grad_out=buf[1:])
    np.testing.assert_allclose(value, np.log(c), rtol=1e-6)  # all-zero logits: log C
    expected = (np.full((300, c), 1 / c) - np.eye(c)[y]) / 300  # (softmax - onehot) / N
    np.testing.assert_allclose(grad, expected, atol=1e-7)
