"""losskit.compat.torch's derivatives with respect to every floating argument, against torch.

Where PyTorch differentiates an argument (input, target, and the weights of the
soft cross-entropy and the regression losses) the adapter's first and second
derivatives are compared with PyTorch's own autograd through
``torch.nn.functional``.  Where PyTorch refuses ("not differentiable with
respect to argument 'weight'": class ids, the binary losses) the reference is
torch autograd on the plain formula, whose value is first checked against
PyTorch's function.  ``gradcheck``/``gradgradcheck`` check the adapter against
finite differences of itself, and JAX's ``grad`` gives the same numbers.
Everything in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from losskit.compat import torch as lkF

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(20270107)


def t64(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def leaves(args):
    """Fresh leaf copies; floating tensors require grad."""
    out = {}
    for k, a in args.items():
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            a = a.detach().clone().requires_grad_(True)
        out[k] = a
    return out


def grads(fn, args, wrt, create_graph=False):
    """(value, {name: d sum(value) / d name}) by torch autograd; ``args`` by name."""
    args = leaves(args)
    value = fn(**args)
    found = torch.autograd.grad(
        value.sum(), [args[k] for k in wrt], create_graph=create_graph, allow_unused=True
    )
    return value, dict(zip(wrt, found, strict=True)), args


def assert_grads(ours, theirs, rtol=1e-10, atol=1e-12):
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert ours[k] is not None, f"no gradient for {k}"
        np.testing.assert_allclose(
            ours[k].detach().numpy(), theirs[k].detach().numpy(), rtol=rtol, atol=atol, err_msg=k
        )


def compare(name, args, wrt, reference=None, **kwargs):
    """Value and gradients of compat ``name`` against ``reference`` (default: torch's)."""
    ref = reference or getattr(F, name)
    v_ref, g_ref, _ = grads(lambda **a: ref(**a, **kwargs), args, wrt)
    v, g, _ = grads(lambda **a: getattr(lkF, name)(**a, **kwargs), args, wrt)
    np.testing.assert_allclose(v.detach().numpy(), v_ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert_grads(g, g_ref)


def check_twice(name, args, wrt, **kwargs):
    """gradcheck and gradgradcheck of compat ``name`` with respect to ``wrt``."""
    names = list(args)
    fixed = {k: a for k, a in args.items() if k not in wrt}

    def fn(*inputs):
        return getattr(lkF, name)(**fixed, **dict(zip(wrt, inputs, strict=True)), **kwargs)

    inputs = tuple(args[k].detach().clone().requires_grad_(True) for k in wrt)
    assert torch.autograd.gradcheck(fn, inputs), names
    assert torch.autograd.gradgradcheck(fn, inputs), names


def hessian_vector(fn, args, wrt):
    """d/d(wrt) of sum(d sum(fn) / d wrt): the second derivatives autograd gives."""
    _, g, leaves_ = grads(fn, args, wrt, create_graph=True)
    total = sum(gi.sum() for gi in g.values())
    found = torch.autograd.grad(total, [leaves_[k] for k in wrt], allow_unused=True)
    return dict(zip(wrt, found, strict=True))


# --------------------------------------------------------------------------- binary_cross_entropy


def test_bce_issue_example():
    # The issue's example: torch's d/dt = log(1-p) - log(p), over 2 elements.
    p = torch.tensor([0.3, 0.8], requires_grad=True)
    t = torch.tensor([0.2, 0.9], requires_grad=True)
    lkF.binary_cross_entropy(p, t).backward()
    np.testing.assert_allclose(
        t.grad.numpy(), [math.log(0.7 / 0.3) / 2, math.log(0.2 / 0.8) / 2], rtol=1e-6
    )
    np.testing.assert_allclose(t.grad.numpy(), [0.4236, -0.6931], atol=1e-4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_gradients_wrt_input_and_target_at_the_edges(reduction):
    # p = 0 and 1 (where torch's d/dt is +inf and -inf, not clamped), p below
    # e^-100 (where the value's log is clamped at -100 but d/dt is 115.1 for
    # 1e-50), and p within 1e-12 of the edges (where d/dp's denominator is floored).
    p = t64([0.0, 1.0, 1e-50, 1e-13, 1 - 1e-13, 0.5, 0.3, 0.999, 1e-200, 0.0, 1.0, 0.7])
    t = t64([1.0, 0.0, 1.0, 0.3, 0.3, 0.5, 0.0, 1.0, 0.2, 0.0, 1.0, 0.6])
    compare(
        "binary_cross_entropy", {"input": p, "target": t}, ["input", "target"], reduction=reduction
    )
    # d mean / dt = -logit(p) / 12: +inf at p = 0, -inf at 1, 50 log(10) / 12 at 1e-50.
    _, g, _ = grads(lkF.binary_cross_entropy, {"input": p, "target": t}, ["target"])
    assert g["target"][0] == math.inf and g["target"][1] == -math.inf
    np.testing.assert_allclose(float(g["target"][2]) * 12, 50 * math.log(10), rtol=1e-12)


def test_bce_weight_gradient_is_the_elementwise_loss():
    # PyTorch refuses d/d weight; the loss is linear in it: d mean / d w = loss / n.
    p, t = t64(RNG.uniform(0.01, 0.99, (4, 3))), t64(RNG.random((4, 3)))
    w = t64(RNG.random((4, 3)) * 2 - 0.5)  # negative weights too, as PyTorch allows
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        grads(F.binary_cross_entropy, {"input": p, "target": t, "weight": w}, ["weight"])

    def plain(input, target, weight):
        return (F.binary_cross_entropy(input, target, reduction="none") * weight).mean()

    compare(
        "binary_cross_entropy",
        {"input": p, "target": t, "weight": w},
        ["input", "target", "weight"],
        reference=plain,
    )


def test_bce_second_derivatives_are_torchs():
    p = t64(RNG.uniform(0.02, 0.98, 8))
    t = t64(RNG.random(8))
    args = {"input": p, "target": t}
    ours = hessian_vector(lkF.binary_cross_entropy, args, ["input", "target"])
    theirs = hessian_vector(F.binary_cross_entropy, args, ["input", "target"])
    assert_grads(ours, theirs, rtol=1e-9)


def test_bce_gradcheck_and_gradgradcheck():
    p = t64(RNG.uniform(0.05, 0.95, (3, 2)))
    t = t64(RNG.uniform(0.05, 0.95, (3, 2)))
    w = t64(RNG.random((3, 2)) + 0.5)
    check_twice(
        "binary_cross_entropy",
        {"input": p, "target": t, "weight": w},
        ["input", "target", "weight"],
    )


def test_bce_gradient_of_input_alone_is_finite_at_the_edges():
    # With only p differentiated, the infinite d/dt at p = 0 must not leak into
    # d/dp (an infinite partial times a zero tangent would be NaN).
    p = t64([0.0, 1.0, 0.5])
    t = t64([1.0, 0.0, 0.5])
    _, g, _ = grads(lkF.binary_cross_entropy, {"input": p, "target": t}, ["input"])
    np.testing.assert_allclose(g["input"].numpy(), [-1e12 / 3, 1e12 / 3, 0.0], rtol=1e-6)


# --------------------------------------------------------------------------- cross_entropy


def test_cross_entropy_soft_issue_example():
    # d/dt_c = -log softmax(x)_c, also where t_c = 0: [2.4076, 1.4076, 0.4076].
    x = torch.tensor([[1.0, 2.0, 3.0]])
    t = torch.tensor([[0.0, 0.0, 1.0]], requires_grad=True)
    lkF.cross_entropy(x, t).backward()
    lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    np.testing.assert_allclose(t.grad.numpy(), [[lse - 1, lse - 2, lse - 3]], rtol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_soft_gradients(reduction, smoothing, weighted):
    # Soft and one-hot rows (targets of 0), classes on dim 1 of a 3-d input.
    x = t64(RNG.normal(size=(3, 4, 2)) * 3)
    t = torch.softmax(t64(RNG.normal(size=(3, 4, 2))), 1)
    t[0, :, 0] = t64([0.0, 0.0, 1.0, 0.0])
    args = {"input": x, "target": t}
    wrt = ["input", "target"]
    if weighted:
        args["weight"] = t64([0.5, 2.0, -1.0, 1.5])  # torch takes a negative weight
        wrt.append("weight")
    compare("cross_entropy", args, wrt, reduction=reduction, label_smoothing=smoothing)


def test_cross_entropy_soft_second_derivatives_and_gradgradcheck():
    x = t64(RNG.normal(size=(3, 4)))
    t = torch.softmax(t64(RNG.normal(size=(3, 4))), 1)
    w = t64([0.5, 2.0, 1.0, 1.5])
    args = {"input": x, "target": t, "weight": w}
    wrt = ["input", "target", "weight"]
    ours = hessian_vector(lambda **a: lkF.cross_entropy(**a, label_smoothing=0.1), args, wrt)
    theirs = hessian_vector(lambda **a: F.cross_entropy(**a, label_smoothing=0.1), args, wrt)
    assert_grads(ours, theirs)
    check_twice("cross_entropy", args, wrt, label_smoothing=0.1)


def test_cross_entropy_soft_target_gradient_under_a_masked_logit():
    # A logit of -inf (a mask) with target 0.  torch's value there is
    # 0 * -inf = NaN, and its d/dt is -log softmax = +inf; the core keeps the
    # finite loss of the other classes and takes that term, and its derivative
    # in the target, as 0 (torch.xlogy's convention; optax's safe softmax
    # cross-entropy says +inf).  Every other derivative is torch's.
    x = t64([[0.0, -math.inf, 1.0]])
    t = t64([[1.0, 0.0, 0.0]])
    _, g_ref, _ = grads(F.cross_entropy, {"input": x, "target": t}, ["input", "target"])
    v, g, _ = grads(lkF.cross_entropy, {"input": x, "target": t}, ["input", "target"])
    np.testing.assert_allclose(float(v.detach()), math.log(1 + math.e), rtol=1e-12)
    assert math.isinf(float(g_ref["target"][0, 1])), "torch's own derivative there is +inf"
    assert float(g["target"][0, 1]) == 0.0
    others = ([0, 0], [0, 2])  # the unmasked entries
    np.testing.assert_allclose(g["target"][others], g_ref["target"][others])
    np.testing.assert_allclose(g["input"], g_ref["input"])


def _ce_class_ids_plain(input, target, weight, label_smoothing=0.0, ignore_index=-100):
    """PyTorch's F.cross_entropy(weight=w, label_smoothing=ε) for class ids, written out:
    ((1-ε) sum_i w_yi (-log p_i,yi) + ε/C sum_i sum_c w_c (-log p_i,c)) / sum_i w_yi
    over the counted i (torch.nn.functional's _label_smoothing branch)."""
    lsm = torch.log_softmax(input, 1)
    counted = target != ignore_index
    safe = torch.where(counted, target, torch.zeros_like(target))
    wy = torch.where(counted, weight[safe], torch.zeros_like(weight[safe]))
    picked = -lsm.gather(1, safe[:, None])[:, 0] * wy
    smooth = -(lsm * weight).sum(1) * counted / input.shape[1]
    total = (1 - label_smoothing) * picked.sum() + label_smoothing * smooth.sum()
    return total / wy.sum()


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("ignored", [False, True])
def test_cross_entropy_class_weight_gradient(smoothing, ignored):
    # PyTorch refuses d/d weight for class ids; the mean is a ratio in the weights.
    x = t64(RNG.normal(size=(6, 4)) * 2)
    y = torch.tensor([0, 3, 1, 2, 3, 1])
    if ignored:
        y[[1, 4]] = -100
    w = t64([0.5, 2.0, 1.0, 3.0])
    args = {"input": x, "target": y, "weight": w}
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        grads(F.cross_entropy, args, ["weight"])
    plain = _ce_class_ids_plain
    ref = F.cross_entropy(x, y, weight=w, label_smoothing=smoothing)
    np.testing.assert_allclose(float(plain(x, y, w, smoothing)), float(ref), rtol=1e-12)
    compare("cross_entropy", args, ["input", "weight"], reference=plain, label_smoothing=smoothing)
    check_twice("cross_entropy", args, ["input", "weight"], label_smoothing=smoothing)


def test_nll_loss_weight_gradient():
    x = torch.log_softmax(t64(RNG.normal(size=(5, 4))), 1)
    y = torch.tensor([0, 3, -100, 2, 3])
    w = t64([0.5, 2.0, 1.0, -3.0])
    args = {"input": x, "target": y, "weight": w}
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        grads(F.nll_loss, args, ["weight"])

    def plain(input, target, weight):
        counted = target != -100
        safe = torch.where(counted, target, torch.zeros_like(target))
        wy = weight[safe] * counted
        return -(wy * input.gather(1, safe[:, None])[:, 0]).sum() / wy.sum()

    np.testing.assert_allclose(float(plain(x, y, w)), float(F.nll_loss(x, y, w)), rtol=1e-12)
    compare("nll_loss", args, ["input", "weight"], reference=plain)
    check_twice("nll_loss", args, ["input", "weight"])


# --------------------------------------------------------------------------- with logits


def _bce_logits_plain(input, target, weight, pos_weight):
    """torch's binary_cross_entropy_with_logits written out (its log-weight form)."""
    log_weight = 1 + (pos_weight - 1) * target
    softplus = torch.log1p(torch.exp(-input.abs())) + torch.clamp(-input, min=0)
    return ((1 - target) * input + log_weight * softplus) * weight


@pytest.mark.parametrize("pos_shape", [(), (3,), (4, 1)])
def test_bce_with_logits_gradients(pos_shape):
    x = t64(RNG.normal(size=(4, 3)) * 4)
    t = t64(RNG.random((4, 3)) * 1.4 - 0.2)  # outside [0, 1] too: torch takes it
    w = t64(RNG.random((4, 3)) - 0.2)
    q = t64(RNG.random(pos_shape) * 3)
    args = {"input": x, "target": t}
    compare("binary_cross_entropy_with_logits", args, ["input", "target"])
    args = {**args, "weight": w, "pos_weight": q}
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument"):
        grads(F.binary_cross_entropy_with_logits, args, ["weight", "pos_weight"])

    def plain(**a):
        return _bce_logits_plain(**a).mean()

    ref = F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=q)
    np.testing.assert_allclose(float(plain(**args)), float(ref), rtol=1e-12)
    wrt = ["input", "target", "weight", "pos_weight"]
    compare("binary_cross_entropy_with_logits", args, wrt, reference=plain)
    check_twice("binary_cross_entropy_with_logits", args, wrt)


# --------------------------------------------------------------------------- regression


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_gradients(name, reduction):
    x = t64(RNG.normal(size=(4, 3)))
    y = t64(RNG.normal(size=(4, 3)))
    w = t64(RNG.random((4, 3)) + 0.1)
    args = {"input": x, "target": y, "weight": w}
    compare(name, args, ["input", "target", "weight"], reduction=reduction)
    if name == "mse_loss":
        check_twice(name, args, ["input", "target", "weight"], reduction=reduction)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_regression_negative_weight_as_torch(name):
    # PyTorch takes a negative weight; the core would refuse it.
    x, y = t64(RNG.normal(size=(2, 3))), t64(RNG.normal(size=(2, 3)))
    w = t64([[1.0, -0.5, 2.0], [0.5, 1.0, -0.25]])
    compare(name, {"input": x, "target": y, "weight": w}, ["input", "target", "weight"])


# --------------------------------------------------------------------------- JAX


def test_jax_gradients_wrt_every_argument():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    p = np.array([0.0, 1.0, 1e-50, 0.3, 0.8])
    t = np.array([0.2, 0.9, 1.0, 0.0, 1.0])
    _, g_ref, _ = grads(F.binary_cross_entropy, {"input": t64(p), "target": t64(t)}, ["target"])
    g = jax.grad(lkF.binary_cross_entropy, argnums=(0, 1))(jnp.asarray(p), jnp.asarray(t))
    _, g_ref_p, _ = grads(F.binary_cross_entropy, {"input": t64(p), "target": t64(t)}, ["input"])
    np.testing.assert_allclose(np.asarray(g[0]), g_ref_p["input"].numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g[1]), g_ref["target"].numpy(), rtol=1e-12)

    # Second derivatives inside (0, 1), against torch's double backward.
    p2, t2 = RNG.uniform(0.05, 0.95, 6), RNG.random(6)
    hv = hessian_vector(F.binary_cross_entropy, {"input": t64(p2), "target": t64(t2)}, ["input"])

    def first(a):
        return jax.grad(lkF.binary_cross_entropy)(a, jnp.asarray(t2)).sum()

    np.testing.assert_allclose(
        np.asarray(jax.grad(first)(jnp.asarray(p2))), hv["input"].numpy(), rtol=1e-9
    )

    x = RNG.normal(size=(3, 4))
    soft = torch.softmax(t64(RNG.normal(size=(3, 4))), 1).numpy()
    soft[0] = [0.0, 1.0, 0.0, 0.0]
    w = np.array([0.5, 2.0, 1.0, 1.5])
    args = {"input": t64(x), "target": t64(soft), "weight": t64(w)}
    _, g_ref, _ = grads(F.cross_entropy, args, ["input", "target", "weight"])
    g = jax.grad(lkF.cross_entropy, argnums=(0, 1, 2))(*(jnp.asarray(a) for a in (x, soft, w)))
    for got, name in zip(g, ["input", "target", "weight"], strict=True):
        np.testing.assert_allclose(np.asarray(got), g_ref[name].numpy(), rtol=1e-10, atol=1e-12)


# torch.func's first forward-mode use imports a torch.jit.script'ed helper of torch's own.
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_bce_forward_mode_and_hessian_as_torch_func():
    # torch.func.jvp / hessian (forward over reverse) need the forward-mode rule too.
    p = t64(RNG.uniform(0.05, 0.95, 5))
    t = t64(RNG.random(5))
    ours = torch.func.hessian(lkF.binary_cross_entropy, argnums=(0, 1))(p, t)
    theirs = torch.func.hessian(F.binary_cross_entropy, argnums=(0, 1))(p, t)
    for row, ref_row in zip(ours, theirs, strict=True):
        for h, ref in zip(row, ref_row, strict=True):
            np.testing.assert_allclose(h.numpy(), ref.numpy(), rtol=1e-9, atol=1e-12)
    tangents = (t64(RNG.normal(size=5)), t64(RNG.normal(size=5)))
    _, jv = torch.func.jvp(lkF.binary_cross_entropy, (p, t), tangents)
    _, jv_ref = torch.func.jvp(F.binary_cross_entropy, (p, t), tangents)
    np.testing.assert_allclose(float(jv), float(jv_ref), rtol=1e-12)
