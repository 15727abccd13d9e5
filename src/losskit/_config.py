"""Run-time switches: whether NumPy input may take the fused kernels."""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
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


# The core refuses truth and weights that its semantics give no meaning to
# (binary targets outside [0, 1], negative or non-finite weights).  The
# framework adapters reproduce PyTorch's and Keras's numbers for such input
# instead (PyTorch allows negative class weights, Keras soft targets of any
# value), so they call the core inside ``framework_rules()``.  A thread-local
# rather than a ContextVar: ``torch.compile`` traces the former, not the latter.
_framework_rules = threading.local()


def core_rules() -> bool:
    """Whether the core's own value rules (targets in [0, 1], weights >= 0 and finite) apply."""
    return not getattr(_framework_rules, "on", False)


@contextlib.contextmanager
def framework_rules() -> Iterator[None]:
    """Inside the block the core skips the rules a framework does not have (for compat)."""
    before = getattr(_framework_rules, "on", False)
    _framework_rules.on = True
    try:
        yield
    finally:
        _framework_rules.on = before


# The slope of max(m, 0) at m = 0 in the margin losses.  The core splits a tie
# (1/2, optax's rule); PyTorch's margin kernels count m > 0 only (0).  An
# adapter asks for its framework's slope inside ``kink_slope(...)``.
_kink = threading.local()


def hinge_kink_slope() -> float:
    """The slope the margin losses give ``max(m, 0)`` at ``m = 0`` (1/2 unless set)."""
    return float(getattr(_kink, "slope", 0.5))


@contextlib.contextmanager
def kink_slope(slope: float) -> Iterator[None]:
    """Inside the block the margin losses' hinges take ``slope`` at their kink."""
    before = hinge_kink_slope()
    _kink.slope = slope
    try:
        yield
    finally:
        _kink.slope = before
