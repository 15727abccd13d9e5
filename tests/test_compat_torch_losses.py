"""The catalogue's losses in losskit.compat.torch (functional and nn) against PyTorch itself.

Each case is one call written for both modules (``m.F`` is
``torch.nn.functional`` or ``losskit.compat.torch``, ``m.nn`` is ``torch.nn``
or ``losskit.compat.torch.nn``) and run on the same float64 arrays: the value
and its derivative with respect to every floating argument PyTorch
differentiates, by torch autograd on torch tensors, by ``jax.grad`` on JAX
arrays; NumPy arrays give the value in NumPy.  Edge cases (kinks, empty
batches, PyTorch's own rules) are cases too; what the adapter does on purpose
otherwise (errors where PyTorch computes a meaningless number) is tested
after the table.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from losskit.compat import torch as lkF
from losskit.compat.torch import nn as lknn

torch = pytest.importorskip("torch")

REF = SimpleNamespace(F=torch.nn.functional, nn=torch.nn)
OURS = SimpleNamespace(F=lkF, nn=lknn)
TOL = {"rtol": 1e-10, "atol": 1e-13}
RNG = np.random.default_rng(20270302)

X = RNG.normal(size=(4, 3)) * 2
T = RNG.normal(size=(4, 3)) * 2
W = RNG.random((4, 3)) + 0.1
# Errors exactly at Huber's kinks (0 and +-delta for delta 1 and 0.5), both sides of them.
KINK_X = np.array([0.25, 1.25, -0.75, 0.5, 0.75, 1.0, 3.0, -2.0])
KINK_T = np.array([0.25, 0.25, 0.25, 0.0, 0.25, 0.0, 0.0, 0.0])
BIG = np.array([1e4, -1e4, 3e38, -3e38, 1e-300, 0.0])
SIGNS = np.where(RNG.random((4, 3)) < 0.5, -1.0, 1.0)
MULTI_HOT = (RNG.random((4, 3)) < 0.5).astype(np.float64)
LABELS = np.array([0, 2, 1, 2])
# Rows of class ids, ended by -1 (what follows is padding), as multilabel_margin_loss takes them.
LABEL_ROWS = np.array([[2, -1, 0], [0, 1, -1], [1, 1, 2], [-1, 0, 1]])
# Scores with a margin of exactly 0 (margin 1): s_y - s_c = 1 for some wrong c.
MARGIN_TIES = np.array([[2.0, 1.0, 0.5], [0.0, 1.5, 0.5], [3.0, 3.0, 2.0]])
COUNTS = np.array([[0.0, 1.0, 3.0], [2.0, 0.0, 7.0], [1.0, 1.0, 0.0], [4.0, 0.5, 1.5]])
RATES = RNG.uniform(0.1, 4.0, size=(4, 3))
VAR = RNG.uniform(0.2, 2.0, size=(4, 3))
PROBS = np.exp(X) / np.exp(X).sum(axis=1, keepdims=True)
TARGET_PROBS = np.exp(T) / np.exp(T).sum(axis=1, keepdims=True)


def case(call, wrt=("input", "target"), **arrays):
    return call, arrays, list(wrt)


CASES = {
    # ---------------------------------------------------------------- huber_loss, HuberLoss
    "huber_loss": case(lambda m, input, target: m.F.huber_loss(input, target), input=X, target=T),
    "huber_loss-none-delta": case(
        lambda m, input, target: m.F.huber_loss(input, target, reduction="none", delta=0.5),
        input=X,
        target=T,
    ),
    "huber_loss-kinks": case(
        lambda m, input, target: m.F.huber_loss(input, target, "none", 1.0),
        input=KINK_X,
        target=KINK_T,
    ),
    "huber_loss-kinks-half-delta": case(
        lambda m, input, target: m.F.huber_loss(input, target, "sum", 0.5),
        input=KINK_X,
        target=KINK_T,
    ),
    "huber_loss-big": case(
        lambda m, input, target: m.F.huber_loss(input, target, "none", 2.0),
        input=BIG,
        target=BIG[::-1].copy() / 4,
    ),
    "huber_loss-weight-mean-is-by-count": case(
        lambda m, input, target, weight: m.F.huber_loss(input, target, weight=weight),
        ("input", "target", "weight"),
        input=X,
        target=T,
        weight=W,
    ),
    "huber_loss-weight-sum": case(
        lambda m, input, target, weight: m.F.huber_loss(input, target, "sum", 0.7, weight),
        ("input", "target", "weight"),
        input=X,
        target=T,
        weight=W - 0.5,  # PyTorch takes negative weights
    ),
    "huber_loss-empty-mean-is-nan": case(
        lambda m, input, target: m.F.huber_loss(input, target),
        input=np.zeros((0, 3)),
        target=np.zeros((0, 3)),
    ),
    "HuberLoss": case(
        lambda m, input, target: m.nn.HuberLoss(delta=0.5)(input, target), input=X, target=T
    ),
    "HuberLoss-positional": case(
        lambda m, input, target: m.nn.HuberLoss("sum", 2)(input, target), input=X, target=T
    ),
    # ---------------------------------------------------------------- smooth_l1_loss, SmoothL1Loss
    "smooth_l1_loss": case(
        lambda m, input, target: m.F.smooth_l1_loss(input, target), input=X, target=T
    ),
    "smooth_l1_loss-beta": case(
        lambda m, input, target: m.F.smooth_l1_loss(input, target, None, None, "none", 0.5),
        input=KINK_X,
        target=KINK_T,
    ),
    "smooth_l1_loss-beta-0-is-l1": case(
        lambda m, input, target: m.F.smooth_l1_loss(input, target, beta=0.0, reduction="sum"),
        input=KINK_X,
        target=KINK_T,
    ),
    "smooth_l1_loss-big": case(
        lambda m, input, target: m.F.smooth_l1_loss(input, target, reduction="none", beta=3.0),
        input=BIG,
        target=BIG[::-1].copy() / 4,
    ),
    "smooth_l1_loss-empty-mean-is-nan": case(
        lambda m, input, target: m.F.smooth_l1_loss(input, target),
        input=np.zeros((2, 0)),
        target=np.zeros((2, 0)),
    ),
    "SmoothL1Loss": case(
        lambda m, input, target: m.nn.SmoothL1Loss(beta=0.5)(input, target), input=X, target=T
    ),
    "SmoothL1Loss-positional": case(
        lambda m, input, target: m.nn.SmoothL1Loss(None, None, "none", 2.0)(input, target),
        input=X,
        target=T,
    ),
    # ---------------------------------------------------------------- soft_margin_loss
    "soft_margin_loss": case(
        lambda m, input, target: m.F.soft_margin_loss(input, target),
        ["input"],  # PyTorch refuses d/d target
        input=X,
        target=SIGNS,
    ),
    "soft_margin_loss-none-other-targets": case(
        lambda m, input, target: m.F.soft_margin_loss(input, target, reduction="none"),
        ["input"],
        input=X,
        target=SIGNS * np.array([0.5, 1.0, 2.0]),
    ),
    "soft_margin_loss-empty-mean-is-nan": case(
        lambda m, input, target: m.F.soft_margin_loss(input, target),
        ["input"],
        input=np.zeros((0, 3)),
        target=np.zeros((0, 3)),
    ),
    "SoftMarginLoss-sum": case(
        lambda m, input, target: m.nn.SoftMarginLoss(reduction="sum")(input, target),
        ["input"],
        input=X,
        target=SIGNS,
    ),
    # ---------------------------------------------------------------- hinge_embedding_loss
    "hinge_embedding_loss": case(
        lambda m, input, target: m.F.hinge_embedding_loss(input, target),
        ["input"],
        input=np.abs(X),
        target=SIGNS,
    ),
    "hinge_embedding_loss-kink-and-other-targets": case(
        # x = margin under target -1 (PyTorch's slope -1), and targets 0 and 2,
        # which count both terms.
        lambda m, input, target: m.F.hinge_embedding_loss(input, target, 2.0, reduction="none"),
        ["input"],
        input=np.array([2.0, 2.0, 0.5, 3.0, 1.0, -1.0]),
        target=np.array([-1.0, 1.0, -1.0, -1.0, 0.0, 2.0]),
    ),
    "HingeEmbeddingLoss": case(
        lambda m, input, target: m.nn.HingeEmbeddingLoss(0.5, reduction="sum")(input, target),
        ["input"],
        input=X,
        target=SIGNS,
    ),
    # ---------------------------------------------------------------- multi_margin_loss
    "multi_margin_loss": case(
        lambda m, input, target: m.F.multi_margin_loss(input, target),
        ["input"],
        input=X,
        target=LABELS,
    ),
    "multi_margin_loss-p2-margin-weight": case(
        lambda m, input, target, weight: m.F.multi_margin_loss(
            input, target, 2, 0.5, weight, reduction="none"
        ),
        ["input"],  # PyTorch refuses d/d weight
        input=X,
        target=LABELS,
        weight=np.array([0.5, 2.0, -1.0]),
    ),
    "multi_margin_loss-ties-at-the-margin": case(
        # A margin of exactly 0: PyTorch's kernel gives the pair no slope.
        lambda m, input, target, weight: m.F.multi_margin_loss(
            input, target, weight=weight, reduction="sum"
        ),
        ["input"],
        input=MARGIN_TIES,
        target=np.array([0, 1, 1]),
        weight=np.array([1.0, 2.0, 3.0]),
    ),
    "multi_margin_loss-vector": case(
        lambda m, input, target: m.F.multi_margin_loss(input, target, p=2),
        ["input"],
        input=X[0],
        target=np.array(1),
    ),
    "MultiMarginLoss": case(
        lambda m, input, target, weight: m.nn.MultiMarginLoss(1, 0.7, weight)(input, target),
        ["input"],
        input=X,
        target=LABELS,
        weight=np.array([0.5, 2.0, 1.0]),
    ),
    # ---------------------------------------------------------------- multilabel_margin_loss
    "multilabel_margin_loss": case(
        lambda m, input, target: m.F.multilabel_margin_loss(input, target),
        ["input"],
        input=X,
        target=LABEL_ROWS,
    ),
    "multilabel_margin_loss-vector-none": case(
        lambda m, input, target: m.F.multilabel_margin_loss(input, target, reduction="none"),
        ["input"],
        input=X[1],
        target=LABEL_ROWS[2],
    ),
    "multilabel_margin_loss-empty-mean-is-0": case(
        lambda m, input, target: m.F.multilabel_margin_loss(input, target),
        ["input"],
        input=np.zeros((0, 3)),
        target=np.zeros((0, 3), dtype=np.int64),
    ),
    "MultiLabelMarginLoss": case(
        lambda m, input, target: m.nn.MultiLabelMarginLoss(reduction="sum")(input, target),
        ["input"],
        input=X,
        target=LABEL_ROWS,
    ),
    # ---------------------------------------------------------------- multilabel_soft_margin_loss
    "multilabel_soft_margin_loss": case(
        lambda m, input, target: m.F.multilabel_soft_margin_loss(input, target),
        input=X,
        target=MULTI_HOT,
    ),
    "multilabel_soft_margin_loss-class-weight": case(
        lambda m, input, target, weight: m.F.multilabel_soft_margin_loss(
            input, target, weight, reduction="none"
        ),
        ("input", "target", "weight"),
        input=X,
        target=RNG.random((4, 3)),
        weight=np.array([0.5, 2.0, -1.0]),
    ),
    "multilabel_soft_margin_loss-full-weight": case(
        # A weight of the input's shape multiplies each term.
        lambda m, input, target, weight: m.F.multilabel_soft_margin_loss(
            input, target, weight, reduction="sum"
        ),
        ("input", "target", "weight"),
        input=X,
        target=MULTI_HOT,
        weight=W,
    ),
    "multilabel_soft_margin_loss-vector": case(
        lambda m, input, target: m.F.multilabel_soft_margin_loss(input, target),
        input=X[0] * 1e3,
        target=MULTI_HOT[0],
    ),
    "MultiLabelSoftMarginLoss": case(
        lambda m, input, target, weight: m.nn.MultiLabelSoftMarginLoss(weight)(input, target),
        ("input", "target", "weight"),
        input=X,
        target=MULTI_HOT,
        weight=np.array([0.5, 2.0, 1.0]),
    ),
    # ---------------------------------------------------------------- poisson_nll_loss
    "poisson_nll_loss": case(
        lambda m, input, target: m.F.poisson_nll_loss(input, target), input=X, target=COUNTS
    ),
    "poisson_nll_loss-rates-full-none": case(
        # PyTorch's d/d target is NaN at a count of 0 with full=True: input only.
        lambda m, input, target: m.F.poisson_nll_loss(
            input, target, log_input=False, full=True, reduction="none"
        ),
        ["input"],
        input=RATES,
        target=COUNTS,
    ),
    "poisson_nll_loss-positional": case(
        # (input, target, log_input, full, size_average, eps, reduce, reduction)
        lambda m, input, target: m.F.poisson_nll_loss(
            input, target, False, False, None, 0.5, None, "sum"
        ),
        input=RATES,
        target=COUNTS,
    ),
    "poisson_nll_loss-empty-mean-is-nan": case(
        lambda m, input, target: m.F.poisson_nll_loss(input, target),
        input=np.zeros((0, 2)),
        target=np.zeros((0, 2)),
    ),
    "PoissonNLLLoss": case(
        lambda m, log_input, target: m.nn.PoissonNLLLoss(full=True)(log_input, target),
        ["log_input"],
        log_input=X,
        target=COUNTS,
    ),
    # ---------------------------------------------------------------- gaussian_nll_loss
    "gaussian_nll_loss": case(
        lambda m, input, target, var: m.F.gaussian_nll_loss(input, target, var),
        ("input", "target", "var"),
        input=X,
        target=T,
        var=VAR,
    ),
    "gaussian_nll_loss-var-below-eps": case(
        # PyTorch clamps var to eps outside autograd: d/d var is the formula's at eps.
        lambda m, input, target, var: m.F.gaussian_nll_loss(
            input, target, var, eps=1e-3, reduction="none"
        ),
        ("input", "target", "var"),
        input=X[0],
        target=T[0],
        var=np.array([0.0, 1e-5, 0.5]),
    ),
    "gaussian_nll_loss-var-one-axis-fewer": case(
        lambda m, input, target, var: m.F.gaussian_nll_loss(
            input, target, var, full=True, reduction="sum"
        ),
        ("input", "target", "var"),
        input=X,
        target=T,
        var=VAR[:, 0].copy(),
    ),
    "gaussian_nll_loss-var-size-1-axis": case(
        lambda m, input, target, var: m.F.gaussian_nll_loss(input, target, var),
        ("input", "target", "var"),
        input=X,
        target=T,
        var=VAR[:1].copy(),
    ),
    "gaussian_nll_loss-var-number": case(
        lambda m, input, target: m.F.gaussian_nll_loss(input, target, 0.7, reduction="none"),
        input=X,
        target=T,
    ),
    "GaussianNLLLoss": case(
        lambda m, input, target, var: m.nn.GaussianNLLLoss(full=True)(input, target, var),
        ("input", "target", "var"),
        input=X,
        target=T,
        var=VAR,
    ),
    # ---------------------------------------------------------------- kl_div, KLDivLoss
    "kl_div-batchmean": case(
        lambda m, input, target: m.F.kl_div(input, target, reduction="batchmean"),
        input=np.log(PROBS),
        target=TARGET_PROBS,
    ),
    "kl_div-none-zero-targets": case(
        # A target of 0 adds 0; PyTorch's d/d target there is NaN: input only.
        lambda m, input, target: m.F.kl_div(input, target, reduction="none"),
        ["input"],
        input=np.log(PROBS),
        target=np.eye(3)[LABELS],
    ),
    "kl_div-log-target-sum": case(
        lambda m, input, target: m.F.kl_div(input, target, reduction="sum", log_target=True),
        input=np.log(PROBS),
        target=np.log(TARGET_PROBS),
    ),
    "kl_div-0d-batchmean-is-the-sum": case(
        lambda m, input, target: m.F.kl_div(input, target, reduction="batchmean"),
        input=np.array(-0.5),
        target=np.array(0.3),
    ),
    "KLDivLoss": case(
        lambda m, input, target: m.nn.KLDivLoss(reduction="batchmean", log_target=True)(
            input, target
        ),
        input=np.log(PROBS),
        target=np.log(TARGET_PROBS),
    ),
}


def torch_value_and_grads(module, call, arrays, wrt):
    tensors = {
        k: torch.tensor(a, requires_grad=k in wrt) if a.dtype.kind == "f" else torch.tensor(a)
        for k, a in arrays.items()
    }
    value = call(module, **tensors)
    if value.numel() == 0 or not value.requires_grad:
        return value.detach(), {k: torch.zeros_like(tensors[k]) for k in wrt}
    found = torch.autograd.grad(value.sum(), [tensors[k] for k in wrt], allow_unused=True)
    grads = {
        k: torch.zeros_like(tensors[k]) if g is None else g for k, g in zip(wrt, found, strict=True)
    }
    return value.detach(), grads


def assert_same(value, grads, v_ref, g_ref, what):
    np.testing.assert_allclose(np.asarray(value), v_ref, err_msg=f"{what} value", **TOL)
    for k, g in g_ref.items():
        np.testing.assert_allclose(np.asarray(grads[k]), g, err_msg=f"{what} d/d{k}", **TOL)


@pytest.fixture(scope="module")
def references():
    """name -> (value, {arg: gradient}) from PyTorch, once per module."""
    found = {}
    for name, (call, arrays, wrt) in CASES.items():
        v, g = torch_value_and_grads(REF, call, arrays, wrt)
        found[name] = (v, {k: gi.numpy() for k, gi in g.items()})
    return found


@pytest.mark.parametrize("name", list(CASES))
def test_torch_tensors(references, name):
    call, arrays, wrt = CASES[name]
    v_ref, g_ref = references[name]
    v, g = torch_value_and_grads(OURS, call, arrays, wrt)
    assert v.dtype == v_ref.dtype and v.shape == v_ref.shape
    assert_same(v.numpy(), {k: gi.numpy() for k, gi in g.items()}, v_ref.numpy(), g_ref, name)


@pytest.mark.parametrize("name", list(CASES))
def test_numpy_arrays(references, name):
    call, arrays, _ = CASES[name]
    v = call(OURS, **arrays)
    assert isinstance(v, (np.ndarray, np.generic)) and v.dtype == np.float64
    np.testing.assert_allclose(v, references[name][0].numpy(), **TOL)


# jnp.abs's derivative at 0 is 1 (JAX's convention); PyTorch's and TensorFlow's
# is 0, and so is the core's analytic one, but under jax.grad the core's
# mean_absolute_error differentiates jnp.abs.  A core matter (losses/regression.py).


@pytest.mark.parametrize(
    "name",
    list(CASES),
)
def test_jax_arrays(references, name):
    jax = pytest.importorskip("jax")
    call, arrays, wrt = CASES[name]
    v_ref, g_ref = references[name]
    fixed = {k: jax.numpy.asarray(a) for k, a in arrays.items() if k not in wrt}

    def total(*inputs):
        return call(OURS, **fixed, **dict(zip(wrt, inputs, strict=True))).sum()

    inputs = [jax.numpy.asarray(arrays[k]) for k in wrt]
    grads = jax.grad(total, argnums=tuple(range(len(wrt))))(*inputs)
    v = call(OURS, **{k: jax.numpy.asarray(a) for k, a in arrays.items()})
    assert isinstance(v, jax.Array)
    assert_same(v, dict(zip(wrt, grads, strict=True)), v_ref.numpy(), g_ref, name)


# --------------------------------------------------------------------------- beyond the table


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("name", ["huber_loss", "smooth_l1_loss"])
def test_low_precision_keeps_torchs_dtype(name, dtype):
    x = torch.tensor(X).to(getattr(torch, dtype))
    t = torch.tensor(T).to(getattr(torch, dtype))
    for reduction in ("none", "mean"):
        ours = getattr(lkF, name)(x, t, reduction=reduction)
        theirs = getattr(torch.nn.functional, name)(x, t, reduction=reduction)
        assert ours.dtype == theirs.dtype
        # Accumulated in float32 and rounded once: within a rounding of PyTorch's.
        exact = getattr(torch.nn.functional, name)(x.double(), t.double(), reduction=reduction)
        np.testing.assert_allclose(
            ours.double().numpy(), exact.numpy(), rtol=1e-2 if dtype == "bfloat16" else 1e-3
        )


def test_huber_second_derivatives_are_torchs():
    def hvp(fn):
        x = torch.tensor(X, requires_grad=True)
        t = torch.tensor(T, requires_grad=True)
        (gx,) = torch.autograd.grad(fn(x, t, delta=1.5), x, create_graph=True)
        return [g.numpy() for g in torch.autograd.grad(gx.sum(), [x, t])]

    for ours, theirs in zip(hvp(lkF.huber_loss), hvp(torch.nn.functional.huber_loss), strict=True):
        np.testing.assert_allclose(ours, theirs, **TOL)


def test_target_of_another_size_broadcasts_with_torchs_warning():
    x, t = torch.tensor(X), torch.tensor(T[0])
    with pytest.warns(UserWarning, match="different to the input size") as record:
        ours = lkF.huber_loss(x, t)
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="different to the input size"):
        theirs = torch.nn.functional.huber_loss(x, t)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **TOL)


def test_legacy_flags_warn_as_torchs():
    x, t = torch.tensor(X), torch.tensor(T)
    with pytest.warns(UserWarning, match=r"please use reduction='sum' instead"):
        ours = lkF.smooth_l1_loss(x, t, size_average=False)
    with pytest.warns(UserWarning, match=r"please use reduction='sum' instead"):
        module = lknn.SmoothL1Loss(False, None)
    assert float(ours) == pytest.approx(float(module(x, t)))
    assert float(ours) == pytest.approx(
        float(torch.nn.functional.smooth_l1_loss(x, t, reduction="sum"))
    )


def test_bad_options():
    x = torch.tensor(X)
    # PyTorch raises RuntimeError ("huber_loss does not support non-positive values
    # for delta."); the adapter names the argument and what arrived.
    for delta in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match=r"^`delta` must be a positive finite number; got "):
            lkF.huber_loss(x, x, delta=delta)
    with pytest.raises(ValueError, match=r"^`beta` must be a non-negative finite number; got -1"):
        lkF.smooth_l1_loss(x, x, beta=-1)
    with pytest.raises(TypeError, match=r"^`beta` must be a real number; got '1'$"):
        lkF.smooth_l1_loss(x, x, beta="1")
    with pytest.raises(ValueError, match=r"^Weights and input must have the same size\.$"):
        lkF.huber_loss(x, x, weight=x[0])
    with pytest.raises(ValueError, match=r"^bogus is not a valid value for reduction$"):
        lkF.huber_loss(x, x, reduction="bogus")
    # nn.HuberLoss checks delta's type at construction, with PyTorch's words.
    for module in (lknn, torch.nn):
        with pytest.raises(TypeError, match=r"^delta must be a float or int, got: <class 'str'>$"):
            module.HuberLoss(delta="1")


def test_kl_div_mean_warns_as_torch():
    x, t = torch.tensor(np.log(PROBS)), torch.tensor(TARGET_PROBS)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size") as record:
        ours = lkF.kl_div(x, t)
    assert record[0].filename == __file__
    with pytest.warns(UserWarning) as record_ref:
        theirs = torch.nn.functional.kl_div(x, t)
    assert str(record[0].message) == str(record_ref[0].message)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **TOL)
    # The legacy flags warn instead of the mean (size_average=False is "sum").
    with pytest.warns(UserWarning, match="please use reduction='sum' instead"):
        ours = lkF.kl_div(x, t, False, None, "none")
    np.testing.assert_allclose(
        ours.numpy(), float(torch.nn.functional.kl_div(x, t, None, None, "sum")), **TOL
    )


def test_likelihoods_where_torchs_number_is_not_the_losss():
    F = torch.nn.functional
    # 0 log 0: a count of 0 under a rate of 0 (eps = 0) or a log-rate of -inf
    # costs 0; PyTorch forms 0 * -inf = NaN.
    zero = torch.zeros(1, dtype=torch.float64)
    assert torch.isnan(F.poisson_nll_loss(zero, zero, log_input=False, eps=0.0))
    assert float(lkF.poisson_nll_loss(zero, zero, log_input=False, eps=0.0)) == 0.0
    assert float(lkF.poisson_nll_loss(zero - math.inf, zero)) == 0.0
    # With full=True PyTorch's d/d target at a count of 0 is NaN (it masks the
    # Stirling term after forming 0 log 0); the adapter's is the exact -x there,
    # and -x + log t + 1 / (2t) for t > 1 (d/dt of -t x + t log t - t + log(2 pi t) / 2).
    x = torch.tensor([0.5, 0.5], dtype=torch.float64)
    t = torch.tensor([0.0, 3.0], dtype=torch.float64, requires_grad=True)
    F.poisson_nll_loss(x, t, full=True, reduction="sum").backward()
    assert math.isnan(t.grad[0])
    t.grad = None
    lkF.poisson_nll_loss(x, t, full=True, reduction="sum").backward()
    np.testing.assert_allclose(t.grad.numpy(), [-0.5, -0.5 + math.log(3.0) + 1 / 6], **TOL)
    # kl_div's d/d target at a target of 0: PyTorch's NaN, the core's -input.
    x = torch.tensor(np.log(PROBS[:1]))
    t = torch.tensor([[0.0, 0.4, 0.6]], dtype=torch.float64, requires_grad=True)
    lkF.kl_div(x, t, reduction="sum").backward()
    assert float(t.grad[0, 0]) == pytest.approx(-float(x[0, 0]))


def test_likelihood_bad_arguments():
    x = torch.tensor(X)
    with pytest.raises(ValueError, match=r"^bogus is not valid$"):  # torch's words here
        lkF.gaussian_nll_loss(x, x, x, reduction="bogus")
    with pytest.raises(ValueError, match=r"^`var` must be non-negative; got -1.0 at position"):
        lkF.gaussian_nll_loss(x, x, torch.tensor([-1.0, 1.0, 1.0]).expand(4, 3))
    with pytest.raises(ValueError, match=r"^`var` must have the shape of `pred` \(4, 3\)"):
        lkF.gaussian_nll_loss(x, x, torch.tensor(VAR[:2]))
    with pytest.raises(ValueError, match=r"^`target` must have the shape of `input`"):
        lkF.kl_div(x, x[0], reduction="sum")
    with pytest.raises(TypeError, match=r"^`log_input` must be a bool; got 1$"):
        lkF.poisson_nll_loss(x, x, log_input=1)


def test_margin_losses_where_torchs_number_is_not_the_losss():
    F = torch.nn.functional
    x = torch.tensor([[800.0, -800.0]], dtype=torch.float64)
    t = torch.tensor([[-1.0, 1.0]], dtype=torch.float64)
    # log(1 + e^800) overflows in PyTorch's kernel; it is 800 + log1p(e^-800).
    assert torch.isinf(F.soft_margin_loss(x, t, reduction="none")).all()
    np.testing.assert_allclose(lkF.soft_margin_loss(x, t, reduction="none"), [[800.0, 800.0]])
    # multi_margin_loss's mean over no examples: PyTorch returns whatever its
    # output held; the adapter NaN, as PyTorch's other losses.
    empty, ids = torch.zeros((0, 3), dtype=torch.float64), torch.zeros(0, dtype=torch.int64)
    assert torch.isnan(lkF.multi_margin_loss(empty, ids))
    assert float(lkF.multi_margin_loss(empty, ids, reduction="sum")) == 0.0


def test_soft_margin_target_derivative_is_exact():
    # PyTorch refuses d/d target ("not differentiable with respect to argument
    # 'target'"); it is -x sigmoid(-t x), here over the mean's 12 elements.
    x = torch.tensor(X)
    t = torch.tensor(SIGNS * 0.7, requires_grad=True)
    lkF.soft_margin_loss(x, t).backward()
    expected = -X * (1 / (1 + np.exp(SIGNS * 0.7 * X))) / X.size
    np.testing.assert_allclose(t.grad.numpy(), expected, **TOL)


def test_multilabel_margin_slope_at_an_exact_tie_is_torchs():
    # Target class 0 against class 1 at a margin of exactly 0 (s_0 - s_1 = 1):
    # PyTorch's kernel gives the pair slope 0; the core's own is 1/2.
    s = torch.tensor([[2.0, 1.0, -3.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0, -1, 0]])
    torch.nn.functional.multilabel_margin_loss(s, y, reduction="sum").backward()
    expected = s.grad.numpy().copy()
    np.testing.assert_allclose(expected, [[0.0, 0.0, 0.0]])
    s.grad = None
    lkF.multilabel_margin_loss(s, y, reduction="sum").backward()
    np.testing.assert_allclose(s.grad.numpy(), expected, **TOL)
    import losskit as lk

    core = lk.value_and_grad(lk.multilabel_margin)
    _, g = core(s.detach().numpy(), y.numpy(), reduction="sum")
    np.testing.assert_allclose(g, [[-0.5 / 3, 0.5 / 3, 0.0]], **TOL)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize(
    "name", ["soft_margin_loss", "hinge_embedding_loss", "multilabel_soft_margin_loss"]
)
def test_margin_losses_keep_torchs_dtype(name, dtype):
    x = torch.tensor(X).to(getattr(torch, dtype))
    t = torch.tensor(MULTI_HOT if "multilabel" in name else SIGNS).to(getattr(torch, dtype))
    ours = getattr(lkF, name)(x, t)
    theirs = getattr(torch.nn.functional, name)(x, t)
    assert ours.dtype == theirs.dtype
    exact = getattr(torch.nn.functional, name)(x.double(), t.double())
    np.testing.assert_allclose(ours.double().numpy(), exact.numpy(), rtol=1e-2)


def test_margin_losses_bad_arguments():
    x, y = torch.tensor(X), torch.tensor(LABELS)
    with pytest.raises(ValueError, match=r"^`target` must have the shape of `input` \(4, 3\); got"):
        lkF.soft_margin_loss(x, x[0])
    with pytest.raises(ValueError, match=r"^`p` must be 1 or 2 \(as torch's multi_margin_loss\)"):
        lkF.multi_margin_loss(x, y, p=3)
    with pytest.raises(ValueError, match=r"must be a vector \(C,\) or a matrix \(N, C\); got"):
        lkF.multi_margin_loss(x[None], y[None])
    with pytest.raises(ValueError, match=r"^`weight` must be one-dimensional"):
        lkF.multi_margin_loss(x, y, weight=x)
    with pytest.raises(ValueError, match=r"^`labels` must be in \[0, 3\); got 3 at position"):
        lkF.multi_margin_loss(x, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(TypeError, match=r"^`target` holds class ids \(then -1 and padding\)"):
        lkF.multilabel_margin_loss(x, x)
    # nn.MultiMarginLoss checks p and the weight's rank at construction, in PyTorch's words.
    for module in (lknn, torch.nn):
        with pytest.raises(ValueError, match=r"^only p == 1 and p == 2 supported$"):
            module.MultiMarginLoss(p=3)
        with pytest.raises(ValueError, match=r"expected weight to be None or 1D tensor, got 2D"):
            module.MultiMarginLoss(weight=x)
