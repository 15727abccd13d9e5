"""Keras 3 losses for ``losskit.compat.tf.keras.losses`` (merged there by name).

``dice``/``Dice`` and ``tversky``/``Tversky``, over the core's
:func:`~losskit.losses.segmentation.dice` and
:func:`~losskit.losses.segmentation.tversky`.  Keras departs from the core in
three ways, each mapped here and marked ``# Keras:``:

- ``axis=None`` sums over every axis (one loss for the whole batch, which the
  loss classes then leave unreduced), where the core keeps the batch;
- no smoothing in the numerator and ``backend.epsilon()`` (1e-7, in
  ``y_pred``'s dtype) in the denominator: Keras's ``dice`` is
  ``1 - 2 I / (P + T + 1e-7)``, the core's ``dice`` with ``smooth=0`` and
  ``eps=1e-7 / 2``; its ``tversky`` is ``1 - I / (I + alpha FP' + beta FN' + 1e-7)``,
  the core's with ``eps=1e-7``;
- Keras's ``tversky`` names ``sum((1 - y_pred) y_true)`` (the pixels of the
  target the prediction misses, the core's false negatives) ``fp`` and weighs
  it by ``alpha``: Keras's ``alpha`` is the core's ``beta`` and the other way
  round.

The functions return Keras's dtype (half precision in, half precision out;
the core sums in float32).  Deliberate differences: ``y_pred`` outside
[0, 1], ``alpha`` or ``beta`` negative or not finite, and ``y_true`` of
another shape than ``y_pred`` (which Keras broadcasts) raise.
"""

from __future__ import annotations

import inspect
from typing import Any

from .._backend import Array
from .._validation import check_floating, check_same_shape, check_unit_interval
from ..losses.segmentation import _check_axes, _non_negative
from ..losses.segmentation import dice as dice_core
from ..losses.segmentation import tversky as tversky_core
from ._common import framework_semantics, half_back

#: name -> function or class, added to ``keras.losses`` by :mod:`losskit.compat.tf`.
#: Made before ``.tf`` is imported and filled at the end: when this module is
#: imported first (a doctest run), tf.py's import of it at its bottom finds
#: the dict, and the names are added to ``keras.losses`` below.
KERAS_LOSSES: dict[str, Any] = {}

from . import tf as _tf  # noqa: E402
from .tf import _POSITIONAL, _epsilon_in, _ns, _Wrapper  # noqa: E402


def _inputs(y_true: Any, y_pred: Any, axis: Any) -> tuple[Any, Array, Array, Any]:
    """``(xp, y_pred, y_true, axes)``: ``y_true`` in ``y_pred``'s dtype, Keras's axes."""
    xp, p, t = _ns(y_pred, y_true, names=("y_true",))
    # Keras's names in the messages: the core would say `probs` and `targets`.
    check_floating(xp, "y_pred", p)
    check_same_shape("y_true", t, "y_pred", p)
    check_unit_interval(xp, "y_pred", p)  # eager: raises; traced: the core makes it NaN
    t = xp.astype(t, p.dtype)  # Keras: y_true = ops.cast(y_true, y_pred.dtype)
    if p.ndim == 0:
        # A scalar is summed whole; the core wants a batch axis to sum over.
        p, t = xp.reshape(p, (1,)), xp.reshape(t, (1,))
    # Keras: ops.sum(..., axis=None) sums everything.
    axes = tuple(range(p.ndim)) if axis is None else _check_axes("y_pred", p.shape, axis, ())
    return xp, p, t, axes


@framework_semantics
def dice(y_true: Any, y_pred: Any, axis: Any = None) -> Array:
    """``keras.losses.dice``: ``1 - 2 sum(y_true y_pred) / (sum(y_true) + sum(y_pred) + 1e-7)``.

    The sums run over ``axis`` (None: every axis, one number for the batch).

    >>> from losskit.compat import tf
    >>> y_true = [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]]
    >>> y_pred = [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]]
    >>> tf.keras.losses.dice(y_true, y_pred, axis=(1, 2, 3))
    array([0.5       , 0.75757575], dtype=float32)
    >>> round(float(tf.keras.losses.dice(y_true, y_pred)), 6)
    0.616438
    """
    xp, p, t, axis = _inputs(y_true, y_pred, axis)
    # Keras: 2 I / (P + T + eps) = I / ((P + T)/2 + eps/2), with no smoothing above.
    eps = _epsilon_in(p.dtype) / 2
    loss = dice_core(p, t, axis=axis, smooth=0.0, eps=eps, reduction="none")
    return half_back(xp, loss, p.dtype)


@framework_semantics
def tversky(
    y_true: Any, y_pred: Any, alpha: float = 0.5, beta: float = 0.5, axis: Any = None
) -> Array:
    """``keras.losses.tversky``: ``1 - I / (I + alpha sum((1-p) t) + beta sum(p (1-t)) + 1e-7)``.

    With ``I = sum(t p)`` over ``axis`` (None: every axis).  Keras's ``alpha``
    weighs the target pixels the prediction misses and ``beta`` the predicted
    pixels outside the target (Keras's docstring says the reverse; its code
    does this, and so does this adapter).

    >>> from losskit.compat import tf
    >>> y_true, y_pred = [[1.0, 1.0, 0.0]], [[1.0, 0.0, 1.0]]
    >>> # I = 1, alpha weighs 1 missed pixel, beta 1 extra one: 1 - 1/(1 + .8 + .2)
    >>> round(float(tf.keras.losses.tversky(y_true, y_pred, alpha=0.8, beta=0.2)), 6)
    0.5
    """
    alpha, beta = _non_negative("alpha", alpha), _non_negative("beta", beta)
    xp, p, t, axis = _inputs(y_true, y_pred, axis)
    # Keras: fp = sum((1 - y_pred) y_true) is weighed by alpha (the core's beta).
    loss = tversky_core(
        p,
        t,
        alpha=beta,
        beta=alpha,
        axis=axis,
        smooth=0.0,
        eps=_epsilon_in(p.dtype),
        reduction="none",
    )
    return half_back(xp, loss, p.dtype)


def _keras_signature(*options: tuple[str, Any], name: str) -> inspect.Signature:
    """A Keras constructor's own order: ``axis`` comes after ``name`` in Dice and Tversky."""
    *before, axis = options
    return inspect.Signature(
        [
            *(inspect.Parameter(k, _POSITIONAL, default=v) for k, v in before),
            inspect.Parameter("reduction", _POSITIONAL, default="sum_over_batch_size"),
            inspect.Parameter("name", _POSITIONAL, default=name),
            inspect.Parameter(axis[0], _POSITIONAL, default=axis[1]),
            inspect.Parameter("dtype", _POSITIONAL, default=None),
        ]
    )


class Dice(_Wrapper):
    """``keras.losses.Dice``: see :func:`dice`; ``Dice(reduction, name, axis, dtype)``.

    >>> from losskit.compat import tf
    >>> y_true = [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]]
    >>> y_pred = [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]]
    >>> tf.keras.losses.Dice(axis=(1, 2, 3), reduction=None)(y_true, y_pred)
    array([0.5       , 0.75757575], dtype=float32)
    >>> round(float(tf.keras.losses.Dice()(y_true, y_pred)), 6)
    0.616438
    """

    _function = staticmethod(dice)
    _keras_name = "dice"
    _options = (("axis", None),)


class Tversky(_Wrapper):
    """``keras.losses.Tversky``: see :func:`tversky`.

    ``Tversky(alpha, beta, reduction, name, axis, dtype)``, in Keras's order.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.Tversky(alpha=0.8, beta=0.2, axis=-1, reduction="sum")
    >>> y_true, y_pred = [[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]], [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    >>> round(float(loss(y_true, y_pred)), 6)
    0.5
    """

    _function = staticmethod(tversky)
    _keras_name = "tversky"
    _options = (("alpha", 0.5), ("beta", 0.5), ("axis", None))


# Keras's order puts ``axis`` after ``name`` (set after _Wrapper.__init_subclass__ built its own).
Dice.__signature__ = _keras_signature(*Dice._options, name="dice")  # type: ignore[attr-defined]
Tversky.__signature__ = _keras_signature(*Tversky._options, name="tversky")  # type: ignore[attr-defined]

KERAS_LOSSES.update(dice=dice, Dice=Dice, tversky=tversky, Tversky=Tversky)
vars(_tf.keras.losses).update(KERAS_LOSSES)
