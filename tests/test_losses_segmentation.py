"""The segmentation losses (losskit.losses.segmentation) against optax, Keras 3 and Sudre et al.

Values and ``value_and_grad`` gradients on every backend of the ``xp`` fixture, in
float64: ``dice`` and ``tversky`` per example and class against optax 0.2.8's
``dice_loss``, pooled per example against Keras 3's ``dice`` and ``tversky``,
``generalized_dice`` against the paper's formula in torch (``tests/_refs_segmentation.py``),
under each reduction and ``sample_weight``; a case derived by hand; torch autograd and
``jax.grad`` for every floating argument (targets, ``sample_weight``); the axis options
on (N, H, W, C) maps; the class weights' edge cases (absent classes, no target, sizes
whose ``1/T**2`` overflows); the NaN rule under ``jax.jit`` and ``torch.compile``;
half precision and float32 accumulation; empty batches; pinned error messages.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import losskit as lk
from _refs_segmentation import (
    coefficients,
    generalized_dice_ref,
    keras_ref,
    make_maps,
    optax_ref,
    reduce,
)
from conftest import Backend, assert_close, loss_dtype, round_to
from losskit import _config, value_and_grad

REDUCTIONS = ("none", "sum", "mean")
SHAPE = (3, 4, 5, 3)  # (N, H, W, C)


@functools.cache
def maps(shape: tuple[int, ...] = SHAPE, soft: bool = False) -> tuple[np.ndarray, np.ndarray]:
    p, t = make_maps(np.random.default_rng(len(shape) + 10 * soft), shape, soft=soft)
    return p, t


def run(xp: Backend, fn: Any, p: Any, t: Any, dtype: str = "float64", **opts: Any):
    """``fn`` and ``value_and_grad(fn)`` on ``xp``, as NumPy, after checking kinds and dtypes.

    ``sample_weight`` travels as an array of the loss's dtype; on JAX the calls are
    jitted (a cold eager JAX call compiles every operation for its shapes).
    """
    pb, tb = xp.asarray(p, dtype), xp.asarray(t, dtype)
    sw = opts.pop("sample_weight", None)
    sw = None if sw is None else xp.asarray(sw, loss_dtype(dtype))

    def calls(a: Any, b: Any, w: Any) -> Any:
        return fn(a, b, sample_weight=w, **opts), *value_and_grad(fn)(a, b, sample_weight=w, **opts)

    if xp.name == "jax":
        import jax

        calls = jax.jit(calls)
    value, v2, grad = calls(pb, tb, sw)
    assert xp.is_native(value) and xp.is_native(grad)
    assert xp.dtype_name(value) == loss_dtype(dtype)
    assert xp.dtype_name(grad) == dtype
    assert tuple(grad.shape) == tuple(np.shape(p))
    assert_close(xp.to_numpy(v2), xp.to_numpy(value), loss_dtype(dtype))
    return xp.to_numpy(value), xp.to_numpy(grad)


def check_against(xp: Backend, fn: Any, p: np.ndarray, t: np.ndarray, ref: Any, **opts: Any):
    """Every reduction, with and without a sample_weight, against ``ref(p, t, coef)``."""
    per = ref(p, t)[0]
    weights = [None, np.random.default_rng(1).uniform(0.0, 2.0, size=per.shape[:1])]
    if per.ndim == 2:  # one weight per example and class, too
        weights.append(np.random.default_rng(2).uniform(0.0, 2.0, size=per.shape))
    combos = [(r, w) for r in REDUCTIONS for w in weights]
    if xp.name != "numpy":  # the shared code paths once more, not every combination (jit time)
        combos = [("none", None), ("sum", weights[-1]), ("mean", weights[1])]
    for reduction, sw in combos:
        value, grad = run(xp, fn, p, t, reduction=reduction, sample_weight=sw, **opts)
        coef = coefficients(per.shape, reduction, sw)
        what = f"{fn.__name__} {opts} {reduction} weight {None if sw is None else sw.shape}"
        assert_close(value, reduce(per, reduction, sw), err_msg=what)
        assert_close(grad, ref(p, t, coef)[1], kind="grad", err_msg=what)


# ----------------------------------------------------------------------- the frameworks' numbers


@pytest.mark.parametrize(
    "name, opts",
    [
        ("dice", dict(smooth=1.0)),
        ("dice", dict(smooth=1e-3)),
        ("tversky", dict(alpha=0.3, beta=0.7, smooth=0.5)),
        ("tversky", dict(alpha=1.5, beta=0.2, smooth=1.0)),
    ],
)
def test_per_class_matches_optax(xp, name, opts):
    """One loss per example and class over (H, W): optax's dice_loss (reduction="none")
    on the same probabilities, its alpha on the false positives as the core's."""
    p, t = maps()
    ab = {k: opts[k] for k in ("alpha", "beta") if k in opts}

    def ref(a, b, coef=None):
        return optax_ref(a, b, coef, axis=(1, 2), smooth=opts["smooth"], **ab)

    check_against(xp, getattr(lk, name), p, t, ref, axis=(1, 2), **opts)


@pytest.mark.parametrize(
    "name, core, keras",
    [
        ("dice", dict(smooth=0.0, eps=0.5e-7), {}),
        # Keras's alpha weighs sum((1 - p) t), the core's false negatives (beta).
        ("tversky", dict(alpha=0.7, beta=0.2, smooth=0.0, eps=1e-7), dict(alpha=0.2, beta=0.7)),
    ],
)
def test_per_example_matches_keras(xp, name, core, keras):
    """One loss per example over every other axis (axis=None): Keras's with
    axis=(1, 2, 3), its epsilon in the denominator only, on soft targets too."""
    for soft in (False, True):
        p, t = maps(soft=soft)

        def ref(a, b, coef=None):
            return keras_ref(name, a, b, coef, axis=(1, 2, 3), **keras)

        check_against(xp, getattr(lk, name), p, t, ref, **core)


@pytest.mark.parametrize(
    "shape, opts",
    [
        (SHAPE, dict(smooth=1.0)),
        ((2, 3, 4, 5), dict(class_axis=1, smooth=0.5)),  # (N, C, H, W)
        (SHAPE, dict(axis=(2,), smooth=0.0, eps=1e-6)),  # one loss per example and row
    ],
)
def test_generalized_dice_matches_sudre(xp, shape, opts):
    """Sudre et al.'s formula, with an absent class in one example and an example
    whose targets are all 0, against the torch reference."""
    p, t = maps(shape)
    t = t.copy()
    class_axis = opts.get("class_axis", -1) % len(shape)
    first = [slice(None)] * len(shape)
    first[0], first[class_axis] = 0, 1
    t[tuple(first)] = 0  # class 1 absent from example 0
    t[1] = 0  # example 1 has no target at all
    default = tuple(i for i in range(1, len(shape)) if i != class_axis)
    axes = opts.get("axis", default)
    ref_opts = dict(axis=axes, class_axis=class_axis, smooth=opts["smooth"])
    ref_opts["eps"] = opts.get("eps", 0.0)

    def ref(a, b, coef=None):
        return generalized_dice_ref(a, b, coef, **ref_opts)

    check_against(xp, lk.generalized_dice, p, t, ref, **opts)


def test_hand_derived():
    """p = (0.5, 0.5), t = (1, 0), smooth 1: I = 0.5, N = 1.5, D = (1 + 1)/2 + 1 = 2,
    dice = 1 - 1.5/2 = 0.25 and dL/dp = N/(2 D**2) - t/D = 0.1875 - (0.5, 0):
    (-0.3125, 0.1875).  Tversky alpha 0.2, beta 0.6: FP = FN = 0.5, D = 0.5 + 0.1 + 0.3
    + 1 = 1.9, loss 1 - 1.5/1.9 = 0.4/1.9 and dL/dp = (N/D**2)(alpha + 0.2 t) - t/D."""
    p, t = np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])
    value, grad = value_and_grad(lk.dice)(p, t)
    assert value == 0.25
    np.testing.assert_array_equal(grad, [[-0.3125, 0.1875]])
    value, grad = value_and_grad(lk.tversky)(p, t, alpha=0.2, beta=0.6)
    n, d = 1.5, 1.9
    np.testing.assert_allclose(value, 0.4 / 1.9, rtol=1e-15)
    np.testing.assert_allclose(grad, [[n / d**2 * 0.4 - 1 / d, n / d**2 * 0.2]], rtol=1e-15)
    # Generalized Dice of one class is Dice; of two classes with T = (3, 1) the weights
    # are (1/9, 1) / (10/9) = (0.1, 0.9) (the doctest's case).
    np.testing.assert_allclose(lk.generalized_dice(p[..., None], t[..., None]), 0.25, rtol=1e-15)


# ----------------------------------------------------------------------- derivatives, every input


def _inputs(name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    p, t = maps((2, 3, 2, 3), soft=True)
    opts = {
        "dice": dict(axis=(1, 2)),
        "tversky": dict(alpha=0.3, beta=0.9),
        "generalized_dice": dict(smooth=0.3),
    }[name]
    return p, t, opts


@pytest.mark.parametrize("name", ["dice", "tversky", "generalized_dice"])
def test_torch_gradcheck_every_floating_argument(name):
    """Finite differences in torch, float64: probabilities, targets and sample_weight."""
    torch = pytest.importorskip("torch")
    p, t, opts = _inputs(name)
    fn = getattr(lk, name)
    per_shape = tuple(fn(p, t, reduction="none", **opts).shape)
    args = [
        torch.tensor(a, requires_grad=True)
        for a in (p, t, np.random.default_rng(0).uniform(0.5, 2, per_shape))
    ]
    assert torch.autograd.gradcheck(lambda a, b, w: fn(a, b, sample_weight=w, **opts), args)
    assert torch.autograd.gradgradcheck(lambda a, b: fn(a, b, **opts), args[:2])


@pytest.mark.parametrize("name", ["dice", "tversky", "generalized_dice"])
def test_jax_grad_equals_torch_and_analytic(name):
    """jax.grad in probabilities and targets equals torch autograd, and the analytic
    gradient equals both (the targets' derivative goes through generalized Dice's
    class weights)."""
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    p, t, opts = _inputs(name)
    fn = getattr(lk, name)
    pt, tt = torch.tensor(p, requires_grad=True), torch.tensor(t, requires_grad=True)
    fn(pt, tt, reduction="sum", **opts).backward()
    gp, gt = jax.jit(jax.grad(lambda a, b: fn(a, b, reduction="sum", **opts), argnums=(0, 1)))(p, t)
    assert_close(np.asarray(gp), pt.grad.numpy(), kind="grad")
    assert_close(np.asarray(gt), tt.grad.numpy(), kind="grad")
    assert_close(value_and_grad(fn)(p, t, reduction="sum", **opts)[1], pt.grad.numpy(), kind="grad")
    assert np.abs(tt.grad.numpy()).max() > 0


# ----------------------------------------------------------------------- axes and shapes


def test_axis_options():
    """None is every axis but the batch; a tuple keeps the other axes in order;
    negative axes, lists, an int, () (elementwise) and every axis (a 0-d loss)."""
    p, t = maps()
    per_example = lk.dice(p, t, reduction="none")
    assert per_example.shape == (3,)
    np.testing.assert_array_equal(lk.dice(p, t, axis=(1, 2, 3), reduction="none"), per_example)
    np.testing.assert_array_equal(lk.dice(p, t, axis=[-1, -3, 2], reduction="none"), per_example)
    per_class = lk.dice(p, t, axis=(1, 2), reduction="none")
    assert per_class.shape == (3, 3)
    for c in range(3):
        np.testing.assert_allclose(
            per_class[:, c], lk.dice(p[..., c], t[..., c], reduction="none"), rtol=1e-14
        )
    per_row = lk.tversky(p, t, axis=2, alpha=0.1, beta=0.4, reduction="none")
    assert per_row.shape == (3, 4, 3)
    np.testing.assert_allclose(
        per_row[1, 2], lk.tversky(p[1, 2].T, t[1, 2].T, alpha=0.1, beta=0.4, reduction="none")
    )
    whole = lk.dice(p, t, axis=(0, 1, 2, 3), reduction="none")
    assert whole.shape == ()
    np.testing.assert_allclose(whole, lk.dice(p.reshape(1, -1), t.reshape(1, -1)), rtol=1e-14)
    elementwise = lk.dice(p, t, axis=(), smooth=0.1, reduction="none")
    expected = 1 - (p * t + 0.1) / ((p + t) / 2 + 0.1)
    np.testing.assert_allclose(elementwise, expected, rtol=1e-13, atol=1e-16)
    # dice is tversky at alpha = beta = 1/2; generalized Dice of one class is Dice.
    np.testing.assert_allclose(lk.tversky(p, t), lk.dice(p, t), rtol=1e-14)
    np.testing.assert_allclose(
        lk.generalized_dice(p[..., :1], t[..., :1]), lk.dice(p[..., :1], t[..., :1]), rtol=1e-14
    )


def test_grad_out():
    """value_and_grad writes the gradient into grad_out (NumPy), even the input itself."""
    p, t = maps()
    expected = value_and_grad(lk.generalized_dice)(p, t)[1]
    out = np.empty_like(p)
    assert value_and_grad(lk.generalized_dice)(p, t, grad_out=out)[1] is out
    np.testing.assert_array_equal(out, expected)
    q = p.copy()
    value_and_grad(lk.dice)(q, t, grad_out=q)
    np.testing.assert_array_equal(q, value_and_grad(lk.dice)(p, t)[1])


def test_sample_weight_shapes():
    """A weight per example, or per example and class of a per-class loss."""
    p, t = maps()
    per = lk.dice(p, t, axis=(1, 2), reduction="none")
    w = np.array([0.5, 0.0, 2.0])
    np.testing.assert_allclose(
        lk.dice(p, t, axis=(1, 2), sample_weight=w), (w[:, None] * per).sum() / (3 * w.sum())
    )
    w2 = np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(
        lk.dice(p, t, axis=(1, 2), sample_weight=w2, reduction="sum"), (w2 * per).sum()
    )


def test_class_weights_edge_cases():
    """An absent class weighs as the rarest present one; no target: equal weights;
    sizes whose 1/T**2 overflows float32 stay finite and exact."""
    p = np.full((1, 4, 3), 0.25)
    t = np.zeros((1, 4, 3))
    t[0, :3, 0], t[0, 3, 1] = 1, 1  # class 2 absent: weights (1/9, 1, 1) / (19/9)
    w = np.array([1 / 9, 1, 1]) / (19 / 9)
    inter, sums = (p * t).sum(1)[0], (p + t).sum(1)[0]
    expected = 1 - ((w * inter).sum() + 1) / ((w * sums).sum() / 2 + 1)
    np.testing.assert_allclose(lk.generalized_dice(p, t), expected, rtol=1e-14)
    # All-zero targets: every class weighs 1/3; the loss is that of Dice pooled.
    zero = np.zeros_like(t)
    np.testing.assert_allclose(
        lk.generalized_dice(p, zero), 1 - 1 / (p.sum() / 3 / 2 + 1), rtol=1e-14
    )
    # T = (1e-30, 1e-20): 1/T**2 is inf in float32; the weights are (1, 1e-20).
    tiny = np.array([[[1e-30, 1e-20]]], dtype=np.float32)
    pt = np.array([[[1.0, 0.0]]], dtype=np.float32)
    value, grad = value_and_grad(lk.generalized_dice)(pt, tiny, smooth=0.0, eps=1e-30)
    assert np.isfinite(value) and np.isfinite(grad).all()
    ref = generalized_dice_ref(
        pt.astype(np.float64), tiny.astype(np.float64), axis=(1,), smooth=0.0, eps=1e-30
    )
    assert_close(value, ref[0].mean(), "float32")


@pytest.mark.parametrize("name", ["dice", "tversky", "generalized_dice"])
def test_empty_batch(xp, name):
    p, t = maps()
    fn = getattr(lk, name)
    for reduction in REDUCTIONS:
        value, grad = run(xp, fn, p[:0], t[:0], reduction=reduction)
        if reduction == "none":
            assert value.shape == (0,)
        else:
            assert value == 0.0
        assert grad.shape == p[:0].shape
    # An image of no pixels: nothing overlaps, smooth/smooth, a loss of 0.
    value, grad = run(xp, fn, p[:, :0], t[:, :0], reduction="none")
    np.testing.assert_array_equal(value, np.zeros(3))


# ----------------------------------------------------------------------- precision


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["dice", "tversky", "generalized_dice"])
def test_low_precision(xp, name, dtype):
    """Computed in float32 from the rounded input: the independent float64 references
    (Keras's dice and tversky per example, Sudre's formula in torch) on it (optax's
    dice_loss refuses probabilities whose rounded rows do not sum to 1)."""
    xp.require(dtype)
    p, t = maps()
    pr, tr = round_to(p, dtype), round_to(t, dtype)
    if name == "generalized_dice":
        opts: dict[str, Any] = {}

        def ref(a: Any, b: Any, coef: Any = None) -> Any:
            return generalized_dice_ref(a, b, coef, axis=(1, 2))
    else:  # as test_per_example_matches_keras: Keras's alpha is the core's beta
        opts = dict(smooth=0.0, eps=0.5e-7)
        keras: dict[str, Any] = {}
        if name == "tversky":
            opts = dict(alpha=0.7, beta=0.2, smooth=0.0, eps=1e-7)
            keras = dict(alpha=0.2, beta=0.7)

        def ref(a: Any, b: Any, coef: Any = None) -> Any:
            return keras_ref(name, a, b, coef, axis=(1, 2, 3), **keras)

    value, grad = run(xp, getattr(lk, name), p, t, dtype, **opts)
    per = ref(pr, tr)[0]
    coef = coefficients(per.shape, "mean", None)
    assert_close(value, reduce(per, "mean", None), loss_dtype(dtype))
    assert_close(grad, ref(pr, tr, coef)[1], dtype, kind="grad")


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_large_maps_accumulate_in_float32(dtype):
    """A 1024 x 1024 map in float16 or float32: sums of a million terms kept to float32
    accuracy (a float16 sum would stop growing at 2048), value and gradient."""
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(1, 1024, 1024)).astype(dtype)
    t = (rng.uniform(size=(1, 1024, 1024)) < 0.3).astype(dtype)
    exact, exact_g = value_and_grad(lk.tversky)(
        p.astype(np.float64), t.astype(np.float64), alpha=0.4, beta=0.6
    )
    got, grad = value_and_grad(lk.tversky)(p, t, alpha=0.4, beta=0.6)
    assert got.dtype == np.float32 and grad.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, exact, rtol=1e-5)
    assert_close(grad, exact_g, dtype, kind="grad")


# ----------------------------------------------------------------------- the value rules


@pytest.mark.parametrize("name", ["dice", "tversky", "generalized_dice"])
@pytest.mark.parametrize("which", ["probs", "targets"])
def test_nan_rule_under_jit(name, which):
    """A probability or target outside [0, 1] inside jax.jit: that example's loss and
    gradient are NaN, the other examples' equal eager's; eagerly it raises."""
    jax = pytest.importorskip("jax")
    p, t = maps((3, 2, 2, 3))
    bad_p, bad_t = p.copy(), t.copy()
    (bad_p if which == "probs" else bad_t)[1, 0, 1, 2] = 1.5
    fn = getattr(lk, name)
    f = jax.jit(lambda a, b: fn(a, b, reduction="none"))
    g = jax.jit(jax.grad(lambda a, b: fn(a, b, reduction="sum")))
    vg = jax.jit(lambda a, b: value_and_grad(fn)(a, b, reduction="sum")[1])
    value = np.asarray(f(bad_p, bad_t))
    eager = fn(p, t, reduction="none")
    eager_g = value_and_grad(fn)(p, t, reduction="sum")[1]
    assert np.isnan(value[1]) and np.isfinite(value[[0, 2]]).all()
    assert_close(value[[0, 2]], eager[[0, 2]])
    for grad in (np.asarray(g(bad_p, bad_t)), np.asarray(vg(bad_p, bad_t))):
        assert np.isnan(grad[1]).all()
        assert_close(grad[[0, 2]], eager_g[[0, 2]], kind="grad")
    with pytest.raises(ValueError, match=f"`{which}` must be"):
        fn(bad_p, bad_t)


# Nothing summed (axis=(), or a 1-d batch): one loss per element, and a bad probability or
# target NaNs its own element only.  Per element, dice is 1 - (p t + 1) / ((p + t) / 2 + 1):
# (0, 0): 1 - 1.5 / 1.75 = 1/7; (1, 0): 1 - 1 / 1.1 = 1/11.
NO_SUM_P, NO_SUM_T = np.array([[0.5, 1.5], [0.2, 0.3]]), np.array([[1.0, 0.0], [0.0, 2.0]])
NO_SUM_GOOD = np.array([[1 / 7, np.nan], [1 / 11, np.nan]])


def _check_no_sum(value: np.ndarray, grad: np.ndarray, good: np.ndarray) -> None:
    bad = np.isnan(good)
    assert np.isnan(value[bad]).all() and np.isfinite(value[~bad]).all(), value
    assert_close(value[~bad], good[~bad])
    assert np.isnan(grad[bad]).all() and np.isfinite(grad[~bad]).all(), grad


def test_nan_rule_without_summed_axis_jit():
    """dice(axis=()) and a 1-d dice under jax.jit: NaN at the bad elements only."""
    jax = pytest.importorskip("jax")
    for p, t, opts, good in (
        (NO_SUM_P, NO_SUM_T, dict(axis=()), NO_SUM_GOOD),
        (NO_SUM_P[0], NO_SUM_T[0], {}, NO_SUM_GOOD[0]),
        (NO_SUM_P[:, 1], NO_SUM_T[:, 1], {}, NO_SUM_GOOD[:, 1]),
    ):
        value = jax.jit(lambda a, b, o=opts: lk.dice(a, b, reduction="none", **o))(p, t)
        grad = jax.jit(jax.grad(lambda a, b, o=opts: lk.dice(a, b, reduction="sum", **o)))(p, t)
        _check_no_sum(np.asarray(value), np.asarray(grad), good)
        with pytest.raises(ValueError, match="must be"):
            lk.dice(p, t, **opts)


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_nan_rule_without_summed_axis_torch_compile():
    """dice(axis=()) and a 1-d dice under torch.compile(fullgraph=True): NaN where bad."""
    torch = pytest.importorskip("torch")
    torch._dynamo.reset()

    def losses(a: Any, b: Any) -> Any:
        return lk.dice(a, b, axis=(), reduction="none"), lk.dice(a[0], b[0], reduction="none")

    compiled = torch.compile(losses, fullgraph=True, backend="aot_eager")
    pt = torch.tensor(NO_SUM_P, requires_grad=True)
    per, row = compiled(pt, torch.tensor(NO_SUM_T))
    per.sum().backward()
    _check_no_sum(per.detach().numpy(), pt.grad.numpy(), NO_SUM_GOOD)
    pt = torch.tensor(NO_SUM_P, requires_grad=True)
    row = compiled(pt, torch.tensor(NO_SUM_T))[1]
    row.sum().backward()
    _check_no_sum(row.detach().numpy(), pt.grad.numpy()[0], NO_SUM_GOOD[0])


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_torch_compile_fullgraph():
    """One compiled function (fullgraph) for the two code paths: equal to eager, and a
    traced bad probability gives NaN for what it enters (value and gradient), no exception."""
    torch = pytest.importorskip("torch")
    p, t = maps((2, 3, 2, 3))
    torch._dynamo.reset()

    def losses(a: Any, b: Any) -> Any:  # dice is tversky's code at alpha = beta = 1/2
        return (
            lk.tversky(a, b, alpha=0.2, beta=0.8, axis=(1, 2), reduction="none"),
            lk.generalized_dice(a, b, reduction="none"),
        )

    compiled = torch.compile(losses, fullgraph=True, backend="aot_eager")
    bad = p.copy()
    bad[0, 0, 0, 0] = -0.5
    results = []
    for f in (losses, compiled):
        pt = torch.tensor(p, requires_grad=True)
        values = f(pt, torch.tensor(t))
        sum(v.sum() for v in values).backward()
        results.append([v.detach().numpy() for v in values] + [pt.grad.numpy()])
    for got, eager in zip(results[1], results[0], strict=True):
        assert_close(got, eager)
    assert_close(results[0][1], lk.generalized_dice(p, t, reduction="none"))
    pt = torch.tensor(bad, requires_grad=True)
    values = compiled(pt, torch.tensor(t))
    # The per-class tversky: only class 0 of example 0 sees the bad value.
    assert torch.isnan(values[0][0, 0]) and torch.isfinite(values[0][0, 1:]).all()
    assert torch.isnan(values[1][0]) and torch.isfinite(values[1][1:]).all()
    sum(v.sum() for v in values).backward()
    assert torch.isnan(pt.grad[0]).all() and torch.isfinite(pt.grad[1]).all()


def test_framework_rules_take_any_target():
    """Inside framework_rules (the adapters) a target outside [0, 1] is computed with."""
    p, t = np.array([[0.5, 0.5]]), np.array([[1.5, 0.0]])
    with _config.framework_rules():
        value = lk.dice(p, t, reduction="none")
    np.testing.assert_allclose(value, 1 - (0.75 + 1) / (2.5 / 2 + 1))
    with pytest.raises(ValueError, match=r"`targets` must be in \[0, 1\]; got 1.5"):
        lk.dice(p, t)


ERRORS = [
    (
        lambda p, t: lk.dice(p * 2, t),
        ValueError,
        "`probs` must be probabilities in [0, 1]; got 1.",
    ),
    (
        lambda p, t: lk.tversky(p, t - 1),
        ValueError,
        "`targets` must be in [0, 1]; got -1.0 at position (0, 0, 0, 1)",
    ),
    (
        lambda p, t: lk.dice(p, t, axis=4),
        ValueError,
        "`axis` must be None, an int or a tuple of distinct ints in [-4, 4) for 4-d `probs`; got 4",
    ),
    (
        lambda p, t: lk.dice(p, t, axis=(1, -3)),
        ValueError,
        "`axis` must be None, an int or a tuple of distinct ints in [-4, 4) for 4-d `probs`; "
        "got (1, -3)",
    ),
    (
        lambda p, t: lk.dice(p, t, axis=1.0),
        TypeError,
        "`axis` must be None, an int or a tuple of distinct ints in [-4, 4) for 4-d `probs`; "
        "got 1.0",
    ),
    (
        lambda p, t: lk.generalized_dice(p, t, axis=(1, 3)),
        ValueError,
        "`axis` (1, 3) must not contain the class axis `class_axis`=3",
    ),
    (
        lambda p, t: lk.generalized_dice(p, t, class_axis=4),
        ValueError,
        "`class_axis` must be an int in [-4, 4) for 4-d `probs`; got 4",
    ),
    (
        lambda p, t: lk.generalized_dice(p, t, class_axis=None),
        TypeError,
        "`class_axis` must be an int in [-4, 4) for 4-d `probs`; got None",
    ),
    (
        lambda p, t: lk.generalized_dice(p, t, class_axis=0),
        ValueError,
        "`class_axis` must not be the batch axis 0; got class_axis=0 for 4-d `probs`",
    ),
    (
        lambda p, t: lk.generalized_dice(p, t, class_axis=-4),
        ValueError,
        "`class_axis` must not be the batch axis 0; got class_axis=-4 for 4-d `probs`",
    ),
    (
        lambda p, t: lk.generalized_dice(p[:, 0, 0, 0], t[:, 0, 0, 0]),
        ValueError,
        "`class_axis` must not be the batch axis 0; got class_axis=-1 for 1-d `probs`",
    ),
    (
        lambda p, t: lk.generalized_dice(p[..., :0], t[..., :0]),
        ValueError,
        "`probs` must have at least one class along `class_axis`; got 0 classes",
    ),
    (
        lambda p, t: lk.dice(p[0, 0, 0, 0], t[0, 0, 0, 0]),
        ValueError,
        "`probs` must have at least 1 dimension (the batch); got a 0-d array",
    ),
    (
        lambda p, t: lk.dice(p, t, smooth=-1.0),
        ValueError,
        "`smooth` must be a finite number >= 0; got -1.0",
    ),
    (
        lambda p, t: lk.dice(p, t, eps="1e-7"),
        TypeError,
        "`eps` must be a finite number >= 0; got '1e-7'",
    ),
    (
        lambda p, t: lk.dice(p, t, smooth=0.0),
        ValueError,
        "`smooth` and `eps` must not both be 0: an empty prediction of an empty target "
        "would give 0/0",
    ),
    (
        lambda p, t: lk.tversky(p, t, alpha=-0.5),
        ValueError,
        "`alpha` must be a finite number >= 0; got -0.5",
    ),
    (
        lambda p, t: lk.tversky(p, t, beta=float("inf")),
        ValueError,
        "`beta` must be a finite number >= 0; got inf",
    ),
    (
        lambda p, t: lk.dice(p, t[:, :2]),
        ValueError,
        "`targets` must have the shape of `probs` (3, 4, 5, 3); got (3, 2, 5, 3) "
        "(losskit does not broadcast)",
    ),
    (
        lambda p, t: lk.dice((p > 0.5).astype(np.int64), t),
        TypeError,
        "`probs` must be a real floating-point array; got dtype int64",
    ),
    (
        lambda p, t: lk.dice(p, t, axis=(1, 2), sample_weight=np.ones(3 * 3)),
        ValueError,
        "`sample_weight` must have the shape of the batch",
    ),
]


@pytest.mark.parametrize("call, error, text", ERRORS)
def test_errors(call, error, text):
    p, t = maps()
    with pytest.raises(error) as info:
        call(np.array(p), np.array(t))
    assert str(info.value).startswith(text), str(info.value)
