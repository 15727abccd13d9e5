"""losskit.compat.torch against torch.nn.functional itself: values, autograd gradients, errors.

Each test runs PyTorch's own function and the adapter on the same tensors and
compares the value and the gradient with respect to ``input`` (both by torch
autograd); NumPy and JAX inputs give the same numbers in their own kind.
Where the adapter departs from PyTorch on purpose (a ``ValueError`` where
PyTorch raises ``IndexError``/``RuntimeError``; int32 targets accepted) the
test says so.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings

import numpy as np
import pytest

import losskit
from losskit.compat import torch as lkF

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(20261121)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def value_and_grad(fn, x, *args, **kwargs):
    """(value, d sum(value) / d x) by torch autograd, on a fresh leaf copy of ``x``."""
    leaf = x.detach().clone().requires_grad_(True)
    value = fn(leaf, *args, **kwargs)
    (grad,) = torch.autograd.grad(value.sum(), leaf, allow_unused=True)
    return value.detach(), (torch.zeros_like(leaf) if grad is None else grad)


def assert_same(ours, theirs, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=rtol, atol=atol, equal_nan=True)


def compare(name, x, *args, rtol=1e-10, atol=1e-12, **kwargs):
    """Value and gradient of compat.torch.<name> against torch's; NumPy in gives NumPy out."""
    v_ref, g_ref = value_and_grad(getattr(F, name), x, *args, **kwargs)
    v, g = value_and_grad(getattr(lkF, name), x, *args, **kwargs)
    assert v.dtype == v_ref.dtype and v.shape == v_ref.shape
    assert_same(v, v_ref, rtol, atol)
    assert_same(g, g_ref, rtol, atol)
    np_args = [a.detach().numpy() if isinstance(a, torch.Tensor) else a for a in args]
    np_kwargs = {k: a.numpy() if isinstance(a, torch.Tensor) else a for k, a in kwargs.items()}
    v_np = getattr(lkF, name)(x.detach().numpy(), *np_args, **np_kwargs)
    assert isinstance(v_np, np.ndarray) or np.isscalar(v_np)
    np.testing.assert_allclose(v_np, v_ref.numpy(), rtol=max(rtol, 1e-9), atol=atol, equal_nan=True)
    return v


# --------------------------------------------------------------------------- cross_entropy


@pytest.mark.parametrize(
    ("reduction", "weighted", "smoothing", "ignored"),
    list(itertools.product(["mean", "sum", "none"], [False, True], [0.0, 0.2], [False, True])),
)
def test_cross_entropy_class_ids(reduction, weighted, smoothing, ignored):
    x = t64(RNG.normal(size=(6, 4)) * 3)
    y = torch.tensor([0, 3, 1, 2, 3, 1])
    if ignored:
        y[[1, 4]] = -100
    w = t64([0.5, 2.0, 1.0, 3.0]) if weighted else None
    compare("cross_entropy", x, y, weight=w, reduction=reduction, label_smoothing=smoothing)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_k_dimensional(reduction):
    # (N, C, d1, d2) logits with (N, d1, d2) labels: the classes are dim 1.
    x = t64(RNG.normal(size=(2, 3, 4, 5)))
    y = torch.tensor(RNG.integers(0, 3, size=(2, 4, 5)))
    y[0, 1, 2] = 7  # a custom ignore index
    w = t64([1.0, 0.5, 2.0])
    compare(
        "cross_entropy", x, y, weight=w, ignore_index=7, reduction=reduction, label_smoothing=0.1
    )


def test_cross_entropy_unbatched():
    x = t64(RNG.normal(size=4))
    compare("cross_entropy", x, torch.tensor(2))
    compare("cross_entropy", x, torch.softmax(t64(RNG.normal(size=4)), 0))


@pytest.mark.parametrize(
    ("reduction", "weighted", "smoothing"),
    list(itertools.product(["mean", "sum", "none"], [False, True], [0.0, 0.3])),
)
def test_cross_entropy_probabilities(reduction, weighted, smoothing):
    # Soft targets: weight scales each class's term, mean divides by N.
    x = t64(RNG.normal(size=(2, 3, 4)) * 2)
    t = torch.softmax(t64(RNG.normal(size=(2, 3, 4))), 1)
    w = t64([0.5, 2.0, 1.5]) if weighted else None
    compare("cross_entropy", x, t, weight=w, reduction=reduction, label_smoothing=smoothing)


def test_cross_entropy_all_ignored_mean_is_nan_with_zero_gradient():
    x = t64(RNG.normal(size=(3, 4)))
    y = torch.full((3,), -100)
    v = compare("cross_entropy", x, y)
    assert math.isnan(v)
    v = compare("cross_entropy", x, y, label_smoothing=0.1)
    assert math.isnan(v)
    assert compare("cross_entropy", x, y, reduction="sum") == 0
    # The core's own semantics differ: nothing counted gives 0, not NaN.
    core = losskit.sparse_softmax_cross_entropy(x.detach(), y, ignore_index=-100, axis=1)
    assert float(core) == 0


def test_cross_entropy_zero_total_weight_is_nan():
    # Counted targets whose weights sum to 0: torch divides 0 by 0.  (Its
    # gradient is NaN too; the adapter's is 0: the NaN is added as a constant.)
    x = t64(RNG.normal(size=(3, 4)))
    y = torch.tensor([0, 0, 0])
    w = t64([0.0, 1.0, 1.0, 1.0])
    assert math.isnan(F.cross_entropy(x, y, weight=w))
    assert math.isnan(lkF.cross_entropy(x, y, weight=w))


def test_cross_entropy_empty_batch():
    x = t64(np.zeros((0, 3)))
    y = torch.zeros(0, dtype=torch.int64)
    assert math.isnan(lkF.cross_entropy(x, y)) and math.isnan(F.cross_entropy(x, y))
    assert float(lkF.cross_entropy(x, y, reduction="sum")) == 0


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 2), (2, 3, 0)])
def test_cross_entropy_probabilities_empty_batch(shape):
    # torch: the mean over no examples is 0/0 = NaN, with soft targets too.
    x, t = t64(np.zeros(shape)), t64(np.zeros(shape))
    assert math.isnan(F.cross_entropy(x, t))
    assert math.isnan(lkF.cross_entropy(x, t))
    assert math.isnan(lkF.cross_entropy(x, t, weight=t64([1.0, 2.0, 3.0]), label_smoothing=0.1))
    assert float(lkF.cross_entropy(x, t, reduction="sum")) == 0
    assert lkF.cross_entropy(x.numpy(), t.numpy()).dtype == np.float64


def test_cross_entropy_float32():
    x = torch.tensor(RNG.normal(size=(5, 7)).astype(np.float32) * 10)
    y = torch.tensor([0, 6, 3, -100, 2])
    compare("cross_entropy", x, y, label_smoothing=0.05, rtol=2e-6, atol=1e-6)


def test_cross_entropy_worked_example():
    # The DESIGN.md example: logits [2, 0.5, 6] and [0.1, 0, 3], labels 2 and 1.
    # -log softmax: log(e^2 + e^0.5 + e^6) - 6 = 0.0221552; log(e^0.1 + 1 + e^3) = 3.0996736.
    x = [[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]]
    v = lkF.cross_entropy(np.array(x), np.array([2, 1]), reduction="none")
    np.testing.assert_allclose(v, [0.02215516, 3.09967364], rtol=1e-6)
    assert float(F.cross_entropy(torch.tensor(x), torch.tensor([2, 1]))) == pytest.approx(
        float(lkF.cross_entropy(np.array(x, dtype=np.float32), np.array([2, 1]))), rel=1e-6
    )


def test_cross_entropy_int32_targets_accepted():
    # PyTorch refuses int32 targets ("expected target dtype to be Long or Byte");
    # the adapter takes any integer dtype, NumPy's default int32 on Windows included.
    x = t64(RNG.normal(size=(3, 4)))
    with pytest.raises(RuntimeError, match="Long or Byte"):
        F.cross_entropy(x, torch.tensor([1, 0, 3], dtype=torch.int32))
    v = lkF.cross_entropy(x, torch.tensor([1, 0, 3], dtype=torch.int32))
    assert_same(v, F.cross_entropy(x, torch.tensor([1, 0, 3])))


def test_cross_entropy_label_out_of_range():
    x = t64(RNG.normal(size=(3, 4)))
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        F.cross_entropy(x, torch.tensor([0, 4, 1]))
    msg = r"^`labels` must be in \[0, 4\) or equal ignore_index=-100; got 4 at position \(1,\)$"
    with pytest.raises(ValueError, match=msg):
        lkF.cross_entropy(x, torch.tensor([0, 4, 1]))
    msg = r"^`labels` must be in \[0, 4\) or equal ignore_index=-100; got -1 at position \(2,\)$"
    with pytest.raises(ValueError, match=msg):
        lkF.cross_entropy(x.numpy(), np.array([0, 1, -1]))


def test_cross_entropy_ignore_index_with_probabilities():
    x = t64(RNG.normal(size=(3, 4)))
    t = torch.softmax(t64(RNG.normal(size=(3, 4))), 1)
    msg = "ignore_index is not supported for floating point target"
    with pytest.raises(RuntimeError, match=msg):
        F.cross_entropy(x, t, ignore_index=1)
    with pytest.raises(ValueError, match=msg):
        lkF.cross_entropy(x, t, ignore_index=1)


def test_cross_entropy_passes_the_double_softmax_warning():
    p = torch.softmax(t64(RNG.normal(size=(4, 3))), 1)
    y = torch.tensor([0, 1, 2, 1])
    with pytest.warns(losskit.ProbabilitiesAsLogitsWarning, match="look like probabilities"):
        v = lkF.cross_entropy(p, y)
    assert_same(v, F.cross_entropy(p, y))  # the number stays PyTorch's


def test_invalid_reduction_message_is_torchs():
    x, y = t64(np.zeros((2, 3))), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"^bogus is not a valid value for reduction$"):
        F.cross_entropy(x, y, reduction="bogus")
    for name, args in [
        ("cross_entropy", (x, y)),
        ("nll_loss", (x, y)),
        ("binary_cross_entropy", (x, x)),
        ("binary_cross_entropy_with_logits", (x, x)),
        ("mse_loss", (x, x)),
        ("l1_loss", (x, x)),
    ]:
        with pytest.raises(ValueError, match=r"^bogus is not a valid value for reduction$"):
            getattr(lkF, name)(*args, reduction="bogus")


@pytest.mark.parametrize(
    ("size_average", "reduce"), [(False, None), (None, False), (True, True), (False, True)]
)
def test_legacy_size_average_and_reduce(size_average, reduce):
    x = t64(RNG.normal(size=(3, 4)))
    y = torch.tensor([0, 1, 3])
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        ref = F.cross_entropy(x, y, None, size_average, -100, reduce)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        ours = lkF.cross_entropy(x, y, None, size_average, -100, reduce)
    assert_same(ours, ref)


def test_positional_order_is_torchs():
    # cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, ls)
    x = t64(RNG.normal(size=(3, 4)))
    y = torch.tensor([0, 2, 3])
    w = t64([1.0, 2.0, 3.0, 4.0])
    args = (x, y, w, None, 2, None, "sum", 0.1)
    assert_same(lkF.cross_entropy(*args), F.cross_entropy(*args))
    args = (x, y, w, None, 0, None, "none")
    assert_same(lkF.nll_loss(*args), F.nll_loss(*args))


# --------------------------------------------------------------------------- nll_loss


@pytest.mark.parametrize(
    ("reduction", "weighted", "normalised"),
    list(itertools.product(["mean", "sum", "none"], [False, True], [False, True])),
)
def test_nll_loss(reduction, weighted, normalised):
    x = t64(RNG.normal(size=(5, 4)))
    if normalised:
        x = torch.log_softmax(x, 1)
    y = torch.tensor([0, 3, -100, 2, 3])
    w = t64([0.5, 2.0, 1.0, 3.0]) if weighted else None
    compare("nll_loss", x, y, weight=w, reduction=reduction)


def test_nll_loss_k_dimensional_and_all_ignored():
    x = torch.log_softmax(t64(RNG.normal(size=(2, 3, 4))), 1)
    y = torch.tensor(RNG.integers(0, 3, size=(2, 4)))
    compare("nll_loss", x, y, ignore_index=1)
    v = compare("nll_loss", x, torch.full((2, 4), -100))
    assert math.isnan(v)


def test_nll_loss_unbatched():
    x = torch.log_softmax(t64(RNG.normal(size=5)), 0)
    compare("nll_loss", x, torch.tensor(3))
    compare("nll_loss", x, torch.tensor(3), weight=t64(np.arange(1.0, 6.0)))


def test_label_smoothing_outside_the_unit_interval():
    x, y = t64(np.zeros((2, 3))), torch.tensor([0, 1])
    with pytest.raises(RuntimeError, match=r"label_smoothing must be between 0\.0 and 1\.0"):
        F.cross_entropy(x, y, label_smoothing=1.5)
    msg = r"^`label_smoothing` must be a number in \[0, 1\]; got 1.5$"
    with pytest.raises(ValueError, match=msg):
        lkF.cross_entropy(x, y, label_smoothing=1.5)
    with pytest.raises(ValueError, match=msg):
        lkF.cross_entropy(x, torch.softmax(x, 1), label_smoothing=1.5)


def test_nll_loss_label_out_of_range():
    x = t64(np.zeros((2, 3)))
    with pytest.raises(IndexError, match="Target 3 is out of bounds"):
        F.nll_loss(x, torch.tensor([0, 3]))
    msg = r"^`labels` must be in \[0, 3\) or equal ignore_index=-100; got 3 at position \(1,\)$"
    with pytest.raises(ValueError, match=msg):
        lkF.nll_loss(x, torch.tensor([0, 3]))


# --------------------------------------------------------------------------- binary


BCE_P = [0.0, 1.0, 1e-50, 1e-13, 1 - 1e-13, 0.5, 0.3, 0.999, 1e-200, 0.0, 1.0, 0.7]
BCE_T = [1.0, 0.0, 1.0, 0.3, 0.3, 0.5, 0.0, 1.0, 0.2, 0.0, 1.0, 0.6]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_clamps_log_at_minus_100(reduction, weighted):
    p = t64(np.reshape(BCE_P, (4, 3)))
    t = t64(np.reshape(BCE_T, (4, 3)))
    w = t64([0.5, 2.0, 1.0]) if weighted else None  # broadcast over the rows
    v = compare("binary_cross_entropy", p, t, weight=w, reduction=reduction)
    assert torch.isfinite(v).all()


def test_binary_cross_entropy_values_and_gradient_at_the_edges():
    # torch: p = 0 with t = 1 costs exactly 100, and the gradient is
    # (p - t) / max(p (1-p), 1e-12) = -1e12, not -inf, 0 or NaN.
    p = t64([0.0, 1.0, 0.5])
    t = t64([1.0, 0.0, 1.0])
    v, g = value_and_grad(lkF.binary_cross_entropy, p, t, reduction="none")
    np.testing.assert_allclose(v.numpy(), [100.0, 100.0, math.log(2)])
    np.testing.assert_allclose(g.numpy(), [-1e12, 1e12, -2.0])


def test_binary_cross_entropy_float32():
    p = torch.tensor(np.array(BCE_P[:9], dtype=np.float32))
    t = torch.tensor(np.array(BCE_T[:9], dtype=np.float32))
    compare("binary_cross_entropy", p, t, reduction="none", rtol=1e-6, atol=1e-6)


def test_binary_cross_entropy_errors():
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(t64([0.5, 1.5]), t64([1.0, 1.0]))
    msg = r"^`input` must be probabilities in \[0, 1\]; got 1.5 at position \(1,\)$"
    with pytest.raises(ValueError, match=msg):
        lkF.binary_cross_entropy(t64([0.5, 1.5]), t64([1.0, 1.0]))
    msg = r"^`target` must be probabilities in \[0, 1\]; got -0.5 at position \(0,\)$"
    with pytest.raises(ValueError, match=msg):
        lkF.binary_cross_entropy(t64([0.5, 0.5]), t64([-0.5, 1.0]))
    # The shape message is PyTorch's, with tuples for torch.Size.
    msg = (
        r"Using a target size \(\(1,\)\) that is different to the input size \(\(2,\)\) is "
        r"deprecated. Please ensure they have the same size."
    )
    with pytest.raises(ValueError, match=r"different to the input size"):
        F.binary_cross_entropy(t64([0.5, 0.5]), t64([1.0]))
    with pytest.raises(ValueError, match=msg):
        lkF.binary_cross_entropy(t64([0.5, 0.5]), t64([1.0]))


def test_binary_cross_entropy_empty_mean_is_nan():
    e = t64(np.zeros(0))
    assert math.isnan(F.binary_cross_entropy(e, e)) and math.isnan(lkF.binary_cross_entropy(e, e))
    assert math.isnan(lkF.binary_cross_entropy_with_logits(e, e))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("pos_weight", [None, "scalar", "per-class"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_with_logits(reduction, pos_weight, weighted):
    x = t64([[-3.0, 0.5, 100.0], [2.0, -1.0, 0.25], [-1e4, 1e4, 40.0], [-40.0, 17.0, -0.3]])
    t = t64([[1.0, 0.0, 1.0], [0.0, 1.0, 0.5], [1.0, 0.0, 0.0], [1.0, 1.0, 0.2]])
    q = {None: None, "scalar": t64(2.5), "per-class": t64([2.0, 1.0, 0.5])}[pos_weight]
    w = t64([1.0, 2.0, 3.0]) if weighted else None
    compare("binary_cross_entropy_with_logits", x, t, weight=w, reduction=reduction, pos_weight=q)


def test_binary_cross_entropy_with_logits_gradient_at_zero_logit():
    compare("binary_cross_entropy_with_logits", t64([0.0, 0.0, 0.0]), t64([0.0, 0.5, 1.0]))


@pytest.mark.parametrize("shape", [(3, 1, 1), (2, 3, 4, 5), (5,), (4, 1)])
def test_binary_cross_entropy_with_logits_broadcast_pos_weight(shape):
    # PyTorch broadcasts pos_weight of any shape: (C, 1, 1) for (N, C, H, W).
    x = t64(RNG.normal(size=(2, 3, 4, 5)) * 4)
    t = t64(RNG.random(size=(2, 3, 4, 5)))
    q = t64(RNG.random(size=shape) * 3)
    compare("binary_cross_entropy_with_logits", x, t, pos_weight=q)


def test_binary_cross_entropy_with_logits_pos_weight_that_does_not_broadcast():
    x = t64(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="must match the size"):
        F.binary_cross_entropy_with_logits(x, x, pos_weight=t64(np.ones(2)))
    msg = r"^`pos_weight` must broadcast to the shape of the logits \(2, 3\); got \(2,\)$"
    with pytest.raises(ValueError, match=msg):
        lkF.binary_cross_entropy_with_logits(x, x, pos_weight=t64(np.ones(2)))


def test_binary_cross_entropy_with_logits_float32_and_shape_message():
    x = torch.tensor(RNG.normal(size=(6, 5)).astype(np.float32) * 20)
    t = torch.tensor(RNG.random(size=(6, 5)).astype(np.float32))
    compare("binary_cross_entropy_with_logits", x, t, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"must be the same as input size"):
        F.binary_cross_entropy_with_logits(x, t[0])
    msg = r"^Target size \(\(5,\)\) must be the same as input size \(\(6, 5\)\)$"
    with pytest.raises(ValueError, match=msg):
        lkF.binary_cross_entropy_with_logits(x, t[0])


# --------------------------------------------------------------------------- regression


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_regression(name, reduction, weighted):
    x = t64(RNG.normal(size=(4, 3)))
    y = t64(RNG.normal(size=(4, 3)))
    y[0, 0] = x[0, 0].detach()  # l1's gradient at a zero difference is 0
    w = t64(RNG.random(size=(4, 3))) if weighted else None
    compare(name, x, y, reduction=reduction, weight=w)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_regression_broadcasts_with_torchs_warning(name):
    x = t64(RNG.normal(size=(4, 3)))
    y = t64(RNG.normal(size=(3,)))
    with pytest.warns(UserWarning, match="is different to the input size"):
        ref = value_and_grad(getattr(F, name), x, y)
    with pytest.warns(UserWarning, match="is different to the input size"):
        ours = value_and_grad(getattr(lkF, name), x, y)
    assert_same(ours[0], ref[0])
    assert_same(ours[1], ref[1])


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_regression_weight_size_and_empty_mean(name):
    x = t64(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^Weights and input must have the same size\.$"):
        getattr(F, name)(x, x, weight=t64(np.ones(3)))
    with pytest.raises(ValueError, match=r"^Weights and input must have the same size\.$"):
        getattr(lkF, name)(x, x, weight=t64(np.ones(3)))
    e = t64(np.zeros(0))
    assert math.isnan(getattr(F, name)(e, e)) and math.isnan(getattr(lkF, name)(e, e))


# --------------------------------------------------------------------------- precision


def half_cases():
    """(name, args, kwargs) in float64 tensors, every option that touches the dtype."""
    x = RNG.normal(size=(5, 4)) * 3
    p = RNG.uniform(0.05, 0.95, size=(5, 4))
    t = np.round(RNG.random(size=(5, 4)))
    soft = RNG.random(size=(5, 4))
    soft /= soft.sum(1, keepdims=True)
    y = torch.tensor([0, 3, -100, 2, 1])
    w4, w54 = t64([0.5, 2.0, 1.0, 1.5]), t64(RNG.random(size=(5, 4)))
    return [
        ("cross_entropy", (t64(x), y), {"weight": w4, "label_smoothing": 0.1}),
        ("cross_entropy", (t64(x), t64(soft)), {"weight": w4, "label_smoothing": 0.1}),
        ("nll_loss", (t64(np.log(p)), y), {"weight": w4}),
        ("binary_cross_entropy", (t64(p), t64(t)), {"weight": w54}),
        ("binary_cross_entropy_with_logits", (t64(x), t64(t)), {"weight": w54, "pos_weight": w4}),
        ("mse_loss", (t64(x), t64(p)), {"weight": w54}),
        ("l1_loss", (t64(x), t64(p)), {}),
    ]


HALF_CASES = [f"{name}-{i}" for i, (name, _, _) in enumerate(half_cases())]


@pytest.mark.parametrize("case", range(len(HALF_CASES)), ids=HALF_CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_loss_keeps_torchs_dtype(case, reduction, dtype):
    # torch: half-precision input gives a half-precision loss.  Where the
    # adapter goes through the core, it accumulates in float32 and rounds once:
    # the float32 loss of the same half inputs, rounded to the dtype.  Its
    # binary_cross_entropy and nll_loss compute in the input's dtype, as torch's.
    name, args, kwargs = half_cases()[case]
    half = [a.to(dtype) if a.is_floating_point() else a for a in args]
    kw = {k: v.to(dtype) for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
    kw = {**kwargs, **kw, "reduction": reduction}
    ref = getattr(F, name)(*half, **kw)
    v, g = value_and_grad(getattr(lkF, name), half[0], *half[1:], **kw)
    assert v.dtype == ref.dtype == dtype
    assert g.dtype == dtype
    eps = torch.finfo(dtype).eps
    np.testing.assert_allclose(v.float().numpy(), ref.float().numpy(), rtol=8 * eps, atol=eps)
    if name not in ("binary_cross_entropy", "nll_loss"):
        wide = {k: a.float() if isinstance(a, torch.Tensor) else a for k, a in kw.items()}
        exact = getattr(F, name)(*(a.float() if a.is_floating_point() else a for a in half), **wide)
        np.testing.assert_allclose(v.float().numpy(), exact.to(dtype).float().numpy(), rtol=eps)


def test_half_precision_numpy_in_numpy_half_out():
    x = (RNG.normal(size=(4, 3)) * 3).astype(np.float16)
    t = RNG.random(size=(4, 3)).astype(np.float16)
    y = np.array([0, 2, 1, -100])
    calls = [
        ("cross_entropy", (x, y)),
        ("cross_entropy", (x, t)),
        ("binary_cross_entropy_with_logits", (x, t)),
        ("binary_cross_entropy", (t, t)),
        ("nll_loss", (x, y)),
        ("mse_loss", (x, t)),
        ("l1_loss", (x, t)),
    ]
    for name, args in calls:
        ref = getattr(F, name)(*(torch.tensor(a) for a in args))
        v = getattr(lkF, name)(*args)
        assert isinstance(v, (np.ndarray, np.generic)) and v.dtype == np.float16, name
        np.testing.assert_allclose(v, ref.numpy(), rtol=4e-3, err_msg=name)


@pytest.mark.parametrize(
    ("name", "target_dtype", "kwargs"),
    [
        ("mse_loss", torch.float32, {}),
        ("mse_loss", torch.float16, {"weight": torch.ones(3, 4)}),
        ("l1_loss", torch.float32, {}),
        ("binary_cross_entropy_with_logits", torch.float32, {}),
        ("binary_cross_entropy_with_logits", torch.float16, {"weight": torch.ones(3, 4)}),
        ("cross_entropy", torch.float32, {}),
    ],
)
def test_mixed_precision_result_dtype_is_torchs(name, target_dtype, kwargs):
    # torch promotes input and target (and mse's weight, not BCE's) to one dtype.
    x = torch.tensor(RNG.normal(size=(3, 4)), dtype=torch.float16)
    t = torch.tensor(RNG.random(size=(3, 4)), dtype=target_dtype)
    ref = getattr(F, name)(x, t, **kwargs)
    v = getattr(lkF, name)(x, t, **kwargs)
    assert v.dtype == ref.dtype, name
    np.testing.assert_allclose(v.float().numpy(), ref.float().numpy(), rtol=2e-3)


# --------------------------------------------------------------------------- other backends


def test_jax_arrays_values_and_gradients():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x = RNG.normal(size=(4, 3))
    y = np.array([0, 2, -100, 1])
    g_ref = value_and_grad(F.cross_entropy, t64(x), torch.tensor(y), label_smoothing=0.1)[1]
    g = jax.grad(lambda z: lkF.cross_entropy(z, jnp.asarray(y), label_smoothing=0.1))(
        jnp.asarray(x)
    )
    np.testing.assert_allclose(np.asarray(g), g_ref.numpy(), rtol=1e-10, atol=1e-12)

    p = np.reshape(BCE_P, (4, 3))
    t = np.reshape(BCE_T, (4, 3))
    v_ref, g_ref = value_and_grad(F.binary_cross_entropy, t64(p), t64(t))
    v = lkF.binary_cross_entropy(jnp.asarray(p), jnp.asarray(t))
    assert isinstance(v, jax.Array)
    g = jax.grad(lambda z: lkF.binary_cross_entropy(z, jnp.asarray(t)))(jnp.asarray(p))
    np.testing.assert_allclose(float(v), float(v_ref), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g), g_ref.numpy(), rtol=1e-10)


def test_jax_jit_keeps_the_nan_mean():
    jax = pytest.importorskip("jax")
    x = jax.numpy.asarray(RNG.normal(size=(3, 4)))
    none = jax.numpy.asarray([-100, -100, -100])
    some = jax.numpy.asarray([-100, 2, -100])
    f = jax.jit(lkF.cross_entropy)
    assert math.isnan(float(f(x, none)))
    ref = F.cross_entropy(torch.tensor(np.asarray(x)), torch.tensor(np.asarray(some)))
    np.testing.assert_allclose(float(f(x, some)), float(ref), rtol=1e-12)
    g = jax.grad(lambda z: lkF.cross_entropy(z, none))(x)
    assert not np.asarray(g).any()  # zero gradient, as torch's


def test_lists_in_numpy_out():
    v = lkF.mse_loss([1.0, 2.0], [0.0, 0.0], reduction="none")
    assert isinstance(v, np.ndarray)
    np.testing.assert_allclose(v, [1.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = lkF.cross_entropy([[0.0, 0.0]], [1])
    assert float(v) == pytest.approx(math.log(2))


def test_array_api_strict_on_another_device():
    # Portable code: the adapter's own steps keep to the array API and the input's device.
    xs = pytest.importorskip("array_api_strict")
    d = xs.Device("device1")
    x, p = RNG.normal(size=(4, 3)), RNG.random(size=(4, 3))
    y, t = np.array([0, 2, -100, 1]), np.round(RNG.random(size=(4, 3)))
    q = np.array([[2.0], [1.0], [0.5], [3.0]])
    calls = [
        ("cross_entropy", (x, y), {"label_smoothing": 0.1}),
        ("cross_entropy", (x, np.full(4, -100)), {}),
        ("cross_entropy", (x, p), {"weight": np.ones(3)}),
        ("nll_loss", (x, y), {}),
        ("binary_cross_entropy", (p, t), {}),
        ("binary_cross_entropy_with_logits", (x, t), {"pos_weight": q}),
        ("mse_loss", (x, p), {}),
        ("l1_loss", (x, p), {}),
    ]
    for name, args, kwargs in calls:
        ref = getattr(lkF, name)(*args, **kwargs)
        on = {k: xs.asarray(v, device=d) for k, v in kwargs.items() if isinstance(v, np.ndarray)}
        v = getattr(lkF, name)(*(xs.asarray(a, device=d) for a in args), **{**kwargs, **on})
        assert v.device == d, name
        np.testing.assert_allclose(
            np.asarray(xs.asarray(v, device=xs.Device("CPU_DEVICE"))), ref, rtol=1e-12, err_msg=name
        )


# --------------------------------------------------------------------------- torch's rules


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("nll_loss", {}), ("cross_entropy", {}), ("cross_entropy", {"label_smoothing": 0.1})],
)
def test_class_weight_of_another_dtype_is_refused(name, kwargs):
    # PyTorch refuses a class weight whose dtype is not the input's; the
    # adapter used to cast it.  A TypeError names weight, its dtype and the input's.
    x = t64(RNG.normal(size=(3, 4)))
    y = torch.tensor([0, 3, 1])
    w = torch.tensor([0.5, 2.0, 1.0, 3.0])
    for bad in (w.float(), w.half(), w.long()):
        with pytest.raises(RuntimeError, match=r"expected scalar type Double but found"):
            getattr(F, name)(x, y, weight=bad, **kwargs)
        msg = (
            r"^`weight` must have the dtype of `input` \(torch.float64\), as PyTorch requires "
            rf"for class ids; got {re.escape(str(bad.dtype))}$"
        )
        with pytest.raises(TypeError, match=msg):
            getattr(lkF, name)(x, y, weight=bad, **kwargs)
    msg = r"^`weight` must have the dtype of `input` \(float32\), as PyTorch requires .* float64$"
    with pytest.raises(TypeError, match=msg):
        getattr(lkF, name)(x.numpy().astype(np.float32), y.numpy(), weight=w.double().numpy())
    # A list has no dtype of its own: it is taken in the input's.
    ref = getattr(F, name)(x.float(), y, weight=w, **kwargs)
    v = getattr(lkF, name)(x.float(), y, weight=[0.5, 2.0, 1.0, 3.0], **kwargs)
    assert v.dtype == ref.dtype == torch.float32
    assert_same(v, ref, rtol=1e-6)


def test_class_weight_with_probabilities_promotes():
    # With class probabilities PyTorch promotes the weight with input and target.
    x = torch.tensor(RNG.normal(size=(3, 4)), dtype=torch.float32)
    t = torch.softmax(x.double(), 1).float()
    w = t64([0.5, 2.0, 1.0, 3.0])
    ref = F.cross_entropy(x, t, weight=w)
    v = lkF.cross_entropy(x, t, weight=w)
    assert v.dtype == ref.dtype == torch.float64
    assert_same(v, ref, rtol=1e-6)


def test_class_weight_shape_names_weight():
    x, y = t64(np.zeros((2, 3))), torch.tensor([0, 1])
    with pytest.raises(RuntimeError, match="weight tensor should be defined either for all 3"):
        F.nll_loss(x, y, weight=t64(np.ones(2)))
    msg = r"^`weight` must have one weight per class, shape \(3,\); got \(2,\)$"
    for name, target in [("nll_loss", y), ("cross_entropy", y), ("cross_entropy", x)]:
        with pytest.raises(ValueError, match=msg):
            getattr(lkF, name)(x, target, weight=t64(np.ones(2)))


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_float_class_ids_must_be_integers(name):
    # PyTorch's rule: a target without the class dim holds class ids, which
    # must be integers; the adapter used to report a shape error.
    x = t64(RNG.normal(size=(3, 4)))
    y = t64([0.0, 3.0, 1.0])
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte"):
        getattr(F, name)(x, y)
    msg = (
        r"^`target` of shape \(3,\) holds class ids \(the input's shape without its class "
        r"dim 1\), which must be integers; got dtype torch.float64$"
    )
    with pytest.raises(TypeError, match=msg):
        getattr(lkF, name)(x, y)
    with pytest.raises(TypeError, match="which must be integers; got dtype float32"):
        getattr(lkF, name)(x.numpy(), np.array([0.0, 3.0, 1.0], dtype=np.float32))
    with pytest.raises(TypeError, match=r"^`target` of shape \(\) holds class ids"):
        getattr(lkF, name)(x[0], t64(2.0))  # unbatched: the class dim is 0
    with pytest.raises(TypeError, match=r"which must be integers; got dtype torch\.bool$"):
        getattr(lkF, name)(x, torch.tensor([True, False, True]))


def test_integer_probabilities_and_other_shapes():
    x = t64(RNG.normal(size=(3, 4)))
    with pytest.raises(RuntimeError, match="Expected floating point type for target with class"):
        F.cross_entropy(x, torch.zeros(3, 4, dtype=torch.int64))
    msg = (
        r"^`target` of the input's shape \(3, 4\) holds class probabilities, which must be "
        r"floating-point; got dtype torch.int64 \(class ids have the input's shape without its "
        r"class dim 1\)$"
    )
    with pytest.raises(TypeError, match=msg):
        lkF.cross_entropy(x, torch.zeros(3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target"):
        F.cross_entropy(x, torch.tensor([0, 1]))
    msg = (
        r"^`target` must be class ids of shape \(3,\) \(the input's shape \(3, 4\) without its "
        r"class dim 1\) or class probabilities of the input's shape \(3, 4\); got \(2,\)$"
    )
    with pytest.raises(ValueError, match=msg):
        lkF.cross_entropy(x, torch.tensor([0, 1]))
    msg = r"^`target` must be class ids of shape \(3,\) .* dim 1\); got \(2,\)$"
    with pytest.raises(ValueError, match=msg):
        lkF.nll_loss(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"^`input` must have a class dimension"):
        lkF.cross_entropy(t64(1.0), torch.tensor(0))


def test_ignore_index_with_probabilities_may_be_any_negative():
    # torch: with probabilities any negative ignore_index passes (it matches no
    # probability); 0 or more is refused.
    x = t64(RNG.normal(size=(3, 4)))
    t = torch.softmax(t64(RNG.normal(size=(3, 4))), 1)
    assert_same(lkF.cross_entropy(x, t, ignore_index=-1), F.cross_entropy(x, t, ignore_index=-1))
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point"):
        F.cross_entropy(x, t, ignore_index=0)
    with pytest.raises(
        ValueError, match=r"^ignore_index is not supported for floating point target$"
    ):
        lkF.cross_entropy(x, t, ignore_index=0)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("ignore_index", [2**63, 2**64 + 5, -(2**63) - 1])
def test_ignore_index_outside_int64(name, ignore_index):
    # torch raises "Overflow when unpacking long long"; NumPy's fused kernels
    # raised OverflowError.  The adapter names ignore_index and the int64 range.
    x = t64(RNG.normal(size=(3, 4)))
    y = torch.tensor([0, 3, 1])
    with pytest.raises(ValueError, match="Overflow when unpacking long long"):
        getattr(F, name)(x, y, ignore_index=ignore_index)
    msg = rf"^`ignore_index` must fit in int64, \[-2\*\*63, 2\*\*63\); got {ignore_index}$"
    for args in [(x, y), (x.numpy(), y.numpy()), (np.zeros((400, 4)), np.zeros(400, np.int64))]:
        with pytest.raises(ValueError, match=msg):
            getattr(lkF, name)(*args, ignore_index=ignore_index)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_ignore_index_at_the_int64_edges_and_of_the_wrong_type(name):
    x = t64(RNG.normal(size=(3, 4)))
    y = torch.tensor([0, 3, 1])
    for edge in (2**63 - 1, -(2**63)):
        assert_same(
            getattr(lkF, name)(x, y, ignore_index=edge), getattr(F, name)(x, y, ignore_index=edge)
        )
    y[1] = 2**63 - 1
    ref = getattr(F, name)(x, y, ignore_index=2**63 - 1)
    assert_same(getattr(lkF, name)(x, y, ignore_index=2**63 - 1), ref)
    with pytest.raises(TypeError, match="must be int, not float"):
        getattr(F, name)(x, y, ignore_index=1.0)
    with pytest.raises(TypeError, match=r"^`ignore_index` must be an int; got 1.0$"):
        getattr(lkF, name)(x, y, ignore_index=1.0)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_unsigned_class_ids(name):
    # PyTorch refuses uint64 ("expected target dtype to be Long or Byte") and
    # cannot compare it ("lt_cpu" not implemented); the adapter takes any
    # integer dtype, and names a uint64 id too big for int64 with its value.
    x = t64(RNG.normal(size=(3, 4)))
    y = torch.tensor([0, 3, 1])
    with pytest.raises(RuntimeError, match="Long or Byte, but got UInt64"):
        getattr(F, name)(x, y.to(torch.uint64))
    ref = getattr(F, name)(x, y)
    for dtype in (torch.uint8, torch.uint16, torch.uint32, torch.uint64):
        assert_same(getattr(lkF, name)(x, y.to(dtype)), ref)
    for dtype in (np.uint8, np.uint64):
        v = getattr(lkF, name)(x.numpy(), y.numpy().astype(dtype))
        np.testing.assert_allclose(v, ref.numpy(), rtol=1e-12)
    big = torch.tensor([0, 2**64 - 1, 1], dtype=torch.uint64)
    msg = (
        r"^`labels` must be in \[0, 4\) or equal ignore_index=-100; "
        r"got 18446744073709551615 at position \(1,\)$"
    )
    with pytest.raises(ValueError, match=msg):
        getattr(lkF, name)(x, big)
    with pytest.raises(ValueError, match=msg):
        getattr(lkF, name)(x.numpy(), np.array([0, 2**64 - 1, 1], dtype=np.uint64))
    msg = r"^`labels` must be in \[0, 4\) or equal ignore_index=-100; got 9$"
    with pytest.raises(ValueError, match=msg):
        getattr(lkF, name)(x[0], torch.tensor(9, dtype=torch.uint64))


def test_values_the_core_refuses_are_torchs():
    # PyTorch computes with negative class weights, soft targets outside [0, 1]
    # and negative pos_weight; so does the adapter (the core refuses them).
    x = t64(RNG.normal(size=(4, 3)))
    y = torch.tensor([0, 2, 1, 2])
    w = t64([1.0, -0.5, 2.0])
    t = torch.softmax(t64(RNG.normal(size=(4, 3))), 1)
    for args, kwargs in [
        ((x, y), {"weight": w}),
        ((x, y), {"weight": w, "label_smoothing": 0.2}),
        ((x, 2 * t - 0.5), {}),
        ((x, t), {"weight": w}),
    ]:
        compare("cross_entropy", *args, **kwargs)
    compare("nll_loss", torch.log_softmax(x, 1), y, weight=w)
    z = t64(RNG.random((4, 3)) * 3 - 1)
    compare("binary_cross_entropy_with_logits", x, z, weight=-w, pos_weight=w)
    compare("mse_loss", x, z, weight=-t)
    compare("l1_loss", x, z, weight=t - 0.5)


@pytest.mark.parametrize("name", ["mse_loss", "cross_entropy"])
def test_warnings_point_at_the_caller(name):
    # The legacy-flag and broadcast warnings are attributed to the line that
    # called the adapter, as PyTorch's are.
    x = t64(RNG.normal(size=(4, 3)))
    if name == "mse_loss":
        with pytest.warns(UserWarning, match="different to the input size") as record:
            lkF.mse_loss(x, x[0])
    else:
        with pytest.warns(UserWarning, match="size_average and reduce args") as record:
            lkF.cross_entropy(x, torch.tensor([0, 1, 2, 0]), size_average=False)
    assert record[0].filename == __file__
