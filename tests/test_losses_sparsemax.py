"""sparsemax and sparsemax_loss against optax (projection_simplex, multiclass_sparsemax_loss,
sparsemax_loss, make_fenchel_young_loss) and Martins & Astudillo's formulas in torch float64.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import losskit as lk
from conftest import _reduce, assert_close, loss_dtype, round_to
from losskit.losses.sparsemax import sparsemax, sparsemax_loss

REDUCTIONS = ("none", "sum", "mean")


@pytest.fixture
def rng():
    return np.random.default_rng(16)


def scores(rng, shape=(5, 4)):
    """Scores of spread ~1, so that supports of every size occur; no ties."""
    return rng.normal(size=shape) * 0.8


# --------------------------------------------------------------------------- references


def optax_sparsemax(z, axis=-1):
    """optax.projections.projection_simplex per row (it projects one flat vector)."""
    import jax
    import jax.numpy as jnp
    from optax import projections

    z = np.moveaxis(np.asarray(z, dtype=np.float64), axis, -1)
    rows = z.reshape(-1, z.shape[-1])
    out = np.asarray(jax.vmap(projections.projection_simplex)(jnp.asarray(rows)))
    return np.moveaxis(out.reshape(z.shape), -1, axis)


def ref_sparsemax_loss(z, y):
    """Martins & Astudillo (2016), eq. (16): ½ Σ_{j∈S} (z_j² - τ²) - z_y + ½, τ and S by
    their algorithm 1 (sort, cumulative sum, threshold), in torch float64."""
    import torch

    c = z.shape[-1]
    ranked, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, c + 1, dtype=z.dtype)
    partial = ranked.cumsum(-1)
    size = (1 + k * ranked > partial).sum(-1, keepdim=True)
    tau = (partial.gather(-1, size - 1) - 1) / size
    support = (z > tau).to(z.dtype)
    z_y = z.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return 0.5 * (support * (z * z - tau * tau)).sum(-1) - z_y + 0.5


def reference_loss(z, y, *, reduction="mean", sample_weight=None):
    import torch

    zt = torch.tensor(np.asarray(z, dtype=np.float64), requires_grad=True)
    v = _reduce(ref_sparsemax_loss(zt, torch.tensor(y)), reduction, sample_weight)
    (g,) = torch.autograd.grad(v.sum(), zt)
    return v.detach().numpy(), g.numpy()


def run_loss(xp, z, y, dtype="float64", **opts):
    """sparsemax_loss and its value_and_grad on ``xp``: kinds, dtypes, shapes, agreement."""
    zb, yb = xp.asarray(z, dtype), xp.asarray(np.asarray(y), "int64")
    if opts.get("sample_weight") is not None:
        opts["sample_weight"] = xp.asarray(opts["sample_weight"], loss_dtype(dtype))
    value = sparsemax_loss(zb, yb, **opts)
    v2, grad = lk.value_and_grad(sparsemax_loss)(zb, yb, **opts)
    for arr in (value, v2, grad):
        assert xp.is_native(arr), type(arr)
    assert xp.dtype_name(value) == loss_dtype(dtype) and xp.dtype_name(grad) == dtype
    assert tuple(grad.shape) == tuple(np.shape(z))
    assert_close(xp.to_numpy(v2), xp.to_numpy(value), dtype)
    return xp.to_numpy(value), xp.to_numpy(grad)


# --------------------------------------------------------------------------- sparsemax


@pytest.mark.parametrize("axis", [-1, 0])
def test_sparsemax_matches_optax(xp, rng, axis):
    z = scores(rng)
    z[0] = [0.3, 0.3, 0.3, 0.3]  # all tied: uniform
    z[1] = [2.0, 0.0, -1.0, 0.5]  # a gap above 1: one-hot
    got = xp.to_numpy(sparsemax(xp.asarray(z), axis=axis))
    want = optax_sparsemax(z, axis)
    assert_close(got, want)
    assert (got >= 0).all()
    assert_close(got.sum(axis=axis), np.ones(z.shape[1 + axis]))


def test_sparsemax_one_dimensional_and_empty(xp):
    """x = [1, 0.5, -1]: support {0, 1}, tau = (1 + 0.5 - 1) / 2 = 0.25."""
    got = sparsemax(xp.asarray(np.array([1.0, 0.5, -1.0])))
    assert_close(xp.to_numpy(got), [0.75, 0.25, 0.0])
    assert xp.to_numpy(sparsemax(xp.asarray(np.zeros((0, 3))))).shape == (0, 3)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_sparsemax_keeps_dtype(xp, rng, dtype):
    """Computed in float32 for half precision and cast back: one rounding of optax's."""
    xp.require(dtype)
    z = round_to(scores(rng), dtype)
    got = sparsemax(xp.asarray(z, dtype))
    assert xp.dtype_name(got) == dtype
    assert_close(xp.to_numpy(got), optax_sparsemax(z), dtype, kind="grad")


def test_sparsemax_extreme_scores(xp):
    """Scores of any finite magnitude: the row maximum is subtracted first, so the support
    (within 1 of the maximum) sums in (-k, 0]; scores far below fall out of it (an
    overflowing shift gives -inf, never NaN)."""
    z = np.array(
        [
            [3e38, -3e38, 2.9e38, 0.0],  # gap 1e37 >> 1: one-hot
            [3e38, 3e38, -3e38, -3e38],  # tie at the top: [1/2, 1/2, 0, 0]
            [1e4, 1e4 - 0.5, -1e4, 0.0],  # support {0, 1}: tau = 1e4 - 0.75
            [-3e38, -3e38, -3e38, -3e38],  # all equal: uniform
        ]
    )
    want = [[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.75, 0.25, 0, 0], [0.25] * 4]
    for dtype in ("float32", "float64"):
        got = xp.to_numpy(sparsemax(xp.asarray(z, dtype)))
        np.testing.assert_array_equal(got, np.asarray(want, dtype=dtype))


def _jvp_closed_form(z, v):
    """s ⊙ (v - <s, v>/|S|), s the support indicator (Martins & Astudillo, eq. 14)."""
    s = (optax_sparsemax(z) > 0).astype(np.float64)
    return s * (v - (s * v).sum(-1, keepdims=True) / s.sum(-1, keepdims=True))


def test_sparsemax_gradient_torch_jax_optax(rng):
    """d/dz (v . sparsemax(z)) by torch autograd and jax.grad through the sort-based
    formula, against the closed form and optax's custom JVP (jax.grad of optax's)."""
    import jax
    import jax.numpy as jnp
    import torch
    from optax import projections

    z, v = scores(rng, (6, 5)), rng.normal(size=(6, 5))
    want = _jvp_closed_form(z, v)
    optax_g = jax.grad(
        lambda a: jnp.sum(jnp.asarray(v) * jax.vmap(projections.projection_simplex)(a))
    )(jnp.asarray(z))
    assert_close(np.asarray(optax_g), want, kind="grad")
    zt = torch.tensor(z, requires_grad=True)
    (g,) = torch.autograd.grad((torch.tensor(v) * sparsemax(zt)).sum(), zt)
    assert_close(g.numpy(), want, kind="grad")
    for f in (jax.grad, lambda h: jax.jit(jax.grad(h))):
        g = f(lambda a: jnp.sum(jnp.asarray(v) * sparsemax(a)))(jnp.asarray(z))
        assert_close(np.asarray(g), want, kind="grad")
    # along another axis: the same, transposed
    zt = torch.tensor(z.T.copy(), requires_grad=True)
    (g,) = torch.autograd.grad((torch.tensor(v.T) * sparsemax(zt, axis=0)).sum(), zt)
    assert_close(g.numpy(), want.T, kind="grad")


def test_sparsemax_refuses():
    with pytest.raises(
        TypeError, match=r"^`x` must be a real floating-point array; got dtype int64$"
    ):
        sparsemax(np.array([1, 2, 3]))
    with pytest.raises(ValueError) as err:
        sparsemax(np.zeros((2, 3)), axis=2)
    assert str(err.value) == "`axis` must be an int in [-2, 2) for 2-d `x`; got 2"


# --------------------------------------------------------------------------- sparsemax_loss


def test_loss_matches_optax(xp, rng, optax):
    """optax.losses.multiclass_sparsemax_loss (values; jax.grad) under reduction="none"."""
    import jax
    import jax.numpy as jnp

    z, y = scores(rng), rng.integers(0, 4, size=5)
    z[0, y[0]] += 3.0  # sparsemax(z) = onehot(y): loss 0, gradient 0
    want = optax.losses.multiclass_sparsemax_loss(jnp.asarray(z), jnp.asarray(y))
    want_g = jax.grad(lambda a: jnp.sum(optax.losses.multiclass_sparsemax_loss(a, jnp.asarray(y))))(
        jnp.asarray(z)
    )
    v, g = run_loss(xp, z, y, reduction="none")
    assert_close(v, np.asarray(want))
    assert_close(g, np.asarray(want_g), kind="grad")
    assert v[0] == 0 and not g[0].any()
    assert_close(g, optax_sparsemax(z) - np.eye(4)[y], kind="grad")


def test_loss_matches_reference(xp, rng):
    z, y = scores(rng), rng.integers(0, 4, size=5)
    for reduction in REDUCTIONS:
        for sw in (None, rng.uniform(0, 2, size=5)):
            got = run_loss(xp, z, y, reduction=reduction, sample_weight=sw)
            want = reference_loss(z, y, reduction=reduction, sample_weight=sw)
            assert_close(got[0], want[0], err_msg=f"{reduction} value")
            assert_close(got[1], want[1], kind="grad", err_msg=f"{reduction} gradient")


def test_loss_class_axis(xp, rng):
    z, y = scores(rng, (3, 4, 2)), rng.integers(0, 4, size=(3, 2))
    v, g = run_loss(xp, z, y, axis=1, reduction="none")
    want = reference_loss(np.moveaxis(z, 1, -1), y, reduction="none")
    assert_close(v, want[0])
    assert_close(g, np.moveaxis(want[1], -1, 1), kind="grad")


def test_binary_optax_sparsemax_loss_is_two_scores(rng, optax):
    """optax.losses.sparsemax_loss(z, y) (binary, jax.nn.sparse_plus) = this loss on the
    scores [0, z] with the same 0/1 labels (shift invariance: only z_1 - z_0 = z counts)."""
    import jax.numpy as jnp

    z = np.array([-3.0, -1.0, -0.4, 0.0, 0.3, 1.0, 2.5, 0.7])
    y = np.array([0, 1, 1, 0, 1, 0, 1, 0])
    want = optax.losses.sparsemax_loss(jnp.asarray(z), jnp.asarray(y))
    got = sparsemax_loss(np.stack([np.zeros_like(z), z], axis=-1), y, reduction="none")
    assert_close(got, np.asarray(want))


def test_make_fenchel_young_loss_expresses_it(rng, optax):
    """optax.losses.make_fenchel_young_loss(max_fun)(z, onehot(y)) = max_fun(z) - z_y: with
    the sparsemax max function Ω*(z) = <p, z> + (1 - |p|²)/2 (p = sparsemax(z)) it is this
    loss, with logsumexp the softmax cross-entropy; it takes dense targets only (no labels,
    no reduction) and, for soft targets, leaves out Ω(targets)."""
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp
    from optax import projections

    def sparsemax_max(v):
        p = projections.projection_simplex(v)
        return jnp.dot(p, v) + 0.5 * (1 - jnp.dot(p, p))

    z, y = scores(rng), rng.integers(0, 4, size=5)
    onehot = jnp.asarray(np.eye(4)[y])
    fy = optax.losses.make_fenchel_young_loss(max_fun=sparsemax_max)
    assert_close(np.asarray(fy(jnp.asarray(z), onehot)), sparsemax_loss(z, y, reduction="none"))
    fy = optax.losses.make_fenchel_young_loss(max_fun=logsumexp)
    want = lk.sparse_softmax_cross_entropy(z, y, reduction="none")
    assert_close(np.asarray(fy(jnp.asarray(z), onehot)), want)


def test_loss_extreme_scores(xp):
    """±1e4 and ±3e38 (float32): 0 for a certain right answer; for a wrong one z_j - z_y on
    the support only (6e38 is not a float32: inf, the true value unrepresentable); the
    gradient sparsemax(z) - onehot(y) is always finite."""
    z = np.array([[1e4, -1e4, 0.0], [3e38, -3e38, 0.0], [-1e4, 1e4, 1e4 - 0.5], [-3e38, 3e38, 0.0]])
    y = np.zeros(4, dtype=np.int64)
    v, g = run_loss(xp, z, y, "float32", reduction="none")
    assert v[0] == 0 and v[1] == 0 and np.isinf(v[3])
    # row 2: p = [0, .75, .25]: .75 (1e4 + 1e4) + .25 (2e4 - .5) + (1 - .625) / 2
    np.testing.assert_allclose(v[2], 2e4 - 0.125 + 0.1875, rtol=1e-6)
    np.testing.assert_array_equal(g, np.array([[0, 0, 0], [0, 0, 0], [-1, 0.75, 0.25], [-1, 1, 0]]))


def test_loss_empty_and_half_precision(xp, rng):
    for reduction in REDUCTIONS:
        v, g = run_loss(xp, np.zeros((0, 3)), np.zeros(0, dtype=np.int64), reduction=reduction)
        assert g.shape == (0, 3) and (reduction == "none" or v == 0)
    z, y = scores(rng), rng.integers(0, 4, size=5)
    for dtype in ("float16", "bfloat16"):
        if not xp.supports(dtype):
            continue
        got = run_loss(xp, z, y, dtype, reduction="none")
        want = reference_loss(round_to(z, dtype), y, reduction="none")
        assert_close(got[0], want[0], dtype)
        assert_close(got[1], want[1], dtype, kind="grad")


def test_loss_every_input_derivative(rng):
    """torch gradcheck/gradgradcheck in logits and sample_weight; jax.grad (jit) of both
    against the plain formula's."""
    import jax
    import jax.numpy as jnp
    import torch

    z, y = scores(rng, (4, 3)), rng.integers(0, 3, size=4)
    zt = torch.tensor(z, requires_grad=True)
    sw = torch.tensor(rng.uniform(0.5, 2, size=4), requires_grad=True)
    yt = torch.tensor(y)
    f = functools.partial(sparsemax_loss, labels=yt, reduction="sum")
    assert torch.autograd.gradcheck(lambda a, w: f(a, sample_weight=w), (zt, sw))
    assert torch.autograd.gradgradcheck(lambda a, w: f(a, sample_weight=w), (zt, sw))

    def formula(a, w):  # <p, z - z_y> + (1 - |p|²)/2 with optax's projection
        from optax import projections

        p = jax.vmap(projections.projection_simplex)(a)
        z_y = jnp.take_along_axis(a, jnp.asarray(y)[:, None], -1)
        return jnp.sum(w * (jnp.sum(p * (a - z_y), -1) + 0.5 * (1 - jnp.sum(p * p, -1))))

    args = (jnp.asarray(z), jnp.asarray(sw.detach().numpy()))
    core = jax.jit(
        jax.grad(
            lambda a, w: sparsemax_loss(a, jnp.asarray(y), sample_weight=w, reduction="sum"),
            argnums=(0, 1),
        )
    )
    for a, b in zip(core(*args), jax.grad(formula, argnums=(0, 1))(*args), strict=True):
        assert_close(np.asarray(a), np.asarray(b), kind="grad")


def test_loss_refuses_bad_labels(xp):
    with pytest.raises(ValueError) as err:
        sparsemax_loss(xp.asarray(np.zeros((2, 3))), xp.asarray(np.array([0, 3])))
    assert str(err.value) == "`labels` must be in [0, 3); got 3 at position (1,)"


def test_jit_nan_rule():
    """A label out of range under jax.jit: that example NaN in the value and both
    gradients, every reduction NaN, the other examples the eager numbers."""
    import jax
    import jax.numpy as jnp

    z = jnp.asarray(scores(np.random.default_rng(0), (3, 4)))

    def run(z, y):
        values = [sparsemax_loss(z, y, reduction=r) for r in REDUCTIONS]
        vg = lk.value_and_grad(sparsemax_loss)(z, y, reduction="none")[1]
        ad = jax.grad(lambda a: jnp.sum(sparsemax_loss(a, y, reduction="none")))(z)
        return values, vg, ad

    (none, total, mean), *grads = jax.jit(run)(z, jnp.asarray([0, -1, 2]))
    (eager, _, _), *eager_grads = run(z, jnp.asarray([0, 1, 2]))
    assert np.isnan(none[1]) and np.isnan(total) and np.isnan(mean)
    assert_close(np.asarray(none)[[0, 2]], np.asarray(eager)[[0, 2]])
    for g, e in zip(grads, eager_grads, strict=True):
        g = np.asarray(g)
        assert np.isnan(g[1]).any()
        assert_close(g[[0, 2]], np.asarray(e)[[0, 2]], kind="grad")


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`:UserWarning")
def test_compile_fullgraph_equals_eager(rng):
    """sparsemax and sparsemax_loss in one torch.compile(fullgraph=True, aot_eager) graph."""
    torch = pytest.importorskip("torch")
    z, y = scores(rng), torch.tensor(rng.integers(0, 4, size=5))
    v = torch.tensor(rng.normal(size=(5, 4)))

    def both(a, b):
        return sparsemax(a, axis=0), sparsemax_loss(b, y, sample_weight=v[:, 0].abs())

    results = []
    for f in (both, torch.compile(both, fullgraph=True, backend="aot_eager")):
        a, b = torch.tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
        p, loss = f(a, b)
        ga, gb = torch.autograd.grad([(v * p).sum(), loss], [a, b])
        results.append([t.detach().numpy() for t in (p, loss, ga, gb)])
    for got, want in zip(*results, strict=True):
        assert_close(got, want)


def test_loss_is_zero_exactly_at_the_label(xp):
    """ℓ = 0 iff sparsemax(z) = onehot(y), i.e. z_y >= 1 + max_{j≠y} z_j; just below, ℓ > 0
    (Blondel et al. 2020, prop. 2: a margin of 1)."""
    z = np.array([[1.0, 0.0, -1.0], [1.0, 0.01, 0.0], [0.5, 0.5, 0.5], [0.0, 1.0, 0.0]])
    y = np.array([0, 0, 1, 1])
    v, _ = run_loss(xp, z, y, reduction="none")
    assert v[0] == 0 and v[3] == 0 and v[1] > 0
    # all tied: p uniform (1/3), <p, z - z_y> = 0, (1 - 1/3)/2 = 1/3
    assert_close(v[2], 1 / 3)
    # two classes in the support, gap d = 0.99 < 1: (1 - d)^2 / 4 (optax's sparse_plus)
    assert math.isclose(v[1], (1 - 0.99) ** 2 / 4, rel_tol=1e-9)
