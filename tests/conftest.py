"""Shared test machinery: the one ``xp`` fixture and the independent references.

Every backend losskit supports runs through the ``xp`` fixture (numpy, torch,
jax, array_api_strict).  A test builds its inputs in NumPy, converts them with
``xp.asarray``, calls losskit, and converts back with ``xp.to_numpy`` to
compare against a reference computed in float64.

The references (``ref_*``) are written here from the specification (issue 2,
DESIGN.md, docs/INTERNALS.md) on top of PyTorch's own loss functions in
float64, never on top of losskit.  Each returns ``(value, grad)`` where
``grad`` is d sum(value) / d first argument, obtained by torch autograd.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

# "numpy_kernels" is NumPy with the fused-kernel size threshold at 0, so every
# NumPy case also runs through the numba kernels, not only large arrays.
BACKENDS = ("numpy", "numpy_kernels", "torch", "jax", "array_api_strict")

# JAX computes in float32 unless x64 is switched on; the float64 references
# and "dtype in = dtype out" need it on.  It must happen before any jax array
# is created, so it happens at collection time.
try:  # pragma: no cover - depends on the environment
    import jax

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover
    jax = None  # type: ignore[assignment]


# --------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
HALF = ("float16", "bfloat16")


class Backend:
    """One array library, with conversion helpers and (where it has one) autograd."""

    def __init__(self, name: str):
        self.name = name
        if name == "numpy":
            self.mod: Any = np
        elif name == "torch":
            import torch

            self.mod = torch
        elif name == "jax":
            import jax.numpy as jnp

            self.mod = jnp
        elif name == "array_api_strict":
            import array_api_strict

            self.mod = array_api_strict
        else:  # pragma: no cover
            raise ValueError(name)

    def __repr__(self) -> str:
        return f"Backend({self.name})"

    # -- capabilities ------------------------------------------------------
    @property
    def has_autograd(self) -> bool:
        return self.name in ("torch", "jax")

    @staticmethod
    def supports_static(name: str, dtype: str) -> bool:
        if dtype == "bfloat16":
            return name in ("torch", "jax")
        if dtype == "float16":
            return name != "array_api_strict"
        return True

    def supports(self, dtype: str) -> bool:
        return self.supports_static(self.name, dtype)

    def require(self, dtype: str) -> None:
        """Guard: (backend, dtype) pairs that do not exist are deselected at collection."""
        assert self.supports(dtype), f"{self.name} has no {dtype}; should have been deselected"

    # -- conversion ---------------------------------------------------------
    def dtype(self, name: str) -> Any:
        if self.name == "numpy":
            return np.dtype(name)
        if self.name == "torch":
            return getattr(self.mod, name)
        if self.name == "jax":
            return getattr(self.mod, name)
        return getattr(self.mod, name)

    def asarray(self, a: Any, dtype: str | None = None) -> Any:
        """NumPy (or nested list) -> this backend, optionally cast to ``dtype``."""
        a = np.asarray(a)
        if dtype is None:
            dtype = a.dtype.name
        if self.name == "numpy":
            return a.astype(dtype)
        if self.name == "torch":
            import torch

            if dtype == "bfloat16":
                return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
            return torch.from_numpy(np.array(a, dtype=dtype))
        if self.name == "jax":
            import jax.numpy as jnp

            return jnp.asarray(
                a.astype(np.float32) if dtype == "bfloat16" else a, dtype=getattr(jnp, dtype)
            )
        import array_api_strict as xs

        return xs.asarray(np.array(a, dtype=dtype))

    def to_numpy(self, x: Any) -> np.ndarray:
        """Backend array -> NumPy; bfloat16 becomes float32 (exactly)."""
        if self.name == "torch" or type(x).__module__.startswith("torch"):
            import torch

            x = x.detach()
            if x.dtype == torch.bfloat16:
                x = x.to(torch.float32)
            return x.cpu().numpy()
        if self.name == "jax" or "jax" in type(x).__module__:
            import jax.numpy as jnp

            if x.dtype == jnp.bfloat16:
                x = x.astype(jnp.float32)
            return np.asarray(x)
        if self.name == "array_api_strict":
            import array_api_strict as xs

            if x.device != xs.Device("CPU_DEVICE"):
                x = x.to_device(xs.Device("CPU_DEVICE"))
            return np.asarray(x)
        return np.asarray(x)

    def dtype_name(self, x: Any) -> str:
        if self.name == "torch":
            return str(x.dtype).removeprefix("torch.")
        if self.name == "array_api_strict":
            return str(x.dtype).removeprefix("array_api_strict.")
        return np.dtype(x.dtype).name if self.name == "numpy" else str(x.dtype)

    def is_native(self, x: Any) -> bool:
        """Whether ``x`` is this backend's array kind."""
        if self.name == "numpy":  # a 0-d reduction may be a NumPy scalar, as np.sum's
            return isinstance(x, (np.ndarray, np.generic))
        if self.name == "torch":
            return isinstance(x, self.mod.Tensor)
        if self.name == "jax":
            import jax

            return isinstance(x, jax.Array)
        import array_api_strict as xs

        return isinstance(x, xs._array_object.Array)

    def device(self, x: Any) -> Any:
        if self.name == "numpy":
            return "cpu"
        if self.name == "jax":
            return frozenset(x.devices())
        return x.device

    # -- autograd -------------------------------------------------------------
    def autograd(self, fn: Callable[..., Any], x: Any, *args: Any, **kwargs: Any):
        """(value, d sum(value) / d x) by the backend's own autograd."""
        if self.name == "torch":
            x = x.detach().clone().requires_grad_(True)
            v = fn(x, *args, **kwargs)
            (g,) = self.mod.autograd.grad(v.sum(), x, allow_unused=False)
            return v.detach(), g
        if self.name == "jax":
            import jax

            v, pullback = jax.vjp(lambda z: fn(z, *args, **kwargs), x)
            (g,) = pullback(self.mod.ones_like(v))
            return v, g
        raise AssertionError(f"{self.name} has no autograd")  # pragma: no cover


@pytest.fixture(params=BACKENDS)
def xp(request) -> Backend:
    """Every backend losskit supports; skipped only where it is not installed."""
    if request.param == "numpy_kernels":
        from losskit.kernels import dispatch

        request.getfixturevalue("monkeypatch").setattr(dispatch, "MIN_KERNEL_SIZE", 0)
        return Backend("numpy")
    pytest.importorskip(request.param)
    if request.param == "jax":
        pytest.importorskip("jax.numpy")
    return Backend(request.param)


def pytest_collection_modifyitems(config, items):
    """Drop the (backend, dtype) combinations that do not exist.

    NumPy and array_api_strict have no bfloat16, array_api_strict no float16:
    such a test is not collected rather than skipped, so that a skip in the
    report always means a missing package.
    """
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        backend, dtype = params.get("xp"), params.get("dtype")
        if (
            backend is not None
            and isinstance(dtype, str)
            and dtype in FLOAT_DTYPES
            and not Backend.supports_static(backend, dtype)
        ):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(params=("torch", "jax"))
def autograd_xp(request) -> Backend:
    """The backends with autograd."""
    pytest.importorskip(request.param)
    return Backend(request.param)


def np_backend() -> Backend:
    return Backend("numpy")


# --------------------------------------------------------------------------
# TensorFlow, imported once and lazily (its import is slow and noisy)
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf = pytest.importorskip("tensorflow")
    return tf


@pytest.fixture(scope="session")
def keras_losses(tf):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras = pytest.importorskip("keras")
    return keras.losses


@pytest.fixture(scope="session")
def optax():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("optax")


# --------------------------------------------------------------------------
# tolerances per dtype (against float64 references on the input as rounded
# to that dtype)
# --------------------------------------------------------------------------

# The loss of a half-precision input is float32, computed in float32.
LOSS_TOL = {
    "float64": dict(rtol=1e-10, atol=1e-12),
    "float32": dict(rtol=2e-5, atol=2e-6),
    "float16": dict(rtol=1e-4, atol=1e-5),
    "bfloat16": dict(rtol=1e-4, atol=1e-5),
}
# The gradient keeps the input's dtype: one rounding to that dtype at the end.
GRAD_TOL = {
    "float64": dict(rtol=1e-9, atol=1e-12),
    "float32": dict(rtol=2e-5, atol=2e-6),
    "float16": dict(rtol=2e-3, atol=2e-4),
    "bfloat16": dict(rtol=1.6e-2, atol=2e-3),
}


def loss_dtype(dtype: str) -> str:
    """The dtype a loss comes back in for an input of ``dtype``."""
    return "float32" if dtype in HALF else dtype


def round_to(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` rounded to ``dtype`` and brought back to float64 exactly."""
    a = np.asarray(a, dtype=np.float64)
    if dtype == "bfloat16":
        import torch

        return torch.from_numpy(a).to(torch.bfloat16).to(torch.float64).numpy()
    return a.astype(dtype).astype(np.float64)


def assert_close(got, expected, dtype: str = "float64", *, kind: str = "loss", err_msg=""):
    tol = (LOSS_TOL if kind == "loss" else GRAD_TOL)[dtype]
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"shape {got.shape} != expected {expected.shape} {err_msg}"
    np.testing.assert_allclose(got, expected, err_msg=err_msg, **tol)


# --------------------------------------------------------------------------
# independent references (torch, float64)
# --------------------------------------------------------------------------


def _t(a, requires_grad=False):
    import torch

    t = torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)
    return t.requires_grad_(requires_grad)


def _expand_weight(sw, shape):
    """Spec: sample_weight has the batch shape (leading axes) or the full shape."""
    sw = _t(sw)
    return sw.reshape(tuple(sw.shape) + (1,) * (len(shape) - sw.ndim)).expand(shape)


def _reduce(per, reduction, sample_weight=None, counted_weight=None):
    """Spec reduction of the unreduced (already class-weighted) loss ``per``.

    ``counted_weight`` is the per-example weight that enters the mean's
    denominator besides sample_weight (class weight of the label, 0 for
    ignored examples); all ones when None.
    """
    import torch

    s = torch.ones_like(per) if sample_weight is None else _expand_weight(sample_weight, per.shape)
    c = torch.ones_like(per) if counted_weight is None else counted_weight
    weighted = s * per
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if reduction == "mean":
        den = (s * c).sum()
        if float(den) == 0.0:
            return weighted.sum() * 0.0  # nothing counted: 0 and a zero gradient
        return weighted.sum() / den
    raise AssertionError(reduction)  # pragma: no cover


def _finish(x, v):
    import torch

    (g,) = torch.autograd.grad(v.sum(), x, allow_unused=True)
    if g is None:
        g = torch.zeros_like(x)
    return v.detach().numpy(), g.numpy()


def ref_sparse_xent(
    logits,
    labels,
    *,
    axis=-1,
    class_weight=None,
    ignore_index=None,
    label_smoothing=0.0,
    reduction="mean",
    sample_weight=None,
):
    import torch
    import torch.nn.functional as F

    x = _t(logits, True)
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    w = None if class_weight is None else _t(class_weight)
    ii = -100 if ignore_index is None else int(ignore_index)
    xm = torch.movedim(x, axis, 1) if x.ndim > 1 else x
    per = F.cross_entropy(
        xm, y, weight=w, ignore_index=ii, label_smoothing=label_smoothing, reduction="none"
    )
    counted = (y != ii).to(torch.float64)
    if w is not None:
        counted = counted * w[torch.where(y == ii, torch.zeros_like(y), y)]
    return _finish(x, _reduce(per, reduction, sample_weight, counted))


def ref_dense_xent(
    logits, targets, *, axis=-1, label_smoothing=0.0, reduction="mean", sample_weight=None
):
    import torch
    import torch.nn.functional as F

    x = _t(logits, True)
    t = _t(targets)
    xm = torch.movedim(x, axis, 1) if x.ndim > 1 else x
    tm = torch.movedim(t, axis, 1) if t.ndim > 1 else t
    per = F.cross_entropy(xm, tm, label_smoothing=label_smoothing, reduction="none")
    return _finish(x, _reduce(per, reduction, sample_weight))


def ref_cat_xent(probs, targets, *, axis=-1, eps=1e-7, reduction="mean", sample_weight=None):
    """-sum_c t_c log(clip(p_c, eps, 1-eps)); 0 log 0 = 0 (terms with t = 0 vanish)."""
    import torch

    p = _t(probs, True)
    t = _t(targets)
    pc = torch.clamp(p, eps, 1 - eps)
    terms = torch.where(t == 0, torch.zeros_like(pc), -t * torch.log(pc))
    per = terms.sum(dim=axis)
    return _finish(p, _reduce(per, reduction, sample_weight))


def ref_sparse_cat_xent(probs, labels, *, axis=-1, eps=1e-7, reduction="mean", sample_weight=None):
    import torch

    p = _t(probs, True)
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    pm = torch.movedim(p, axis, -1)
    py = torch.gather(pm, -1, y.unsqueeze(-1)).squeeze(-1)
    per = -torch.log(torch.clamp(py, eps, 1 - eps))
    return _finish(p, _reduce(per, reduction, sample_weight))


def ref_bce(probs, targets, *, eps=1e-7, reduction="mean", sample_weight=None):
    import torch

    p = _t(probs, True)
    t = _t(targets)
    pc = torch.clamp(p, eps, 1 - eps)
    a = torch.where(t == 0, torch.zeros_like(pc), -t * torch.log(pc))
    b = torch.where(t == 1, torch.zeros_like(pc), -(1 - t) * torch.log1p(-pc))
    return _finish(p, _reduce(a + b, reduction, sample_weight))


def ref_sigmoid_xent(
    logits, targets, *, pos_weight=None, label_smoothing=0.0, reduction="mean", sample_weight=None
):
    import torch.nn.functional as F

    x = _t(logits, True)
    t = _t(targets)
    t = t * (1 - label_smoothing) + label_smoothing / 2
    pw = None if pos_weight is None else _t(pos_weight)
    per = F.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction="none")
    return _finish(x, _reduce(per, reduction, sample_weight))


def ref_mse(pred, target, *, reduction="mean", sample_weight=None):
    import torch.nn.functional as F

    x = _t(pred, True)
    per = F.mse_loss(x, _t(target), reduction="none")
    return _finish(x, _reduce(per, reduction, sample_weight))


def ref_mae(pred, target, *, reduction="mean", sample_weight=None):
    import torch.nn.functional as F

    x = _t(pred, True)
    per = F.l1_loss(x, _t(target), reduction="none")
    return _finish(x, _reduce(per, reduction, sample_weight))


# --------------------------------------------------------------------------
# one representative case per loss (used by the backend and property tests)
# --------------------------------------------------------------------------

LOSS_NAMES = (
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
    "categorical_cross_entropy",
    "sparse_categorical_cross_entropy",
    "binary_cross_entropy",
    "sigmoid_cross_entropy",
    "mean_squared_error",
    "mean_absolute_error",
)

REFS = {
    "softmax_cross_entropy": ref_dense_xent,
    "sparse_softmax_cross_entropy": ref_sparse_xent,
    "categorical_cross_entropy": ref_cat_xent,
    "sparse_categorical_cross_entropy": ref_sparse_cat_xent,
    "binary_cross_entropy": ref_bce,
    "sigmoid_cross_entropy": ref_sigmoid_xent,
    "mean_squared_error": ref_mse,
    "mean_absolute_error": ref_mae,
}

# losses whose truth is integer class ids
SPARSE = ("sparse_softmax_cross_entropy", "sparse_categorical_cross_entropy")
# losses that remove the class axis under reduction="none"
CLASS_AXIS = (
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
    "categorical_cross_entropy",
    "sparse_categorical_cross_entropy",
)


def softmax_np(z, axis=-1):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def make_case(name: str, rng: np.random.Generator, shape=(5, 4)):
    """(first argument, truth) in float64 / int64 NumPy for loss ``name``.

    Probabilities are kept inside (0.02, 0.98) so that no clipping applies and
    gradients are smooth; regression predictions avoid ties with the target.
    """
    c = shape[-1]
    if name == "softmax_cross_entropy":
        return rng.normal(size=shape) * 2, softmax_np(rng.normal(size=shape))
    if name == "sparse_softmax_cross_entropy":
        return rng.normal(size=shape) * 2, rng.integers(0, c, size=shape[:-1])
    if name == "categorical_cross_entropy":
        p = softmax_np(rng.normal(size=shape) * 0.5)
        return p, softmax_np(rng.normal(size=shape))
    if name == "sparse_categorical_cross_entropy":
        p = softmax_np(rng.normal(size=shape) * 0.5)
        return p, rng.integers(0, c, size=shape[:-1])
    if name == "binary_cross_entropy":
        return rng.uniform(0.05, 0.95, size=shape), rng.uniform(0, 1, size=shape)
    if name == "sigmoid_cross_entropy":
        return rng.normal(size=shape) * 3, rng.uniform(0, 1, size=shape)
    if name in ("mean_squared_error", "mean_absolute_error"):
        p = rng.normal(size=shape)
        return p, p + rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)
    raise AssertionError(name)  # pragma: no cover


def unreduced_shape(name: str, shape) -> tuple:
    return tuple(shape[:-1]) if name in CLASS_AXIS else tuple(shape)


def losskit_fn(name: str):
    import losskit

    return getattr(losskit, name)


ARRAY_OPTIONS = ("class_weight", "sample_weight", "pos_weight")


def run_loss(xp: Backend, name: str, x, truth, dtype: str = "float64", **opts):
    """Call losskit's ``name`` and its ``value_and_grad`` on backend ``xp``.

    ``x`` is cast to ``dtype``; float truth too (int labels stay int64); array
    options go in the input's dtype (float32 for half-precision input).
    Returns ``(value, grad)`` as NumPy, after checking that both come back as
    the backend's kind, the value in the loss dtype, the gradient in the
    input's dtype and shape, and that the plain call agrees with
    value_and_grad.
    """
    import losskit

    fn = getattr(losskit, name)
    opt_dtype = loss_dtype(dtype)
    xb = xp.asarray(x, dtype)
    truth = np.asarray(truth)
    tb = xp.asarray(truth, "int64" if truth.dtype.kind in "iu" else dtype)
    kw = {
        k: (
            xp.asarray(v, opt_dtype)
            if k in ARRAY_OPTIONS and v is not None and not np.isscalar(v)
            else v
        )
        for k, v in opts.items()
    }
    value = fn(xb, tb, **kw)
    v2, grad = losskit.value_and_grad(fn)(xb, tb, **kw)
    for arr, what in ((value, "value"), (v2, "value_and_grad value"), (grad, "gradient")):
        assert xp.is_native(arr), f"{what} is {type(arr)}, not a {xp.name} array"
    assert xp.dtype_name(value) == loss_dtype(dtype), (xp.dtype_name(value), dtype)
    assert xp.dtype_name(grad) == dtype, (xp.dtype_name(grad), dtype)
    assert tuple(grad.shape) == tuple(np.shape(x))
    vn, v2n, gn = xp.to_numpy(value), xp.to_numpy(v2), xp.to_numpy(grad)
    assert_close(v2n, vn, dtype, err_msg="value_and_grad value != plain call")
    return vn, gn
