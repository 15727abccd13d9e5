"""huber, log_cosh, mean_absolute_percentage_error, mean_squared_logarithmic_error.

Against the frameworks themselves in float64 (PyTorch's ``huber_loss`` and
``smooth_l1_loss``, Keras 3's ``huber``, ``log_cosh``, ``mean_absolute_percentage_error``,
``mean_squared_logarithmic_error``, optax's ``huber_loss`` and ``log_cosh``), values and
``value_and_grad`` gradients on every backend, each reduction and ``sample_weight``;
edge cases (kinks, huge errors, the clip of MSLE, targets of 0), half precision,
empty batches, option errors, derivatives for every floating argument under torch
autograd and ``jax.grad``, the NaN rule under ``jax.jit`` and ``torch.compile``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from _refs_regression import keras_ref, optax_ref, reduce_ref, run, torch_ref
from conftest import assert_close, round_to
from losskit.losses.regression import (
    huber,
    log_cosh,
    mean_absolute_percentage_error,
    mean_squared_logarithmic_error,
)

REDUCTIONS = ("none", "sum", "mean")
LOSSES = {
    "huber": huber,
    "log_cosh": log_cosh,
    "mape": mean_absolute_percentage_error,
    "msle": mean_squared_logarithmic_error,
}


def _data(name: str, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth inputs: no error at a kink, percentages of targets away from 0, MSLE
    predictions above its epsilon."""
    rng = np.random.default_rng(seed)
    sign = rng.choice([-1.0, 1.0], size=shape)
    if name == "mape":
        t = sign * rng.uniform(0.5, 3.0, size=shape)
        return t + rng.normal(size=shape), t
    if name == "msle":
        return rng.uniform(0.01, 5.0, size=shape), rng.uniform(0.0, 5.0, size=shape)
    p = rng.normal(size=shape) * 2
    return p, p + sign * rng.uniform(0.1, 3.0, size=shape)


# (loss, options, shape): errors span both sides of delta for every huber case
CASES = {
    "huber": ("huber", {}, (4, 3)),
    "huber-delta0.5": ("huber", {"delta": 0.5}, (2, 3, 4)),
    "huber-delta2": ("huber", {"delta": 2.0}, (9,)),
    "log_cosh": ("log_cosh", {}, (4, 3)),
    "mape": ("mape", {}, (4, 3)),
    "msle": ("msle", {}, (3, 5)),
}


def _keras_name(name: str) -> str:
    return {
        "mape": "mean_absolute_percentage_error",
        "msle": "mean_squared_logarithmic_error",
    }.get(name, name)


@functools.cache
def _refs(case_id: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every framework's unreduced loss and derivative in the prediction, for one case."""
    import torch.nn.functional as F

    name, opts, shape = CASES[case_id]
    p, t = _data(name, shape, seed=len(case_id))
    out = {"keras": keras_ref(_keras_name(name), p, t, **opts)}
    if name == "log_cosh":
        # Keras subtracts log 2 computed in float32 (ops.log(2.0)) even in float64
        per, dper = out["keras"]
        out["keras"] = (per + (float(np.float32(math.log(2))) - math.log(2)), dper)
    if name == "huber":
        out["torch"] = torch_ref(F.huber_loss, p, t, **opts)
        out["optax"] = optax_ref("huber_loss", p, t, **opts)
    if name == "log_cosh":
        out["optax"] = optax_ref("log_cosh", p, t)
    return out


@pytest.mark.parametrize(
    ("reduction", "weighted"),
    [("none", False), ("sum", True), ("mean", False), ("mean", True)],
)
@pytest.mark.parametrize("case_id", CASES)
def test_matches_every_framework(xp, case_id, reduction, weighted):
    name, opts, shape = CASES[case_id]
    p, t = _data(name, shape, seed=len(case_id))
    sw = np.random.default_rng(3).uniform(0.0, 2.0, size=shape[:1]) if weighted else None
    got_v, got_g = run(xp, LOSSES[name], p, t, reduction=reduction, sample_weight=sw, **opts)
    for framework, (per, dper) in _refs(case_id).items():
        exp_v, exp_g = reduce_ref(per, dper, reduction, sw)
        assert_close(got_v, exp_v, err_msg=f"{case_id} value vs {framework}")
        assert_close(got_g, exp_g, kind="grad", err_msg=f"{case_id} gradient vs {framework}")


@pytest.mark.parametrize("beta", [0.25, 1.0, 3.0])
def test_smooth_l1_is_huber_over_beta(xp, beta):
    """PyTorch's smooth_l1_loss(beta) = huber_loss(delta=beta) / beta, values and gradients."""
    import torch.nn.functional as F

    p, t = _data("huber", (5, 4), seed=11)
    per, dper = torch_ref(F.smooth_l1_loss, p, t, beta=beta)
    v, g = run(xp, huber, p, t, delta=beta, reduction="none")
    assert_close(v / beta, per)
    assert_close(g / beta, dper, kind="grad")


def test_keras_averages_the_last_axis(keras_losses):
    """Keras's own (N, C) call is the core's "none" averaged over the last axis."""
    for case_id in ("huber-delta0.5", "log_cosh", "mape", "msle"):
        name, opts, shape = CASES[case_id]
        p, t = _data(name, shape, seed=5)
        expected = np.asarray(getattr(keras_losses, _keras_name(name))(t, p, **opts))
        if name == "log_cosh":
            expected = expected + (float(np.float32(math.log(2))) - math.log(2))  # see _refs
        got = LOSSES[name](p, t, reduction="none", **opts)
        assert_close(got.mean(axis=-1), expected, err_msg=case_id)


# --------------------------------------------------------------------------- edge cases


def test_huber_kinks(xp):
    """Error 0: loss 0, derivative 0 (every framework); error ±delta: loss delta^2/2 and
    derivative ±delta from both sides (torch, Keras and optax agree)."""
    import torch.nn.functional as F

    p = np.array([0.0, 1.5, -1.5, 2.0])
    t = np.array([0.0, 0.0, 0.0, 2.0])
    v, g = run(xp, huber, p, t, delta=1.5, reduction="none")
    np.testing.assert_array_equal(v, [0.0, 1.125, 1.125, 0.0])
    np.testing.assert_array_equal(g, [0.0, 1.5, -1.5, 0.0])
    for per, dper in (
        torch_ref(F.huber_loss, p, t, delta=1.5),
        optax_ref("huber_loss", p, t, delta=1.5),
        keras_ref("huber", p, t, delta=1.5),
    ):
        np.testing.assert_array_equal(per, v)
        np.testing.assert_array_equal(dper, g)


def test_huber_huge_errors(xp):
    """delta = 0.5 in float32: 3e38 - (-3e38) overflows, the loss 0.5 (6e38 - 0.25) = 3e38
    does not; derivative 0.5.  ±1e4: 0.5 (1e4 - 0.25) = 4999.875, derivative ±0.5."""
    p = np.array([3e38, -3e38, 1e4, -1e4, 0.0])
    t = np.array([-3e38, 3e38, 0.0, 0.0, 0.0])
    v, g = run(xp, huber, p, t, dtype="float32", delta=0.5, reduction="none")
    np.testing.assert_allclose(v, [3e38, 3e38, 4999.875, 4999.875, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(g, [0.5, -0.5, 0.5, -0.5, 0.0])


def test_log_cosh_extremes(xp):
    """log cosh e = e^2/2 - e^4/12 + ... : 1e-9 -> 5e-19 (the frameworks' log-sum-exp
    form gives 0); 1e4 -> 1e4 - log 2; a float32 error of 3e38 -> 3e38 (finite);
    derivatives tanh e."""
    p = np.array([1e-9, -1e-4, 1e4, -1e4, 0.0])
    v, g = run(xp, log_cosh, p, np.zeros(5), reduction="none")
    expected = [5e-19, 0.5e-8 - 1e-16 / 12, 1e4 - math.log(2), 1e4 - math.log(2), 0.0]
    np.testing.assert_allclose(v, expected, rtol=1e-14, atol=0)
    np.testing.assert_allclose(g, np.tanh(p), rtol=1e-14, atol=0)
    p32 = np.array([3e38, -3e38])
    v, g = run(xp, log_cosh, p32, np.zeros(2), dtype="float32", reduction="none")
    np.testing.assert_allclose(v, np.float32(3e38) - np.float32(math.log(2)), rtol=1e-7)
    np.testing.assert_array_equal(g, [1.0, -1.0])


def test_mape_edges(xp):
    """A target of 0 divides by Keras's epsilon 1e-7: |p| 1e9; p = t gives 0 and a zero
    derivative; float32 t = 3e38, p = -3e38 gives 200 although p - t overflows."""
    p = np.array([2.0, 5.0, -3e38, 1e-3])
    t = np.array([0.0, 5.0, 3e38, 0.0])
    v, g = run(xp, mean_absolute_percentage_error, p, t, dtype="float32", reduction="none")
    np.testing.assert_allclose(v, [2e9, 0.0, 200.0, 1e6], rtol=1e-6)
    np.testing.assert_allclose(g, [1e9, 0.0, -100 / 3e38, 1e9], rtol=1e-6)
    per, dper = keras_ref("mean_absolute_percentage_error", p[[0, 1, 3]], t[[0, 1, 3]])
    np.testing.assert_allclose(v[[0, 1, 3]], per, rtol=1e-6)
    np.testing.assert_allclose(g[[0, 1, 3]], dper, rtol=1e-6)


def test_msle_below_epsilon_and_huge(xp):
    """Predictions and targets below 1e-7 are raised to it (Keras): p = -1 or 0 against
    t = 0 gives 0 and derivative 0 (clipped); p = 3e38 against t = 0 in float32:
    log1p(3e38)^2 = 88.59^2, derivative 2 * 88.59 / 3e38."""
    p = np.array([-1.0, 0.0, 3e38])
    v, g = run(xp, mean_squared_logarithmic_error, p, np.zeros(3), dtype="float32")
    big = math.log1p(3e38)
    np.testing.assert_allclose(v, big**2 / 3, rtol=1e-6)
    np.testing.assert_allclose(g, [0.0, 0.0, 2 * big / 3e38 / 3], rtol=1e-6)
    per, dper = keras_ref("mean_squared_logarithmic_error", p[:2], np.zeros(2))
    np.testing.assert_array_equal(per, [0.0, 0.0])
    np.testing.assert_array_equal(dper, [0.0, 0.0])


def test_msle_uses_log1p_where_keras_rounds(keras_losses):
    """float32 p = 1e-6, t = 0: log1p gives (1e-6 - 1e-7)^2 = 8.1e-13; Keras's
    log(p + 1) rounds 1 + 1e-6 and 1 + 1e-7 first: (9.537e-7 - 1.192e-7)^2 = 6.96e-13."""
    p, t = np.array([[1e-6]], np.float32), np.zeros((1, 1), np.float32)
    got = float(mean_squared_logarithmic_error(p, t))
    np.testing.assert_allclose(got, (1e-6 - 1e-7) ** 2, rtol=1e-5)
    keras_value = float(np.asarray(keras_losses.mean_squared_logarithmic_error(t, p))[0])
    np.testing.assert_allclose(keras_value, 6.96e-13, rtol=1e-2)


@pytest.mark.parametrize("name", LOSSES)
def test_empty(xp, name):
    for reduction in REDUCTIONS:
        v, g = run(xp, LOSSES[name], np.zeros((0, 3)), np.zeros((0, 3)), reduction=reduction)
        assert_close(v, np.zeros((0, 3)) if reduction == "none" else 0.0)
        assert g.shape == (0, 3)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("case_id", ["huber-delta0.5", "log_cosh", "mape", "msle"])
def test_half_precision(xp, case_id, dtype):
    """Half input: the float32 loss of the rounded input, the gradient in half."""
    xp.require(dtype)
    name, opts, shape = CASES[case_id]
    p, t = (round_to(a, dtype) for a in _data(name, shape, seed=len(case_id)))
    for reduction in REDUCTIONS:
        got_v, got_g = run(xp, LOSSES[name], p, t, dtype=dtype, reduction=reduction, **opts)
        exp_v, exp_g = run(xp, LOSSES[name], p, t, reduction=reduction, **opts)
        assert_close(got_v, exp_v, dtype)
        assert_close(got_g, exp_g, dtype, kind="grad")


def test_float16_beyond_its_range():
    """float16 errors of 1.2e5 (beyond float16's 65504) are computed in float32:
    huber 1.2e5 - 0.5, log cosh 1.2e5 - log 2."""
    p = np.array([6e4], np.float16)
    assert float(huber(p, -p)) == pytest.approx(1.2e5 - 0.5, rel=1e-6)
    assert float(log_cosh(p, -p)) == pytest.approx(1.2e5 - math.log(2), rel=1e-6)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("delta", "error"),
    [
        (0.0, ValueError),
        (-1.0, ValueError),
        (math.inf, ValueError),
        (math.nan, ValueError),
        ("1", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_huber_delta_errors(delta, error):
    with pytest.raises(error) as info:
        huber(np.zeros(2), np.zeros(2), delta=delta)
    assert str(info.value) == f"`delta` must be a positive finite number; got {delta!r}"


def test_msle_refuses_negative_targets():
    with pytest.raises(ValueError) as info:
        mean_squared_logarithmic_error(np.ones((2, 2)), np.array([[1.0, 0.0], [-0.5, 2.0]]))
    assert str(info.value) == "`target` must be non-negative; got -0.5 at position (1, 0)"
    with pytest.raises(ValueError, match=r"^`target` must be non-negative; got nan at position"):
        mean_squared_logarithmic_error(np.ones(2), np.array([1.0, math.nan]))


def test_msle_framework_rules_skip_the_target_rule(keras_losses):
    """The compat adapters compute with negative targets, as Keras (raised to 1e-7)."""
    from losskit import _config

    p, t = np.array([[0.5, 2.0]]), np.array([[-3.0, 1.0]])
    with _config.framework_rules():
        got = mean_squared_logarithmic_error(p, t, reduction="none")
    assert_close(got.mean(axis=-1), np.asarray(keras_losses.mean_squared_logarithmic_error(t, p)))


def test_shapes_are_not_broadcast():
    with pytest.raises(ValueError, match=r"^`target` must have the shape of `pred` \(3,\)"):
        huber(np.zeros(3), np.zeros(1))


# --------------------------------------------------------------------------- autograd


def _plain(name: str, ops, p, t, opts):
    """Each loss from its textbook definition (no stability devices)."""
    if name == "huber":
        d = opts.get("delta", 1.0)
        a = ops.abs(p - t)
        return ops.where(a <= d, 0.5 * (p - t) ** 2, d * (a - 0.5 * d))
    if name == "log_cosh":
        return ops.log(ops.cosh(p - t))
    if name == "mape":
        return 100 * ops.abs(p - t) / ops.clip(ops.abs(t), min=1e-7)
    return (ops.log(1 + ops.clip(p, min=1e-7)) - ops.log(1 + ops.clip(t, min=1e-7))) ** 2


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("case_id", CASES)
def test_torch_gradcheck_every_argument(case_id, reduction):
    """pred, target and sample_weight: finite differences of losskit's own value and of
    its first derivatives, and the first derivatives of the plain formula."""
    import torch

    name, opts, shape = CASES[case_id]
    p, t = _data(name, shape, seed=len(case_id))
    sw = np.random.default_rng(1).uniform(0.5, 2.0, size=shape[:1])
    args = tuple(torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (p, t, sw))

    def loss(p, t, s):
        return LOSSES[name](p, t, sample_weight=s, reduction=reduction, **opts)

    assert torch.autograd.gradcheck(loss, args)
    assert torch.autograd.gradgradcheck(loss, args)

    def plain(p, t, s):
        s = s.reshape((-1,) + (1,) * (p.ndim - 1))
        per = _plain(name, torch, p, t, opts) * s
        if reduction == "none":
            return per
        return per.sum() / s.expand(p.shape).sum()

    cot = torch.tensor(np.random.default_rng(2).normal(size=shape if reduction == "none" else ()))
    got = torch.autograd.grad(loss(*args), args, cot)
    expected = torch.autograd.grad(plain(*args), args, cot)
    for g, e, what in zip(got, expected, ("pred", "target", "sample_weight"), strict=True):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-9, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("case_id", CASES)
def test_jax_grad_every_argument(case_id):
    """jax.grad of losskit under jit equals jax.grad of the plain jnp formula (eager
    jax.grad: test_huge_errors_keep_finite_autograd_derivatives)."""
    import jax
    import jax.numpy as jnp

    name, opts, shape = CASES[case_id]
    p, t = _data(name, shape, seed=len(case_id))
    sw = np.random.default_rng(1).uniform(0.5, 2.0, size=shape[:1])
    args = tuple(jnp.asarray(a) for a in (p, t, sw))

    def loss(p, t, s):
        return LOSSES[name](p, t, sample_weight=s, reduction="sum", **opts)

    def plain(p, t, s):
        return jnp.sum(_plain(name, jnp, p, t, opts) * s.reshape((-1,) + (1,) * (p.ndim - 1)))

    expected = jax.jit(jax.grad(plain, argnums=(0, 1, 2)))(*args)
    got = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(*args)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("xp_name", ["torch", "jax"])
def test_huge_errors_keep_finite_autograd_derivatives(xp_name):
    """float32 huber (delta 0.5) and log cosh of 3e38 - (-3e38): autograd derivatives
    are ±delta and ±1, never the NaN of inf * 0 behind a where."""
    p = np.array([3e38, -3e38, 0.0], np.float32)
    t = -p
    for fn, opts, expected in ((huber, {"delta": 0.5}, 0.5), (log_cosh, {}, 1.0)):
        if xp_name == "torch":
            import torch

            x = torch.tensor(p, requires_grad=True)
            (g,) = torch.autograd.grad(fn(x, torch.tensor(t), reduction="sum", **opts), x)
            g = g.numpy()
        else:
            import jax
            import jax.numpy as jnp

            total = functools.partial(fn, target=jnp.asarray(t), reduction="sum", **opts)
            g = np.asarray(jax.grad(total)(p))
        np.testing.assert_array_equal(g, [expected, -expected, 0.0])


# --------------------------------------------------------------------------- traced


def test_jit_nan_rule_msle_target():
    """Under jax.jit a negative target cannot be read: its element is NaN in the value
    and the gradient, the others equal the eager ones."""
    import jax
    import jax.numpy as jnp

    p = jnp.asarray([[0.5, 1.0], [2.0, 3.0]])
    good, bad = np.array([[1.0, 0.0], [2.0, 1.0]]), np.array([[1.0, 0.0], [-2.0, 1.0]])
    fn = jax.jit(lambda p, t: mean_squared_logarithmic_error(p, t, reduction="none"))
    grad = jax.jit(jax.grad(lambda p, t: mean_squared_logarithmic_error(p, t, reduction="sum")))
    v, g = np.asarray(fn(p, jnp.asarray(bad))), np.asarray(grad(p, jnp.asarray(bad)))
    eager_v = np.asarray(mean_squared_logarithmic_error(p, jnp.asarray(good), reduction="none"))
    eager_g = np.asarray(grad(p, jnp.asarray(good)))
    mask = bad < 0
    assert np.isnan(v[mask]).all() and np.isnan(g[mask]).all()
    np.testing.assert_allclose(v[~mask], eager_v[~mask])
    np.testing.assert_allclose(g[~mask], eager_g[~mask])


@pytest.mark.parametrize("case_id", ["huber-delta0.5", "log_cosh", "mape", "msle"])
def test_torch_compile_equals_eager(case_id):
    """fullgraph, no graph break; huber's delta changing between calls is traced
    symbolically by the recompile, and must not be formatted or read there."""
    import torch

    name, opts, shape = CASES[case_id]
    p, t = (torch.tensor(a) for a in _data(name, shape, seed=len(case_id)))
    sw = torch.linspace(0.5, 2.0, shape[0], dtype=torch.float64)

    def fn(p, t, s, **kw):
        return LOSSES[name](p, t, sample_weight=s, **kw)

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    for kw in ({"delta": 0.5}, {"delta": 2.0}) if name == "huber" else (opts,):
        torch.testing.assert_close(compiled(p, t, sw, **kw), fn(p, t, sw, **kw))
