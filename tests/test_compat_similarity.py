"""The pairwise adapters against PyTorch 2.13 and Keras 3 themselves.

torch: ``cosine_embedding_loss``, ``margin_ranking_loss``, ``triplet_margin_loss``,
``triplet_margin_with_distance_loss`` and their ``nn`` classes.  Each case is one call
written for both modules (``m.F`` is ``torch.nn.functional`` or
``losskit.compat.torch``, ``m.nn`` is ``torch.nn`` or ``losskit.compat.torch.nn``),
run on the same float64 arrays: the value and its derivative with respect to every
floating argument PyTorch differentiates, by torch autograd on torch tensors and by
``jax.grad`` on JAX arrays; NumPy arrays give the value.  The kinks (PyTorch's slope
1), targets other than -1 and 1, tiny vectors (PyTorch's additive eps) and empty
batches (NaN means) are cases too.

Keras: ``cosine_similarity`` and ``CosineSimilarity`` against ``keras.losses`` in
float64 (value, both derivatives) and float32 (the class, reductions, weights).
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from _frameworks import tensorflow
from losskit.compat import tf as lktf
from losskit.compat import torch as lkF
from losskit.compat.torch import nn as lknn
from test_compat_torch_losses import assert_same, torch_value_and_grads

torch = pytest.importorskip("torch")

REF = SimpleNamespace(F=torch.nn.functional, nn=torch.nn)
OURS = SimpleNamespace(F=lkF, nn=lknn)
TOL = {"rtol": 1e-10, "atol": 1e-13}  # test_compat_torch_losses's, which assert_same uses
RNG = np.random.default_rng(20261203)

A, B, C = (RNG.normal(size=(5, 4)) for _ in range(3))
SIGNS = np.array([1.0, -1.0, -1.0, 1.0, -1.0])
ODD_TARGETS = np.array([1.0, 0.0, 2.0, -1.0, 0.5])  # PyTorch takes any value
S1, S2 = RNG.normal(size=7), RNG.normal(size=7)
RANK = np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0, 1.0])
# Exactly at the kinks: cos(x1, x2) = 0 = margin; x1 - x2 = margin = 0.5; d(a, p) = d(a, n)
KINK_X1, KINK_X2 = np.array([[0.0, 2.0], [1.0, 0.0]]), np.array([[3.0, 0.0], [1.0, 0.0]])
TIE_A, TIE_P, TIE_N = np.zeros((1, 2)), np.array([[3.0, 4.0]]), np.array([[0.0, 5.0]])
TINY = A * 1e-7  # norms below 1e-6: PyTorch's sqrt(|x|^2 + 1e-12) is not |x|


def squared_distance(x, y):
    """A distance written for NumPy, torch and JAX arrays alike."""
    return ((x - y) ** 2).sum(-1)


def case(call, wrt, **arrays):
    return call, arrays, list(wrt)


X12 = ("input1", "input2")
APN = ("anchor", "positive", "negative")

CASES = {
    # ---------------------------------------------------------------- cosine_embedding_loss
    "cosine_embedding": case(
        lambda m, input1, input2, target: m.F.cosine_embedding_loss(input1, input2, target),
        X12,
        input1=A,
        input2=B,
        target=SIGNS,
    ),
    "cosine_embedding-margin-none": case(
        lambda m, input1, input2, target: m.F.cosine_embedding_loss(
            input1, input2, target, 0.2, reduction="none"
        ),
        X12,
        input1=A,
        input2=B,
        target=SIGNS,
    ),
    "cosine_embedding-other-targets": case(
        lambda m, input1, input2, target: m.F.cosine_embedding_loss(
            input1, input2, target, reduction="sum"
        ),
        X12,
        input1=A,
        input2=B,
        target=ODD_TARGETS,
    ),
    "cosine_embedding-tiny-vectors": case(
        lambda m, input1, input2, target: m.F.cosine_embedding_loss(
            input1, input2, target, -0.5, reduction="none"
        ),
        X12,
        input1=TINY,
        input2=B * 1e-8,
        target=SIGNS,
    ),
    "cosine_embedding-kink": case(
        lambda m, input1, input2, target: m.F.cosine_embedding_loss(
            input1, input2, target, reduction="none"
        ),
        X12,
        input1=KINK_X1,
        input2=KINK_X2,
        target=np.array([-1.0, 1.0]),
    ),
    "cosine_embedding-unbatched": case(
        lambda m, input1, input2, target: m.F.cosine_embedding_loss(input1, input2, target),
        X12,
        input1=A[0],
        input2=B[0],
        target=np.array(-1.0),
    ),
    "cosine_embedding-empty": case(
        lambda m, input1, input2, target: m.F.cosine_embedding_loss(input1, input2, target),
        X12,
        input1=A[:0],
        input2=B[:0],
        target=SIGNS[:0],
    ),
    "CosineEmbeddingLoss": case(
        lambda m, input1, input2, target: m.nn.CosineEmbeddingLoss(0.3, reduction="sum")(
            input1, input2, target
        ),
        X12,
        input1=A,
        input2=B,
        target=SIGNS,
    ),
    # ---------------------------------------------------------------- margin_ranking_loss
    "margin_ranking": case(
        lambda m, input1, input2, target: m.F.margin_ranking_loss(input1, input2, target),
        (*X12, "target"),
        input1=S1,
        input2=S2,
        target=RANK,
    ),
    "margin_ranking-other-targets": case(
        lambda m, input1, input2, target: m.F.margin_ranking_loss(
            input1, input2, target, 0.4, reduction="none"
        ),
        (*X12, "target"),
        input1=S1[:5],
        input2=S2[:5],
        target=ODD_TARGETS,
    ),
    "margin_ranking-kink": case(
        lambda m, input1, input2, target: m.F.margin_ranking_loss(
            input1, input2, target, 0.5, reduction="sum"
        ),
        (*X12, "target"),
        input1=np.array([1.5, 0.0]),
        input2=np.array([1.0, 0.5]),
        target=np.array([1.0, -1.0]),
    ),
    "margin_ranking-2d-empty": case(
        lambda m, input1, input2, target: m.F.margin_ranking_loss(input1, input2, target),
        (*X12, "target"),
        input1=A[:0],
        input2=B[:0],
        target=C[:0],
    ),
    "MarginRankingLoss": case(
        lambda m, input1, input2, target: m.nn.MarginRankingLoss(margin=0.2)(
            input1, input2, target
        ),
        (*X12, "target"),
        input1=S1,
        input2=S2,
        target=RANK,
    ),
    # ---------------------------------------------------------------- triplet_margin_loss
    "triplet_margin": case(
        lambda m, anchor, positive, negative: m.F.triplet_margin_loss(anchor, positive, negative),
        APN,
        anchor=A,
        positive=B,
        negative=C,
    ),
    "triplet_margin-p1-swap": case(
        lambda m, anchor, positive, negative: m.F.triplet_margin_loss(
            anchor, positive, negative, 3.0, 1, swap=True, reduction="none"
        ),
        APN,
        anchor=A,
        positive=B,
        negative=C,
    ),
    "triplet_margin-p3-eps0-swap": case(
        lambda m, anchor, positive, negative: m.F.triplet_margin_loss(
            anchor, positive, negative, margin=2.5, p=3.0, eps=0.0, swap=True, reduction="sum"
        ),
        APN,
        anchor=A,
        positive=B,
        negative=C,
    ),
    "triplet_margin-kink": case(
        lambda m, anchor, positive, negative: m.F.triplet_margin_loss(
            anchor, positive, negative, margin=1.0, eps=0.0
        ),
        APN,
        anchor=TIE_A,
        positive=TIE_P,
        negative=TIE_N + np.array([[0.0, 1.0]]),
    ),
    "triplet_margin-swap-tie": case(  # d(a, n) = d(p, n): torch.min shares the gradient
        lambda m, anchor, positive, negative: m.F.triplet_margin_loss(
            anchor, positive, negative, margin=6.0, eps=0.0, swap=True
        ),
        APN,
        anchor=TIE_A,
        positive=np.array([[0.0, 10.0]]),
        negative=TIE_N,
    ),
    "triplet_margin-unbatched": case(
        lambda m, anchor, positive, negative: m.F.triplet_margin_loss(anchor, positive, negative),
        APN,
        anchor=A[0],
        positive=B[0],
        negative=C[0],
    ),
    "triplet_margin-empty": case(
        lambda m, anchor, positive, negative: m.F.triplet_margin_loss(anchor, positive, negative),
        APN,
        anchor=A[:0],
        positive=B[:0],
        negative=C[:0],
    ),
    "TripletMarginLoss": case(
        lambda m, anchor, positive, negative: m.nn.TripletMarginLoss(2.0, 1.5, 1e-3, True)(
            anchor, positive, negative
        ),
        APN,
        anchor=A,
        positive=B,
        negative=C,
    ),
    # ---------------------------------------------------------------- with a distance function
    "triplet_with_distance-default": case(
        lambda m, anchor, positive, negative: m.F.triplet_margin_with_distance_loss(
            anchor, positive, negative, margin=2.0, swap=True, reduction="none"
        ),
        APN,
        anchor=A,
        positive=B,
        negative=C,
    ),
    "triplet_with_distance-callable": case(
        lambda m, anchor, positive, negative: m.F.triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=squared_distance, margin=4.0
        ),
        APN,
        anchor=A,
        positive=B,
        negative=C,
    ),
    "triplet_with_distance-callable-swap-sum": case(
        lambda m, anchor, positive, negative: m.F.triplet_margin_with_distance_loss(
            anchor,
            positive,
            negative,
            distance_function=squared_distance,
            margin=4.0,
            swap=True,
            reduction="sum",
        ),
        APN,
        anchor=A,
        positive=B,
        negative=C,
    ),
    "triplet_with_distance-empty": case(
        lambda m, anchor, positive, negative: m.F.triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=squared_distance
        ),
        APN,
        anchor=A[:0],
        positive=B[:0],
        negative=C[:0],
    ),
    "triplet_margin-p-inf": case(  # the largest |a_i - p_i|; the last row's d(a, p) a tie
        lambda m, anchor, positive, negative: m.F.triplet_margin_loss(
            anchor, positive, negative, margin=2.0, p=math.inf, eps=0.0, reduction="none"
        ),
        APN,
        anchor=np.concatenate([A, np.zeros((1, 4))]),
        positive=np.concatenate([B, np.array([[1.0, -1.0, 0.5, 0.0]])]),
        negative=np.concatenate([C, np.array([[2.5, 0.0, 0.0, 0.0]])]),
    ),
    "TripletMarginLoss-p-inf-swap": case(
        lambda m, anchor, positive, negative: m.nn.TripletMarginLoss(
            margin=2.0, p=math.inf, swap=True, eps=0.0
        )(anchor, positive, negative),
        APN,
        anchor=A,
        positive=B,
        negative=C,
    ),
    "cosine_embedding-bool-targets": case(  # PyTorch reads True as 1, False as 0 (loss 0)
        lambda m, input1, input2, target: m.F.cosine_embedding_loss(
            input1, input2, target, reduction="none"
        ),
        X12,
        input1=A,
        input2=B,
        target=SIGNS > 0,
    ),
    "TripletMarginWithDistanceLoss": case(
        lambda m, anchor, positive, negative: m.nn.TripletMarginWithDistanceLoss(
            distance_function=squared_distance, margin=3.0, swap=True
        )(anchor, positive, negative),
        APN,
        anchor=A,
        positive=B,
        negative=C,
    ),
}


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


@pytest.mark.parametrize("name", [n for n in CASES if not n.endswith("empty")])
def test_jax_arrays(references, name):
    jax = pytest.importorskip("jax")
    call, arrays, wrt = CASES[name]
    v_ref, g_ref = references[name]
    fixed = {k: jax.numpy.asarray(a) for k, a in arrays.items() if k not in wrt}

    def total(*inputs):
        return call(OURS, **fixed, **dict(zip(wrt, inputs, strict=True))).sum()

    inputs = [jax.numpy.asarray(arrays[k]) for k in wrt]
    grads = jax.jit(jax.grad(total, argnums=tuple(range(len(wrt)))))(*inputs)
    v = jax.jit(lambda *a: call(OURS, **fixed, **dict(zip(wrt, a, strict=True))))(*inputs)
    assert isinstance(v, jax.Array)
    assert_same(v, dict(zip(wrt, grads, strict=True)), v_ref.numpy(), g_ref, name)


# --------------------------------------------------------------------------- beyond the table


def test_kink_slopes_are_torchs():
    """At the kinks PyTorch's clamp_min passes the whole gradient (the core: half)."""
    x1 = torch.tensor(np.array([1.5]), requires_grad=True)
    lkF.margin_ranking_loss(x1, torch.tensor([1.0]), torch.tensor([1.0]), 0.5).backward()
    assert x1.grad.item() == -1.0
    a = torch.tensor(TIE_A, requires_grad=True)
    lkF.triplet_margin_loss(a, torch.tensor(TIE_P), torch.tensor(TIE_N), 1e-300, eps=0.0).backward()
    np.testing.assert_allclose(a.grad.numpy(), [[-0.6, 0.2]], **TOL)  # (a-p)/5 - (a-n)/5


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_low_precision_keeps_torchs_dtype(dtype):
    """The loss in PyTorch's dtype, within a rounding of PyTorch's float64 number."""
    cast = {k: torch.tensor(v).to(getattr(torch, dtype)) for k, v in (("a", A), ("b", B), ("c", C))}
    tol = {"rtol": 2e-2 if dtype == "bfloat16" else 2e-3, "atol": 1e-3}
    calls = [
        lambda F, a, b, c: F.cosine_embedding_loss(a, b, torch.tensor(SIGNS), reduction="none"),
        lambda F, a, b, c: F.margin_ranking_loss(a[:, 0], b[:, 0], torch.tensor(SIGNS)),
        lambda F, a, b, c: F.triplet_margin_loss(a, b, c, reduction="none"),
        lambda F, a, b, c: F.triplet_margin_with_distance_loss(a, b, c, swap=True),
    ]
    for call in calls:
        ours = call(lkF, **cast)
        theirs = call(torch.nn.functional, **cast)
        exact = call(torch.nn.functional, **{k: v.double() for k, v in cast.items()})
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours.double().numpy(), exact.numpy(), **tol)


def test_where_torchs_float32_squares_overflow():
    """Elements of 1e30 in float32: PyTorch's squares overflow (its cosine is NaN, its
    distances inf); the adapters give the finite numbers of the float64 computation."""
    a32 = A.astype(np.float32) * np.float32(1e30)
    b32 = B.astype(np.float32) * np.float32(1e30)
    c32 = C.astype(np.float32) * np.float32(1e30)
    theirs = torch.nn.functional.cosine_embedding_loss(
        torch.tensor(a32), torch.tensor(b32), torch.tensor(SIGNS), reduction="none"
    )
    assert torch.isnan(theirs).all()
    ours = lkF.cosine_embedding_loss(a32, b32, SIGNS.astype(np.float32), reduction="none")
    exact = torch.nn.functional.cosine_embedding_loss(
        torch.tensor(A), torch.tensor(B), torch.tensor(SIGNS), reduction="none"
    )
    np.testing.assert_allclose(ours, exact.numpy(), rtol=1e-5, atol=1e-6)
    pair = torch.nn.functional.pairwise_distance(torch.tensor(a32), torch.tensor(b32))
    assert torch.isinf(pair).all()
    ours = lkF.triplet_margin_loss(a32, b32, c32, margin=1e30, reduction="none")
    exact = torch.nn.functional.triplet_margin_loss(
        torch.tensor(A), torch.tensor(B), torch.tensor(C), margin=1.0, eps=1e-36, reduction="none"
    )
    np.testing.assert_allclose(ours / 1e30, exact.numpy(), rtol=1e-5, atol=1e-6)


def test_legacy_flags_warn_as_torchs():
    x1, x2, t = torch.tensor(S1), torch.tensor(S2), torch.tensor(RANK)
    with pytest.warns(UserWarning, match=r"please use reduction='sum' instead") as record:
        ours = lkF.margin_ranking_loss(x1, x2, t, size_average=False)
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match=r"please use reduction='none' instead"):
        module = lknn.TripletMarginLoss(1.0, 2.0, 1e-6, False, None, False)
    assert module.reduction == "none"
    theirs = torch.nn.functional.margin_ranking_loss(x1, x2, t, reduction="sum")
    assert float(ours) == pytest.approx(float(theirs), rel=1e-12)
    with pytest.warns(UserWarning, match=r"please use reduction='none' instead"):
        ours = lkF.cosine_embedding_loss(torch.tensor(A), torch.tensor(B), SIGNS, reduce=False)
    assert ours.shape == (5,)


def test_constructors_are_torchs():
    """Positional orders, defaults and attributes as torch.nn's."""
    pairs = [
        (
            lknn.CosineEmbeddingLoss(0.25, None, None, "sum"),
            torch.nn.CosineEmbeddingLoss(0.25, None, None, "sum"),
        ),
        (lknn.MarginRankingLoss(), torch.nn.MarginRankingLoss()),
        (
            lknn.TripletMarginLoss(2.0, 1.0, 1e-3, True),
            torch.nn.TripletMarginLoss(2.0, 1.0, 1e-3, True),
        ),
    ]
    for ours, theirs in pairs:
        for attribute in ("margin", "reduction", "p", "eps", "swap"):
            assert getattr(ours, attribute, None) == getattr(theirs, attribute, None)
        assert isinstance(ours, torch.nn.Module)
    ours = lknn.TripletMarginWithDistanceLoss(margin=2.0, swap=True, reduction="none")
    assert (ours.margin, ours.swap, ours.reduction) == (2.0, True, "none")
    with pytest.raises(TypeError):
        lknn.TripletMarginWithDistanceLoss(None)  # keyword-only, as torch's


def test_bad_arguments():
    """torch's words where it checks (margins of the triplet losses, reduction); the
    adapter's where PyTorch would broadcast or compute a meaningless number."""
    a, b, c = torch.tensor(A), torch.tensor(B), torch.tensor(C)
    errors = [
        (
            lambda: lkF.triplet_margin_loss(a, b, c, margin=0.0),
            "margin must be greater than 0, got 0.0",
        ),
        (
            lambda: lkF.triplet_margin_with_distance_loss(a, b, c, margin=-1.0),
            "margin must be greater than 0, got -1.0",
        ),
        (
            lambda: lkF.triplet_margin_with_distance_loss(a, b, c, reduction="avg"),
            "avg is not a valid value for reduction",
        ),
        (
            lambda: lknn.TripletMarginLoss(margin=0.0),
            "TripletMarginLoss: expected margin to be greater than 0, got 0.0 instead",
        ),
        (
            lambda: lknn.TripletMarginWithDistanceLoss(margin=0),
            "TripletMarginWithDistanceLoss: expected margin to be greater than 0, got 0 instead",
        ),
        (
            lambda: lkF.triplet_margin_loss(a, b[0], c),
            "The anchor, positive, and negative tensors are expected to have the same number of "
            "dimensions, but got: anchor 2D, positive 1D, and negative 2D inputs",
        ),
        (
            lambda: lkF.triplet_margin_loss(a, b[:3], c),
            "`positive` must have the shape of `anchor` (5, 4); got (3, 4) (PyTorch would "
            "broadcast them)",
        ),
        (
            lambda: lkF.triplet_margin_loss(a, b, c, p=0.5),
            "`p` must be a number >= 1 (a norm; inf: the largest |x_i - y_i|); got 0.5",
        ),
        (  # checked before the swap's minimum, which would broadcast to (5, 5)
            lambda: lkF.triplet_margin_with_distance_loss(
                a,
                b,
                c,
                distance_function=lambda x, y: (x - y).norm(dim=-1, keepdim=y is b),
                swap=True,
            ),
            "`distance_function(anchor, negative)` must have the shape of "
            "`distance_function(anchor, positive)` (5, 1); got (5,) (PyTorch would broadcast "
            "them)",
        ),
        (
            lambda: lkF.triplet_margin_with_distance_loss(
                a,
                b,
                c,
                distance_function=lambda x, y: (x - y).norm(dim=-1, keepdim=x is b),
                swap=True,
            ),
            "`distance_function(positive, negative)` must have the shape of "
            "`distance_function(anchor, positive)` (5,); got (5, 1) (PyTorch would broadcast "
            "them)",
        ),
        (
            lambda: lkF.cosine_embedding_loss(a, b, torch.ones(5, 1)),
            "`target` must be 0-d or 1-d (multi-target not supported); got shape (5, 1)",
        ),
        (
            lambda: lkF.cosine_embedding_loss(a[0], b[0], torch.ones(5)),
            "a 1-d `target` takes 2-d inputs; got `input1` of shape (4,) and `input2` of "
            "shape (4,)",
        ),
        (
            lambda: lkF.cosine_embedding_loss(a, b, torch.ones(4)),
            "`target` must have the shape of `input1` (5, 4) without its last dim, that is "
            "(5,); got (4,)",
        ),
        (
            lambda: lkF.margin_ranking_loss(a, b, torch.ones(5)),
            "margin_ranking_loss: all input tensors must have the same number of dimensions; "
            "got input1 (5, 4), input2 (5, 4), target (5,)",
        ),
        (
            lambda: lkF.margin_ranking_loss(a[0], b[0], torch.ones(3)),
            "`target` must have the shape of `input1` (4,); got (3,) "
            "(PyTorch would broadcast them)",
        ),
        (
            lambda: lkF.cosine_embedding_loss(a, b, torch.ones(5), reduction="avg"),
            "avg is not a valid value for reduction",
        ),
    ]
    for call, text in errors:
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == text
    # a bool target: PyTorch cannot negate it (a RuntimeError there), a TypeError here
    bools = torch.tensor([True, False, True, True, False])
    with pytest.raises(RuntimeError, match="on a bool tensor is not supported"):
        torch.nn.functional.margin_ranking_loss(a[:, 0], b[:, 0], bools)
    with pytest.raises(TypeError) as err:
        lkF.margin_ranking_loss(a[:, 0], b[:, 0], bools)
    assert str(err.value) == (
        "`target` must be numbers, not bool (PyTorch cannot negate a bool tensor)"
    )
    # PyTorch's own words for the checks it shares
    with pytest.raises(ValueError, match=r"margin must be greater than 0, got 0\.0"):
        torch.nn.functional.triplet_margin_loss(a, b, c, margin=0.0)
    with pytest.raises(ValueError, match=r"expected margin to be greater than 0, got 0\.0 instead"):
        torch.nn.TripletMarginLoss(margin=0.0)


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_compiled_adapters_equal_eager():
    """The adapters compile whole; NaN-free equal numbers (bad values are the core's
    rule, which the adapters switch off: any target is PyTorch's number)."""
    torch._dynamo.reset()

    def loss(a, b, c, t):
        return (
            lkF.cosine_embedding_loss(a, b, t, 0.1, reduction="none")
            + lkF.margin_ranking_loss(a[:, 0], b[:, 0], t, reduction="none")
            + lkF.triplet_margin_loss(a, b, c, swap=True, reduction="none")
        )

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    args = [torch.tensor(v) for v in (A, B, C, ODD_TARGETS)]
    np.testing.assert_allclose(compiled(*args).numpy(), loss(*args).numpy(), **TOL)
    theirs = (
        torch.nn.functional.cosine_embedding_loss(*args[:2], args[3], 0.1, reduction="none")
        + torch.nn.functional.margin_ranking_loss(
            args[0][:, 0], args[1][:, 0], args[3], reduction="none"
        )
        + torch.nn.functional.triplet_margin_loss(*args[:3], swap=True, reduction="none")
    )
    np.testing.assert_allclose(compiled(*args).numpy(), theirs.numpy(), **TOL)


# --------------------------------------------------------------------------- Keras


def keras_value_and_grads(y_true, y_pred, **kwargs):
    tf, keras = tensorflow()
    t, p = tf.Variable(y_true), tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        v = keras.losses.cosine_similarity(t, p, **kwargs)
        total = tf.reduce_sum(v)
    gt, gp = tape.gradient(total, [t, p])
    return v.numpy(), gt.numpy(), gp.numpy()


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_keras_cosine_similarity(backend, axis):
    """float64 values and the derivatives in y_true and y_pred, a vector below Keras's
    normalize epsilon (1e-7) included."""
    y_true, y_pred = A.copy(), B.copy()
    y_pred[1] *= 1e-9
    v_ref, gt_ref, gp_ref = keras_value_and_grads(y_true, y_pred, axis=axis)
    fn = lktf.keras.losses.cosine_similarity
    if backend == "numpy":
        np.testing.assert_allclose(fn(y_true, y_pred, axis=axis), v_ref, **TOL)
        return
    if backend == "torch":
        t = torch.tensor(y_true, requires_grad=True)
        p = torch.tensor(y_pred, requires_grad=True)
        v = fn(t, p, axis=axis)
        gt, gp = torch.autograd.grad(v.sum(), [t, p])
        v, gt, gp = v.detach().numpy(), gt.numpy(), gp.numpy()
    else:
        jax = pytest.importorskip("jax")
        v = np.asarray(fn(jax.numpy.asarray(y_true), jax.numpy.asarray(y_pred), axis=axis))
        gt, gp = jax.jit(jax.grad(lambda t, p: fn(t, p, axis=axis).sum(), argnums=(0, 1)))(
            y_true, y_pred
        )
    np.testing.assert_allclose(v, v_ref, **TOL)
    np.testing.assert_allclose(np.asarray(gt), gt_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(gp), gp_ref, rtol=1e-9, atol=1e-12)


def test_keras_cosine_similarity_class():
    """The class: float32, each reduction, sample_weight, axis, a trailing size-1 axis
    squeezed as Keras's wrapper does, lists taken as float32."""
    _, keras = tensorflow()
    w = RNG.uniform(0.0, 2.0, size=5)
    for reduction in ("sum_over_batch_size", "sum", "none", None, "mean_with_sample_weight"):
        for axis in (-1, 0):
            ours = lktf.keras.losses.CosineSimilarity(axis=axis, reduction=reduction)
            theirs = keras.losses.CosineSimilarity(axis=axis, reduction=reduction)
            weight = w if axis == -1 else w[:4]
            got = ours(A, B, sample_weight=weight)
            assert np.asarray(got).dtype == np.float32
            np.testing.assert_allclose(
                got, theirs(A, B, sample_weight=weight), rtol=2e-6, atol=1e-6
            )
    ours = lktf.keras.losses.CosineSimilarity()
    assert ours.get_config() == {
        "name": "cosine_similarity",
        "reduction": "sum_over_batch_size",
        "axis": -1,
    }
    np.testing.assert_allclose(
        ours(A[:, :1], B[:, 0]), keras.losses.CosineSimilarity()(A[:, :1], B[:, 0]), rtol=2e-6
    )
    got = lktf.keras.losses.cosine_similarity([[0.0, 1.0]], [[1.0, 1.0]])
    assert got.dtype == np.float32
    np.testing.assert_allclose(
        got, keras.losses.cosine_similarity([[0.0, 1.0]], [[1.0, 1.0]]), rtol=1e-6
    )


def test_keras_where_its_squares_overflow():
    """float32 elements of 1e20 (and float16 of 300): Keras's squares overflow and its
    similarity is 0; the adapter's is the float64 one, rounded once."""
    _, keras = tensorflow()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = np.asarray(
            keras.losses.cosine_similarity(A.astype(np.float32) * 1e20, B.astype(np.float32) * 1e20)
        )
    np.testing.assert_array_equal(theirs, 0.0)
    exact = keras_value_and_grads(A, B)[0]
    for dtype, scale in ((np.float32, 1e20), (np.float16, 300.0)):
        ours = lktf.keras.losses.cosine_similarity(
            (A * scale).astype(dtype), (B * scale).astype(dtype)
        )
        assert ours.dtype == dtype
        np.testing.assert_allclose(
            ours, exact, rtol=2e-3 if dtype == np.float16 else 1e-5, atol=1e-3
        )


def test_keras_shape_error():
    with pytest.raises(ValueError) as err:
        lktf.keras.losses.cosine_similarity(A, B[:, :3])
    assert str(err.value) == (
        "`y_true` must have the shape of `y_pred` (5, 3); got (5, 4) (Keras would broadcast them)"
    )
    assert math.isclose(float(lktf.keras.losses.cosine_similarity([1.0, 0.0], [2.0, 0.0])), -1.0)


def test_keras_messages_name_keras_arguments():
    """The adapter's messages name Keras's arguments (`y_pred`), not the core's `pred`."""
    cases = [
        (
            lambda: lktf.keras.losses.cosine_similarity(A, B, axis=5),
            ValueError,
            "`axis` must be an int in [-2, 2) for 2-d `y_pred`; got 5",
        ),
        (
            lambda: lktf.keras.losses.CosineSimilarity(axis=1.0)(A, B),
            TypeError,
            "`axis` must be an int in [-2, 2) for 2-d `y_pred`; got 1.0",
        ),
    ]
    for call, error, text in cases:
        with pytest.raises(error) as err:
            call()
        assert str(err.value) == text
