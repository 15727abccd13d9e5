"""The similarity losses (losskit.losses.similarity) against optax, Keras 3 and torch.

Values and ``value_and_grad`` gradients on every backend of the ``xp`` fixture, in
float64 against the frameworks (``tests/_refs_similarity.py``) under each reduction and
``sample_weight``; torch autograd and ``jax.grad`` of the core for every floating
argument (and ``gradcheck``); the subgradient at the kinks; the value rules (eager
errors, NaN under ``jax.jit`` and ``torch.compile``); half precision; magnitudes whose
squares overflow or underflow; zero vectors; empty batches; the feature ``axis``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest

from _refs_similarity import (
    NAMES,
    keras_ref,
    make_case,
    optax_ref,
    reduce,
    torch_pairwise_distance,
    torch_ref,
)
from conftest import Backend, assert_close, loss_dtype, round_to
from losskit import _config, value_and_grad
from losskit.losses import similarity

REDUCTIONS = ("none", "sum", "mean")
FLOATING_TRUTH = {"margin_ranking"}  # targets that enter the value, not only a comparison


def fn_of(name: str) -> Any:
    return getattr(similarity, name)


@functools.cache
def case(name: str) -> tuple[tuple[np.ndarray, ...], dict]:
    return make_case(name)


def reference(name: str, arrays: tuple[np.ndarray, ...], options: dict) -> tuple[Any, list]:
    """The anchor framework's numbers for the core's call."""
    if name == "cosine_distance":
        # optax clamps the squared norm at epsilon: the core's eps is its square root
        return optax_ref(name, arrays, epsilon=options["eps"] ** 2)
    return torch_ref(name, arrays, **options)


@functools.cache
def expected(name: str, dtype: str = "float64") -> tuple[Any, list]:
    arrays, options = case(name)
    return reference(name, tuple(round_to(a, dtype) for a in arrays), options)


def run(xp: Any, fn: Any, arrays: tuple, dtype: str = "float64", **opts: Any):
    """``fn`` and ``value_and_grad(fn)`` on ``xp`` (jitted on JAX), as NumPy."""
    xs = [xp.asarray(a, dtype) for a in arrays]
    sw = opts.pop("sample_weight", None)
    sw = None if sw is None else xp.asarray(sw, loss_dtype(dtype))

    def calls(*a: Any) -> Any:
        *arrs, w = a
        return fn(*arrs, **opts, sample_weight=w), *value_and_grad(fn)(
            *arrs, **opts, sample_weight=w
        )

    if xp.name == "jax":
        import jax

        calls = jax.jit(calls)
    value, v2, grad = calls(*xs, sw)
    assert xp.is_native(value) and xp.is_native(grad)
    assert xp.dtype_name(value) == loss_dtype(dtype)
    assert xp.dtype_name(grad) == dtype
    assert tuple(grad.shape) == tuple(np.shape(arrays[0]))
    assert_close(xp.to_numpy(v2), xp.to_numpy(value), loss_dtype(dtype))
    return xp.to_numpy(value), xp.to_numpy(grad)


# ----------------------------------------------------------------------- the frameworks' numbers


@pytest.mark.parametrize("name", NAMES)
def test_matches_framework(xp, name):
    """Each reduction, with and without sample_weight, on the anchor framework's numbers
    (optax for cosine_distance, torch for the others)."""
    arrays, options = case(name)
    per, grads = expected(name)
    sw = np.random.default_rng(3).uniform(0.0, 2.0, size=per.shape)
    for reduction in REDUCTIONS:
        for weight in (None, sw):
            value, grad = run(
                xp, fn_of(name), arrays, reduction=reduction, sample_weight=weight, **options
            )
            ev, eg = reduce(per, grads, reduction, weight)
            what = f"{name} {reduction} sample_weight={weight is not None}"
            assert_close(value, ev, err_msg=what)
            assert_close(grad, eg, kind="grad", err_msg=what)


@pytest.mark.parametrize(
    "options",
    [
        dict(p=1.0),
        dict(p=3.5, swap=True),
        dict(eps=0.0, swap=True),
        dict(p=math.inf),
        dict(p=math.inf, swap=True, eps=0.0),
    ],
)
def test_triplet_options_match_torch(options):
    """p-norms, the swap and eps against torch.nn.functional.triplet_margin_loss."""
    (a, p, n), _ = case("triplet_margin")
    per, grads = torch_ref("triplet_margin", (a, p, n), margin=1.5, **options)
    value, grad = value_and_grad(similarity.triplet_margin)(
        a, p, n, margin=1.5, reduction="none", **options
    )
    assert_close(value, per)
    assert_close(grad, grads[0], kind="grad")


def test_triplet_p_inf_autograd_is_torchs():
    """p=inf (the largest |x_i - y_i + eps|): torch autograd and jax.grad of the core, for
    every array, equal PyTorch's own triplet_margin_loss(p=inf) derivatives."""
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    (a, p, n), _ = case("triplet_margin")
    per, grads = torch_ref("triplet_margin", (a, p, n), margin=5.0, p=math.inf, swap=True)
    assert (per > 0).all()  # away from the kink, where the core's slope is 1/2
    ts = [torch.tensor(x, requires_grad=True) for x in (a, p, n)]
    opts = dict(margin=5.0, p=math.inf, swap=True, reduction="sum")
    similarity.triplet_margin(*ts, **opts).backward()
    jg = jax.grad(lambda *x: similarity.triplet_margin(*x, **opts), argnums=(0, 1, 2))(a, p, n)
    for i in range(3):
        assert_close(ts[i].grad.numpy(), grads[i], kind="grad", err_msg=f"torch d/d array {i}")
        assert_close(np.asarray(jg[i]), grads[i], kind="grad", err_msg=f"jax d/d array {i}")


@pytest.mark.parametrize("norm_degree", [2, 4])
def test_triplet_eps_in_the_sum_is_optax(norm_degree):
    """eps_at='sum' is optax's triplet_margin_loss (eps inside the sum of powers)."""
    (a, p, n), _ = case("triplet_margin")
    per, grads = optax_ref(
        "triplet_margin", (a, p, n), norm_degree=norm_degree, margin=2.0, eps=1e-2
    )
    fn = similarity.triplet_margin
    opts = dict(p=norm_degree, margin=2.0, eps=1e-2, eps_at="sum", reduction="none")
    value, grad = value_and_grad(fn)(a, p, n, **opts)
    assert_close(value, per)
    assert_close(grad, grads[0], kind="grad")
    # and the anchor's identical copies: optax is differentiable there too
    per, grads = optax_ref(
        "triplet_margin", (a, a, n), norm_degree=norm_degree, margin=2.0, eps=1e-2
    )
    value, grad = value_and_grad(fn)(a, a, n, **opts)
    assert_close(value, per)
    assert_close(grad, grads[0], kind="grad")


def test_triplet_distance_is_pairwise_distance():
    """With the loss linear in d(a, p) (negative far away), its value is torch's
    pairwise_distance (eps added to the difference) plus the margin."""
    (a, p, _), _ = case("triplet_margin")
    far = a + 1e3
    for q in (1.0, 2.0, 3.0):
        value = similarity.triplet_margin(a, p, far, margin=1e4, p=q, reduction="none")
        d_far = torch_pairwise_distance(a, far, q, 1e-6)
        assert_close(value, 1e4 + torch_pairwise_distance(a, p, q, 1e-6) - d_far)


def test_cosine_distance_matches_keras_and_optax_similarity(some_xp):
    """Keras's cosine_similarity is value - 1 with eps=1e-7 (its normalize), in both
    arguments' derivatives; optax's cosine_similarity is 1 - value."""
    (p, t), _ = case("cosine_distance")
    per, (gt, gp) = keras_ref(t, p)
    value, grad = run(some_xp, similarity.cosine_distance, (p, t), eps=1e-7, reduction="none")
    assert_close(value - 1, per)
    assert_close(grad, gp, kind="grad")
    swapped = run(some_xp, similarity.cosine_distance, (t, p), eps=1e-7, reduction="none")
    assert_close(swapped[1], gt, kind="grad")
    neg = run(some_xp, similarity.negative_cosine_similarity, (p, t), eps=1e-7, reduction="none")
    assert_close(neg[0], per)
    assert_close(neg[1], gp, kind="grad")
    per, grads = optax_ref("cosine_similarity", (p, t), epsilon=1e-6)
    value, grad = run(some_xp, similarity.cosine_distance, (p, t), eps=1e-3, reduction="none")
    assert_close(1 - value, per)
    assert_close(-grad, grads[0], kind="grad")


@pytest.fixture(params=("numpy", "torch", "array_api_strict"))
def some_xp(request: Any) -> Backend:
    """The backends for the checks beyond test_matches_framework (JAX's cold compiles
    would double the file's time for code paths test_matches_framework runs)."""
    pytest.importorskip(request.param)
    return Backend(request.param)


@pytest.mark.parametrize("name", ["cosine_distance", "cosine_embedding", "triplet_margin"])
def test_feature_axis(some_xp, name):
    """axis=0 is the transposed problem: values equal, gradient transposed."""
    arrays, options = case(name)
    width = arrays[0].ndim
    moved = tuple(a.T if a.ndim == width else a for a in arrays)
    v0, g0 = run(some_xp, fn_of(name), arrays, reduction="none", **options)
    v1, g1 = run(some_xp, fn_of(name), moved, axis=0, reduction="none", **options)
    assert_close(v1, v0)
    assert_close(g1, g0.T, kind="grad")


# --------------------------------------------------------------- every argument's derivative


def _floating(name: str) -> tuple[int, ...]:
    """Which positional arrays are floating inputs to differentiate."""
    return (0, 1, 2) if name in ("triplet_margin", *FLOATING_TRUTH) else (0, 1)


@pytest.mark.parametrize("name", NAMES)
def test_autograd_every_argument(autograd_xp, name):
    """torch autograd and jax.grad of the core (sum reduction, with sample_weight) in each
    floating array and in sample_weight: the framework's derivatives scaled by the
    weights, and d/dw_i = loss_i."""
    arrays, options = case(name)
    per, grads = expected(name)
    sw = np.random.default_rng(5).uniform(0.5, 2.0, size=per.shape)
    fn = fn_of(name)
    which = _floating(name)
    if autograd_xp.name == "torch":
        import torch

        ts = [torch.tensor(a, requires_grad=i in which) for i, a in enumerate(arrays)]
        w = torch.tensor(sw, requires_grad=True)
        out = fn(*ts, sample_weight=w, reduction="sum", **options)
        got = torch.autograd.grad(out, [ts[i] for i in which] + [w])
        got = [g.numpy() for g in got]
    else:
        import jax
        import jax.numpy as jnp

        def total(*a: Any) -> Any:
            return fn(*a[:-1], sample_weight=a[-1], reduction="sum", **options)

        js = [jnp.asarray(a) for a in (*arrays, sw)]
        got = jax.jit(jax.grad(total, argnums=(*which, len(arrays))))(*js)
        got = [np.asarray(g) for g in got]
    for i, g in zip(which, got[:-1], strict=True):
        expect = grads[i] * sw.reshape(sw.shape + (1,) * (grads[i].ndim - 1))
        assert_close(g, expect, kind="grad", err_msg=f"{name} d/d array {i}")
    assert_close(got[-1], per, kind="grad", err_msg=f"{name} d/d sample_weight")


@pytest.mark.parametrize("name", NAMES)
def test_torch_gradcheck_every_floating_argument(name):
    """Finite differences of the core in torch, float64: every floating array and
    sample_weight, the mean and the swap's branch included (inside framework_rules,
    so that a step off a -1/1 target is allowed)."""
    torch = pytest.importorskip("torch")
    arrays, options = case(name)
    arrays = tuple(a[:3] for a in arrays)
    if name == "triplet_margin":
        options = {**options, "swap": True, "p": 3.0}
    which = _floating(name)
    fn = fn_of(name)
    inputs = [torch.tensor(a, requires_grad=i in which) for i, a in enumerate(arrays)]
    w = torch.tensor(np.array([0.5, 1.0, 2.0]), requires_grad=True)

    def call(*diff: Any) -> Any:
        it = iter(diff)
        args = [next(it) if i in which else a for i, a in enumerate(inputs)]
        with _config.framework_rules():  # a step off a -1/1 target is allowed
            return fn(*args, sample_weight=next(it), reduction="mean", **options)

    assert torch.autograd.gradcheck(call, [inputs[i] for i in which] + [w], eps=1e-6, atol=1e-6)


def test_second_derivatives_exist():
    """torch's double backward of the cosine (the scale held without gradient)."""
    torch = pytest.importorskip("torch")
    (p, t), _ = case("cosine_distance")
    pt = torch.tensor(p[1:3], requires_grad=True)
    tt = torch.tensor(t[1:3], requires_grad=True)
    assert torch.autograd.gradgradcheck(
        lambda a, b: similarity.cosine_distance(a, b, reduction="sum"),
        [pt, tt],
        eps=1e-6,
        atol=1e-5,
    )


# --------------------------------------------------------------------------- kinks and ties


def test_kinks_share_the_gradient(xp):
    """At each hinge's kink the core's slope is 1/2 (a tie in max(m, 0) shares), by hand.

    margin_ranking with x1 - x2 = margin = 0.5, t = 1: d/dx1 = -1/2.
    cosine_embedding with t = -1, x1 = (0, 2), x2 = (3, 0): cos = 0 = margin (exact in
    any order of operations); d/dx1 = 1/2 (x2/|x2| - cos x1/|x1|)/|x1| = (0.25, 0).
    triplet_margin with a = (0, 0), p = (3, 4), n = (0, 5), margin 0, eps 0: m = 5 - 5 = 0;
    d/da = 1/2 ((a - p)/5 - (a - n)/5) = 1/2 (-0.6, 0.2).
    """
    v, g = run(
        xp,
        similarity.margin_ranking,
        (np.array([1.5]), np.array([1.0]), np.array([1.0])),
        margin=0.5,
        reduction="sum",
    )
    assert_close(g, [-0.5], kind="grad")
    v, g = run(
        xp,
        similarity.cosine_embedding,
        (np.array([[0.0, 2.0]]), np.array([[3.0, 0.0]]), np.array([-1.0])),
        margin=0.0,
        reduction="sum",
    )
    assert_close(v, 0.0)
    assert_close(g, [[0.25, 0.0]], kind="grad")
    # triplet_margin at its kink
    a, p, n = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), np.array([[0.0, 5.0]])
    v, g = run(xp, similarity.triplet_margin, (a, p, n), margin=0.0, eps=0.0, reduction="sum")
    assert_close(v, 0.0)
    assert_close(g, [[-0.3, 0.1]], kind="grad")
    # a swap's tie: a = (0, 0), p = (0, 10), n = (0, 5), d(a, n) = d(p, n) = 5, margin 6:
    # m = 6 + 10 - 5 = 11, d/da = (a - p)/10 - 1/2 (a - n)/5 = (0, -1) + (0, 0.5)
    p2 = np.array([[0.0, 10.0]])
    v, g = run(
        xp, similarity.triplet_margin, (a, p2, n), margin=6.0, eps=0.0, swap=True, reduction="sum"
    )
    assert_close(v, 11.0)
    assert_close(g, [[0.0, -0.5]], kind="grad")


def _jit(xp: Backend, fn: Any) -> Any:
    """``fn`` jitted on JAX (a cold eager JAX call compiles each operation: seconds)."""
    if xp.name != "jax":
        return fn
    import jax

    return jax.jit(fn)


def test_kinks_under_autograd(autograd_xp):
    """torch autograd and jax.grad of the core take the same 1/2 at the kinks and ties."""
    cases = [
        (
            similarity.margin_ranking,
            (np.array([1.5]), np.array([1.0]), np.array([1.0])),
            dict(margin=0.5),
            [-0.5],
        ),
        (
            similarity.cosine_embedding,
            (np.array([[0.0, 2.0]]), np.array([[3.0, 0.0]]), np.array([-1.0])),
            dict(margin=0.0),
            [[0.25, 0.0]],
        ),
        (
            similarity.triplet_margin,
            (np.zeros((1, 2)), np.array([[0.0, 10.0]]), np.array([[0.0, 5.0]])),
            dict(margin=6.0, eps=0.0, swap=True),
            [[0.0, -0.5]],
        ),
    ]
    for fn, arrays, opts, expect in cases:
        x = autograd_xp.asarray(arrays[0])
        rest = [autograd_xp.asarray(a) for a in arrays[1:]]
        total = _jit(autograd_xp, functools.partial(fn, reduction="sum", **opts))
        _, g = autograd_xp.autograd(total, x, *rest)
        assert_close(autograd_xp.to_numpy(g), expect, kind="grad", err_msg=fn.__name__)


# ------------------------------------------------------------------- zero vectors, magnitudes


def test_zero_vectors(some_xp):
    """A zero vector has cosine 0 (distance 1); its derivative is that of the clamped
    norm, t/(eps |t|), or 0 for eps = 0, where the formula is 0/0."""
    t = np.array([[3.0, 4.0]])
    z = np.zeros((1, 2))
    v, g = run(some_xp, similarity.cosine_distance, (z, t), eps=1e-3, reduction="sum")
    assert_close(v, 1.0)
    assert_close(g, -t / 5 / 1e-3, kind="grad")
    v, g = run(some_xp, similarity.cosine_distance, (z, t), eps=0.0, reduction="sum")
    assert_close(v, 1.0)
    assert_close(g, np.zeros((1, 2)), kind="grad")
    v, g = run(some_xp, similarity.cosine_distance, (t, z), eps=0.0, reduction="sum")
    assert_close(v, 1.0)
    assert_close(g, np.zeros((1, 2)), kind="grad")
    v, g = run(
        some_xp, similarity.cosine_distance, (np.zeros((2, 0)), np.zeros((2, 0))), reduction="none"
    )
    assert_close(v, [1.0, 1.0])  # no features: zero vectors


def test_zero_vector_under_autograd(autograd_xp):
    """No 0 * inf in the backward of a zero vector's norm: finite, as value_and_grad."""
    t = autograd_xp.asarray(np.array([[3.0, 4.0]]))
    for eps, expect in ((1e-3, -np.array([[3.0, 4.0]]) / 5e-3), (0.0, np.zeros((1, 2)))):
        _, g = autograd_xp.autograd(
            _jit(
                autograd_xp, functools.partial(similarity.cosine_distance, eps=eps, reduction="sum")
            ),
            autograd_xp.asarray(np.zeros((1, 2))),
            t,
        )
        assert_close(autograd_xp.to_numpy(g), expect, kind="grad")
    _, g = autograd_xp.autograd(
        _jit(
            autograd_xp, lambda z, n: similarity.triplet_margin(z, z + 0.0, n, eps=0.0, margin=10.0)
        ),
        autograd_xp.asarray(np.zeros((1, 2))),
        t,
    )
    assert np.isfinite(autograd_xp.to_numpy(g)).all()


@pytest.mark.parametrize("scale", [1e30, 1e-30, 1e4, 1e-4])
def test_extreme_magnitudes_float32(some_xp, scale):
    """float32 vectors whose squares overflow (1e30) or underflow (1e-30): the exact
    cosine and distances of the float64 computation on the unscaled vectors, scaled.

    The cosine is scale-free; the triplet loss with margin 0 is scale * (the loss of
    the unit-scale vectors), its gradient unchanged (homogeneous of degree 1).
    """
    rng = np.random.default_rng(11)
    p, t, n = (rng.uniform(-1, 1, size=(3, 4)) for _ in range(3))
    for a in (p, t, n):
        a[:, 0] = 1.0  # no element rounds to a float32 subnormal at 1e-30 * 1e-8
    v64, g64 = value_and_grad(similarity.cosine_distance)(p, t, eps=0.0, reduction="none")
    v, g = run(
        some_xp,
        similarity.cosine_distance,
        (p * scale, t * scale),
        "float32",
        eps=0.0,
        reduction="none",
    )
    np.testing.assert_allclose(v, v64, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(g * scale, g64, rtol=2e-4, atol=2e-6)
    v64, g64 = value_and_grad(similarity.triplet_margin)(
        p, t, n, margin=0.0, eps=0.0, reduction="none"
    )
    v, g = run(
        some_xp,
        similarity.triplet_margin,
        (p * scale, t * scale, n * scale),
        "float32",
        margin=0.0,
        eps=0.0,
        reduction="none",
    )
    np.testing.assert_allclose(v / scale, v64, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(g, g64, rtol=2e-4, atol=2e-6)
    for q in (1.0, 3.0):
        d = similarity.triplet_margin(
            p * scale, t * scale, n * scale, margin=0.0, eps=0.0, p=q, reduction="none"
        )
        d = np.asarray(d, dtype=np.float64)
        assert np.isfinite(d).all()


def test_nearly_parallel_vectors_keep_their_distance(some_xp):
    """1 - cos of vectors about 3e-4 apart in angle is about 1e-7: float32's 1 - cos keeps
    only cos's rounding (6e-8, tens of percent); the core forms |x^ - y^|^2 / 2, good to
    1e-3.  Reference: the same formula in float64 on the float32 inputs (exact to 1e-16)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 8)).astype(np.float32)
    y = (x + 1e-4 * rng.normal(size=(4, 8)) * np.abs(x).max()).astype(np.float32)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    ux = x64 / np.linalg.norm(x64, axis=-1, keepdims=True)
    uy = y64 / np.linalg.norm(y64, axis=-1, keepdims=True)
    exact = ((ux - uy) ** 2).sum(-1) / 2
    assert (exact < 1e-6).all()
    naive = 1 - (x * y).sum(-1) / np.linalg.norm(x, axis=-1) / np.linalg.norm(y, axis=-1)
    assert np.abs(naive / exact - 1).max() > 0.05  # what 1 - cos would give
    v, _ = run(some_xp, similarity.cosine_distance, (x, y), "float32", reduction="none")
    np.testing.assert_allclose(v, exact, rtol=2e-3)
    targets = np.ones(4, dtype=np.float32)
    v, _ = run(some_xp, similarity.cosine_embedding, (x, y, targets), "float32", reduction="none")
    np.testing.assert_allclose(v, exact, rtol=2e-3)


def test_margin_ranking_extreme_scores(some_xp):
    """Scores of +-1e4 and 3e38 in float32, by hand: max(0, margin - t (x1 - x2))."""
    x1 = np.array([1e4, -1e4, 3e38, 0.0])
    x2 = np.array([0.0, 0.0, 0.0, 3e38])
    t = np.array([1.0, 1.0, -1.0, 1.0])
    v, g = run(
        some_xp, similarity.margin_ranking, (x1, x2, t), "float32", margin=1.0, reduction="none"
    )
    np.testing.assert_allclose(v, [0.0, 1e4 + 1, 3e38, 3e38], rtol=1e-6)
    np.testing.assert_allclose(g, [0.0, -1.0, 1.0, -1.0])


# --------------------------------------------------------------------------- half precision, empty


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision(xp, name, dtype):
    """Computed in float32 from the rounded input: the framework's float64 numbers on it."""
    xp.require(dtype)
    arrays, options = case(name)
    per, grads = expected(name, dtype)
    value, grad = run(xp, fn_of(name), arrays, dtype, reduction="mean", **options)
    ev, eg = reduce(per, grads, "mean", None)
    assert_close(value, ev, dtype)
    assert_close(grad, eg, dtype, kind="grad")


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(some_xp, name):
    arrays, options = case(name)
    empty = tuple(a[:0] for a in arrays)
    for reduction in REDUCTIONS:
        value, grad = run(some_xp, fn_of(name), empty, reduction=reduction, **options)
        if reduction == "none":
            assert value.shape == (0,)
        else:
            assert value == 0.0
        assert grad.shape == empty[0].shape


# --------------------------------------------------------------------------- value rules


def test_target_rules(some_xp):
    """Targets are -1 or 1 in the core (PyTorch takes any value; the adapters do too)."""
    x1, x2 = np.ones((3, 2)), np.ones((3, 2))
    bad = some_xp.asarray(np.array([1.0, 0.0, -1.0]))
    with pytest.raises(ValueError) as err:
        similarity.cosine_embedding(some_xp.asarray(x1), some_xp.asarray(x2), bad)
    assert str(err.value) == "`targets` must be -1 or 1; got 0.0 at position (1,)"
    with pytest.raises(ValueError) as err:
        similarity.margin_ranking(
            some_xp.asarray(x1[:, 0]),
            some_xp.asarray(x2[:, 0]),
            some_xp.asarray(np.array([1.0, 2.0, np.nan])),
        )
    assert str(err.value) == "`targets` must be -1 or 1; got 2.0 at position (1,)"
    with _config.framework_rules():  # what the adapters compute: PyTorch's formulas
        v = similarity.margin_ranking(np.array([1.0]), np.array([0.0]), np.array([0.5]), margin=1.0)
        assert_close(v, 0.5)
        v = similarity.cosine_embedding(x1[:1], x2[:1], np.array([0.0]), reduction="none")
        assert_close(v, [0.0])


SHAPE_ERRORS = [
    (
        "cosine_embedding",
        (np.ones((3, 2)), np.ones((3, 3)), np.ones(3)),
        {},
        "`x2` must have the shape of `x1` (3, 2); got (3, 3) (losskit does not broadcast)",
    ),
    (
        "cosine_embedding",
        (np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 1))),
        {},
        "`targets` must have the shape of `x1` (3, 2) without its feature axis 1, that is "
        "(3,); got (3, 1)",
    ),
    (
        "margin_ranking",
        (np.ones(3), np.ones(3), np.ones(2)),
        {},
        "`targets` must have the shape of `x1` (3,); got (2,) (losskit does not broadcast)",
    ),
    (
        "triplet_margin",
        (np.ones((3, 2)), np.ones((3, 2)), np.ones((2, 2))),
        {},
        "`negative` must have the shape of `anchor` (3, 2); got (2, 2) "
        "(losskit does not broadcast)",
    ),
    (
        "cosine_distance",
        (np.float64(1.0), np.float64(1.0)),
        {},
        "`pred` must have a feature axis (at least 1 dimension); got a 0-d array",
    ),
    (
        "cosine_distance",
        (np.ones((2, 3)), np.ones((2, 3))),
        {"axis": 2},
        "`axis` must be an int in [-2, 2) for 2-d `pred`; got 2",
    ),
    (
        "triplet_margin",
        (np.ones((2, 3)),) * 3,
        {"p": 0.5},
        "`p` must be a number >= 1 (a norm; inf: the largest |x_i - y_i|); got 0.5",
    ),
    (
        "triplet_margin",
        (np.ones((2, 3)),) * 3,
        {"p": math.nan},
        "`p` must be a number >= 1 (a norm; inf: the largest |x_i - y_i|); got nan",
    ),
    (
        "triplet_margin",
        (np.ones((2, 3)),) * 3,
        {"p": math.inf, "eps_at": "sum"},
        "`p` = inf needs `eps_at`='difference': (sum |d|^p + eps)^(1/p) has no such norm",
    ),
    (
        "triplet_margin",
        (np.ones((2, 3)),) * 3,
        {"eps": -1e-6},
        "`eps` must be a finite number >= 0; got -1e-06",
    ),
    (
        "triplet_margin",
        (np.ones((2, 3)),) * 3,
        {"eps_at": "norm"},
        "`eps_at` must be 'difference' or 'sum'; got 'norm'",
    ),
    (
        "triplet_margin",
        (np.ones((2, 3)),) * 3,
        {"margin": math.nan},
        "`margin` must be a finite real number; got nan",
    ),
    (
        "margin_ranking",
        (np.ones(2), np.ones(2), np.ones(2)),
        {"margin": math.inf},
        "`margin` must be a finite real number; got inf",
    ),
    (
        "cosine_distance",
        (np.ones((2, 3)),) * 2,
        {"eps": math.nan},
        "`eps` must be a finite number >= 0; got nan",
    ),
]


@pytest.mark.parametrize("name, arrays, opts, text", SHAPE_ERRORS)
def test_shape_and_option_errors(name, arrays, opts, text):
    with pytest.raises(ValueError) as err:
        fn_of(name)(*arrays, **opts)
    assert str(err.value) == text


def test_type_errors():
    with pytest.raises(TypeError) as err:
        similarity.cosine_embedding(np.ones((2, 2)), np.ones((2, 2), dtype=np.int64), np.ones(2))
    assert str(err.value) == "`x2` must be a real floating-point array; got dtype int64"
    with pytest.raises(TypeError) as err:
        similarity.triplet_margin(*(np.ones((2, 2)),) * 3, swap=1)
    assert str(err.value) == "`swap` must be a bool; got 1"
    with pytest.raises(TypeError) as err:
        similarity.triplet_margin(*(np.ones((2, 2)),) * 3, p="2")
    assert (
        str(err.value)
        == "`p` must be a number >= 1 (a norm; inf: the largest |x_i - y_i|); got '2'"
    )
    with pytest.raises(TypeError) as err:
        similarity.triplet_margin(*(np.ones((2, 2)),) * 3, eps_at=1)
    assert str(err.value) == "`eps_at` must be 'difference' or 'sum'; got 1"
    with pytest.raises(TypeError) as err:
        similarity.margin_ranking(np.ones(2), np.ones(2), np.array(["a", "b"], dtype=object))
    assert str(err.value) == "`targets` must be a real numeric array; got dtype object"
    # integer targets are numbers: taken
    assert_close(similarity.margin_ranking(np.ones(2), np.zeros(2), np.array([1, -1])), 0.5)


@pytest.mark.parametrize("name", ["cosine_embedding", "margin_ranking"])
def test_bool_targets_refused(some_xp, name):
    """A bool target would be read as 1 and 0 (0 is no target): a TypeError naming it."""
    (x1, x2, t), options = case(name)
    bools = some_xp.asarray(t > 0)
    with pytest.raises(TypeError) as err:
        fn_of(name)(some_xp.asarray(x1), some_xp.asarray(x2), bools, **options)
    assert str(err.value) == (
        "`targets` must be -1 or 1 (numbers, not bool: False would be 0); got dtype bool"
    )


def test_numpy_bool_flag():
    """swap takes NumPy's bools as Python's (the library's flags do)."""
    (a, p, n), _ = case("triplet_margin")
    for flag in (True, False):
        expected = similarity.triplet_margin(a, p, n, swap=flag, reduction="none")
        assert_close(
            similarity.triplet_margin(a, p, n, swap=np.bool_(flag), reduction="none"), expected
        )


# --------------------------------------------------------------------------- the NaN rule


def test_nan_rule_under_jit():
    """Inside jax.jit a bad target cannot be read: its example is NaN, value and
    gradient; the others equal eager's."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    for name in ("cosine_embedding", "margin_ranking"):
        (x1, x2, t), options = case(name)
        bad = t.copy()
        bad[1] = 0.5
        fn = functools.partial(fn_of(name), **options)
        f = jax.jit(functools.partial(fn, reduction="none"))
        g = jax.jit(jax.grad(functools.partial(fn, reduction="sum")))
        value = np.asarray(f(x1, x2, jnp.asarray(bad)))
        grad = np.asarray(g(x1, x2, jnp.asarray(bad)))
        eager = fn(x1, x2, t, reduction="none")
        assert np.isnan(value[1]) and np.isfinite(np.delete(value, 1)).all()
        assert_close(np.delete(value, 1), np.delete(eager, 1))
        assert np.isnan(grad[1]).all() and np.isfinite(np.delete(grad, 1, axis=0)).all()
        w = jax.jit(lambda a, b, c, w, fn=fn: fn(a, b, c, sample_weight=w, reduction="none"))
        sw = np.ones(len(t))
        sw[2] = -1.0
        value = np.asarray(w(x1, x2, jnp.asarray(t), jnp.asarray(sw)))
        assert np.isnan(value[2]) and np.isfinite(np.delete(value, 2)).all()


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_torch_compile_fullgraph():
    """The losses compile whole; compiled equals eager; a bad target is NaN in its row."""
    torch = pytest.importorskip("torch")
    for name in ("cosine_embedding", "margin_ranking", "triplet_margin"):  # (cosine_distance:
        torch._dynamo.reset()  # cosine_embedding's cosine; a compile is seconds here)
        arrays, options = case(name)
        fn = fn_of(name)

        def loss(*a: Any, fn: Any = fn, options: dict = options) -> Any:
            return fn(*a, reduction="none", **options)

        compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
        results = []
        for f in (loss, compiled):
            ts = [torch.tensor(a) for a in arrays]
            ts[0].requires_grad_(True)
            v = f(*ts)
            v.sum().backward()
            results.append((v.detach().numpy(), ts[0].grad.numpy()))
        assert_close(results[1][0], results[0][0], err_msg=name)
        assert_close(results[1][1], results[0][1], kind="grad", err_msg=name)
        assert_close(results[1][0], expected(name)[0], err_msg=name)
        if len(arrays) == 3 and name != "triplet_margin":
            bad = torch.tensor(arrays[2])
            bad[0] = 3.0
            v = compiled(torch.tensor(arrays[0]), torch.tensor(arrays[1]), bad).numpy()
            assert np.isnan(v[0]) and np.isfinite(v[1:]).all()
    # options that change between calls are traced as symbolic floats: no graph break
    (x1, x2, t), _ = case("margin_ranking")
    ts = [torch.tensor(a) for a in (x1, x2, t)]
    compiled = torch.compile(similarity.margin_ranking, fullgraph=True, backend="aot_eager")
    for m in (0.3, 0.7):
        expect = similarity.margin_ranking(x1, x2, t, margin=m, reduction="none")
        assert_close(compiled(*ts, margin=m, reduction="none").numpy(), expect)


def test_meta_device():
    """On torch's meta device (no values) every loss runs, value and autograd, with the
    shapes of real input; value_and_grad too."""
    torch = pytest.importorskip("torch")
    for name in NAMES:
        arrays, options = case(name)
        metas = [
            torch.empty(a.shape, device="meta", requires_grad=i == 0) for i, a in enumerate(arrays)
        ]
        value = fn_of(name)(*metas, reduction="none", **options)
        assert value.device.type == "meta" and tuple(value.shape) == (arrays[0].shape[0],)
        value.sum().backward()
        assert tuple(metas[0].grad.shape) == arrays[0].shape
        _, grad = value_and_grad(fn_of(name))(*(m.detach() for m in metas), **options)
        assert grad.device.type == "meta" and tuple(grad.shape) == arrays[0].shape


def test_grad_out_is_written():
    """NumPy: the gradient written into grad_out (which may be the first argument)."""
    for name in NAMES:
        arrays, options = case(name)
        _, expect = value_and_grad(fn_of(name))(*arrays, **options)
        out = np.empty_like(arrays[0])
        _, grad = value_and_grad(fn_of(name))(*arrays, grad_out=out, **options)
        assert grad is out
        np.testing.assert_array_equal(out, expect)
        first = arrays[0].copy()
        _, grad = value_and_grad(fn_of(name))(first, *arrays[1:], grad_out=first, **options)
        assert grad is first
        np.testing.assert_array_equal(first, expect)
