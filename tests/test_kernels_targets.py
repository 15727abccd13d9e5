"""The dense kernel's fused target-range check (``dense_xent_rows(check_targets=True)``).

A target outside [0, 1], or NaN, raises ``dispatch.TargetOutOfRange`` whose
``index`` is the flat row-major index of the first such element; -0.0, 0.0
and 1.0 are in range. Expected indices are where the tests put the values;
expected losses are those of the unchecked call (checked against a float64
reference in tests/test_kernels.py), to a few ulp.
"""

from __future__ import annotations

import numpy as np
import pytest

from losskit.kernels import dispatch

pytest.importorskip("numba")

DTYPES = [np.float32, np.float64]
# (N, C): the tiled loop with several tiles and a partial last one; the row-wise
# loop; rows of three BLOCK-sized blocks (a bad value in a later block). The
# row-wise kernel checks in its first pass when logits and targets fit the
# last-level cache, else in its second: both are forced in turn.
SHAPES = {
    "tiled": ((64 * 9 + 5, 12), None),
    "rowwise-pass1": ((301, 300), 1 << 60),
    "rowwise-pass2": ((301, 300), 0),
    "blocks-pass1": ((7, 5000), 1 << 60),
    "blocks-pass2": ((7, 5000), 0),
}


@pytest.fixture(params=list(SHAPES))
def shape(request, monkeypatch):
    shape, cache_bytes = SHAPES[request.param]
    if cache_bytes is not None:
        monkeypatch.setattr(dispatch, "_last_level_cache_bytes", lambda: cache_bytes)
    return shape


def inputs(shape, dtype, seed=0):
    n, c = shape
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * 3).astype(dtype)
    t = rng.dirichlet(np.ones(c), n).astype(dtype)
    return x, t


def run(x, t, *, grad, inplace=False, e=0.0, check=True):
    g = None
    if grad:
        g = x if inplace else np.empty_like(x)
    coef = np.full(x.shape[0], 0.5, x.dtype)
    return dispatch.dense_xent_rows(x, t, e, coef, g, check_targets=check)


def first_bad(t):
    """The flat row-major index of the first target not in [0, 1], by plain NumPy."""
    return int(np.flatnonzero(~((t >= 0) & (t <= 1)))[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize(
    ("where", "value"),
    [("first", -0.5), ("last", 1.5), ("middle", np.nan), ("middle", np.inf), ("first", -np.inf)],
)
def test_a_bad_target_is_found_with_its_flat_index(shape, dtype, grad, where, value):
    n, c = shape
    x, t = inputs(shape, dtype)
    row, col = {"first": (0, 0), "last": (n - 1, c - 1), "middle": (n // 2, c - 3)}[where]
    t[row, col] = value
    with pytest.raises(dispatch.TargetOutOfRange) as info:
        run(x, t, grad=grad)
    assert info.value.index == row * c + col
    assert isinstance(info.value, ValueError)
    np.testing.assert_equal(info.value.value, t[row, col])


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_first_of_several_in_row_major_order(shape, dtype):
    n, c = shape
    x, t = inputs(shape, dtype)
    t[n - 1, 0] = 2.0  # in the last row range
    t[n // 3, c - 1] = -1.0
    t[n // 3, c // 2 + 1] = np.nan  # earlier in the same row
    t[n // 3 + 1, 0] = 7.0
    with pytest.raises(dispatch.TargetOutOfRange) as info:
        run(x, t, grad=True, e=0.1)
    assert info.value.index == (n // 3) * c + c // 2 + 1 == first_bad(t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_gradient_still_finds_the_bad_target(shape, dtype):
    n, c = shape
    x, t = inputs(shape, dtype)
    t[n - 1, 1] = 1.0 + np.finfo(dtype).eps  # just above 1
    with pytest.raises(dispatch.TargetOutOfRange) as info:
        run(x, t, grad=True, inplace=True)
    assert info.value.index == (n - 1) * c + 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("e", [0.0, 0.1])
def test_in_range_targets_give_the_unchecked_numbers(shape, dtype, e):
    n, c = shape
    x, t = inputs(shape, dtype)
    t[0] = 0.0
    t[0, 0] = 1.0  # one-hot row: exact 0 and 1
    t[n - 1] = -0.0  # -0.0 is in range (an all-zero row is a legal, zero-weight row)
    t[n - 1, c - 1] = 1.0
    t[n // 2, 0] = np.nextafter(dtype(0), dtype(1))  # the smallest positive
    g_checked, g_plain = np.empty_like(x), np.empty_like(x)
    coef = np.full(n, 0.5, dtype)
    checked = dispatch.dense_xent_rows(x, t, e, coef, g_checked, check_targets=True)
    plain = dispatch.dense_xent_rows(x, t, e, coef, g_plain)
    # The same formula; the target sum may round differently (the checking loop
    # vectorises in its own way): a few ulp of the loss, of the gradient's scale.
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(checked, plain, rtol=8 * eps)
    np.testing.assert_allclose(g_checked, g_plain, rtol=0, atol=8 * eps * np.abs(g_plain).max())


@pytest.mark.parametrize(("cache_bytes", "expected"), [(1 << 60, "first"), (0, "second")])
def test_the_row_wise_check_rides_on_the_pass_the_cache_size_picks(
    monkeypatch, cache_bytes, expected
):
    from losskit.kernels import _dense

    seen = []

    class Spy:
        NO_CHECK = _dense.NO_CHECK
        CHECK_FIRST = _dense.CHECK_FIRST
        CHECK_SECOND = _dense.CHECK_SECOND

        @staticmethod
        def dense_xent_rows(*args):
            seen.append(args[-3])  # (..., inplace, check, bad, nchunks)
            return _dense.dense_xent_rows(*args)

    monkeypatch.setattr(dispatch, "_dense_mod", lambda: Spy)
    monkeypatch.setattr(dispatch, "_last_level_cache_bytes", lambda: cache_bytes)
    x, t = inputs((301, 300), np.float64)
    run(x, t, grad=True)
    run(x, t, grad=True, check=False)
    names = {_dense.CHECK_FIRST: "first", _dense.CHECK_SECOND: "second", _dense.NO_CHECK: "none"}
    assert [names[c] for c in seen] == [expected, "none"]


def test_the_cache_size_is_read_from_the_system_or_assumed():
    assert dispatch._last_level_cache_bytes() >= 1 << 20


def test_without_the_check_bad_targets_pass_through(shape):
    x, t = inputs(shape, np.float64)
    t[0, 0] = -1.0
    loss = run(x, t, grad=True, check=False)
    assert loss.shape == (shape[0],)


def test_tiny_negative_and_negative_zero():
    x, t = inputs(SHAPES["tiled"][0], np.float32)
    t[3, 4] = -0.0
    run(x, t, grad=True)  # no error
    t[5, 6] = -np.float32(1e-45)  # the smallest negative subnormal
    with pytest.raises(dispatch.TargetOutOfRange) as info:
        run(x, t, grad=True)
    assert info.value.index == 5 * 12 + 6
