"""losskit.compat.optax against optax 0.2.8 itself, value for value and gradient for gradient.

Each case is one call written for both modules (``m`` is ``optax.losses`` or
``losskit.compat.optax``) on the same arrays.  The reference is optax on JAX
arrays (x64 on, see conftest), its derivatives by ``jax.grad`` with respect to
every floating argument the case lists; the adapter runs on JAX arrays (value,
``jax.grad``), PyTorch tensors (value, torch autograd, against the JAX
gradient) and NumPy arrays (value, of NumPy's kind), in float64 and in float32
(float32 against optax in float64 on the same rounded inputs).  Edge cases
(where masks, ``-inf`` logits, zero targets, kinks, label smoothing) and the
deliberate differences are tested after the table.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest

import losskit as lk
from losskit.compat import optax as lko

optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")
jnp = jax.numpy
torch = pytest.importorskip("torch")
from jax.scipy.special import logsumexp as jax_logsumexp  # noqa: E402

OL = optax.losses
RNG = np.random.default_rng(20261203)


def _softmax(a, axis=-1):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _f32(a):
    """Values float32 holds exactly, so that one float64 reference serves both dtypes."""
    return np.asarray(a, np.float32).astype(np.float64)


X = _f32(RNG.normal(size=(4, 5)) * 2)
X3 = _f32(RNG.normal(size=(2, 3, 4)) * 2)
X4 = _f32(RNG.normal(size=(2, 3, 2, 2)) * 2)
T = _f32(_softmax(RNG.normal(size=(4, 5))))
T3 = _f32(_softmax(RNG.normal(size=(2, 3, 4)), axis=(1, 2)))
T01 = _f32(RNG.random((4, 5)))
BITS = (RNG.random((4, 5)) < 0.5).astype(np.int64)
SIGNS = np.where(RNG.random((4, 5)) < 0.5, -1.0, 1.0)
LABELS = np.array([0, 4, 2, 4])
WHERE = RNG.random((4, 5)) < 0.7
WHERE[1] = False  # a fully masked example
WHERE_ROWS = np.array([True, False, True, True])
LP = _f32(np.log(T))
Q = _f32(_softmax(RNG.normal(size=(4, 5))))
LQ = _f32(np.log(Q))
# Scores with ties and exact kinks (margin 1 - y s = 0, s y = 0, sparse_plus at +-1),
# in the (4, 5) shape of the other cases: JAX compiles each operation once per shape.
TIES = np.array(
    [[2.0, 2.0, 1.0, 0.0, -1.0], [1.0, 0.0, 0.0, 0.0, 0.0], [0.5, 1.5, 1.5, 1.5, 0.0], X[3]]
)
TIE_LABELS = np.array([0, 0, 1, 2])
KINK_S = np.resize([1.0, -1.0, 0.5, 0.0, 2.0, -0.5, 0.25], (4, 5))
KINK_Y = np.resize([1.0, -1.0, 2.0, 1.0, 0.5, -2.0], (4, 5))
GROUPS = np.array([0, 0, 1, 1])
GROUPS_LONE = np.array([0, 1, 0, 2])  # anchors without a positive
ONEHOT3 = np.eye(4)[RNG.integers(0, 4, size=(2, 3))]  # (2, 3, 4): 2 maps, 3 pixels, 4 classes
PROBS3 = _f32(_softmax(X3))


def case(call, *arrays, wrt=(0, 1)):
    return call, arrays, tuple(wrt)


CASES = {
    # ---------------------------------------------------------------- sigmoid family
    "sigmoid_bce": case(lambda m, x, y: m.sigmoid_binary_cross_entropy(x, y), X, T01),
    "sigmoid_bce-int-labels": case(
        lambda m, x, y: m.sigmoid_binary_cross_entropy(x, y), X, BITS, wrt=(0,)
    ),
    "sigmoid_bce-broadcast": case(lambda m, x, y: m.sigmoid_binary_cross_entropy(x, y), X, T01[0]),
    "sigmoid_bce-labels-outside-01": case(
        lambda m, x, y: m.sigmoid_binary_cross_entropy(x, y), X, 3 * T01 - 1
    ),
    "sigmoid_focal": case(lambda m, x, y: m.sigmoid_focal_loss(x, y), X, T01),
    "sigmoid_focal-alpha": case(
        lambda m, x, y: m.sigmoid_focal_loss(x, y, alpha=0.25), X, BITS, wrt=(0,)
    ),
    "sigmoid_focal-gamma-half": case(
        lambda m, x, y: m.sigmoid_focal_loss(x, y, alpha=0.7, gamma=0.5), X, T01
    ),
    "sigmoid_focal-gamma-0-alpha-outside": case(
        lambda m, x, y: m.sigmoid_focal_loss(x, y, alpha=1.5, gamma=0.0), X, T01
    ),
    # ---------------------------------------------------------------- softmax family
    "softmax_ce": case(lambda m, x, y: m.softmax_cross_entropy(x, y), X, T),
    "softmax_ce-axis0": case(lambda m, x, y: m.softmax_cross_entropy(x, y, axis=0), X, T),
    "softmax_ce-axes": case(lambda m, x, y: m.softmax_cross_entropy(x, y, axis=(1, 2)), X3, T3),
    "softmax_ce-axis-none": case(lambda m, x, y: m.softmax_cross_entropy(x, y, axis=None), X, T),
    "softmax_ce-broadcast": case(lambda m, x, y: m.softmax_cross_entropy(x, y), X, T[0]),
    "softmax_ce-unnormalised": case(lambda m, x, y: m.softmax_cross_entropy(x, y), X, 2 * T01),
    "softmax_ce-where": case(
        lambda m, x, y, w: m.softmax_cross_entropy(x, y, where=w), X, T, WHERE, wrt=(0,)
    ),
    "softmax_ce-where-rows": case(
        lambda m, x, y, w: m.softmax_cross_entropy(x, y, where=w), X, T, WHERE_ROWS, wrt=(0,)
    ),
    "poly": case(lambda m, x, y: m.poly_loss_cross_entropy(x, y), X, T),
    "poly-eps-axis0": case(
        lambda m, x, y: m.poly_loss_cross_entropy(x, y, epsilon=-1.0, axis=0), X, T
    ),
    "poly-where": case(
        lambda m, x, y, w: m.poly_loss_cross_entropy(x, y, epsilon=0.5, where=w),
        X,
        T,
        WHERE,
        wrt=(0,),
    ),
    "safe_softmax_ce": case(lambda m, x, y: m.safe_softmax_cross_entropy(x, y), X, T),
    "safe_softmax_ce-broadcast": case(
        lambda m, x, y: m.safe_softmax_cross_entropy(x, y), X, 2 * T01[0]
    ),
    "int_labels": case(
        lambda m, x, y: m.softmax_cross_entropy_with_integer_labels(x, y), X, LABELS, wrt=(0,)
    ),
    "int_labels-axis0": case(
        lambda m, x, y: m.softmax_cross_entropy_with_integer_labels(x, y, axis=0),
        X,
        np.array([0, 3, 1, 2, 3]),
        wrt=(0,),
    ),
    "int_labels-axes": case(
        lambda m, x, y: m.softmax_cross_entropy_with_integer_labels(x, y, axis=(1, 3)),
        X4,
        np.array([[0, 5], [4, 1]]),
        wrt=(0,),
    ),
    "int_labels-where": case(
        lambda m, x, y, w: m.softmax_cross_entropy_with_integer_labels(x, y, where=w),
        X,
        LABELS,
        WHERE,
        wrt=(0,),
    ),
    "smooth_labels": case(lambda m, y: m.smooth_labels(y, 0.1), T, wrt=(0,)),
    "smooth_labels-axes": case(lambda m, y: m.smooth_labels(y, 0.3, axis=None), T, wrt=(0,)),
    "smooth_labels-where": case(
        lambda m, y, w: m.smooth_labels(y, 0.2, where=w), T, WHERE_ROWS[:, None] | WHERE, wrt=(0,)
    ),
    "softmax_ce-smoothed": case(
        lambda m, x, y: m.softmax_cross_entropy(x, m.smooth_labels(y, 0.1)), X, T
    ),
    # ---------------------------------------------------------------- margins
    "hinge": case(lambda m, s, y: m.hinge_loss(s, y), X, SIGNS),
    "hinge-01-targets": case(lambda m, s, y: m.hinge_loss(s, y), X, BITS, wrt=(0,)),
    "hinge-broadcast": case(lambda m, s, y: m.hinge_loss(s, y), X, SIGNS[0]),
    "hinge-kinks": case(lambda m, s, y: m.hinge_loss(s, y), KINK_S, KINK_Y),
    "perceptron": case(lambda m, s, y: m.perceptron_loss(s, y), X, SIGNS),
    "perceptron-kinks": case(lambda m, s, y: m.perceptron_loss(s, y), KINK_S, KINK_Y),
    "multiclass_hinge": case(lambda m, s, y: m.multiclass_hinge_loss(s, y), X, LABELS, wrt=(0,)),
    "multiclass_hinge-ties": case(
        lambda m, s, y: m.multiclass_hinge_loss(s, y), TIES, TIE_LABELS, wrt=(0,)
    ),
    "multiclass_perceptron": case(
        lambda m, s, y: m.multiclass_perceptron_loss(s, y), X, LABELS, wrt=(0,)
    ),
    "multiclass_perceptron-ties": case(
        lambda m, s, y: m.multiclass_perceptron_loss(s, y), TIES, TIE_LABELS, wrt=(0,)
    ),
    # ---------------------------------------------------------------- sparsemax
    "sparsemax": case(lambda m, z, y: m.sparsemax_loss(z, y), X / 2, BITS, wrt=(0,)),
    "sparsemax-kinks": case(
        lambda m, z, y: m.sparsemax_loss(z, y), KINK_S, (KINK_Y > 0).astype(np.int64), wrt=(0,)
    ),
    "multiclass_sparsemax": case(
        lambda m, s, y: m.multiclass_sparsemax_loss(s, y), X / 2, LABELS, wrt=(0,)
    ),
    "fenchel_young-logsumexp": case(
        lambda m, s, y: m.make_fenchel_young_loss(jax_logsumexp)(s, y), X, T
    ),
    "fenchel_young-batch": case(
        lambda m, s, y: m.make_fenchel_young_loss(jax_logsumexp)(s, y), X3, T3
    ),
    # ---------------------------------------------------------------- divergences
    "kl": case(lambda m, lp, t: m.kl_divergence(lp, t), LQ, T),
    "kl-axis0": case(lambda m, lp, t: m.kl_divergence(lp, t, axis=0), LQ, T),
    "kl-axis-none": case(lambda m, lp, t: m.kl_divergence(lp, t, axis=None), LQ, T),
    "kl-where": case(lambda m, lp, t, w: m.kl_divergence(lp, t, where=w), LQ, T, WHERE, wrt=(0, 1)),
    "kl-log-targets": case(lambda m, lp, s: m.kl_divergence_with_log_targets(lp, s), LQ, LP),
    "kl-log-targets-where": case(
        lambda m, lp, s, w: m.kl_divergence_with_log_targets(lp, s, where=w),
        LQ,
        LP,
        WHERE,
    ),
    "generalized_kl": case(
        lambda m, lp, t: m.generalized_kl_divergence(lp, t), LQ + 0.25, 2 * T01 + 0.1
    ),
    "generalized_kl-where-axis0": case(
        lambda m, lp, t, w: m.generalized_kl_divergence(lp, t, axis=0, where=w),
        LQ,
        2 * T01 + 0.1,
        WHERE,
    ),
    # ---------------------------------------------------------------- regression
    "squared_error": case(lambda m, p, t: m.squared_error(p, t), X, T01),
    "squared_error-no-targets": case(lambda m, p: m.squared_error(p), X, wrt=(0,)),
    "l2_loss": case(lambda m, p, t: m.l2_loss(p, t), X, T01),
    "l2_loss-no-targets": case(lambda m, p: m.l2_loss(p), X, wrt=(0,)),
    "huber": case(lambda m, p, t: m.huber_loss(p, t, delta=0.5), X, T01),
    "huber-broadcast-kinks": case(lambda m, p, t: m.huber_loss(p, t), KINK_S, np.zeros(1)),
    "huber-no-targets": case(lambda m, p: m.huber_loss(p, delta=2.0), X, wrt=(0,)),
    "log_cosh": case(lambda m, p, t: m.log_cosh(p, t), X, T01),
    "log_cosh-broadcast": case(lambda m, p, t: m.log_cosh(p, t), X, T01[0]),
    # ---------------------------------------------------------------- similarity (issue 9)
    "cosine_similarity": case(lambda m, p, t: m.cosine_similarity(p, t), X, T01),
    "cosine_similarity-epsilon": case(
        lambda m, p, t: m.cosine_similarity(p, t, epsilon=0.5), X / 4, T01
    ),
    "cosine_similarity-axis0-where": case(
        lambda m, p, t, w: m.cosine_similarity(p, t, axis=0, where=w), X, T01, WHERE
    ),
    "cosine_similarity-axis-none": case(
        lambda m, p, t: m.cosine_similarity(p, t, axis=None), X, T01
    ),
    "cosine_distance": case(lambda m, p, t: m.cosine_distance(p, t, epsilon=1e-3), X, T01),
    "cosine_distance-broadcast": case(lambda m, p, t: m.cosine_distance(p, t), X, T01[0]),
    "triplet_margin": case(
        lambda m, a, p, n: m.triplet_margin_loss(a, p, n), X, T01, Q, wrt=(0, 1, 2)
    ),
    "triplet_margin-options": case(
        lambda m, a, p, n: m.triplet_margin_loss(a, p, n, 0, 4, 0.5, 1e-3),
        X,
        T01,
        Q,
        wrt=(0, 1, 2),
    ),
    "ntxent": case(lambda m, e, y: m.ntxent(e, y), X, GROUPS, wrt=(0,)),
    "ntxent-lone-anchors": case(lambda m, e, y: m.ntxent(e, y, 0.5), X, GROUPS_LONE, wrt=(0,)),
    "ranking_softmax": case(lambda m, s, y: m.ranking_softmax_loss(s, y), X, 3 * T01),
    "ranking_softmax-none-weights": case(
        lambda m, s, y, w: m.ranking_softmax_loss(s, y, weights=w, reduce_fn=None),
        X,
        3 * T01,
        Q,
        wrt=(0, 1, 2),
    ),
    "ranking_softmax-where-sum": case(
        lambda m, s, y, w: m.ranking_softmax_loss(s, y, where=w, reduce_fn=jnp.sum),
        X,
        3 * T01,
        WHERE,
        wrt=(0,),
    ),
    "ranking_softmax-where-mean": case(
        lambda m, s, y, w: m.ranking_softmax_loss(s, y, where=w), X, 3 * T01, WHERE, wrt=(0,)
    ),
    # ---------------------------------------------------------------- segmentation (issue 9)
    "dice": case(lambda m, z, t: m.dice_loss(z, t), X3, ONEHOT3),
    "dice-tversky-weights-none": case(
        lambda m, z, t, w: m.dice_loss(
            z, t, class_weights=w, alpha=0.3, beta=0.7, smooth=0.5, reduction="none"
        ),
        X3,
        ONEHOT3,
        np.array([1.0, 2.0, 0.5, 1.5]),
    ),
    "dice-background-sum-axis": case(
        lambda m, z, t: m.dice_loss(z, t, ignore_background=True, reduction="sum", axis=(0, 1)),
        X3,
        ONEHOT3,
    ),
    # optax checks the sums in Python: no jax.grad or jit of it (the adapter has both)
    "dice-probabilities": case(
        lambda m, p, t: m.dice_loss(p, t, apply_softmax=False), PROBS3, ONEHOT3, wrt=()
    ),
    "binary_dice": case(lambda m, z, t: m.binary_dice_loss(z, t), X, BITS.astype(float)),
    "binary_dice-smooth": case(
        lambda m, z, t: m.binary_dice_loss(z[..., None], t[..., None], smooth=0.1), X, T01
    ),
    "generalized_dice": case(lambda m, z, t: m.multiclass_generalized_dice_loss(z, t), X3, ONEHOT3),
    "generalized_dice-background": case(
        lambda m, z, t: m.multiclass_generalized_dice_loss(
            z, t, smooth=0.3, ignore_background=True
        ),
        X3,
        ONEHOT3,
    ),
}

# Every case in float64; the first case of each function in float32 too (JAX compiles
# each operation per shape and dtype, which is most of these tests' time).
BASE = [n for n in CASES if "-" not in n]
RUNS = [(n, "float64") for n in CASES] + [(n, "float32") for n in BASE]

# optax's one_hot (and projection_simplex) promote float32 scores to float64 under x64;
# the adapter keeps the scores' dtype (optax's in JAX's default 32-bit mode).
X64_PROMOTED = ("multiclass_hinge", "multiclass_perceptron", "multiclass_sparsemax")
TOL = {
    "float64": {"rtol": 1e-10, "atol": 1e-12},
    "float32": {"rtol": 1e-4, "atol": 2e-5},
}


def _floating(a):
    return np.asarray(a).dtype.kind == "f" or np.asarray(a).dtype == np.bool_


def _inputs(name, dtype):
    call, arrays, wrt = CASES[name]
    out = []
    for a in arrays:
        a = np.asarray(a)
        out.append(a.astype(dtype) if a.dtype.kind == "f" else a)
    return call, out, wrt


def _value_and_grads(m, call, wrt):
    """``f(*arrays) -> (value, d sum(value) / d arrays[i] for i in wrt)`` through module ``m``."""

    def f(*arrays):
        return call(m, *arrays), tuple(_jax_grad(call, m, list(arrays), i) for i in wrt)

    return f


@functools.cache
def reference(name):
    """optax's value and gradients in float64 (the inputs are exact in float32 too), jitted."""
    call, arrays, wrt = CASES[name]
    j = [jnp.asarray(a) for a in arrays]
    f = _value_and_grads(OL, call, wrt)
    try:
        value, grads = jax.jit(f)(*j)
    except jax.errors.TracerBoolConversionError:  # optax reads a value in Python
        value, grads = f(*j)
    return np.asarray(value), {i: np.asarray(g) for i, g in zip(wrt, grads, strict=True)}


@functools.cache
def optax_dtype(name, dtype):
    """The dtype optax returns for inputs of ``dtype`` (traced only, nothing compiled)."""
    call, arrays, _ = _inputs(name, dtype)
    j = [jnp.asarray(a) for a in arrays]
    try:
        return np.dtype(jax.eval_shape(functools.partial(call, OL), *j).dtype).name
    except jax.errors.TracerBoolConversionError:  # optax reads a value in Python
        return np.dtype(call(OL, *j).dtype).name


def _jax_grad(call, m, arrays, i):
    def f(a):
        args = list(arrays)
        args[i] = a
        return jnp.sum(call(m, *args))

    return jax.grad(f)(arrays[i])


def _close(got, want, dtype, what):
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, err_msg=what, **TOL[dtype])


def _check_dtype(name, got_dtype, want_dtype, dtype):
    if name.split("-")[0] in X64_PROMOTED:
        assert got_dtype == dtype
    else:
        assert got_dtype == want_dtype, f"{name}: dtype {got_dtype} != optax's {want_dtype}"


@pytest.mark.parametrize(("name", "dtype"), RUNS)
def test_jax_values_and_grads_under_jit(name, dtype):
    """On JAX arrays, under jax.jit (one program per case: much cheaper than compiling each
    operation eagerly); eager JAX calls are the edge-case tests below."""
    (want, want_grads), want_dtype = reference(name), optax_dtype(name, dtype)
    call, arrays, wrt = _inputs(name, dtype)
    j = [jnp.asarray(a) for a in arrays]
    got, grads = jax.jit(_value_and_grads(lko, call, wrt))(*j)
    assert isinstance(got, jax.Array)
    _check_dtype(name, np.dtype(got.dtype).name, want_dtype, dtype)
    _close(got, want, dtype, "value")
    for i, g in zip(wrt, grads, strict=True):
        assert g.dtype == j[i].dtype
        _close(g, want_grads[i], dtype, f"d/d argument {i}")


@pytest.mark.parametrize(("name", "dtype"), RUNS)
def test_torch_values_and_autograd(name, dtype):
    (want, want_grads), want_dtype = reference(name), optax_dtype(name, dtype)
    call, arrays, wrt = _inputs(name, dtype)
    t = [torch.from_numpy(np.array(a)) for a in arrays]
    for i in wrt:
        t[i].requires_grad_(True)
    got = call(lko, *t)
    assert isinstance(got, torch.Tensor)
    _check_dtype(name, str(got.dtype).removeprefix("torch."), want_dtype, dtype)
    _close(got.detach().numpy(), want, dtype, "value")
    grads = torch.autograd.grad(got.sum(), [t[i] for i in wrt]) if wrt else ()
    for i, g in zip(wrt, grads, strict=True):
        assert g.dtype == t[i].dtype
        _close(g.numpy(), want_grads[i], dtype, f"d/d argument {i}")


@pytest.mark.parametrize(("name", "dtype"), RUNS)
def test_numpy_values(name, dtype):
    (want, _), want_dtype = reference(name), optax_dtype(name, dtype)
    call, arrays, _ = _inputs(name, dtype)
    got = call(lko, *arrays)
    assert isinstance(got, (np.ndarray, np.generic))
    _check_dtype(name, np.dtype(got.dtype).name, want_dtype, dtype)
    _close(got, want, dtype, "value")


def test_every_optax_loss_is_here():
    """Every public name of optax.losses, CTC included (from its own module)."""
    public = {n for n in dir(OL) if not n.startswith("_")}
    assert public <= set(lko.__all__)
    for name in lko.__all__:
        assert callable(getattr(lko, name))


# --------------------------------------------------------------------------- half precision


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize(
    "name",
    [
        "sigmoid_bce",
        "softmax_ce",
        "safe_softmax_ce",
        "int_labels",
        "huber",
        "kl",
        "cosine_distance",
        "triplet_margin",
        "ntxent",
        "ranking_softmax",
        "dice",
    ],
)
def test_half_precision_in_half_out(name, half):
    """optax computes half precision in half precision; the adapter in float32, rounded once."""
    call, arrays, _ = CASES[name]
    j = [jnp.asarray(a, dtype=half) if np.asarray(a).dtype.kind == "f" else a for a in arrays]
    by_optax = call(OL, *j)
    got = call(lko, *j)
    assert got.dtype == by_optax.dtype == jnp.dtype(half)
    exact = np.asarray(
        call(OL, *[jnp.asarray(a, jnp.float64) if a.dtype == jnp.dtype(half) else a for a in j])
    )
    np.testing.assert_allclose(np.asarray(got, np.float64), exact, rtol=1e-2, atol=1e-2)
    tt = [
        torch.from_numpy(np.asarray(a, np.float32)).to(getattr(torch, half))
        if a.dtype == jnp.dtype(half)
        else torch.from_numpy(np.asarray(a))
        for a in j
    ]
    got_t = call(lko, *tt)
    assert got_t.dtype == getattr(torch, half)
    np.testing.assert_allclose(got_t.float().numpy(), np.asarray(got, np.float32), rtol=1e-2)


# --------------------------------------------------------------------------- edge cases


def _grads(fn, *arrays, argnums):
    return jax.grad(lambda *a: jnp.sum(fn(*a)), argnums=argnums)(*arrays)


MASKED = np.array([[1.0, -np.inf, 0.5], [0.0, 1.0, 2.0]])


def test_minus_inf_logit_with_label_zero():
    """softmax_cross_entropy (and poly) form 0 * -inf = NaN there, as optax;
    safe_softmax_cross_entropy counts it 0 and keeps optax's derivative in the
    labels, -log_softmax: +inf at the -inf logit."""
    x, y = jnp.asarray(MASKED), jnp.asarray([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    for fn in ("softmax_cross_entropy", "poly_loss_cross_entropy"):
        got, want = getattr(lko, fn)(x, y), getattr(OL, fn)(x, y)
        assert np.isnan(got[0]) and np.isnan(want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    got, want = lko.safe_softmax_cross_entropy(x, y), OL.safe_softmax_cross_entropy(x, y)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isfinite(got).all()
    ours = _grads(lko.safe_softmax_cross_entropy, x, y, argnums=(0, 1))
    theirs = _grads(OL.safe_softmax_cross_entropy, x, y, argnums=(0, 1))
    assert ours[1][0, 1] == theirs[1][0, 1] == math.inf
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # torch autograd: the same derivatives
    tx = torch.tensor(MASKED, requires_grad=True)
    ty = torch.tensor(np.asarray(y), requires_grad=True)
    lko.safe_softmax_cross_entropy(tx, ty).sum().backward()
    np.testing.assert_allclose(tx.grad.numpy(), theirs[0], rtol=1e-12)
    np.testing.assert_allclose(ty.grad.numpy(), theirs[1], rtol=1e-12)
    # a positive label at -inf is +inf in every form
    y2 = jnp.asarray([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    assert lko.safe_softmax_cross_entropy(x, y2)[0] == math.inf
    assert lko.softmax_cross_entropy(x, y2)[0] == math.inf == OL.softmax_cross_entropy(x, y2)[0]


def test_where_masked_labels_get_zero_gradient():
    """optax's gradient in the labels of a masked entry is NaN (jnp.where meets
    0 * -inf); the adapter's is 0, the derivative of a term that is not there.
    Everything else is optax's: the values, a fully masked example of 0, and
    the gradient in the logits."""
    x, y, w = jnp.asarray(X), jnp.asarray(T), jnp.asarray(WHERE)
    for fn in ("softmax_cross_entropy", "poly_loss_cross_entropy"):
        ours = _grads(lambda a, b, f=fn: getattr(lko, f)(a, b, where=w), x, y, argnums=(0, 1))
        theirs = _grads(lambda a, b, f=fn: getattr(OL, f)(a, b, where=w), x, y, argnums=(0, 1))
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10, atol=1e-14)
        assert np.isnan(np.asarray(theirs[1])[~WHERE]).all()
        np.testing.assert_array_equal(np.asarray(ours[1])[~WHERE], 0.0)
        np.testing.assert_allclose(
            np.asarray(ours[1])[WHERE], np.asarray(theirs[1])[WHERE], rtol=1e-10
        )
        assert float(getattr(lko, fn)(x, y, where=w)[1]) == 0.0


def test_integer_labels_where_takes_a_masked_labels_logit():
    """optax reads z_y even where the label's class is masked: logsumexp over the kept
    logits minus z_y, which can be negative."""
    w = np.ones((2, 3), bool)
    w[0, 0] = False
    x, y = jnp.asarray([[5.0, 0.0, 1.0], [0.0, 1.0, 2.0]]), jnp.asarray([0, 2])
    got = lko.softmax_cross_entropy_with_integer_labels(x, y, where=jnp.asarray(w))
    want = OL.softmax_cross_entropy_with_integer_labels(x, y, where=jnp.asarray(w))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0] < 0
    np.testing.assert_allclose(got[0], np.log(np.exp(0.0) + np.exp(1.0)) - 5.0, rtol=1e-12)


def test_kl_zero_targets():
    """A target of 0 counts 0 (t log t = 0) and its derivative is -log q (optax: NaN);
    against a -inf log-prediction the example is NaN, as optax; with log-targets a
    -inf log-target is NaN as in optax."""
    lp = jnp.log(jnp.asarray([[0.25, 0.5, 0.25], [0.5, 0.5, 0.0]]))
    t = jnp.asarray([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    got, want = lko.kl_divergence(lp, t), OL.kl_divergence(lp, t)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isnan(got[1]) and np.isfinite(got[0])
    ours = _grads(lko.kl_divergence, lp[:1], t[:1], argnums=(0, 1))
    theirs = _grads(OL.kl_divergence, lp[:1], t[:1], argnums=(0, 1))
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
    np.testing.assert_allclose(ours[1][0, :2], theirs[1][0, :2], rtol=1e-12)
    assert np.isnan(theirs[1][0, 2])
    assert ours[1][0, 2] == pytest.approx(-math.log(0.25), rel=1e-14)
    with np.errstate(divide="ignore"):
        s = np.log(np.asarray(t))
    got = lko.kl_divergence_with_log_targets(np.asarray(lp), s)
    want = OL.kl_divergence_with_log_targets(lp, jnp.asarray(s))
    assert np.isnan(got).all() and np.isnan(want).all()


def test_smooth_labels_with_nothing_kept_is_inf():
    """alpha / 0 where a row keeps nothing, as optax."""
    w = jnp.asarray([[True, False, True], [False, False, False]])
    y = jnp.asarray([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    got, want = lko.smooth_labels(y, 0.1, where=w), OL.smooth_labels(y, 0.1, where=w)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isinf(np.asarray(got)[1]).all()
    got_np = lko.smooth_labels(np.asarray(y), 0.1, where=np.asarray(w))
    np.testing.assert_allclose(got_np, want, rtol=1e-12)


def test_convex_kl_divergence_warns_as_optax():
    lp, t = jnp.log(jnp.asarray(Q)), jnp.asarray(T)
    with pytest.warns(DeprecationWarning) as ours:
        got = lko.convex_kl_divergence(lp, t)
    with pytest.warns(DeprecationWarning) as theirs:
        want = OL.convex_kl_divergence(lp, t)
    assert str(ours[0].message) == str(theirs[0].message)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize(
    "fn, args",
    [
        ("sigmoid_binary_cross_entropy", (np.array([1e4, -1e4, 3e2]), np.array([0.0, 1.0, 0.5]))),
        ("softmax_cross_entropy", (np.array([[1e4, -1e4, 0.0]]), np.array([[0.0, 1.0, 0.0]]))),
        (
            "softmax_cross_entropy_with_integer_labels",
            (np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]]), np.array([1, 0])),
        ),
        ("sigmoid_focal_loss", (np.array([1e4, -1e4, 30.0]), np.array([0.0, 1.0, 0.0]))),
        ("log_cosh", (np.array([1e4, -1e4, 0.5]),)),
    ],
)
def test_extremes(fn, args):
    """Logits of +-1e4 give optax's (finite) numbers on every kind of array."""
    want = np.asarray(getattr(OL, fn)(*[jnp.asarray(a) for a in args]))
    for conv in (np.asarray, jnp.asarray, torch.from_numpy):
        got = getattr(lko, fn)(*[conv(np.array(a)) for a in args])
        got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert np.isfinite(got).all()


@pytest.mark.parametrize(
    "fn, args, shape",
    [
        ("softmax_cross_entropy", (np.zeros((0, 3)), np.zeros((0, 3))), (0,)),
        ("softmax_cross_entropy_with_integer_labels", (np.zeros((0, 3)), np.zeros(0, int)), (0,)),
        ("sigmoid_binary_cross_entropy", (np.zeros((0, 3)), np.zeros((0, 3))), (0, 3)),
        ("kl_divergence", (np.zeros((0, 3)), np.zeros((0, 3))), (0,)),
        ("huber_loss", (np.zeros((0, 3)),), (0, 3)),
    ],
)
def test_empty_batches(fn, args, shape):
    want = getattr(OL, fn)(*[jnp.asarray(a) for a in args])
    assert want.shape == shape
    for conv in (np.asarray, jnp.asarray, torch.from_numpy):
        assert tuple(getattr(lko, fn)(*[conv(np.array(a)) for a in args]).shape) == shape


def test_fenchel_young_with_a_losskit_max_on_every_kind():
    """lk.logsumexp works on every kind of array; a JAX function of one vector on JAX arrays."""
    want = np.asarray(OL.make_fenchel_young_loss(jax_logsumexp)(jnp.asarray(X), jnp.asarray(T)))
    fy = lko.make_fenchel_young_loss(lk.logsumexp)
    for conv in (np.asarray, jnp.asarray, torch.from_numpy):
        got = fy(conv(np.array(X)), conv(np.array(T)))
        got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # A max function of optax's kind (one vector in, a scalar out) only on JAX arrays:
    fy_max = lko.make_fenchel_young_loss(lambda v: jnp.max(v))
    np.testing.assert_allclose(
        fy_max(jnp.asarray(X), jnp.asarray(T)),
        OL.make_fenchel_young_loss(lambda v: jnp.max(v))(jnp.asarray(X), jnp.asarray(T)),
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match=r"`max_fun` must reduce the last axis of `scores`"):
        lko.make_fenchel_young_loss(np.max)(X, T)
    with pytest.raises(TypeError, match="`max_fun` must be a callable"):
        lko.make_fenchel_young_loss(3)


# --------------------------------------------------------------------------- errors


def test_label_out_of_range_raises_eagerly_and_is_nan_under_jit():
    """optax gathers a filled or clamped value (a silently wrong number); the adapter refuses."""
    msg = r"`labels` must be in \[0, 5\); got 5 at position \(1,\)"
    for conv in (np.asarray, jnp.asarray, torch.from_numpy):
        with pytest.raises(ValueError, match=msg):
            lko.softmax_cross_entropy_with_integer_labels(conv(X), conv(np.array([0, 5, 1, 2])))
        with pytest.raises(ValueError, match=msg):
            lko.multiclass_hinge_loss(conv(X), conv(np.array([0, 5, 1, 2])))
    with pytest.raises(ValueError, match=msg):
        lko.softmax_cross_entropy_with_integer_labels(
            X, np.array([0, 5, 1, 2]), where=np.ones((4, 5), bool)
        )
    for fn in (
        lko.softmax_cross_entropy_with_integer_labels,
        lko.multiclass_perceptron_loss,
        lko.multiclass_sparsemax_loss,
        lambda x, y: lko.softmax_cross_entropy_with_integer_labels(x, y, where=x > -100),
    ):
        got = np.asarray(jax.jit(fn)(jnp.asarray(X), jnp.asarray([0, 5, 1, -1])))
        assert np.isnan(got[[1, 3]]).all() and np.isfinite(got[[0, 2]]).all()


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: lko.perceptron_loss(X, SIGNS[0]), ValueError,
         r"`targets` must have the shape of `predictor_outputs` \(4, 5\); got \(5,\)"),
        (lambda: lko.squared_error(X, T01[:2]), ValueError,
         r"`targets` must have the shape of `predictions` \(4, 5\); got \(2, 5\)"),
        (lambda: lko.softmax_cross_entropy(X, T[:3]), ValueError,
         r"`labels` must broadcast against `logits` \(4, 5\); got \(3, 5\)"),
        (lambda: lko.softmax_cross_entropy(X.astype(int), T), TypeError,
         "`logits` must be a real floating-point array; got dtype int64"),
        (lambda: lko.softmax_cross_entropy(X, T, axis=2), ValueError,
         r"`axis` 2 is out of bounds for 2-d `logits`"),
        (lambda: lko.softmax_cross_entropy(X, T, axis=1.0), TypeError,
         r"`axis` must be an int, a tuple of ints or None; got 1.0"),
        (lambda: lko.softmax_cross_entropy(X, T, where=np.ones((3, 5), bool)), ValueError,
         r"`where` must broadcast to the input's shape \(4, 5\); got \(3, 5\)"),
        (lambda: lko.softmax_cross_entropy_with_integer_labels(X, LABELS, axis=None), TypeError,
         "`axis` must be an int or a tuple of ints; got None"),
        (lambda: lko.softmax_cross_entropy_with_integer_labels(X, T), TypeError,
         "`labels` must be an integer array of class ids; got dtype float64"),
        (lambda: lko.softmax_cross_entropy_with_integer_labels(X, LABELS[:3]), ValueError,
         r"`labels` must have the shape of `logits` \(4, 5\) without its class axis -1, "
         r"that is \(4,\); got \(3,\)"),
        (lambda: lko.poly_loss_cross_entropy(X, BITS), TypeError,
         "`labels` must be a real floating-point array; got dtype int64"),
        (lambda: lko.kl_divergence(LP, BITS), TypeError,
         "`targets` must be a real floating-point array; got dtype int64"),
        (lambda: lko.multiclass_sparsemax_loss(X3, LABELS), ValueError,
         r"`scores` must be a matrix \(N, C\), as optax's vmap over rows; got \(2, 3, 4\)"),
        (lambda: lko.huber_loss(X, delta=0.0), ValueError, "`delta` must be a positive"),
        (lambda: lko.sigmoid_focal_loss(X, T01, gamma=-1.0), ValueError, "`gamma` must be"),
        (lambda: lko.hinge_loss(torch.tensor(X), jnp.asarray(SIGNS)), TypeError,
         "`targets` must be an array of the same library as the predictions"),
    ],
)  # fmt: skip
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_no_warning_for_ordinary_input():
    """Nothing the adapters do warns on what optax computes silently (filterwarnings=error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lko.kl_divergence(LQ, T, where=WHERE)
        lko.smooth_labels(T, 0.1, where=WHERE)
        lko.safe_softmax_cross_entropy(MASKED, np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]]))


# --------------------------------------------------------------------------- issue 9 corners


def test_cosine_of_a_zero_vector():
    """optax's default epsilon=0 divides a zero vector by its zero norm: NaN, as here;
    with epsilon > 0 the norm is clamped (sqrt(epsilon)) and the cosine is 0."""
    p, t = np.array([[0.0, 0.0], [1.0, 2.0]]), np.array([[1.0, 1.0], [0.0, 0.0]])
    for conv in (np.asarray, jnp.asarray, torch.from_numpy):
        got = lko.cosine_similarity(conv(p), conv(t))
        got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        assert np.isnan(got).all()
        assert np.isnan(np.asarray(OL.cosine_similarity(jnp.asarray(p), jnp.asarray(t)))).all()
    got = lko.cosine_distance(p, t, epsilon=1e-6)
    np.testing.assert_allclose(got, OL.cosine_distance(p, t, epsilon=1e-6), rtol=1e-12)
    np.testing.assert_allclose(got, [1.0, 1.0], rtol=1e-15)
    # where masking every entry of a row: no entry, cosine 0 (optax's empty sum)
    w = np.array([[False, False], [True, True]])
    got = lko.cosine_similarity(p + 1, t, where=w)
    np.testing.assert_allclose(got, OL.cosine_similarity(p + 1, t, where=w), rtol=1e-12)


def test_ntxent_without_positive_pairs_is_nan():
    e, y = X, np.array([0, 1, 2, 3])
    assert np.isnan(float(OL.ntxent(jnp.asarray(e), jnp.asarray(y))))
    for conv in (np.asarray, jnp.asarray, torch.from_numpy):
        assert math.isnan(float(lko.ntxent(conv(e), conv(y))))


def test_ranking_softmax_with_nothing_kept():
    """A mean over no kept list is 0 (optax's _safe_reduce); unreduced, such a list is 0."""
    w = np.zeros((4, 5), bool)
    for fn in (None, jnp.mean, jnp.sum):
        want = OL.ranking_softmax_loss(jnp.asarray(X), jnp.asarray(T01), where=w, reduce_fn=fn)
        got = lko.ranking_softmax_loss(X, T01, where=w, reduce_fn=fn)
        np.testing.assert_array_equal(got, want)
    # a custom reduce_fn is called as optax calls it
    got = lko.ranking_softmax_loss(jnp.asarray(X), jnp.asarray(T01), reduce_fn=jnp.max)
    want = OL.ranking_softmax_loss(jnp.asarray(X), jnp.asarray(T01), reduce_fn=jnp.max)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_dice_probabilities_must_sum_to_one():
    """apply_softmax=False: optax's check and message."""
    bad = PROBS3 * 1.1
    with pytest.raises(ValueError) as theirs:
        OL.dice_loss(jnp.asarray(bad), jnp.asarray(ONEHOT3), apply_softmax=False)
    for conv in (np.asarray, jnp.asarray, torch.from_numpy):
        with pytest.raises(ValueError) as ours:
            lko.dice_loss(conv(bad), conv(ONEHOT3), apply_softmax=False)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="Unsupported reduction: max"):
        lko.dice_loss(X3, ONEHOT3, reduction="max")


def test_triplet_odd_norm_degree_raises():
    """optax raises a - p to the power without abs: a signed sum for an odd degree."""
    with pytest.raises(ValueError, match="`norm_degree` must be an even number"):
        lko.triplet_margin_loss(X, T01, Q, norm_degree=1)
    with pytest.raises(ValueError, match="`norm_degree` must be an even number"):
        lko.triplet_margin_loss(X, T01, Q, norm_degree=2.5)


def test_log_cosh_is_exact_for_small_errors():
    """A deliberate difference: log cosh e = e^2/2 - e^4/12 + ... for small e, which
    optax's logaddexp(e, -e) - log 2 rounds away (1.1e-16 for e = 1e-8)."""
    e = np.array([1e-8, 1e-5])
    got = lko.log_cosh(e)
    np.testing.assert_allclose(got, e**2 / 2 - e**4 / 12, rtol=1e-14)
    assert abs(float(OL.log_cosh(jnp.asarray(e))[0]) - 5e-17) > 2.5e-17
