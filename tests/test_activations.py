"""Activations against scipy.special (softmax, log_softmax, logsumexp, expit, log_expit)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sp

import losskit as lk
from conftest import assert_close, round_to

BIG = 3e38


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def call(xp, name, x, dtype="float64", **kw):
    out = getattr(lk, name)(xp.asarray(x, dtype), **kw)
    assert xp.is_native(out), type(out)
    assert xp.dtype_name(out) == dtype, (name, xp.dtype_name(out), dtype)
    return xp.to_numpy(out)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_family_vs_scipy(xp, rng, axis, dtype):
    x = round_to(rng.normal(size=(3, 4, 5)) * 5, dtype)
    assert_close(call(xp, "softmax", x, dtype, axis=axis), sp.softmax(x, axis=axis), dtype)
    assert_close(call(xp, "log_softmax", x, dtype, axis=axis), sp.log_softmax(x, axis=axis), dtype)
    assert_close(call(xp, "logsumexp", x, dtype, axis=axis), sp.logsumexp(x, axis=axis), dtype)
    assert_close(
        call(xp, "logsumexp", x, dtype, axis=axis, keepdims=True),
        sp.logsumexp(x, axis=axis, keepdims=True),
        dtype,
    )


def test_default_axis_is_last(xp, rng):
    x = rng.normal(size=(3, 4))
    assert_close(call(xp, "softmax", x), sp.softmax(x, axis=-1))
    assert_close(call(xp, "log_softmax", x), sp.log_softmax(x, axis=-1))
    assert_close(call(xp, "logsumexp", x), sp.logsumexp(x, axis=-1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_vs_scipy(xp, rng, dtype):
    x = round_to(
        np.concatenate([rng.normal(size=20) * 10, [0.0, 40.0, -40.0, 100.0, -100.0]]), dtype
    )
    assert_close(call(xp, "sigmoid", x, dtype), sp.expit(x), dtype)
    assert_close(call(xp, "log_sigmoid", x, dtype), sp.log_expit(x), dtype)


def test_extreme_float32(xp):
    """±1e4 and ±3e38 in float32: finite, correct, and no floating-point warning.

    softmax([3e38, -3e38, 0]) = [1, 0, 0];  softmax([3e38, 3e38]) = [.5, .5];
    logsumexp([3e38, 3e38]) = 3e38 + log 2 (rounds to 3e38 in float32);
    log_softmax([1e4, -1e4]) = [0, -2e4];  sigmoid(-3e38) = 0, sigmoid(3e38) = 1;
    log_sigmoid(-3e38) = -3e38; log_sigmoid(-1e4) = -1e4; log_sigmoid(3e38) = 0.
    """
    x = np.array([[BIG, -BIG, 0.0], [BIG, BIG, -BIG], [-BIG, -BIG, -BIG]])
    np.testing.assert_allclose(
        call(xp, "softmax", x, "float32"), [[1, 0, 0], [0.5, 0.5, 0], [1 / 3] * 3], rtol=1e-6
    )
    np.testing.assert_allclose(
        call(xp, "logsumexp", x, "float32"), [BIG, BIG + math.log(2), -BIG + math.log(3)], rtol=1e-6
    )
    ls = call(xp, "log_softmax", np.array([1e4, -1e4]), "float32")
    np.testing.assert_allclose(ls, [0.0, -2e4], rtol=1e-6, atol=1e-6)
    z = np.array([-BIG, BIG, -1e4, 1e4, 0.0])
    np.testing.assert_allclose(call(xp, "sigmoid", z, "float32"), [0, 1, 0, 1, 0.5], atol=1e-37)
    np.testing.assert_allclose(
        call(xp, "log_sigmoid", z, "float32"),
        [-BIG, 0, -1e4, 0, -math.log(2)],
        rtol=1e-6,
        atol=1e-30,
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_keeps_dtype(xp, rng, dtype):
    """Half in, half out; computed in float32, so only the final rounding differs."""
    xp.require(dtype)
    x = round_to(rng.normal(size=(4, 6)) * 4, dtype)
    tol = {"float16": dict(rtol=2e-3, atol=1e-4), "bfloat16": dict(rtol=1.6e-2, atol=1e-3)}[dtype]
    np.testing.assert_allclose(call(xp, "softmax", x, dtype), sp.softmax(x, axis=-1), **tol)
    np.testing.assert_allclose(call(xp, "log_softmax", x, dtype), sp.log_softmax(x, axis=-1), **tol)
    np.testing.assert_allclose(call(xp, "logsumexp", x, dtype), sp.logsumexp(x, axis=-1), **tol)
    np.testing.assert_allclose(call(xp, "sigmoid", x, dtype), sp.expit(x), **tol)
    np.testing.assert_allclose(call(xp, "log_sigmoid", x, dtype), sp.log_expit(x), **tol)


@pytest.mark.parametrize("dtype", ["float16"])
def test_float16_near_max(xp, dtype):
    """float16 max is 65504: exp(6e4) overflows any half computation.

    logsumexp([6e4, 6e4]) = 6e4 + log 2 -> 60000 in float16 (spacing 32);
    softmax([6e4, -6e4]) = [1, 0]; log_sigmoid(-6e4) = -6e4.
    """
    xp.require(dtype)
    np.testing.assert_allclose(call(xp, "logsumexp", np.array([6e4, 6e4]), "float16"), 6e4)
    np.testing.assert_allclose(call(xp, "softmax", np.array([6e4, -6e4]), "float16"), [1, 0])
    np.testing.assert_allclose(call(xp, "log_sigmoid", np.array([-6e4, 6e4]), "float16"), [-6e4, 0])


def test_empty(xp):
    assert call(xp, "softmax", np.zeros((0, 3))).shape == (0, 3)
    assert call(xp, "log_softmax", np.zeros((0, 3))).shape == (0, 3)
    assert call(xp, "logsumexp", np.zeros((0, 3))).shape == (0,)
    assert call(xp, "sigmoid", np.zeros((0,))).shape == (0,)
    assert call(xp, "log_sigmoid", np.zeros((0,))).shape == (0,)


def test_lists_become_numpy():
    out = lk.softmax([1.0, 2.0, 3.0])
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, sp.softmax([1.0, 2.0, 3.0]), rtol=1e-12)
    assert isinstance(lk.sigmoid([0.0, 1.0]), np.ndarray)


def test_autograd_through_activations(autograd_xp, rng):
    """torch autograd / jax.vjp through losskit's activations equals the frameworks' own."""
    xp = autograd_xp
    x = rng.normal(size=(3, 5))
    x[1] = 0.0  # exactly 0 (zero-initialised models) and ties for the max
    x[2, :3] = 1.5
    w = rng.normal(size=(3, 5))  # a random cotangent, so the test sees the whole Jacobian
    if xp.name == "torch":
        import torch

        refs = {
            "softmax": lambda z: torch.softmax(z, -1),
            "log_softmax": lambda z: torch.log_softmax(z, -1),
            "sigmoid": torch.sigmoid,
            "log_sigmoid": torch.nn.functional.logsigmoid,
        }
    else:
        import jax

        refs = {
            "softmax": jax.nn.softmax,
            "log_softmax": jax.nn.log_softmax,
            "sigmoid": jax.nn.sigmoid,
            "log_sigmoid": jax.nn.log_sigmoid,
        }
    wb = xp.asarray(w)
    for name, ref in refs.items():
        fn = getattr(lk, name)
        _, g = xp.autograd(lambda z, f=fn: f(z) * wb, xp.asarray(x))
        _, g_ref = xp.autograd(lambda z, f=ref: f(z) * wb, xp.asarray(x))
        assert_close(xp.to_numpy(g), xp.to_numpy(g_ref), kind="grad", err_msg=name)
    _, g = xp.autograd(lambda z: lk.logsumexp(z, axis=0), xp.asarray(x))
    assert_close(xp.to_numpy(g), sp.softmax(x, axis=0), kind="grad")
