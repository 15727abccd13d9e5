"""Run-time switches: whether NumPy input may take the fused kernels."""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator

# The environment variable is read at each call, so a test or a debugging
# session can flip it without re-importing losskit.
_PORTABLE_ENV = "LOSSKIT_PORTABLE"
_force_portable: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "losskit_force_portable", default=False
)


def kernels_allowed() -> bool:
    """Whether the fused NumPy kernels may be used right now."""
    if _force_portable.get():
        return False
    return os.environ.get(_PORTABLE_ENV, "").strip() not in {"1", "true", "yes", "on"}


@contextlib.contextmanager
def portable() -> Iterator[None]:
    """Force the portable array-API path (no fused kernels) inside the block.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> with lk.portable():
    ...     float(lk.logsumexp(np.zeros(4)))
    1.3862943611198906
    """
    token = _force_portable.set(True)
    try:
        yield
    finally:
        _force_portable.reset(token)
