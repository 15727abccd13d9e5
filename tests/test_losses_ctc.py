"""The core ``ctc`` loss against a brute-force enumeration of alignments and PyTorch.

References: ``_refs_ctc.brute_force*`` (every path of T classes, float64) for the
values and gradients on tiny cases; ``torch.nn.functional.ctc_loss`` (float64, its
gradient taken through ``log_softmax``, where PyTorch's extra ``exp(log_probs)``
term cancels) on a medium shape.  Every backend runs through the ``xp`` fixture.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import losskit as lk
from _refs_ctc import brute_force_batch, brute_force_torch
from conftest import assert_close, round_to

# (logits shape (N, T, C), labels (N, S), logit_lengths, label_lengths, blank); every
# example feasible.  Repeats (1, 1) need a blank between them; lengths shorter than
# the padded sizes; an empty label; a blank that is not 0.
# One shape (5 examples, 4 frames, 4 classes, labels padded to 3) for every case, so
# that JAX compiles once per dtype and blank.
_LABELS = np.array([[1, 1, 2], [2, 1, 0], [1, 2, 2], [2, 0, 0], [0, 0, 0]])
CASES = {
    "repeats_and_lengths": ((5, 4, 4), _LABELS, [4, 3, 4, 2, 3], [2, 2, 2, 1, 0], 0),
    "blank_last": (
        (5, 4, 4),
        np.array([[1, 0, 1], [0, 0, 1], [1, 1, 2], [2, 2, 2], [0, 1, 2]]),
        [4, 4, 3, 4, 4],
        [2, 3, 0, 1, 3],
        3,
    ),
    "full_lengths": (
        (5, 4, 4),
        np.array([[1, 2, 1], [2, 2, 1], [3, 1, 2], [1, 3, 1], [2, 1, 3]]),
        None,
        None,
        0,
    ),
}


def _case(name, seed=0, scale=2.0):
    shape, labels, t_len, s_len, blank = CASES[name]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * scale
    labels = np.asarray(labels, dtype=np.int64)
    n, t, _ = shape
    tl = np.full(n, t) if t_len is None else np.asarray(t_len)
    sl = np.full(n, labels.shape[1]) if s_len is None else np.asarray(s_len)
    return x, labels, t_len, s_len, tl, sl, blank


def _kw(xp, t_len, s_len, blank, **more):
    kw = dict(blank=blank, **more)
    if t_len is not None:
        kw["logit_lengths"] = xp.asarray(np.asarray(t_len, dtype=np.int64))
    if s_len is not None:
        kw["label_lengths"] = xp.asarray(np.asarray(s_len, dtype=np.int64))
    return kw


# --------------------------------------------------------------------------- brute force


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_brute_force(xp, name, dtype):
    xp.require(dtype)
    x, labels, t_len, s_len, tl, sl, blank = _case(name)
    x = round_to(x, dtype)
    nll, grad = brute_force_batch(x, labels, tl, sl, blank)
    xb = xp.asarray(x, dtype)
    yb = xp.asarray(labels)
    value = lk.ctc(xb, yb, reduction="none", **_kw(xp, t_len, s_len, blank))
    v2, g = lk.value_and_grad(lk.ctc)(xb, yb, reduction="sum", **_kw(xp, t_len, s_len, blank))
    out_dtype = "float32" if dtype == "float16" else dtype
    assert xp.dtype_name(value) == out_dtype and xp.dtype_name(g) == dtype
    # float64 within 1e-12 of the enumeration, float32 within 1e-5 relative
    tol = {"float64": 1e-12, "float32": 1e-5, "float16": 1e-5}[dtype]
    np.testing.assert_allclose(xp.to_numpy(value), nll, rtol=tol, atol=tol)
    np.testing.assert_allclose(float(xp.to_numpy(v2)), nll.sum(), rtol=tol)
    gtol = {"float64": 1e-12, "float32": 1e-5, "float16": 2e-3}[dtype]
    np.testing.assert_allclose(xp.to_numpy(g), grad, rtol=gtol, atol=gtol)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_labels_padded_to_one(backend):
    """Labels of width 1 (S = 1): the extended labels are (blank, y, blank)."""
    from conftest import Backend

    xp = Backend(backend)
    x = np.random.default_rng(12).normal(size=(3, 3, 4)) * 2
    labels, tl, sl = np.array([[3], [1], [2]]), np.array([3, 1, 2]), np.array([1, 1, 0])
    nll, grad = brute_force_batch(x, labels, tl, sl)
    v, g = lk.value_and_grad(lk.ctc)(
        xp.asarray(x),
        xp.asarray(labels),
        logit_lengths=xp.asarray(tl),
        label_lengths=xp.asarray(sl),
        reduction="none",
    )
    assert_close(xp.to_numpy(v), nll)
    assert_close(xp.to_numpy(g), grad, kind="grad")


def test_brute_force_gradient_is_autograd_of_the_enumeration():
    """The reference's occupation gradient equals torch autograd of its enumerated sum."""
    x, labels, _, _, tl, sl, blank = _case("repeats_and_lengths")
    _, grad = brute_force_batch(x, labels, tl, sl, blank)
    for n in range(x.shape[0]):
        _, g = brute_force_torch(x[n, : tl[n]], labels[n, : sl[n]], blank)
        np.testing.assert_allclose(grad[n, : tl[n]], g, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_reductions_and_sample_weight(xp, reduction, weighted):
    x, labels, t_len, s_len, tl, sl, blank = _case("repeats_and_lengths", seed=3)
    nll, grad = brute_force_batch(x, labels, tl, sl, blank)
    w = np.array([1.0, 0.5, 2.0, 0.0, 3.0]) if weighted else np.ones(5)
    # core "mean": the sample_weight-weighted mean of the per-example losses
    expected = {"none": w * nll, "sum": (w * nll).sum(), "mean": (w * nll).sum() / w.sum()}
    coef = {"none": w, "sum": w, "mean": w / w.sum()}[reduction]
    kw = _kw(xp, t_len, s_len, blank, reduction=reduction)
    if weighted:
        kw["sample_weight"] = xp.asarray(w)
    xb, yb = xp.asarray(x), xp.asarray(labels)
    value, g = lk.value_and_grad(lk.ctc)(xb, yb, **kw)
    assert_close(xp.to_numpy(value), expected[reduction])
    assert_close(xp.to_numpy(g), grad * coef[:, None, None], kind="grad")


def test_sum_of_zero_length_label_and_no_frames(xp):
    """No frames and no labels: p = 1 (loss 0); no frames but a label: infeasible."""
    x = xp.asarray(np.zeros((2, 3, 4)))
    labels = xp.asarray(np.array([[1, 2], [3, 3]]))
    kw = _kw(xp, [0, 0], [0, 1], 0, reduction="none")
    assert np.array_equal(xp.to_numpy(lk.ctc(x, labels, **kw)), [0.0, math.inf])


# --------------------------------------------------------------------------- infeasible


def _infeasible(xp):
    # label (1, 1) needs 3 frames (1, blank, 1); (1, 2) fits in 2; (2,) in 1
    x = np.random.default_rng(1).normal(size=(3, 2, 3))
    labels = np.array([[1, 1], [1, 2], [2, 0]])
    return x, labels, _kw(xp, None, [2, 2, 1], 0)


def test_infeasible_is_inf_with_nan_gradient(xp):
    x, labels, kw = _infeasible(xp)
    nll, grad = brute_force_batch(x, labels, [2, 2, 2], [2, 2, 1])
    assert nll[0] == math.inf
    value, g = lk.value_and_grad(lk.ctc)(xp.asarray(x), xp.asarray(labels), reduction="none", **kw)
    value, g = xp.to_numpy(value), xp.to_numpy(g)
    assert value[0] == math.inf and np.isnan(g[0]).all()
    assert_close(value[1:], nll[1:])
    assert_close(g[1:], grad[1:], kind="grad")
    assert float(xp.to_numpy(lk.ctc(xp.asarray(x), xp.asarray(labels), **kw))) == math.inf


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_zero_infinity_gives_zero_loss_and_gradient(xp, reduction):
    x, labels, kw = _infeasible(xp)
    nll, grad = brute_force_batch(x, labels, [2, 2, 2], [2, 2, 1])
    nll[0], grad[0] = 0.0, 0.0
    coef = {"none": 1.0, "sum": 1.0, "mean": 1 / 3}[reduction]
    expected = {"none": nll, "sum": nll.sum(), "mean": nll.mean()}[reduction]
    value, g = lk.value_and_grad(lk.ctc)(
        xp.asarray(x), xp.asarray(labels), reduction=reduction, zero_infinity=True, **kw
    )
    assert_close(xp.to_numpy(value), expected)
    assert_close(xp.to_numpy(g), grad * coef, kind="grad")


# --------------------------------------------------------------------------- autograd


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_autograd_matches_brute_force(autograd_xp, zero_infinity):
    xp = autograd_xp
    x, labels, _, s_len, tl, sl, blank = _case("repeats_and_lengths", seed=5)
    # make the first example infeasible: 2 frames cannot hold (1, 1)
    tl = np.array([2, 3, 4, 2, 3])
    nll, grad = brute_force_batch(x, labels, tl, sl, blank)
    w = np.array([1.0, 2.0, 0.5, 1.0, 1.0])
    kw = _kw(xp, tl, s_len, blank, zero_infinity=zero_infinity, sample_weight=xp.asarray(w))
    yb = xp.asarray(labels)
    value, g = xp.autograd(lambda z: lk.ctc(z, yb, reduction="sum", **kw), xp.asarray(x))
    g = xp.to_numpy(g)
    if zero_infinity:
        nll[0], grad[0] = 0.0, 0.0
        assert_close(xp.to_numpy(value), (w * nll).sum())
        assert_close(g, grad * w[:, None, None], kind="grad")
    else:
        assert float(xp.to_numpy(value)) == math.inf
        # NaN on the infeasible example's 2 frames, 0 after them (as PyTorch)
        assert np.isnan(g[0, :2]).all() and (g[0, 2:] == 0).all()
        assert_close(g[1:], (grad * w[:, None, None])[1:], kind="grad")


def test_torch_gradcheck():
    torch = pytest.importorskip("torch")
    x, labels, _, _, tl, sl, blank = _case("blank_last", seed=2)
    xt = torch.tensor(x, requires_grad=True)
    kw = dict(
        logit_lengths=torch.tensor(tl),
        label_lengths=torch.tensor(sl),
        blank=blank,
        reduction="none",
    )
    assert torch.autograd.gradcheck(lambda z: lk.ctc(z, torch.tensor(labels), **kw), (xt,))


def test_sample_weight_gradient_under_autograd(autograd_xp):
    xp = autograd_xp
    x, labels, t_len, s_len, tl, sl, blank = _case("repeats_and_lengths", seed=6)
    nll, _ = brute_force_batch(x, labels, tl, sl, blank)
    w = np.array([1.0, 2.0, 0.5, 1.0, 1.0])
    xb, yb = xp.asarray(x), xp.asarray(labels)
    kw = _kw(xp, t_len, s_len, blank, reduction="mean")
    _, g = xp.autograd(lambda s: lk.ctc(xb, yb, sample_weight=s, **kw), xp.asarray(w))
    # d/dw_n of sum(w l) / sum(w) = (l_n - mean) / sum(w)
    assert_close(xp.to_numpy(g), (nll - (w * nll).sum() / w.sum()) / w.sum(), kind="grad")


# --------------------------------------------------------------------------- PyTorch


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_medium_shape_against_torch(dtype):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(7)
    n, t, c, s = 4, 60, 12, 15
    x = rng.normal(size=(n, t, c)) * 3
    labels = rng.integers(1, c, size=(n, s))
    labels[0, 3] = labels[0, 2]  # a repeat
    tl, sl = np.array([60, 41, 55, 30]), np.array([15, 9, 0, 12])
    xt = torch.tensor(x, requires_grad=True)
    ref = F.ctc_loss(
        torch.log_softmax(xt, -1).transpose(0, 1),
        torch.tensor(labels),
        torch.tensor(tl),
        torch.tensor(sl),
        reduction="sum",
    )
    (ref_g,) = torch.autograd.grad(ref, xt)
    xb = x.astype(dtype)
    v, g = lk.value_and_grad(lk.ctc)(
        xb, labels, logit_lengths=tl, label_lengths=sl, reduction="sum"
    )
    assert_close(v, float(ref.detach()), dtype)
    assert_close(g, ref_g.numpy(), dtype, kind="grad")
    xt2 = torch.tensor(xb, requires_grad=True)
    v2 = lk.ctc(
        xt2,
        torch.tensor(labels),
        logit_lengths=torch.tensor(tl),
        label_lengths=torch.tensor(sl),
        reduction="sum",
    )
    v2.backward()
    assert_close(float(v2.detach()), float(ref.detach()), dtype)
    assert_close(xt2.grad.numpy(), ref_g.numpy(), dtype, kind="grad")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_backward_scales_by_the_incoming_gradient(dtype):
    """The saved gradient times each example's incoming gradient (the kernels' threads
    scale it on CPU; every incoming 1 skips the pass), as PyTorch's own."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(8)
    n, t, c, s = 4, 60, 12, 15
    x = (rng.normal(size=(n, t, c)) * 2).astype(dtype)
    labels = torch.tensor(rng.integers(1, c, size=(n, s)))
    tl, sl = torch.tensor([60, 50, 41, 60]), torch.tensor([15, 12, 9, 4])
    coef = torch.tensor([2.0, -0.5, 0.0, 1.0], dtype=getattr(torch, dtype))
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)  # the reference: float64
    ref = F.ctc_loss(torch.log_softmax(xt, -1).transpose(0, 1), labels, tl, sl, reduction="none")
    (ref_g,) = torch.autograd.grad((ref * coef.double()).sum(), xt, retain_graph=True)
    ours = torch.tensor(x, requires_grad=True)
    per = lk.ctc(ours, labels, logit_lengths=tl, label_lengths=sl, reduction="none")
    (per * coef).sum().backward()
    assert_close(ours.grad.numpy(), ref_g.numpy(), dtype, kind="grad")
    assert not ours.grad[2].any()  # an incoming 0
    w = torch.tensor([1.0, 2.0, 0.5, 0.0], dtype=getattr(torch, dtype))
    (ref_g,) = torch.autograd.grad((ref * w.double()).sum() / w.sum(), xt)
    ours.grad = None
    lk.ctc(
        ours, labels, logit_lengths=tl, label_lengths=sl, reduction="mean", sample_weight=w
    ).backward()
    assert_close(ours.grad.numpy(), ref_g.numpy(), dtype, kind="grad")


# --------------------------------------------------------------------------- extremes


def test_extreme_logits_stay_finite(xp):
    """Logits of +-1e4: a path through the -1e4 classes has log-probability ~ -2e4 per
    frame, still finite in log space; the loss is exact, the gradient finite."""
    x = np.array([[[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, -1e4, 1e4]]])
    labels = np.array([[1, 2]])
    value, g = lk.value_and_grad(lk.ctc)(xp.asarray(x), xp.asarray(labels))
    # best alignment: 0 1 2 (log-prob 0); the others cost at least 1e4 each
    assert_close(xp.to_numpy(value), 0.0)
    g = xp.to_numpy(g)
    assert np.isfinite(g).all()
    assert_close(g, np.zeros_like(g), kind="grad")


def test_empty_batch(xp):
    x = xp.asarray(np.zeros((0, 3, 4)))
    labels = xp.asarray(np.zeros((0, 2), dtype=np.int64))
    for reduction, expected in (("mean", 0.0), ("sum", 0.0)):
        v, g = lk.value_and_grad(lk.ctc)(x, labels, reduction=reduction)
        assert float(xp.to_numpy(v)) == expected
        assert xp.to_numpy(g).shape == (0, 3, 4)
    assert xp.to_numpy(lk.ctc(x, labels, reduction="none")).shape == (0,)


# --------------------------------------------------------------------------- traced


def _traced_case():
    x = np.random.default_rng(4).normal(size=(4, 4, 3))
    labels = np.array([[1, 2], [0, 1], [1, 5], [2, 1]])  # row 1 holds the blank, row 2 a 5
    t_len = np.array([4, 4, 4, 9])  # row 3: more frames than T
    return x, labels, t_len


def test_nan_rule_under_jax_jit():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x, labels, t_len = _traced_case()
    ok, _ = brute_force_batch(x, labels, t_len, [2, 2, 2, 2])

    def f(z, y, tl):
        return lk.ctc(z, y, logit_lengths=tl, reduction="none")

    value = np.asarray(jax.jit(f)(jnp.asarray(x), jnp.asarray(labels), jnp.asarray(t_len)))
    assert_close(value[0], ok[0])
    assert np.isnan(value[1:]).all()
    g = jax.jit(jax.grad(lambda z, y, tl: f(z, y, tl).sum()))(
        jnp.asarray(x), jnp.asarray(labels), jnp.asarray(t_len)
    )
    g = np.asarray(g)
    assert np.isnan(g[1:]).all(axis=(1, 2)).all() and np.isfinite(g[0]).all()
    s = jax.jit(
        lambda z, y, tl: lk.ctc(z, y, logit_lengths=tl, label_lengths=jnp.array([2, 2, 3, 2]))
    )
    assert np.isnan(
        float(s(jnp.asarray(x), jnp.asarray(labels[[0, 0, 0, 0]]), jnp.asarray([4] * 4)))
    )


def test_jit_equals_eager_brute_force():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x, labels, _, _, tl, sl, blank = _case("repeats_and_lengths", seed=8)
    nll, grad = brute_force_batch(x, labels, tl, sl, blank)

    @jax.jit
    def f(z, y, a, b):
        return lk.ctc(z, y, logit_lengths=a, label_lengths=b, reduction="sum")

    args = (jnp.asarray(labels), jnp.asarray(tl), jnp.asarray(sl))
    v, g = jax.value_and_grad(f)(jnp.asarray(x), *args)
    assert_close(float(v), nll.sum())
    assert_close(np.asarray(g), grad, kind="grad")


def test_torch_compile_values_gradients_and_nan_rule():
    """torch.compile: compiled equals eager (the brute force) and bad values are NaN rows.

    Inside the compiled graph the recursion runs as torch operations (the
    autograd.Function's forward is traced; no graph break is needed).
    """
    torch = pytest.importorskip("torch")
    x, labels, t_len = _traced_case()
    ok, ok_g = brute_force_batch(x, labels, [4, 4, 4, 4], [2, 2, 2, 2])

    def f(z, y, tl):
        return lk.ctc(z, y, logit_lengths=tl, reduction="none")

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    xt = torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = compiled(xt, torch.tensor(labels), torch.tensor(t_len))
    value.sum().backward()
    v, g = value.detach().numpy(), xt.grad.numpy()
    assert_close(v[0], ok[0])
    assert_close(g[0], ok_g[0], kind="grad")
    assert np.isnan(v[1:]).all() and np.isnan(g[1:]).all()


# --------------------------------------------------------------------------- errors


_X = np.zeros((2, 3, 4))
_Y = np.array([[1, 2], [3, 3]])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            dict(labels=np.array([[1, 0], [3, 3]])),
            ValueError,
            "`labels` must be class ids in [0, 4) other than blank=0 within `label_lengths`; "
            "got 0 at position (0, 1)",
        ),
        (
            dict(labels=np.array([[1, 2], [3, 4]])),
            ValueError,
            "`labels` must be class ids in [0, 4) other than blank=0 within `label_lengths`; "
            "got 4 at position (1, 1)",
        ),
        (
            dict(labels=np.array([[1, 2], [-1, 3]]), blank=3),
            ValueError,
            "`labels` must be class ids in [0, 4) other than blank=3 within `label_lengths`; "
            "got -1 at position (1, 0)",
        ),
        (
            dict(label_lengths=np.array([1, 3])),
            ValueError,
            "`label_lengths` must be in [0, 2] (the padded labels); got 3 at position (1,)",
        ),
        (
            dict(logit_lengths=np.array([-1, 3])),
            ValueError,
            "`logit_lengths` must be in [0, 3] (the frames); got -1 at position (0,)",
        ),
        (
            dict(logit_lengths=np.array([3.0, 3.0])),
            TypeError,
            "`logit_lengths` must be an integer array; got dtype float64",
        ),
        (
            dict(label_lengths=np.array([1, 1, 1])),
            ValueError,
            "`label_lengths` must have one length per example, shape (2,); got (3,)",
        ),
        (dict(blank=4), ValueError, "`blank` must be an int in [0, 4); got 4"),
        (dict(blank=1.0), TypeError, "`blank` must be an int in [0, 4); got 1.0"),
        (
            dict(zero_infinity=1),
            TypeError,
            "`zero_infinity` must be True or False; got 1",
        ),
        (
            dict(labels=np.array([1, 2])),
            ValueError,
            "`labels` must have shape (batch, max label length) with batch 2 as `logits` "
            "(2, 3, 4); got (2,)",
        ),
        (
            dict(logits=np.zeros((3, 4))),
            ValueError,
            "`logits` must have shape (batch, frames, classes), batch first; got (3, 4)",
        ),
        (
            dict(labels=_Y.astype(float)),
            TypeError,
            "`labels` must be an integer array of class ids; got dtype float64",
        ),
        (
            dict(reduction="avg"),
            ValueError,
            "`reduction` must be one of 'mean', 'sum', 'none'; got 'avg'",
        ),
    ],
)
def test_errors(kwargs, error, message):
    kwargs = dict(kwargs)
    x = kwargs.pop("logits", _X)
    y = kwargs.pop("labels", _Y)
    with pytest.raises(error, match=re.escape(message)):
        lk.ctc(x, y, **kwargs)


def test_padding_past_label_length_is_ignored():
    """Entries past label_lengths may be anything (padding -1, the blank, large ids)."""
    x = np.random.default_rng(9).normal(size=(2, 4, 3))
    a = lk.ctc(x, np.array([[1, -1, 99], [2, 0, 0]]), label_lengths=np.array([1, 1]))
    b = lk.ctc(x, np.array([[1, 1], [2, 2]]), label_lengths=np.array([1, 1]))
    nll, _ = brute_force_batch(x, [[1], [2]], [4, 4], [1, 1])
    assert_close(a, nll.mean())
    assert_close(b, nll.mean())


def test_jax_without_x64():
    """JAX's default configuration (no int64): int32 indices, no warning, same numbers."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x, labels, _, _, tl, sl, blank = _case("repeats_and_lengths", seed=10)
    nll, grad = brute_force_batch(x, labels, tl, sl, blank)
    with jax.enable_x64(False):
        args = (jnp.asarray(labels), jnp.asarray(tl), jnp.asarray(sl))

        def f(z, y, a, b):
            return lk.ctc(z, y, logit_lengths=a, label_lengths=b, reduction="sum")

        v, g = jax.value_and_grad(f)(jnp.asarray(x, dtype=jnp.float32), *args)
        assert v.dtype == jnp.float32 and args[0].dtype == jnp.int32
        assert_close(float(v), nll.sum(), "float32")
        assert_close(np.asarray(g), grad, "float32", kind="grad")


def test_meta_device():
    """On torch's meta device: a meta result of the right shape, and a backward."""
    torch = pytest.importorskip("torch")
    x = torch.zeros(2, 4, 3, device="meta", requires_grad=True)
    y = torch.ones(2, 2, dtype=torch.int64, device="meta")
    v = lk.ctc(x, y, reduction="none")
    assert v.device.type == "meta" and tuple(v.shape) == (2,)
    v.sum().backward()
    assert x.grad.device.type == "meta" and tuple(x.grad.shape) == (2, 4, 3)
    _, g = lk.value_and_grad(lk.ctc)(x.detach(), y)
    assert g.device.type == "meta" and tuple(g.shape) == (2, 4, 3)


@pytest.mark.parametrize("kernel", [False, True])
@pytest.mark.parametrize("feasible", [True, False])
def test_grad_out_numpy(monkeypatch, feasible, kernel):
    """value_and_grad(grad_out=...) on NumPy: the gradient lands in grad_out (the kernel
    writes it there directly), NaN on an infeasible example's frames too."""
    if kernel:
        from losskit.kernels import dispatch

        monkeypatch.setattr(dispatch, "MIN_KERNEL_SIZE", 0)
    x, labels, _, _, tl, sl, blank = _case("repeats_and_lengths", seed=11)
    if not feasible:
        tl = np.array([1, 3, 4, 2, 3])  # (1, 1) in one frame
    nll, grad = brute_force_batch(x, labels, tl, sl, blank)
    out = np.full_like(x, 7.0)
    v, g = lk.value_and_grad(lk.ctc)(
        x, labels, logit_lengths=tl, label_lengths=sl, reduction="sum", grad_out=out
    )
    assert g is out
    assert np.array_equal(np.isnan(out), np.isnan(grad))
    assert_close(np.nan_to_num(out), np.nan_to_num(grad), kind="grad")
    if feasible:
        assert_close(v, nll.sum())
    else:
        assert float(v) == math.inf


def test_torch_backward_twice_and_no_second_derivative():
    """The first backward scales the saved gradient in place; a second one (retain_graph)
    recomputes it, so both are right.  There is no second derivative (as PyTorch's
    ctc_loss): asking for one raises rather than giving 0."""
    torch = pytest.importorskip("torch")
    x, labels, _, _, tl, sl, blank = _case("repeats_and_lengths", seed=13)
    _, grad = brute_force_batch(x, labels, tl, sl, blank)
    xt = torch.tensor(x, requires_grad=True)
    kw = dict(logit_lengths=torch.tensor(tl), label_lengths=torch.tensor(sl), reduction="sum")
    loss = lk.ctc(xt, torch.tensor(labels), **kw)
    (g1,) = torch.autograd.grad(loss, xt, retain_graph=True)
    (g2,) = torch.autograd.grad(3 * loss, xt)
    assert_close(g1.numpy(), grad, kind="grad")
    assert_close(g2.numpy(), 3 * grad, kind="grad")
    (g,) = torch.autograd.grad(lk.ctc(xt, torch.tensor(labels), **kw), xt, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g.sum(), xt)


def test_no_frames_at_all(xp):
    """T = 0: an empty label has probability 1 (loss 0), any other is infeasible."""
    x = xp.asarray(np.zeros((2, 0, 3)))
    kw = dict(label_lengths=xp.asarray(np.array([1, 0])), reduction="none")
    v, g = lk.value_and_grad(lk.ctc)(x, xp.asarray(np.array([[1], [0]])), **kw)
    assert np.array_equal(xp.to_numpy(v), [math.inf, 0.0])
    assert xp.to_numpy(g).shape == (2, 0, 3)


@pytest.mark.parametrize("backend", ["numpy_portable", "jax"])
def test_float32_long_sequence_against_torch(backend):
    """The portable recursion keeps alpha and beta relative to each frame's maximum, so
    float32 holds on long sequences (without it the gradient was off by ~6e-4 at T=200)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(14)
    n, t, c, s = 4, 200, 8, 40
    x = rng.normal(size=(n, t, c)) * 2
    labels = rng.integers(1, c, size=(n, s))
    tl, sl = np.array([200, 150, 180, 120]), np.array([40, 25, 0, 30])
    xt = torch.tensor(x, requires_grad=True)
    ref = F.ctc_loss(
        torch.log_softmax(xt, -1).transpose(0, 1),
        torch.tensor(labels),
        torch.tensor(tl),
        torch.tensor(sl),
        reduction="sum",
    )
    (ref_g,) = torch.autograd.grad(ref, xt)
    kw = dict(logit_lengths=tl, label_lengths=sl, reduction="sum")
    if backend == "jax":
        import jax.numpy as jnp

        x32 = jnp.asarray(x, dtype=jnp.float32)
        kw = {k: jnp.asarray(v) if k != "reduction" else v for k, v in kw.items()}
        v, g = lk.value_and_grad(lk.ctc)(x32, jnp.asarray(labels), **kw)
    else:
        with lk.portable():
            v, g = lk.value_and_grad(lk.ctc)(x.astype(np.float32), labels, **kw)
    np.testing.assert_allclose(float(v), float(ref.detach()), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g), ref_g.numpy(), atol=5e-5)


# --------------------------------------------------------------------------- host fast path


def _force_kernel(monkeypatch, fast_only=True):
    """The kernel at any size; with ``fast_only`` the general path raises if it is taken
    (the fast path for NumPy arrays and CPU tensors never builds an array namespace)."""
    from losskit.kernels import dispatch
    from losskit.losses import sequence

    monkeypatch.setattr(dispatch, "MIN_KERNEL_SIZE", 0)
    if fast_only:

        def general(*args, **kwargs):
            raise AssertionError("the general path was taken")

        monkeypatch.setattr(sequence, "namespace", general)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_fast_path_values_and_gradients(monkeypatch, backend, reduction, zero_infinity):
    """NumPy arrays and CPU tensors the kernel takes skip the general path: the same numbers
    (brute force) for value_and_grad, autograd with an incoming gradient other than 1 and
    the forward alone; int32 labels, lengths given or not, an infeasible example."""
    mod = pytest.importorskip(backend)
    _force_kernel(monkeypatch)
    x, labels, _, _, tl, sl, blank = _case("repeats_and_lengths", seed=15)
    tl = np.array([2, 3, 4, 2, 3])  # (1, 1) cannot fit in 2 frames: infeasible
    nll, grad = brute_force_batch(x, labels, tl, sl, blank)
    if zero_infinity:
        nll[0], grad[0] = 0.0, 0.0
    coef = {"none": 1.0, "sum": 1.0, "mean": 1 / 5}[reduction]
    expected = {"none": nll, "sum": nll.sum(), "mean": nll.mean()}[reduction]
    to = (lambda a: a) if backend == "numpy" else mod.from_numpy
    for dtype, y, lengths in [
        ("float64", labels.astype(np.int32), dict(logit_lengths=tl, label_lengths=sl)),
        ("float32", labels, dict(logit_lengths=tl.astype(np.int32), label_lengths=sl)),
    ]:
        kw = {k: to(v) for k, v in lengths.items()}
        kw.update(reduction=reduction, zero_infinity=zero_infinity, blank=blank)
        xb, yb = to(x.astype(dtype)), to(y)
        value, g = lk.value_and_grad(lk.ctc)(xb, yb, **kw)
        assert value.dtype == xb.dtype and g.dtype == xb.dtype
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf in the comparison
            assert_close(np.asarray(value), expected, dtype)
        assert np.array_equal(np.isnan(np.asarray(g)), np.isnan(grad * coef))
        assert_close(np.nan_to_num(np.asarray(g)), np.nan_to_num(grad * coef), dtype, kind="grad")
        assert np.array_equal(np.asarray(lk.ctc(xb, yb, **kw)), np.asarray(value))
        if backend == "torch":
            xt = xb.clone().requires_grad_(True)
            out = lk.ctc(xt, yb, **kw)
            weight = mod.linspace(-1.0, 2.0, 5, dtype=xt.dtype) if reduction == "none" else 2.5
            (out * weight).sum().backward()
            assert np.array_equal(out.detach().numpy(), np.asarray(value))
            w = np.linspace(-1.0, 2.0, 5)[:, None, None] if reduction == "none" else 2.5
            want = grad * coef * w
            assert np.array_equal(np.isnan(xt.grad.numpy()), np.isnan(want))
            got = np.nan_to_num(xt.grad.numpy())
            assert_close(got, np.nan_to_num(want), dtype, kind="grad")


def test_fast_path_labels_past_their_length_and_uint8():
    """Padding past label_lengths is never read (a -1, the blank, a large id), uint8 labels
    are taken; the fast path gives the numbers of the general one."""
    rng = np.random.default_rng(16)
    x = rng.normal(size=(3, 40, 10))  # 1200 elements: the kernel's size
    labels = np.array([[1, 2, -1, 99], [3, 0, 0, 0], [4, 4, 5, 9]])
    sl = np.array([2, 1, 4])
    with lk.portable():
        ref = lk.value_and_grad(lk.ctc)(x, labels, label_lengths=sl, reduction="none")
    from losskit.losses import sequence

    assert sequence._numpy_fast(x, labels, None, sl, 0, False, "none", True, None) is not None
    got = lk.value_and_grad(lk.ctc)(x, labels, label_lengths=sl, reduction="none")
    assert_close(got[0], ref[0])
    assert_close(got[1], ref[1], kind="grad")
    y8 = np.where(labels < 0, 0, labels % 10).astype(np.uint8)
    got8 = lk.value_and_grad(lk.ctc)(x, y8, label_lengths=sl.astype(np.uint8), reduction="none")
    assert_close(got8[0], ref[0])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(labels=np.array([[1, 0], [3, 3]])), "got 0 at position (0, 1)"),
        (dict(labels=np.array([[1, 2], [3, 4]])), "got 4 at position (1, 1)"),
        (dict(labels=np.array([[1, 2], [-1, 3]]), blank=3), "got -1 at position (1, 0)"),
        (dict(labels=np.array([[1, 2], [3, 0]]), label_lengths=np.array([2, 2])), "got 0 at"),
        (dict(label_lengths=np.array([1, 3])), "got 3 at position (1,)"),
        (dict(label_lengths=np.array([1, -3], np.int8)), "got -3 at position (1,)"),
        (dict(logit_lengths=np.array([-1, 3])), "got -1 at position (0,)"),
        (dict(logit_lengths=np.array([3, 4], np.int32)), "got 4 at position (1,)"),
        (dict(blank=4), "`blank` must be an int in [0, 4); got 4"),
        (dict(blank=-1), "`blank` must be an int in [0, 4); got -1"),
    ],
)
def test_fast_path_bad_values_raise_as_the_general_path(monkeypatch, backend, kwargs, message):
    """With the kernel taking every size, a bad value still raises the general path's
    error (the fast path only decides; the general one phrases), on NumPy and torch."""
    mod = pytest.importorskip(backend)
    _force_kernel(monkeypatch, fast_only=False)
    to = (lambda a: a) if backend == "numpy" else mod.from_numpy
    kwargs = {k: to(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    x = kwargs.pop("logits", to(_X))
    y = kwargs.pop("labels", to(_Y))
    with pytest.raises(ValueError, match=re.escape(message)):
        lk.ctc(x, y, **kwargs)
    if backend == "torch":
        with pytest.raises(ValueError, match=re.escape(message)):
            lk.ctc(x.clone().requires_grad_(True), y, **kwargs)


def test_fast_path_torch_backward_twice_and_in_place_change(monkeypatch):
    """A second backward (retain_graph) recomputes the gradient; logits changed in place
    after the forward make that backward an error, as for any saved tensor."""
    torch = pytest.importorskip("torch")
    _force_kernel(monkeypatch)
    x, labels, _, _, tl, sl, blank = _case("repeats_and_lengths", seed=17)
    _, grad = brute_force_batch(x, labels, tl, sl, blank)
    xt = torch.tensor(x, requires_grad=True)
    kw = dict(logit_lengths=torch.tensor(tl), label_lengths=torch.tensor(sl), reduction="mean")
    loss = lk.ctc(xt, torch.tensor(labels), **kw)
    (g1,) = torch.autograd.grad(loss, xt, retain_graph=True)
    (g2,) = torch.autograd.grad(3 * loss, xt, retain_graph=True)
    assert_close(g1.numpy(), grad / 5, kind="grad")
    assert_close(g2.numpy(), 3 * grad / 5, kind="grad")
    (g,) = torch.autograd.grad(lk.ctc(xt, torch.tensor(labels), **kw), xt, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g.sum(), xt)
    with torch.no_grad():
        xt.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(loss, xt)
    assert torch.autograd.gradcheck(
        lambda z: lk.ctc(z, torch.tensor(labels), **{**kw, "reduction": "none"}), (xt,)
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("normalised", [True, False])
def test_compat_ctc_loss_fast_path_matches_torch(monkeypatch, reduction, zero_infinity, normalised):
    """losskit.compat.torch.ctc_loss on CPU tensors the kernel takes (no torch operation on
    the (T, N, C) arrays): PyTorch's value and its own gradient exp(lp) - gamma, for
    log-probabilities normalised or not, padded and concatenated targets, tuple lengths,
    an infeasible example, an incoming gradient other than 1 and a second backward."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from losskit.compat.torch import _ctc as compat_ctc
    from losskit.compat.torch import ctc_loss

    _force_kernel(monkeypatch, fast_only=False)
    taken = []
    real = compat_ctc._host_fast
    monkeypatch.setattr(compat_ctc, "_host_fast", lambda *a: taken.append(real(*a)) or taken[-1])
    rng = np.random.default_rng(18)
    t, n, c = 7, 4, 5
    x = rng.normal(size=(t, n, c)) * 2
    lp = torch.log_softmax(torch.tensor(x), -1) if normalised else torch.tensor(x) - 1.5
    targets = np.array([[1, 1, 2], [3, 1, 3], [2, 4, 0], [1, 2, 3]])
    il, tl = (7, 5, 6, 1), (3, 2, 2, 2)  # the last: 2 labels in 1 frame, infeasible
    flat = torch.tensor(np.concatenate([r[:k] for r, k in zip(targets, tl, strict=True)]))
    kw = dict(reduction=reduction, zero_infinity=zero_infinity)
    for dtype in (torch.float64, torch.float32):
        for tg in (torch.tensor(targets), flat):
            ref_x = lp.clone().to(dtype).requires_grad_(True)
            ref = F.ctc_loss(ref_x, tg, torch.tensor(il), torch.tensor(tl), **kw)
            ours_x = lp.clone().to(dtype).requires_grad_(True)
            ours = ctc_loss(ours_x, tg, il, tl, **kw)
            assert taken[-1] is not None and ours.dtype == dtype and ours.shape == ref.shape
            w = torch.linspace(-1.0, 2.0, n, dtype=dtype) if reduction == "none" else 2.5
            (g_ref,) = torch.autograd.grad((ref * w).sum(), ref_x, retain_graph=True)
            (g_ref2,) = torch.autograd.grad(ref.sum(), ref_x)
            (g1,) = torch.autograd.grad((ours * w).sum(), ours_x, retain_graph=True)
            (g2,) = torch.autograd.grad(ours.sum(), ours_x)  # recomputed
            name = "float64" if dtype == torch.float64 else "float32"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf
                assert_close(ours.detach().numpy(), ref.detach().numpy(), name)
            for got, want in ((g1, g_ref), (g2, g_ref2)):
                got, want = got.numpy(), want.numpy()
                assert np.array_equal(np.isnan(got), np.isnan(want))
                assert_close(np.nan_to_num(got), np.nan_to_num(want), name, kind="grad")
            with torch.no_grad():
                same = ctc_loss(ours_x, tg, il, tl, **kw)
            assert np.array_equal(same.numpy(), ours.detach().numpy())


def test_compat_ctc_loss_fast_path_huge_log_probs(monkeypatch):
    """Log-probabilities far from normalised (exp overflows or underflows in a frame):
    the stable log-sum-exp there, PyTorch's numbers."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from losskit.compat.torch import ctc_loss

    _force_kernel(monkeypatch, fast_only=False)
    rng = np.random.default_rng(19)
    x = torch.tensor(rng.normal(size=(6, 2, 4)))
    x[1] += 200.0  # exp overflows float32's range, not float64's
    x[2] -= 200.0
    tg, il, tl = torch.tensor([[1, 2], [3, 3]]), torch.tensor([6, 6]), torch.tensor([2, 2])
    for dtype in (torch.float64, torch.float32):
        ref_x = x.clone().to(dtype).requires_grad_(True)
        ours_x = x.clone().to(dtype).requires_grad_(True)
        ref = F.ctc_loss(ref_x, tg, il, tl, reduction="sum")
        ours = ctc_loss(ours_x, tg, il, tl, reduction="sum")
        (g_ref,) = torch.autograd.grad(ref, ref_x)
        (g,) = torch.autograd.grad(ours, ours_x)
        name = "float64" if dtype == torch.float64 else "float32"
        assert_close(ours.detach().numpy(), ref.detach().numpy(), name)
        finite = np.isfinite(g_ref.numpy())
        assert np.array_equal(np.isfinite(g.numpy()), finite)
        assert_close(g.numpy()[finite], g_ref.numpy()[finite], name, kind="grad")
