"""compat.torch.nn against torch.nn's loss classes: constructors, buffers, values, gradients.

Each class is built with the same arguments (by keyword and in PyTorch's
positional order) as ``torch.nn``'s, and called on the same float64 tensors:
value and the gradient with respect to every floating argument PyTorch
differentiates, by torch autograd; NumPy and JAX inputs give the same numbers
in their own kind.  The legacy ``size_average``/``reduce`` warn at
construction, once, as PyTorch's do.  Where PyTorch is installed the classes
are ``torch.nn.Module``s with PyTorch's buffers; without it (a subprocess in
which ``import torch`` fails) they are plain classes that NumPy input works with.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from losskit.compat.torch import nn as lknn

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(20270301)


def t64(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def softmax_rows(a, axis=-1):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


X = RNG.normal(size=(4, 3)) * 2
X4 = RNG.normal(size=(2, 3, 4, 2))
P = RNG.uniform(0.02, 0.98, size=(4, 3))
T01 = RNG.random((4, 3))
T_SOFT = softmax_rows(RNG.normal(size=(4, 3)))
Y = np.array([0, 2, -100, 1])
Y4 = RNG.integers(0, 3, size=(2, 4, 2))
W3 = np.array([0.5, 2.0, -1.0])  # PyTorch takes a negative class weight

# (class, constructor keywords, forward arrays): one row per behaviour worth comparing.
CASES = [
    ("CrossEntropyLoss", {}, (X, Y)),
    ("CrossEntropyLoss", {"weight": W3, "reduction": "sum", "label_smoothing": 0.2}, (X, Y)),
    ("CrossEntropyLoss", {"ignore_index": 1, "reduction": "none"}, (X4, Y4)),
    ("CrossEntropyLoss", {"weight": W3, "label_smoothing": 0.1}, (X, T_SOFT)),
    ("CrossEntropyLoss", {}, (np.zeros((0, 3)), np.zeros(0, dtype=np.int64))),  # NaN mean
    ("NLLLoss", {}, (np.log(T_SOFT), Y)),
    ("NLLLoss", {"weight": W3, "ignore_index": 2, "reduction": "none"}, (X, np.abs(Y) % 3)),
    ("NLLLoss", {}, (X, np.full(4, -100))),  # all ignored: torch's NaN mean
    ("BCELoss", {}, (P, T01)),
    ("BCELoss", {"weight": RNG.random((4, 3)), "reduction": "sum"}, (P, T01)),
    ("BCELoss", {"reduction": "none"}, (np.array([0.0, 1.0, 0.5]), np.array([1.0, 0.0, 1.0]))),
    ("BCEWithLogitsLoss", {}, (X, T01)),
    ("BCEWithLogitsLoss", {"weight": W3, "pos_weight": np.array([2.0, 1.0, 0.5])}, (X, T01)),
    ("BCEWithLogitsLoss", {"pos_weight": np.full((3, 1, 1), 3.0), "reduction": "none"}, (X4, X4)),
    ("MSELoss", {}, (X, T01)),
    ("MSELoss", {"reduction": "sum"}, (X, T01)),
    ("L1Loss", {"reduction": "none"}, (X, T01)),
    ("L1Loss", {}, (X, X)),  # zero errors: torch's subgradient 0
]


def torch_args(kwargs):
    return {k: t64(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


def as_torch(a):
    a = np.asarray(a)
    return t64(a) if a.dtype.kind == "f" else torch.tensor(a)


def value_and_grads(module, arrays):
    """(value, d sum(value) / d each floating array) by torch autograd."""
    leaves = [a.detach().clone().requires_grad_(a.is_floating_point()) for a in arrays]
    value = module(*leaves)
    wrt = [a for a in leaves if a.requires_grad]
    grads = torch.autograd.grad(value.sum(), wrt, allow_unused=True) if value.numel() else wrt
    return value.detach(), [
        g if g is not None else torch.zeros_like(a) for g, a in zip(grads, wrt, strict=True)
    ]


def ids(case):
    name, kwargs, _ = case
    return name + "-" + ",".join(kwargs)


@pytest.mark.parametrize("case", CASES, ids=[ids(c) for c in CASES])
def test_values_and_gradients_are_torchs(case):
    name, kwargs, arrays = case
    ours = getattr(lknn, name)(**torch_args(kwargs))
    theirs = getattr(torch.nn, name)(**torch_args(kwargs))
    tensors = [as_torch(a) for a in arrays]
    v, g = value_and_grads(ours, tensors)
    v_ref, g_ref = value_and_grads(theirs, tensors)
    assert v.dtype == v_ref.dtype and v.shape == v_ref.shape
    np.testing.assert_allclose(v.numpy(), v_ref.numpy(), rtol=1e-12, atol=1e-14, equal_nan=True)
    for a, b in zip(g, g_ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-14, equal_nan=True)
    # NumPy arrays in (weights too): NumPy out, the same number.
    v_np = getattr(lknn, name)(**kwargs)(*arrays)
    assert isinstance(v_np, (np.ndarray, np.generic))
    np.testing.assert_allclose(v_np, v_ref.numpy(), rtol=1e-12, atol=1e-14, equal_nan=True)


@pytest.mark.parametrize("case", [CASES[1], CASES[6], CASES[12], CASES[15]], ids=lambda c: ids(c))
def test_jax_arrays_values_and_gradients(case):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    name, kwargs, (x, t) = case
    module = getattr(lknn, name)(
        **{k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    )
    theirs = getattr(torch.nn, name)(**torch_args(kwargs))
    v_ref, g_ref = value_and_grads(theirs, [as_torch(x), as_torch(t)])
    t_j = jnp.asarray(t)
    v = module(jnp.asarray(x), t_j)
    g = jax.grad(lambda z: jnp.sum(module(z, t_j)))(jnp.asarray(x))
    assert isinstance(v, jax.Array)
    np.testing.assert_allclose(np.asarray(v), v_ref.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(g), g_ref[0].numpy(), rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------- constructors


POSITIONAL = {
    # PyTorch's positional order, every argument given (legacy flags left at None).
    "CrossEntropyLoss": (t64(W3), None, 1, None, "sum", 0.1),
    "NLLLoss": (t64(W3), None, 1, None, "none"),
    "BCELoss": (t64(W3), None, None, "sum"),
    "BCEWithLogitsLoss": (t64(W3), None, None, "none", t64([1.0, 2.0, 3.0])),
    "MSELoss": (None, None, "sum"),
    "L1Loss": (None, None, "none"),
}


@pytest.mark.parametrize("name", sorted(POSITIONAL))
def test_positional_constructor_order_attributes_and_buffers_are_torchs(name):
    args = POSITIONAL[name]
    ours, theirs = getattr(lknn, name)(*args), getattr(torch.nn, name)(*args)
    assert isinstance(ours, torch.nn.Module)
    assert repr(ours) == repr(theirs)
    for attribute in ("reduction", "ignore_index", "label_smoothing", "weight", "pos_weight"):
        assert hasattr(ours, attribute) == hasattr(theirs, attribute), attribute
        if hasattr(theirs, attribute):
            a, b = getattr(ours, attribute), getattr(theirs, attribute)
            same = bool((a == b).all()) if isinstance(b, torch.Tensor) and a is not None else a is b
            assert same, attribute
    assert dict(ours.named_buffers()).keys() == dict(theirs.named_buffers()).keys()
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    x = t64(P if name == "BCELoss" else X)
    y = torch.tensor([0, 2, 1, 1]) if "NLL" in name or "Cross" in name else t64(T01)
    np.testing.assert_allclose(ours(x, y).numpy(), theirs(x, y).numpy(), rtol=1e-12)


def test_forward_takes_torchs_keyword_names():
    x, y = t64(X), torch.tensor([0, 2, 1, 1])
    for name in ("CrossEntropyLoss", "NLLLoss"):
        ours, theirs = getattr(lknn, name)(), getattr(torch.nn, name)()
        assert float(ours(input=x, target=y)) == pytest.approx(float(theirs(input=x, target=y)))
    with pytest.raises(TypeError, match="unexpected keyword argument 'y_true'"):
        lknn.MSELoss()(input=x, y_true=x)


def test_modules_sit_in_a_module_tree_and_follow_its_dtype():
    # A drop-in user keeps the loss inside the model: .double() casts the
    # weight buffers, state_dict holds them, as with torch.nn's classes.
    class Model(torch.nn.Module):
        def __init__(self, nn):
            super().__init__()
            self.linear = torch.nn.Linear(3, 3)
            self.loss = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]))
            self.bce = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0, 1.0, 1.0]))

        def forward(self, x, y, t):
            z = self.linear(x)
            return self.loss(z, y) + self.bce(z, t)

    torch.manual_seed(0)
    ours = Model(lknn).double()
    torch.manual_seed(0)
    theirs = Model(torch.nn).double()
    assert ours.loss.weight.dtype == torch.float64 and ours.bce.pos_weight.dtype == torch.float64
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    x, y, t = t64(X), torch.tensor([0, 2, 1, 1]), t64(T01)
    ours(x, y, t).backward()
    theirs(x, y, t).backward()
    np.testing.assert_allclose(
        ours.linear.weight.grad.numpy(), theirs.linear.weight.grad.numpy(), rtol=1e-12
    )


def test_numpy_weight_is_an_attribute_not_a_buffer():
    loss = lknn.CrossEntropyLoss(weight=W3)
    assert loss.weight is W3 and dict(loss.named_buffers()) == {}


@pytest.mark.parametrize(
    ("size_average", "reduce"), [(False, None), (None, False), (True, True), (False, True)]
)
@pytest.mark.parametrize("name", ["CrossEntropyLoss", "BCEWithLogitsLoss", "L1Loss"])
def test_legacy_flags_warn_at_construction_only(name, size_average, reduce):
    pattern = "size_average and reduce args will be deprecated"
    with pytest.warns(UserWarning, match=pattern) as record:
        ours = getattr(lknn, name)(size_average=size_average, reduce=reduce)
    assert record[0].filename == __file__  # the user's line, not ours
    with pytest.warns(UserWarning, match=pattern) as record_ref:
        theirs = getattr(torch.nn, name)(size_average=size_average, reduce=reduce)
    assert str(record[0].message) == str(record_ref[0].message)
    assert ours.reduction == theirs.reduction
    x = t64(X)
    t = torch.tensor([0, 2, 1, 1]) if name == "CrossEntropyLoss" else t64(T01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning at forward
        v = ours(x, t)
    np.testing.assert_allclose(v.numpy(), theirs(x, t).numpy(), rtol=1e-12)


def test_legacy_flags_override_reduction_positionally():
    # CrossEntropyLoss(weight, size_average, ignore_index, reduce, reduction, ...)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        ours = lknn.CrossEntropyLoss(None, False, -100, None, "none")
    with pytest.warns(UserWarning, match="reduction='sum'"):
        theirs = torch.nn.CrossEntropyLoss(None, False, -100, None, "none")
    assert ours.reduction == theirs.reduction == "sum"


def test_reduction_is_checked_at_forward_as_torch_does():
    ours, theirs = lknn.MSELoss(reduction="bogus"), torch.nn.MSELoss(reduction="bogus")
    x = t64(X)
    for loss in (ours, theirs):
        with pytest.raises(ValueError, match=r"^bogus is not a valid value for reduction$"):
            loss(x, x)
    loss = lknn.L1Loss(reduction="elementwise_mean")
    with pytest.warns(UserWarning, match="reduction='elementwise_mean' is deprecated"):
        v = loss(x, x + 1)
    assert float(v) == 1.0


def test_nllloss2d_is_deprecated_as_torchs():
    with pytest.warns(FutureWarning, match="`NLLLoss2d` has been deprecated") as record:
        ours = lknn.NLLLoss2d(ignore_index=1)
    assert record[0].filename == __file__
    with pytest.warns(FutureWarning) as record_ref:
        theirs = torch.nn.NLLLoss2d(ignore_index=1)
    assert str(record[0].message) == str(record_ref[0].message)
    x, y = t64(X4), torch.tensor(Y4)
    np.testing.assert_allclose(ours(x, y).numpy(), theirs(x, y).numpy(), rtol=1e-12)


def test_functional_is_compat_torch():
    from losskit.compat import torch as F

    assert lknn.functional is F and F.nn is lknn


@pytest.mark.filterwarnings(
    "ignore:Dynamo detected a call to a `functools.lru_cache`-wrapped function:UserWarning"
)
def test_compiled_module_equals_eager():
    loss = lknn.CrossEntropyLoss(weight=t64(W3), label_smoothing=0.1)
    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    x, y = t64(X), torch.tensor(Y)
    np.testing.assert_allclose(compiled(x, y).numpy(), loss(x, y).numpy(), rtol=1e-12)


def test_without_torch_the_classes_are_plain_and_take_numpy():
    # `import torch` fails in the child: the classes still work on NumPy input.
    code = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None
        import numpy as np
        from losskit.compat.torch import nn
        loss = nn.CrossEntropyLoss(weight=np.array([1.0, 2.0]), reduction="sum")
        print(repr(loss), type(loss).__mro__[-2].__name__)
        print(round(float(loss(np.array([[0.0, 1.0], [2.0, 0.0]]), np.array([1, 1]))), 6))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "CrossEntropyLoss() _PlainModule"
    # Both labels are class 1, of weight 2: 2 (log(1 + e) - 1) + 2 (log(e^2 + 1) - 0).
    expected = 2 * (np.log1p(np.e) - 1) + 2 * np.log1p(np.e**2)
    assert float(out[1]) == pytest.approx(expected, abs=1e-6)
