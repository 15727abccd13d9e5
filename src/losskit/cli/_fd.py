"""A gradient checked against finite differences of the loss, kinks and domain ends included.

``losskit explain`` shows the gradient :func:`losskit.value_and_grad` gives
and checks it against the loss itself: a central difference per input,
``(L(x + h) - L(x - h)) / 2h`` with ``h = 1e-6 max(1, |x|)`` (float64: the
rounding error ``eps |L| / h`` and the truncation error ``h² L''' / 6`` both
stay far below the tolerance).  Two cases need more than that:

- at a kink (hinge at its margin, ``|e|`` at 0, a clip's edge, tied maxima)
  the loss has one-sided slopes and the library picks a subgradient (the
  margin losses split a tie equally, ``|e|`` takes 0).  There the check is
  that the library's value lies between the two one-sided slopes;
- where a step leaves the input's domain (a probability of 1 made larger is
  refused), a second-order one-sided difference of the other side is used.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

REL_STEP = 1e-6
RTOL = 1e-5
# An absolute floor relative to the loss: the rounding error of a difference
# is about 2e-16 |L| / h <= 2.2e-10 |L|, so this leaves a margin of ~500.
ATOL_OF_LOSS = 1e-7

H_TEXT = "h = 1e-6·max(1, |x|)"


@dataclass
class Check:
    """The finite-difference estimate of each coordinate and what was found there."""

    estimate: np.ndarray  # NaN where none could be taken
    kinks: list[tuple[int, float, float]] = field(default_factory=list)  # (i, left, right)
    differs: list[int] = field(default_factory=list)
    not_taken: list[int] = field(default_factory=list)
    skipped: str = ""  # why no coordinate was checked, if none was

    @property
    def agrees(self) -> bool:
        return not self.differs


def _quiet(f: Callable[[np.ndarray], float]) -> Callable[[np.ndarray], float | None]:
    """``f``, or None where the library refuses the input or the loss is not finite."""

    def call(x: np.ndarray) -> float | None:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # a nudged probability row warns it is unnormalised
            try:
                value = float(f(x))
            except (ValueError, TypeError):
                return None
        return value if np.isfinite(value) else None

    return call


def check_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, grad: np.ndarray) -> Check:
    """Check ``grad`` (the library's dL/dx) against finite differences of ``f`` at ``x``."""
    x = np.asarray(x, dtype=np.float64)
    grad = np.asarray(grad, dtype=np.float64).reshape(x.shape)
    loss = _quiet(f)
    f0 = loss(x)
    check = Check(np.full(x.shape, np.nan))
    if f0 is None:
        check.skipped = "the loss is not finite here"
        check.not_taken = list(range(x.size))
        return check
    tol_abs = ATOL_OF_LOSS * max(1.0, abs(f0))

    def close(g: float, d: float) -> bool:
        return abs(g - d) <= RTOL * max(abs(g), abs(d)) + tol_abs

    def at(i: int, step: float) -> float | None:
        moved = x.copy()
        moved.flat[i] += step
        return loss(moved)

    for i in range(x.size):
        h = REL_STEP * max(1.0, abs(float(x.flat[i])))
        g = float(grad.flat[i])
        right, left = at(i, h), at(i, -h)
        if right is not None and left is not None:
            central = (right - left) / (2 * h)
            check.estimate.flat[i] = central
            if close(g, central):
                continue
            slope_l, slope_r = (f0 - left) / h, (right - f0) / h
            low, high = min(slope_l, slope_r), max(slope_l, slope_r)
            kink = not close(slope_l, slope_r)
            if kink and low - tol_abs - RTOL * abs(low) <= g <= high + tol_abs + RTOL * abs(high):
                check.kinks.append((i, slope_l, slope_r))
            else:
                check.differs.append(i)
            continue
        # One side is outside the domain: (-3 f0 + 4 f(x ± h) - f(x ± 2h)) / (±2h).
        sign = 1.0 if right is not None else -1.0
        near = right if right is not None else left
        far = at(i, 2 * sign * h)
        if near is None or far is None:
            check.not_taken.append(i)
            continue
        one_sided = (-3 * f0 + 4 * near - far) / (2 * sign * h)
        check.estimate.flat[i] = one_sided
        if not close(g, one_sided):
            check.differs.append(i)
    return check
