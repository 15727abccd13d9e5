"""The focal family, poly-1 and generalized cross-entropy against optax, Keras and PyTorch.

Every expected number comes from outside losskit: optax (values, ``jax.grad``), Keras 3
on TensorFlow (values, ``GradientTape``), or the formula written here in PyTorch float64
functional ops (torchvision's ``sigmoid_focal_loss`` body, ``F.cross_entropy``,
``F.log_softmax``), whose autograd gives the gradient; the reductions follow the core's
semantics (conftest's ``_reduce``: weighted mean, class weights in the denominator).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest

import losskit as lk
from conftest import _reduce, assert_close, loss_dtype, round_to, softmax_np
from losskit.losses.focal import (
    binary_focal_cross_entropy,
    categorical_focal_cross_entropy,
    generalized_cross_entropy,
    poly1_cross_entropy,
    sigmoid_focal_loss,
    softmax_focal_loss,
)

REDUCTIONS = ("none", "sum", "mean")
SIG, BFC, CFC = sigmoid_focal_loss, binary_focal_cross_entropy, categorical_focal_cross_entropy
SFL, GCE, POLY = softmax_focal_loss, generalized_cross_entropy, poly1_cross_entropy
LOSSES = (SIG, BFC, CFC, SFL, GCE, POLY)
SPARSE = (SFL, GCE)
ROWWISE = (CFC, POLY)


def name(fn):
    return fn.__name__


# --------------------------------------------------------------------------- references
# torch float64, unreduced; each takes (x, truth) as torch tensors, x requiring grad


def ref_sigmoid_focal(z, t, *, alpha=0.25, gamma=2.0):
    """torchvision.ops.sigmoid_focal_loss's body (torchvision is not installed)."""
    import torch
    import torch.nn.functional as F

    p = torch.sigmoid(z)
    ce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None and alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss


def ref_binary_focal(p, t, *, gamma=2.0, alpha=None, eps=1e-7):
    """Keras 3's binary_focal_crossentropy before its mean over the last axis."""
    import torch

    pc = torch.clamp(p, eps, 1 - eps)
    bce = -(t * torch.log(pc) + (1 - t) * torch.log(1 - pc))
    p_t = t * p + (1 - t) * (1 - p)
    loss = (1 - p_t) ** gamma * bce
    if alpha is not None:
        loss = (t * alpha + (1 - t) * (1 - alpha)) * loss
    return loss


def ref_categorical_focal(p, t, *, gamma=2.0, alpha=0.25, eps=1e-7, axis=-1):
    """Keras 3's categorical_focal_crossentropy without its renormalisation."""
    import torch

    pc = torch.clamp(p, eps, 1 - eps)
    return (alpha * (1 - pc) ** gamma * -t * torch.log(pc)).sum(dim=axis)


def ref_poly1(z, t, *, epsilon=2.0, axis=-1):
    """optax.poly_loss_cross_entropy in torch: F.cross_entropy + ε Σ t (1 - softmax)."""
    import torch
    import torch.nn.functional as F

    zm, tm = torch.movedim(z, axis, 1), torch.movedim(t, axis, 1)
    ce = F.cross_entropy(zm, tm, reduction="none")
    return ce + epsilon * (tm * (1 - torch.softmax(zm, dim=1))).sum(dim=1)


def _log_p_label(z, y, axis):
    import torch
    import torch.nn.functional as F

    lp = torch.movedim(F.log_softmax(z, dim=axis), axis, -1)
    return torch.gather(lp, -1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)


def ref_softmax_focal(z, y, *, gamma=2.0, axis=-1):
    """-(1 - p_y)^γ log p_y (Lin et al.; kornia's focal_loss on one-hot targets)."""
    lpy = _log_p_label(z, y, axis)
    return -((1 - lpy.exp()) ** gamma) * lpy


def ref_gce(p, y, *, q=0.5, axis=-1):
    """Keras 3's categorical_generalized_cross_entropy: (1 - p_y^q) / q."""
    import torch

    pm = torch.movedim(p, axis, -1)
    p_y = torch.gather(pm, -1, y.unsqueeze(-1)).squeeze(-1)
    return (1 - p_y**q) / q


REFS = {
    SIG: ref_sigmoid_focal,
    BFC: ref_binary_focal,
    CFC: ref_categorical_focal,
    POLY: ref_poly1,
    SFL: ref_softmax_focal,
    GCE: ref_gce,
}

# options passed through to the reference (the rest are the shell's)
SHELL = ("reduction", "sample_weight", "class_weight", "ignore_index")


def reference(fn, x, truth, **opts):
    """(value, d sum(value) / d x) in float64 from the torch reference, core reductions."""
    import torch

    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    truth = np.asarray(truth)
    tt = (
        torch.tensor(truth)
        if truth.dtype.kind in "iu"
        else torch.tensor(truth, dtype=torch.float64)
    )
    ref_opts = {k: v for k, v in opts.items() if k not in SHELL}
    per = REFS[fn](xt, tt, **ref_opts)
    counted = None
    if fn in SPARSE:
        ii = opts.get("ignore_index")
        cw = opts.get("class_weight")
        keep = torch.ones_like(per) if ii is None else (tt != ii).to(torch.float64)
        w = keep if cw is None else keep * torch.tensor(cw)[tt.clamp(min=0)]
        per, counted = per * w, w
        per = torch.where(keep > 0, per, torch.zeros_like(per))
    v = _reduce(per, opts.get("reduction", "mean"), opts.get("sample_weight"), counted)
    (g,) = torch.autograd.grad(v.sum(), xt)
    return v.detach().numpy(), g.numpy()


# --------------------------------------------------------------------------- inputs


def make_case(fn, rng, shape=(5, 4), axis=-1):
    """(x, truth) in float64 / int64, away from clipping and from p_t = 1."""
    c = shape[axis]
    if fn is SIG:
        return rng.normal(size=shape) * 3, rng.uniform(0, 1, size=shape)
    if fn is BFC:
        return rng.uniform(0.02, 0.98, size=shape), rng.uniform(0, 1, size=shape)
    if fn is CFC:
        return softmax_np(rng.normal(size=shape), axis), softmax_np(
            2 * rng.normal(size=shape), axis
        )
    if fn is POLY:
        return rng.normal(size=shape) * 2, softmax_np(rng.normal(size=shape), axis)
    labels = rng.integers(0, c, size=tuple(np.delete(shape, axis)))
    if fn is SFL:
        return rng.normal(size=shape) * 2, labels
    return softmax_np(rng.normal(size=shape), axis), labels  # GCE


def unreduced_shape(fn, shape, axis=-1):
    return tuple(shape) if fn in (SIG, BFC) else tuple(np.delete(shape, axis))


ARRAYS = ("sample_weight", "class_weight")


def run(xp, fn, x, truth, dtype="float64", **opts):
    """``fn`` and ``value_and_grad(fn)`` on backend ``xp`` (conftest's run_loss, for a
    function not yet exported): kinds, dtypes, shapes, and value == value_and_grad's."""
    xb = xp.asarray(x, dtype)
    truth = np.asarray(truth)
    tb = xp.asarray(truth, "int64" if truth.dtype.kind in "iu" else dtype)
    kw = {
        k: xp.asarray(v, loss_dtype(dtype)) if k in ARRAYS and v is not None else v
        for k, v in opts.items()
    }
    value = fn(xb, tb, **kw)
    v2, grad = lk.value_and_grad(fn)(xb, tb, **kw)
    for arr in (value, v2, grad):
        assert xp.is_native(arr), type(arr)
    assert xp.dtype_name(value) == loss_dtype(dtype)
    assert xp.dtype_name(grad) == dtype
    assert tuple(grad.shape) == tuple(np.shape(x))
    vn, v2n, gn = xp.to_numpy(value), xp.to_numpy(v2), xp.to_numpy(grad)
    assert_close(v2n, vn, dtype, err_msg="value_and_grad value != plain call")
    return vn, gn


def check(xp, fn, x, truth, dtype="float64", **opts):
    got_v, got_g = run(xp, fn, x, truth, dtype, **opts)
    rounded = truth if np.asarray(truth).dtype.kind in "iu" else round_to(truth, dtype)
    exp_v, exp_g = reference(fn, round_to(x, dtype), rounded, **opts)
    assert_close(got_v, exp_v, dtype, err_msg=f"{name(fn)} value {opts}")
    assert_close(got_g, exp_g, dtype, kind="grad", err_msg=f"{name(fn)} gradient {opts}")
    return got_v, got_g


OPTIONS = {
    SIG: [{"alpha": None, "gamma": 0.5}, {"alpha": -1.0, "gamma": 0.0}, {"alpha": 0.7}],
    BFC: [{"alpha": 0.25, "gamma": 3.0}, {"gamma": 0.5, "eps": 0.0}],
    CFC: [{"alpha": 1.0, "gamma": 0.5}, {"gamma": 0.0, "eps": 0.0}],
    POLY: [{"epsilon": -1.0}, {"epsilon": 0.0}],
    SFL: [{"gamma": 0.5}, {"gamma": 0.0}],
    GCE: [{"q": 1.0}, {"q": 0.05}],
}
OPTION_CASES = [(fn, o) for fn in LOSSES for o in OPTIONS[fn]]


@pytest.fixture
def rng():
    return np.random.default_rng(8)


# --------------------------------------------------------------------------- values and gradients


@pytest.mark.parametrize("fn", LOSSES, ids=name)
def test_matches_reference(xp, rng, fn):
    """Default options, every reduction, without and with sample_weight (batch-shaped
    and of the unreduced loss's shape)."""
    x, truth = make_case(fn, rng)
    weights = [
        None,
        rng.uniform(0, 2, size=5),
        rng.uniform(0, 2, size=unreduced_shape(fn, x.shape)),
    ]
    for reduction in REDUCTIONS:
        for sw in weights:
            check(xp, fn, x, truth, reduction=reduction, sample_weight=sw)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize(
    ("fn", "opts"), OPTION_CASES, ids=lambda v: name(v) if callable(v) else str(v)
)
def test_options(backend, rng, fn, opts):
    """The options' values (gamma < 1, gamma 0, no alpha, eps 0, q at both ends) on the
    two backends of different kinds; the backends' common code is the default's test."""
    from conftest import Backend

    pytest.importorskip(backend)
    x, truth = make_case(fn, rng)
    for reduction in REDUCTIONS:
        check(Backend(backend), fn, x, truth, reduction=reduction, **opts)


@pytest.mark.parametrize("fn", [CFC, SFL], ids=name)
def test_class_axis(xp, rng, fn):
    """Classes on axis 1 of (N, C, d): the shells (rowwise, sparse) move them last and back."""
    x, truth = make_case(fn, rng, shape=(3, 4, 2), axis=1)
    check(xp, fn, x, truth, axis=1, reduction="mean", sample_weight=[1.0, 0.0, 2.0])


def test_softmax_focal_class_weight_and_ignore_index(xp, rng):
    """class_weight is the per-class alpha; "mean" divides by the counted labels' weights."""
    z = rng.normal(size=(5, 4)) * 2
    y = np.array([0, 2, -100, 3, -100])
    for reduction in REDUCTIONS:
        cw = [0.25, 1.0, 2.0, 0.5]
        check(xp, SFL, z, y, class_weight=cw, ignore_index=-100, reduction=reduction)
    v, g = run(xp, SFL, z, np.full(5, -100), ignore_index=-100)
    assert v == 0 and not g.any()  # nothing counted: 0, not NaN


@pytest.mark.parametrize("backend", ["numpy", "jax", "array_api_strict", "torch"])
def test_softmax_focal_gamma_zero_is_sparse_cross_entropy(backend, rng):
    """Bit for bit on the portable path (the same -log p_y); within rounding where
    sparse_softmax_cross_entropy takes PyTorch's fused kernel for its value."""
    from conftest import Backend

    pytest.importorskip(backend)
    xp = Backend(backend)
    z, y = xp.asarray(rng.normal(size=(5, 4)) * 3), xp.asarray(rng.integers(0, 4, size=5))
    with lk.portable():
        for reduction in REDUCTIONS:
            a = lk.value_and_grad(SFL)(z, y, gamma=0.0, reduction=reduction)
            b = lk.value_and_grad(lk.sparse_softmax_cross_entropy)(z, y, reduction=reduction)
            for got, want in zip(a, b, strict=True):
                if backend == "torch" and reduction != "sum":
                    assert_close(xp.to_numpy(got), xp.to_numpy(want))
                else:
                    np.testing.assert_array_equal(xp.to_numpy(got), xp.to_numpy(want))
            plain = SFL(z, y, gamma=0.0, reduction=reduction)
            want = lk.sparse_softmax_cross_entropy(z, y, reduction=reduction)
            assert_close(xp.to_numpy(plain), xp.to_numpy(want))


def test_softmax_focal_gradient_formula(rng):
    """The docstring's two forms of d/dz against each other and against torch autograd."""
    import torch

    z = torch.tensor(rng.normal(size=(6, 4)) * 2, requires_grad=True)
    y = torch.tensor(rng.integers(0, 4, size=6))
    for gamma in (0.5, 1.0, 2.0, 3.7):
        (auto,) = torch.autograd.grad(ref_softmax_focal(z, y, gamma=gamma).sum(), z)
        p = torch.softmax(z, -1).detach()
        p_y = p.gather(-1, y[:, None])
        delta = torch.nn.functional.one_hot(y, 4).double()
        first = (delta - p) * (1 - p_y) ** (gamma - 1) * (gamma * p_y * p_y.log() - (1 - p_y))
        second = (1 - p_y) ** gamma * (1 + gamma * p_y * -p_y.log() / (1 - p_y)) * (p - delta)
        _, core = lk.value_and_grad(SFL)(z.detach(), y, gamma=gamma, reduction="sum")
        for g in (first, second, core):
            torch.testing.assert_close(g, auto, rtol=1e-12, atol=1e-14)


def test_generalized_cross_entropy_limits(xp, rng):
    """q -> 0 is the cross-entropy -log p_y (GCE = -log p_y (1 + q log p_y / 2 + ...));
    q = 1 is 1 - p_y.  The expm1 form keeps full precision at q = 1e-8, where
    (1 - p^q) / q in float64 keeps about 8 digits."""
    p, y = make_case(GCE, rng)
    ce = -np.log(np.take_along_axis(p, y[:, None], -1)[:, 0])
    v, _ = run(xp, GCE, p, y, q=1e-8, reduction="none")
    np.testing.assert_allclose(v, ce * (1 - 1e-8 * ce / 2), rtol=1e-13)
    v, g = run(xp, GCE, p, y, q=1.0, reduction="none")
    assert_close(v, 1 - np.exp(-ce))
    assert_close(g, -np.eye(4)[y], kind="grad")


# --------------------------------------------------------------------------- frameworks


def test_sigmoid_focal_matches_optax(rng, optax):
    """optax.sigmoid_focal_loss (alpha=None by default there) and its jax.grad."""
    import jax
    import jax.numpy as jnp

    z, t = make_case(SIG, rng)
    t[0, :2] = [0.0, 1.0]
    for alpha in (None, 0.25):
        want = optax.losses.sigmoid_focal_loss(
            jnp.asarray(z), jnp.asarray(t), alpha=alpha, gamma=2.0
        )
        want_g = jax.grad(
            lambda a, alpha=alpha: optax.losses.sigmoid_focal_loss(
                a, jnp.asarray(t), alpha=alpha
            ).sum()
        )(jnp.asarray(z))
        v, g = lk.value_and_grad(SIG)(z, t, alpha=alpha, reduction="none")
        assert_close(v, np.asarray(want))
        assert_close(g, np.asarray(want_g), kind="grad")


def test_poly1_matches_optax(rng, optax):
    import jax
    import jax.numpy as jnp

    z, t = make_case(POLY, rng)
    for epsilon in (2.0, -1.0):
        loss = functools.partial(optax.losses.poly_loss_cross_entropy, epsilon=epsilon)
        want = loss(jnp.asarray(z), jnp.asarray(t))
        want_g = jax.grad(lambda a, loss=loss: loss(a, jnp.asarray(t)).sum())(jnp.asarray(z))
        v, g = lk.value_and_grad(POLY)(z, t, epsilon=epsilon, reduction="none")
        assert_close(v, np.asarray(want))
        assert_close(g, np.asarray(want_g), kind="grad")
    # soft targets not summing to 1: optax's sum_c t_c (1 - p_c), not 1 - <t, p>
    t2 = t * 0.5
    want = optax.losses.poly_loss_cross_entropy(jnp.asarray(z), jnp.asarray(t2))
    assert_close(POLY(z, t2, reduction="none"), np.asarray(want))


def _keras_value_and_grad(tf, loss, y_true, y_pred):
    x = tf.constant(y_pred, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        v = loss(tf.constant(y_true), x)
        total = tf.reduce_sum(v)
    return np.asarray(v), np.asarray(tape.gradient(total, x))


def test_keras_binary_focal_from_logits(rng, tf, keras_losses):
    """keras binary_focal_crossentropy(from_logits=True) = the last-axis mean of
    sigmoid_focal_loss with alpha=None (or alpha, with apply_class_balancing) on
    targets smoothed beforehand; values and GradientTape gradients, float64."""
    z, t = make_case(SIG, rng)
    t[0] = [0.0, 1.0, 1.0, 0.0]
    for balance, alpha, gamma, smooth in ((False, 0.25, 2.0, 0.0), (True, 0.3, 1.5, 0.1)):
        loss = functools.partial(
            keras_losses.binary_focal_crossentropy,
            apply_class_balancing=balance,
            alpha=alpha,
            gamma=gamma,
            label_smoothing=smooth,
            from_logits=True,
        )
        want, want_g = _keras_value_and_grad(tf, loss, t, z)
        ts = t * (1 - smooth) + smooth / 2
        opts = {"alpha": alpha if balance else None, "gamma": gamma}
        v, g = lk.value_and_grad(SIG)(z, ts, reduction="none", **opts)
        assert_close(v.mean(axis=-1), want)
        assert_close(g / z.shape[-1], want_g, kind="grad")


def test_keras_binary_focal_on_probabilities(rng, tf, keras_losses):
    p, t = make_case(BFC, rng)
    p[0, :2], t[0, :3] = [0.0, 1.0], [0.0, 1.0, 1.0]  # clipped probabilities, hard targets
    for balance, alpha, gamma in ((False, 0.25, 2.0), (True, 0.4, 0.5)):
        loss = functools.partial(
            keras_losses.binary_focal_crossentropy,
            apply_class_balancing=balance,
            alpha=alpha,
            gamma=gamma,
        )
        want, want_g = _keras_value_and_grad(tf, loss, t, p)
        opts = {"alpha": alpha if balance else None, "gamma": gamma}
        v, g = lk.value_and_grad(BFC)(p, t, reduction="none", **opts)
        assert_close(v.mean(axis=-1), want)
        # gamma < 1 at a certain right answer (p = t = 0, 1): Keras's chain rule forms
        # 0 * inf = NaN; the core's factor is held still there, as the clip holds ce
        certain = p == t
        assert certain.sum() == 2 and np.isnan(want_g[certain]).all() == (gamma < 1)
        if gamma < 1:
            assert (g[certain] == 0).all()
        assert_close(g[~certain] / p.shape[-1], want_g[~certain], kind="grad")


def test_keras_categorical_focal(rng, tf, keras_losses):
    """Normalised rows (Keras renormalises, the core does not); a one-hot row with a
    zero probability and a probability of 1 (both clipped to [1e-7, 1 - 1e-7])."""
    p, t = make_case(CFC, rng)
    p[0], t[0] = [0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]
    p[1], t[1] = [0.0, 0.5, 0.5, 0.0], [1.0, 0.0, 0.0, 0.0]
    for alpha, gamma in ((0.25, 2.0), (1.0, 0.5)):
        loss = functools.partial(
            keras_losses.categorical_focal_crossentropy, alpha=alpha, gamma=gamma
        )
        want, want_g = _keras_value_and_grad(tf, loss, t, p)
        v, g = lk.value_and_grad(CFC)(p, t, alpha=alpha, gamma=gamma, reduction="none")
        assert_close(v, want)
        # Keras's gradient includes its renormalisation's (sum(p) = 1 here): project it
        # out; the core's is d/dp at fixed sum.  Its row-mean-free parts must agree.
        centred = want_g - (want_g * p).sum(-1, keepdims=True)
        assert_close(g - (g * p).sum(-1, keepdims=True), centred, kind="grad")


def test_keras_per_class_alpha_through_targets(rng, tf, keras_losses):
    """Keras's list alpha: alpha=1 and targets alpha_c t_c (the loss is linear in t)."""
    p, t = make_case(CFC, rng)
    a = np.array([0.1, 0.5, 0.9, 0.3])
    want = keras_losses.categorical_focal_crossentropy(t, p, alpha=a.tolist(), gamma=2.0)
    # Keras makes the list a float32 tensor: float32's agreement
    assert_close(CFC(p, t * a, alpha=1.0, reduction="none"), np.asarray(want), "float32")


def test_keras_generalized_cross_entropy(rng, tf, keras_losses):
    p, y = make_case(GCE, rng)
    for q in (0.5, 0.7, 0.05):
        loss = functools.partial(keras_losses.categorical_generalized_cross_entropy, q=q)
        want, want_g = _keras_value_and_grad(tf, loss, y, p)
        v, g = lk.value_and_grad(GCE)(p, y, q=q, reduction="none")
        assert_close(v, want)
        assert_close(g, want_g, kind="grad")


# --------------------------------------------------------------------------- every input


def _torch_inputs(fn, rng):
    """Inputs away from clipping and kinks (finite differences of 1e-6 stay inside)."""
    x, truth = make_case(fn, rng, shape=(3, 4))
    if fn in (BFC, SIG):
        truth = rng.uniform(0.05, 0.95, size=truth.shape)
    return x, truth


@pytest.mark.parametrize("fn", LOSSES, ids=name)
def test_gradcheck_every_floating_input(rng, fn):
    """torch gradcheck and gradgradcheck: logits/probs, targets, sample_weight, class_weight."""
    import torch

    x, truth = _torch_inputs(fn, rng)
    xt = torch.tensor(x, requires_grad=True)
    sw = torch.tensor(rng.uniform(0.5, 2, size=3), requires_grad=True)
    args = [xt, sw]
    if fn in SPARSE:
        tt = torch.tensor(truth)
        if fn is SFL:
            cw = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=torch.float64, requires_grad=True)
            args.append(cw)

            def f(x, sw, cw):
                return SFL(x, tt, sample_weight=sw, class_weight=cw, gamma=1.5)
        else:

            def f(x, sw):
                return GCE(x, tt, sample_weight=sw, q=0.4)
    else:
        tt = torch.tensor(truth, requires_grad=True)
        args.insert(1, tt)

        def f(x, t, sw):
            return fn(x, t, sample_weight=sw, reduction="sum")

    with warnings.catch_warnings():  # finite differences move rows off a sum of 1
        warnings.simplefilter("ignore", lk.UnnormalizedProbabilitiesWarning)
        assert torch.autograd.gradcheck(f, args)
        assert torch.autograd.gradgradcheck(f, args)


def _jnp_formula(fn, x, t, sw):
    """The plain jnp formula (naive, no stability care) of sum(sw * loss)."""
    import jax
    import jax.numpy as jnp

    if fn is SIG:
        p = jax.nn.sigmoid(x)
        ce = -(t * jnp.log(p) + (1 - t) * jnp.log(1 - p))
        loss = (0.25 * t + 0.75 * (1 - t)) * (1 - (p * t + (1 - p) * (1 - t))) ** 2 * ce
    elif fn is BFC:
        ce = -(t * jnp.log(x) + (1 - t) * jnp.log(1 - x))
        loss = (t * (1 - x) + (1 - t) * x) ** 2 * ce
    elif fn is CFC:
        loss = jnp.sum(-0.25 * (1 - x) ** 2 * t * jnp.log(x), axis=-1)
    elif fn is POLY:
        p = jnp.exp(x) / jnp.sum(jnp.exp(x), axis=-1, keepdims=True)
        loss = -jnp.sum(t * jnp.log(p), axis=-1) + 2 * jnp.sum(t * (1 - p), axis=-1)
    elif fn is SFL:
        p = jnp.exp(x) / jnp.sum(jnp.exp(x), axis=-1, keepdims=True)
        p_y = jnp.take_along_axis(p, t[:, None], -1)[:, 0]
        loss = -((1 - p_y) ** 2) * jnp.log(p_y)
    else:
        p_y = jnp.take_along_axis(x, t[:, None], -1)[:, 0]
        loss = (1 - jnp.sqrt(p_y)) / 0.5
    sw = sw if loss.ndim == 1 else sw[:, None]
    return jnp.sum(sw * loss)


@pytest.mark.parametrize("fn", LOSSES, ids=name)
def test_jax_grad_every_floating_input(rng, fn):
    import jax
    import jax.numpy as jnp

    x, truth = _torch_inputs(fn, rng)
    sw = rng.uniform(0.5, 2, size=3)
    args = [jnp.asarray(x), jnp.asarray(truth), jnp.asarray(sw)]
    floating = (0, 2) if fn in SPARSE else (0, 1, 2)

    def core(x, t, sw):
        return fn(x, t, sample_weight=sw, reduction="sum")

    got = jax.jit(jax.grad(core, argnums=floating))(*args)
    want = jax.grad(functools.partial(_jnp_formula, fn), argnums=floating)(*args)
    for a, b in zip(got, want, strict=True):
        assert_close(np.asarray(a), np.asarray(b), kind="grad")


# --------------------------------------------------------------------------- edge cases


def test_targets_at_zero_and_one_every_derivative():
    """Probabilities at 0 and 1 with hard targets, clipped (eps=1e-7) and not (eps=0).

    Where the prediction is certain and right (q = 1 - p_t = 0) the loss is 0 (the factor
    is 0) and so are its derivatives in p and t, except for gamma = 1 with a clip, where
    d/dp = (1 - 2t) (-log(1 - eps)) exactly (the reference's); for gamma < 1 the
    reference's is 0 * inf = NaN (Keras's too) and the core's 0.  Certain and wrong with
    eps=0: an infinite loss (the true value).  Everywhere else: the reference's numbers.
    """
    import torch

    p = torch.tensor([[0.0, 1.0, 0.3, 1.0], [0.0, 0.7, 1.0, 0.0]], requires_grad=True)
    t = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0]], requires_grad=True)
    right = (p == t).detach()
    wrong = ((p - t).abs() == 1).detach()
    for gamma, eps in ((2.0, 1e-7), (1.0, 1e-7), (0.5, 1e-7), (2.0, 0.0), (0.5, 0.0)):
        v = BFC(p, t, gamma=gamma, eps=eps, reduction="none")
        gp, gt = torch.autograd.grad(v.sum(), (p, t))
        _, analytic = lk.value_and_grad(BFC)(p.detach(), t.detach(), gamma=gamma, eps=eps)
        want = ref_binary_focal(p, t, gamma=gamma, eps=eps)
        want_p, want_t = torch.autograd.grad(want.sum(), (p, t))
        finite = ~wrong if eps == 0 else torch.ones_like(right)
        torch.testing.assert_close(analytic[finite] * 8, gp[finite], rtol=1e-12, atol=0)
        assert torch.isfinite(gp[finite]).all() and torch.isfinite(gt[finite]).all()
        assert (v[right] == 0).all()
        if eps == 0:
            assert torch.isinf(v[wrong]).all()
        if gamma == 1 and eps > 0:
            torch.testing.assert_close(gp[right], want_p[right])
        else:
            assert (gp[right] == 0).all() and (gt[right] == 0).all(), (gamma, eps, gp, gt)
        other = finite & ~right
        torch.testing.assert_close(v[other], want[other])
        torch.testing.assert_close(gp[other], want_p[other])
        torch.testing.assert_close(gt[other], want_t[other])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_focal_extreme_logits(xp, dtype):
    """z = ±1e4 and ±3e38 (float32; 1e308 in float64): q and ce come from σ(±z) and the
    stable softplus, so confident right answers give 0 and confident wrong ones α_t |z|;
    the gradient is α_t (σ(z) - t) there.  Rows 2-4: z = 0, t = 1/2, so α_t = 1/2 and
    ℓ = 1/2 (1/2)^2 log 2, d/dz = 1/2 (1/2)^2 (1/2 - 1/2) = 0 (1 - 2t = 0)."""
    big = 3e38 if dtype == "float32" else 1e308
    z, t = np.zeros((5, 4)), np.full((5, 4), 0.5)
    z[:2], t[:2] = [[1e4, -1e4, 1e4, -1e4], [big, -big, big, -big]], [[1, 0, 0, 1]] * 2
    v, g = run(xp, SIG, z, t, dtype, reduction="none")
    a = np.where(t == 1, 0.25, 0.75)[:2]
    right = (z[:2] > 0) == (t[:2] == 1)
    np.testing.assert_allclose(v[:2], np.where(right, 0.0, a * np.abs(z[:2])), rtol=1e-6)
    np.testing.assert_allclose(g[:2], np.where(right, 0.0, a * np.sign(z[:2])), rtol=1e-6)
    np.testing.assert_allclose(v[2:], np.log(2) / 8, rtol=1e-6)
    assert not g[2:].any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_focal_and_poly1_extreme_logits(xp, dtype):
    """Logits ±1e4 and ±3e38 (float32; 1e308 in float64): finite gradients, the loss
    finite whenever the true value is representable (a certain right answer: 0; 2 * 3e38
    is not).  Row 2: p = softmax = [0, 1/2, 1/2, 0], label 0: gradient p - onehot for both
    (focal: q = 1, p_y ce / q = 0; poly-1: -ε p (t - <t, p>) = 0)."""
    big = 3e38 if dtype == "float32" else 1e308
    z = np.zeros((5, 4))
    z[:3] = [[1e4, 0.0, -1e4, 0.0], [big, -big, 0.0, 0.0], [-big, big, big, 0.0]]
    y = np.zeros(5, dtype=np.int64)
    for fn, truth in ((SFL, y), (POLY, np.eye(4)[y])):
        v, g = run(xp, fn, z, truth, dtype, reduction="none")
        assert v[0] == 0 and v[1] == 0 and np.isinf(v[2]), v
        assert np.isfinite(g).all(), g
        np.testing.assert_allclose(g[2], [-1.0, 0.5, 0.5, 0.0], rtol=1e-6)


def test_autograd_at_extremes_has_no_nan():
    """torch autograd through the value formulas where intermediates saturate."""
    import torch

    z = torch.tensor([[3e38, -3e38, 0.0], [-3e38, 3e38, 3e38]], requires_grad=True)
    y = torch.tensor([0, 0])
    for fn, truth in ((SFL, y), (POLY, torch.eye(3)[y])):
        (g,) = torch.autograd.grad(fn(z, truth, reduction="sum"), z)
        assert torch.isfinite(g).all(), (name(fn), g)
    t = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]], requires_grad=True)
    for gamma in (0.5, 2.0):
        gz, gt = torch.autograd.grad(SIG(z, t, gamma=gamma, reduction="sum"), (z, t))
        assert torch.isfinite(gz).all() and torch.isfinite(gt).all(), (gamma, gz, gt)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("fn", LOSSES, ids=name)
def test_half_precision(xp, rng, fn, dtype):
    xp.require(dtype)
    x, truth = make_case(fn, rng)
    if fn in (CFC, GCE):  # rows as rounded to half precision are what the loss is given
        x = x / x.sum(axis=-1, keepdims=True)
    for reduction in ("none", "mean"):
        check(xp, fn, x, truth, dtype, reduction=reduction)


@pytest.mark.parametrize("fn", LOSSES, ids=name)
def test_empty_batch(xp, fn):
    x, truth = make_case(fn, np.random.default_rng(0), shape=(0, 3))
    for reduction in REDUCTIONS:
        v, g = run(xp, fn, x, truth, reduction=reduction)
        assert v.shape == (unreduced_shape(fn, (0, 3)) if reduction == "none" else ())
        assert g.shape == (0, 3) and (reduction == "none" or v == 0)


# --------------------------------------------------------------------------- warnings, errors


def test_warnings():
    p = np.array([[0.5, 0.4, 0.3], [0.2, 0.3, 0.5]])  # the first row sums to 1.2
    with pytest.warns(
        lk.UnnormalizedProbabilitiesWarning, match=r"categorical_focal.*\(0,\).*1\.2"
    ):
        CFC(p, np.eye(3)[[0, 2]])
    with pytest.warns(lk.UnnormalizedProbabilitiesWarning, match=r"generalized_cross_entropy"):
        GCE(p, np.array([0, 2]))
    probs = p / p.sum(axis=-1, keepdims=True)
    for fn, truth in ((SFL, np.array([0, 2])), (POLY, np.eye(3)[[0, 2]])):
        with pytest.warns(lk.ProbabilitiesAsLogitsWarning, match=name(fn)):
            fn(probs, truth)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # float16 rows rounded to ±5e-4 of 1 are normalised rows
        GCE(np.array([[0.3, 0.3, 0.4]], dtype=np.float16), np.array([1]))


@pytest.mark.parametrize(
    ("fn", "opts", "error", "message"),
    [
        (SIG, {"gamma": -1.0}, ValueError, "`gamma` must be a finite number >= 0; got -1.0"),
        (SIG, {"gamma": "2"}, TypeError, "`gamma` must be a finite number >= 0; got '2'"),
        (SFL, {"gamma": math.inf}, ValueError, "`gamma` must be a finite number >= 0; got inf"),
        (
            SIG,
            {"alpha": 1.5},
            ValueError,
            "`alpha` must be a number in [0, 1], or negative, or None for no weighting; got 1.5",
        ),
        (
            BFC,
            {"alpha": -0.5},
            ValueError,
            "`alpha` must be a number in [0, 1] or None for no weighting; got -0.5",
        ),
        (CFC, {"alpha": True}, TypeError, "`alpha` must be a number in [0, 1] or None"),
        (BFC, {"eps": 0.5}, ValueError, "`eps` must be a number in [0, 0.5); got 0.5"),
        (CFC, {"eps": -1e-7}, ValueError, "`eps` must be a number in [0, 0.5); got -1e-07"),
        (GCE, {"q": 0.0}, ValueError, "`q` must be a number in (0, 1]; got 0.0"),
        (GCE, {"q": 1.5}, ValueError, "`q` must be a number in (0, 1]; got 1.5"),
        (POLY, {"epsilon": math.nan}, ValueError, "`epsilon` must be a finite number; got nan"),
        (POLY, {"epsilon": None}, TypeError, "`epsilon` must be a finite number; got None"),
    ],
)
def test_bad_options(fn, opts, error, message):
    x, truth = make_case(fn, np.random.default_rng(0), shape=(2, 3))
    with pytest.raises(error) as err:
        fn(x, truth, **opts)
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize(
    ("fn", "arg", "value", "message"),
    [
        (SIG, "truth", 1.5, "`targets` must be in [0, 1]; got 1.5 at position (1, 2)"),
        (BFC, "x", -0.1, "`probs` must be probabilities in [0, 1]; got -0.1 at position (1, 2)"),
        (CFC, "truth", math.nan, "`targets` must be in [0, 1]; got nan at position (1, 2)"),
        (GCE, "x", 2.0, "`probs` must be probabilities in [0, 1]; got 2.0 at position (1, 2)"),
        (SFL, "truth", 3, "`labels` must be in [0, 3); got 3 at position (1,)"),
    ],
)
def test_eager_refuses_bad_values(xp, fn, arg, value, message):
    x, truth = make_case(fn, np.random.default_rng(0), shape=(2, 3))
    if arg == "x":
        x[1, 2] = value
    elif fn in SPARSE:
        truth[1] = value
    else:
        truth[1, 2] = value
    with pytest.raises(ValueError) as err:
        fn(xp.asarray(x), xp.asarray(truth))
    assert str(err.value) == message


# --------------------------------------------------------------------------- traced: the NaN rule

# Every value rule of each loss, planted into distinct examples of one (3, 4) case so
# that one jitted function per loss checks them all: (loss, options, plants, strict);
# a plant is (argument, index, value).  A bad class weight enters every example.
TRACED_BAD = [
    (SIG, {}, [("truth", (1, 2), 1.5), ("sample_weight", (2,), math.inf)], True),
    # gamma 0: the clipped cross-entropy is the only path from p to the loss
    (BFC, {"gamma": 0.0}, [("x", (1, 2), 1.5), ("truth", (2, 0), -0.5)], True),
    (CFC, {}, [("x", (1, 2), 1.5), ("truth", (2, 0), math.nan)], True),
    (POLY, {}, [("truth", (1, 1), 2.0)], True),
    (SFL, {}, [("truth", (1,), 7)], True),
    (SFL, {}, [("class_weight", (1,), -1.0)], False),
    (GCE, {}, [("x", (1, 0), 1.5), ("truth", (2,), -1)], True),
]


def _planted(fn, plants, rng):
    x, truth = make_case(fn, rng, shape=(3, 4))
    if fn in (BFC, CFC, GCE):
        x = np.clip(x, 0.02, 0.98)
    arrays = {"sample_weight": np.array([1.0, 0.5, 2.0])}
    if fn is SFL:
        truth = np.array([0, 1, 2])
        arrays["class_weight"] = np.array([1.0, 2.0, 0.5, 1.0])
    bad = x.copy(), truth.copy(), {k: v.copy() for k, v in arrays.items()}
    elementwise = fn in (SIG, BFC)
    hit = np.zeros((3, 4) if elementwise else (3,), dtype=bool)
    for arg, index, value in plants:
        target = {"x": bad[0], "truth": bad[1]}.get(arg, bad[2].get(arg))
        target[index] = value
        hit[index if elementwise and arg in ("x", "truth") else index[:1]] = True
    return (x, truth, arrays), bad, hit


@pytest.mark.parametrize(
    ("fn", "opts", "plants", "strict"), TRACED_BAD, ids=lambda v: name(v) if callable(v) else str(v)
)
def test_jit_nan_rule(rng, fn, opts, plants, strict):
    """Under jax.jit a bad value makes what it enters NaN, in the value (every reduction)
    and in the gradient (jax.grad and value_and_grad); the rest is the eager numbers."""
    import jax
    import jax.numpy as jnp

    good, bad, hit = _planted(fn, plants, rng)
    elementwise = fn in (SIG, BFC)

    def run_all(x, truth, arrays):
        values = [fn(x, truth, reduction=r, **opts, **arrays) for r in REDUCTIONS]
        none = functools.partial(fn, reduction="none", **opts)
        vg = lk.value_and_grad(none)(x, truth, **arrays)[1]
        ad = jax.grad(lambda a: jnp.sum(none(a, truth, **arrays)))(x)
        return values, vg, ad

    def as_jax(x, t, a):
        return jnp.asarray(x), jnp.asarray(t), {k: jnp.asarray(v) for k, v in a.items()}

    (none, total, mean), *grads = jax.tree.map(np.asarray, jax.jit(run_all)(*as_jax(*bad)))
    (eager_none, _, _), *eager_grads = jax.tree.map(np.asarray, run_all(*as_jax(*good)))
    assert np.isnan(none[hit]).all() and np.isnan(total) and np.isnan(mean), none
    ghit = hit if elementwise else np.broadcast_to(hit[:, None], (3, 4))
    for g in grads:
        assert (np.isnan(g) if elementwise else np.isnan(g).any(axis=-1))[hit].all(), g
    if strict:
        assert_close(none[~hit], eager_none[~hit])
        for g, eager_g in zip(grads, eager_grads, strict=True):
            assert_close(g[~ghit], eager_g[~ghit], kind="grad")


# --------------------------------------------------------------------------- torch.compile


@pytest.fixture(scope="module")
def compiled_torch():
    torch = pytest.importorskip("torch")
    dynamo = pytest.importorskip("torch._dynamo")
    with dynamo.config.patch(recompile_limit=64):
        yield torch
    dynamo.reset()


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`:UserWarning")
def test_compile_fullgraph_equals_eager(compiled_torch, rng):
    """One torch.compile(fullgraph=True, backend="aot_eager") of all six losses (a graph
    break would raise): each loss's value and autograd through the compiled graph equal
    eager's (the analytic gradient under a trace: test_jit_nan_rule)."""
    torch = compiled_torch
    xs, truths = [], []
    for fn in LOSSES:
        x, truth = make_case(fn, rng, shape=(3, 4))
        xs.append(x)
        truths.append(torch.tensor(truth))
    sw = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)

    def all_losses(xs, truths, sw):
        return [fn(x, t, sample_weight=sw) for fn, x, t in zip(LOSSES, xs, truths, strict=True)]

    compiled = torch.compile(all_losses, fullgraph=True, backend="aot_eager")
    results = []
    for f in (all_losses, compiled):
        leaves = [torch.tensor(x, requires_grad=True) for x in xs]
        values = f(leaves, truths, sw)
        grads = torch.autograd.grad(values, leaves)
        results.append(
            [(v.detach().numpy(), g.numpy()) for v, g in zip(values, grads, strict=True)]
        )
    for fn, got, want in zip(LOSSES, results[1], results[0], strict=True):
        for a, b in zip(got, want, strict=True):
            assert_close(a, b, err_msg=name(fn))
