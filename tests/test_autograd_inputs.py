"""Derivatives with respect to every floating input, under torch autograd and JAX (issue 7).

Knowledge distillation, learned label distributions and meta-learning
differentiate a loss with respect to its targets and weights, not only its
predictions.  Every core loss is checked here, in float64, for every floating
argument at once (predictions, targets, ``sample_weight``, ``class_weight``,
``pos_weight``) and every reduction:

- torch: ``gradcheck`` and ``gradgradcheck`` (finite differences of losskit's
  own value and gradient), and first and second derivatives equal to those of
  the plain formula (``tests/_autograd_refs.py``) under torch autograd;
- JAX: ``jax.grad`` (``jax.vjp`` with a random cotangent for
  ``reduction="none"``), eagerly and under ``jax.jit``, and for a few cases
  second derivatives (Hessian-vector products), equal to those of the plain
  formula in ``jnp``.

Edge cases (targets exactly 0 or 1, logits of +-1e4, zero sample weights,
ignored rows, clipped probabilities) are compared with the plain formula but
not finite-differenced, since a step would leave the domain (a target below
0, a negative weight).  Where a log-probability is -inf (a -inf logit used as
a mask, a probability of exactly 0 with ``eps=0``) and the target there is 0,
the term counts 0, its derivative with respect to that target is 0, and every
other derivative is that of the problem with the masked class removed.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import losskit as lk
from _autograd_refs import REFS, ops_for, reduce, sparse_targets
from conftest import Backend, softmax_np

REDUCTIONS = ("none", "sum", "mean")


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One call of a loss: its floating arguments in order (the prediction first,
    then the truth if it is floating, then the weights by keyword), the integer
    labels of a sparse loss, and the non-array options."""

    id: str
    loss: str
    floats: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.floats)

    def __repr__(self) -> str:
        return self.id


def _call(fn, case: Case, values, labels, reduction):
    """``fn(pred, truth, reduction=..., weights..., options...)`` from ``values`` in order."""
    args = dict(zip(case.names, values, strict=True))
    pred = args.pop("pred")
    truth = labels if case.labels is not None else args.pop("truth")
    return fn(pred, truth, reduction=reduction, **args, **case.options)


def _cases_smooth() -> list[Case]:
    """Inputs away from every kink and boundary: finite differences apply."""
    rng = np.random.default_rng(20240607)
    n, c = 4, 3

    def u(lo, hi, *shape):
        return rng.uniform(lo, hi, size=shape)

    def logits(*shape):
        return rng.normal(size=shape) * 2

    def soft(*shape, axis=-1):
        return softmax_np(rng.normal(size=shape), axis=axis)

    pred = rng.normal(size=(n, c))
    gap = rng.choice([-1.0, 1.0], size=(n, c)) * u(0.2, 1.0, n, c)  # |pred - target| >= 0.2
    return [
        Case(
            "softmax",
            "softmax_cross_entropy",
            {"pred": logits(n, c), "truth": soft(n, c), "sample_weight": u(0.5, 2, n)},
        ),
        Case(
            "softmax-smoothing-axis1",
            "softmax_cross_entropy",
            {
                "pred": logits(2, c, 2),
                "truth": soft(2, c, 2, axis=1),
                "sample_weight": u(0.5, 2, 2),
            },
            options={"axis": 1, "label_smoothing": 0.2},
        ),
        Case(
            "sparse-class_weight",
            "sparse_softmax_cross_entropy",
            {"pred": logits(n, c), "sample_weight": u(0.5, 2, n), "class_weight": u(0.5, 2, c)},
            labels=np.array([0, 1, 2, 1]),
        ),
        Case(
            "sparse-smoothing-ignore",
            "sparse_softmax_cross_entropy",
            {"pred": logits(n, c), "sample_weight": u(0.5, 2, n), "class_weight": u(0.5, 2, c)},
            labels=np.array([2, -1, 0, 1]),
            options={"ignore_index": -1, "label_smoothing": 0.1},
        ),
        Case(
            "sparse-axis1",
            "sparse_softmax_cross_entropy",
            {"pred": logits(2, c, 2), "sample_weight": u(0.5, 2, 2, 2)},
            labels=np.array([[0, 2], [1, 1]]),
            options={"axis": 1},
        ),
        Case(
            "categorical",
            "categorical_cross_entropy",
            {"pred": soft(n, c), "truth": soft(n, c), "sample_weight": u(0.5, 2, n)},
        ),
        Case(
            "sparse-categorical",
            "sparse_categorical_cross_entropy",
            {"pred": soft(n, c), "sample_weight": u(0.5, 2, n)},
            labels=np.array([1, 0, 2, 2]),
        ),
        Case(
            "binary",
            "binary_cross_entropy",
            {
                "pred": u(0.1, 0.9, n, c),
                "truth": u(0.1, 0.9, n, c),
                "sample_weight": u(0.5, 2, n, c),
            },
        ),
        Case(
            "sigmoid-pos_weight",
            "sigmoid_cross_entropy",
            {
                "pred": logits(n, c),
                "truth": u(0.1, 0.9, n, c),
                "sample_weight": u(0.5, 2, n),
                "pos_weight": u(0.5, 2, c),
            },
        ),
        Case(
            "sigmoid-scalar_pos_weight-smoothing",
            "sigmoid_cross_entropy",
            {
                "pred": logits(n, c),
                "truth": u(0.1, 0.9, n, c),
                "sample_weight": u(0.5, 2, n, c),
                "pos_weight": np.array(1.7),
            },
            options={"label_smoothing": 0.1},
        ),
        Case(
            "mse",
            "mean_squared_error",
            {"pred": pred, "truth": pred + gap, "sample_weight": u(0.5, 2, n)},
        ),
        Case(
            "mae",
            "mean_absolute_error",
            {"pred": pred, "truth": pred - gap, "sample_weight": u(0.5, 2, n, c)},
        ),
    ]


def _cases_edge() -> list[Case]:
    """Inputs on the domain's edges: compared with the plain formula only."""
    onehot = np.eye(3)[[2, 0, 1, 2]]
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [-2.0, 0.0, 1.5], [3.0, -0.5, -1.0]])
    extreme = np.array([[1e4, -1e4, 0.0], [0.0, 1e4, -1e4], [-1e4, 0.0, 1e4], [1e4, 1e4, -1e4]])
    soft = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.25, 0.25, 0.5], [0.1, 0.1, 0.8]])
    probs = softmax_np(x)
    # With eps = 1e-3: 1e-4 and 5e-5 are clipped up to eps, 0.99985 down to 1 - eps.
    clipped = np.array([[1e-4, 0.3999, 0.6], [0.99985, 1e-4, 5e-5], [0.2, 0.3, 0.5]])
    binary = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    p_bin = np.array([[0.3, 0.8, 0.6], [0.1, 0.95, 0.5], [0.7, 0.2, 0.4], [0.9, 0.05, 0.35]])
    sw_zero = np.array([1.5, 0.0, 2.0, 0.0])
    cw = np.array([0.5, 2.0, 1.25])
    return [
        Case(
            "softmax-onehot",
            "softmax_cross_entropy",
            {"pred": x, "truth": onehot, "sample_weight": np.array([1.0, 2.0, 0.5, 1.5])},
        ),
        Case(
            "softmax-onehot-smoothing",
            "softmax_cross_entropy",
            {"pred": x, "truth": onehot},
            options={"label_smoothing": 0.1},
        ),
        Case(
            "softmax-extreme-soft",
            "softmax_cross_entropy",
            {"pred": extreme, "truth": soft, "sample_weight": sw_zero},
        ),
        Case(
            "softmax-extreme-onehot",
            "softmax_cross_entropy",
            {"pred": extreme, "truth": onehot},
        ),
        Case(
            "sparse-extreme-smoothing",
            "sparse_softmax_cross_entropy",
            {"pred": extreme, "sample_weight": sw_zero, "class_weight": cw},
            labels=np.array([1, 0, 2, 2]),
            options={"label_smoothing": 0.1},
        ),
        Case(
            "sparse-ignore-zero_weight",
            "sparse_softmax_cross_entropy",
            {"pred": x, "sample_weight": sw_zero, "class_weight": cw},
            labels=np.array([-100, 2, 0, -100]),
            options={"ignore_index": -100, "label_smoothing": 0.2},
        ),
        Case(
            "categorical-onehot",
            "categorical_cross_entropy",
            {"pred": probs, "truth": onehot, "sample_weight": sw_zero},
        ),
        Case(
            "categorical-clipped",
            "categorical_cross_entropy",
            {"pred": clipped, "truth": soft[:3]},
            options={"eps": 1e-3},
        ),
        Case(
            "sparse-categorical-clipped",
            "sparse_categorical_cross_entropy",
            {"pred": clipped, "sample_weight": np.array([1.0, 0.0, 3.0])},
            labels=np.array([0, 1, 2]),
            options={"eps": 1e-3},
        ),
        Case(
            "binary-hard",
            "binary_cross_entropy",
            {"pred": p_bin, "truth": binary, "sample_weight": binary[::-1] * 2},
        ),
        Case(
            # probabilities of 0, 1 and beyond the clip: the clip's derivative is 0
            "binary-clipped",
            "binary_cross_entropy",
            {
                "pred": np.array([0.0, 1.0, 1e-9, 1 - 1e-9, 0.5]),
                "truth": np.array([0.0, 1.0, 1.0, 0.0, 0.3]),
            },
        ),
        Case(
            "sigmoid-extreme-hard-pos_weight",
            "sigmoid_cross_entropy",
            {
                "pred": extreme,
                "truth": binary,
                "sample_weight": sw_zero,
                "pos_weight": np.array([0.5, 3.0, 1.0]),
            },
        ),
        Case(
            "sigmoid-hard-scalar_pos_weight-smoothing",
            "sigmoid_cross_entropy",
            {"pred": x, "truth": binary, "pos_weight": np.array(2.5)},
            options={"label_smoothing": 0.2},
        ),
        Case(
            "mse-zero_weight",
            "mean_squared_error",
            {"pred": x, "truth": soft, "sample_weight": sw_zero},
        ),
        Case(
            "mae-zero_weight",
            "mean_absolute_error",
            {"pred": x, "truth": soft, "sample_weight": binary},
        ),
    ]


SMOOTH = _cases_smooth()
EDGE = _cases_edge()


# --------------------------------------------------------------------------- helpers


def _assert_matches(got, expected, what):
    """``got`` equals the reference within float64 rounding; NaN never passes."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert np.all(np.isfinite(expected)), f"the reference {what} is not finite: {expected}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    scale = 1.0 + (float(np.max(np.abs(expected))) if expected.size else 0.0)
    np.testing.assert_allclose(
        got, expected, rtol=1e-8, atol=1e-10 * scale, equal_nan=False, err_msg=what
    )


def _cotangent(shape, seed=1):
    return np.random.default_rng(seed).normal(size=shape)


def _directions(case: Case, seed=2):
    """One random direction per floating argument, for Hessian-vector products."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=np.shape(a)) for a in case.floats.values()]


def _loss_fn(case: Case):
    return getattr(lk, case.loss)


def _ref_fn(case: Case, backend: str):
    return functools.partial(REFS[case.loss], ops_for(backend))


# The finite-difference step.  A step moves a probability row off the simplex
# by its size, and float64 rows off by more than 1e-6 warn (the unnormalised-
# rows warning): 1e-7 keeps the stepped rows valid input, and central
# differences in float64 stay accurate to ~1e-9 with it.
FD_EPS = 1e-7


# --------------------------------------------------------------------------- torch


def _torch_args(case: Case):
    torch = pytest.importorskip("torch")
    tb = Backend("torch")
    floats = [tb.asarray(a, "float64").requires_grad_(True) for a in case.floats.values()]
    labels = None if case.labels is None else torch.as_tensor(case.labels, dtype=torch.int64)
    return floats, labels


def _torch_derivatives(fn, case: Case, reduction: str, floats, labels):
    """(value, first derivatives, Hessian-vector products) under torch autograd.

    The first derivative is of ``<cotangent, value>`` (a random cotangent for
    ``"none"``), the second of ``sum_i <first_i, v_i>`` for random ``v``.
    """
    import torch

    out = _call(fn, case, floats, labels, reduction)
    ct = torch.ones_like(out) if out.ndim == 0 else torch.from_numpy(_cotangent(out.shape))
    first = torch.autograd.grad(out, floats, grad_outputs=ct, create_graph=True, allow_unused=True)
    first = [torch.zeros_like(a) if g is None else g for a, g in zip(floats, first, strict=True)]
    vs = [torch.from_numpy(v) for v in _directions(case)]
    inner = sum((g * v).sum() for g, v in zip(first, vs, strict=True) if g.requires_grad)
    if isinstance(inner, torch.Tensor):
        second = torch.autograd.grad(inner, floats, allow_unused=True)
    else:  # no first derivative depends on any input: every second derivative is 0
        second = (None,) * len(floats)
    second = [torch.zeros_like(a) if g is None else g for a, g in zip(floats, second, strict=True)]
    as_np = [g.detach().numpy() for g in first], [g.detach().numpy() for g in second]
    return out.detach().numpy(), *as_np


def _compare_torch(case: Case, reduction: str):
    floats, labels = _torch_args(case)
    got = _torch_derivatives(_loss_fn(case), case, reduction, floats, labels)
    expected = _torch_derivatives(_ref_fn(case, "torch"), case, reduction, floats, labels)
    _assert_matches(got[0], expected[0], f"{case.id} {reduction}: value")
    for order, g_got, g_exp in zip(("d", "d2"), got[1:], expected[1:], strict=True):
        for name, a, b in zip(case.names, g_got, g_exp, strict=True):
            _assert_matches(a, b, f"{case.id} {reduction}: {order}/d {name}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", SMOOTH, ids=repr)
def test_torch_gradcheck_every_floating_argument(case, reduction):
    torch = pytest.importorskip("torch")
    floats, labels = _torch_args(case)
    fn = functools.partial(_call, _loss_fn(case), case, labels=labels, reduction=reduction)
    assert torch.autograd.gradcheck(lambda *a: fn(a), floats, eps=FD_EPS)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", SMOOTH, ids=repr)
def test_torch_gradgradcheck_every_floating_argument(case, reduction):
    torch = pytest.importorskip("torch")
    floats, labels = _torch_args(case)
    fn = functools.partial(_call, _loss_fn(case), case, labels=labels, reduction=reduction)
    assert torch.autograd.gradgradcheck(lambda *a: fn(a), floats, eps=FD_EPS)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", SMOOTH + EDGE, ids=repr)
def test_torch_derivatives_match_the_plain_formula(case, reduction):
    _compare_torch(case, reduction)


# --------------------------------------------------------------------------- jax


def _jax_args(case: Case):
    pytest.importorskip("jax")
    import jax.numpy as jnp

    floats = [jnp.asarray(a, dtype=jnp.float64) for a in case.floats.values()]
    labels = None if case.labels is None else jnp.asarray(case.labels, dtype=jnp.int64)
    return floats, labels


def _jax_first(fn, case: Case, reduction: str):
    """``(labels, *floats) -> (value, derivatives)``: jax.grad, or jax.vjp for "none"."""
    import jax

    argnums = tuple(range(len(case.floats)))

    def first(labels, *floats):
        f = functools.partial(_call, fn, case, labels=labels, reduction=reduction)

        def g(*a):
            return f(a)

        if reduction == "none":
            value, pullback = jax.vjp(g, *floats)
            return value, pullback(_cotangent(value.shape))
        return g(*floats), jax.grad(g, argnums=argnums)(*floats)

    return first


def _jax_hvp(fn, case: Case, reduction: str, labels, floats):
    """``d/d inputs sum_i <first_i, v_i>``: reverse over reverse."""
    import jax
    import jax.numpy as jnp

    first = _jax_first(fn, case, reduction)
    vs = _directions(case)

    def inner(*a):
        return sum(jnp.vdot(g, v) for g, v in zip(first(labels, *a)[1], vs, strict=True))

    return jax.grad(inner, argnums=tuple(range(len(floats))))(*floats)


def _compare_jax(case: Case, reduction: str, value, grads, labels, floats):
    ref_value, ref_grads = _jax_first(_ref_fn(case, "jax"), case, reduction)(labels, *floats)
    _assert_matches(value, ref_value, f"{case.id} {reduction}: value")
    assert len(grads) == len(case.names)
    for name, a, b in zip(case.names, grads, ref_grads, strict=True):
        _assert_matches(a, b, f"{case.id} {reduction}: d/d {name}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", SMOOTH + EDGE, ids=repr)
def test_jax_derivatives_match_the_plain_formula(case, reduction):
    floats, labels = _jax_args(case)
    value, grads = _jax_first(_loss_fn(case), case, reduction)(labels, *floats)
    _compare_jax(case, reduction, value, grads, labels, floats)


@pytest.mark.parametrize("case", SMOOTH + EDGE, ids=repr)
def test_jax_derivatives_under_jit_match_the_plain_formula(case):
    """All three reductions in one jitted function (one compilation per case);
    the labels are traced too, so their values cannot be read inside."""
    floats, labels = _jax_args(case)
    import jax

    firsts = {r: _jax_first(_loss_fn(case), case, r) for r in REDUCTIONS}
    results = jax.jit(lambda *a: {r: f(*a) for r, f in firsts.items()})(labels, *floats)
    for reduction, (value, grads) in results.items():
        _compare_jax(case, reduction, value, grads, labels, floats)


# torch checks every case's second derivatives; under JAX a few cases that
# touch every kind of argument (soft targets, class weights with smoothing and
# ignored rows, probabilities, pos_weight) keep the run short.
JAX_SECOND_ORDER = ("softmax", "sparse-smoothing-ignore", "categorical", "sigmoid-pos_weight")


@pytest.mark.parametrize("case", [c for c in SMOOTH if c.id in JAX_SECOND_ORDER], ids=repr)
def test_jax_second_derivatives_match_the_plain_formula(case):
    """Hessian-vector products (reverse over reverse) of the weighted mean, the
    reduction whose denominator depends on the weights."""
    reduction = "mean"
    floats, labels = _jax_args(case)
    got = _jax_hvp(_loss_fn(case), case, reduction, labels, floats)
    expected = _jax_hvp(_ref_fn(case, "jax"), case, reduction, labels, floats)
    for name, a, b in zip(case.names, got, expected, strict=True):
        _assert_matches(a, b, f"{case.id} {reduction}: d2/d {name}")


# --------------------------------------------------------------------------- the references


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sparse_reference_is_pytorchs_cross_entropy(reduction):
    """The class-weighted, smoothed soft-target form of the sparse reference is
    ``F.cross_entropy(weight=, ignore_index=, label_smoothing=)`` (whose mean
    divides by the summed weight of the counted labels, as the core's)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    (case,) = [c for c in SMOOTH if c.id == "sparse-smoothing-ignore"]
    floats, labels = _torch_args(case)
    x, _, w = floats
    opts = {"ignore_index": -1, "label_smoothing": 0.1}
    ours = REFS[case.loss](ops_for("torch"), x, labels, class_weight=w, reduction=reduction, **opts)
    theirs = F.cross_entropy(x, labels, weight=w.detach(), reduction=reduction, **opts)
    ct = torch.from_numpy(_cotangent(theirs.shape))
    (g_ours,) = torch.autograd.grad(ours, x, ct)
    (g_theirs,) = torch.autograd.grad(theirs, x, ct)
    _assert_matches(ours.detach(), theirs.detach(), "value")
    _assert_matches(g_ours, g_theirs, "d/d logits")


def test_pos_weight_reference_is_pytorchs_bce_with_logits():
    """The written-out ``pos_weight`` formula is ``F.binary_cross_entropy_with_logits``'s
    (which does not differentiate ``pos_weight`` itself), at +-1e4 too."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    (case,) = [c for c in EDGE if c.id == "sigmoid-extreme-hard-pos_weight"]
    floats, _ = _torch_args(case)
    x, t, _, q = floats
    ours = REFS[case.loss](ops_for("torch"), x, t, pos_weight=q, reduction="none")
    theirs = F.binary_cross_entropy_with_logits(x, t, pos_weight=q.detach(), reduction="none")
    ct = torch.from_numpy(_cotangent(theirs.shape))
    _assert_matches(ours.detach(), theirs.detach(), "value")
    for a, b, name in zip(
        torch.autograd.grad(ours, (x, t), ct),
        torch.autograd.grad(theirs, (x, t), ct),
        "xt",
        strict=True,
    ):
        _assert_matches(a, b, f"d/d {name}")


# --------------------------------------------------------------------------- the issue's examples


def test_issue_example_binary_cross_entropy_target_gradient():
    """Issue 7, verbatim: ``t.grad`` is PyTorch's ``[0.4236, -0.6931]``, not None."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as torch_F

    from losskit.compat import torch as F

    def grads(binary_cross_entropy):
        p = torch.tensor([0.3, 0.8], requires_grad=True)
        t = torch.tensor([0.2, 0.9], requires_grad=True)
        binary_cross_entropy(p, t).backward()
        return p.grad, t.grad

    p_grad, t_grad = grads(F.binary_cross_entropy)
    p_expected, t_expected = grads(torch_F.binary_cross_entropy)
    # d/dt mean(-(t log p + (1-t) log(1-p))) = -logit(p) / 2: the issue's numbers
    np.testing.assert_allclose(t_expected.numpy(), [0.4236, -0.6931], atol=1e-4)
    assert t_grad is not None, "compat.torch binary_cross_entropy cut the targets from autograd"
    np.testing.assert_allclose(t_grad.numpy(), t_expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(p_grad.numpy(), p_expected.numpy(), rtol=1e-6)


def test_issue_example_cross_entropy_soft_target_gradient():
    """Issue 7, verbatim: ``t.grad`` is PyTorch's ``[[2.4076, 1.4076, 0.4076]]``
    (``-log_softmax(x)``: the derivative at a target of 0 is not killed)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as torch_F

    from losskit.compat import torch as F

    def target_grad(cross_entropy):
        x = torch.tensor([[1.0, 2.0, 3.0]])
        t = torch.tensor([[0.0, 0.0, 1.0]], requires_grad=True)
        cross_entropy(x, t).backward()
        return t.grad

    expected = target_grad(torch_F.cross_entropy)
    np.testing.assert_allclose(expected.numpy(), [[2.4076, 1.4076, 0.4076]], atol=1e-4)
    got = target_grad(F.cross_entropy)
    assert got is not None, "compat.torch cross_entropy cut the targets from autograd"
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6)


def test_issue_example_through_the_core(autograd_xp):
    """The same example through ``lk.softmax_cross_entropy`` on torch and under jax.grad."""
    torch = pytest.importorskip("torch")
    x = np.array([[1.0, 2.0, 3.0]])
    expected = -torch.log_softmax(torch.from_numpy(x), -1).numpy()  # d/dt of -t . log_softmax
    t = np.array([[0.0, 0.0, 1.0]])
    if autograd_xp.name == "torch":
        tt = torch.from_numpy(t).requires_grad_(True)
        lk.softmax_cross_entropy(torch.from_numpy(x), tt).backward()
        got = tt.grad.numpy()
    else:
        import jax

        got = jax.grad(lambda tj: lk.softmax_cross_entropy(autograd_xp.asarray(x), tj))(
            autograd_xp.asarray(t)
        )
    _assert_matches(got, expected, "d/d targets")


# --------------------------------------------------------------------------- named properties


def _derivatives(backend: str, case: Case, reduction: str, fn=None):
    """(value, first derivatives) of ``fn`` (losskit's loss) as NumPy, on ``backend``."""
    fn = _loss_fn(case) if fn is None else fn
    if backend == "torch":
        floats, labels = _torch_args(case)
        return _torch_derivatives(fn, case, reduction, floats, labels)[:2]
    floats, labels = _jax_args(case)
    value, grads = _jax_first(fn, case, reduction)(labels, *floats)
    return np.asarray(value), [np.asarray(g) for g in grads]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ignored_rows_have_zero_gradient(autograd_xp, reduction):
    (case,) = [c for c in EDGE if c.id == "sparse-ignore-zero_weight"]
    _, grads = _derivatives(autograd_xp.name, case, reduction)
    ignored = case.labels == case.options["ignore_index"]
    assert ignored.any() and (~ignored).any()
    d_logits = dict(zip(case.names, grads, strict=True))["pred"]
    assert np.all(d_logits[ignored] == 0), d_logits
    assert np.all(np.isfinite(d_logits))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nothing_counted_gives_zero_and_zero_gradients(autograd_xp, reduction):
    """All rows ignored: the loss is 0 whatever the logits and weights, so every
    derivative is 0 (the mean's 0/0 must not leak NaN into any of them)."""
    rng = np.random.default_rng(5)
    case = Case(
        "sparse-all-ignored",
        "sparse_softmax_cross_entropy",
        {"pred": rng.normal(size=(4, 3)), "sample_weight": np.ones(4), "class_weight": np.ones(3)},
        labels=np.array([-100, -100, -100, -100]),
        options={"ignore_index": -100, "label_smoothing": 0.1},
    )
    value, grads = _derivatives(autograd_xp.name, case, reduction)
    assert np.all(value == 0), value
    for name, g in zip(case.names, grads, strict=True):
        assert np.all(g == 0), f"d/d {name} = {g}"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "case_id", ["categorical-clipped", "sparse-categorical-clipped", "binary-clipped"]
)
def test_clipped_probabilities_have_zero_derivative(autograd_xp, case_id, reduction):
    """A probability beyond the clip does not move the loss: its derivative is 0
    (torch.clamp's), while the targets there keep the finite -log(eps) slope."""
    (case,) = [c for c in EDGE if c.id == case_id]
    eps = case.options.get("eps", 1e-7)
    p = case.floats["pred"]
    beyond = (p < eps) | (p > 1 - eps)
    assert beyond.any()
    _, grads = _derivatives(autograd_xp.name, case, reduction)
    named = dict(zip(case.names, grads, strict=True))
    assert np.all(named["pred"][beyond] == 0), named["pred"]
    for name, g in named.items():
        assert np.all(np.isfinite(g)), f"d/d {name} = {g}"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "case_id", ["softmax-onehot", "categorical-onehot", "binary-hard", "softmax-extreme-onehot"]
)
def test_target_derivative_at_zero_and_one_is_not_cut(autograd_xp, case_id, reduction):
    """At a target of exactly 0 or 1 with a finite log-probability the derivative
    with respect to the target is the finite -log p (not 0), and it is nonzero
    wherever the example carries weight."""
    (case,) = [c for c in EDGE if c.id == case_id]
    _, grads = _derivatives(autograd_xp.name, case, reduction)
    _, expected = _derivatives(autograd_xp.name, case, reduction, _ref_fn(case, autograd_xp.name))
    d_t, d_t_ref = grads[1], expected[1]
    hard = (case.floats["truth"] == 0) | (case.floats["truth"] == 1)
    carries = d_t_ref != 0
    assert (hard & carries).any()
    _assert_matches(d_t[hard], d_t_ref[hard], "d/d targets at 0 and 1")


# --------------------------------------------------------------------------- -inf log-probabilities


@dataclass
class Masked:
    """A case whose log-probability is -inf where ``mask`` is set (a -inf logit, or
    a probability of exactly 0 or 1 with eps=0) and whose target there is 0."""

    case: Case
    mask: np.ndarray  # over the prediction's shape

    def __repr__(self) -> str:
        return self.case.id


def _keep(a, mask):
    """The entries of ``a`` outside ``mask`` (the same count per row), as (N, C - k).

    Integer indexing keeps the autograd graph: the derivative with respect to a
    masked entry of the full array comes back 0."""
    rows, cols = np.nonzero(~mask)
    if type(a).__module__.startswith("torch"):
        import torch

        rows, cols = torch.as_tensor(rows), torch.as_tensor(cols)
    return a[rows, cols].reshape(mask.shape[0], -1)


def _masked_reference(m: Masked, backend: str):
    """The loss of the problem with the -inf terms removed, on the full arrays."""
    ops = ops_for(backend)
    case = m.case

    def ref(pred, truth, *, reduction, sample_weight=None, class_weight=None, eps=None):
        if case.loss == "softmax_cross_entropy":
            per = ops.soft_xent(_keep(pred, m.mask), _keep(truth, m.mask))
            return reduce(ops, per, reduction, sample_weight)
        if case.loss == "sparse_softmax_cross_entropy":
            a, counts = sparse_targets(ops, truth, pred.shape[-1], pred, class_weight, None, 0.0)
            per = ops.soft_xent(_keep(pred, m.mask), _keep(a, m.mask))
            return reduce(ops, per, reduction, sample_weight, counts)
        if case.loss == "categorical_cross_entropy":
            per = -(_keep(truth, m.mask) * ops.log(_keep(pred, m.mask))).sum(-1)
            return reduce(ops, per, reduction, sample_weight)
        assert case.loss == "binary_cross_entropy", case.loss
        # the term whose log is -inf (log p at p = 0, log(1-p) at p = 1) is dropped:
        # its log is taken of 1 instead, so it adds 0 and passes no derivative
        log_p = ops.log(ops.where(pred == 0, ops.ones_like(pred), pred))
        log_not_p = ops.log(ops.where(pred == 1, ops.ones_like(pred), 1 - pred))
        per = -(truth * log_p + (1 - truth) * log_not_p)
        return reduce(ops, per, reduction, sample_weight)

    return ref


def _masked_cases() -> list[Masked]:
    inf = np.inf
    x = np.array([[1.0, -inf, 2.0, 0.5], [0.3, 1.2, -0.7, -inf], [-inf, 0.1, 0.4, 2.0]])
    t = np.array([[0.3, 0.0, 0.5, 0.2], [0.1, 0.6, 0.3, 0.0], [0.0, 0.25, 0.25, 0.5]])
    p = np.array([[0.2, 0.0, 0.5, 0.3], [0.1, 0.6, 0.3, 0.0], [0.0, 0.25, 0.25, 0.5]])
    s = np.array([1.0, 2.0, 0.5])
    p_bin = np.array([[0.0, 0.4, 1.0], [0.7, 0.0, 0.2], [1.0, 0.6, 0.3]])
    t_bin = np.array([[0.0, 0.5, 1.0], [0.3, 0.0, 0.9], [1.0, 0.2, 0.6]])
    return [
        Masked(
            Case(
                "softmax-inf-logit",
                "softmax_cross_entropy",
                {"pred": x, "truth": t, "sample_weight": s},
            ),
            np.isinf(x),
        ),
        Masked(
            Case(
                "sparse-inf-logit",
                "sparse_softmax_cross_entropy",
                {"pred": x, "sample_weight": s, "class_weight": np.array([0.5, 1.5, 2.0, 1.0])},
                labels=np.array([2, 1, 3]),
            ),
            np.isinf(x),
        ),
        Masked(
            Case(
                "categorical-zero-prob-eps0",
                "categorical_cross_entropy",
                {"pred": p, "truth": t, "sample_weight": s},
                options={"eps": 0.0},
            ),
            p == 0,
        ),
        Masked(
            Case(
                "binary-zero-one-prob-eps0",
                "binary_cross_entropy",
                {"pred": p_bin, "truth": t_bin, "sample_weight": s},
                options={"eps": 0.0},
            ),
            (p_bin == 0) | (p_bin == 1),
        ),
    ]


MASKED = _masked_cases()

# The derivative with respect to a target of 0 where the log-probability is
# -inf: 0, torch.xlogy's convention (d/dx xlogy(x, y) = xlogy(x != 0, y)).
# (optax.safe_softmax_cross_entropy keeps the value finite too but gives inf
# there: its custom JVP multiplies the labels' tangent by log_softmax.)
MASKED_TARGET_DERIVATIVE = 0.0


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("masked", MASKED, ids=repr)
def test_inf_log_probability_with_zero_target(autograd_xp, masked, reduction):
    """The value is finite (the term counts 0), no derivative is NaN, the
    derivative with respect to the target there is 0, and every derivative
    equals that of the problem with the masked classes removed."""
    case = masked.case
    ref = _masked_reference(masked, autograd_xp.name)
    value, grads = _derivatives(autograd_xp.name, case, reduction)
    ref_value, ref_grads = _derivatives(autograd_xp.name, case, reduction, ref)
    assert np.all(np.isfinite(value)), value
    _assert_matches(value, ref_value, f"{case.id} {reduction}: value")
    named = dict(zip(case.names, grads, strict=True))
    for name, g in named.items():
        assert np.all(np.isfinite(g)), f"d/d {name} = {g}"
    if "truth" in named:
        assert np.all(named["truth"][masked.mask] == MASKED_TARGET_DERIVATIVE), named["truth"]
    for name, a, b in zip(case.names, grads, ref_grads, strict=True):
        _assert_matches(a, b, f"{case.id} {reduction}: d/d {name}")


@pytest.mark.parametrize("masked", MASKED, ids=repr)
def test_inf_log_probability_under_jit(masked):
    """The same under jax.jit, all three reductions in one compilation."""
    case = masked.case
    floats, labels = _jax_args(case)
    import jax

    firsts = {r: _jax_first(_loss_fn(case), case, r) for r in REDUCTIONS}
    results = jax.jit(lambda *a: {r: f(*a) for r, f in firsts.items()})(labels, *floats)
    ref = _masked_reference(masked, "jax")
    for reduction, (value, grads) in results.items():
        ref_value, ref_grads = _jax_first(ref, case, reduction)(labels, *floats)
        _assert_matches(value, ref_value, f"{case.id} {reduction}: value")
        for name, a, b in zip(case.names, grads, ref_grads, strict=True):
            _assert_matches(a, b, f"{case.id} {reduction}: d/d {name}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("masked", MASKED, ids=repr)
def test_inf_log_probability_second_derivatives(masked, reduction):
    """torch, second order: finite everywhere; along directions that leave the
    masked entries alone, equal to the masked-out problem's at every entry
    outside the mask (a mixed derivative with a masked entry is a convention)."""
    torch = pytest.importorskip("torch")
    case = masked.case
    floats, labels = _torch_args(case)
    mask = torch.from_numpy(masked.mask)

    def hvp(fn):
        out = _call(fn, case, floats, labels, reduction)
        ct = torch.ones_like(out) if out.ndim == 0 else torch.from_numpy(_cotangent(out.shape))
        first = torch.autograd.grad(out, floats, ct, create_graph=True)
        vs = [torch.from_numpy(v) for v in _directions(case)]
        vs = [v.masked_fill(mask, 0.0) if v.shape == mask.shape else v for v in vs]
        inner = sum((g * v).sum() for g, v in zip(first, vs, strict=True))
        second = torch.autograd.grad(inner, floats, allow_unused=True)
        return [
            torch.zeros_like(a) if g is None else g.detach()
            for a, g in zip(floats, second, strict=True)
        ]

    got = hvp(_loss_fn(case))
    expected = hvp(_masked_reference(masked, "torch"))
    for name, a, b in zip(case.names, got, expected, strict=True):
        assert torch.isfinite(a).all(), f"d2/d {name} = {a}"
        if a.shape == mask.shape and name in ("pred", "truth"):
            a, b = a[~mask], b[~mask]
        _assert_matches(a, b, f"{case.id} {reduction}: d2/d {name}")


# --------------------------------------------------------------------------- activations


ACTIVATIONS = [
    ("softmax", {"axis": -1}),
    ("softmax", {"axis": 0}),
    ("log_softmax", {"axis": -1}),
    ("log_softmax", {"axis": 0}),
    ("logsumexp", {"axis": -1}),
    ("logsumexp", {"axis": 0, "keepdims": True}),
    ("sigmoid", {}),
    ("log_sigmoid", {}),
]
ACT_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in ACTIVATIONS]


def _native_activation(backend: str, name: str, kw: dict):
    """The framework's own function of the same definition."""
    axis = kw.get("axis", -1)
    if backend == "torch":
        import torch
        import torch.nn.functional as F

        return {
            "softmax": lambda x: torch.softmax(x, axis),
            "log_softmax": lambda x: torch.log_softmax(x, axis),
            "logsumexp": lambda x: torch.logsumexp(x, axis, keepdim=kw.get("keepdims", False)),
            "sigmoid": torch.sigmoid,
            "log_sigmoid": F.logsigmoid,
        }[name]
    import jax

    return {
        "softmax": lambda x: jax.nn.softmax(x, axis=axis),
        "log_softmax": lambda x: jax.nn.log_softmax(x, axis=axis),
        "logsumexp": lambda x: jax.nn.logsumexp(x, axis=axis, keepdims=kw.get("keepdims", False)),
        "sigmoid": jax.nn.sigmoid,
        "log_sigmoid": jax.nn.log_sigmoid,
    }[name]


ACT_INPUTS = {
    "normal": np.random.default_rng(3).normal(size=(3, 4)) * 2,
    "extreme": np.array([[1e4, -1e4, 0.0, 1.0], [-1e4, -1e4, 2.0, 1e4], [0.5, 1e4, -3.0, -1e4]]),
    # a -inf entry as a mask (softmax family only): its probability is 0, every
    # derivative finite
    "masked": np.array(
        [[1.0, -np.inf, 0.0, 2.0], [-np.inf, 0.3, -np.inf, 1.0], [0.5, 2.0, -1.0, -np.inf]]
    ),
}


@pytest.mark.parametrize(("name", "kw"), ACTIVATIONS, ids=ACT_IDS)
def test_torch_activation_gradcheck(name, kw):
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(ACT_INPUTS["normal"]).requires_grad_(True)
    fn = functools.partial(getattr(lk, name), **kw)
    assert torch.autograd.gradcheck(fn, (x,), eps=FD_EPS)
    assert torch.autograd.gradgradcheck(fn, (x,), eps=FD_EPS)


# -inf is a mask for the softmax family only
ACT_PARAMS = [
    pytest.param(name, kw, inputs, id=f"{act_id}-{inputs}")
    for (name, kw), act_id in zip(ACTIVATIONS, ACT_IDS, strict=True)
    for inputs in ACT_INPUTS
    if not (inputs == "masked" and name in ("sigmoid", "log_sigmoid"))
]


@pytest.mark.parametrize(("name", "kw", "inputs"), ACT_PARAMS)
def test_activation_vjp_matches_the_framework(autograd_xp, name, kw, inputs):
    x_np = ACT_INPUTS[inputs]
    ours = functools.partial(getattr(lk, name), **kw)
    native = _native_activation(autograd_xp.name, name, kw)
    results = []
    for fn in (ours, native):
        if autograd_xp.name == "torch":
            import torch

            x = torch.from_numpy(x_np).requires_grad_(True)
            out = fn(x)
            (g,) = torch.autograd.grad(out, x, torch.from_numpy(_cotangent(out.shape)))
            results.append((out.detach().numpy(), g.numpy()))
        else:
            import jax

            out, pullback = jax.vjp(fn, autograd_xp.asarray(x_np))
            (g,) = pullback(_cotangent(out.shape))
            results.append((np.asarray(out), np.asarray(g)))
    expected = results[-1]
    for value, g in results[:-1]:
        finite = np.isfinite(expected[0])  # log_softmax is -inf at a mask, as it should be
        np.testing.assert_array_equal(value[~finite], expected[0][~finite])
        _assert_matches(value[finite], expected[0][finite], f"{name} value")
        _assert_matches(g, expected[1], f"{name} vjp")


# --------------------------------------------------------------------------- no stray warnings


def test_requires_grad_probabilities_warn_only_losskits_warning():
    """Unnormalised rows of a tensor that requires grad give losskit's warning
    alone: formatting it must not convert that tensor to a float, which makes
    PyTorch warn too (once per process, so warn-always is switched on here)."""
    torch = pytest.importorskip("torch")
    p = torch.tensor([[0.2, 0.3, 0.4]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    was = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lk.categorical_cross_entropy(p, t)
            lk.sparse_categorical_cross_entropy(p, torch.tensor([1]))
    finally:
        torch.set_warn_always(was)
    kinds = [(w.category.__name__, str(w.message)[:80]) for w in caught]
    assert [k for k, _ in kinds] == ["UnnormalizedProbabilitiesWarning"] * 2, kinds
