"""A gradient checked against finite differences of the loss, kinks and domain ends included.

``losskit explain`` shows the gradient :func:`losskit.value_and_grad` gives
and checks it against the loss itself: a central difference per input,
``(L(x + h) - L(x - h)) / 2h`` with ``h = 1e-6 max(1, |x|)`` (float64: the
rounding error ``eps |L| / h`` and the truncation error ``h² L''' / 6`` both
stay far below the tolerance), and smaller steps where the loss curves on a
smaller scale than that (a Poisson rate of 0 with ``eps = 1e-8``).  Two cases
need more than a central difference:

- at a kink (tied maxima, a clip's edge) the loss has one-sided slopes and
  the library picks a subgradient (the margin losses share a tie equally).
  There the check is that the library's value lies between the two one-sided
  slopes; a kink answers the same at every step, a curvature does not;
- where a step leaves the input's domain (a probability of 1 made larger is
  refused), a second-order one-sided difference of the other side is used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# Relative steps, tried in turn until one agrees.
STEPS = (1e-6, 1e-8, 1e-10, 1e-12)
RTOL = 1e-5
# An absolute floor relative to the loss: the rounding error of a difference
# at the first step is about 2e-16 |L| / h <= 2.2e-10 |L|, a margin of ~500.
ATOL_OF_LOSS = 1e-7

H_TEXT = "h = 1e-6·max(1, |x|), smaller where the loss curves faster"


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
        return value if math.isfinite(value) else None

    return call


# (what was found, the estimate, the left and right slopes where both sides were taken)
Found = tuple[str, float, float, float]


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

    def between(g: float, a: float, b: float) -> bool:
        low, high = min(a, b), max(a, b)
        return low - tol_abs - RTOL * abs(low) <= g <= high + tol_abs + RTOL * abs(high)

    def at(i: int, step: float) -> float | None:
        moved = x.copy()
        moved.flat[i] += step
        return loss(moved)

    def probe(i: int, h: float, g: float) -> Found:
        right, left = at(i, h), at(i, -h)
        if right is not None and left is not None:
            central = (right - left) / (2 * h)
            if close(g, central):
                return "agrees", central, math.nan, math.nan
            slope_l, slope_r = (f0 - left) / h, (right - f0) / h
            kink = not close(slope_l, slope_r) and between(g, slope_l, slope_r)
            return ("kink" if kink else "differs"), central, slope_l, slope_r
        # One side is outside the domain: (-3 f0 + 4 f(x ± h) - f(x ± 2h)) / (±2h).
        sign = 1.0 if right is not None else -1.0
        near = right if right is not None else left
        far = at(i, 2 * sign * h)
        if near is None or far is None:
            return "none", math.nan, math.nan, math.nan
        one_sided = (-3 * f0 + 4 * near - far) / (2 * sign * h)
        return ("agrees" if close(g, one_sided) else "differs"), one_sided, math.nan, math.nan

    for i in range(x.size):
        scale = max(1.0, abs(float(x.flat[i])))
        g = float(grad.flat[i])
        found = [probe(i, rel * scale, g) for rel in STEPS[:1]]
        while found[-1][0] != "agrees" and len(found) < len(STEPS):
            found.append(probe(i, STEPS[len(found)] * scale, g))
        what, estimate, left, right = found[-1] if found[-1][0] == "agrees" else found[0]
        check.estimate.flat[i] = estimate
        if what == "kink":
            check.kinks.append((i, left, right))
        elif what == "none":
            check.not_taken.append(i)
        elif what == "differs":
            check.differs.append(i)
    return check
