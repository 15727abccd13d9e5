"""PyTorch's ``torch.nn.functional`` loss names, argument orders and numbers, over the losskit core.

``from losskit.compat import torch as F`` gives ``cross_entropy``, ``nll_loss``,
``binary_cross_entropy``, ``binary_cross_entropy_with_logits``, ``mse_loss`` and
``l1_loss`` with PyTorch 2's signatures (the deprecated ``size_average`` and
``reduce`` included, in their places) and numbers, edge cases included: the
class axis is 1 (0 for an unbatched ``(C,)`` input), ``mean`` over an
all-ignored batch (or an empty one) is NaN, binary cross-entropy clamps each
log at -100, the loss has PyTorch's dtype (half precision in, half precision
out; input and target promote), and autograd through a torch tensor gives
PyTorch's gradients.  Each step where PyTorch departs from the core's
semantics is done here and marked ``# torch:``.

Inputs may be PyTorch tensors, NumPy arrays, Python lists or JAX arrays; the
result is of the input's kind.  Where PyTorch raises ``IndexError`` or
``RuntimeError`` for a bad value (a target out of range, a probability outside
[0, 1]) the adapter raises ``ValueError`` naming the value and its position.

Deliberate differences: any integer dtype is taken for class ids (PyTorch
wants int64 or uint8), and when the counted targets' class weights sum to 0
the NaN mean comes with a zero gradient (PyTorch's gradient is NaN too); a
half-precision loss that goes through the core is accumulated in float32 and
rounded once (PyTorch rounds some steps in between, a few ulps apart).

Examples
--------
>>> import numpy as np
>>> from losskit.compat import torch as F
>>> logits = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
>>> round(float(F.cross_entropy(logits, np.array([2, -100]))), 4)  # the ignored row counts nowhere
0.0222
>>> float(F.cross_entropy(logits, np.array([-100, -100])))  # torch: an all-ignored mean is NaN
nan
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

import array_api_compat

from .. import classification, regression
from .._backend import Array, cast, namespace, quiet_numpy, shape_of
from .._validation import (
    check_class_axis,
    check_class_weight,
    check_floating,
    check_fraction,
    check_label_range,
    check_labels_dtype,
    check_labels_shape,
    check_unit_interval,
)
from ._common import half_back, sigmoid_cross_entropy_pos_weight

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "l1_loss",
    "mse_loss",
    "nll_loss",
]


# torch's binary_cross_entropy_backward divides by max(p (1-p), EPSILON) with
# EPSILON = 1e-12 held as a C++ float: float32(1e-12), also for float64 input.
_BCE_GRAD_FLOOR = 9.999999960041972e-13

# --------------------------------------------------------------------------- helpers


def _reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch.nn._reduction: the legacy flags override ``reduction``, with a warning."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
        msg = (
            "size_average and reduce args will be deprecated, please use "
            f"reduction='{reduction}' instead."
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
        return reduction
    if reduction == "elementwise_mean":
        msg = "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead."
        warnings.warn(msg, UserWarning, stacklevel=3)
        return "mean"
    if reduction not in ("none", "mean", "sum"):
        msg = f"{reduction} is not a valid value for reduction"
        raise ValueError(msg)
    return reduction


def _class_axis(x: Array) -> int:
    """torch: the classes are dim 1, or dim 0 for an unbatched ``(C,)`` input."""
    return check_class_axis("input", x, 0 if x.ndim == 1 else 1)


def _nan_if(xp: Any, empty: Array | bool, like: Array) -> Array:
    """NaN where ``empty`` holds, else 0, as a constant of ``like``'s dtype (no gradient)."""
    if isinstance(empty, bool):
        value = math.nan if empty else 0.0
        return xp.asarray(value, dtype=like.dtype, device=array_api_compat.device(like))
    nan = xp.full_like(like, math.nan)
    return xp.where(empty, nan, xp.zeros_like(nan))


def _mean_or_nan(xp: Any, total: Array, denominator: Array) -> Array:
    """torch: ``total / denominator``, NaN (0/0) when the denominator is 0.

    The NaN is added as a constant, so the gradient is then 0, not NaN.
    """
    empty = denominator == 0
    safe = xp.where(empty, xp.ones_like(denominator), denominator)
    return total / safe + _nan_if(xp, empty, total)


def _result_dtype(xp: Any, *arrays: Array) -> Any:
    """torch: the loss's dtype, the promoted dtype of the floating arrays given."""
    floating = [a for a in arrays if _is_float(xp, a)] or arrays[:1]
    return xp.result_type(*floating)


def _promoted(xp: Any, *arrays: Array) -> tuple[Any, ...]:
    """``(dtype, *arrays)`` with the arrays cast to their :func:`_result_dtype`."""
    dtype = _result_dtype(xp, *arrays)
    return (dtype, *(cast(xp, a, dtype) for a in arrays))


def _reduce_by_count(xp: Any, loss: Array, reduction: str) -> Array:
    """none/sum/mean with ``mean = sum / numel``: NaN for an empty input (0/0), as torch."""
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    n = math.prod(shape_of(loss))
    return total / n if n else total + _nan_if(xp, True, total)


def _stop_gradient(x: Array) -> Array:
    """``x`` cut from autograd (torch ``detach``, ``jax.lax.stop_gradient``); NumPy as is."""
    if array_api_compat.is_torch_array(x):
        return x.detach()
    if array_api_compat.is_jax_array(x):
        return sys.modules["jax"].lax.stop_gradient(x)  # jax is imported: x is its array
    return x


def _label_weight(
    xp: Any, target: Array, weight: Array | None, counted: Array, dtype: Any
) -> Array:
    """``weight[target]`` (1 without weight) where counted, 0 where ignored."""
    safe = xp.where(counted, target, xp.zeros_like(target))
    if weight is None:
        w = xp.ones_like(target, dtype=dtype)
    else:
        flat = xp.take(xp.astype(weight, dtype), xp.reshape(safe, (-1,)))
        w = xp.reshape(flat, shape_of(target))
    return xp.where(counted, w, xp.zeros_like(w))


def _is_float(xp: Any, x: Array) -> bool:
    return bool(xp.isdtype(x.dtype, "real floating"))


# --------------------------------------------------------------------------- softmax family


def cross_entropy(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Array:
    """``torch.nn.functional.cross_entropy``: softmax cross-entropy, classes on dim 1.

    ``input`` is ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dK)`` logits; ``target``
    is class ids of the input's shape without dim 1, or class probabilities of
    the input's shape.  With ids, ``weight[c]`` scales each example's loss and
    ``mean`` divides by the summed weight of the counted targets (NaN when that
    is 0, e.g. all ignored); with probabilities, the smoothed target
    ``(1-ε) t + ε/C`` is scaled by ``weight`` per class and ``mean`` divides by
    the number of examples (NaN for none).  Half-precision input gives a
    half-precision loss, accumulated in float32 and rounded once.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> x = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
    >>> F.cross_entropy(x, np.array([2, 1]), reduction="none").round(4)
    array([0.0222, 3.0997])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, x, t, w = namespace(input, target, weight, names=("target", "weight"))
    axis = _class_axis(x)
    eps = check_fraction("label_smoothing", label_smoothing)
    if _is_float(xp, t):
        # Class probabilities.
        if ignore_index != -100:
            msg = "ignore_index is not supported for floating point target"
            raise ValueError(msg)
        num_classes = x.shape[axis]
        dtype, x, t = _promoted(xp, x, t)  # torch: input and target promote
        if eps:
            t = t * (1 - eps) + eps / num_classes
        if w is not None:
            # torch: with probabilities the weight scales each class's term, and
            # `mean` still divides by the number of examples (not by the weights).
            check_class_weight(xp, w, num_classes)
            t = t * xp.reshape(xp.astype(w, t.dtype), (num_classes,) + (1,) * (x.ndim - 1 - axis))
        # torch: the mean of no examples is NaN (the core's is 0).
        loss = classification.softmax_cross_entropy(x, t, axis=axis, reduction="none")
        return half_back(xp, _reduce_by_count(xp, loss, red), dtype)
    loss = classification.sparse_softmax_cross_entropy(
        x,
        t,
        axis=axis,
        class_weight=w,
        ignore_index=ignore_index,
        label_smoothing=eps,
        reduction="sum" if red == "mean" else red,
    )
    if red == "mean":
        # torch: the mean divides the sum by the summed weight of the counted
        # targets even when that is 0 (all ignored), giving NaN; the core gives 0.
        loss = _mean_or_nan(
            xp, loss, xp.sum(_label_weight(xp, t, w, t != ignore_index, loss.dtype))
        )
    return half_back(xp, loss, x.dtype)


def nll_loss(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.nll_loss``: ``-weight[y] * input[n, y]``, classes on dim 1.

    ``input`` is taken as log-probabilities as it is, without any check or
    normalisation (PyTorch's behaviour).  ``mean`` divides by the summed weight
    of the counted targets, NaN when that is 0.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> F.nll_loss(np.log([[0.5, 0.25, 0.25]]), np.array([1]), reduction="none").round(4)
    array([1.3863])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, x, t, w = namespace(input, target, weight, names=("target", "weight"))
    check_floating(xp, "input", x)
    axis = _class_axis(x)
    num_classes = x.shape[axis]
    check_labels_dtype(xp, t)
    check_labels_shape(t, "input", x, axis)
    if w is not None:
        check_class_weight(xp, w, num_classes)
    check_label_range(xp, t, num_classes, ignore_index)
    counted = t != ignore_index
    wy = _label_weight(xp, t, w, counted, x.dtype)
    # input[n, y_n] as a masked sum over the class axis (portable, differentiable).
    classes = xp.arange(num_classes, device=array_api_compat.device(x))
    classes = xp.reshape(classes, (num_classes,) + (1,) * (x.ndim - 1 - axis))
    safe = xp.where(counted, t, xp.zeros_like(t))
    onehot = xp.expand_dims(safe, axis=axis) == classes
    picked = xp.sum(xp.where(onehot, x, xp.zeros_like(x)), axis=axis)
    loss = -wy * picked
    if red != "mean":
        return loss if red == "none" else xp.sum(loss)
    # torch: sum / total weight, NaN (0/0) when nothing is counted.
    return _mean_or_nan(xp, xp.sum(loss), xp.sum(wy))


# --------------------------------------------------------------------------- binary


def binary_cross_entropy(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.binary_cross_entropy``: probabilities in, each log clamped at -100.

    ``-(t max(log p, -100) + (1-t) max(log(1-p), -100))`` elementwise, times
    ``weight`` (broadcast); ``mean`` divides by the number of elements.  Under
    autograd the gradient is PyTorch's, ``(p - t) / max(p (1-p), 1e-12)``,
    finite at ``p = 0`` and ``p = 1``.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> p, t = np.array([0.0, 1.0, 0.5]), np.array([1.0, 0.0, 1.0])
    >>> F.binary_cross_entropy(p, t, reduction="none")
    array([100.        , 100.        ,   0.69314718])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, p, t, w = namespace(input, target, weight, names=("target", "weight"))
    if shape_of(t) != shape_of(p):
        msg = (
            f"Using a target size ({shape_of(t)}) that is different to the input size "
            f"({shape_of(p)}) is deprecated. Please ensure they have the same size."
        )
        raise ValueError(msg)
    check_unit_interval(xp, "input", p)
    check_unit_interval(xp, "target", t)
    t = xp.astype(t, p.dtype)
    with quiet_numpy():
        # torch: each log is clamped at -100, so p = 0 or 1 costs 100, not inf.
        log_p = xp.clip(xp.log(p), min=-100.0)
        log_1mp = xp.clip(xp.log(1 - p), min=-100.0)
    loss = -(t * log_p + (1 - t) * log_1mp)
    if getattr(p, "requires_grad", False) or array_api_compat.is_jax_array(p):
        # torch: the derivative is (p - t) / max(p (1 - p), 1e-12), not that of the
        # clamped logs (which is 0 or NaN where they clamp): value unchanged,
        # gradient replaced.
        pd, td = _stop_gradient(p), _stop_gradient(t)
        dp = (pd - td) / xp.clip(pd * (1 - pd), min=_BCE_GRAD_FLOOR)
        loss = _stop_gradient(loss) + dp * (p - pd)
    if w is not None:
        loss = loss * xp.astype(w, loss.dtype)
    return _reduce_by_count(xp, loss, red)


def binary_cross_entropy_with_logits(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Array:
    """``torch.nn.functional.binary_cross_entropy_with_logits``: the stable sigmoid cross-entropy.

    ``weight`` scales each element (broadcast) and ``mean`` divides by the
    number of elements, not by the weights; ``pos_weight`` scales the positive
    term, of any shape that broadcasts to the input's (``(C, 1, 1)`` for ``(N, C, H, W)``).

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> x, t = np.array([0.0, 100.0]), np.array([1.0, 0.0])
    >>> F.binary_cross_entropy_with_logits(x, t, reduction="none")
    array([  0.69314718, 100.        ])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, x, t, w, q = namespace(
        input, target, weight, pos_weight, names=("target", "weight", "pos_weight")
    )
    if shape_of(t) != shape_of(x):
        msg = f"Target size ({shape_of(t)}) must be the same as input size ({shape_of(x)})"
        raise ValueError(msg)
    dtype = _result_dtype(xp, x, t)  # torch: weight and pos_weight do not promote
    loss = sigmoid_cross_entropy_pos_weight(xp, x, t, q)
    if w is not None:
        # torch: the weight multiplies each element; mean = sum / numel.
        loss = loss * xp.astype(w, loss.dtype)
    return half_back(xp, _reduce_by_count(xp, loss, red), dtype)


# --------------------------------------------------------------------------- regression


def _regression(
    core: Any,
    input: Any,
    target: Any,
    size_average: bool | None,
    reduce: bool | None,
    reduction: str,
    weight: Any,
) -> Array:
    red = _reduction(size_average, reduce, reduction)
    xp, x, t, w = namespace(input, target, weight, names=("target", "weight"))
    input_shape = shape_of(x)
    if shape_of(t) != input_shape:
        # torch: different sizes broadcast, with this warning.
        msg = (
            f"Using a target size ({shape_of(t)}) that is different to the input size "
            f"({shape_of(x)}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size."
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
    x, t = xp.broadcast_arrays(x, t)
    if w is not None and shape_of(w) != input_shape:
        msg = "Weights and input must have the same size."
        raise ValueError(msg)
    # torch: input, target and weight promote to one dtype, the loss's.
    dtype, x, t = _promoted(xp, x, t, *(() if w is None else (w,)))[:3]
    # torch: with weight, mean = sum(w * e) / sum(w) (the core's weighted mean).
    loss = core(x, t, reduction=red, sample_weight=w)
    if red == "mean" and math.prod(shape_of(x)) == 0:
        loss = loss + _nan_if(xp, True, loss)  # torch: the mean of nothing is NaN
    return half_back(xp, loss, dtype)


def mse_loss(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Any = None,
) -> Array:
    """``torch.nn.functional.mse_loss``: ``(input - target)**2``, reduced.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> float(F.mse_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
    2.5
    """
    return _regression(
        regression.mean_squared_error, input, target, size_average, reduce, reduction, weight
    )


def l1_loss(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Any = None,
) -> Array:
    """``torch.nn.functional.l1_loss``: ``|input - target|``, reduced.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> float(F.l1_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
    1.5
    """
    return _regression(
        regression.mean_absolute_error, input, target, size_average, reduce, reduction, weight
    )
