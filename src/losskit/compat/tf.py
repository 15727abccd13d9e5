"""TensorFlow 2 / Keras 3 loss names, argument orders and numbers, over the losskit core.

``from losskit.compat import tf`` gives

- ``tf.nn``: ``softmax``, ``softmax_cross_entropy_with_logits``,
  ``sparse_softmax_cross_entropy_with_logits``, ``sigmoid_cross_entropy_with_logits``,
  ``weighted_cross_entropy_with_logits``;
- ``tf.keras.losses``: the functions ``categorical_crossentropy``,
  ``sparse_categorical_crossentropy``, ``binary_crossentropy``,
  ``binary_focal_crossentropy``, ``categorical_focal_crossentropy``,
  ``categorical_generalized_cross_entropy``, ``mean_squared_error``,
  ``mean_absolute_error``, ``mean_absolute_percentage_error``,
  ``mean_squared_logarithmic_error``, ``huber``, ``log_cosh``, ``poisson``,
  ``kl_divergence``, ``hinge``, ``squared_hinge``, ``categorical_hinge``,
  ``cosine_similarity``, ``circle``, ``dice``, ``tversky``, ``ctc``
  (tf.keras's aliases ``MSE``, ``MAE``, ``MAPE``, ``MSLE``, ``KLD``, ``mse``,
  ``mae``, ``mape``, ``msle``, ``kld``, ``kullback_leibler_divergence``,
  ``logcosh``) and the classes ``CategoricalCrossentropy``,
  ``SparseCategoricalCrossentropy``, ``BinaryCrossentropy``,
  ``BinaryFocalCrossentropy``, ``CategoricalFocalCrossentropy``,
  ``CategoricalGeneralizedCrossEntropy``, ``MeanSquaredError``,
  ``MeanAbsoluteError``, ``MeanAbsolutePercentageError``,
  ``MeanSquaredLogarithmicError``, ``Huber``, ``LogCosh``, ``Poisson``,
  ``KLDivergence``, ``Hinge``, ``SquaredHinge``, ``CategoricalHinge``,
  ``CosineSimilarity``, ``Circle``, ``Dice``, ``Tversky``, ``CTC`` (these five
  from the ``_keras_*`` modules, one per family).

The numbers are those TensorFlow 2.21 with Keras 3 (TensorFlow backend) gives,
edge cases included; each step where Keras departs from the core's semantics is
done here and marked ``# Keras:`` or ``# TF:``.  Inputs may be NumPy arrays,
Python lists, PyTorch tensors or JAX arrays, and the result is of the same kind
(NumPy in, NumPy out).  Python lists of floats become float32, as TensorFlow
converts them.  Where TensorFlow raises ``InvalidArgumentError`` (a label out of
range on CPU, shapes that do not broadcast) the adapter raises ``ValueError``,
and so it does for a probability outside [0, 1], which Keras would clip
silently.

Shapes follow the frameworks' rules and their errors use the frameworks'
argument names (``target``/``output`` for Keras, ``labels``/``logits`` for
``tf.nn``): ``categorical_crossentropy`` and ``binary_crossentropy`` take a
``y_true`` of ``y_pred``'s shape only (the loss classes first squeeze or
expand one trailing size-1 axis, as Keras's do), and
``softmax_cross_entropy_with_logits`` broadcasts labels as TensorFlow's kernel
does (one row of labels for every row of logits).  Truth and weights of any
value are taken where the frameworks take them (soft targets outside [0, 1],
negative ``pos_weight`` or ``sample_weight``), though the core refuses them
for its own losses.  Under torch autograd and ``jax.grad`` the derivatives
with respect to every floating argument (predictions, ``y_true`` or
``labels``, ``sample_weight``, ``pos_weight``) are those of
``tf.GradientTape``, with the one exception below.

Deliberate differences, all where TensorFlow's number is not the loss's:
errors instead of silent clipping or broadcasting (probabilities outside
[0, 1], also before ``categorical_crossentropy`` renormalises its rows,
``label_smoothing`` outside [0, 1], mismatched shapes in the regression
losses) and instead of Keras's NaN for a ``categorical_crossentropy`` row of
zeros; with labels that do not sum to 1,
``softmax_cross_entropy_with_logits``'s gradient is the true derivative
``sum(t) softmax(z) - t`` where TensorFlow's is ``softmax(z) - t`` (which it
documents as incorrect; the values agree); ``weighted_cross_entropy_with_logits``
is exact in float32 where TensorFlow's formula cancels (about one ulp of
``|logits|``); half-precision tf.nn losses are accumulated in float32; in
float16, ``binary_crossentropy`` of ``p = 1`` with ``y_true = 1`` is 0, where
Keras's clip bound ``1 - 1e-7`` rounds to 1 and it forms ``0 * log(0) = NaN``
for a valid, right prediction; ``log_cosh`` is exact for small errors and in
float64 (Keras subtracts ``log 2`` rounded to float32), the focal losses'
``1 - p_t`` of a confident logit keeps its digits, and ``delta``, ``alpha``,
``gamma`` and ``q`` outside their ranges, labels out of range and label
arrays of another shape (which Keras turns into a meaningless number) raise.
The hinges' slope at the kink is Keras's (``tf.maximum`` passes a tie's
whole gradient), as are the gradients at the clip bounds.
TensorFlow tensors themselves are not taken.

Examples
--------
>>> import numpy as np
>>> from losskit.compat import tf
>>> logits = [[4.0, 2.0, 1.0], [0.0, 5.0, 1.0]]
>>> labels = [[1.0, 0.0, 0.0], [0.0, 0.8, 0.2]]
>>> tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits).round(6)
array([0.169846, 0.824745], dtype=float32)
>>> cce = tf.keras.losses.CategoricalCrossentropy()
>>> round(float(cce([[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])), 4)
1.1769
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from types import SimpleNamespace
from typing import Any

import array_api_compat
import numpy as np

from .. import activations, losses
from .._backend import Array, compute_dtype, namespace, readable, shape_of
from .._config import kink_slope
from .._validation import check_fraction, check_labels_dtype, check_unit_interval
from ..losses.focal import (
    binary_focal_cross_entropy,
    categorical_focal_cross_entropy,
    generalized_cross_entropy,
    sigmoid_focal_loss,
)
from ..losses.likelihood import kl_divergence as kl_divergence_core
from ..losses.likelihood import poisson_nll
from ..losses.margin import categorical_hinge as categorical_hinge_core
from ..losses.margin import hinge as hinge_core
from ..losses.margin import squared_hinge as squared_hinge_core
from ..losses.regression import huber as huber_core
from ..losses.regression import log_cosh as log_cosh_core
from ..losses.regression import mean_absolute_percentage_error as mape_core
from ..losses.regression import mean_squared_logarithmic_error as msle_core
from ._common import (
    framework_semantics,
    half_back,
    int64_class_ids,
    poisoned,
    sigmoid_cross_entropy_pos_weight,
)

__all__ = ["keras", "nn"]

#: ``keras.config.epsilon()``: Keras clips probabilities to [EPSILON, 1 - EPSILON].
EPSILON = 1e-7

_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD

_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


# --------------------------------------------------------------------------- helpers


def _tf_value(x: Any) -> Any:
    """TF: a Python float (or a list of them) becomes float32, as ``tf.convert_to_tensor`` does."""
    if x is None or array_api_compat.is_array_api_obj(x):
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    a = np.asarray(x)
    return a.astype(np.float32) if a.dtype.kind == "f" else a


def _ns(pred: Any, *others: Any, names: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """``(xp, pred, *others)`` in the prediction's library, Python values converted as TF does."""
    pred = _tf_value(pred)
    if isinstance(pred, np.ndarray) and pred.dtype.kind in "biu":
        pred = pred.astype(np.float32)  # integer predictions: float32, as a Keras loss casts them
    return namespace(pred, *(_tf_value(o) for o in others), names=names)


def _bfloat16(value: float) -> float:
    """``value`` rounded to bfloat16 (the upper half of its float32, to nearest even)."""
    bits = int(np.asarray(value, dtype=np.float32).view(np.uint32))
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return float(np.asarray(bits, dtype=np.uint32).view(np.float32))


#: ``EPSILON`` as each floating dtype holds it, the clip bound Keras uses in y_pred's dtype.
#: A table read by the dtype's name: no array is made, so neither a JAX trace nor
#: ``torch.compile`` meets a value to read or a NumPy call to trace.
_EPSILON_IN = {
    "float16": float(np.float16(EPSILON)),
    "bfloat16": _bfloat16(EPSILON),
    "float32": float(np.float32(EPSILON)),
    "float64": EPSILON,
}


def _epsilon_in(dtype: Any) -> float:
    """``EPSILON`` rounded to ``dtype`` (torch's, NumPy's, JAX's or array-api-strict's)."""
    return _EPSILON_IN[str(dtype).rsplit(".", 1)[-1]]


def _clip(xp: Any, p: Array) -> Array:
    # Keras: clip to [epsilon, 1 - epsilon] in p's own dtype (the bounds round to
    # it: float32(1 - 1e-7) = 1 - 2**-23 and float16(1 - 1e-7) = 1).
    return xp.clip(p, EPSILON, 1 - EPSILON)


def _check_positive_row_sums(xp: Any, total: Array, axis: int) -> None:
    """Rows to renormalise need a positive sum (Keras divides 0 by 0: NaN).

    ``total`` is the row sums with the class axis kept; the position named is
    the row's, without it.  Skipped inside a JAX trace, as the value checks are.
    """
    found = readable(xp, total)
    if found is None or math.prod(shape_of(total)) == 0:
        return
    rxp, sums = found
    sums = rxp.squeeze(sums, axis=axis)
    bad = ~(sums > 0)
    if bool(rxp.any(bad)):
        if sums.ndim == 0:
            where, value = "", float(sums)
        else:
            pos = tuple(int(i[0]) for i in rxp.nonzero(bad))
            where, value = f" at position {pos}", float(sums[pos])
        msg = f"`y_pred` rows must have a positive sum to be renormalised; got {value!r}{where}"
        raise ValueError(msg)


def _squeeze_or_expand_to_same_rank(xp: Any, x1: Array, x2: Array) -> tuple[Array, Array]:
    """Keras's ``squeeze_or_expand_to_same_rank``: fix a rank difference of one size-1 axis."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1:
            x2 = xp.expand_dims(x2, axis=-1)
        else:
            x1 = xp.squeeze(x1, axis=-1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1:
            x1 = xp.expand_dims(x1, axis=-1)
        else:
            x2 = xp.squeeze(x2, axis=-1)
    return x1, x2


# --------------------------------------------------------------------------- tf.nn


def softmax(logits: Any, axis: int | None = None, name: str | None = None) -> Array:
    """``tf.nn.softmax``: ``exp(logits) / sum(exp(logits), axis)``; ``axis=None`` is -1.

    >>> from losskit.compat import tf
    >>> tf.nn.softmax([[0.0, 0.0]])
    array([[0.5, 0.5]], dtype=float32)
    """
    del name
    return activations.softmax(_ns(logits)[1], axis=-1 if axis is None else axis)


@framework_semantics
def softmax_cross_entropy_with_logits(
    labels: Any, logits: Any, axis: int = -1, name: str | None = None
) -> Array:
    """``tf.nn.softmax_cross_entropy_with_logits``: ``-sum(labels * log_softmax(logits), axis)``.

    ``labels`` need not be normalised; they are cast to the logits' dtype.  One
    loss per example, the class axis removed; half-precision logits give a
    half-precision loss, as in TensorFlow.

    >>> from losskit.compat import tf
    >>> tf.nn.softmax_cross_entropy_with_logits(labels=[[0.0, 1.0]], logits=[[0.0, 0.0]])
    array([0.6931472], dtype=float32)
    """
    del name
    xp, x, t = _ns(logits, labels, names=("labels",))
    # TF: labels are cast to the (float32 for half) compute dtype of the logits.
    t = xp.astype(t, compute_dtype(xp, x.dtype))
    if shape_of(t) != shape_of(x):
        x, t, axis = _broadcast_labels(xp, x, t, axis)
    loss = losses.softmax_cross_entropy(x, t, axis=axis, reduction="none")
    return half_back(xp, loss, x.dtype)


def _broadcast_labels(xp: Any, x: Array, t: Array, axis: int) -> tuple[Array, Array, int]:
    """TF: ``(logits, labels, axis)`` with the labels broadcast as TensorFlow's kernel does.

    TensorFlow moves the class axis last, flattens both to rows of classes and
    broadcasts those 2-d shapes, so labels of one row (``(C,)`` or ``(1, C)``)
    serve every row of the logits, and labels of one column every class.  The
    logits come back with their class axis last (``axis`` -1): the loss has the
    same shape either way.
    """
    if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
        return x, t, axis  # the core names the bad axis
    if t.ndim != x.ndim and axis not in (-1, x.ndim - 1):
        msg = (
            f"`labels` must have the rank of `logits` ({x.ndim}) when axis={axis} is not the "
            f"last; got labels of shape {shape_of(t)} for logits of shape {shape_of(x)}"
        )
        raise ValueError(msg)
    xm = xp.moveaxis(x, axis, -1)
    tm = xp.moveaxis(t, axis, -1) if t.ndim == x.ndim else t
    rows, classes = math.prod(shape_of(xm)[:-1]), xm.shape[-1]
    t_rows = math.prod(shape_of(tm)[:-1]) if tm.ndim else 1
    t_classes = tm.shape[-1] if tm.ndim else 1
    if t_rows not in (1, rows) or t_classes not in (1, classes):
        msg = (
            f"`labels` must broadcast against `logits` as TensorFlow flattens them to rows of "
            f"classes: logits of shape {shape_of(x)} are [{rows}, {classes}], labels of shape "
            f"{shape_of(t)} are [{t_rows}, {t_classes}]"
        )
        raise ValueError(msg)
    t2 = xp.broadcast_to(xp.reshape(tm, (t_rows, t_classes)), (rows, classes))
    return xm, xp.reshape(t2, shape_of(xm)), -1


@framework_semantics
def sparse_softmax_cross_entropy_with_logits(
    labels: Any, logits: Any, name: str | None = None
) -> Array:
    """``tf.nn.sparse_softmax_cross_entropy_with_logits``: ``-log_softmax(logits)[label]``.

    The class axis is the last; ``labels`` are integer ids of the logits' shape
    without it.  A label outside ``[0, C)`` raises ``ValueError`` naming it and
    its position (TensorFlow raises ``InvalidArgumentError`` on CPU and gives
    NaN on GPU).

    >>> from losskit.compat import tf
    >>> tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[1], logits=[[0.0, 0.0]])
    array([0.6931472], dtype=float32)
    """
    del name
    xp, x, y = _ns(logits, labels, names=("labels",))
    if x.ndim == 0:
        msg = "`logits` cannot be a scalar; got a 0-d array"
        raise ValueError(msg)
    if y.ndim != x.ndim - 1:
        msg = (
            "`labels.shape.rank` must equal `logits.shape.rank - 1`. Received: labels.shape="
            f"{shape_of(y)} of rank {y.ndim} and logits.shape={shape_of(x)} of rank {x.ndim}"
        )
        raise ValueError(msg)
    if shape_of(y) != shape_of(x)[:-1]:
        msg = (
            "`labels.shape` must equal `logits.shape` except for the last dimension. "
            f"Received: labels.shape={shape_of(y)} and logits.shape={shape_of(x)}"
        )
        raise ValueError(msg)
    check_labels_dtype(xp, y)
    y = int64_class_ids(xp, y, x.shape[-1], None)[0]  # the core makes bad ids NaN
    loss = losses.sparse_softmax_cross_entropy(x, y, reduction="none")
    return half_back(xp, loss, x.dtype)


@framework_semantics
def sigmoid_cross_entropy_with_logits(
    labels: Any = None, logits: Any = None, name: str | None = None
) -> Array:
    """``tf.nn.sigmoid_cross_entropy_with_logits``: ``max(x, 0) - x z + log(1 + exp(-|x|))``.

    Elementwise; ``labels`` have the logits' shape.

    >>> from losskit.compat import tf
    >>> tf.nn.sigmoid_cross_entropy_with_logits(labels=[1.0, 0.0], logits=[0.0, 0.0])
    array([0.6931472, 0.6931472], dtype=float32)
    """
    del name
    xp, x, z = _ns(logits, labels, names=("labels",))
    _same_shape_as_logits(x, z)
    z = xp.astype(z, compute_dtype(xp, x.dtype))
    return half_back(xp, losses.sigmoid_cross_entropy(x, z, reduction="none"), x.dtype)


@framework_semantics
def weighted_cross_entropy_with_logits(
    labels: Any, logits: Any, pos_weight: Any, name: str | None = None
) -> Array:
    """``tf.nn.weighted_cross_entropy_with_logits``: the positive term scaled by ``pos_weight``.

    ``q z (-log sigmoid(x)) + (1 - z) (-log(1 - sigmoid(x)))`` elementwise, with
    ``q = pos_weight`` of any shape that broadcasts to the logits' shape.

    >>> from losskit.compat import tf
    >>> tf.nn.weighted_cross_entropy_with_logits(
    ...     labels=[1.0, 0.5, 0.0], logits=[1.5, -0.1, -10.0], pos_weight=1.5).round(4)
    array([0.3021, 0.8805, 0.    ], dtype=float32)
    """
    del name
    xp, x, z, q = _ns(logits, labels, pos_weight, names=("labels", "pos_weight"))
    _same_shape_as_logits(x, z)
    dtype = compute_dtype(xp, x.dtype)
    z, q = xp.astype(z, dtype), xp.astype(q, dtype)
    return half_back(xp, sigmoid_cross_entropy_pos_weight(xp, x, z, q), x.dtype)


def _same_shape_as_logits(x: Array, z: Array) -> None:
    """TF: the sigmoid losses take labels of the logits' shape exactly (TF's message)."""
    if shape_of(z) != shape_of(x):
        msg = (
            "`logits` and `labels` must have the same shape, received "
            f"({shape_of(x)} vs {shape_of(z)})."
        )
        raise ValueError(msg)


nn = SimpleNamespace(
    softmax=softmax,
    softmax_cross_entropy_with_logits=softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits=sparse_softmax_cross_entropy_with_logits,
    sigmoid_cross_entropy_with_logits=sigmoid_cross_entropy_with_logits,
    weighted_cross_entropy_with_logits=weighted_cross_entropy_with_logits,
)


# --------------------------------------------------------------------------- keras.losses functions


@framework_semantics
def categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """``keras.losses.categorical_crossentropy``: one loss per example, the class axis removed.

    With probabilities, Keras first renormalises each row to sum to 1, then
    clips to ``[1e-7, 1 - 1e-7]`` in ``y_pred``'s dtype, then takes
    ``-sum(y_true * log(p), axis)``.  A row may sum to anything positive, but
    each value must lie in [0, 1] (checked before the renormalisation, which
    would hide a 1.5) and a row of zeros, which Keras turns into NaN, is
    refused: both raise ``ValueError`` naming the value and its position.
    Label smoothing ``ε`` makes the target ``(1-ε) y_true + ε/C`` with ``C``
    the size of the *last* axis, whatever ``axis`` is (as Keras does).

    >>> from losskit.compat import tf
    >>> tf.keras.losses.categorical_crossentropy(
    ...     [[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]).round(4)
    array([0.0513, 2.3026], dtype=float32)
    """
    xp, p, t = _categorical_inputs(
        "categorical_crossentropy", y_true, y_pred, label_smoothing, axis
    )
    if from_logits:
        loss = losses.softmax_cross_entropy(p, t, axis=axis, reduction="none")
    else:
        # Keras: renormalise each row first, then clip to [1e-7, 1 - 1e-7] (the
        # sparse loss does the opposite) in y_pred's dtype.  The core clips in
        # float32 for half precision, so it is given 1e-7 as rounded to the dtype.
        p = _renormalised(xp, p, axis)
        loss = losses.categorical_cross_entropy(
            p, t, axis=axis, eps=_epsilon_in(p.dtype), reduction="none"
        )
    return half_back(xp, loss, p.dtype)


def _categorical_inputs(
    fn_name: str, y_true: Any, y_pred: Any, label_smoothing: float, axis: int
) -> tuple[Any, Array, Array]:
    """``(xp, y_pred, y_true)`` for Keras's categorical losses, label smoothing applied.

    ``y_true`` is cast to ``y_pred``'s dtype and must have its shape; one class
    gives Keras's warning; label smoothing ``ε`` makes the target
    ``(1-ε) y_true + ε/C`` with ``C`` the size of the *last* axis, whatever
    ``axis`` is (as Keras does).
    """
    if isinstance(axis, bool):
        msg = f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}"
        raise ValueError(msg)
    xp, p, t = _ns(y_pred, y_true, names=("y_true",))
    t = xp.astype(t, p.dtype)
    _keras_same_shape(t, p, at_least_rank_1=True)
    if p.ndim and p.shape[-1] == 1:
        msg = (
            f"In loss {fn_name}, expected y_pred.shape to be "
            f"(batch_size, num_classes) with num_classes > 1. Received: y_pred.shape="
            f"{shape_of(p)}. Consider using 'binary_crossentropy' if you only have 2 classes."
        )
        warnings.warn(msg, SyntaxWarning, stacklevel=4)  # the caller of the loss
    if check_fraction("label_smoothing", label_smoothing):
        # Keras: the class count is the last axis's size, even when `axis` is another.
        t = t * (1.0 - label_smoothing) + label_smoothing / t.shape[-1]
    return xp, p, t


def _renormalised(xp: Any, p: Array, axis: int) -> Array:
    """Keras: ``p / sum(p, axis)``, after checking what the user passed.

    Keras would renormalise ``[1.5, 0.5]`` silently and turn a row of zeros
    into NaN: each value must lie in [0, 1] and each row have a positive sum
    (a value that could not be read and is outside [0, 1] enters as NaN).
    """
    p = poisoned(xp, p, check_unit_interval(xp, "y_pred", p))
    total = xp.sum(p, axis=axis, keepdims=True)
    _check_positive_row_sums(xp, total, axis)
    return p / total


def _keras_same_shape(t: Array, p: Array, *, at_least_rank_1: bool) -> None:
    """Keras: ``target`` (y_true) and ``output`` (y_pred) of one shape, Keras's messages.

    Keras's functions neither broadcast nor squeeze (its loss classes squeeze
    or expand one trailing size-1 axis first): a (3, 1) y_true against (3, 3)
    probabilities is refused, not broadcast.
    """
    received = f"target.shape={shape_of(t)}, output.shape={shape_of(p)}"
    if at_least_rank_1 and t.ndim < 1:
        msg = f"Arguments `target` and `output` must be at least rank 1. Received: {received}"
        raise ValueError(msg)
    if t.ndim != p.ndim:
        msg = "Arguments `target` and `output` must have the same rank (ndim). Received: "
        msg += received
        raise ValueError(msg)
    if shape_of(t) != shape_of(p):
        msg = f"Arguments `target` and `output` must have the same shape. Received: {received}"
        raise ValueError(msg)


def _sparse_categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool, ignore_class: int | None, axis: int
) -> tuple[Array, Array | None]:
    """The per-example loss and the mask of counted examples (None without ignore_class)."""
    xp, p, y = _ns(y_pred, y_true, names=("y_true",))
    if p.ndim < 1:
        msg = f"Argument `output` must be at least rank 1. Received: output.shape={shape_of(p)}"
        raise ValueError(msg)
    if axis not in (-1, p.ndim - 1):
        msg = f"Only axis=-1 is currently supported. Received: axis={axis}"
        raise ValueError(msg)
    if y.ndim == p.ndim and y.shape[-1] == 1:
        y = xp.squeeze(y, axis=-1)
    received = f"target.shape={shape_of(y)}, output.shape={shape_of(p)}"
    if y.ndim != p.ndim - 1:
        msg = f"Argument `output` must have rank (ndim) `target.ndim - 1`. Received: {received}"
        raise ValueError(msg)
    if shape_of(y) != shape_of(p)[:-1]:
        msg = (
            "Arguments `target` and `output` must have the same shape up until the last "
            f"dimension: {received}"
        )
        raise ValueError(msg)
    valid = None
    if ignore_class is not None:
        # Keras: ignored positions get label 0 and a loss of 0, and are masked.
        valid = y != ignore_class
        y = xp.where(valid, y, xp.zeros_like(y))
    # Keras: the labels are cast to int64 (float labels are truncated, not refused).
    if xp.isdtype(y.dtype, "integral"):
        y = int64_class_ids(xp, y, p.shape[-1], None)[0]  # the core makes bad ids NaN
    else:
        y = xp.astype(y, xp.int64)
    if not from_logits:
        # Keras would clip any value silently; one that could not be read enters as NaN.
        p = poisoned(xp, p, check_unit_interval(xp, "y_pred", p))
        # Keras: clip first, then log, then softmax cross-entropy of the log
        # probabilities: the clipped row is renormalised after the clip.
        p = xp.log(_clip(xp, p))
    loss = losses.sparse_softmax_cross_entropy(p, y, reduction="none")
    loss = half_back(xp, loss, p.dtype)
    if valid is not None:
        loss = xp.where(valid, loss, xp.zeros_like(loss))
    return loss, valid


@framework_semantics
def sparse_categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> Array:
    """``keras.losses.sparse_categorical_crossentropy``: integer labels, one loss per example.

    With probabilities, Keras clips to ``[1e-7, 1 - 1e-7]`` first and then
    takes ``log_softmax`` of the log, which renormalises the *clipped* row:
    ``-log(clip(p)[y] / sum(clip(p)))``.  Labels of shape ``(..., 1)`` are
    squeezed; float labels are truncated to int64; only the last axis may be
    the class axis; ``ignore_class`` positions get 0.  There is no label
    smoothing.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.sparse_categorical_crossentropy(
    ...     np.array([1, 2]), [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]).round(4)
    array([0.0513, 2.3026], dtype=float32)
    """
    return _sparse_categorical_crossentropy(y_true, y_pred, from_logits, ignore_class, axis)[0]


@framework_semantics
def binary_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """``keras.losses.binary_crossentropy``: the elementwise loss averaged over ``axis``.

    With probabilities Keras 3 clips to ``[1e-7, 1 - 1e-7]`` in ``y_pred``'s
    dtype and takes ``-(t log p + (1-t) log(1-p))`` with no epsilon inside the
    log (Keras 2 added one) and ``1 - p`` rounded in that dtype.  Label
    smoothing ``ε`` gives ``t (1-ε) + ε/2``.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]).round(4)
    array([0.9163, 0.7136], dtype=float32)
    """
    xp, p, t = _ns(y_pred, y_true, names=("y_true",))
    t = xp.astype(t, p.dtype)
    _keras_same_shape(t, p, at_least_rank_1=False)
    if check_fraction("label_smoothing", label_smoothing):
        t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        elementwise = losses.sigmoid_cross_entropy(p, t, reduction="none")
    else:
        # Keras would clip any value silently; one that could not be read enters as NaN.
        p = poisoned(xp, p, check_unit_interval(xp, "y_pred", p))
        elementwise = _keras_binary_crossentropy(xp, p, t)
    return half_back(xp, xp.mean(elementwise, axis=axis), p.dtype)


def _keras_binary_crossentropy(xp: Any, p: Array, t: Array) -> Array:
    """Keras 3's ``-(t log(p) + (1 - t) log(1 - p))`` on probabilities, elementwise.

    Keras clips ``p`` to [1e-7, 1 - 1e-7] in ``p``'s dtype, adds no epsilon
    inside the logs, and forms ``1 - p`` in that dtype too (no log1p): in
    float32 ``p = 0`` costs ``-log(1 - 1.19e-7)``, and in float16, where the
    upper bound rounds to 1, ``1 - p`` is 1 for ``p < 2**-12``.  Both logs are
    the core's (``-log(x)`` is the binary cross-entropy of target 1), taken in
    float32 for half precision.  A term of weight 0 takes its log of 1, so
    ``t = 1, p = 1`` in float16 costs 0 where Keras forms ``0 * log(0) = NaN``.
    """
    pc = _clip(xp, p)
    q = 1 - pc  # Keras: rounded in p's dtype
    ones = xp.ones_like(pc)
    t = xp.astype(t, compute_dtype(xp, p.dtype))

    def neg_log(x: Array) -> Array:
        return losses.binary_cross_entropy(x, ones, eps=0.0, reduction="none")

    # pc >= 1e-7 > 0, so -log(pc) is finite; q is 0 only where pc rounds to 1
    # (float16).  Only there, and only where (1 - t) is 0, is the log taken of 1
    # instead: everywhere else d/dt = log(q) - log(pc), as Keras's.
    return t * neg_log(pc) + (1 - t) * neg_log(xp.where((t == 1) & (q == 0), ones, q))


def _keras_clip(xp: Any, x: Array, low: float, high: float) -> Array:
    """``tf.clip_by_value``: its gradient passes at the bounds (``xp.clip`` under JAX halves it)."""
    return xp.where(x < low, xp.full_like(x, low), xp.where(x > high, xp.full_like(x, high), x))


@framework_semantics
def kl_divergence(y_true: Any, y_pred: Any) -> Array:
    """``keras.losses.kl_divergence`` (tf.keras ``kld``, ``KLD``): ``sum(t log(t / p), axis=-1)``.

    Both ``y_true`` and ``y_pred`` are probabilities clipped to ``[1e-7, 1]``
    first (so a target of 0 counts as 1e-7), as Keras does.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.kl_divergence([[0.5, 0.5, 0.0]], [[0.25, 0.5, 0.25]]).round(6)
    array([0.346572], dtype=float32)
    """
    xp, p, t = _ns(y_pred, y_true, names=("y_true",))
    eps = _epsilon_in(p.dtype)
    t = _keras_clip(xp, xp.astype(t, p.dtype), eps, 1.0)
    log_p = xp.log(_keras_clip(xp, p, eps, 1.0))
    return half_back(xp, kl_divergence_core(log_p, t, reduction="none"), p.dtype)


@framework_semantics
def poisson(y_true: Any, y_pred: Any) -> Array:
    """``keras.losses.poisson``: ``mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.poisson([[2.0, 0.0]], [[2.0, 1.0]]).round(6)
    array([0.806853], dtype=float32)
    """
    return _mean_over_last_axis(poisson_nll, y_true, y_pred, squeeze=False, keras_eps=True)


@framework_semantics
def binary_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """``keras.losses.binary_focal_crossentropy``: ``(1 - p_t)**gamma`` times the binary CE.

    Averaged over ``axis``, with ``p_t = t p + (1-t)(1-p)``; with
    ``apply_class_balancing`` each element is also weighted by ``alpha t +
    (1 - alpha)(1 - t)``.  With probabilities the cross-entropy is Keras's
    clipped one and the factor takes the unclipped ``p``; with logits the
    cross-entropy is the stable sigmoid one (Keras's too: it recovers the
    logits), and ``1 - p_t`` is formed without cancelling, where Keras's
    ``1 - p_t`` of a confident prediction keeps few digits.  Label smoothing
    ``ε`` gives ``t (1-ε) + ε/2``.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.binary_focal_crossentropy(
    ...     [[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]], gamma=2.0).round(3)
    array([0.33 , 0.206], dtype=float32)
    """
    xp, p, t = _ns(y_pred, y_true, names=("y_true",))
    t = xp.astype(t, p.dtype)
    _keras_same_shape(t, p, at_least_rank_1=False)
    if check_fraction("label_smoothing", label_smoothing):
        t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    balance = check_fraction("alpha", alpha) if apply_class_balancing else None
    if from_logits:
        loss = sigmoid_focal_loss(p, t, alpha=balance, gamma=gamma, reduction="none")
    else:
        # Keras would clip any value silently; one that could not be read enters as NaN.
        p = poisoned(xp, p, check_unit_interval(xp, "y_pred", p))
        loss = binary_focal_cross_entropy(
            p, t, gamma=gamma, alpha=balance, eps=_epsilon_in(p.dtype), reduction="none"
        )
    return half_back(xp, xp.mean(loss, axis=axis), p.dtype)


@framework_semantics
def categorical_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    alpha: Any = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """``keras.losses.categorical_focal_crossentropy``: ``-sum(alpha (1-p)**gamma t log p, axis)``.

    As Keras: with logits, ``p = softmax(y_pred)``; then each row is
    renormalised to sum to 1 and clipped to ``[1e-7, 1 - 1e-7]``.  ``alpha``
    is a number or one weight per class (the loss is linear in ``y_true``, so
    it weights the targets).  The rows' rules are those of
    :func:`categorical_crossentropy`.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.categorical_focal_crossentropy(
    ...     [[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]).round(4)
    array([0.    , 0.4663], dtype=float32)
    """
    xp, p, t = _categorical_inputs(
        "categorical_focal_crossentropy", y_true, y_pred, label_smoothing, axis
    )
    if from_logits:
        p = activations.softmax(p, axis=axis)
        p = p / xp.sum(p, axis=axis, keepdims=True)  # Keras renormalises the softmax too
    else:
        p = _renormalised(xp, p, axis)
    if not isinstance(alpha, numbers.Real):
        alpha = xp.astype(_ns(p, alpha, names=("alpha",))[2], t.dtype)
    loss = categorical_focal_cross_entropy(
        p, t * alpha, gamma=gamma, alpha=None, eps=_epsilon_in(p.dtype), axis=axis, reduction="none"
    )
    return half_back(xp, loss, p.dtype)


@framework_semantics
def categorical_generalized_cross_entropy(y_true: Any, y_pred: Any, q: float) -> Array:
    """``keras.losses.categorical_generalized_cross_entropy``: ``(1 - p_y**q) / q``.

    ``y_true`` holds integer class ids of ``y_pred``'s shape without the last
    axis (float ids are truncated, as Keras casts them); an id out of range,
    which Keras's one-hot turns into ``p_y = 0``, raises ``ValueError``, and
    so do ids of another shape, which Keras would broadcast against the
    predictions.  Nothing is clipped.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.categorical_generalized_cross_entropy(
    ...     np.array([1, 0]), [[0.25, 0.75], [0.5, 0.5]], q=0.5).round(6)
    array([0.267949, 0.585786], dtype=float32)
    """
    xp, p, y = _ns(y_pred, y_true, names=("y_true",))
    if p.ndim < 1 or shape_of(y) != shape_of(p)[:-1]:
        msg = (
            "`y_true` must hold class ids of the shape of `y_pred` without its last axis, "
            f"{shape_of(p)[:-1]}; got shape {shape_of(y)}"
        )
        raise ValueError(msg)
    if xp.isdtype(y.dtype, "integral"):
        y = int64_class_ids(xp, y, p.shape[-1], None)[0]  # the core makes bad ids NaN
    else:
        y = xp.astype(y, xp.int64)  # Keras: float ids are truncated
    loss = generalized_cross_entropy(p, y, q=q, reduction="none")
    return half_back(xp, loss, p.dtype)


def _mean_over_last_axis(
    core: Any,
    y_true: Any,
    y_pred: Any,
    *,
    squeeze: bool = True,
    half_promotes: bool = False,
    kink: Any = None,
    keras_eps: bool = False,
    **options: Any,
) -> Array:
    """Keras's elementwise losses: ``mean(core(y_pred, y_true), axis=-1)`` in ``y_pred``'s dtype.

    ``y_true`` is cast to ``y_pred``'s dtype; with ``squeeze`` (the
    regression losses) a rank difference of one trailing size-1 axis is
    squeezed or expanded away (Keras's ``squeeze_or_expand_to_same_rank``).
    Other shapes must be equal (Keras would broadcast them).
    ``half_promotes``: Keras meets a float32 constant that promotes half
    precision, and the loss is float32.  ``kink(xp, p, t)``, if given, is the
    ``keras_eps``: the core's ``eps`` is Keras's epsilon in ``y_pred``'s dtype.
    """
    xp, p, t = _ns(y_pred, y_true, names=("y_true",))
    t = xp.astype(t, p.dtype)
    if keras_eps:
        options["eps"] = _epsilon_in(p.dtype)
    if squeeze:
        t, p = _squeeze_or_expand_to_same_rank(xp, t, p)
    loss = xp.mean(core(p, t, reduction="none", **options), axis=-1)
    return loss if half_promotes else half_back(xp, loss, p.dtype)


@framework_semantics
def hinge(y_true: Any, y_pred: Any) -> Array:
    """``keras.losses.hinge``: ``mean(max(1 - y_true * y_pred, 0), axis=-1)``.

    ``y_true`` is -1 or 1; if every value is 0 or 1 they are taken as -1 and
    1 (Keras's ``convert_binary_labels_to_hinge``, over the whole array);
    other values are used as they are, as Keras does.  At the kink the slope
    is Keras's 1.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.hinge([[0.0, 1.0], [0.0, 0.0]], [[0.6, 0.4], [0.4, 0.6]]).round(4)
    array([1.1, 1.5], dtype=float32)
    """
    with kink_slope(1.0):  # tf.maximum(m, 0) passes the whole gradient at m = 0
        return _mean_over_last_axis(hinge_core, y_true, y_pred, squeeze=False)


@framework_semantics
def squared_hinge(y_true: Any, y_pred: Any) -> Array:
    """``keras.losses.squared_hinge``: ``mean(max(1 - y_true * y_pred, 0)**2, axis=-1)``.

    ``y_true`` as in :func:`hinge`.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.squared_hinge([[0.0, 1.0], [0.0, 0.0]], [[0.6, 0.4], [0.4, 0.6]])
    array([1.46, 2.26], dtype=float32)
    """
    return _mean_over_last_axis(squared_hinge_core, y_true, y_pred, squeeze=False)


@framework_semantics
def categorical_hinge(y_true: Any, y_pred: Any) -> Array:
    """``keras.losses.categorical_hinge``: ``max(1 + max((1 - t) p) - sum(t p), 0)`` per row.

    Over the last axis, with ``t = y_true`` (one-hot or soft rows of
    ``y_pred``'s shape).  As Keras, the maximum includes the true class's
    ``0 * p``, so wrong scores below 0 count as 0; tied maxima share the
    gradient, and at the kink the slope is Keras's 1.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.categorical_hinge([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]).round(4)
    array([1.2, 1.6], dtype=float32)
    """
    xp, p, t = _ns(y_pred, y_true, names=("y_true",))
    t = xp.astype(t, p.dtype)
    with kink_slope(1.0):  # tf.maximum(m, 0) passes the whole gradient at m = 0
        loss = categorical_hinge_core(p, t, reduction="none")
    return half_back(xp, loss, p.dtype)


@framework_semantics
def mean_squared_error(y_true: Any, y_pred: Any) -> Array:
    """``keras.losses.mean_squared_error``: ``mean((y_true - y_pred)**2, axis=-1)``.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.MSE([[0.0, 1.0]], [[1.0, 1.0]])
    array([0.5], dtype=float32)
    """
    return _mean_over_last_axis(losses.mean_squared_error, y_true, y_pred)


@framework_semantics
def mean_absolute_error(y_true: Any, y_pred: Any) -> Array:
    """``keras.losses.mean_absolute_error``: ``mean(|y_true - y_pred|, axis=-1)``.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.MAE([[0.0, 1.0]], [[1.0, 1.0]])
    array([0.5], dtype=float32)
    """
    return _mean_over_last_axis(losses.mean_absolute_error, y_true, y_pred)


@framework_semantics
def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> Array:
    """``keras.losses.huber``: ``0.5 e**2`` for ``|e| <= delta``, else ``delta (|e| - delta/2)``.

    Averaged over the last axis, ``e = y_pred - y_true``.  ``delta`` must be
    positive and finite (Keras computes a meaningless loss, negative for a
    negative ``delta``).

    >>> from losskit.compat import tf
    >>> tf.keras.losses.huber([[0.0, 1.0], [0.0, 0.0]], [[0.6, 0.4], [0.4, 3.0]])
    array([0.18, 1.29], dtype=float32)
    """
    return _mean_over_last_axis(huber_core, y_true, y_pred, delta=delta)


@framework_semantics
def log_cosh(y_true: Any, y_pred: Any) -> Array:
    """``keras.losses.log_cosh`` (tf.keras ``logcosh``): ``mean(log(cosh(y_pred - y_true)), -1)``.

    Exact for small errors, where Keras's ``x + softplus(-2x) - log 2`` loses
    its digits (Keras's ``log_cosh`` of an error of ``1e-9`` is 0, losskit's
    ``5e-19``), and in float64, where Keras subtracts ``log 2`` rounded to
    float32 (1.9e-9 too much); the same number elsewhere.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.log_cosh([[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]).round(5)
    array([0.21689, 0.     ], dtype=float32)
    """
    return _mean_over_last_axis(log_cosh_core, y_true, y_pred)


@framework_semantics
def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> Array:
    """``keras.losses.mean_absolute_percentage_error`` (``mape``, ``MAPE``), over the last axis.

    ``100 |y_true - y_pred| / max(|y_true|, 1e-7)``: a target of 0 costs
    ``1e9 |y_pred|``, as in Keras.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.MAPE([[100.0, 50.0]], [[110.0, 45.0]])
    array([10.], dtype=float32)
    """
    return _mean_over_last_axis(mape_core, y_true, y_pred)


@framework_semantics
def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> Array:
    """``keras.losses.mean_squared_logarithmic_error`` (``msle``, ``MSLE``), over the last axis.

    ``(log(1 + max(y_pred, 1e-7)) - log(1 + max(y_true, 1e-7)))**2``: values
    below ``1e-7``, negative ones included, count as ``1e-7`` (with no
    gradient), as in Keras, and half precision gives a float32 loss (Keras's
    float32 epsilon promotes it).  losskit takes ``log1p`` where Keras forms
    ``log(x + 1)``, a few ulps apart near 0.

    >>> from losskit.compat import tf
    >>> tf.keras.losses.MSLE([[0.0, 1.0]], [[np.e - 1, 1.0]]).round(6)
    array([0.5], dtype=float32)
    """
    # Keras: max(y_pred, epsilon) with a float32 epsilon makes half precision float32.
    return _mean_over_last_axis(msle_core, y_true, y_pred, half_promotes=True)


# --------------------------------------------------------------------------- keras.losses classes


def _standardize_reduction(reduction: Any) -> Any:
    if reduction not in _REDUCTIONS:
        choices = ", ".join(repr(r) for r in _REDUCTIONS)
        msg = (
            f"Invalid value for argument `reduction`. Expected one of {{{choices}}}. "
            f"Received: reduction={reduction}"
        )
        raise ValueError(msg)
    return reduction


def _divide_no_nan(xp: Any, num: Array, den: Any) -> Array:
    # Keras: ops.divide_no_nan, so a zero divisor gives 0.
    if isinstance(den, (int, float)):
        return num / den if den else xp.zeros_like(num)
    zero = den == 0
    return xp.where(zero, xp.zeros_like(num), num / xp.where(zero, xp.ones_like(den), den))


def _reduce_weighted_values(
    xp: Any, values: Array, sample_weight: Array | None, mask: Array | None, reduction: Any
) -> Array:
    """Keras's ``reduce_weighted_values``: fold mask and sample_weight in, then reduce."""
    dtype = values.dtype
    if sample_weight is not None:
        sample_weight = xp.astype(sample_weight, dtype)
    if mask is not None:
        if reduction in ("mean", "sum_over_batch_size"):
            # Keras: valid entries weigh total/valid so the mean is over the valid ones.
            total = math.prod(shape_of(mask))
            valid = xp.sum(xp.astype(mask, dtype))
            mask_weight = _divide_no_nan(xp, xp.full_like(valid, total), valid)
            float_mask = xp.where(mask, mask_weight, xp.zeros_like(mask_weight))
        else:
            float_mask = xp.astype(mask, dtype)
        if sample_weight is not None:
            float_mask, sample_weight = _squeeze_or_expand_to_same_rank(
                xp, float_mask, sample_weight
            )
            sample_weight = sample_weight * float_mask
        else:
            sample_weight = float_mask
    if sample_weight is not None:
        values, sample_weight = _squeeze_or_expand_to_same_rank(xp, values, sample_weight)
        try:
            np.broadcast_shapes(shape_of(values), shape_of(sample_weight))
        except ValueError:
            msg = (
                f"`sample_weight` of shape {shape_of(sample_weight)} does not broadcast "
                f"against the loss of shape {shape_of(values)}"
            )
            raise ValueError(msg) from None
        values = values * sample_weight
    # Keras: no reduction for "none"/None, and none either for a 0-d or empty (0,) loss.
    if reduction in (None, "none") or shape_of(values) in ((), (0,)):
        return values
    loss = xp.sum(values)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        # Keras divides by the sum of the weights as given, not as broadcast.
        return _divide_no_nan(xp, loss, xp.sum(sample_weight))
    # "sum_over_batch_size" and "mean": divide by the number of loss values.
    return _divide_no_nan(xp, loss, math.prod(shape_of(values)))


class Loss:
    """The Keras ``Loss`` call: cast to ``dtype`` (float32), compute, weight, reduce.

    Subclasses give ``call(y_true, y_pred) -> (losses, mask or None)``.
    """

    def __init__(
        self, name: str | None = None, reduction: Any = "sum_over_batch_size", dtype: Any = None
    ) -> None:
        self.name = name or type(self).__name__
        self.reduction = _standardize_reduction(reduction)
        self.dtype = dtype or "float32"  # keras.config.floatx()

    @framework_semantics
    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Array:
        xp, p, t, w = _ns(y_pred, y_true, sample_weight, names=("y_true", "sample_weight"))
        # Keras: both y_true and y_pred are cast to the loss's dtype (float32 by
        # default, even for float64 input; integer labels become floats too).
        name = self.dtype if isinstance(self.dtype, str) else np.dtype(self.dtype).name
        dtype = getattr(xp, name)
        p, t = xp.astype(p, dtype), xp.astype(t, dtype)
        # Keras's LossFunctionWrapper squeezes/expands y_true to y_pred's rank first.
        t, p = _squeeze_or_expand_to_same_rank(xp, t, p)
        losses, mask = self.call(t, p)
        return _reduce_weighted_values(xp, xp.astype(losses, dtype), w, mask, self.reduction)

    def call(self, y_true: Array, y_pred: Array) -> tuple[Array, Array | None]:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "reduction": self.reduction}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.get_config()}>"


class _Wrapper(Loss):
    """Keras's ``LossFunctionWrapper``: ``call`` is ``_function(y_true, y_pred, **options)``.

    A subclass names the function, Keras's default ``name`` and the options of
    its constructor with Keras's defaults, in Keras's positional order (before
    ``reduction``, ``name`` and ``dtype``); the constructor's signature is
    built from them, and each option is an attribute of the instance.
    """

    _function: Any = None
    _keras_name = ""
    _options: tuple[tuple[str, Any], ...] = ()  # (name, Keras's default) pairs

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                *(inspect.Parameter(k, _POSITIONAL, default=v) for k, v in cls._options),
                inspect.Parameter("reduction", _POSITIONAL, default="sum_over_batch_size"),
                inspect.Parameter("name", _POSITIONAL, default=cls._keras_name),
                inspect.Parameter("dtype", _POSITIONAL, default=None),
            ]
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = self.__signature__.bind(*args, **kwargs)  # type: ignore[attr-defined]
        bound.apply_defaults()
        options = dict(bound.arguments)
        super().__init__(
            name=options.pop("name"), reduction=options.pop("reduction"), dtype=options.pop("dtype")
        )
        for key, value in options.items():
            setattr(self, key, value)

    def call(self, y_true: Array, y_pred: Array) -> tuple[Array, Array | None]:
        return type(self)._function(y_true, y_pred, **self._option_values()), None

    def _option_values(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key, _ in self._options}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._option_values()}


_CROSSENTROPY_OPTIONS = (("from_logits", False), ("label_smoothing", 0.0), ("axis", -1))


class CategoricalCrossentropy(_Wrapper):
    """``keras.losses.CategoricalCrossentropy``: see :func:`categorical_crossentropy`.

    >>> from losskit.compat import tf
    >>> y_true, y_pred = [[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
    >>> cce = tf.keras.losses.CategoricalCrossentropy()
    >>> round(float(cce(y_true, y_pred, sample_weight=np.array([0.3, 0.7]))), 3)
    0.814
    >>> tf.keras.losses.CategoricalCrossentropy(reduction=None)(y_true, y_pred).round(4)
    array([0.0513, 2.3026], dtype=float32)
    """

    _function = staticmethod(categorical_crossentropy)
    _keras_name = "categorical_crossentropy"
    _options = _CROSSENTROPY_OPTIONS


class SparseCategoricalCrossentropy(Loss):
    """``keras.losses.SparseCategoricalCrossentropy``: see :func:`sparse_categorical_crossentropy`.

    Note Keras's positional order ``(from_logits, ignore_class, reduction, axis)``
    and that it has no ``label_smoothing``.  With ``ignore_class`` the mean is
    over the counted positions only.

    >>> from losskit.compat import tf
    >>> scce = tf.keras.losses.SparseCategoricalCrossentropy(reduction="sum")
    >>> round(float(scce(np.array([1, 2]), [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])), 3)
    2.354
    """

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction: Any = "sum_over_batch_size",
        axis: int = -1,
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis

    def call(self, y_true: Array, y_pred: Array) -> tuple[Array, Array | None]:
        return _sparse_categorical_crossentropy(
            y_true, y_pred, self.from_logits, self.ignore_class, self.axis
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "ignore_class": self.ignore_class,
        }


class BinaryCrossentropy(_Wrapper):
    """``keras.losses.BinaryCrossentropy``: see :func:`binary_crossentropy`.

    >>> from losskit.compat import tf
    >>> bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    >>> y_true, y_pred = [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]]
    >>> round(float(bce(y_true, y_pred)), 4), round(float(bce(y_true, y_pred, [0.8, 0.2])), 4)
    (0.8655, 0.2436)
    """

    _function = staticmethod(binary_crossentropy)
    _keras_name = "binary_crossentropy"
    _options = _CROSSENTROPY_OPTIONS


class MeanSquaredError(_Wrapper):
    """``keras.losses.MeanSquaredError``: see :func:`mean_squared_error`.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.MeanSquaredError()
    >>> float(loss([[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]]))
    0.5
    """

    _function = staticmethod(mean_squared_error)
    _keras_name = "mean_squared_error"


class MeanAbsoluteError(_Wrapper):
    """``keras.losses.MeanAbsoluteError``: see :func:`mean_absolute_error`.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.MeanAbsoluteError()
    >>> float(loss([[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]]))
    0.5
    """

    _function = staticmethod(mean_absolute_error)
    _keras_name = "mean_absolute_error"


class BinaryFocalCrossentropy(_Wrapper):
    """``keras.losses.BinaryFocalCrossentropy``: see :func:`binary_focal_crossentropy`.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=2.0)
    >>> round(float(loss([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])), 4)
    0.1596
    """

    _function = staticmethod(binary_focal_crossentropy)
    _keras_name = "binary_focal_crossentropy"
    _options = (
        ("apply_class_balancing", False),
        ("alpha", 0.25),
        ("gamma", 2.0),
        *_CROSSENTROPY_OPTIONS,
    )


class CategoricalFocalCrossentropy(_Wrapper):
    """``keras.losses.CategoricalFocalCrossentropy``: see :func:`categorical_focal_crossentropy`.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.CategoricalFocalCrossentropy()
    >>> round(float(loss([[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])), 4)
    0.2332
    """

    _function = staticmethod(categorical_focal_crossentropy)
    _keras_name = "categorical_focal_crossentropy"
    _options = (("alpha", 0.25), ("gamma", 2.0), *_CROSSENTROPY_OPTIONS)


class CategoricalGeneralizedCrossEntropy(_Wrapper):
    """``keras.losses.CategoricalGeneralizedCrossEntropy``: see
    :func:`categorical_generalized_cross_entropy`; ``q`` must lie in (0, 1), as Keras checks.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.CategoricalGeneralizedCrossEntropy(q=0.5)
    >>> round(float(loss(np.array([1, 0]), [[0.25, 0.75], [0.5, 0.5]])), 6)
    0.426868
    """

    _function = staticmethod(categorical_generalized_cross_entropy)
    _keras_name = "categorical_generalized_cross_entropy"
    _options = (("q", 0.5),)
    q: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not 0 < self.q < 1:
            msg = "q must be in the interval (0, 1)"  # Keras's check and words
            raise ValueError(msg)


class Hinge(_Wrapper):
    """``keras.losses.Hinge``: see :func:`hinge`.

    >>> from losskit.compat import tf
    >>> float(tf.keras.losses.Hinge()([[0.0, 1.0], [0.0, 0.0]], [[0.6, 0.4], [0.4, 0.6]]))
    1.2999999523162842
    """

    _function = staticmethod(hinge)
    _keras_name = "hinge"


class SquaredHinge(_Wrapper):
    """``keras.losses.SquaredHinge``: see :func:`squared_hinge`.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.SquaredHinge(reduction="sum")
    >>> round(float(loss([[0.0, 1.0], [0.0, 0.0]], [[0.6, 0.4], [0.4, 0.6]])), 4)
    3.72
    """

    _function = staticmethod(squared_hinge)
    _keras_name = "squared_hinge"


class CategoricalHinge(_Wrapper):
    """``keras.losses.CategoricalHinge``: see :func:`categorical_hinge`.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.CategoricalHinge()
    >>> round(float(loss([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])), 4)
    1.4
    """

    _function = staticmethod(categorical_hinge)
    _keras_name = "categorical_hinge"


class KLDivergence(_Wrapper):
    """``keras.losses.KLDivergence``: see :func:`kl_divergence`.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.KLDivergence()
    >>> round(float(loss([[0.5, 0.5, 0.0]], [[0.25, 0.5, 0.25]])), 6)
    0.346572
    """

    _function = staticmethod(kl_divergence)
    _keras_name = "kl_divergence"


class Poisson(_Wrapper):
    """``keras.losses.Poisson``: see :func:`poisson`.

    >>> from losskit.compat import tf
    >>> round(float(tf.keras.losses.Poisson()([[2.0, 0.0]], [[2.0, 1.0]])), 6)
    0.806853
    """

    _function = staticmethod(poisson)
    _keras_name = "poisson"


class Huber(_Wrapper):
    """``keras.losses.Huber``: see :func:`huber`.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.Huber(delta=0.5)
    >>> round(float(loss([[0.0, 1.0], [0.0, 0.0]], [[0.6, 0.4], [0.4, 3.0]])), 5)
    0.45125
    """

    _function = staticmethod(huber)
    _keras_name = "huber_loss"
    _options = (("delta", 1.0),)


class LogCosh(_Wrapper):
    """``keras.losses.LogCosh``: see :func:`log_cosh`.

    >>> from losskit.compat import tf
    >>> round(float(tf.keras.losses.LogCosh()([[0.0, 1.0]], [[1.0, 1.0]])), 5)
    0.21689
    """

    _function = staticmethod(log_cosh)
    _keras_name = "log_cosh"


class MeanAbsolutePercentageError(_Wrapper):
    """``keras.losses.MeanAbsolutePercentageError``: see :func:`mean_absolute_percentage_error`.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.MeanAbsolutePercentageError(reduction="sum")
    >>> float(loss([[100.0, 50.0], [1.0, 2.0]], [[110.0, 45.0], [1.0, 1.0]]))
    35.0
    """

    _function = staticmethod(mean_absolute_percentage_error)
    _keras_name = "mean_absolute_percentage_error"


class MeanSquaredLogarithmicError(_Wrapper):
    """``keras.losses.MeanSquaredLogarithmicError``: see :func:`mean_squared_logarithmic_error`.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.MeanSquaredLogarithmicError()
    >>> round(float(loss([[0.0, 1.0]], [[np.e - 1, 1.0]])), 6)
    0.5
    """

    _function = staticmethod(mean_squared_logarithmic_error)
    _keras_name = "mean_squared_logarithmic_error"


# tf.keras's aliases (Keras 3 keeps them under keras._legacy).
MSE = mse = mean_squared_error
MAE = mae = mean_absolute_error
MAPE = mape = mean_absolute_percentage_error
MSLE = msle = mean_squared_logarithmic_error
logcosh = log_cosh
KLD = kld = kullback_leibler_divergence = kl_divergence

keras = SimpleNamespace(
    losses=SimpleNamespace(
        Loss=Loss,
        categorical_crossentropy=categorical_crossentropy,
        sparse_categorical_crossentropy=sparse_categorical_crossentropy,
        binary_crossentropy=binary_crossentropy,
        mean_squared_error=mean_squared_error,
        mean_absolute_error=mean_absolute_error,
        binary_focal_crossentropy=binary_focal_crossentropy,
        categorical_focal_crossentropy=categorical_focal_crossentropy,
        categorical_generalized_cross_entropy=categorical_generalized_cross_entropy,
        hinge=hinge,
        squared_hinge=squared_hinge,
        categorical_hinge=categorical_hinge,
        kl_divergence=kl_divergence,
        poisson=poisson,
        huber=huber,
        log_cosh=log_cosh,
        mean_absolute_percentage_error=mean_absolute_percentage_error,
        mean_squared_logarithmic_error=mean_squared_logarithmic_error,
        MSE=MSE,
        MAE=MAE,
        MAPE=MAPE,
        MSLE=MSLE,
        mse=mse,
        mae=mae,
        mape=mape,
        msle=msle,
        logcosh=logcosh,
        KLD=KLD,
        kld=kld,
        kullback_leibler_divergence=kullback_leibler_divergence,
        CategoricalCrossentropy=CategoricalCrossentropy,
        SparseCategoricalCrossentropy=SparseCategoricalCrossentropy,
        BinaryCrossentropy=BinaryCrossentropy,
        MeanSquaredError=MeanSquaredError,
        MeanAbsoluteError=MeanAbsoluteError,
        BinaryFocalCrossentropy=BinaryFocalCrossentropy,
        CategoricalFocalCrossentropy=CategoricalFocalCrossentropy,
        CategoricalGeneralizedCrossEntropy=CategoricalGeneralizedCrossEntropy,
        Hinge=Hinge,
        SquaredHinge=SquaredHinge,
        CategoricalHinge=CategoricalHinge,
        KLDivergence=KLDivergence,
        Poisson=Poisson,
        Huber=Huber,
        LogCosh=LogCosh,
        MeanAbsolutePercentageError=MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError=MeanSquaredLogarithmicError,
    )
)


# The Keras losses of issues 9-10, one file each (imported last: they use the helpers above).
from ._keras_contrastive import KERAS_LOSSES as _KERAS_CONTRASTIVE  # noqa: E402
from ._keras_ctc import KERAS_LOSSES as _KERAS_CTC  # noqa: E402
from ._keras_segmentation import KERAS_LOSSES as _KERAS_SEGMENTATION  # noqa: E402
from ._keras_similarity import KERAS_LOSSES as _KERAS_SIMILARITY  # noqa: E402

for _more in (_KERAS_CONTRASTIVE, _KERAS_CTC, _KERAS_SEGMENTATION, _KERAS_SIMILARITY):
    vars(keras.losses).update(_more)
