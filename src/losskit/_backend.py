"""Which array library an input belongs to, and the dtype to compute in.

losskit never imports torch or jax itself: array-api-compat recognises the
arrays it is handed (the einops ``_backends`` idea), and every loss is written
once against the array API namespace ``xp`` returned here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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


def namespace(pred: Any, *others: Any, names: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """Return ``(xp, pred, *others)`` with every array in ``pred``'s library.

    The prediction decides the kind of the result.  Python lists and scalars
    become NumPy arrays (a list of Python ints given as predictions becomes
    float64, so ``[2, 0.5, 6]`` and ``[2, 0, 6]`` behave alike); lists, scalars
    and NumPy arrays among ``others`` are moved to the prediction's library and
    device, so ``loss(torch_logits, [2, 1])`` works.  ``None`` passes through.
    Arrays of two different non-NumPy libraries are refused.
    """
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
    return bool(array_api_compat.is_numpy_namespace(xp))


def readable(xp: Any, x: Any) -> tuple[Any, Any] | None:
    """A namespace and array on which ``x``'s values can be computed now, or None.

    None inside a JAX trace.  A concrete JAX array is read through NumPy:
    under ``jax.jit`` even a closed-over, concrete array gives traced results
    once a ``jnp`` operation touches it, and a traced result cannot be read.
    """
    if array_api_compat.is_jax_array(x):
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
        host = np.asarray(x)
        return array_api_compat.array_namespace(host), host
    if array_api_compat.is_lazy_array(x):
        return None
    return xp, x


def cast(xp: Any, x: Any, dtype: Any) -> Any:
    """``x`` in ``dtype``, copied only if it is not already (astype copies by default)."""
    return xp.astype(x, dtype, copy=False)


def compute_dtype(xp: Any, dtype: Any) -> Any:
    """The dtype to accumulate in: float32 for half precision, else ``dtype``.

    float16 overflows at 65504 and bfloat16 keeps 8 bits of mantissa, too
    coarse for a sum over thousands of classes.
    """
    if xp.finfo(dtype).bits < 32:
        return xp.float32
    return dtype


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape as a plain tuple of ints (torch.Size prints differently)."""
    return tuple(int(n) for n in x.shape)


@contextlib.contextmanager
def quiet_numpy() -> Iterator[None]:
    """Silence NumPy's floating-point warnings where the results are meant.

    ``x - max(x)`` may overflow to ``-inf`` for logits of opposite sign near
    the float maximum (``exp`` of it is then exactly the 0 it should be), a
    probability loss with ``eps=0`` takes ``log(0) = -inf`` on purpose, and a
    row of ``-inf`` logits (fully masked) has no softmax: NaN, as in PyTorch.
    The other backends and the fused kernels do not warn; NumPy's warnings
    would only alarm.
    """
    # NumPy's error state is global, so this also covers array-api-strict,
    # which computes with NumPy underneath, and costs nothing for the others.
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        yield
