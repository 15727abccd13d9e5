"""``value_and_grad``: a loss's value and its exact gradient, on any backend.

NumPy has no autograd, so every losskit loss carries an analytic gradient
(see ``_gradient.differentiable``).  ``value_and_grad`` finds it and calls
it with the loss's own signature and defaults.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from ._gradient import IMPL_ATTRIBUTE


def value_and_grad(loss_fn: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    """Return a function computing ``(loss, d loss / d first argument)``.

    The returned function takes the loss's arguments and options unchanged,
    plus ``grad_out=``: a NumPy array of the first argument's shape and dtype
    to write the gradient into (it may be the first argument itself, to
    update logits in place).  The gradient is scaled by the same reduction as
    the value; with ``reduction="none"`` it is the gradient of the sum of the
    returned values, so each example's gradient sits in its own row.  It
    keeps the first argument's dtype (the value is float32 for half-precision
    input).  ``linear_cross_entropy`` is the one exception: its gradient is the
    tuple ``(d_hidden, d_weight, d_bias)`` (``d_bias`` None without a bias).

    Parameters
    ----------
    loss_fn : a losskit loss, or a ``functools.partial`` of one

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> logits = np.array([[0.0, 0.0]])
    >>> value, grad = lk.value_and_grad(lk.sparse_softmax_cross_entropy)(logits, [1])
    >>> float(value), grad  # log 2; softmax - onehot = [0.5, -0.5]
    (0.6931471805599453, array([[ 0.5, -0.5]]))
    """
    fn, bound_args, bound_kwargs = loss_fn, (), {}
    if isinstance(loss_fn, functools.partial):
        fn, bound_args, bound_kwargs = loss_fn.func, loss_fn.args, dict(loss_fn.keywords)
    impl = getattr(fn, IMPL_ATTRIBUTE, None)
    if impl is None:
        name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
        msg = (
            f"`loss_fn` must be a losskit loss (or a functools.partial of one); got {name}. "
            "For other functions use torch.func.grad or jax.value_and_grad."
        )
        raise TypeError(msg)
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def loss_value_and_grad(*args: Any, grad_out: Any = None, **kwargs: Any) -> tuple[Any, Any]:
        bound = signature.bind(*bound_args, *args, **{**bound_kwargs, **kwargs})
        bound.apply_defaults()
        return impl(*bound.args, **bound.kwargs, with_grad=True, grad_out=grad_out)

    return loss_value_and_grad
