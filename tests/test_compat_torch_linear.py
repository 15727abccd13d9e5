"""``losskit.compat.torch.linear_cross_entropy`` and ``nn.LinearCrossEntropyLoss`` vs PyTorch 2.13.

The reference is PyTorch's own ``torch.nn.functional.linear_cross_entropy`` on
its unchunked path (``options=None``: ``cross_entropy(linear(x, W, b), y)``) and
``torch.nn.LinearCrossEntropyLoss``; the adapter always runs the chunked core,
here with chunks of a few rows so that several chunks are summed.  PyTorch
refuses the derivative in the class weights; its reference is the formula
written out in :func:`_weighted_ce_ref` under torch autograd (float64).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import losskit.compat.torch as LF  # noqa: E402
from losskit.compat.torch import nn as lnn  # noqa: E402

Options = torch.nn.LinearCrossEntropyOptions
SMALL = Options(batch_chunk_size=3)  # 11 tokens -> 4 chunks

N, D, C = 11, 5, 7


def _data(dtype=torch.float64, seed=0, n=N, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=g, dtype=torch.float64) * scale
    w_lin = torch.randn(C, D, generator=g, dtype=torch.float64)
    b = torch.randn(C, generator=g, dtype=torch.float64)
    cw = torch.rand(C, generator=g, dtype=torch.float64) + 0.25
    y = torch.randint(0, C, (n,), generator=g)
    if n > 2:
        y[1] = -100
        y[n - 2] = -100
    cast = [t.to(dtype) for t in (x, w_lin, b, cw)]
    return (*cast, y)


def _leaves(*ts):
    return [t.detach().clone().requires_grad_(True) for t in ts]


def _weighted_ce_ref(x, w_lin, b, cw, y, reduction, eps, ignore=-100):
    """PyTorch's class-id cross-entropy written out (float64), differentiable in ``cw``.

    ``ℓ_i = (1-ε) w_{y_i} (-log p_{i y_i}) + ε/C Σ_c w_c (-log p_ic)`` over the
    counted tokens; mean = Σ ℓ_i / Σ_i w_{y_i} (PyTorch's ``cross_entropy`` rule).
    """
    z = x @ w_lin.T + (0 if b is None else b)
    lp = torch.log_softmax(z, dim=-1)
    counted = y != ignore
    ys = torch.where(counted, y, torch.zeros_like(y))
    nll = -lp.gather(-1, ys[:, None])[:, 0]
    per = (1 - eps) * cw[ys] * nll + eps / z.shape[-1] * (-(lp * cw).sum(-1))
    per = torch.where(counted, per, torch.zeros_like(per))
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / torch.where(counted, cw[ys], torch.zeros_like(nll)).sum()


# --------------------------------------------------------------------------- values and gradients


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.3])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("class_weight", [False, True])
def test_matches_torch_float64(reduction, eps, bias, class_weight):
    x, w_lin, b, cw, y = _data()
    b = b if bias else None
    cw = cw if class_weight else None
    kw = dict(weight=cw, reduction=reduction, label_smoothing=eps)
    ours_in = _leaves(x, w_lin, *([b] if bias else []))
    ref_in = _leaves(x, w_lin, *([b] if bias else []))
    ours = LF.linear_cross_entropy(
        ours_in[0], ours_in[1], y, linear_bias=ours_in[2] if bias else None, options=SMALL, **kw
    )
    ref = F.linear_cross_entropy(
        ref_in[0], ref_in[1], y, linear_bias=ref_in[2] if bias else None, **kw
    )
    assert ours.dtype == ref.dtype == torch.float64
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-13)
    up = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    g_ours = torch.autograd.grad(ours, ours_in, up)
    g_ref = torch.autograd.grad(ref, ref_in, up)
    for a, r in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_class_weight_gradient_is_exact(reduction, eps):
    """PyTorch refuses ∂/∂weight for class ids; the adapter gives the written-out formula's."""
    x, w_lin, b, cw, y = _data(seed=3)
    ours_in = _leaves(x, w_lin, b, cw)
    ref_in = _leaves(x, w_lin, b, cw)
    ours = LF.linear_cross_entropy(
        ours_in[0], ours_in[1], y, linear_bias=ours_in[2], weight=ours_in[3],
        reduction=reduction, label_smoothing=eps, options=SMALL,
    )  # fmt: skip
    ref = _weighted_ce_ref(*ref_in, y, reduction, eps)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-13)
    up = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for a, r in zip(
        torch.autograd.grad(ours, ours_in, up), torch.autograd.grad(ref, ref_in, up), strict=True
    ):
        torch.testing.assert_close(a, r, rtol=1e-11, atol=1e-13)
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        F.linear_cross_entropy(*ref_in[:2], y, linear_bias=ref_in[2], weight=ref_in[3])


def test_class_weight_gradient_under_jax():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x, w_lin, b, cw, y = _data(seed=4)
    args = [jnp.asarray(t.numpy()) for t in (x, w_lin, b, cw)]
    yj = jnp.asarray(y.numpy())

    def ours(x, w_lin, b, cw):
        return LF.linear_cross_entropy(x, w_lin, yj, linear_bias=b, weight=cw, label_smoothing=0.2)

    got = jax.grad(ours, argnums=(0, 1, 2, 3))(*args)
    ref_in = _leaves(x, w_lin, b, cw)
    ref = _weighted_ce_ref(*ref_in, y, "mean", 0.2)
    assert float(ours(*args)) == pytest.approx(ref.item(), rel=1e-12)
    for a, r in zip(got, torch.autograd.grad(ref, ref_in), strict=True):
        np.testing.assert_allclose(np.asarray(a), r.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_float32_and_bfloat16(reduction):
    x64, w64, b64, cw64, y = _data(seed=5)
    ref64 = F.linear_cross_entropy(x64, w64, y, linear_bias=b64, weight=cw64, reduction=reduction)
    # bfloat16: the loss rounded once from float32 (2^-9 relative) on bf16 logits
    for dtype, vtol, tol in ((torch.float32, 2e-6, 2e-6), (torch.bfloat16, 5e-3, 1.6e-2)):
        x, w_lin, b, cw = (t.to(dtype) for t in (x64, w64, b64, cw64))
        ours_in = _leaves(x, w_lin, b)
        ours = LF.linear_cross_entropy(
            ours_in[0], ours_in[1], y, linear_bias=ours_in[2], weight=cw,
            reduction=reduction, options=SMALL,
        )  # fmt: skip
        ref_in = _leaves(x, w_lin, b)
        ref = F.linear_cross_entropy(
            ref_in[0], ref_in[1], y, linear_bias=ref_in[2], weight=cw, reduction=reduction
        )
        assert ours.dtype == ref.dtype == dtype  # torch: half in, half out
        # the float64 reference of the same (rounded) inputs
        exact = F.linear_cross_entropy(
            *(t.double() for t in (x, w_lin)), y, linear_bias=b.double(), weight=cw.double(),
            reduction=reduction,
        )  # fmt: skip
        torch.testing.assert_close(ours.double(), exact, rtol=vtol, atol=vtol * 1e-2)
        torch.testing.assert_close(ours.double(), ref.double(), rtol=4 * vtol, atol=4 * vtol)
        up = torch.ones(ref.shape, dtype=dtype)
        exact_in = _leaves(*(t.double() for t in (x, w_lin, b)))
        exact = F.linear_cross_entropy(
            exact_in[0], exact_in[1], y, linear_bias=exact_in[2], weight=cw.double(),
            reduction=reduction,
        )  # fmt: skip
        g_exact = torch.autograd.grad(exact, exact_in, up.double())
        for a, e in zip(torch.autograd.grad(ours, ours_in, up), g_exact, strict=True):
            assert a.dtype == dtype
            torch.testing.assert_close(a.double(), e, rtol=tol, atol=tol)
    assert torch.isfinite(ref64).all()


def test_large_logits_stay_finite():
    """Logits of order ±1e4 (hidden states scaled by 3000): the float64 reference's numbers."""
    x, w_lin, _, _, y = _data(seed=6, scale=3000.0)
    for dtype, rtol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        ours_in = _leaves(x.to(dtype), w_lin.to(dtype))
        ours = LF.linear_cross_entropy(*ours_in, y, reduction="sum", options=SMALL)
        ref_in = _leaves(x, w_lin)
        ref = F.linear_cross_entropy(*ref_in, y, reduction="sum")
        assert ref.item() > 1e3
        torch.testing.assert_close(ours.double(), ref, rtol=rtol, atol=0)
        for a, r in zip(
            torch.autograd.grad(ours, ours_in), torch.autograd.grad(ref, ref_in), strict=True
        ):
            assert torch.isfinite(a).all()
            torch.testing.assert_close(a.double(), r, rtol=rtol, atol=rtol * r.abs().max())


# --------------------------------------------------------------------------- ignore_index, empty


def test_ignore_index_none_means_minus_100_and_explicit_index():
    x, w_lin, _, _, y = _data(seed=7)
    for ii in (None, -100):
        torch.testing.assert_close(
            LF.linear_cross_entropy(x, w_lin, y, ignore_index=ii),
            F.linear_cross_entropy(x, w_lin, y, ignore_index=ii),
            rtol=1e-12,
            atol=0,
        )
    y2 = torch.where(y == -100, torch.full_like(y, 3), y)
    got = LF.linear_cross_entropy(x, w_lin, y2, ignore_index=3, reduction="none", options=SMALL)
    ref = F.linear_cross_entropy(x, w_lin, y2, ignore_index=3, reduction="none")
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)
    assert (got[y2 == 3] == 0).all()
    # with another ignore_index, -100 is an id out of range (PyTorch: IndexError)
    with pytest.raises(IndexError):
        F.linear_cross_entropy(x, w_lin, y, ignore_index=3)
    with pytest.raises(ValueError, match="-100"):
        LF.linear_cross_entropy(x, w_lin, y, ignore_index=3)


@pytest.mark.parametrize("n", [0, 4])
def test_all_ignored_or_empty(n):
    """torch: mean of nothing counted is NaN with a zero gradient; sum 0; none zeros."""
    x, w_lin, b, cw, _ = _data(seed=8, n=n)
    y = torch.full((n,), -100)
    for weight in (None, cw):
        for red in ("mean", "sum", "none"):
            ours_in, ref_in = _leaves(x, w_lin, b), _leaves(x, w_lin, b)
            ours = LF.linear_cross_entropy(
                *ours_in[:2], y, linear_bias=ours_in[2], weight=weight, reduction=red
            )
            ref = F.linear_cross_entropy(
                *ref_in[:2], y, linear_bias=ref_in[2], weight=weight, reduction=red
            )
            torch.testing.assert_close(ours, ref, equal_nan=True)
            if red == "mean":
                assert math.isnan(ours.item())
            g_ours = torch.autograd.grad(ours.sum(), ours_in)
            g_ref = torch.autograd.grad(ref.sum(), ref_in)
            for a, r in zip(g_ours, g_ref, strict=True):
                assert (a == 0).all()
                torch.testing.assert_close(a, r)


def test_unbatched_input():
    x, w_lin, _, cw, y = _data(seed=9)
    for red in ("mean", "sum", "none"):
        ours_in, ref_in = _leaves(x[0], w_lin), _leaves(x[0], w_lin)
        ours = LF.linear_cross_entropy(*ours_in, y[0], weight=cw, reduction=red)
        ref = F.linear_cross_entropy(*ref_in, y[0], weight=cw, reduction=red)
        assert ours.shape == ref.shape == ()
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)
        for a, r in zip(
            torch.autograd.grad(ours, ours_in), torch.autograd.grad(ref, ref_in), strict=True
        ):
            torch.testing.assert_close(a, r, rtol=1e-11, atol=1e-14)


# --------------------------------------------------------------------------- NumPy, options


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_numpy_arrays(reduction):
    x, w_lin, b, cw, y = _data(seed=10)
    ref = F.linear_cross_entropy(
        x, w_lin, y, linear_bias=b, weight=cw, reduction=reduction, label_smoothing=0.1
    )
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 2e-6)):
        got = LF.linear_cross_entropy(
            x.numpy().astype(dtype), w_lin.numpy().astype(dtype), y.numpy().astype(np.int32),
            linear_bias=b.numpy().astype(dtype), weight=cw.numpy().astype(dtype),
            reduction=reduction, label_smoothing=0.1, options=SMALL,
        )  # fmt: skip
        assert isinstance(got, (np.ndarray, np.generic)) and got.dtype == dtype
        assert np.shape(got) == tuple(ref.shape)
        np.testing.assert_allclose(got, ref.numpy(), rtol=rtol, atol=rtol)
    # a list of class weights takes the input's dtype
    got = LF.linear_cross_entropy(x.numpy(), w_lin.numpy(), y.numpy(), weight=cw.tolist())
    np.testing.assert_allclose(got, F.linear_cross_entropy(x, w_lin, y, weight=cw), rtol=1e-12)


@pytest.mark.parametrize(
    "options",
    [
        Options(),
        Options(batch_chunk_size=1),
        Options(batch_chunk_size=4, chunking_method=None),
        Options(chunking_method="aspect_ratio:2"),
        Options(acc_policy="compact", acc_dtype=torch.float32),
    ],
)
def test_options_change_no_number(options):
    x, w_lin, b, cw, y = _data(seed=11)
    base = LF.linear_cross_entropy(x, w_lin, y, linear_bias=b, weight=cw, reduction="none")
    got = LF.linear_cross_entropy(
        x, w_lin, y, linear_bias=b, weight=cw, reduction="none", options=options
    )
    ref = F.linear_cross_entropy(x, w_lin, y, linear_bias=b, weight=cw, reduction="none")
    torch.testing.assert_close(got, base, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)


def test_options_refused():
    x, w_lin, _, _, y = _data(seed=12)
    for red in ("mean", "sum"):
        with pytest.raises(ValueError, match=r"allow_retain_graph=True.*one backward per call"):
            LF.linear_cross_entropy(
                x, w_lin, y, reduction=red, options=Options(allow_retain_graph=True)
            )
    with pytest.raises(ValueError, match=r"batch_chunk_size or chunking_method, not both"):
        LF.linear_cross_entropy(
            x, w_lin, y, options=Options(batch_chunk_size=2, chunking_method="aspect_ratio")
        )
    with pytest.raises(TypeError, match=r"`options` must be None or a torch.nn.LinearCross"):
        LF.linear_cross_entropy(x, w_lin, y, options={"batch_chunk_size": 2})


def test_one_backward_for_mean_and_sum_retain_graph_for_none():
    """The chunked mean/sum compute their gradients in forward: a second backward raises.
    "none" recomputes in backward: retain_graph works, as PyTorch's (which ignores
    allow_retain_graph for "none")."""
    x, w_lin, _, _, y = _data(seed=13)
    for red in ("mean", "sum"):
        xr = x.clone().requires_grad_(True)
        out = LF.linear_cross_entropy(xr, w_lin, y, reduction=red)
        out.backward(retain_graph=True)
        with pytest.raises(RuntimeError, match=r"second time .* scaled in place"):
            out.backward()
    ours_in, ref_in = _leaves(x, w_lin), _leaves(x, w_lin)
    opts = Options(batch_chunk_size=3, allow_retain_graph=True)
    ours = LF.linear_cross_entropy(*ours_in, y, reduction="none", options=opts)
    ref = F.linear_cross_entropy(*ref_in, y, reduction="none", options=opts)
    g = torch.Generator().manual_seed(3)
    for _ in range(2):
        up = torch.randn(ours.shape, generator=g, dtype=torch.float64)
        ours.backward(up, retain_graph=True)
        ref.backward(up, retain_graph=True)
    for a, r in zip(ours_in, ref_in, strict=True):
        torch.testing.assert_close(a.grad, r.grad, rtol=1e-11, atol=1e-13)


# --------------------------------------------------------------------------- errors


def _bad_calls():
    x, w_lin, b, cw, y = _data(seed=14)
    return [
        ((x[None], w_lin, y[None]), {}, ValueError, r"`input` must have shape \(in_features,\)"),
        ((x, w_lin[:, None], y), {}, ValueError, r"K-dimensional"),
        ((x, w_lin[:, :3], y), {}, ValueError, r"`linear_weight` must have in_features = 5"),
        ((x, w_lin.float(), y), {}, TypeError, r"`linear_weight` must have the dtype of `input`"),
        ((x, w_lin, torch.rand(N, C, dtype=torch.float64)), {}, ValueError, "probabilities"),
        ((x, w_lin, y[:3]), {}, ValueError, r"`target` must be class ids of shape \(11,\)"),
        ((x, w_lin, y.double()), {}, TypeError, "`target` holds class ids"),
        ((x, w_lin, y), {"linear_bias": b[:3]}, ValueError, r"`linear_bias` must have shape"),
        ((x, w_lin, y), {"linear_bias": b.float()}, TypeError, "`linear_bias` must have the"),
        ((x, w_lin, y), {"weight": cw[:3]}, ValueError, "`weight` must have one weight per"),
        ((x, w_lin, y), {"weight": cw.float()}, TypeError, "`weight` must have the dtype"),
        ((x, w_lin, y), {"label_smoothing": 1.5}, ValueError, "label_smoothing"),
        ((x, w_lin, y), {"reduction": "avg"}, ValueError, "avg is not a valid value"),
        ((x, w_lin, y), {"ignore_index": 1.5}, TypeError, "`ignore_index` must be an int"),
        ((x.int(), w_lin, y), {}, TypeError, "input"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_errors(case):
    args, kwargs, exc, match = _bad_calls()[case]
    with pytest.raises(exc, match=match):
        LF.linear_cross_entropy(*args, **kwargs)


def test_out_of_range_target():
    x, w_lin, _, _, y = _data(seed=15)
    y = y.clone()
    y[0] = C
    with pytest.raises(ValueError, match=str(C)):
        LF.linear_cross_entropy(x, w_lin, y)


# --------------------------------------------------------------------------- nn


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_nn_module_matches_torch(bias, reduction):
    x, _, _, cw, y = _data(seed=16)
    kw = dict(
        bias=bias, dtype=torch.float64, reduction=reduction, weight=cw,
        ignore_index=-100, label_smoothing=0.2,
    )  # fmt: skip
    torch.manual_seed(0)
    ref = torch.nn.LinearCrossEntropyLoss(D, C, **kw)
    torch.manual_seed(0)
    ours = lnn.LinearCrossEntropyLoss(D, C, **kw, options=SMALL)
    assert isinstance(ours, torch.nn.Module)
    # the same layer, initialised as PyTorch's (same seed, same draws)
    assert ours.state_dict().keys() == ref.state_dict().keys()
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[k], v, rtol=0, atol=0)
    assert repr(ours).replace(f"options={SMALL}", "options=None") == repr(ref)
    xo, xr = _leaves(x, x)
    lo, lr = ours(xo, y), ref(xr, y)
    torch.testing.assert_close(lo, lr, rtol=1e-12, atol=1e-14)
    up = torch.randn(lr.shape, dtype=torch.float64)
    lo.backward(up)
    lr.backward(up)
    torch.testing.assert_close(xo.grad, xr.grad, rtol=1e-11, atol=1e-14)
    for po, pr in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(po.grad, pr.grad, rtol=1e-11, atol=1e-14)


def test_nn_module_errors():
    with pytest.raises(ValueError, match=r"`out_features` must be \(\)"):
        lnn.LinearCrossEntropyLoss(3, 4, out_features=(2,))
    with pytest.raises(ValueError, match=r"`weight` must have shape \(4,\)"):
        lnn.LinearCrossEntropyLoss(3, 4, weight=torch.ones(3))
    with pytest.raises(ValueError, match="label_smoothing"):
        lnn.LinearCrossEntropyLoss(3, 4, label_smoothing=-0.1)
    with pytest.raises(RuntimeError, match="label_smoothing"):  # torch's own rule
        torch.nn.LinearCrossEntropyLoss(3, 4, label_smoothing=-0.1)


# --------------------------------------------------------------------------- compiled, traced


# dynamo reads .grad of a non-leaf when it breaks the graph at the core's op (torch's warning).
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_torch_compile_matches_eager():
    """torch.compile: the core breaks the graph at its op; the numbers are eager's."""
    x, w_lin, b, cw, y = _data(seed=17)

    def loss(x, w_lin, b, cw):
        return LF.linear_cross_entropy(
            x, w_lin, y, linear_bias=b, weight=cw, label_smoothing=0.1, options=SMALL
        )

    comp_in, eager_in = _leaves(x, w_lin, b, cw), _leaves(x, w_lin, b, cw)
    got = torch.compile(loss, backend="aot_eager")(*comp_in)
    ref = _weighted_ce_ref(*eager_in, y, "mean", 0.1)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    for a, r in zip(
        torch.autograd.grad(got, comp_in), torch.autograd.grad(ref, eager_in), strict=True
    ):
        torch.testing.assert_close(a, r, rtol=1e-11, atol=1e-13)


def test_jax_jit_value_and_nan_rule():
    """Under jax.jit an id out of range cannot be read: the loss is NaN (the NaN rule)."""
    jax = pytest.importorskip("jax")
    x, w_lin, b, cw, y = _data(seed=18)
    args = [jax.numpy.asarray(t.numpy()) for t in (x, w_lin, b, cw)]

    @jax.jit
    def loss(x, w_lin, b, cw, y):
        return LF.linear_cross_entropy(x, w_lin, y, linear_bias=b, weight=cw, reduction="sum")

    ref = F.linear_cross_entropy(x, w_lin, y, linear_bias=b, weight=cw, reduction="sum")
    assert float(loss(*args, y.numpy())) == pytest.approx(ref.item(), rel=1e-12)
    bad = y.numpy().copy()
    bad[0] = C + 2
    assert math.isnan(float(loss(*args, bad)))


def test_float16():
    x, w_lin, b, cw, y = _data(seed=19)
    x, w_lin, b, cw = (t.half() for t in (x, w_lin, b, cw))
    got = LF.linear_cross_entropy(x, w_lin, y, linear_bias=b, weight=cw, options=SMALL)
    exact = F.linear_cross_entropy(
        x.double(), w_lin.double(), y, linear_bias=b.double(), weight=cw.double()
    )
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.double(), exact, rtol=1e-3, atol=0)


# --------------------------------------------------------------------------- signatures


def _params(fn):
    import inspect

    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_signatures_are_torchs():
    assert _params(LF.linear_cross_entropy) == _params(F.linear_cross_entropy)
    ours, theirs = lnn.LinearCrossEntropyLoss, torch.nn.LinearCrossEntropyLoss
    assert _params(ours.__init__) == _params(theirs.__init__)
    assert _params(ours.forward) == _params(theirs.forward)


def test_nn_module_accumulates_gradients_across_micro_batches():
    x, _, _, _, y = _data(seed=20)
    torch.manual_seed(1)
    ours = lnn.LinearCrossEntropyLoss(D, C, bias=True, dtype=torch.float64, reduction="sum")
    torch.manual_seed(1)
    ref = torch.nn.LinearCrossEntropyLoss(D, C, bias=True, dtype=torch.float64, reduction="sum")
    for lo, hi in ((0, 5), (5, N)):  # two micro-batches add into .grad
        ours(x[lo:hi], y[lo:hi]).backward()
        ref(x[lo:hi], y[lo:hi]).backward()
    for po, pr in zip(ours.parameters(), ref.parameters(), strict=True):
        assert po.grad is not None and po.grad.abs().sum() > 0
        torch.testing.assert_close(po.grad, pr.grad, rtol=1e-11, atol=1e-14)
