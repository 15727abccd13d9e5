"""Steps shared by the TensorFlow and PyTorch adapters."""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import array_api_compat
import numpy as np

from .._backend import Array, readable, shape_of
from .._config import framework_rules
from .._validation import Invalid, check_label_range
from ..losses import sigmoid_cross_entropy

F = TypeVar("F", bound=Callable[..., Any])


def framework_semantics(fn: F) -> F:
    """Run ``fn`` with the core's :func:`~losskit._config.framework_rules`.

    The core refuses truth and weights its own semantics give no meaning to
    (binary targets outside [0, 1], negative or non-finite weights); PyTorch
    and Keras compute with them (PyTorch allows negative class weights, Keras
    soft targets of any value), so every adapter calls the core inside this.
    """

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with framework_rules():
            return fn(*args, **kwargs)

    return call  # type: ignore[return-value]


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


# --------------------------------------------------------------------------- own derivatives


def with_partials(xp: Any, value: Any, partials: Any, *args: Array) -> Array:
    """``value(xp, *args)`` whose derivatives are ``partials(xp, *args)``, not autograd's.

    For an elementwise loss whose framework defines its derivatives by hand
    (PyTorch's ``derivatives.yaml``), which are not those of its forward
    formula: PyTorch's binary cross-entropy clamps each log at -100, yet its
    derivative is ``(p - t) / max(p (1-p), 1e-12)``, not that of the clamped
    logs (0 or NaN where they clamp).  ``args`` share one shape and dtype;
    ``partials`` returns one elementwise partial derivative per argument,
    written in array-API operations so that autograd can differentiate it
    again (second derivatives, ``gradgradcheck``).  On torch tensors this is a
    ``torch.autograd.Function``, on JAX arrays a ``jax.custom_jvp``; NumPy
    and the rest have no autograd and get the value alone.
    """
    if array_api_compat.is_torch_array(args[0]):
        if any(a.requires_grad for a in args):
            from ._torch_partials import apply  # imports torch, which is loaded

            return apply(value, partials, xp, *args)
    elif array_api_compat.is_jax_array(args[0]):
        return _jax_function(xp, value, partials)(*args)
    return value(xp, *args)


@functools.cache
def _jax_function(xp: Any, value: Any, partials: Any) -> Any:
    """The ``jax.custom_jvp`` behind :func:`with_partials` (jax is imported)."""
    jax = sys.modules["jax"]
    symbolic_zero = jax.custom_derivatives.SymbolicZero

    @jax.custom_jvp
    def f(*args: Array) -> Array:
        return value(xp, *args)

    def jvp(primals: tuple[Array, ...], tangents: tuple[Any, ...]) -> tuple[Array, Array]:
        out = f(*primals)
        total = xp.zeros_like(out)
        # An argument not differentiated has a symbolic zero tangent: skipped,
        # so an infinite partial (PyTorch's d/dt at p = 0) never meets 0 * inf.
        for d, tangent in zip(partials(xp, *primals), tangents, strict=True):
            if not isinstance(tangent, symbolic_zero):
                total = total + d * tangent
        return out, total

    f.defjvp(jvp, symbolic_zeros=True)
    return f


# --------------------------------------------------------------------------- class ids

#: The range of an int64, where PyTorch and TensorFlow keep class ids and ``ignore_index``.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def int64_class_ids(
    xp: Any, labels: Array, num_classes: int, ignore_index: int | None
) -> tuple[Array, Array | None]:
    """``labels`` (any integer dtype) checked to be in ``[0, C)`` or ``ignore_index``, as int64.

    Returns the int64 ids and, where their values cannot be read (a JAX trace,
    ``torch.compile``, ``meta``), the traced mask of the bad ones for
    :func:`poisoned` (None when read and good).

    The frameworks keep class ids in int64, and PyTorch computes with no
    unsigned type but uint8 ("lt_cpu" is not implemented for UInt64).  A uint64
    id of 2**63 or more would wrap to a negative int64: it is reported here
    with the value the user passed.  The other ids are checked by the core's
    rule, on the int64 copy.
    """
    ids = labels if labels.dtype == xp.int64 else xp.astype(labels, xp.int64)
    if labels.dtype == getattr(xp, "uint64", None):
        found = readable(xp, ids)
        if found is not None and math.prod(shape_of(ids)) > 0:
            rxp, wrapped = found
            big = wrapped < 0
            if bool(rxp.any(big)):
                pos = tuple(int(i[0]) for i in rxp.nonzero(big)) if big.ndim else ()
                where = f" at position {pos}" if pos else ""
                rule = f"[0, {num_classes})"
                if ignore_index is not None:
                    rule += f" or equal ignore_index={ignore_index}"
                msg = f"`labels` must be in {rule}; got {int(wrapped[pos]) + 2**64}{where}"
                raise ValueError(msg)
    return ids, check_label_range(xp, ids, num_classes, ignore_index)


def poisoned(xp: Any, loss: Array, *bad: Array | None) -> Array:
    """``loss`` made NaN where a traced mask of bad values is set: the core's rule.

    A check that cannot read its values (inside ``jax.jit``, ``torch.compile``,
    on ``meta``) returns the mask of the bad ones instead of raising; what they
    enter becomes NaN, value and gradient (:class:`~losskit._validation.Invalid`),
    never a plausible number.  Each mask broadcasts to ``loss``'s shape.
    """
    invalid = Invalid(xp, shape_of(loss))
    for mask in bad:
        invalid.add(mask)
    return invalid.poison(loss)
