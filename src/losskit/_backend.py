"""Which array library an input belongs to, and the dtype to compute in.

losskit never imports torch or jax itself: array-api-compat recognises the
arrays it is handed (the einops ``_backends`` idea), and every loss is written
once against the array API namespace ``xp`` returned here.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import array_api_compat
import numpy as np

Array = Any  # any array-API array: numpy.ndarray, torch.Tensor, jax.Array, ...


def _kind(x: Any) -> str:
    """A short name for the library an array comes from, for error messages."""
    if array_api_compat.is_numpy_array(x):
        return "numpy"
    if array_api_compat.is_torch_array(x):
        return "torch"
    if array_api_compat.is_jax_array(x):
        return "jax"
    return type(x).__module__.split(".")[0]


def is_torch_tensor(x: Any) -> bool:
    """``isinstance(x, torch.Tensor)`` without importing torch.

    Written with a plain ``isinstance`` (not array-api-compat's detection,
    which calls into NumPy) so that ``torch.compile`` traces through it.
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


_torch_namespace: Any = None


def _torch_xp() -> Any:
    global _torch_namespace
    if _torch_namespace is None:
        import array_api_compat.torch

        _torch_namespace = array_api_compat.torch
    return _torch_namespace


def is_torch_namespace(xp: Any) -> bool:
    return getattr(xp, "__name__", "") in ("torch", "array_api_compat.torch")


def _torch_namespace_of(pred: Any, others: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """``namespace`` for a torch prediction and torch (or absent) others, the
    common case, in plain torch calls that ``torch.compile`` traces without a
    graph break; None where anything needs converting (the general path)."""
    if not is_torch_tensor(pred):
        return None
    converted = []
    for other in others:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            # A Python number (pos_weight=2.0) keeps its double precision.
            import torch

            dtype = torch.float64 if isinstance(other, float) else torch.int64
            other = torch.tensor(other, dtype=dtype, device=pred.device)
        elif not (other is None or is_torch_tensor(other)):
            return None
        converted.append(other)
    return (_torch_xp(), pred, *converted)


def namespace(pred: Any, *others: Any, names: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """Return ``(xp, pred, *others)`` with every array in ``pred``'s library.

    The prediction decides the kind of the result.  Python lists and scalars
    become NumPy arrays (a list of Python ints given as predictions becomes
    float64, so ``[2, 0.5, 6]`` and ``[2, 0, 6]`` behave alike); lists, scalars
    and NumPy arrays among ``others`` are moved to the prediction's library and
    device, so ``loss(torch_logits, [2, 1])`` works.  ``None`` passes through.
    Arrays of two different non-NumPy libraries are refused.
    """
    torch_only = _torch_namespace_of(pred, others)
    if torch_only is not None:
        return torch_only
    if not array_api_compat.is_array_api_obj(pred):
        pred = np.asarray(pred)
        if pred.dtype.kind in "biu":
            pred = pred.astype(np.float64)
    xp = array_api_compat.array_namespace(pred)
    pred_is_numpy = array_api_compat.is_numpy_array(pred)
    converted: list[Any] = []
    for i, other in enumerate(others):
        if other is None:
            converted.append(None)
            continue
        if not array_api_compat.is_array_api_obj(other):
            other = np.asarray(other)
        if array_api_compat.is_numpy_array(other) and not pred_is_numpy:
            other = xp.asarray(other, device=array_api_compat.device(pred))
        elif array_api_compat.array_namespace(other) is not xp:
            name = names[i] if i < len(names) else "an argument"
            msg = (
                f"`{name}` must be an array of the same library as the predictions "
                f"({_kind(pred)}); got a {_kind(other)} array"
            )
            raise TypeError(msg)
        converted.append(other)
    return (xp, pred, *converted)


def is_numpy(xp: Any) -> bool:
    """Whether ``xp`` is NumPy's namespace (where the fused kernels apply)."""
    return getattr(xp, "__name__", "") in ("numpy", "array_api_compat.numpy")


def readable(xp: Any, x: Any) -> tuple[Any, Any] | None:
    """A namespace and array on which ``x``'s values can be computed now, or None.

    None where values cannot be read without breaking a trace: a JAX tracer,
    a torch tensor on the ``meta`` device (it has no values), one seen by
    ``torch.compile`` (reading it would be a host sync and a graph break) or
    one wrapped by ``torch.func`` (``vmap`` has no data-dependent branches).
    A concrete JAX array is read through NumPy: under ``jax.jit`` even a
    closed-over, concrete array gives traced results once a ``jnp`` operation
    touches it, and a traced result cannot be read.
    """
    if is_torch_tensor(x):
        import torch

        if (
            x.device.type == "meta"
            or torch.compiler.is_compiling()
            or torch._C._functorch.is_functorch_wrapped_tensor(x)  # torch.func.vmap/grad
        ):
            return None
        # Detached: reading a value never needs autograd, and float() of a
        # tensor that requires grad makes PyTorch warn.
        return xp, x.detach()
    if array_api_compat.is_jax_array(x):
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
        host = np.asarray(x)
        return array_api_compat.array_namespace(host), host
    if array_api_compat.is_lazy_array(x):
        return None
    return xp, x


def stop_gradient(xp: Any, x: Array) -> Array:
    """``x`` without its autograd history (torch ``detach``, JAX ``stop_gradient``)."""
    if is_torch_tensor(x):
        return x.detach()
    if array_api_compat.is_jax_array(x):
        import jax

        return jax.lax.stop_gradient(x)
    return x


def device_of(x: Any) -> Any:
    """The array's device (a torch tensor's read directly, so ``torch.compile`` traces it)."""
    return x.device if is_torch_tensor(x) else array_api_compat.device(x)


def _is_ml_dtypes_float(dtype: Any) -> bool:
    """NumPy's view of bfloat16 and the float8s (ml_dtypes, as JAX hands them to NumPy)."""
    if getattr(getattr(dtype, "type", None), "__module__", "") != "ml_dtypes":
        return False
    try:
        np.finfo(dtype)
    except (TypeError, ValueError):
        return False  # ml_dtypes' int2/int4 and friends
    return True


def is_dtype(xp: Any, dtype: Any, kind: Any) -> bool:
    """``xp.isdtype``, also for NumPy arrays of ml_dtypes' bfloat16 (a "real floating").

    NumPy's own ``isdtype`` refuses those dtypes with a TypeError.
    """
    if _is_ml_dtypes_float(dtype):
        kinds = (kind,) if isinstance(kind, str) else kind
        return "real floating" in kinds
    return bool(xp.isdtype(dtype, kind))


def cast(xp: Any, x: Any, dtype: Any) -> Any:
    """``x`` in ``dtype``, copied only if it is not already (astype copies by default)."""
    return xp.astype(x, dtype, copy=False)


def compute_dtype(xp: Any, dtype: Any) -> Any:
    """The dtype to accumulate in: float32 for half precision, else ``dtype``.

    float16 overflows at 65504 and bfloat16 keeps 8 bits of mantissa, too
    coarse for a sum over thousands of classes.
    """
    if _is_ml_dtypes_float(dtype):
        return np.float32 if np.finfo(dtype).bits < 32 else dtype
    if xp.finfo(dtype).bits < 32:
        return xp.float32
    return dtype


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape as a plain tuple of ints (torch.Size prints differently)."""
    return tuple(int(n) for n in x.shape)


def quiet_numpy(xp: Any = None) -> contextlib.AbstractContextManager[Any]:
    """Silence NumPy's floating-point warnings where the results are meant.

    ``x - max(x)`` may overflow to ``-inf`` for logits of opposite sign near
    the float maximum (``exp`` of it is then exactly the 0 it should be), a
    probability loss with ``eps=0`` takes ``log(0) = -inf`` on purpose, and a
    row of ``-inf`` logits (fully masked) has no softmax: NaN, as in PyTorch.
    The other backends and the fused kernels do not warn; NumPy's warnings
    would only alarm.  For torch (``xp``) it does nothing: NumPy's error state
    is nothing to torch, and ``torch.compile`` cannot trace ``np.errstate``.
    """
    if xp is not None and is_torch_namespace(xp):
        return contextlib.nullcontext()
    # NumPy's error state is global, so this also covers array-api-strict,
    # which computes with NumPy underneath, and costs nothing for the others.
    return np.errstate(divide="ignore", over="ignore", invalid="ignore")
