"""ranking_softmax (losskit.losses.ranking) against optax's ranking_softmax_loss and the formula.

Values and ``value_and_grad`` gradients on every backend of the ``xp`` fixture in
float64 against optax (its ``reduce_fn`` mean/sum/None; its ``where`` as a score of
``-inf`` with label 0 and the mean over lists with an item; its ``weights`` as labels
times weights) and against ``-sum(y * log_softmax(s))`` in torch for each reduction,
``sample_weight`` and another list axis.  torch autograd and ``jax.grad`` for logits,
labels and weights; the NaN rule under ``jax.jit`` and ``torch.compile(fullgraph=True)``;
half precision; extreme scores; empty batches and lists; pinned errors.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import losskit as lk
from _refs_contrastive import optax_ranking
from conftest import Backend, assert_close, loss_dtype, round_to

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Dynamo detected a call to a `functools.lru_cache`-wrapped function:UserWarning"
    ),
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
]

REDUCTIONS = ("none", "sum", "mean")


@functools.cache
def case(seed: int = 0, shape: tuple[int, int] = (5, 6)) -> tuple[np.ndarray, ...]:
    """Scores, graded relevances 0..3 (one list all 0), and a `where` mask (one list empty)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=shape) * 3
    labels = rng.integers(0, 4, size=shape).astype(np.float64)
    labels[1] = 0.0
    where = rng.random(shape) > 0.3
    where[3] = False
    return logits, labels, where


def torch_ref(logits, labels, reduction="mean", weight=None, axis=-1):
    """``-sum(y log_softmax(s))`` over ``axis`` in torch, reduced; grads in s, y and weight."""
    import torch

    s = torch.tensor(logits, requires_grad=True)
    y = torch.tensor(labels, requires_grad=True)
    per = -(y * torch.log_softmax(s, dim=axis)).sum(dim=axis)
    w = None if weight is None else torch.tensor(weight, requires_grad=True)
    weighted = per if w is None else w * per
    value = {"none": weighted, "sum": weighted.sum()}.get(reduction)
    if value is None:
        value = weighted.sum() / (len(per) if w is None else w.sum())
    grads = torch.autograd.grad(value.sum(), [s, y] if w is None else [s, y, w])
    return value.detach().numpy(), *(g.numpy() for g in grads)


def run_many(xp: Backend, s: np.ndarray, y: np.ndarray, calls: list[dict], dtype="float64"):
    """``ranking_softmax`` and its ``value_and_grad`` for each option set (one jit on JAX)."""
    sb, yb = xp.asarray(s, dtype), xp.asarray(y, dtype)
    ws = [c.get("sample_weight") for c in calls]
    wb = [None if w is None else xp.asarray(w, loss_dtype(dtype)) for w in ws]
    static = [{k: v for k, v in c.items() if k != "sample_weight"} for c in calls]

    def everything(a: Any, b: Any, weights: list) -> list:
        fn, vg = lk.ranking_softmax, lk.value_and_grad(lk.ranking_softmax)
        return [
            (fn(a, b, sample_weight=w, **o), *vg(a, b, sample_weight=w, **o))
            for w, o in zip(weights, static, strict=True)
        ]

    if xp.name == "jax":
        import jax

        everything = jax.jit(everything)
    out = []
    for value, v2, grad in everything(sb, yb, wb):
        assert xp.is_native(value) and xp.is_native(grad)
        assert xp.dtype_name(value) == loss_dtype(dtype) and xp.dtype_name(grad) == dtype
        assert_close(xp.to_numpy(v2), xp.to_numpy(value), dtype)
        out.append((xp.to_numpy(value), xp.to_numpy(grad)))
    return out


# --------------------------------------------------------------------------- references


@functools.cache
def optax_cases() -> list[tuple[dict, np.ndarray, np.ndarray, tuple]]:
    """``(core options, logits, labels, optax's (value, d logits))`` for each optax call."""
    s, y, where = case()
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=s.shape)
    masked_s, masked_y = np.where(where, s, -np.inf), np.where(where, y, 0.0)
    has_item = where.any(axis=-1).astype(np.float64)
    calls = [
        ({"reduction": "mean"}, s, y, {}),
        ({"reduction": "sum"}, s, y, {"reduce_fn": "sum"}),
        ({"reduction": "none"}, s, y, {"reduce_fn": None}),
        ({"reduction": "mean"}, s, y * weights, {"weights": weights}),
        ({"sample_weight": has_item}, masked_s, masked_y, {"where": where}),
        ({"reduction": "none"}, masked_s, masked_y, {"where": where, "reduce_fn": None}),
    ]
    return [(core, si, yi, optax_ranking(s, y, **options)[:2]) for core, si, yi, options in calls]


def test_matches_optax(xp):
    """optax's reduce_fn mean/sum/None, its where (-inf scores, labels 0, the mean over
    lists with an item) and its weights (labels times weights)."""
    for i, (core, si, yi, (ev, eds)) in enumerate(optax_cases()):
        [(value, grad)] = run_many(xp, si, yi, [core])
        assert_close(value, ev, err_msg=f"case {i}")
        assert_close(grad, eds, kind="grad", err_msg=f"case {i}")


def test_matches_the_formula(xp):
    """Each reduction with and without sample_weight, and the list on axis 0."""
    s, y, _ = case(seed=2)
    w = np.random.default_rng(3).uniform(0.0, 2.0, size=s.shape[0])
    combos = [(r, weight) for r in REDUCTIONS for weight in (None, w)]
    calls = [{"reduction": r, "sample_weight": weight} for r, weight in combos]
    for (reduction, weight), (value, grad) in zip(combos, run_many(xp, s, y, calls), strict=True):
        ev, eg, *_ = torch_ref(s, y, reduction, weight)
        assert_close(value, ev, err_msg=f"{reduction} {weight is not None}")
        assert_close(grad, eg, kind="grad")
    [(value, grad)] = run_many(xp, s.T.copy(), y.T.copy(), [{"axis": 0, "reduction": "none"}])
    ev, eg, *_ = torch_ref(s.T, y.T, "none", axis=0)
    assert_close(value, ev)
    assert_close(grad, eg, kind="grad")


def test_hand_derived():
    """Three equal scores, one relevant item: log 3, gradient (1/3, -2/3, 1/3); labels
    (1, 2, 0) on scores (2, 0, -inf): 1 (L - 2) + 2 (L - 0), L = log(e^2 + 1), gradient
    3 softmax - y = (3 e^2 / (e^2 + 1) - 1, 3 / (e^2 + 1) - 2, 0)."""
    value, grad = lk.value_and_grad(lk.ranking_softmax)(np.zeros((1, 3)), np.array([[0, 1, 0]]))
    assert value == pytest.approx(np.log(3), rel=1e-15)
    np.testing.assert_allclose(grad, [[1 / 3, -2 / 3, 1 / 3]], rtol=1e-15)
    s, y = np.array([[2.0, 0.0, -np.inf]]), np.array([[1.0, 2.0, 0.0]])
    value, grad = lk.value_and_grad(lk.ranking_softmax)(s, y)
    big = np.exp(2.0) + 1
    assert value == pytest.approx(3 * np.log(big) - 2, rel=1e-15)
    np.testing.assert_allclose(grad, [[3 * np.exp(2.0) / big - 1, 3 / big - 2, 0.0]], rtol=1e-14)


# --------------------------------------------------------------------------- autograd


def test_autograd_every_floating_argument(autograd_xp):
    """d/d logits, labels, sample_weight by torch and JAX against the torch formula, and
    through optax's where (-inf scores) against optax's own jax.grad."""
    s, y, where = case(seed=4)
    w = np.random.default_rng(5).uniform(0.5, 2.0, size=s.shape[0])
    _, ds, dy, dw = torch_ref(s, y, "mean", w)
    _, ods, ody = optax_ranking(s, y, where=where, reduce_fn="sum")
    if autograd_xp.name == "torch":
        import torch

        st, yt, wt = (torch.tensor(a, requires_grad=True) for a in (s, y, w))
        lk.ranking_softmax(st, yt, sample_weight=wt).backward()
        got = [st.grad.numpy(), yt.grad.numpy(), wt.grad.numpy()]
        st, yt = (torch.tensor(a, requires_grad=True) for a in (s, y))
        m = torch.tensor(where)
        masked = (torch.where(m, st, -torch.inf), torch.where(m, yt, 0.0))
        lk.ranking_softmax(*masked, reduction="sum").backward()
        got_masked = [st.grad.numpy(), yt.grad.numpy()]
    else:
        import jax
        import jax.numpy as jnp

        fn = jax.grad(lambda a, b, c: lk.ranking_softmax(a, b, sample_weight=c), (0, 1, 2))
        got = jax.jit(fn)(s, y, w)

        def masked(a, b):
            m = jnp.asarray(where)
            return lk.ranking_softmax(
                jnp.where(m, a, -jnp.inf), jnp.where(m, b, 0.0), reduction="sum"
            )

        got_masked = jax.jit(jax.grad(masked, (0, 1)))(s, y)
    for g, e in zip(got, (ds, dy, dw), strict=True):
        assert_close(np.asarray(g), e, kind="grad")
    for g, e in zip(got_masked, (ods, ody), strict=True):
        assert_close(np.asarray(g), e, kind="grad")


# --------------------------------------------------------------------------- the NaN rule


def test_negative_label_eager_jit_and_compile():
    """Eager raises; under jax.jit and torch.compile(fullgraph=True) the list with a
    negative (or NaN) label is NaN, the others as eager, the gradient NaN in its row."""
    import jax
    import torch

    s, y, _ = case()
    bad = y.copy()
    bad[2, 3] = -1.0
    with pytest.raises(
        ValueError, match=r"^`labels` must be non-negative; got -1.0 at position \(2, 3\)$"
    ):
        lk.ranking_softmax(s, bad)
    good = lk.ranking_softmax(s, y, reduction="none")

    def both(a, b):
        return lk.value_and_grad(lk.ranking_softmax)(a, b, reduction="none")

    for per, grad in (
        jax.jit(both)(s, bad),
        torch.compile(both, fullgraph=True, backend="aot_eager")(
            torch.tensor(s), torch.tensor(bad)
        ),
    ):
        per, grad = np.asarray(per), np.asarray(grad)
        assert np.isnan(per[2]) and np.allclose(np.delete(per, 2), np.delete(good, 2))
        assert np.isnan(grad[2]).all() and not np.isnan(np.delete(grad, 2, axis=0)).any()
    autograd = jax.jit(jax.grad(lambda a, b: lk.ranking_softmax(a, b, reduction="sum")))(s, bad)
    assert np.isnan(autograd[2]).any() and not np.isnan(np.delete(autograd, 2, axis=0)).any()


# --------------------------------------------------------------------------- dtypes and extremes


@pytest.mark.parametrize(
    ("backend", "dtype"),
    [("numpy", "float16"), ("torch", "bfloat16"), ("torch", "float32"), ("jax", "float16")],
)
def test_low_precision(backend, dtype):
    pytest.importorskip(backend)
    s, y, _ = case(seed=6)
    sr, yr = round_to(s, dtype), round_to(y, dtype)
    ev, eg, *_ = torch_ref(sr, yr)
    [(value, grad)] = run_many(Backend(backend), sr, yr, [{}], dtype)
    assert_close(value, ev, loss_dtype(dtype))
    assert_close(grad, eg, dtype, kind="grad")


def test_extremes():
    """Scores of +-1e4 (and float16's 6e4) give the exact finite loss; -inf items left out."""
    s = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]])
    y = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]])
    value, grad = lk.value_and_grad(lk.ranking_softmax)(s, y, reduction="none")
    np.testing.assert_allclose(value, [2e4 + 2e4, 2e4], rtol=1e-15)
    np.testing.assert_allclose(grad, [[3, -1, -2], [-1, 1, 0]], atol=1e-300)
    v16, g16 = lk.value_and_grad(lk.ranking_softmax)(
        (s * 6).astype(np.float16), y.astype(np.float16), reduction="none"
    )
    assert v16.dtype == np.float32 and g16.dtype == np.float16 and np.isfinite(g16).all()
    np.testing.assert_allclose(v16, [2.4e5, 1.2e5], rtol=1e-3)
    all_out = lk.value_and_grad(lk.ranking_softmax)(np.full((1, 3), -np.inf), np.zeros((1, 3)))
    assert all_out[0] == 0.0 and not all_out[1].any()


@pytest.mark.parametrize("shape", [(0, 4), (3, 0)])
def test_empty(xp, shape):
    """No list, or lists without items: zeros, and the mean of nothing is 0."""
    s = np.zeros(shape)
    calls = [{"reduction": r} for r in REDUCTIONS]
    (per, grad), (total, _), (mean, _) = run_many(xp, s, s, calls)
    assert per.shape == shape[:1] and not per.any() and grad.shape == shape
    assert total == 0.0 and mean == 0.0


def test_errors():
    s, y, _ = case()
    with pytest.raises(ValueError, match=r"^`labels` must have the shape of `logits` \(5, 6\)"):
        lk.ranking_softmax(s, y[:, :3])
    with pytest.raises(TypeError, match=r"^`logits` must be a real floating-point array"):
        lk.ranking_softmax(s.astype(np.int64), y)
    with pytest.raises(ValueError, match=r"^`labels` must be non-negative; got nan at position"):
        lk.ranking_softmax(s, np.where(y > 2, np.nan, y))
    with pytest.raises(ValueError, match=r"^`axis` must be an int in \[-2, 2\)"):
        lk.ranking_softmax(s, y, axis=2)
