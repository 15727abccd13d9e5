"""The fused NumPy kernels against a float64 NumPy reference, scipy, and the portable path.

The reference below is written from the formulas in docs/INTERNALS.md with
float64 array operations, independently of the kernels' blocked online
algorithm. Both kernel loop shapes (the tiled small-C one and the row-wise
one) are forced in turn through ``dispatch.SMALL_C``.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import logsumexp as sp_logsumexp
from scipy.special import softmax as sp_softmax

import losskit as lk
from losskit.kernels import dispatch

pytest.importorskip("numba")

# --------------------------------------------------------------------------- reference


def ref_lse(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = np.max(x, axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return (m + np.log(np.sum(np.exp(x - m), axis=1, keepdims=True)))[:, 0]


def ref_gap(x: np.ndarray) -> np.ndarray:
    """lse - x as (max - x) + log(sum(exp(x - max))): no cancellation at large logits."""
    m = np.max(x, axis=1, keepdims=True)
    log_s = np.log(np.sum(np.exp(x - m), axis=1, keepdims=True))
    return (m - x) + log_s


def ref_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def ref_sparse(x, y, w=None, ignore=None, e=0.0, coef=None):
    """loss = (1-e) w[y] (lse - x[y]) + e/C sum_c w[c] (lse - x[c]);
    grad = coef ((1-e) w[y] (p - onehot) + e/C (W p - w))."""
    x = x.astype(np.float64)
    n, c = x.shape
    w = np.ones(c) if w is None else np.asarray(w, np.float64)
    coef = np.ones(n) if coef is None else np.asarray(coef, np.float64)
    keep = np.ones(n, bool) if ignore is None else y != ignore
    ys = np.where(keep, y, 0)
    rows = np.arange(n)
    gap = ref_gap(x)  # lse - x[c] >= 0
    hard = (1 - e) * w[ys]
    with np.errstate(invalid="ignore"):
        loss = hard * gap[rows, ys]
        if e:
            loss = loss + e / c * np.sum(np.where(w > 0, w * gap, 0.0), axis=1)
    loss = np.where(keep, loss, 0.0)
    p = ref_softmax(x)
    onehot = np.zeros_like(p)
    onehot[rows, ys] = 1
    grad = hard[:, None] * (p - onehot) + e / c * (w.sum() * p - w)
    grad = np.where(keep[:, None], coef[:, None] * grad, 0.0)
    return loss, grad


def ref_dense(x, t, e=0.0, coef=None):
    """t' = (1-e) t + e/C; loss = sum t' (lse - x); grad = coef (sum(t') p - t')."""
    x = x.astype(np.float64)
    n, c = x.shape
    t = (1 - e) * t.astype(np.float64) + e / c
    coef = np.ones(n) if coef is None else coef.astype(np.float64)
    gap = ref_gap(x)
    with np.errstate(invalid="ignore"):
        loss = np.sum(np.where(t != 0, t * gap, 0.0), axis=1)
    grad = coef[:, None] * (t.sum(axis=1, keepdims=True) * ref_softmax(x) - t)
    return loss, grad


# --------------------------------------------------------------------------- helpers

TOL = {np.float32: dict(rtol=3e-5, atol=3e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}
DTYPES = [np.float32, np.float64]


@pytest.fixture(params=["tiled", "rowwise"])
def loop_shape(request, monkeypatch):
    """Force each of the sparse kernel's two loop shapes."""
    monkeypatch.setattr(dispatch, "SMALL_C", 10**9 if request.param == "tiled" else 0)
    return request.param


def logits(n, c, dtype, scale=4.0, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, c)) * scale).astype(dtype)


def assert_close(actual, expected, dtype, scale=1.0):
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


SHAPES = [(0, 3), (1, 1), (7, 1), (1, 2), (7, 3), (33, 10), (130, 64), (7, 1000), (5, 4099)]


# --------------------------------------------------------------------------- primitives


def test_fast_exp_float32_within_three_ulp():
    from numba import njit

    from losskit.kernels._primitives import fexp
    from losskit.kernels._rowpass import FASTMATH

    # The kernels' fast-math flags reach fexp's instructions: check under them.
    @njit(fastmath=FASTMATH)
    def apply(x, out):
        for i in range(x.size):
            out[i] = fexp(x[i])

    x = np.concatenate([np.linspace(-87.3, 0, 400_001), np.linspace(-1, 1, 100_001)])
    x = np.concatenate([x, [0.0, -0.0, 1e-30, -1e-30, 5.0, 80.0]]).astype(np.float32)
    out = np.empty_like(x)
    apply(x, out)
    ref = np.exp(x.astype(np.float64))
    ulps = np.abs(out - ref) / np.spacing(ref.astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 3.0
    special = np.array([-np.inf, -1e4, -3e38, -88.0, -100.0, np.nan], np.float32)
    out = np.empty_like(special)
    apply(special, out)
    np.testing.assert_array_equal(out[:-1], 0.0)
    assert np.isnan(out[-1])


def test_fast_log_float32_within_one_ulp():
    from numba import njit

    from losskit.kernels._primitives import flog
    from losskit.kernels._rowpass import FASTMATH

    @njit(fastmath=FASTMATH)
    def apply(x, out):
        for i in range(x.size):
            out[i] = flog(x[i])

    x = np.concatenate([np.geomspace(1.2e-38, 3.4e38, 300_001), np.linspace(0.5, 2.0, 100_001)])
    x = x.astype(np.float32)
    out = np.empty_like(x)
    apply(x, out)
    ref = np.log(x.astype(np.float64))
    nz = ref != 0
    ulps = np.abs(out - ref)[nz] / np.spacing(np.abs(ref[nz]).astype(np.float32))
    assert ulps.max() <= 1.0
    special = np.array([0.0, np.inf, np.nan, -1.0, 1.0], np.float32)
    out = np.empty_like(special)
    apply(special, out)
    np.testing.assert_array_equal(out, [-np.inf, np.inf, np.nan, np.nan, 0.0])


# --------------------------------------------------------------------------- activations


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "c"), [*SHAPES, (2, 128256)])
def test_activation_rows_match_scipy(n, c, dtype):
    x = logits(n, c, dtype)
    assert_close(dispatch.logsumexp_rows(x), sp_logsumexp(x.astype(np.float64), axis=1), dtype)
    out = np.empty_like(x)
    assert dispatch.softmax_rows(x, out) is out
    assert_close(out, sp_softmax(x.astype(np.float64), axis=1), dtype)
    assert dispatch.log_softmax_rows(x, out) is out
    assert_close(out, sp_log_softmax(x.astype(np.float64), axis=1), dtype, scale=10)
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [7, 5000])  # tiled; several blocks per row
def test_activation_rows_in_place(dtype, c):
    x = logits(130, c, dtype)
    ref = sp_softmax(x.astype(np.float64), axis=1)
    ref_log = sp_log_softmax(x.astype(np.float64), axis=1)
    y = x.copy()
    assert dispatch.softmax_rows(y, y) is y
    assert_close(y, ref, dtype)
    y = x.copy()
    dispatch.log_softmax_rows(y, y)
    assert_close(y, ref_log, dtype, scale=10)


def test_activation_rows_extreme_logits():
    big = np.float32(3e38)
    x = np.array(
        [[big, -big, 0.0], [-big, -big, -big], [1e4, -1e4, 1e4], [-np.inf, 0.0, -np.inf]],
        np.float32,
    )
    lse = dispatch.logsumexp_rows(x)
    np.testing.assert_allclose(lse, [big, -big + np.log(3), 1e4 + np.log(2), 0.0], rtol=1e-6)
    p = dispatch.softmax_rows(x, np.empty_like(x))
    np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3] * 3, [0.5, 0, 0.5], [0, 1, 0]], atol=1e-7)
    lp = dispatch.log_softmax_rows(x, np.empty_like(x))
    assert lp[3, 0] == -np.inf and lp[3, 1] == 0.0
    np.testing.assert_allclose(lp[2], [-np.log(2), -2e4 - np.log(2), -np.log(2)], rtol=1e-6)


def test_a_block_with_a_larger_max_later_in_the_row():
    # The running sum must be rescaled when a later block raises the max.
    x = np.zeros((2, 3 * 2048 + 5), np.float32)
    x[0, -1] = 50.0
    x[1, 2049] = -30.0
    x[1, 4500] = 20.0
    ref = sp_logsumexp(x.astype(np.float64), axis=1)
    np.testing.assert_allclose(dispatch.logsumexp_rows(x), ref, rtol=1e-6)
    p = dispatch.softmax_rows(x, np.empty_like(x))
    np.testing.assert_allclose(p, sp_softmax(x.astype(np.float64), axis=1), rtol=1e-5, atol=1e-12)


# --------------------------------------------------------------------------- sparse


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "c"), SHAPES)
@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"ignore": -100},
        {"e": 0.1},
        {"weighted": True, "ignore": 2, "e": 0.25},
        {"weighted": True},
    ],
    ids=["plain", "ignore", "smooth", "all", "weighted"],
)
def test_sparse_matches_reference(n, c, dtype, opts, loop_shape):
    x = logits(n, c, dtype)
    rng = np.random.default_rng(1)
    y = rng.integers(0, c, n)
    ignore = opts.get("ignore")
    if ignore is not None and n:
        y[::3] = ignore
    w = rng.uniform(0.0, 2.0, c).astype(dtype) if opts.get("weighted") else None
    e = opts.get("e", 0.0)
    coef = rng.uniform(0.1, 1.0, n).astype(dtype)
    ref_loss, ref_grad = ref_sparse(x, y, w, ignore, e, coef)

    loss = dispatch.sparse_xent_rows(x, y, w, ignore, e, None, None)
    assert loss.dtype == dtype and loss.shape == (n,)
    assert_close(loss, ref_loss, dtype, scale=10)

    g = np.full_like(x, np.nan)
    loss2 = dispatch.sparse_xent_rows(x, y, w, ignore, e, coef, g)
    assert_close(loss2, ref_loss, dtype, scale=10)
    assert_close(g, ref_grad, dtype)

    g = x.copy()  # the gradient written over the logits themselves
    loss3 = dispatch.sparse_xent_rows(g, y, w, ignore, e, coef, g)
    assert_close(loss3, ref_loss, dtype, scale=10)
    assert_close(g, ref_grad, dtype)


@pytest.mark.parametrize("c", [32000, 128256])
def test_sparse_large_vocabulary(c):
    x = logits(3, c, np.float32, scale=3.0)
    y = np.array([0, c // 2, c - 1])
    ref_loss, ref_grad = ref_sparse(x, y)
    g = np.empty_like(x)
    loss = dispatch.sparse_xent_rows(x, y, None, None, 0.0, np.ones(3, np.float32), g)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(g, ref_grad, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("big", [1e4, 3e38])
def test_sparse_extreme_logits_float32(big, loop_shape):
    x = np.array(
        [
            [big, -big, 0.0, 1.0],
            [big, big, -big, big],
            [-big, -big, -big, -big],
            [0.0, -np.inf, 3.0, -np.inf],
            [-np.inf, -np.inf, 5.0, -np.inf],
        ],
        np.float32,
    )
    y = np.array([0, 3, 1, 2, 2])
    g = np.empty_like(x)
    loss = dispatch.sparse_xent_rows(x, y, None, None, 0.0, np.ones(5, np.float32), g)
    ref_loss, ref_grad = ref_sparse(x, y)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6, atol=1e-6)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, ref_grad, atol=1e-6)
    # A label at a hugely negative logit: the loss is the gap (finite when representable).
    loss = dispatch.sparse_xent_rows(x[:1], np.array([1]), None, None, 0.0, None, None)
    assert loss[0] == (np.inf if big == 3e38 else np.float32(2e4))


def test_sparse_extreme_logits_float64(loop_shape):
    x = np.array([[1e300, -1e300, 0.0], [-np.inf, 2.0, -np.inf], [1e4, 1e4, -1e4]])
    y = np.array([1, 1, 0])
    g = np.empty_like(x)
    loss = dispatch.sparse_xent_rows(x, y, None, None, 0.0, np.ones(3), g)
    np.testing.assert_allclose(loss, [2e300, 0.0, np.log(2)], rtol=1e-15)
    np.testing.assert_allclose(g, [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]], atol=1e-15)


# Extreme logits with label smoothing, class weights and soft targets: the
# smoothing/soft-target term sums a[c] (m - x[c]), and m - x overflows in the
# logits' dtype (3e38 - (-3e38) in float32, 1e308 - (-1e308) in float64).
BIG = {np.float32: 3e38, np.float64: 1e308}
EXTREME_TOL = {np.float32: dict(rtol=2e-6), np.float64: dict(rtol=1e-13)}
GRAD_ATOL = {np.float32: 1e-4, np.float64: 1e-12}  # the gradients are bounded by max(1, sum t')


def ref_weighted_gap(x, a):
    """sum_c a[r, c] (lse_r - x[r, c]) in float64 from half-gaps m/2 - x/2 (exact halving,
    never overflows); a[r, c] = 0 adds 0 even at x = -inf."""
    x = x.astype(np.float64)
    m = np.max(x, axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    half = m / 2 - x / 2
    with np.errstate(invalid="ignore", over="ignore"):
        log_s = np.log(np.sum(np.exp(-2 * half), axis=1, keepdims=True))  # -2 half: -inf is fine
        terms = (2 * a) * half + a * log_s
    return np.sum(np.where(a == 0, 0.0, terms), axis=1)


def as_dtype(v, dtype):
    with np.errstate(over="ignore"):
        return np.asarray(v).astype(dtype)


def extreme_logits(dtype, c, seed=0):
    """Rows of logits at +-big, big/2, 0 and ordinary values; c >= 4."""
    big = BIG[dtype]
    rng = np.random.default_rng(seed)
    x = np.zeros((6, c))
    x[0, :2] = [big, -big]
    x[1, :4] = [-big, big, big / 2, -big / 2]
    x[2] = rng.choice([big, -big, big / 4, 0.0, 1.0], c)
    x[3] = rng.standard_normal(c)
    x[3, 1] = -big
    x[4] = -big
    x[4, 2] = big
    x[5, :3] = [big, big, -big]
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_smoothed_losses_at_extreme_logits_hand_values(dtype, loop_shape):
    # The code review's repro: e/C (0 + 2 big + big + big) and 0.1 (2 big), both representable.
    big = BIG[dtype]
    x = np.zeros((3, 4), dtype)
    x[:, 0], x[:, 1] = big, -big
    y = np.zeros(3, np.int64)
    t = np.zeros_like(x)
    t[:, 0], t[:, 1] = 0.9, 0.1
    coef = np.ones(3, dtype)
    for grad in (None, "separate", "inplace"):  # no gradient; into a buffer; over the logits
        xx = x.copy()
        g = None if grad is None else xx if grad == "inplace" else np.empty_like(x)
        loss = dispatch.sparse_xent_rows(xx, y, None, None, 0.1, coef, g)
        np.testing.assert_allclose(loss, 0.1 / 4 * 4 * big, **EXTREME_TOL[dtype])
        xx = x.copy()
        g = None if grad is None else xx if grad == "inplace" else np.empty_like(x)
        loss = dispatch.dense_xent_rows(xx, t, 0.0, coef, g)
        np.testing.assert_allclose(loss, 0.1 * 2 * big, **EXTREME_TOL[dtype])
    # A label at -big with a small weight: w[y] (2 big) is representable.
    w = np.array([1.0, 0.25, 1.0, 1.0], dtype)
    loss = dispatch.sparse_xent_rows(x, np.ones(3, np.int64), w, None, 0.0, None, None)
    np.testing.assert_allclose(loss, 0.25 * 2 * big, **EXTREME_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [4, 300, 2500])  # tiled-sized; row-wise-sized; two row blocks
@pytest.mark.parametrize("e", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_smoothed_extreme_logits_match_reference(dtype, c, e, weighted, loop_shape):
    x = extreme_logits(dtype, c)
    n = x.shape[0]
    rng = np.random.default_rng(7)
    y = np.array([0, 1, int(np.argmax(x[2])), 3, 2, 0])  # labels where w[y] (lse - x[y]) fits
    w = rng.uniform(0.0, 1.0, c).astype(dtype) if weighted else np.ones(c, dtype)
    a = e / c * np.broadcast_to(w.astype(np.float64), (n, c)).copy()
    a[np.arange(n), y] += (1 - e) * w[y]
    expected = ref_weighted_gap(x, a)
    assert np.isfinite(as_dtype(expected, dtype)).all()
    assert expected.max() > BIG[dtype] / 100 or e == 0.0  # the smoothing term is huge
    kw = w if weighted else None
    coef = np.ones(n, dtype)
    for grad in (None, "separate", "inplace"):
        xx = x.copy()
        g = None if grad is None else xx if grad == "inplace" else np.empty_like(x)
        loss = dispatch.sparse_xent_rows(xx, y, kw, None, e, coef, g)
        np.testing.assert_allclose(loss, expected, **EXTREME_TOL[dtype])
        if g is not None:
            assert np.isfinite(g).all()
    # The public API on both paths (the kernel forced at this size).
    dispatch_min = dispatch.MIN_KERNEL_SIZE
    try:
        dispatch.MIN_KERNEL_SIZE = 0
        vg = lk.value_and_grad(lk.sparse_softmax_cross_entropy)
        kw2 = dict(class_weight=kw, label_smoothing=e, reduction="none")
        (fv, fg), (sv, sg) = both_paths(vg, x, y, **kw2)
    finally:
        dispatch.MIN_KERNEL_SIZE = dispatch_min
    np.testing.assert_allclose(fv, expected, **EXTREME_TOL[dtype])
    np.testing.assert_allclose(sv, expected, **EXTREME_TOL[dtype])
    np.testing.assert_allclose(fg, sg, rtol=0, atol=GRAD_ATOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [4, 300, 2500])
@pytest.mark.parametrize("e", [0.0, 0.1])
def test_dense_smoothed_extreme_logits_match_reference(dtype, c, e, loop_shape):
    x = extreme_logits(dtype, c)
    n = x.shape[0]
    rng = np.random.default_rng(8)
    t = rng.dirichlet(np.ones(c), size=n)
    t[0] = 0.0
    t[0, :2] = [0.9, 0.1]  # the repro: 0.1 on the class at -big
    t[3, 1] = 0.0  # a zero target at -big
    t[4] = 0.0
    t[4, :3] = [0.05, 0.0, 0.95]  # mostly on the only class at +big: representable
    t = (t / t.sum(axis=1, keepdims=True)).astype(dtype)
    a = (1 - e) * t.astype(np.float64) + e / c
    expected = ref_weighted_gap(x, a)
    assert np.isfinite(as_dtype(expected, dtype)).all() and expected.max() > BIG[dtype] / 100
    coef = np.ones(n, dtype)
    for grad in (None, "separate", "inplace"):
        xx = x.copy()
        g = None if grad is None else xx if grad == "inplace" else np.empty_like(x)
        loss = dispatch.dense_xent_rows(xx, t, e, coef, g)
        np.testing.assert_allclose(loss, expected, **EXTREME_TOL[dtype])
        if g is not None:
            assert np.isfinite(g).all()
    dispatch_min = dispatch.MIN_KERNEL_SIZE
    try:
        dispatch.MIN_KERNEL_SIZE = 0
        vg = lk.value_and_grad(lk.softmax_cross_entropy)
        (fv, fg), (sv, sg) = both_paths(vg, x, t, label_smoothing=e, reduction="none")
    finally:
        dispatch.MIN_KERNEL_SIZE = dispatch_min
    np.testing.assert_allclose(fv, expected, **EXTREME_TOL[dtype])
    np.testing.assert_allclose(sv, expected, **EXTREME_TOL[dtype])
    np.testing.assert_allclose(fg, sg, rtol=0, atol=GRAD_ATOL[dtype])


# NaN logits: every row result with a NaN in the row is NaN (as scipy, torch and
# the portable path); maxnum drops a NaN from the row max, so it must come
# through the sum of exponentials.
def nan_rows(dtype, c):
    x = np.tile(np.linspace(-1, 1, c), (6, 1))
    x[0, 1] = np.nan
    x[1, 0] = np.nan  # at the label
    x[2] = np.nan
    x[3] = -np.inf
    x[3, 1] = np.nan
    x[4, 1] = np.inf
    x[4, 2] = np.nan
    x[5, c - 1] = np.nan  # last element (a later block for large c)
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [4, 300, 5000])
def test_nan_logits_give_nan(dtype, c, loop_shape):
    x = nan_rows(dtype, c)
    n = x.shape[0]
    assert np.isnan(dispatch.logsumexp_rows(x)).all()
    assert np.isnan(sp_logsumexp(x.astype(np.float64), axis=1)).all()  # the reference agrees
    assert np.isnan(dispatch.softmax_rows(x, np.empty_like(x))).any(axis=1).all()
    assert np.isnan(dispatch.log_softmax_rows(x, np.empty_like(x))).any(axis=1).all()
    y = np.zeros(n, np.int64)
    w = np.ones(c, dtype)
    w[0] = 0.0  # a zero weight on the label: 0 * NaN is still NaN (torch, portable)
    t = np.full_like(x, 1.0 / c)
    for e in (0.0, 0.1):
        for cw in (None, w):
            for g in (None, np.empty_like(x)):
                loss = dispatch.sparse_xent_rows(x, y, cw, None, e, np.ones(n, dtype), g)
                assert np.isnan(loss).all(), (e, cw is None, g is None, loss)
        for g in (None, np.empty_like(x)):
            assert np.isnan(dispatch.dense_xent_rows(x, t, e, np.ones(n, dtype), g)).all()
    # An ignored row stays 0 whatever its logits.
    loss = dispatch.sparse_xent_rows(x, np.full(n, -1), None, -1, 0.1, None, None)
    np.testing.assert_array_equal(loss, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [4, 300])
def test_logsumexp_infinite_rows(dtype, c, loop_shape):
    x = np.zeros((4, c), dtype)
    x[0, 1] = np.inf
    x[1] = -np.inf
    x[2, 1], x[2, 2] = np.inf, np.nan
    x[3, :] = -np.inf
    x[3, 2] = 5.0
    expected = [np.inf, -np.inf, np.nan, 5.0]
    np.testing.assert_array_equal(dispatch.logsumexp_rows(x), expected)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(sp_logsumexp(x.astype(np.float64), axis=1), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [4, 300])
def test_public_nan_logits_agree_with_portable(dtype, c, loop_shape, monkeypatch):
    monkeypatch.setattr(dispatch, "MIN_KERNEL_SIZE", 0)
    x = nan_rows(dtype, c)
    assert dispatch.use_kernel(x)
    y = np.zeros(x.shape[0], np.int64)
    t = np.full_like(x, 1.0 / c)
    calls = [
        (lk.logsumexp, ()),
        (lk.softmax, ()),
        (lk.log_softmax, ()),
        (lk.sparse_softmax_cross_entropy, (y,)),
        (lk.softmax_cross_entropy, (t,)),
    ]
    for fn, args in calls:
        kw = {} if not args else {"reduction": "none", "label_smoothing": 0.1}
        fast, slow = both_paths(fn, x, *args, **kw)
        fast, slow = np.asarray(fast), np.asarray(slow)
        assert np.isnan(slow).reshape(x.shape[0], -1).any(axis=1).all(), fn
        np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow), err_msg=str(fn))


def test_sparse_all_rows_ignored_gives_zero(loop_shape):
    x = logits(5, 7, np.float32)
    g = np.full_like(x, 3.0)
    y = np.full(5, -1)
    loss = dispatch.sparse_xent_rows(x, y, None, -1, 0.1, np.ones(5, np.float32), g)
    np.testing.assert_array_equal(loss, 0.0)
    np.testing.assert_array_equal(g, 0.0)


def test_sparse_without_grad_leaves_logits_untouched(loop_shape):
    x = logits(40, 12, np.float64)
    before = x.copy()
    dispatch.sparse_xent_rows(x, np.zeros(40, np.int64), None, None, 0.3, None, None)
    np.testing.assert_array_equal(x, before)


# --------------------------------------------------------------------------- dense


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "c"), SHAPES)
@pytest.mark.parametrize("e", [0.0, 0.2])
def test_dense_matches_reference(n, c, dtype, e):
    x = logits(n, c, dtype)
    rng = np.random.default_rng(2)
    t = rng.dirichlet(np.ones(c), size=n).astype(dtype) if n else np.zeros((0, c), dtype)
    if n and c > 2:
        t[0] = 0
        t[0, 1] = 1  # one-hot row
    coef = rng.uniform(0.1, 1.0, n).astype(dtype)
    ref_loss, ref_grad = ref_dense(x, t, e, coef)
    loss = dispatch.dense_xent_rows(x, t, e, None, None)
    assert_close(loss, ref_loss, dtype, scale=10)
    g = np.empty_like(x)
    assert_close(dispatch.dense_xent_rows(x, t, e, coef, g), ref_loss, dtype, scale=10)
    assert_close(g, ref_grad, dtype)
    g = x.copy()
    dispatch.dense_xent_rows(g, t, e, coef, g)
    assert_close(g, ref_grad, dtype)


def test_dense_zero_target_at_minus_inf_contributes_nothing():
    x = np.array([[0.0, -np.inf, 1.0], [3e38, -3e38, 0.0]], np.float32)
    t = np.array([[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]], np.float32)
    g = np.empty_like(x)
    loss = dispatch.dense_xent_rows(x, t, 0.0, np.ones(2, np.float32), g)
    ref_loss, ref_grad = ref_dense(x, t)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, ref_grad, atol=1e-7)


# --------------------------------------------------------------------------- dispatch


def test_use_kernel_decides_on_kind_dtype_size_and_switch(monkeypatch):
    big = np.zeros((512, 64), np.float32)
    assert dispatch.use_kernel(big)
    assert dispatch.use_kernel(big.astype(np.float64))
    assert not dispatch.use_kernel(big.astype(np.float16))
    assert not dispatch.use_kernel(big.astype(np.int64))
    assert not dispatch.use_kernel(big.tolist())
    assert not dispatch.use_kernel(np.zeros((2, 3), np.float32))  # threads cost more
    assert not dispatch.use_kernel(np.float32(1.0))
    with lk.portable():
        assert not dispatch.use_kernel(big)
    monkeypatch.setenv("LOSSKIT_PORTABLE", "1")
    assert not dispatch.use_kernel(big)


def test_forwarders_take_non_contiguous_input_and_refuse_bad_outputs():
    x = logits(20, 30, np.float64)
    xt = np.asfortranarray(x)
    np.testing.assert_allclose(dispatch.logsumexp_rows(xt), sp_logsumexp(x, axis=1))
    np.testing.assert_allclose(dispatch.logsumexp_rows(x[:, ::2]), sp_logsumexp(x[:, ::2], 1))
    with pytest.raises(ValueError, match="C-contiguous float64"):
        dispatch.softmax_rows(x, np.empty((30, 20)).T)
    with pytest.raises(ValueError, match="partly overlaps"):
        dispatch.softmax_rows(x[1:], x[:-1])
    with pytest.raises(ValueError, match=r"C >= 1; got shape \(3, 0\)"):
        dispatch.logsumexp_rows(np.zeros((3, 0)))
    assert not dispatch.use_kernel(np.zeros((5000, 0)))  # empty: the portable path


def test_import_losskit_does_not_import_numba():
    code = "import sys, losskit, losskit.kernels.dispatch; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- public API, both paths


def both_paths(fn, *args, **kwargs):
    fast = fn(*args, **kwargs)
    with lk.portable():
        slow = fn(*args, **kwargs)
    return fast, slow


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_public_sparse_kernel_agrees_with_portable(dtype, reduction):
    x = logits(600, 37, dtype)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 37, 600)
    y[::5] = -100
    kw = dict(
        class_weight=rng.uniform(0.5, 2, 37).astype(dtype),
        ignore_index=-100,
        label_smoothing=0.1,
        reduction=reduction,
        sample_weight=rng.uniform(0, 1, 600).astype(dtype),
    )
    assert dispatch.use_kernel(x)
    vg = lk.value_and_grad(lk.sparse_softmax_cross_entropy)
    (fv, fg), (sv, sg) = both_paths(vg, x, y, **kw)
    assert_close(fv, sv, dtype, scale=10)
    assert_close(fg, sg, dtype)
    assert fg.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_public_paths_agree_on_transposed_and_strided_input(dtype):
    x = logits(50, 300, dtype)  # classes on axis 0 of x.T
    rng = np.random.default_rng(4)
    t = rng.dirichlet(np.ones(50), size=300).astype(dtype)
    fast, slow = both_paths(lk.softmax, x, axis=0)
    assert_close(fast, slow, dtype)
    fast, slow = both_paths(lk.logsumexp, x[:, ::2], axis=0)
    assert_close(fast, slow, dtype)
    vg = lk.value_and_grad(lk.softmax_cross_entropy)
    (fv, fg), (sv, sg) = both_paths(vg, x, t.T, axis=0, label_smoothing=0.05)
    assert_close(fv, sv, dtype)
    assert_close(fg, sg, dtype)
    fast, slow = both_paths(lk.log_softmax, x.T)
    assert_close(fast, slow, dtype, scale=10)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    c=st.integers(1, 300),
    dtype=st.sampled_from(DTYPES),
    smoothing=st.sampled_from([0.0, 0.3]),
    weighted=st.booleans(),
    ignore=st.booleans(),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    scale=st.sampled_from([0.1, 5.0, 1e3]),
    seed=st.integers(0, 2**16),
)
def test_public_sparse_random_shapes_and_options(
    n, c, dtype, smoothing, weighted, ignore, reduction, scale, seed
):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * scale).astype(dtype)
    y = rng.integers(0, c, n)
    if ignore:
        y[rng.random(n) < 0.3] = -1
    kw = dict(
        class_weight=rng.uniform(0.5, 2, c).astype(dtype) if weighted else None,
        ignore_index=-1 if ignore else None,
        label_smoothing=smoothing,
        reduction=reduction,
    )
    vg = lk.value_and_grad(lk.sparse_softmax_cross_entropy)
    kernel_loss = dispatch.sparse_xent_rows(
        x, y, kw["class_weight"], kw["ignore_index"], smoothing, None, None
    )
    ref_loss, _ = ref_sparse(x, y, kw["class_weight"], kw["ignore_index"], smoothing)
    assert_close(kernel_loss, ref_loss, dtype, scale=10 * scale)
    # Small draws would take the portable path on both sides: force the kernel.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dispatch, "MIN_KERNEL_SIZE", 0)
        assert dispatch.use_kernel(x)
        (fv, fg), (sv, sg) = both_paths(vg, x, y, **kw)
    tol = TOL[dtype]
    np.testing.assert_allclose(fv, sv, rtol=10 * tol["rtol"], atol=tol["atol"] * 10 * scale)
    np.testing.assert_allclose(fg, sg, rtol=10 * tol["rtol"], atol=tol["atol"])


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 200),
    c=st.integers(1, 400),
    dtype=st.sampled_from(DTYPES),
    smoothing=st.sampled_from([0.0, 0.2]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    scale=st.sampled_from([0.1, 5.0, 1e3]),
    seed=st.integers(0, 2**16),
)
def test_public_dense_and_activations_random_shapes(n, c, dtype, smoothing, reduction, scale, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * scale).astype(dtype)
    t = rng.dirichlet(np.ones(c), size=n).astype(dtype)
    tol = TOL[dtype]
    rtol, atol = 10 * tol["rtol"], tol["atol"] * 10 * scale
    vg = lk.value_and_grad(lk.softmax_cross_entropy)
    # Small draws would take the portable path on both sides: force the kernel.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dispatch, "MIN_KERNEL_SIZE", 0)
        assert dispatch.use_kernel(x)
        (fv, fg), (sv, sg) = both_paths(vg, x, t, label_smoothing=smoothing, reduction=reduction)
        np.testing.assert_allclose(fv, sv, rtol=rtol, atol=atol)
        np.testing.assert_allclose(fg, sg, rtol=rtol, atol=tol["atol"])
        for fn in (lk.softmax, lk.log_softmax, lk.logsumexp):
            fast, slow = both_paths(fn, x)
            np.testing.assert_allclose(fast, slow, rtol=rtol, atol=atol)


def test_thread_count_follows_numba_and_results_do_not_depend_on_it():
    import numba

    x = logits(1000, 50, np.float32)
    y = np.random.default_rng(5).integers(0, 50, 1000)
    coef = np.ones(1000, np.float32)
    before = numba.get_num_threads()
    try:
        outs = []
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            assert dispatch._nchunks() == 4 * threads
            g = np.empty_like(x)
            outs.append((dispatch.sparse_xent_rows(x, y, None, None, 0.1, coef, g), g))
    finally:
        numba.set_num_threads(before)
    for loss, g in outs[1:]:  # rows are independent: bitwise the same
        np.testing.assert_array_equal(loss, outs[0][0])
        np.testing.assert_array_equal(g, outs[0][1])
