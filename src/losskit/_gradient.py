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

from ._backend import Array, cast

F = TypeVar("F", bound=Callable[..., Any])
IMPL_ATTRIBUTE = "__losskit_value_and_grad__"


def differentiable(impl: Callable[..., tuple[Any, Any]]) -> Callable[[F], F]:
    """Mark a public loss as having the analytic gradient ``impl``."""

    def mark(public: F) -> F:
        setattr(public, IMPL_ATTRIBUTE, impl)
        return public

    return mark


def deliver(xp: Any, grad: Array, pred: Array, grad_out: Any) -> Array:
    """Return the gradient in the prediction's dtype, written into ``grad_out`` if given."""
    grad = cast(xp, grad, pred.dtype)
    if grad_out is None:
        return grad
    grad_out[...] = grad
    return grad_out
