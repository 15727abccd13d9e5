"""Steps shared by the TensorFlow and PyTorch adapters."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import Array, shape_of
from ..classification import sigmoid_cross_entropy


def half_back(xp: Any, loss: Array, dtype: Any) -> Array:
    """``loss`` in ``dtype``, the framework's result dtype.

    The core accumulates half-precision input in float32 and returns float32;
    TensorFlow and PyTorch return a half-precision loss for half-precision
    input.  The loss is rounded once, at the end.
    """
    return loss if loss.dtype == dtype else xp.astype(loss, dtype)


def sigmoid_cross_entropy_pos_weight(xp: Any, x: Array, t: Array, q: Array | None) -> Array:
    """Elementwise sigmoid cross-entropy with a ``pos_weight`` broadcasting to ``x``.

    The core takes a scalar or one weight per class on the last axis; PyTorch
    and TensorFlow broadcast a ``pos_weight`` of any shape (``(C, 1, 1)`` for
    ``(N, C, H, W)`` logits).  The loss is linear in the weight ``q``,
    ``l(q) = l(1) + (q - 1) t softplus(-x)``, and ``softplus(-x)`` is the loss
    of target 1, so any other shape is done with two calls of the core.
    """
    if q is None or q.ndim == 0 or shape_of(q) == shape_of(x)[-1:]:
        return sigmoid_cross_entropy(x, t, pos_weight=q, reduction="none")
    try:
        fits = np.broadcast_shapes(shape_of(q), shape_of(x)) == shape_of(x)
    except ValueError:
        fits = False
    if not fits:
        msg = (
            f"`pos_weight` must broadcast to the shape of the logits {shape_of(x)}; "
            f"got {shape_of(q)}"
        )
        raise ValueError(msg)
    base = sigmoid_cross_entropy(x, t, reduction="none")
    positive = sigmoid_cross_entropy(x, xp.ones_like(t), reduction="none")
    return base + (xp.astype(q, base.dtype) - 1) * xp.astype(t, base.dtype) * positive
