"""linear_cross_entropy: the chunked fused linear cross-entropy (issue 11).

References are independent of losskit: PyTorch in float64 on the full logits
``h @ W.T + b`` (``F.cross_entropy`` for the cross-entropy, ``torch.logsumexp``
for the z-loss, ``torch.tanh`` for the soft cap, autograd for the gradients).
Shapes are small and N is never a multiple of the chunk size.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import numpy as np
import pytest

import losskit as lk
from losskit.losses import large_vocab

torch = pytest.importorskip("torch")
F = torch.nn.functional
jax = pytest.importorskip("jax")
jnp = jax.numpy

N, D, V = 37, 6, 53
CHUNK = 8  # 37 = 4 * 8 + 5: the last chunk is short

OPTION_SETS: dict[str, dict[str, Any]] = {
    "plain": {},
    "bias": {"bias": True},
    "class_weight": {"class_weight": True},
    "ignore": {"ignore_index": -100},
    "smoothing": {"label_smoothing": 0.2},
    "z_loss": {"z_loss": 1e-2},
    "softcap": {"softcap": 2.5},
    "sample_weight": {"sample_weight": True},
    "all": {
        "bias": True,
        "class_weight": True,
        "ignore_index": -100,
        "label_smoothing": 0.1,
        "z_loss": 1e-3,
        "softcap": 4.0,
        "sample_weight": True,
    },
}


def make_case(seed: int = 0, n: int = N, d: int = D, v: int = V, scale: float = 1.0) -> dict:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, v, n)
    y[[1, 5]] = -100 if n > 5 else y[[1, 5]]
    return {
        "h": rng.standard_normal((n, d)) * scale,
        "W": rng.standard_normal((v, d)),
        "b": rng.standard_normal(v),
        "y": y,
        "y_all": rng.integers(0, v, n),
        "cw": rng.uniform(0.2, 2.0, v),
        "sw": rng.uniform(0.2, 2.0, n),
        "up": rng.standard_normal(n),
    }


def options_of(case: dict, spec: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """(labels, keyword options) for ``spec``; labels hold -100 only with ignore_index."""
    opts: dict[str, Any] = {}
    for k, val in spec.items():
        if k == "bias":
            opts["bias"] = case["b"]
        elif k == "class_weight":
            opts["class_weight"] = case["cw"]
        elif k == "sample_weight":
            opts["sample_weight"] = case["sw"]
        else:
            opts[k] = val
    y = case["y"] if "ignore_index" in spec else case["y_all"]
    return y, opts


def reference(
    h, W, y, *, reduction="mean", bias=None, class_weight=None, ignore_index=None,
    label_smoothing=0.0, z_loss=0.0, softcap=None, sample_weight=None, upstream=None,
):  # fmt: skip
    """(value, lse, zterm, d_h, d_W, d_b) in float64 from the full logits (torch autograd)."""
    th = torch.tensor(h, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    tb = None if bias is None else torch.tensor(bias, dtype=torch.float64, requires_grad=True)
    ty = torch.tensor(y)
    z = th @ tw.T
    if tb is not None:
        z = z + tb
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    ig = -100 if ignore_index is None else ignore_index
    cw = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float64)
    ce = F.cross_entropy(
        z, ty, weight=cw, ignore_index=ig, label_smoothing=label_smoothing, reduction="none"
    )
    counted = (ty != ig).double()
    lse = torch.logsumexp(z, dim=1)
    zr = z_loss * lse**2 * counted
    s = torch.ones(len(y), dtype=torch.float64)
    if sample_weight is not None:
        s = torch.tensor(sample_weight, dtype=torch.float64)
    if reduction == "none":
        value, zterm = s * (ce + zr), s * zr
    elif reduction == "sum":
        value, zterm = (s * (ce + zr)).sum(), (s * zr).sum()
    else:
        wy = counted if cw is None else cw[ty.clamp(min=0)] * counted
        d1, d2 = (s * wy).sum(), (s * counted).sum()
        zterm = (s * zr).sum() / d2 if d2 > 0 else torch.zeros(())
        value = ((s * ce).sum() / d1 if d1 > 0 else torch.zeros(())) + zterm
    up = torch.ones_like(value) if upstream is None else torch.tensor(upstream)
    (value * up).sum().backward()
    grads = [t.grad.numpy() if t is not None and t.grad is not None else None for t in (th, tw, tb)]
    if tb is None:
        grads[2] = None
    det = lambda t: t.detach().numpy()  # noqa: E731
    return det(value), det(lse), det(zterm), *grads


# --------------------------------------------------------------------------- the three backends


def run_numpy(h, W, y, opts, *, portable=False):
    vg = lk.value_and_grad(lk.linear_cross_entropy)
    if portable:
        with lk.portable():
            return vg(h, W, y, **opts)
    return vg(h, W, y, **opts)


def run_torch(h, W, y, opts, upstream=None):
    th = torch.tensor(h, requires_grad=True)
    tw = torch.tensor(W, requires_grad=True)
    topts = dict(opts)
    tb = None
    for k in ("bias", "class_weight", "sample_weight"):
        if k in topts:
            topts[k] = torch.tensor(topts[k], requires_grad=(k == "bias"))
    tb = topts.get("bias")
    value = lk.linear_cross_entropy(th, tw, torch.tensor(y), **topts)
    up = torch.ones_like(value) if upstream is None else torch.tensor(upstream)
    value.backward(up)
    return value.detach().numpy(), (
        th.grad.numpy(),
        tw.grad.numpy(),
        None if tb is None else tb.grad.numpy(),
    )


def run_jax(h, W, y, opts, upstream=None, jit=True):
    jopts = {
        k: (jnp.asarray(val) if isinstance(val, np.ndarray) else val) for k, val in opts.items()
    }
    b = jopts.pop("bias", None)
    up = None if upstream is None else jnp.asarray(upstream)

    def f(h, W, b):
        v = lk.linear_cross_entropy(h, W, jnp.asarray(y), bias=b, **jopts)
        return (v * up).sum() if up is not None else v

    argnums = (0, 1, 2) if b is not None else (0, 1)
    if jit == "inside":  # jax.grad(jax.jit(f)): the plan's arrays are outer tracers
        g = jax.value_and_grad(jax.jit(f), argnums=argnums)
    else:
        g = jax.value_and_grad(f, argnums=argnums)
        if jit:
            g = jax.jit(g)
    value, grads = g(jnp.asarray(h), jnp.asarray(W), b)
    grads = [np.asarray(x) for x in grads] + ([None] if b is None else [])
    return np.asarray(value), tuple(grads)


def assert_grads(got, want, rtol=1e-10, atol=1e-12):
    for g, w in zip(got, want, strict=True):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", list(OPTION_SETS))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("backend", ["numpy", "numpy_portable", "torch", "jax"])
def test_every_option_against_the_unchunked_formula(name, reduction, backend):
    case = make_case(1)
    y, opts = options_of(case, OPTION_SETS[name])
    ref = reference(case["h"], case["W"], y, reduction=reduction, **opts)
    opts = {**opts, "reduction": reduction, "chunk_size": CHUNK}
    if backend.startswith("numpy"):
        value, grads = run_numpy(case["h"], case["W"], y, opts, portable=backend.endswith("e"))
    elif backend == "torch":
        value, grads = run_torch(case["h"], case["W"], y, opts)
    else:
        value, grads = run_jax(case["h"], case["W"], y, opts)
    np.testing.assert_allclose(value, ref[0], rtol=1e-12)
    assert_grads(grads, ref[3:])


@pytest.mark.parametrize("name", ["plain", "all"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_jax_grad_of_a_jitted_loss(name, reduction):
    # the custom_vjp must not close over the labels, mask and class weights: under
    # jax.grad(jax.jit(...)) they are tracers of the outer trace
    case = make_case(1)
    y, opts = options_of(case, OPTION_SETS[name])
    ref = reference(case["h"], case["W"], y, reduction="sum", **opts)
    opts = {**opts, "reduction": reduction, "chunk_size": CHUNK}
    upstream = None if reduction == "mean" else np.ones(len(y))
    if reduction == "mean":
        ref = reference(case["h"], case["W"], y, reduction="mean", **opts_without(opts))
    value, grads = run_jax(case["h"], case["W"], y, opts, upstream=upstream, jit="inside")
    np.testing.assert_allclose(value, ref[0], rtol=1e-12)
    assert_grads(grads, ref[3:])


def opts_without(opts):
    return {k: v for k, v in opts.items() if k not in ("reduction", "chunk_size")}


@pytest.mark.parametrize("name", ["plain", "all"])
@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_reduction_none_with_random_upstream_gradients(name, backend):
    case = make_case(2)
    y, opts = options_of(case, OPTION_SETS[name])
    ref = reference(case["h"], case["W"], y, reduction="none", upstream=case["up"], **opts)
    ref_sum = reference(case["h"], case["W"], y, reduction="none", **opts)
    opts = {**opts, "reduction": "none", "chunk_size": CHUNK}
    if backend == "numpy":  # value_and_grad: the gradient of the sum of the values
        value, grads = run_numpy(case["h"], case["W"], y, opts)
        np.testing.assert_allclose(value, ref[0], rtol=1e-12)
        assert_grads(grads, ref_sum[3:])
        return
    runner = run_torch if backend == "torch" else run_jax
    value, grads = runner(case["h"], case["W"], y, opts, upstream=case["up"])
    if backend == "torch":
        np.testing.assert_allclose(value, ref[0], rtol=1e-12)
    else:
        np.testing.assert_allclose(value, np.sum(ref[0] * case["up"]), rtol=1e-12)
    assert_grads(grads, ref[3:])


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_mean_equals_torch_cross_entropy_on_the_logits(smoothing):
    case = make_case(3)
    h, W, b, y, cw = case["h"], case["W"], case["b"], case["y"], case["cw"]
    z = torch.tensor(h) @ torch.tensor(W).T + torch.tensor(b)
    want = F.cross_entropy(z, torch.tensor(y), weight=torch.tensor(cw), label_smoothing=smoothing)
    got = lk.linear_cross_entropy(
        h, W, y, bias=b, class_weight=cw, ignore_index=-100, label_smoothing=smoothing, chunk_size=7
    )
    np.testing.assert_allclose(got, want.item(), rtol=1e-12)
    got_t = lk.linear_cross_entropy(
        torch.tensor(h), torch.tensor(W), torch.tensor(y), bias=torch.tensor(b),
        class_weight=torch.tensor(cw), ignore_index=-100, label_smoothing=smoothing, chunk_size=7,
    )  # fmt: skip
    np.testing.assert_allclose(got_t.item(), want.item(), rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_return_aux_gives_the_z_loss_term_and_every_tokens_lse(backend):
    case = make_case(4)
    y, opts = options_of(case, OPTION_SETS["all"])
    ref = reference(case["h"], case["W"], y, **opts)
    mod: Any = {"numpy": np, "torch": torch, "jax": jnp}[backend]
    conv = (lambda a: torch.tensor(a)) if backend == "torch" else mod.asarray
    aopts = {k: (conv(v) if isinstance(v, np.ndarray) else v) for k, v in opts.items()}
    out = lk.linear_cross_entropy(
        conv(case["h"]), conv(case["W"]), conv(y), return_aux=True, chunk_size=CHUNK, **aopts
    )
    assert isinstance(out, lk.LinearCrossEntropyOutput)
    np.testing.assert_allclose(np.asarray(out.loss), ref[0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(out.z_loss), ref[2], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(out.lse), ref[1], rtol=1e-12)
    assert ref[2] > 0


def test_value_and_grad_returns_hidden_weight_and_bias_gradients():
    case = make_case(5)
    h = case["h"].reshape(1, N, D)  # any leading shape: labels follow it
    y = case["y_all"].reshape(1, N)
    value, (dh, dw, db) = lk.value_and_grad(lk.linear_cross_entropy)(
        h, case["W"], y, bias=case["b"]
    )
    ref = reference(case["h"], case["W"], case["y_all"], bias=case["b"])
    assert dh.shape == (1, N, D) and dw.shape == (V, D) and db.shape == (V,)
    np.testing.assert_allclose(value, ref[0], rtol=1e-12)
    assert_grads((dh.reshape(N, D), dw, db), ref[3:])
    _, (_, _, none) = lk.value_and_grad(lk.linear_cross_entropy)(h, case["W"], y)
    assert none is None


# --------------------------------------------------------------------------- every floating input

# The derivatives in class_weight and sample_weight, with every option that enters them:
# smoothing (the column sums), z-loss (the second "mean" denominator), soft cap, ignore.
WEIGHT_OPTIONS = [
    pytest.param(eps, zl, cap, id=f"eps{eps}-z{zl}-cap{cap}")
    for eps in (0.0, 0.2)
    for zl in (0.0, 0.05)
    for cap in (None, 2.0)
]


def _weights_case(seed: int = 20):
    g = torch.Generator().manual_seed(seed)
    n, d, v = 9, 3, 6
    dt = torch.float64
    leaves = [
        torch.randn(n, d, generator=g, dtype=dt),
        torch.randn(v, d, generator=g, dtype=dt),
        torch.randn(v, generator=g, dtype=dt),
        torch.rand(v, generator=g, dtype=dt) + 0.3,  # class weights
        torch.rand(n, generator=g, dtype=dt) + 0.3,  # sample weights
    ]
    y = torch.randint(0, v, (n,), generator=g)
    y[2] = -100
    return [t.requires_grad_() for t in leaves], y


def _loss_of_every_input(y, reduction, eps, zl, cap):
    def f(h, W, b, cw, sw):
        return lk.linear_cross_entropy(
            h, W, y, bias=b, class_weight=cw, sample_weight=sw, ignore_index=-100,
            label_smoothing=eps, z_loss=zl, softcap=cap, reduction=reduction, chunk_size=4,
        )  # fmt: skip

    return f


@pytest.mark.parametrize("portable", [False, True], ids=["kernel", "portable"])
@pytest.mark.parametrize(("eps", "zl", "cap"), WEIGHT_OPTIONS)
def test_torch_gradcheck_of_every_floating_input_reduction_none(eps, zl, cap, portable):
    # gradcheck backpropagates several upstream vectors through one graph (retain_graph):
    # "none" recomputes in backward, so that works
    leaves, y = _weights_case()
    f = _loss_of_every_input(y, "none", eps, zl, cap)
    with lk.portable() if portable else contextlib.nullcontext():
        assert torch.autograd.gradcheck(f, leaves)


@pytest.mark.parametrize("portable", [False, True], ids=["kernel", "portable"])
@pytest.mark.parametrize(("eps", "zl", "cap"), WEIGHT_OPTIONS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_torch_derivatives_of_every_floating_input_mean_and_sum(reduction, eps, zl, cap, portable):
    """gradcheck's fast mode by hand (one backward per loss: the mean/sum gradients are
    scaled in place): for each input, central differences along random directions u
    equal <grad, u>. "mean" divides the cross-entropy by Σ s w_y and the z-loss by Σ s."""
    leaves, y = _weights_case()
    f = _loss_of_every_input(y, reduction, eps, zl, cap)
    with lk.portable() if portable else contextlib.nullcontext():
        grads = torch.autograd.grad(f(*leaves), leaves)
        gen = torch.Generator().manual_seed(1)
        step = 1e-6
        for k, (x, gx) in enumerate(zip(leaves, grads, strict=True)):
            assert gx.abs().max() > 0
            for _ in range(2):
                u = torch.randn(x.shape, generator=gen, dtype=x.dtype)
                with torch.no_grad():
                    plus = [t + step * u if i == k else t for i, t in enumerate(leaves)]
                    minus = [t - step * u if i == k else t for i, t in enumerate(leaves)]
                    fd = (f(*plus) - f(*minus)) / (2 * step)
                np.testing.assert_allclose((gx * u).sum().item(), fd.item(), rtol=1e-7, atol=1e-9)


def _jax_unchunked(h, W, b, cw, sw, y, reduction, eps, zl, cap, up):
    """The loss on the full logits in jax.numpy (differentiated by jax.grad)."""
    v = W.shape[0]
    z = h @ W.T + b
    if cap:
        z = cap * jnp.tanh(z / cap)
    lse = jax.scipy.special.logsumexp(z, axis=1)
    cnt = y != -100
    ys = jnp.where(cnt, y, 0)
    zy = jnp.take_along_axis(z, ys[:, None], axis=1)[:, 0]
    ce = (1 - eps) * cw[ys] * (lse - zy) + eps / v * (cw.sum() * lse - (cw * z).sum(1))
    ce, zr = jnp.where(cnt, ce, 0.0), jnp.where(cnt, zl * lse**2, 0.0)
    if reduction == "none":
        return (sw * (ce + zr) * up).sum()
    if reduction == "sum":
        return (sw * (ce + zr)).sum()
    return (sw * ce).sum() / (sw * cw[ys] * cnt).sum() + (sw * zr).sum() / (sw * cnt).sum()


# (the row math is the portable code the torch tests above run with every option; each
# JAX case compiles a scan, seconds apiece: the plain and the all-options cases)
@pytest.mark.parametrize(("eps", "zl", "cap"), [WEIGHT_OPTIONS[0], WEIGHT_OPTIONS[-1]])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_jax_grad_of_every_floating_input_against_the_unchunked_formula(reduction, eps, zl, cap):
    leaves, y = _weights_case()
    args = [jnp.asarray(t.detach().numpy()) for t in leaves]
    yj = jnp.asarray(y.numpy())
    up = jnp.asarray(np.random.default_rng(3).standard_normal(len(y)))

    def ours(h, W, b, cw, sw):
        out = lk.linear_cross_entropy(
            h, W, yj, bias=b, class_weight=cw, sample_weight=sw, ignore_index=-100,
            label_smoothing=eps, z_loss=zl, softcap=cap, reduction=reduction, chunk_size=4,
        )  # fmt: skip
        return (out * up).sum() if reduction == "none" else out

    def ref(h, W, b, cw, sw):
        return _jax_unchunked(h, W, b, cw, sw, yj, reduction, eps, zl, cap, up)

    argnums = (0, 1, 2, 3, 4)
    got = jax.jit(jax.grad(ours, argnums=argnums))(*args)
    want = jax.grad(ref, argnums=argnums)(*args)
    np.testing.assert_allclose(float(jax.jit(ours)(*args)), float(ref(*args)), rtol=1e-12)
    for a, r in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(r), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- precision


def test_float32_gradients_within_1e5_of_unchunked_float64():
    case = make_case(6, n=300, d=32, v=2000)
    h32, w32 = case["h"].astype(np.float32), (case["W"] * 0.3).astype(np.float32)
    y = case["y_all"]
    ref = reference(h32.astype(np.float64), w32.astype(np.float64), y, z_loss=1e-4)
    value, grads = lk.value_and_grad(lk.linear_cross_entropy)(
        h32, w32, y, z_loss=1e-4, chunk_size=64
    )
    assert value.dtype == np.float32 and grads[0].dtype == np.float32
    np.testing.assert_allclose(value, ref[0], rtol=1e-6)
    for g, r in zip(grads[:2], ref[3:5], strict=True):
        assert np.abs(g - r).max() <= 1e-5 * np.abs(r).max()
    _, tg = run_torch(h32, w32, y, {"z_loss": 1e-4, "chunk_size": 64})
    for g, r in zip(tg[:2], ref[3:5], strict=True):
        assert np.abs(g - r).max() <= 1e-5 * np.abs(r).max()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_loss_within_1e3_of_float64_at_64_chunks(dtype):
    case = make_case(7, n=640, d=16, v=500)
    tdt = getattr(torch, dtype)
    th = torch.tensor(case["h"]).to(tdt).requires_grad_()
    tw = (torch.tensor(case["W"]) * 0.5).to(tdt).requires_grad_()
    y = case["y_all"]
    # the reference sees the same rounded inputs, in float64
    ref = reference(th.detach().double().numpy(), tw.detach().double().numpy(), y)
    value = lk.linear_cross_entropy(th, tw, torch.tensor(y), chunk_size=10)  # 64 chunks
    assert value.dtype == torch.float32
    assert abs(value.item() - ref[0]) <= 1e-3 * abs(ref[0])
    value.backward()
    assert th.grad.dtype == tdt and tw.grad.dtype == tdt
    scale = np.abs(ref[4]).max()
    assert np.abs(tw.grad.double().numpy() - ref[4]).max() <= 2e-2 * scale
    if dtype == "float16":  # NumPy float16 too
        nh, nw = th.detach().numpy(), tw.detach().numpy()
        np_value = lk.linear_cross_entropy(nh, nw, y, chunk_size=10)
        assert np_value.dtype == np.float32
        assert abs(float(np_value) - ref[0]) <= 1e-3 * abs(ref[0])


def test_large_logits_and_softcap_stay_finite():
    case = make_case(8, scale=300.0)  # logits of a few thousand
    y, opts = options_of(case, {"ignore_index": -100})
    for cap in (None, 30.0):
        ref = reference(case["h"], case["W"], y, softcap=cap, **opts)
        value, grads = run_numpy(case["h"], case["W"], y, {**opts, "softcap": cap, "chunk_size": 5})
        np.testing.assert_allclose(value, ref[0], rtol=1e-12)
        assert_grads(grads, ref[3:], rtol=1e-9, atol=1e-12)
        h32, w32 = case["h"].astype(np.float32), case["W"].astype(np.float32)
        v32, g32 = run_numpy(h32, w32, y, {**opts, "softcap": cap, "chunk_size": 5})
        assert np.isfinite(v32) and all(np.isfinite(g).all() for g in g32[:2])
        np.testing.assert_allclose(v32, ref[0], rtol=1e-4)


# --------------------------------------------------------------------------- torch autograd


def test_gradient_accumulation_across_micro_batches():
    case = make_case(9, n=40)
    h, W, b, y = case["h"], case["W"], case["b"], case["y"]
    tw = torch.tensor(W, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    hs = [torch.tensor(h[i : i + 10], requires_grad=True) for i in range(0, 40, 10)]
    for k, hk in enumerate(hs):
        loss = lk.linear_cross_entropy(
            hk, tw, torch.tensor(y[10 * k : 10 * k + 10]), bias=tb, ignore_index=-100,
            reduction="sum", chunk_size=3,
        )  # fmt: skip
        (0.5 * loss).backward()  # an upstream gradient other than 1
    ref = reference(h, W, y, bias=b, ignore_index=-100, reduction="sum")
    np.testing.assert_allclose(tw.grad.numpy(), 0.5 * ref[4], rtol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), 0.5 * ref[5], rtol=1e-12)
    np.testing.assert_allclose(torch.cat([x.grad for x in hs]).numpy(), 0.5 * ref[3], rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_second_backward_raises_a_clear_error(reduction):
    case = make_case(10)
    args = (torch.tensor(case["W"]), torch.tensor(case["y_all"]))
    th = torch.tensor(case["h"], requires_grad=True)
    loss = lk.linear_cross_entropy(th, *args, reduction=reduction)
    loss.backward(retain_graph=True)
    # the gradients were computed in forward and scaled in place: none are left
    with pytest.raises(RuntimeError, match=r"second time .* scaled in place .* reduction='none'"):
        loss.backward()
    loss = lk.linear_cross_entropy(th, *args, reduction=reduction)
    loss.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        loss.backward()  # without retain_graph: torch's own message


def test_reduction_none_backward_twice_with_retain_graph():
    # "none" recomputes in backward: every backward through a retained graph works
    case = make_case(10)
    y, opts = options_of(case, OPTION_SETS["all"])
    th, tw = (
        torch.tensor(case["h"], requires_grad=True),
        torch.tensor(case["W"], requires_grad=True),
    )
    topts = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in opts.items()}
    loss = lk.linear_cross_entropy(
        th, tw, torch.tensor(y), reduction="none", chunk_size=CHUNK, **topts
    )
    up2 = np.random.default_rng(1).standard_normal(len(y))
    loss.backward(torch.tensor(case["up"]), retain_graph=True)
    loss.backward(torch.tensor(up2), retain_graph=True)
    ref = reference(case["h"], case["W"], y, reduction="none", upstream=case["up"] + up2, **opts)
    np.testing.assert_allclose(th.grad.numpy(), ref[3], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tw.grad.numpy(), ref[4], rtol=1e-10, atol=1e-12)
    loss.backward(torch.tensor(up2))  # the last one frees the graph
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        loss.backward(torch.tensor(up2))


def test_the_weight_alone_may_require_grad_and_no_grad_mode_works():
    case = make_case(11)
    tw = torch.tensor(case["W"], requires_grad=True)
    loss = lk.linear_cross_entropy(torch.tensor(case["h"]), tw, torch.tensor(case["y_all"]))
    loss.backward()
    ref = reference(case["h"], case["W"], case["y_all"])
    np.testing.assert_allclose(tw.grad.numpy(), ref[4], rtol=1e-12)
    with torch.no_grad():
        v = lk.linear_cross_entropy(torch.tensor(case["h"]), tw, torch.tensor(case["y_all"]))
    assert not v.requires_grad
    np.testing.assert_allclose(v.item(), ref[0], rtol=1e-12)


# dynamo itself reads .grad of the non-leaf hidden state when it breaks the graph at the
# op (torch.compiler.disable); the warning is torch's, the numbers are checked below.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_torch_compile_of_a_model_around_it_stays_correct():
    torch.manual_seed(0)
    head = torch.nn.Linear(6, 40, bias=False).double()
    body = torch.nn.Linear(5, 6).double()
    x = torch.randn(23, 5, dtype=torch.float64)
    y = torch.randint(0, 40, (23,))

    def step(x, y):
        return lk.linear_cross_entropy(body(x), head.weight, y, z_loss=1e-3, chunk_size=4)

    compiled = torch.compile(step, backend="eager")
    got = compiled(x, y)
    got.backward()
    g_compiled = (body.weight.grad.clone(), head.weight.grad.clone())
    body.zero_grad(), head.zero_grad()
    z = body(x) @ head.weight.T
    want = F.cross_entropy(z, y) + 1e-3 * (torch.logsumexp(z, 1) ** 2).mean()
    want.backward()
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-12)
    np.testing.assert_allclose(g_compiled[0], body.weight.grad, rtol=1e-10)
    np.testing.assert_allclose(g_compiled[1], head.weight.grad, rtol=1e-10)


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_nothing_counted_gives_zero_loss_and_zero_gradients(backend):
    case = make_case(12, n=9)
    y = np.full(9, -100)
    opts = {"ignore_index": -100, "z_loss": 1e-2, "chunk_size": 4, "class_weight": case["cw"]}
    runner = {"numpy": run_numpy, "torch": run_torch, "jax": run_jax}[backend]
    value, grads = runner(case["h"], case["W"], y, opts)
    assert float(value) == 0.0
    assert all(not np.any(g) for g in grads[:2])


def test_empty_batch_and_chunk_rows():
    h = np.zeros((0, 4))
    value, (dh, dw, db) = lk.value_and_grad(lk.linear_cross_entropy)(
        h, np.ones((7, 4)), np.zeros(0, int)
    )
    assert float(value) == 0.0 and dh.shape == (0, 4) and not dw.any() and db is None
    # a budget of 64 MiB of float32 logits at V = 128256: 130 rows, balanced over 4096
    assert large_vocab.chunk_rows(4096, 128256, 4, None, 2**26) == 128
    assert large_vocab.chunk_rows(1000, 32000, 4, None, None) == 250  # 40 MiB: 327 rows: 4 chunks
    assert large_vocab.chunk_rows(1000, 32000, 4, 7, 2**26) == 7
    assert large_vocab.chunk_rows(96, 10**9, 4, None, 1) == large_vocab.MIN_CHUNK_ROWS


def test_jax_labels_out_of_range_under_jit_give_nan():
    case = make_case(13, n=10)
    y = case["y_all"].copy()
    y[3] = V + 5

    @jax.jit
    def f(h, W, y):
        return lk.linear_cross_entropy(h, W, y, chunk_size=4)

    assert math.isnan(float(f(jnp.asarray(case["h"]), jnp.asarray(case["W"]), jnp.asarray(y))))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"reduction": "avg"}, ValueError, "`reduction` must be one of"),
        ({"label_smoothing": 1.5}, ValueError, r"`label_smoothing` must be a number in \[0, 1\]"),
        ({"z_loss": -1.0}, ValueError, "`z_loss` must be a finite number >= 0; got -1.0"),
        ({"softcap": 0.0}, ValueError, "`softcap` must be None or a finite number > 0; got 0.0"),
        ({"softcap": "30"}, TypeError, "`softcap` must be None or a finite number > 0"),
        ({"chunk_size": 0}, ValueError, "`chunk_size` must be None or a positive int; got 0"),
        ({"chunk_size": 2.5}, TypeError, "`chunk_size` must be None or a positive int"),
        ({"memory_budget": -1}, ValueError, "`memory_budget` must be None or a positive int"),
        ({"bias": np.zeros(3)}, ValueError, r"`bias` must have shape \(5,\); got \(3,\)"),
        (
            {"class_weight": np.ones(4)},
            ValueError,
            r"`class_weight` must have one weight per class",
        ),
        ({"class_weight": -np.ones(5)}, ValueError, "`class_weight` must be"),
        ({"sample_weight": np.ones(2)}, ValueError, "`sample_weight` must have the shape of"),
        ({"ignore_index": 1.5}, TypeError, "`ignore_index` must be an int or None"),
    ],
)
def test_validation_messages(kwargs, error, match):
    h, W, y = np.zeros((3, 2)), np.zeros((5, 2)), np.array([0, 1, 4])
    with pytest.raises(error, match=match):
        lk.linear_cross_entropy(h, W, y, **kwargs)


def test_validation_of_shapes_dtypes_and_labels():
    h, W, y = np.zeros((3, 2)), np.zeros((5, 2)), np.array([0, 1, 4])
    with pytest.raises(ValueError, match=r"`weight` must have shape \(V, 2\)"):
        lk.linear_cross_entropy(h, np.zeros((5, 3)), y)
    with pytest.raises(TypeError, match="`weight` must have the dtype of `hidden`"):
        lk.linear_cross_entropy(h, W.astype(np.float32), y)
    with pytest.raises(ValueError, match=r"`labels` must have the shape of `hidden` without"):
        lk.linear_cross_entropy(h, W, np.array([0, 1]))
    with pytest.raises(TypeError, match="`labels` must be an integer array"):
        lk.linear_cross_entropy(h, W, y.astype(float))
    with pytest.raises(ValueError, match=r"`labels` must be in \[0, 5\); got 7 at position \(1,\)"):
        lk.linear_cross_entropy(h, W, np.array([0, 7, 1]))
    with pytest.raises(TypeError, match="`hidden` must be a real floating-point array"):
        lk.linear_cross_entropy(np.zeros((3, 2), int), W, y)
    with pytest.raises(ValueError, match="`grad_out` is not supported"):
        lk.value_and_grad(lk.linear_cross_entropy)(h, W, y, grad_out=np.zeros((3, 2)))


def test_numpy_memory_stays_within_a_few_chunks():
    """NumPy reports its allocations to tracemalloc: the peak above the returned
    gradients is a few chunks of logits, not the N x V matrix (128 MiB here)."""
    import tracemalloc

    n, d, v, rows = 2048, 8, 8192, 128
    rng = np.random.default_rng(14)
    h, w = rng.standard_normal((n, d)), rng.standard_normal((v, d))
    y = rng.integers(0, v, n)
    vg = lk.value_and_grad(lk.linear_cross_entropy)
    vg(h[:300], w, y[:300], chunk_size=rows)  # compile outside the measurement
    tracemalloc.start()
    try:
        value, grads = vg(h, w, y, chunk_size=rows, z_loss=1e-4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    chunk = rows * v * 8
    returned = sum(g.nbytes for g in grads if g is not None)
    assert peak - returned <= 2 * chunk  # one chunk of logits plus O(N + V) vectors
    ref = reference(h, w, y, z_loss=1e-4)
    np.testing.assert_allclose(value, ref[0], rtol=1e-12)
    assert_grads(grads, ref[3:])


def test_torch_hidden_alone_may_require_grad():
    case = make_case(15)
    th = torch.tensor(case["h"], requires_grad=True)
    tw = torch.tensor(case["W"])
    loss = lk.linear_cross_entropy(th, tw, torch.tensor(case["y"]), ignore_index=-100)
    loss.backward()
    ref = reference(case["h"], case["W"], case["y"], ignore_index=-100)
    np.testing.assert_allclose(th.grad.numpy(), ref[3], rtol=1e-12)
    assert tw.grad is None


@pytest.mark.parametrize("backend", ["numpy", "numpy_transposed_dh", "torch"])
def test_weight_gradient_in_vocabulary_blocks(backend, monkeypatch):
    # the smallest blocks (1024 classes): V = 2500 takes three, the last one short
    monkeypatch.setattr(large_vocab, "_PACK_BYTES", 1)
    if backend == "numpy_transposed_dh":  # the form of G W used above V = 65536
        monkeypatch.setattr(large_vocab, "_PLAIN_DH_MAX_V", 0)
    case = make_case(16, n=50, d=5, v=2500)
    y, opts = options_of(case, {"bias": True, "ignore_index": -100})
    ref = reference(case["h"], case["W"], y, **opts)
    runner = run_torch if backend == "torch" else run_numpy
    value, grads = runner(case["h"], case["W"], y, {**opts, "chunk_size": 16})
    np.testing.assert_allclose(value, ref[0], rtol=1e-12)
    assert_grads(grads, ref[3:])


# --------------------------------------------------------------------------- the fused chunk


@pytest.fixture
def fused(monkeypatch):
    """The NumPy path's fused chunk (``G W`` folded into the logits' pass) at every
    vocabulary size, in blocks of 16 classes (V = 53: three blocks and a short one);
    yields a list that counts the fused chunk loops run (so a test fails if the
    loss quietly took the three separate products)."""
    monkeypatch.setattr(large_vocab, "_FUSED_MIN_V", 1)
    monkeypatch.setattr(large_vocab._NumpyProducts, "fused_block", 16)
    calls: list[int] = []
    real = large_vocab._fused_chunks

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(large_vocab, "_fused_chunks", counted)
    return calls


FUSED_SETS = [k for k in OPTION_SETS if k not in ("softcap", "all")] + ["all_but_softcap"]


@pytest.mark.parametrize("name", FUSED_SETS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_fused_chunk_every_option_against_the_unchunked_formula(name, reduction, fused):
    case = make_case(21)
    spec = OPTION_SETS[name] if name in OPTION_SETS else dict(OPTION_SETS["all"])
    spec.pop("softcap", None)
    y, opts = options_of(case, spec)
    ref = reference(case["h"], case["W"], y, reduction=reduction, **opts)
    value, grads = run_numpy(
        case["h"], case["W"], y, {**opts, "reduction": reduction, "chunk_size": CHUNK}
    )
    assert fused, "the fused chunk loop did not run"
    np.testing.assert_allclose(value, ref[0], rtol=1e-12)
    assert_grads(grads, ref[3:])


def test_fused_chunk_not_taken_with_a_softcap_nor_for_the_class_weight_column_sums(fused):
    case = make_case(22)
    y, opts = options_of(case, {"softcap": 3.0})
    ref = reference(case["h"], case["W"], y, **opts)
    value, grads = run_numpy(case["h"], case["W"], y, {**opts, "chunk_size": CHUNK})
    assert not fused  # the cap's factor enters every product: the separate products
    np.testing.assert_allclose(value, ref[0], rtol=1e-12)
    assert_grads(grads, ref[3:])


def test_fused_chunk_float32_within_1e5_of_unchunked_float64(fused, monkeypatch):
    monkeypatch.setattr(large_vocab._NumpyProducts, "fused_block", 256)
    case = make_case(23, n=300, d=32, v=2000)
    h32, w32 = case["h"].astype(np.float32), (case["W"] * 0.3).astype(np.float32)
    y = case["y"]
    opts = {
        "z_loss": 1e-4,
        "label_smoothing": 0.1,
        "ignore_index": -100,
        "class_weight": case["cw"],
    }
    ref = reference(h32.astype(np.float64), w32.astype(np.float64), y, **opts)
    value, grads = lk.value_and_grad(lk.linear_cross_entropy)(h32, w32, y, chunk_size=64, **opts)
    assert fused and value.dtype == np.float32 and grads[0].dtype == np.float32
    np.testing.assert_allclose(value, ref[0], rtol=1e-6)
    for g, r in zip(grads[:2], ref[3:5], strict=True):
        assert np.abs(g - r).max() <= 1e-5 * np.abs(r).max()


@pytest.mark.parametrize("order", ["random", "rising"])
def test_fused_chunk_rescales_when_the_row_max_grows(order, fused):
    """Logits of a few thousand: a row's max found in a later block rescales what the
    earlier blocks accumulated by exp(m_old - m_new), down to exactly 0 ("rising": the
    classes sorted so that every block holds a larger max than the one before)."""
    case = make_case(24, scale=300.0)
    h, W = case["h"], case["W"]
    if order == "rising":  # every row's logits rise with the class: W's rows along h's mean
        W = np.outer(np.linspace(-1.0, 1.0, V), np.sign(h.sum(0))) + 0.01 * W
        h = np.abs(h) * np.sign(h.sum(0))
    y, opts = options_of(case, {"ignore_index": -100, "bias": True})
    ref = reference(h, W, y, **opts)
    value, grads = run_numpy(h, W, y, {**opts, "chunk_size": 5})
    np.testing.assert_allclose(value, ref[0], rtol=1e-12)
    assert_grads(grads, ref[3:], rtol=1e-9, atol=1e-12)
    h32, w32, b32 = h.astype(np.float32), W.astype(np.float32), opts["bias"].astype(np.float32)
    v32, g32 = run_numpy(h32, w32, y, {**opts, "bias": b32, "chunk_size": 5})
    assert np.isfinite(v32) and all(np.isfinite(g).all() for g in g32)
    np.testing.assert_allclose(v32, ref[0], rtol=1e-4)
    assert np.abs(g32[0] - ref[3]).max() <= 1e-4 * np.abs(ref[3]).max()
    assert len(fused) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_chunk_nan_rows_match_the_separate_products(dtype, monkeypatch):
    """A NaN hidden row gives the same NaN pattern fused as apart: its loss, its
    hidden-state gradient row and (through Gᵀ h) the whole weight gradient."""
    case = make_case(25)
    h = case["h"].astype(dtype)
    h[3] = np.nan
    W, y = case["W"].astype(dtype), case["y"]
    vg = lk.value_and_grad(lk.linear_cross_entropy)
    monkeypatch.setattr(large_vocab._NumpyProducts, "fused_block", 16)
    runs = []
    for fmin in (10**9, 1):
        monkeypatch.setattr(large_vocab, "_FUSED_MIN_V", fmin)
        runs.append(vg(h, W, y, ignore_index=-100, reduction="none", chunk_size=CHUNK))
    (v0, (dh0, dw0, _)), (v1, (dh1, dw1, _)) = runs
    assert np.isnan(v1[3]) and np.isnan(dh1[3]).all() and np.isnan(dw1).all()
    assert np.isnan(dw0).all()
    np.testing.assert_array_equal(np.isnan(v0), np.isnan(v1))
    np.testing.assert_array_equal(np.isnan(dh0), np.isnan(dh1))
    ok = ~np.isnan(dh0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert np.abs(dh1[ok] - dh0[ok]).max() <= tol * np.abs(dh0[ok]).max()


# --------------------------------------------------------------------------- the benchmark


def test_benchmark_table_ratios_and_memory_columns():
    from losskit import benchmark_linear as bl

    shape = [4, 2, 8]
    grads = 1.0  # MiB
    floor = {
        "numpy_full_s": 3.0,
        "numpy_chunked_s": 2.5,
        "torch_full_s": 2.0,
        "torch_chunked_s": 2.1,
        "numpy_s": 2.5,
        "torch_s": 2.0,
    }
    results = [
        {"method": "floor", "shape": shape, "seconds": 2.0, **floor},
        {"method": "losskit numpy", "shape": shape, "seconds": 2.75, "peak_mib": 51.0,
         "grads_mib": grads},
        {"method": "torch naive", "shape": shape, "seconds": 5.5, "peak_mib": 11.0,
         "grads_mib": grads},
        {"method": "torch chunked", "shape": shape, "seconds": 6.6, "error": "boom"},
    ]  # fmt: skip
    text = bl.table(results)
    # NumPy against NumPy's floor: 2.75 / 2.5 = 1.10, against torch's 2.75 / 2 = 1.38;
    # 5.5 / 2.75 = 2x faster than naive; (51 - 1) MiB = 52 MB
    assert "| 4x2x8 | losskit numpy | 2.75 | 1.10 | 1.38 | 2.00x | - | 53 | 52 |" in text
    assert "| 4x2x8 | torch naive | 5.50 | 2.75 | 2.75 | 1.00x |" in text
    assert "| numpy floor (full 3.00, chunked 2.50) | 2.50 | 1.00 | 1.25 |" in text
    assert "| torch floor (full 2.00, chunked 2.10) | 2.00 | 1.00 | 1.00 |" in text
    assert "error: boom" in text
    with pytest.raises(SystemExit):
        bl.main(["--shapes", "4x2"])


def test_benchmark_floor_times_every_form_in_a_child_process(capsys):
    from losskit import benchmark_linear as bl

    args = ["--shapes", "64x8x300", "--methods", "floor", "--repeats", "1", "--json"]
    assert bl.main(args) == 0
    (result,) = json.loads(capsys.readouterr().out)
    forms = ("numpy_full_s", "numpy_chunked_s", "torch_full_s", "torch_chunked_s")
    assert all(result[k] > 0 for k in forms)
    assert result["numpy_s"] == min(result["numpy_full_s"], result["numpy_chunked_s"])
    assert result["torch_s"] == min(result["torch_full_s"], result["torch_chunked_s"])


def test_benchmark_runs_a_method_in_a_child_process(capsys):
    from losskit import benchmark_linear as bl

    args = ["--shapes", "64x8x300", "--methods", "losskit numpy", "--repeats", "1", "--json"]
    assert bl.main(args) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["method"] == "losskit numpy" and result["shape"] == [64, 8, 300]
    assert 0 < result["seconds"] < 10 and result["peak_mib"] >= 0
    assert result["grads_mib"] == (64 * 8 + 300 * 8) * 4 / 2**20
