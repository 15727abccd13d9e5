"""How a public loss is tied to the implementation that also returns its gradient.

Each loss module writes one private implementation
``impl(pred, truth, *, options..., with_grad=False, grad_out=None) -> (value, grad)``
and a public function with the documented signature that returns
``impl(...)[0]``.  ``@differentiable(impl)`` records the implementation on
the public function, where :func:`losskit.value_and_grad` finds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from ._backend import Array, cast, is_numpy, shape_of

F = TypeVar("F", bound=Callable[..., Any])
IMPL_ATTRIBUTE = "__losskit_value_and_grad__"


def differentiable(impl: Callable[..., tuple[Any, Any]]) -> Callable[[F], F]:
    """Mark a public loss as having the analytic gradient ``impl``."""

    def mark(public: F) -> F:
        setattr(public, IMPL_ATTRIBUTE, impl)
        return public

    return mark


def check_grad_out(xp: Any, grad_out: Any, pred: Array) -> None:
    """``grad_out`` is a writable NumPy array of the prediction's shape and dtype."""
    if grad_out is None:
        return
    if not (is_numpy(xp) and isinstance(grad_out, np.ndarray)):
        msg = (
            "`grad_out` must be a NumPy array and the predictions NumPy too; got "
            f"{type(grad_out).__name__} for predictions of {type(pred).__name__}"
        )
        raise TypeError(msg)
    if shape_of(grad_out) != shape_of(pred) or grad_out.dtype != pred.dtype:
        msg = (
            f"`grad_out` must have the predictions' shape {shape_of(pred)} and dtype "
            f"{pred.dtype}; got {shape_of(grad_out)} {grad_out.dtype}"
        )
        raise ValueError(msg)
    if not grad_out.flags.writeable:
        msg = "`grad_out` must be writeable; got a read-only array"
        raise ValueError(msg)


def deliver(xp: Any, grad: Array, pred: Array, grad_out: Any) -> Array:
    """Return the gradient in the prediction's dtype, written into ``grad_out`` if given."""
    grad = cast(xp, grad, pred.dtype)
    if grad_out is None:
        return grad
    grad_out[...] = grad
    return grad_out
