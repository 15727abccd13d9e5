"""ntxent and circle (losskit.losses.contrastive) against optax, Keras 3 and the papers' formulas.

Values and ``value_and_grad`` gradients on every backend of the ``xp`` fixture in
float64: NT-Xent against optax's ``ntxent`` (the mean over positive pairs, which is
the core with ``sample_weight=|P(i)|``) and against the formula in torch for each
reduction and ``sample_weight``; Circle against Keras's ``circle`` on unit-length
embeddings (the normalisation inside the tape) and against the formula in torch.
Hand-derived cases; torch autograd and ``jax.grad`` of the core for every floating
argument; the NaN rule under ``jax.jit`` and ``torch.compile(fullgraph=True)``; half
precision; extremes (gamma 80 with near-identical embeddings, temperature 0.01, 1e4
and 1e30 magnitudes); empty and one-example batches; pinned error messages.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest

import losskit as lk
from _refs_contrastive import (
    embedding_case,
    keras_circle,
    optax_ntxent_case,
    positives,
    torch_circle_rows,
    torch_ntxent_rows,
    torch_reference,
)
from conftest import Backend, assert_close, loss_dtype, round_to

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Dynamo detected a call to a `functools.lru_cache`-wrapped function:UserWarning"
    ),
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
]

REDUCTIONS = ("none", "sum", "mean")
LOSSES = {
    "ntxent": (lk.ntxent, torch_ntxent_rows, {"temperature": 0.2}),
    "circle": (lk.circle, torch_circle_rows, {"gamma": 16.0, "margin": 0.3}),
}


def run_many(
    xp: Backend,
    fn: Any,
    e: np.ndarray,
    labels: np.ndarray,
    calls: list[dict],
    dtype: str = "float64",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``fn`` and ``value_and_grad(fn)`` on ``xp`` for each option set in ``calls``, checked
    for kind and dtype; on JAX all of them in one jitted function (one compile)."""
    eb, yb = xp.asarray(e, dtype), xp.asarray(labels, "int64")
    weights = [c.get("sample_weight") for c in calls]
    wb = [None if w is None else xp.asarray(w, loss_dtype(dtype)) for w in weights]
    static = [{k: v for k, v in c.items() if k != "sample_weight"} for c in calls]

    def everything(a: Any, b: Any, ws: list) -> list:
        return [
            (fn(a, b, sample_weight=w, **o), *lk.value_and_grad(fn)(a, b, sample_weight=w, **o))
            for w, o in zip(ws, static, strict=True)
        ]

    if xp.name == "jax":
        import jax

        everything = jax.jit(everything)
    results = []
    for value, v2, grad in everything(eb, yb, wb):
        assert xp.is_native(value) and xp.is_native(grad)
        assert xp.dtype_name(value) == loss_dtype(dtype)
        assert xp.dtype_name(grad) == dtype
        assert tuple(grad.shape) == e.shape
        assert_close(xp.to_numpy(v2), xp.to_numpy(value), dtype)
        results.append((xp.to_numpy(value), xp.to_numpy(grad)))
    return results


def run(xp: Backend, fn: Any, e: np.ndarray, labels: np.ndarray, dtype: str = "float64", **opts):
    """:func:`run_many` of one call."""
    return run_many(xp, fn, e, labels, [opts], dtype)[0]


# --------------------------------------------------------------------------- the references


def test_ntxent_matches_optax(xp):
    """optax's mean over positive pairs = the core's mean weighted by |P(i)|."""
    e, y = embedding_case()
    n = positives(y).astype(np.float64)
    temperatures = (0.07, 0.5)
    calls = [{"temperature": t, "sample_weight": n} for t in temperatures]
    for t, (value, grad) in zip(temperatures, run_many(xp, lk.ntxent, e, y, calls), strict=True):
        ev, eg = optax_ntxent_case(0, t)
        assert_close(value, ev)
        assert_close(grad, eg, kind="grad")


@pytest.mark.parametrize("name", LOSSES)
def test_matches_the_formula(xp, name):
    """Each reduction, with and without sample_weight, against the formula in torch."""
    fn, rows, options = LOSSES[name]
    e, y = embedding_case()
    w = np.random.default_rng(1).uniform(0.0, 2.0, size=len(y))
    combos = [(r, weight) for r in REDUCTIONS for weight in (None, w)]
    calls = [{"reduction": r, "sample_weight": weight, **options} for r, weight in combos]
    for (reduction, weight), (value, grad) in zip(
        combos, run_many(xp, fn, e, y, calls), strict=True
    ):
        ev, eg, _ = torch_reference(rows, e, y, reduction, weight, **options)
        what = f"{name} {reduction} sample_weight={weight is not None}"
        assert_close(value, ev, err_msg=what)
        assert_close(grad, eg, kind="grad", err_msg=what)


def test_circle_matches_keras():
    """Keras's circle on embeddings normalised inside the tape: values and gradients
    (the other backends agree with NumPy in test_matches_the_formula)."""
    e, y = embedding_case(seed=2)
    w = np.random.default_rng(5).uniform(0.5, 1.5, size=len(y))
    for margin in (0.4, 0.25, -0.1):
        per, dx, _ = keras_circle(y, e, weight=w, normalize=True, gamma=80.0, margin=margin)
        assert_close(lk.circle(e, y, reduction="none", margin=margin), per)
        vg = lk.value_and_grad(lk.circle)
        assert_close(vg(e, y, reduction="sum", sample_weight=w, margin=margin)[1], dx, kind="grad")


# --------------------------------------------------------------------------- hand-derived


def test_ntxent_hand_derived():
    """e0 = e1 = (1, 0) (labels 0, 0), e2 = (0, 1) (label 1), T = 1.

    Anchors 0 and 1: a = 1 with the positive, 0 with the negative:
    log(1 + e^-1) each; anchor 2 has no positive: 0, counted nowhere, so the mean is
    log(1 + e^-1).  d/de2: s_02 and s_12 each get d/ds = (1/2) sigma(-1) (the mean's
    1/2 times the softmax share 1 of the only negative times sigma(0 - 1)), and
    ds_02/de2 = (I - u2 u2^T) u0 / |e2| = (1, 0): grad e2 = (sigma(-1), 0).  d/de0:
    ds_01/de0 = 0 (u1 = u0) and ds_02/de0 = (0, 1): grad e0 = (0, sigma(-1) / 2); with
    e0 twice as long, half of that.
    """
    e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = np.array([0, 0, 1])
    sig = 1 / (1 + math.e)
    value, grad = lk.value_and_grad(lk.ntxent)(e, y, temperature=1.0)
    assert value == pytest.approx(math.log1p(math.exp(-1)), rel=1e-15)
    np.testing.assert_allclose(grad, [[0, sig / 2], [0, sig / 2], [sig, 0]], atol=1e-16)
    per = lk.ntxent(e, y, temperature=1.0, reduction="none")
    np.testing.assert_allclose(per, [math.log1p(math.exp(-1))] * 2 + [0.0], rtol=1e-15)
    _, grad2 = lk.value_and_grad(lk.ntxent)(e * [[2.0], [1.0], [1.0]], y, temperature=1.0)
    np.testing.assert_allclose(grad2[0], [0, sig / 4], atol=1e-16)


def test_circle_hand_derived():
    """Positive at s = 1 and two negatives at s = 0, m = 0.25, gamma = 4: z^p = -g m^2
    (a_p = m), z^n = -g m^2 (a_n = m), so l = log(1 + 2 e^{-2 g m^2}); a lone anchor
    (label 2, no positive) is 0 and not in the mean; its similarities still pull."""
    e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.6, 0.8]])
    y = np.array([0, 0, 1, 1, 2])
    per = lk.circle(e[:4], y[:4], gamma=4.0, margin=0.25, reduction="none")
    np.testing.assert_allclose(per, [math.log1p(2 * math.exp(-0.5))] * 4, rtol=1e-15)
    per5 = lk.circle(e, y, gamma=4.0, margin=0.25, reduction="none")
    assert per5[4] == 0.0
    assert lk.circle(e, y, gamma=4.0, margin=0.25) == pytest.approx(per5.sum() / 4, rel=1e-15)
    # an anchor with positives and no negatives: log(1 + 0) = 0
    assert lk.circle(e[:2], y[:2], reduction="none").tolist() == [0.0, 0.0]


@pytest.mark.parametrize("backend", ["numpy", "torch", "array_api_strict"])
def test_no_positive_pair_anywhere_is_zero(backend):
    """All labels distinct: every anchor counts nowhere; the mean is 0, the gradient 0."""
    pytest.importorskip(backend)
    e, _ = embedding_case(n=5)
    y = np.arange(5)
    for fn in (lk.ntxent, lk.circle):
        value, grad = run(Backend(backend), fn, e, y)
        assert value == 0.0
        assert not grad.any()


# --------------------------------------------------------------------------- autograd of the core


@pytest.mark.parametrize("name", LOSSES)
def test_autograd_every_floating_argument(autograd_xp, name):
    """torch autograd and jax.grad of the core, in embeddings and sample_weight, against
    the torch formula's autograd (and the embeddings' against value_and_grad)."""
    fn, rows, options = LOSSES[name]
    e, y = embedding_case(seed=4)
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=len(y))
    _, eg, ewg = torch_reference(rows, e, y, "mean", w, **options)
    if autograd_xp.name == "torch":
        import torch

        et, wt = torch.tensor(e, requires_grad=True), torch.tensor(w, requires_grad=True)
        fn(et, torch.tensor(y), sample_weight=wt, **options).backward()
        de, dw = et.grad.numpy(), wt.grad.numpy()
    else:
        import jax

        f = functools.partial(fn, labels=jax.numpy.asarray(y), **options)
        de, dw = jax.jit(jax.grad(lambda a, b: f(a, sample_weight=b), argnums=(0, 1)))(e, w)
    assert_close(de, eg, kind="grad")
    assert_close(dw, ewg, kind="grad")


# --------------------------------------------------------------------------- the NaN rule


def test_jit_bad_weight_is_nan():
    """A negative sample_weight under jax.jit: that anchor NaN ('none'), the others as
    eager, the mean NaN and its gradient (jax.grad and value_and_grad) NaN, also where
    the anchor has no positive and its loss is a constant 0; eager raises."""
    import jax

    e, y = embedding_case(n=6)
    lone = int(np.flatnonzero(positives(y) == 0)[0])
    fns = (lk.ntxent, lk.circle)

    def everything(a, b, w):
        return [
            (
                fn(a, b, reduction="none", sample_weight=w),
                *lk.value_and_grad(fn)(a, b, sample_weight=w),
                jax.grad(fn)(a, b, sample_weight=w),
            )
            for fn in fns
        ]

    traced = jax.jit(everything)
    for bad in (lone, (lone + 1) % 6):
        w = np.ones(6)
        w[bad] = -1.0
        for fn, (per, value, grad, autograd) in zip(fns, traced(e, y, w), strict=True):
            with pytest.raises(ValueError, match=r"`sample_weight` must be finite and non-neg"):
                fn(e, y, sample_weight=w)
            good = fn(e, y, reduction="none")
            assert np.isnan(per[bad]) and np.allclose(np.delete(per, bad), np.delete(good, bad))
            assert np.isnan(value) and np.isnan(grad).any() and np.isnan(autograd).any()


def test_torch_compile_fullgraph():
    """torch.compile(fullgraph=True) equals eager on good input and gives NaN for a bad
    weight; the analytic gradient compiles too."""
    import torch
    import torch._dynamo as dynamo

    e, y = embedding_case(n=6)
    et, yt = torch.tensor(e), torch.tensor(y)
    bad = torch.ones(6, dtype=torch.float64)
    bad[1] = math.nan
    fns = ((lk.ntxent, {"temperature": 0.1}), (lk.circle, {}))

    def both(a, b, w):
        return [
            (
                fn(a, b, reduction="none", sample_weight=w, **options),
                *lk.value_and_grad(fn)(a, b, sample_weight=w, **options),
            )
            for fn, options in fns
        ]

    with dynamo.config.patch(recompile_limit=64):
        compiled = torch.compile(both, fullgraph=True, backend="aot_eager")
        good = compiled(et, yt, torch.ones(6, dtype=torch.float64))
        poisoned = compiled(et, yt, bad)
    for (per, _, grad), (eper, _, egrad) in zip(good, both(et, yt, None), strict=True):
        assert_close(per.numpy(), eper.numpy())
        assert_close(grad.numpy(), egrad.numpy(), kind="grad")
    for per, value, grad in poisoned:
        assert torch.isnan(per[1]) and torch.isnan(value) and torch.isnan(grad).any()
        assert not torch.isnan(per[0])


# --------------------------------------------------------------------------- dtypes and extremes


LOW = [
    ("numpy", "float16"),
    ("numpy", "float32"),
    ("torch", "float16"),
    ("torch", "bfloat16"),
    ("jax", "bfloat16"),
    ("array_api_strict", "float32"),
]


@pytest.mark.parametrize(("backend", "dtype"), LOW)
@pytest.mark.parametrize("name", LOSSES)
def test_low_precision(backend, dtype, name):
    """Half precision is computed in float32: a float32 loss, the gradient in the input's
    dtype, against the formula on the input as rounded (JAX: one dtype, one compile)."""
    pytest.importorskip(backend)
    xp = Backend(backend)
    fn, rows, options = LOSSES[name]
    e, y = embedding_case(seed=3)
    er = round_to(e, dtype)
    ev, eg, _ = torch_reference(rows, er, y, "mean", None, **options)
    value, grad = run(xp, fn, er, y, dtype, **options)
    # the similarities are sums over D products: a few ulps of float32, scaled by 1/T, gamma
    assert_close(value, ev, "float32" if dtype != "bfloat16" else dtype)
    np.testing.assert_allclose(grad, eg, rtol=2e-2, atol=2e-3 if dtype != "float32" else 2e-5)


def test_extreme_inputs():
    """gamma 80 with near-identical embeddings, temperature 0.01 in float32, 1e4 and 1e30
    magnitudes: finite, and the float64 formula's numbers."""
    rng = np.random.default_rng(9)
    base = rng.normal(size=(4, 8))
    near = np.repeat(base, 2, axis=0) + 1e-7 * rng.normal(size=(8, 8))
    y = np.repeat(np.arange(4), 2)
    ev, eg, _ = torch_reference(torch_circle_rows, near, y, "mean", None, gamma=80.0, margin=0.4)
    value, grad = lk.value_and_grad(lk.circle)(near, y)
    assert_close(value, ev)
    assert_close(grad, eg, kind="grad")
    v32, g32 = lk.value_and_grad(lk.circle)(near.astype(np.float32), y)
    assert np.isfinite(g32).all() and v32 == pytest.approx(ev, rel=1e-4)

    e, y = embedding_case(seed=6)
    ev, eg, _ = torch_reference(torch_ntxent_rows, e, y, "mean", None, temperature=0.01)
    v32, g32 = lk.value_and_grad(lk.ntxent)(e.astype(np.float32), y, temperature=0.01)
    assert np.isfinite(g32).all()
    np.testing.assert_allclose(v32, ev, rtol=1e-3)
    np.testing.assert_allclose(g32, eg, rtol=1e-2, atol=1e-3 * np.abs(eg).max())

    for fn in (lk.ntxent, lk.circle):
        v1, g1 = lk.value_and_grad(fn)(e, y)
        for scale, dtype in ((1e4, np.float16), (1e4, np.float64), (1e30, np.float32)):
            x = (e / np.abs(e).max() * scale).astype(dtype)
            v, g = lk.value_and_grad(fn)(x, y)
            assert np.isfinite(v) and np.isfinite(g).all()
            if dtype is np.float64:  # scale invariant: the value, the gradient / scale
                assert v == pytest.approx(v1, rel=1e-12)
                np.testing.assert_allclose(g * scale, g1 * np.abs(e).max(), rtol=1e-9, atol=1e-12)


def test_zero_embedding():
    """A zero row has similarity 0 to everything (the core's u = e / max(|e|, eps), eps the
    dtype's machine epsilon), its gradient g / eps: against torch autograd of that plain
    formula written here (optax clamps |e|^2 at eps instead, a floor of sqrt(eps))."""
    import torch

    e, y = embedding_case(n=6)
    e[3] = 0.0
    assert positives(y)[3] > 0  # the zero row is an anchor with a positive
    value, grad = lk.value_and_grad(lk.ntxent)(e, y)
    assert np.isfinite(grad).all()

    def plain(x: Any) -> Any:  # mean over anchors with a positive, T = 0.07
        u = x / x.norm(dim=1, keepdim=True).clamp_min(np.finfo(np.float64).eps)
        a = u @ u.T / 0.07
        rows = []
        for i in range(len(y)):
            pos = [j for j in range(len(y)) if j != i and y[j] == y[i]]
            neg = [k for k in range(len(y)) if y[k] != y[i]]
            if pos:
                terms = [torch.logsumexp(a[i, [j, *neg]], 0) - a[i, j] for j in pos]
                rows.append(torch.stack(terms).mean())
        return torch.stack(rows).mean()

    et = torch.tensor(e, requires_grad=True)
    expected = plain(et)
    expected.backward()
    assert_close(value, expected.item())
    assert_close(grad, et.grad.numpy(), kind="grad")
    # g / eps (eps = 2.2e-16), not optax's g / sqrt(eps) (sqrt(eps) = 1.5e-8): |g| ~ 1
    assert np.abs(grad[3]).max() > 1e12


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single(xp, n):
    """No example, or one (no pair): 'none' has N losses, the mean and sum are 0."""
    e = np.ones((n, 3))
    y = np.zeros(n, dtype=np.int64)
    for fn in (lk.ntxent, lk.circle):
        calls = [{"reduction": r} for r in REDUCTIONS]
        (per, grad), *reduced = run_many(xp, fn, e, y, calls)
        assert per.shape == (n,) and not per.any() and not grad.any()
        assert [value for value, _ in reduced] == [0.0, 0.0]
    # no features: every similarity is 0
    per = lk.ntxent(np.ones((3, 0)), np.array([0, 0, 1]), temperature=1.0, reduction="none")
    np.testing.assert_allclose(per, [math.log(2), math.log(2), 0.0], rtol=1e-15)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda e, y: lk.ntxent(e, y[:-1]),
            ValueError,
            "`labels` must have one label per row of `embeddings`, shape (6,); got (5,)",
        ),
        (
            lambda e, y: lk.circle(e, y.astype(np.float32)),
            TypeError,
            "`labels` must be an integer array of group ids (equal labels make a positive "
            "pair); got dtype float32",
        ),
        (
            lambda e, y: lk.ntxent(e.astype(np.int64), y),
            TypeError,
            "`embeddings` must be a real floating-point array; got dtype int64",
        ),
        (
            lambda e, y: lk.ntxent(e[0], y[:1]),
            ValueError,
            "`embeddings` must be a 2-d array (batch, features); got 1-d of shape (4,)",
        ),
        (
            lambda e, y: lk.ntxent(e, y, temperature=0.0),
            ValueError,
            "`temperature` must be a finite number > 0; got 0.0",
        ),
        (
            lambda e, y: lk.ntxent(e, y, temperature=-1),
            ValueError,
            "`temperature` must be a finite number > 0; got -1",
        ),
        (
            lambda e, y: lk.ntxent(e, y, temperature="0.1"),
            TypeError,
            "`temperature` must be a finite number > 0; got '0.1'",
        ),
        (
            lambda e, y: lk.circle(e, y, gamma=math.inf),
            ValueError,
            "`gamma` must be a finite number > 0; got inf",
        ),
        (
            lambda e, y: lk.circle(e, y, margin=math.nan),
            ValueError,
            "`margin` must be a finite number; got nan",
        ),
        (
            lambda e, y: lk.circle(e, y, reduction="avg"),
            ValueError,
            "`reduction` must be one of 'mean', 'sum', 'none'; got 'avg'",
        ),
        (
            lambda e, y: lk.ntxent(e, y, sample_weight=np.ones(5)),
            ValueError,
            "`sample_weight` must have the shape of the batch",
        ),
    ],
)
def test_errors(call, error, message):
    e, y = embedding_case(n=6, d=4)
    with pytest.raises(error) as info:
        call(e, y)
    assert str(info.value).startswith(message)


def test_meta_device_and_grad_out():
    """On torch's meta device: meta results of the right shapes, backward and
    value_and_grad work; NumPy's grad_out (the embeddings themselves) gets the gradient."""
    import torch

    e = torch.empty(6, 4, device="meta", requires_grad=True)
    y = torch.zeros(6, dtype=torch.int64, device="meta")
    for fn in (lk.ntxent, lk.circle):
        value = fn(e, y, sample_weight=torch.ones(6, device="meta"))
        assert value.device.type == "meta" and value.shape == ()
        value.backward()
        _, grad = lk.value_and_grad(fn)(e, y, reduction="none")
        assert grad.device.type == "meta" and grad.shape == (6, 4)
        x, labels = embedding_case(n=6, d=4)
        _, expected = lk.value_and_grad(fn)(x, labels)
        buffer = x.copy()
        _, grad = lk.value_and_grad(fn)(buffer, labels, grad_out=buffer)
        assert grad is buffer
        np.testing.assert_array_equal(buffer, expected)
