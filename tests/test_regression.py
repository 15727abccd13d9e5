"""mean_squared_error and mean_absolute_error against PyTorch (mse_loss, l1_loss) and Keras."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_close, ref_mae, ref_mse, round_to, run_loss

REDUCTIONS = ("none", "sum", "mean")
REFS = {"mean_squared_error": ref_mse, "mean_absolute_error": ref_mae}
NAMES = tuple(REFS)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _case(rng, shape):
    p = rng.normal(size=shape)
    # no ties: |p - t| >= 0.1, so the gradient of |.| is defined everywhere
    return p, p + rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


def check(xp, name, p, t, dtype="float64", **opts):
    got_v, got_g = run_loss(xp, name, p, t, dtype, **opts)
    exp_v, exp_g = REFS[name](round_to(p, dtype), round_to(t, dtype), **opts)
    assert_close(got_v, exp_v, dtype, err_msg=f"{name} value {opts}")
    assert_close(got_g, exp_g, dtype, kind="grad", err_msg=f"{name} gradient {opts}")
    return got_v, got_g


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7,), (4, 3), (2, 3, 4)], ids=str)
def test_matches_torch(xp, rng, name, reduction, shape):
    p, t = _case(rng, shape)
    check(xp, name, p, t, reduction=reduction)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("sw_shape", [(4,), (4, 3)], ids=["batch", "full"])
def test_sample_weight(xp, rng, name, reduction, sw_shape):
    p, t = _case(rng, (4, 3))
    sw = rng.uniform(0.0, 2.0, size=sw_shape)
    check(xp, name, p, t, reduction=reduction, sample_weight=sw)


def test_sample_weight_by_hand(xp):
    """pred [[1, 2], [3, 4]], target 0, sample_weight [1, 3] (per row).

    squared: [[1, 4], [9, 16]]; weighted sum = 1*(1+4) + 3*(9+16) = 80;
    broadcast weights [[1,1],[3,3]] sum to 8 -> weighted mean 10.
    absolute: weighted sum = 1*3 + 3*7 = 24 -> mean 3.
    """
    p = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = np.zeros((2, 2))
    for name, s, m in (("mean_squared_error", 80.0, 10.0), ("mean_absolute_error", 24.0, 3.0)):
        v, _ = run_loss(xp, name, p, t, sample_weight=[1.0, 3.0], reduction="sum")
        assert_close(v, s)
        v, _ = run_loss(xp, name, p, t, sample_weight=[1.0, 3.0], reduction="mean")
        assert_close(v, m)


@pytest.mark.parametrize("name", NAMES)
def test_vs_keras_rowwise(xp, rng, keras_losses, name):
    """Keras averages over the last axis; the core's 'none' keeps every element."""
    p, t = _case(rng, (5, 4))
    keras_fn = getattr(keras_losses, name)
    expected = np.asarray(keras_fn(t, p))  # keras order: (y_true, y_pred)
    got, _ = run_loss(xp, name, p, t, reduction="none")
    assert got.shape == (5, 4)
    assert_close(got.mean(axis=-1), expected, "float32")


@pytest.mark.parametrize("name", NAMES)
def test_mae_tie_has_zero_gradient_and_mse_exact(xp, name):
    """At p == t the loss is 0 and the gradient 0 (torch l1_loss, jax, TF all use sign(0) = 0)."""
    p = np.array([1.0, 2.0, 3.0, 4.0])
    v, g = run_loss(xp, name, p, p.copy(), reduction="sum")
    assert_close(v, 0.0)
    np.testing.assert_array_equal(g, np.zeros(4))


@pytest.mark.parametrize("name", NAMES)
def test_empty(xp, name):
    for reduction in REDUCTIONS:
        v, g = run_loss(xp, name, np.zeros((0, 3)), np.zeros((0, 3)), reduction=reduction)
        assert_close(v, np.zeros((0, 3)) if reduction == "none" else 0.0)
        assert g.shape == (0, 3)


@pytest.mark.parametrize("name", NAMES)
def test_zero_weights_is_zero_not_nan(xp, rng, name):
    p, t = _case(rng, (3, 2))
    v, g = run_loss(xp, name, p, t, sample_weight=[0.0, 0.0, 0.0], reduction="mean")
    assert_close(v, 0.0)
    assert_close(g, np.zeros_like(p), kind="grad")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision(xp, rng, name, dtype):
    xp.require(dtype)
    p, t = _case(rng, (6, 5))
    for reduction in REDUCTIONS:
        check(xp, name, p, t, dtype, reduction=reduction)


@pytest.mark.parametrize("dtype", ["float16"])
def test_float16_near_max_in_float32(xp, dtype):
    """Half input near float16's max (65504) still gives the float32 loss.

    pred [6e4, -6e4, 0 x 6], target [-6e4, 6e4, 0 x 6] (all exact in float16):
    squared errors 1.44e10 (twice) -> mean 3.6e9 (a float32, far above float16's
    range); gradient 2 (p - t) / 8 = [3e4, -3e4, 0, ...] (exact in float16).
    absolute: mean 2 * 1.2e5 / 8 = 3e4, gradient sign(p - t) / 8 = [0.125, -0.125, 0, ...].
    """
    xp.require(dtype)
    p = np.array([6e4, -6e4, 0, 0, 0, 0, 0, 0])
    t = -p
    v, g = run_loss(xp, "mean_squared_error", p, t, "float16")
    np.testing.assert_allclose(v, 3.6e9, rtol=1e-6)
    np.testing.assert_allclose(g, [3e4, -3e4, 0, 0, 0, 0, 0, 0], rtol=1e-3)
    v, g = run_loss(xp, "mean_absolute_error", p, t, "float16")
    np.testing.assert_allclose(v, 3e4, rtol=1e-6)
    np.testing.assert_allclose(g, [0.125, -0.125, 0, 0, 0, 0, 0, 0], rtol=1e-3)


def test_float32_large_values(xp):
    """pred 1e19 vs 0 in float32: squared error 1e38 < 3.4e38, so finite; mean of
    [1e38, 0, 0, 0] = 2.5e37; gradient 2 * 1e19 / 4 = 5e18."""
    p = np.array([1e19, 0.0, 0.0, 0.0])
    v, g = run_loss(xp, "mean_squared_error", p, np.zeros(4), "float32")
    np.testing.assert_allclose(v, 2.5e37, rtol=1e-5)
    np.testing.assert_allclose(g, [5e18, 0, 0, 0], rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_accumulates_in_float32(xp, name, dtype):
    """100000 errors of 1: a float16 running sum sticks at 2048, a bfloat16 one at 256;
    the float32 accumulation gives sum 100000 and mean 1 (exact in float32)."""
    xp.require(dtype)
    p = np.ones(100000)
    t = np.zeros(100000)
    v, _ = run_loss(xp, name, p, t, dtype, reduction="sum")
    np.testing.assert_allclose(v, 100000.0, rtol=1e-6)
    v, _ = run_loss(xp, name, p, t, dtype, reduction="mean")
    np.testing.assert_allclose(v, 1.0, rtol=1e-6)
