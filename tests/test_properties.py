"""Property-based tests (hypothesis): invariances and identities every input must satisfy."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import losskit as lk

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)

dims = st.tuples(st.integers(1, 6), st.integers(2, 7))


@st.composite
def logits_and_labels(draw, scale=30.0):
    n, c = draw(dims)
    x = draw(
        hnp.arrays(np.float64, (n, c), elements=st.floats(-scale, scale, allow_nan=False, width=64))
    )
    y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    return x, y


@st.composite
def distributions(draw, n, c):
    raw = draw(hnp.arrays(np.float64, (n, c), elements=st.floats(0.0, 1.0)))
    raw[:, 0] += 1e-3  # never an all-zero row
    return raw / raw.sum(axis=1, keepdims=True)


@st.composite
def dense_case(draw, scale=30.0):
    x, _ = draw(logits_and_labels(scale))
    return x, draw(distributions(*x.shape))


smoothing = st.sampled_from([0.0, 0.1, 0.5, 1.0])
reductions = st.sampled_from(["none", "sum", "mean"])


@contextlib.contextmanager
def quiet():
    """Random logits may land in [0, 1] with rows summing to 1; that warning is not under test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lk.ProbabilitiesAsLogitsWarning)
        yield


# --------------------------------------------------------------------------
# shift invariance of the softmax losses
# --------------------------------------------------------------------------


@SETTINGS
@given(case=logits_and_labels(), shift=st.floats(-1e3, 1e3), ls=smoothing)
def test_sparse_softmax_xent_shift_invariant(case, shift, ls):
    x, y = case
    with quiet():
        vg = lk.value_and_grad(lk.sparse_softmax_cross_entropy)
        v0, g0 = vg(x, y, label_smoothing=ls, reduction="none")
        v1, g1 = vg(x + shift, y, label_smoothing=ls, reduction="none")
    tol = 1e-12 * (1 + abs(shift) + np.abs(x).max())
    np.testing.assert_allclose(v1, v0, rtol=0, atol=50 * tol)
    np.testing.assert_allclose(g1, g0, rtol=0, atol=50 * tol)


@SETTINGS
@given(case=dense_case(), shift=st.floats(-1e3, 1e3), ls=smoothing)
def test_softmax_xent_shift_invariant_per_row(case, shift, ls):
    x, t = case
    row_shift = shift * np.linspace(-1, 1, x.shape[0])[:, None]
    with quiet():
        vg = lk.value_and_grad(lk.softmax_cross_entropy)
        v0, g0 = vg(x, t, label_smoothing=ls, reduction="none")
        v1, g1 = vg(x + row_shift, t, label_smoothing=ls, reduction="none")
    tol = 1e-12 * (1 + abs(shift) + np.abs(x).max())
    np.testing.assert_allclose(v1, v0, rtol=0, atol=50 * tol)
    np.testing.assert_allclose(g1, g0, rtol=0, atol=50 * tol)


@SETTINGS
@given(case=logits_and_labels(), shift=st.floats(-1e3, 1e3))
def test_activations_shift(case, shift):
    x, _ = case
    np.testing.assert_allclose(
        lk.logsumexp(x + shift),
        lk.logsumexp(x) + shift,
        rtol=1e-12,
        atol=1e-12 * (1 + abs(shift) + np.abs(x).max()),
    )
    np.testing.assert_allclose(lk.softmax(x + shift), lk.softmax(x), atol=1e-12)
    s = lk.softmax(x)
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(s >= 0)
    np.testing.assert_allclose(
        lk.log_softmax(x), x - lk.logsumexp(x, keepdims=True), atol=1e-12 * (1 + np.abs(x).max())
    )


# --------------------------------------------------------------------------
# non-negativity
# --------------------------------------------------------------------------


@SETTINGS
@given(
    case=logits_and_labels(scale=1e3),
    ls=smoothing,
    cw=st.lists(st.floats(0.0, 5.0), min_size=7, max_size=7),
)
def test_sparse_softmax_xent_nonnegative(case, ls, cw):
    x, y = case
    with quiet():
        v = lk.sparse_softmax_cross_entropy(
            x, y, label_smoothing=ls, class_weight=np.array(cw[: x.shape[1]]), reduction="none"
        )
    assert np.all(v >= 0) and np.all(np.isfinite(v))


@SETTINGS
@given(case=dense_case(scale=1e3), ls=smoothing)
def test_softmax_xent_nonnegative(case, ls):
    x, t = case
    with quiet():
        v = lk.softmax_cross_entropy(x, t, label_smoothing=ls, reduction="none")
    assert np.all(v >= 0) and np.all(np.isfinite(v))


@SETTINGS
@given(data=st.data(), shape=dims, ls=smoothing, pw=st.floats(0.0, 10.0))
def test_binary_losses_nonnegative(data, shape, ls, pw):
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-1e4, 1e4)))
    p = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0)))
    t = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0)))
    v = lk.sigmoid_cross_entropy(x, t, label_smoothing=ls, pos_weight=pw, reduction="none")
    assert np.all(v >= 0) and np.all(np.isfinite(v))
    v = lk.binary_cross_entropy(p, t, reduction="none")
    assert np.all(v >= 0) and np.all(np.isfinite(v))


@SETTINGS
@given(data=st.data(), shape=dims)
def test_categorical_and_regression_nonnegative(data, shape):
    n, c = shape
    p = data.draw(distributions(n, c))
    t = data.draw(distributions(n, c))
    y = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    v = lk.categorical_cross_entropy(p, t, reduction="none")
    assert np.all(v >= 0) and np.all(np.isfinite(v))
    v = lk.sparse_categorical_cross_entropy(p, y, reduction="none")
    assert np.all(v >= 0) and np.all(np.isfinite(v))
    a = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-1e6, 1e6)))
    b = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-1e6, 1e6)))
    for name in ("mean_squared_error", "mean_absolute_error"):
        v = getattr(lk, name)(a, b, reduction="none")
        assert np.all(v >= 0)


# --------------------------------------------------------------------------
# gradient rows sum to zero for normalised targets
# --------------------------------------------------------------------------


@SETTINGS
@given(case=dense_case(scale=1e3), ls=smoothing, red=reductions)
def test_softmax_xent_gradient_rows_sum_to_zero(case, ls, red):
    x, t = case
    with quiet():
        _, g = lk.value_and_grad(lk.softmax_cross_entropy)(x, t, label_smoothing=ls, reduction=red)
    np.testing.assert_allclose(g.sum(axis=-1), 0.0, atol=1e-12)


@SETTINGS
@given(
    case=logits_and_labels(scale=1e3),
    ls=smoothing,
    red=reductions,
    cw=st.lists(st.floats(0.01, 5.0), min_size=7, max_size=7),
)
def test_sparse_softmax_xent_gradient_rows_sum_to_zero(case, ls, red, cw):
    x, y = case
    with quiet():
        _, g = lk.value_and_grad(lk.sparse_softmax_cross_entropy)(
            x, y, label_smoothing=ls, class_weight=np.array(cw[: x.shape[1]]), reduction=red
        )
    np.testing.assert_allclose(g.sum(axis=-1), 0.0, atol=1e-11)


# --------------------------------------------------------------------------
# value_and_grad against finite differences, random options
# --------------------------------------------------------------------------


def _directional_fd(f, x, v, h):
    return (np.sum(f(x + h * v)) - np.sum(f(x - h * v))) / (2 * h)


@SETTINGS
@given(case=logits_and_labels(scale=5.0), ls=smoothing, red=reductions, data=st.data())
def test_sparse_value_and_grad_vs_finite_differences(case, ls, red, data):
    x, y = case
    n, c = x.shape
    opts = dict(label_smoothing=ls, reduction=red)
    if data.draw(st.booleans()):
        opts["class_weight"] = np.linspace(0.5, 2.0, c)
    if data.draw(st.booleans()):
        opts["sample_weight"] = np.linspace(0.1, 1.0, n)
    if data.draw(st.booleans()):
        opts["ignore_index"] = 0
    direction = np.random.default_rng(n * 10 + c).normal(size=x.shape)
    with quiet():
        _, g = lk.value_and_grad(lk.sparse_softmax_cross_entropy)(x, y, **opts)
        fd = _directional_fd(
            lambda z: lk.sparse_softmax_cross_entropy(z, y, **opts), x, direction, 1e-5
        )
    assert np.sum(g * direction) == pytest.approx(fd, rel=1e-6, abs=1e-8)


@SETTINGS
@given(case=dense_case(scale=5.0), ls=smoothing, red=reductions, data=st.data())
def test_dense_and_sigmoid_value_and_grad_vs_finite_differences(case, ls, red, data):
    x, t = case
    opts = dict(label_smoothing=ls, reduction=red)
    if data.draw(st.booleans()):
        opts["sample_weight"] = np.linspace(0.1, 1.0, x.shape[0])
    direction = np.random.default_rng(x.size).normal(size=x.shape)
    with quiet():
        for fn, extra in (
            (lk.softmax_cross_entropy, {}),
            (lk.sigmoid_cross_entropy, {"pos_weight": 2.5}),
        ):
            kw = {**opts, **extra}
            _, g = lk.value_and_grad(fn)(x, t, **kw)
            fd = _directional_fd(lambda z, fn=fn, kw=kw: fn(z, t, **kw), x, direction, 1e-5)
            assert np.sum(g * direction) == pytest.approx(fd, rel=1e-6, abs=1e-8), fn.__name__


@SETTINGS
@given(data=st.data(), shape=dims, red=reductions)
def test_probability_and_regression_value_and_grad_vs_finite_differences(data, shape, red):
    n, c = shape
    p = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.05, 0.95)))
    t = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0)))
    direction = np.random.default_rng(n * 10 + c).normal(size=shape)
    for name in ("binary_cross_entropy", "mean_squared_error"):
        fn = getattr(lk, name)
        _, g = lk.value_and_grad(fn)(p, t, reduction=red)
        fd = _directional_fd(lambda z, fn=fn: fn(z, t, reduction=red), p, direction, 1e-6)
        assert np.sum(g * direction) == pytest.approx(fd, rel=1e-6, abs=1e-8), name
    # categorical on probability rows (kept normalised along the direction: the
    # direction's rows sum to 0, so no UnnormalizedProbabilitiesWarning either)
    q = data.draw(distributions(n, c)) * 0.9 + 0.1 / c
    y = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    d = direction - direction.mean(axis=1, keepdims=True)
    for name, truth in (
        ("categorical_cross_entropy", data.draw(distributions(n, c))),
        ("sparse_categorical_cross_entropy", y),
    ):
        fn = getattr(lk, name)
        _, g = lk.value_and_grad(fn)(q, truth, reduction=red)
        fd = _directional_fd(lambda z, fn=fn, tr=truth: fn(z, tr, reduction=red), q, d, 1e-7)
        assert np.sum(g * d) == pytest.approx(fd, rel=1e-6, abs=1e-7), name


# --------------------------------------------------------------------------
# the reductions agree with each other
# --------------------------------------------------------------------------


@SETTINGS
@given(case=logits_and_labels(), data=st.data())
def test_reductions_consistent(case, data):
    x, y = case
    n, c = x.shape
    sw = data.draw(
        hnp.arrays(np.float64, (n,), elements=st.one_of(st.just(0.0), st.floats(0.01, 3.0)))
    )
    cw = data.draw(hnp.arrays(np.float64, (c,), elements=st.floats(0.1, 3.0)))
    with quiet():
        kw = dict(sample_weight=sw, class_weight=cw)
        none = lk.sparse_softmax_cross_entropy(x, y, reduction="none", **kw)
        total = lk.sparse_softmax_cross_entropy(x, y, reduction="sum", **kw)
        mean = lk.sparse_softmax_cross_entropy(x, y, reduction="mean", **kw)
    np.testing.assert_allclose(total, none.sum(), rtol=1e-12, atol=1e-12)
    den = np.sum(sw * cw[y])
    np.testing.assert_allclose(mean, total / den if den > 0 else 0.0, rtol=1e-10, atol=1e-12)
