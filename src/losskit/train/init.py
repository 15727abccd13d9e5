"""Seeded weight initialisers: He (Kaiming) and Glorot (Xavier).

Each takes the layer's fan-in and fan-out and a NumPy ``Generator`` and
returns a ``(fan_in, fan_out)`` array, so the same seed gives the same
network on every machine.

He et al. (2015) keep the variance of a ReLU layer's output equal to its
input's: ``Var(W) = 2 / fan_in``. Glorot & Bengio (2010) balance forward and
backward variance for tanh/linear layers: ``Var(W) = 2 / (fan_in + fan_out)``.

Examples
--------
>>> import numpy as np
>>> w = he_normal(64, 32, np.random.default_rng(0))
>>> w.shape
(64, 32)
>>> bool(abs(w.std() - (2 / 64) ** 0.5) < 0.02)
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["INITIALIZERS", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform"]

Initializer = Callable[[int, int, np.random.Generator], np.ndarray]


def he_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Normal with std ``sqrt(2 / fan_in)`` (for ReLU layers)."""
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


def he_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform on ``[-a, a]`` with ``a = sqrt(6 / fan_in)`` (variance ``2 / fan_in``)."""
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def glorot_normal(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Normal with std ``sqrt(2 / (fan_in + fan_out))`` (for tanh / linear layers)."""
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))


def glorot_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform on ``[-a, a]`` with ``a = sqrt(6 / (fan_in + fan_out))``."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


INITIALIZERS: dict[str, Initializer] = {
    "he": he_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot": glorot_uniform,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
}
