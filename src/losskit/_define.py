"""What a loss definition leaves out: the shell every elementwise loss shares.

A loss is written as one short function of arrays already validated and cast
to the compute dtype, returning its unreduced value and its derivative with
respect to the prediction (a thunk, so the forward pass never computes it):

    @elementwise_loss(checks=(("target", check_target_interval),))
    def binary_thing(xp, pred, target, *, margin=1.0):
        '''Docstring with the formula.'''
        value = ...
        return value, lambda: ...   # d value / d pred

:func:`elementwise_loss` turns it into the public loss
``binary_thing(pred, target, *, margin=1.0, reduction="mean", sample_weight=None)``
and records the implementation that :func:`losskit.value_and_grad` calls.  The
shell does what every loss needs once (the Keras ``LossFunctionWrapper`` and
scikit-learn ``_loss`` idea): the namespace and conversion of the arguments,
dtype and shape checks, the loss's value checks (raising eagerly, NaN under a
trace), the compute dtype for half precision, the reduction with
``sample_weight``, ``grad_out``.  torch autograd and ``jax.grad``
differentiate the value formula itself, so every argument gets its derivative.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ._backend import Array, cast, compute_dtype, namespace, quiet_numpy, shape_of
from ._gradient import IMPL_ATTRIBUTE, deliver
from ._reduce import plan
from ._validation import Invalid, check_paired

# (argument name, check) pairs; a check is ``check(xp, name, array) -> traced mask | None``.
ValueCheck = tuple[str, Callable[[Any, str, Array], Array | None]]
Body = Callable[..., tuple[Array, Any]]

_KEYWORD = inspect.Parameter.KEYWORD_ONLY
_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD


def _public_signature(body: Body, pred: str, truth: str) -> inspect.Signature:
    """``(pred, truth, *, <the body's options>, reduction="mean", sample_weight=None)``."""
    options = list(inspect.signature(body).parameters.values())[3:]
    return inspect.Signature(
        [
            inspect.Parameter(pred, _POSITIONAL),
            inspect.Parameter(truth, _POSITIONAL),
            *options,
            inspect.Parameter("reduction", _KEYWORD, default="mean"),
            inspect.Parameter("sample_weight", _KEYWORD, default=None),
        ]
    )


def elementwise_loss(
    *, pred: str = "pred", truth: str = "target", checks: Sequence[ValueCheck] = ()
) -> Callable[[Body], Callable[..., Array]]:
    """Make a public loss of ``body(xp, pred, truth, **options) -> (value, d value / d pred)``.

    The truth has the prediction's shape (losskit never broadcasts) and the
    loss one value per element under ``reduction="none"``.  ``checks`` name
    the value rules of the arguments (``pred`` or ``truth``).  The derivative
    may be an array or a zero-argument function computing it.
    """

    def decorate(body: Body) -> Callable[..., Array]:
        signature = _public_signature(body, pred, truth)

        def impl(
            p: Array,
            t: Array,
            *,
            reduction: str,
            sample_weight: Array | None,
            with_grad: bool = False,
            grad_out: Any = None,
            **options: Any,
        ) -> tuple[Array, Array | None]:
            xp, p, t, sample_weight = namespace(p, t, sample_weight, names=(truth, "sample_weight"))
            reduction = check_paired(xp, pred, p, truth, t, reduction, grad_out)
            invalid = Invalid(xp, shape_of(p))
            for name, check in checks:
                invalid.add(check(xp, name, p if name == pred else t))
            dtype = compute_dtype(xp, p.dtype)
            shape = shape_of(p)
            red = plan(xp, reduction, shape, dtype, sample_weight=sample_weight, invalid=invalid)
            with quiet_numpy(xp):
                value, derivative = body(xp, cast(xp, p, dtype), cast(xp, t, dtype), **options)
                result = red.apply(value)
                if not with_grad:
                    return result, None
                d = derivative() if callable(derivative) else derivative
                grad = red.grad(d, class_axis=False)
            return result, deliver(xp, grad, p, grad_out)

        @functools.wraps(body)
        def public(*args: Any, **kwargs: Any) -> Array:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return impl(*bound.args, **bound.kwargs)[0]

        del public.__wrapped__  # the public signature is ours, not the body's
        public.__signature__ = signature  # type: ignore[attr-defined]
        setattr(public, IMPL_ATTRIBUTE, impl)
        return public

    return decorate
