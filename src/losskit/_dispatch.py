"""The core's side of the fused-kernel seam (see docs/INTERNALS.md).

A public function asks here whether its NumPy input may take a fused kernel;
the answer is None (take the portable array-API path) unless the input is
NumPy, the switch in ``_config`` allows kernels, and ``losskit.kernels``
accepts the array.  The kernels want C-contiguous ``(N, C)`` rows: an input
whose class axis was moved last is copied once into that layout, which costs
one read and one write, less than the five passes of the portable path.
Nothing here imports numba; ``losskit.kernels.dispatch`` does, on first use.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from ._backend import Array, is_numpy

SOFTMAX = "softmax_rows"
LOG_SOFTMAX = "log_softmax_rows"
LOGSUMEXP = "logsumexp_rows"


def kernels_for(xp: Any, x: Array) -> ModuleType | None:
    """``losskit.kernels.dispatch`` if it takes ``x`` (class axis last), else None.

    ``dispatch.use_kernel`` is the one gatekeeper (dtype, size, the
    ``portable()`` switch); importing it does not import numba.
    """
    if not is_numpy(xp):
        return None
    from .kernels import dispatch

    return dispatch if dispatch.use_kernel(x) else None


def as_rows(x: np.ndarray) -> np.ndarray:
    """``x`` (class axis last) as a C-contiguous ``(N, C)`` array, copied only if needed."""
    n = math.prod(x.shape[:-1])
    return np.ascontiguousarray(x).reshape(n, x.shape[-1])


def rows(xp: Any, name: str, x: Array) -> Array | None:
    """Run the row kernel ``name`` on ``x`` (class axis last), or None if it does not apply."""
    kernels = kernels_for(xp, x)
    if kernels is None:
        return None
    x2 = as_rows(x)
    if name == LOGSUMEXP:
        return kernels.logsumexp_rows(x2).reshape(x.shape[:-1])
    out = np.empty_like(x2)
    getattr(kernels, name)(x2, out)
    return out.reshape(x.shape)


def row_coef(coef: Any, unreduced_shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """The reduction's gradient coefficient as one value per row, ``(N,)``."""
    n = math.prod(unreduced_shape)
    return np.ascontiguousarray(
        np.broadcast_to(np.asarray(coef, dtype=dtype), unreduced_shape).reshape(n)
    )
