"""The compat adapters where values cannot be read: ``torch.compile``, ``jax.jit``, ``meta``.

The core's rule (tests/test_traced.py) holds for the adapters' own steps and
checks too: ``torch.compile(fullgraph=True)`` and ``jax.jit`` give the eager
values and gradients; a value the adapter would refuse eagerly (a probability
outside [0, 1], a class id out of range) makes the losses it enters NaN inside
a compiled or jitted function, never a plausible number, and leaves the others
as they were; on ``meta`` every adapter returns a ``meta`` result of the
eager shape and dtype.  One compiled function per case serves its good and bad
inputs (the ``aot_eager`` backend: dynamo and AOTAutograd, no code generation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from losskit.compat import tf as ctf
from losskit.compat import torch as lkF

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Dynamo detected a call to a `functools.lru_cache`-wrapped function:UserWarning"
    ),
    # torch 2.13's dynamo instantiates every torch.autograd.Function it traces
    # (binary_cross_entropy's derivatives are one) and warns about that itself.
    pytest.mark.filterwarnings(
        "ignore:<class 'torch.autograd.function.Function'> should not be instantiated"
        ":DeprecationWarning"
    ),
]

RNG = np.random.default_rng(20270110)


def _softmax_rows(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


X = RNG.normal(size=(4, 3)) * 2
P = _softmax_rows(RNG.normal(size=(4, 3)))
T = _softmax_rows(RNG.normal(size=(4, 3)))
T01 = RNG.random((4, 3))
Y = np.array([0, 2, 1, 2])
W3 = np.array([0.5, -1.0, 2.0])  # PyTorch takes a negative class weight
SIGNS = np.where(T01 < 0.5, -1.0, 1.0)
COUNTS = np.round(T01 * 4)
LABEL_ROWS = np.array([[2, -1, 0], [0, 1, -1], [1, 1, 2], [-1, 0, 1]])


@dataclass(frozen=True)
class Case:
    """``call(*arrays)`` returns an unreduced loss; each ``bad`` entry plants
    ``value`` at ``where`` in array ``which`` and names the loss elements it enters."""

    id: str
    call: Callable[..., Any]
    arrays: tuple[np.ndarray, ...]
    bad: tuple[tuple[int, tuple[int, ...], float, tuple[int, ...]], ...] = field(default=())


CASES = [
    Case(
        "F.binary_cross_entropy",
        lambda p, t: lkF.binary_cross_entropy(p, t, reduction="none"),
        (P, T01),
        ((0, (1, 2), 1.5, (1, 2)), (1, (2, 0), -0.5, (2, 0)), (0, (0, 0), math.nan, (0, 0))),
    ),
    Case(
        "F.nll_loss",
        lambda x, y: lkF.nll_loss(x, y, reduction="none"),
        (np.log(P), Y),
        ((1, (2,), 3, (2,)), (1, (0,), -1, (0,))),
    ),
    Case(
        "F.cross_entropy-ids",
        lambda x, y, w: lkF.cross_entropy(x, y, w, reduction="none", label_smoothing=0.1),
        (X, Y, W3),
        ((1, (3,), 7, (3,)),),
    ),
    Case(
        "F.cross_entropy-soft",
        lambda x, t, w: lkF.cross_entropy(x, t, w, reduction="none", label_smoothing=0.1),
        (X, T, W3),
    ),
    Case(
        "F.binary_cross_entropy_with_logits",
        lambda x, t, w, q: lkF.binary_cross_entropy_with_logits(
            x, t, w, reduction="none", pos_weight=q
        ),
        (X, T01 * 1.2 - 0.1, RNG.random((4, 3)), RNG.random((4, 1)) * 3),
    ),
    Case("F.mse_loss", lambda x, t: lkF.mse_loss(x, t, reduction="none"), (X, T)),
    Case(
        "F.huber_loss",
        lambda x, t, w: lkF.huber_loss(x, t, reduction="none", delta=0.7, weight=w),
        (X, T, T01),
    ),
    Case("F.smooth_l1_loss", lambda x, t: lkF.smooth_l1_loss(x, t, reduction="none"), (X, T)),
    Case(
        "F.soft_margin_loss", lambda x, t: lkF.soft_margin_loss(x, t, reduction="none"), (X, SIGNS)
    ),
    Case(
        "F.hinge_embedding_loss",
        lambda x, t: lkF.hinge_embedding_loss(x, t, 0.5, reduction="none"),
        (X, SIGNS.astype(np.int64)),  # not differentiable in the target
    ),
    Case(
        "F.multi_margin_loss",
        lambda x, y, w: lkF.multi_margin_loss(x, y, weight=w, reduction="none"),
        (X, Y, W3),
        ((1, (2,), 3, (2,)),),
    ),
    Case(
        "F.multilabel_margin_loss",
        lambda x, y: lkF.multilabel_margin_loss(x, y, reduction="none"),
        (X, LABEL_ROWS),
        ((1, (1, 0), 5, (1,)),),
    ),
    Case(
        "F.multilabel_soft_margin_loss",
        lambda x, t, w: lkF.multilabel_soft_margin_loss(x, t, w, reduction="none"),
        (X, T01, W3),
    ),
    Case(
        "F.poisson_nll_loss",
        lambda x, t: lkF.poisson_nll_loss(x, t, full=True, reduction="none"),
        (X, COUNTS),
    ),
    Case(
        "F.gaussian_nll_loss",
        lambda x, t, v: lkF.gaussian_nll_loss(x, t, v, reduction="none"),
        (X, T, T01 + 0.1),
        ((2, (1, 1), -1.0, (1, 1)),),
    ),
    Case("F.kl_div", lambda x, t: lkF.kl_div(x, t, reduction="none"), (np.log(P), T)),
    Case("F.softmax", lambda x: lkF.softmax(x, 1), (X,)),
    Case("F.log_softmax", lambda x: lkF.log_softmax(x, 0, dtype="float32"), (X,)),
    Case("F.logsumexp", lambda x: lkF.logsumexp(x, (0, 1), keepdim=True), (X,)),
    Case(
        "keras.categorical_crossentropy",
        lambda p, t: ctf.keras.losses.categorical_crossentropy(t, p, label_smoothing=0.1),
        (P, T),
        ((0, (2, 1), 1.5, (2,)),),
    ),
    Case(
        "keras.binary_crossentropy",
        lambda p, t: ctf.keras.losses.binary_crossentropy(t, p),
        (P, T01),
        ((0, (1, 0), -0.1, (1,)),),
    ),
    Case(
        "keras.sparse_categorical_crossentropy",
        lambda p, y: ctf.keras.losses.sparse_categorical_crossentropy(y, p),
        (P, Y),
        ((0, (0, 2), 1.5, (0,)), (1, (3,), 3, (3,))),
    ),
    Case("keras.huber", lambda p, t: ctf.keras.losses.huber(t, p, 0.5), (X, T)),
    Case("keras.log_cosh", lambda p, t: ctf.keras.losses.log_cosh(t, p), (X, T)),
    Case("keras.MAPE", lambda p, t: ctf.keras.losses.MAPE(t, p), (X, T)),
    Case("keras.MSLE", lambda p, t: ctf.keras.losses.MSLE(t, p), (P, T)),
    Case("keras.poisson", lambda p, t: ctf.keras.losses.poisson(t, p), (P, COUNTS)),
    Case("keras.kl_divergence", lambda p, t: ctf.keras.losses.kld(t, p), (P, T)),
    Case(
        "keras.binary_focal_crossentropy",
        lambda p, t: ctf.keras.losses.binary_focal_crossentropy(t, p, True, label_smoothing=0.1),
        (P, T01),
        ((0, (3, 2), 1.5, (3,)),),
    ),
    Case(
        "keras.binary_focal_crossentropy-logits",
        lambda x, t: ctf.keras.losses.binary_focal_crossentropy(t, x, from_logits=True),
        (X, T01),
    ),
    Case(
        "keras.categorical_focal_crossentropy",
        lambda p, t: ctf.keras.losses.categorical_focal_crossentropy(t, p, gamma=1.5),
        (P, T),
        ((0, (1, 1), -0.5, (1,)),),
    ),
    Case(
        "keras.categorical_generalized_cross_entropy",
        lambda p, y: ctf.keras.losses.categorical_generalized_cross_entropy(y, p, 0.7),
        (P, Y),
        ((1, (2,), 3, (2,)),),
    ),
    Case("keras.hinge", lambda p, t: ctf.keras.losses.hinge(t, p), (X, SIGNS)),
    Case("keras.squared_hinge", lambda p, t: ctf.keras.losses.squared_hinge(t, p), (X, SIGNS)),
    Case("keras.categorical_hinge", lambda p, t: ctf.keras.losses.categorical_hinge(t, p), (X, T)),
    Case(
        "keras.Huber",
        lambda p, t, sw: ctf.keras.losses.Huber(reduction=None, dtype="float64")(t, p, sw),
        (X, T, RNG.random(4)),
    ),
    Case(
        "keras.CategoricalCrossentropy",
        lambda p, t, sw: ctf.keras.losses.CategoricalCrossentropy(reduction=None, dtype="float64")(
            t, p, sw
        ),
        (P, T, RNG.random(4)),
    ),
    Case(
        "keras.SparseCategoricalCrossentropy",
        lambda x, y: ctf.keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=-1, reduction=None, dtype="float64"
        )(y, x),
        (X, np.array([0, -1, 1, 2])),
    ),
    Case(
        "tf.nn.sparse_softmax_cross_entropy_with_logits",
        lambda x, y: ctf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x),
        (X, Y),
        ((1, (1,), -1, (1,)),),
    ),
    Case(
        "tf.nn.softmax_cross_entropy_with_logits-broadcast",
        lambda x, t: ctf.nn.softmax_cross_entropy_with_logits(labels=t, logits=x),
        (X, T[0]),
    ),
]
BAD = [(case, i) for case in CASES for i in range(len(case.bad))]


def planted(case, i):
    which, where, value, affected = case.bad[i]
    arrays = [a.copy() for a in case.arrays]
    arrays[which][where] = value
    return arrays, affected


def assert_nan_only_where_affected(got, eager, affected):
    got = np.asarray(got, dtype=np.float64)
    assert np.isnan(got[affected]), f"{got} is not NaN at {affected}"
    keep = np.ones(got.shape, dtype=bool)
    keep[affected] = False
    np.testing.assert_allclose(got[keep], np.asarray(eager)[keep], rtol=1e-10, atol=1e-12)


def eager_value(case, arrays):
    """The eager loss of the good inputs (NumPy), where they can be read."""
    return np.asarray(case.call(*arrays), dtype=np.float64)


# --------------------------------------------------------------------------- torch.compile

_COMPILED: dict[str, Any] = {}


def compiled(torch, case):
    if case.id not in _COMPILED:
        _COMPILED[case.id] = torch.compile(case.call, fullgraph=True, backend="aot_eager")
    return _COMPILED[case.id]


def torch_inputs(torch, arrays):
    out = []
    for a in arrays:
        t = torch.tensor(a)
        out.append(t.requires_grad_(True) if t.is_floating_point() else t)
    return out


def value_and_grads(torch, fn, inputs):
    value = fn(*inputs)
    leaves = [a for a in inputs if a.requires_grad]
    grads = torch.autograd.grad(value.sum(), leaves)
    return value.detach().numpy(), [g.numpy() for g in grads]


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    dynamo = torch._dynamo
    with dynamo.config.patch(recompile_limit=64, accumulated_recompile_limit=1024):
        yield torch


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_compile_equals_eager(torch, case):
    v_ref, g_ref = value_and_grads(torch, case.call, torch_inputs(torch, case.arrays))
    v, g = value_and_grads(torch, compiled(torch, case), torch_inputs(torch, case.arrays))
    np.testing.assert_allclose(v, v_ref, rtol=1e-12, atol=1e-14)
    for got, ref in zip(g, g_ref, strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("case", "i"), BAD, ids=lambda c: c.id if isinstance(c, Case) else c)
def test_compile_bad_value_is_nan(torch, case, i):
    arrays, affected = planted(case, i)
    with pytest.raises(ValueError, match="must be"):  # eager refuses it
        case.call(*(torch.tensor(a) for a in arrays))
    inputs = torch_inputs(torch, arrays)
    value = compiled(torch, case)(*inputs)
    assert_nan_only_where_affected(value.detach().numpy(), eager_value(case, case.arrays), affected)
    leaves = [a for a in inputs if a.requires_grad]
    grads = torch.autograd.grad(value.sum(), leaves)
    assert np.isnan(grads[0].numpy()).any()  # never a plausible gradient either


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_meta(torch, case):
    ref = case.call(*(torch.tensor(a) for a in case.arrays))
    inputs = [torch.tensor(a).to("meta") for a in case.arrays]
    inputs = [a.requires_grad_(True) if a.is_floating_point() else a for a in inputs]
    out = case.call(*inputs)
    assert out.device.type == "meta"
    assert out.shape == ref.shape and out.dtype == ref.dtype
    out.sum().backward()
    assert inputs[0].grad.device.type == "meta" and inputs[0].grad.shape == inputs[0].shape


# --------------------------------------------------------------------------- jax.jit


@pytest.fixture(scope="module")
def jax():
    return pytest.importorskip("jax")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_jit_equals_eager(jax, case):
    arrays = [jax.numpy.asarray(a) for a in case.arrays]
    value = np.asarray(jax.jit(case.call)(*arrays))
    tol = {"rtol": 1e-6 if value.dtype == np.float32 else 1e-12, "atol": 1e-14}
    np.testing.assert_allclose(value, eager_value(case, case.arrays), **tol)

    def total(a, *rest):
        return case.call(a, *rest).sum()

    g_ref = jax.grad(total)(*arrays)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(total))(*arrays)), g_ref, **tol)


@pytest.mark.parametrize(("case", "i"), BAD, ids=lambda c: c.id if isinstance(c, Case) else c)
def test_jit_bad_value_is_nan(jax, case, i):
    arrays, affected = planted(case, i)
    with pytest.raises(ValueError, match="must be"):  # eager (concrete arrays) refuses it
        case.call(*(jax.numpy.asarray(a) for a in arrays))
    arrays = [jax.numpy.asarray(a) for a in arrays]
    value = jax.jit(case.call)(*arrays)
    assert_nan_only_where_affected(np.asarray(value), eager_value(case, case.arrays), affected)
    grad = jax.jit(jax.grad(lambda a, *rest: case.call(a, *rest).sum()))(*arrays)
    assert np.isnan(np.asarray(grad)).any()  # never a plausible gradient either
