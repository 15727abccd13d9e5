"""losskit.compat.torch's softmax, log_softmax and logsumexp against PyTorch's own.

Values, dtypes and autograd gradients on torch tensors, and the same values
on NumPy and JAX arrays; ``dtype=``, the implicit ``dim`` with its warning, a
tuple of dims, ``keepdim`` and 0-d input as PyTorch takes them, and an error
naming the argument where PyTorch raises.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from losskit.compat import torch as lkF

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(20270108)
ACTIVATIONS = ["softmax", "log_softmax"]


def theirs(name):
    return getattr(F, name)


def same(ours, ref, rtol=1e-12, atol=1e-14):
    """``ours`` (torch, NumPy or JAX) has ``ref``'s dtype, shape and values."""
    if isinstance(ours, torch.Tensor):
        assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
        ours = ours.detach()
    else:
        assert np.asarray(ours).dtype == np.dtype(str(ref.dtype).removeprefix("torch.")), (
            np.asarray(ours).dtype,
            ref.dtype,
        )
    ours = np.asarray(ours, dtype=np.float64) if not isinstance(ours, torch.Tensor) else ours
    if isinstance(ours, torch.Tensor):
        ours = ours.double().numpy()
    assert tuple(np.shape(ours)) == tuple(ref.shape)
    np.testing.assert_allclose(
        ours, ref.detach().double().numpy(), rtol=rtol, atol=atol, equal_nan=True
    )


def kinds(x):
    """The same values as a torch tensor, a NumPy array and (if installed) a JAX array."""
    out = [x, x.numpy()]
    try:
        import jax.numpy as jnp
    except ImportError:  # pragma: no cover - depends on the environment
        return out
    return [*out, jnp.asarray(x.numpy())]


# --------------------------------------------------------------------------- softmax, log_softmax


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_values_and_gradients(name, dim):
    x = torch.tensor(RNG.normal(size=(3, 4, 5)) * 30)
    x[0, 0, :] = torch.tensor([1e4, -1e4, 0.0, 1.0, -math.inf])  # extremes stay finite
    ref = theirs(name)(x, dim)
    for a in kinds(x):
        same(getattr(lkF, name)(a, dim), ref)
    v = torch.randn(3, 4, 5, dtype=torch.float64)
    leaf = x.clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad((theirs(name)(leaf, dim) * v).sum(), leaf)
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad((getattr(lkF, name)(leaf, dim) * v).sum(), leaf)
    np.testing.assert_allclose(g.numpy(), g_ref.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_jax_gradient(name):
    jax = pytest.importorskip("jax")
    x = RNG.normal(size=(3, 4))
    v = RNG.normal(size=(3, 4))
    leaf = torch.tensor(x, requires_grad=True)
    (g_ref,) = torch.autograd.grad((theirs(name)(leaf, 1) * torch.tensor(v)).sum(), leaf)
    g = jax.grad(lambda a: (getattr(lkF, name)(a, 1) * v).sum())(jax.numpy.asarray(x))
    np.testing.assert_allclose(np.asarray(g), g_ref.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize(
    ("source", "dtype"),
    [
        (torch.float16, torch.float32),  # widened before the operation
        (torch.float64, torch.float16),  # narrowed before the operation
        (torch.int64, torch.float64),  # integers need dtype=, as in torch
        (torch.float32, torch.bfloat16),
    ],
    ids=str,
)
def test_dtype_casts_the_input_first(name, source, dtype):
    x = torch.tensor(RNG.normal(size=(2, 5)) * 4).to(source)
    ref = theirs(name)(x, 1, dtype=dtype)
    rtol = {torch.float16: 1e-3, torch.bfloat16: 8e-3}.get(dtype, 1e-7)
    same(lkF.__dict__[name](x, 1, dtype=dtype), ref, rtol=rtol, atol=rtol)
    if dtype != torch.bfloat16:  # NumPy has no bfloat16
        # A torch dtype, a NumPy dtype or its name for NumPy input.
        np_dtype = str(dtype).removeprefix("torch.")
        for spelling in (dtype, np.dtype(np_dtype), np_dtype):
            same(getattr(lkF, name)(x.numpy(), 1, dtype=spelling), ref, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_half_precision_stays_half(name):
    x = torch.tensor(RNG.normal(size=(3, 6)) * 4, dtype=torch.float16)
    ref = theirs(name)(x, 1)
    same(lkF.__dict__[name](x, 1), ref, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("value", [2.0, -1e4, math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("dim", [0, -1])
def test_zero_dimensional_input(name, value, dim):
    # torch takes dim 0 or -1 for a 0-d tensor: softmax 1 (NaN for an infinite
    # value, exp(inf - inf)), log_softmax 0.
    x = torch.tensor(value, dtype=torch.float64)
    ref = theirs(name)(x, dim)
    for a in kinds(x):
        same(getattr(lkF, name)(a, dim), ref)
    with pytest.raises(IndexError, match="Dimension out of range"):
        theirs(name)(x, 1)
    msg = r"^`dim` must be in \[-1, 0\] for a 0-d input; got 1$"
    with pytest.raises(ValueError, match=msg):
        getattr(lkF, name)(x, 1)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
def test_implicit_dim_is_torchs_with_its_warning(name, ndim):
    # torch._get_softmax_dim: dim 0 for 0-, 1- and 3-d input, else 1, with a
    # deprecation warning that points at the caller (stacklevel 3).
    x = torch.tensor(RNG.normal(size=(2, 3, 4, 5)[:ndim]))
    with pytest.warns(UserWarning, match="Implicit dimension choice") as ref_warning:
        ref = theirs(name)(x)
    with pytest.warns(UserWarning, match="Implicit dimension choice") as our_warning:
        v = getattr(lkF, name)(x)
    same(v, ref)
    assert str(our_warning[0].message) == str(ref_warning[0].message)
    assert our_warning[0].filename == ref_warning[0].filename == __file__


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_errors_name_the_argument(name):
    x = torch.tensor(RNG.normal(size=(2, 3)))
    with pytest.raises(IndexError, match=r"range of \[-2, 1\], but got 2"):
        theirs(name)(x, 2)
    with pytest.raises(ValueError, match=r"^`dim` must be in \[-2, 1\] for a 2-d input; got 2$"):
        getattr(lkF, name)(x, 2)
    with pytest.raises(TypeError, match="must be int, not tuple"):
        theirs(name)(x, (0,))
    with pytest.raises(TypeError, match=r"^`dim` must be an int; got \(0,\)$"):
        getattr(lkF, name)(x, (0,))
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        theirs(name)(torch.tensor([1, 2]), 0)
    msg = r"^`input` must be a real floating-point array; got dtype torch.int64$"
    with pytest.raises(TypeError, match=msg):
        getattr(lkF, name)(torch.tensor([1, 2]), 0)
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        theirs(name)(x, 1, dtype=torch.int64)
    msg = r"^`dtype` must be a real floating-point dtype of the input's library; got torch.int64$"
    with pytest.raises(TypeError, match=msg):
        getattr(lkF, name)(x, 1, dtype=torch.int64)


def test_empty_dim():
    x = torch.zeros(2, 0, dtype=torch.float64)
    for name in ACTIVATIONS:
        same(getattr(lkF, name)(x, 1), theirs(name)(x, 1))


# --------------------------------------------------------------------------- logsumexp


@pytest.mark.parametrize(
    "dim", [0, 2, -1, (0,), (0, 1), (2, 0), (0, 1, 2), [1, -1], (-3, -2)], ids=str
)
@pytest.mark.parametrize("keepdim", [False, True])
def test_logsumexp_values_and_gradients(dim, keepdim):
    x = torch.tensor(RNG.normal(size=(3, 4, 5)) * 50)
    x[1, 2, 3] = 700.0  # exp would overflow float64
    ref = torch.logsumexp(x, dim, keepdim)
    for a in kinds(x):
        same(lkF.logsumexp(a, dim, keepdim), ref)
    leaf = x.clone().requires_grad_(True)
    v = torch.tensor(RNG.normal(size=tuple(ref.shape)))
    (g_ref,) = torch.autograd.grad((torch.logsumexp(leaf, dim, keepdim) * v).sum(), leaf)
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad((lkF.logsumexp(leaf, dim, keepdim) * v).sum(), leaf)
    np.testing.assert_allclose(g.numpy(), g_ref.numpy(), rtol=1e-10, atol=1e-14)


def test_logsumexp_jax_gradient_over_a_tuple():
    jax = pytest.importorskip("jax")
    x = RNG.normal(size=(3, 4, 2))
    leaf = torch.tensor(x, requires_grad=True)
    (g_ref,) = torch.autograd.grad(torch.logsumexp(leaf, (0, 2)).sum(), leaf)
    g = jax.grad(lambda a: lkF.logsumexp(a, (0, 2)).sum())(jax.numpy.asarray(x))
    np.testing.assert_allclose(np.asarray(g), g_ref.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dim", [0, -1, (), (0,), [-1]], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("value", [2.0, math.inf, -math.inf, math.nan])
def test_logsumexp_zero_dimensional(dim, keepdim, value):
    # The logsumexp of one element is that element; torch takes dims 0, -1 and ().
    x = torch.tensor(value, dtype=torch.float64)
    ref = torch.logsumexp(x, dim, keepdim)
    for a in kinds(x):
        same(lkF.logsumexp(a, dim, keepdim), ref)


@pytest.mark.parametrize(
    ("x", "dim"),
    [
        (torch.tensor([[1, 2], [3, 4]]), 1),  # integers compute in the default float32
        (torch.tensor([True, False, True]), 0),
        (torch.tensor([1.0, 2.0, 3.0], dtype=torch.float16), 0),  # half stays half
        (torch.zeros(2, 0, dtype=torch.float64), 1),  # an empty dim: -inf
        (torch.zeros(0, 3, dtype=torch.float64), (0,)),
        (torch.tensor([math.inf, 1.0], dtype=torch.float64), 0),
        (torch.tensor([-math.inf, -math.inf], dtype=torch.float64), 0),
        (torch.tensor([math.nan, math.inf], dtype=torch.float64), 0),
    ],
    ids=["int", "bool", "half", "empty", "empty-tuple", "inf", "all-minus-inf", "nan"],
)
def test_logsumexp_dtypes_and_edges(x, dim):
    ref = torch.logsumexp(x, dim)
    rtol = 1e-3 if x.dtype == torch.float16 else 1e-6
    for a in kinds(x):
        same(lkF.logsumexp(a, dim), ref, rtol=rtol)


def test_logsumexp_errors_name_dim():
    x = torch.tensor(RNG.normal(size=(2, 3)))
    with pytest.raises(RuntimeError, match="dim 1 appears multiple times in the list of dims"):
        torch.logsumexp(x, (1, -1))
    msg = r"^`dim` must name each dim once; dim 1 appears 2 times in \(1, -1\)$"
    with pytest.raises(ValueError, match=msg):
        lkF.logsumexp(x, (1, -1))
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.logsumexp(x, 2)
    with pytest.raises(ValueError, match=r"^`dim` must be in \[-2, 1\] for a 2-d input; got 2$"):
        lkF.logsumexp(x, (0, 2))
    # torch fails inside ("output with shape [] doesn't match the broadcast shape").
    with pytest.raises(RuntimeError):
        torch.logsumexp(x, ())
    with pytest.raises(ValueError, match=r"^`dim` must name at least one dim of the 2-d input"):
        lkF.logsumexp(x, ())
    with pytest.raises(TypeError, match="must be tuple of ints, not float"):
        torch.logsumexp(x, 0.0)
    with pytest.raises(TypeError, match=r"^`dim` must be an int; got 0.0$"):
        lkF.logsumexp(x, 0.0)
    with pytest.raises(TypeError, match=r"^`dim` must be an int; got True$"):
        lkF.logsumexp(x, True)
    msg = r"^`input` must be a real floating-point array; got dtype complex128$"
    with pytest.raises(TypeError, match=msg):
        lkF.logsumexp(np.ones(2, dtype=complex), 0)


def test_no_warning_with_an_explicit_dim():
    x = RNG.normal(size=(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lkF.softmax(x, 1)
        lkF.log_softmax(x, dim=0)
        lkF.logsumexp(x, (0, 1))
