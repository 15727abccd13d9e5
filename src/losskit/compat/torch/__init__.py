"""PyTorch's ``torch.nn.functional`` losses and softmaxes, names and numbers, over the core.

``from losskit.compat import torch as F`` gives ``cross_entropy``, ``nll_loss``,
``binary_cross_entropy``, ``binary_cross_entropy_with_logits``, ``mse_loss``,
``l1_loss``, ``huber_loss``, ``smooth_l1_loss``, ``poisson_nll_loss``,
``gaussian_nll_loss``, ``kl_div``, ``soft_margin_loss``,
``multilabel_soft_margin_loss``, ``hinge_embedding_loss``,
``multi_margin_loss``, ``multilabel_margin_loss``, ``cosine_embedding_loss``,
``margin_ranking_loss``, ``triplet_margin_loss``,
``triplet_margin_with_distance_loss``, ``ctc_loss``, ``linear_cross_entropy``
(always chunked), ``softmax``, ``log_softmax`` and ``logsumexp`` with
PyTorch 2.13's signatures (the
deprecated ``size_average`` and ``reduce`` included, in their places) and
numbers, edge cases included: the class axis is 1 (0 for an unbatched
``(C,)`` input), ``mean`` over an all-ignored batch (or an empty one) is
NaN, binary cross-entropy clamps each log at -100, the loss has PyTorch's
dtype (half precision in, half precision out; input and target promote),
negative weights and targets outside [0, 1] where PyTorch takes them
(soft cross-entropy, ``binary_cross_entropy_with_logits``), ``mean`` by the
number of elements or examples where PyTorch divides so (``huber_loss`` with
``weight``, ``multi_margin_loss``), the slope of each hinge at its kink
(PyTorch's ``clamp_min`` passes the whole gradient, its margin kernels none;
the core splits it).  Each step where PyTorch departs from the core's
semantics is done here and marked ``# torch:``.

Autograd through torch tensors and JAX arrays gives PyTorch's derivatives with
respect to every floating argument, to second order: the input, the target
(``binary_cross_entropy``'s is PyTorch's ``log(1-p) - log(p)``, infinite at
``p = 0`` or 1, while its derivative in ``p`` is ``(p - t) / max(p (1-p), 1e-12)``)
and the weights.

A target of the input's shape holds class probabilities and must be floating;
a target without the class dimension holds class ids and must be integers
(PyTorch's rule).  Class weights for class ids must have the input's dtype,
as PyTorch requires.

Inputs may be PyTorch tensors, NumPy arrays, Python lists or JAX arrays; the
result is of the input's kind.  Where PyTorch raises ``IndexError`` or
``RuntimeError`` for a bad value (a target out of range, a probability outside
[0, 1], an ``ignore_index`` outside int64) the adapter raises ``ValueError``
naming the value and its position; where the value cannot be read (inside
``jax.jit`` or ``torch.compile``, on ``meta``) the losses it enters are NaN.
Every function compiles with ``torch.compile(fullgraph=True)``.

``nn`` (:mod:`losskit.compat.torch.nn`) holds the ``torch.nn`` loss classes
over these functions (``nn.CrossEntropyLoss``, ...), ``torch.nn.Module``
subclasses where PyTorch is installed; ``nn.functional`` is this module.

Deliberate differences: any integer dtype is taken for class ids (PyTorch
wants int64 or uint8); the derivative with respect to ``weight`` and
``pos_weight``, which PyTorch refuses to take for class ids and the binary
losses ("not differentiable with respect to argument 'weight'"), is the exact
one; when the counted targets' class weights sum to 0 the NaN mean comes with
a zero gradient (PyTorch's gradient is NaN too); a half-precision loss that
goes through the core is accumulated in float32 and rounded once (PyTorch
rounds some steps in between, a few ulps apart); the margin and likelihood
losses take a target of the input's shape only (PyTorch broadcasts it
silently); ``0 * log 0`` is 0 where PyTorch forms NaN (``poisson_nll_loss`` of
a count of 0 under a rate of 0; the derivatives of ``kl_div`` and of
``poisson_nll_loss(full=True)`` in a target of 0); ``soft_margin_loss`` stays
finite where PyTorch's overflows, and its derivative in the target, which
PyTorch refuses, is the exact one; an empty ``multi_margin_loss`` mean is NaN
(PyTorch returns uninitialised memory); at an exact tie
``multilabel_margin_loss``'s slope is the core's 1/2 (PyTorch's 0).

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

import functools
import importlib
import math
import numbers
import sys
import warnings
from typing import Any

import array_api_compat
import numpy as np

from ... import activations, losses
from ..._backend import Array, cast, namespace, quiet_numpy, shape_of
from ..._config import kink_slope
from ..._validation import check_floating, check_fraction, check_unit_interval
from ...losses.likelihood import check_var, gaussian_nll, negative_log_likelihood, poisson_nll
from ...losses.likelihood import kl_divergence as kl_divergence_core
from ...losses.margin import hinge_embedding as hinge_embedding_core
from ...losses.margin import multi_margin as multi_margin_core
from ...losses.margin import multilabel_margin as multilabel_margin_core
from ...losses.margin import multilabel_soft_margin as multilabel_soft_margin_core
from ...losses.margin import soft_margin as soft_margin_core
from ...losses.regression import huber as huber_core
from .._common import (
    INT64_MAX,
    INT64_MIN,
    framework_semantics,
    half_back,
    int64_class_ids,
    poisoned,
    sigmoid_cross_entropy_pos_weight,
    with_partials,
)

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "log_softmax",
    "logsumexp",
    "mse_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "nn",
    "poisson_nll_loss",
    "smooth_l1_loss",
    "soft_margin_loss",
    "softmax",
]


# torch's binary_cross_entropy_backward divides by max(p (1-p), EPSILON) with
# EPSILON = 1e-12 held as a C++ float: float32(1e-12), also for float64 input.
_BCE_GRAD_FLOOR = 9.999999960041972e-13

_FLOATING = ("float16", "bfloat16", "float32", "float64")


def __getattr__(name: str) -> Any:
    # `nn` (the loss classes) is imported when first asked for: it imports torch where
    # torch is installed, and this module imports none.
    if name == "nn":
        return importlib.import_module(f"{__name__}.nn")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


# --------------------------------------------------------------------------- helpers


def legacy_reduction(size_average: bool | None, reduce: bool | None, stacklevel: int) -> str:
    """torch.nn._reduction.legacy_get_string: the reduction the legacy flags name, with a warning.

    A flag left at None counts as True.  ``stacklevel`` is that of the warning
    as seen from the caller of this function.
    """
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = ("mean" if size_average else "sum") if reduce else "none"
    msg = (
        "size_average and reduce args will be deprecated, please use "
        f"reduction='{reduction}' instead."
    )
    warnings.warn(msg, UserWarning, stacklevel=stacklevel + 1)
    return reduction


def _reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch.nn._reduction: the legacy flags override ``reduction``, with a warning."""
    if size_average is not None or reduce is not None:
        return legacy_reduction(size_average, reduce, stacklevel=4)
    if reduction == "elementwise_mean":
        msg = "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead."
        warnings.warn(msg, UserWarning, stacklevel=4)
        return "mean"
    if reduction not in ("none", "mean", "sum"):
        msg = f"{reduction} is not a valid value for reduction"
        raise ValueError(msg)
    return reduction


def _class_axis(x: Array) -> int:
    """torch: the classes are dim 1, or dim 0 for an unbatched ``(C,)`` input."""
    if x.ndim == 0:
        msg = "`input` must have a class dimension (at least 1 dimension); got a 0-d array"
        raise ValueError(msg)
    return 0 if x.ndim == 1 else 1


def _ignore_index(value: Any) -> int:
    """torch: an int that fits int64 (torch raises "Overflow when unpacking long long")."""
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
        msg = f"`ignore_index` must be an int; got {value!r}"
        raise TypeError(msg)
    if not INT64_MIN <= int(value) <= INT64_MAX:
        msg = f"`ignore_index` must fit in int64, [-2**63, 2**63); got {int(value)}"
        raise ValueError(msg)
    return int(value)


def _class_ids(
    xp: Any, t: Array, x: Array, axis: int, ignore_index: int | None, *, soft_too: bool
) -> tuple[Array, Array | None]:
    """The class ids ``t`` of ``x``: integer, of ``x``'s shape without ``axis``, in range.

    Returns them as int64, and the traced mask of bad ones where they cannot be read.
    """
    expected = shape_of(x)[:axis] + shape_of(x)[axis + 1 :]
    if shape_of(t) != expected:
        also = f" or class probabilities of the input's shape {shape_of(x)}" if soft_too else ""
        msg = (
            f"`target` must be class ids of shape {expected} (the input's shape "
            f"{shape_of(x)} without its class dim {axis}){also}; got {shape_of(t)}"
        )
        raise ValueError(msg)
    if not xp.isdtype(t.dtype, "integral"):
        msg = (
            f"`target` of shape {shape_of(t)} holds class ids (the input's shape "
            f"without its class dim {axis}), which must be integers; got dtype {t.dtype}"
        )
        raise TypeError(msg)
    return int64_class_ids(xp, t, x.shape[axis], ignore_index)


def _class_weight(xp: Any, weight: Any, w: Array | None, x: Array, axis: int) -> Array | None:
    """torch: one weight per class, of the input's dtype (PyTorch refuses another dtype).

    A Python list or number has no dtype of its own: it is taken in the input's.
    """
    if w is None:
        return None
    num_classes = x.shape[axis]
    if shape_of(w) != (num_classes,):
        msg = f"`weight` must have one weight per class, shape ({num_classes},); got {shape_of(w)}"
        raise ValueError(msg)
    if not array_api_compat.is_array_api_obj(weight):
        return xp.astype(w, x.dtype)
    if w.dtype != x.dtype:
        msg = (
            f"`weight` must have the dtype of `input` ({x.dtype}), as PyTorch requires for "
            f"class ids; got {w.dtype}"
        )
        raise TypeError(msg)
    return w


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


def _paired(input: Any, target: Any) -> tuple[Any, Any, Array, Array]:
    """``(xp, dtype, input, target)``: a target of the input's shape, both in the promoted dtype."""
    xp, x, t = namespace(input, target, names=("target",))
    _same_shape(t, x)
    dtype, x, t = _promoted(xp, x, t)
    return xp, dtype, x, t


def _same_shape(t: Array, x: Array) -> None:
    """The margin losses take a target of the input's shape (PyTorch would broadcast it)."""
    if shape_of(t) != shape_of(x):
        msg = (
            f"`target` must have the shape of `input` {shape_of(x)}; got {shape_of(t)} "
            "(PyTorch would broadcast them)"
        )
        raise ValueError(msg)


def _scores(xp: Any, x: Array, fn_name: str) -> int:
    """torch's margin kernels: scores ``(C,)`` or ``(N, C)``; returns the class axis."""
    check_floating(xp, "input", x)
    if not 1 <= x.ndim <= 2:
        msg = f"`input` of {fn_name} must be a vector (C,) or a matrix (N, C); got {shape_of(x)}"
        raise ValueError(msg)
    return x.ndim - 1


def _is_float(xp: Any, x: Array) -> bool:
    return bool(xp.isdtype(x.dtype, "real floating"))


# --------------------------------------------------------------------------- softmax family


@framework_semantics
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
    is class ids of the input's shape without dim 1 (integers), or class
    probabilities of the input's shape (floating).  With ids, ``weight[c]``
    scales each example's loss and ``mean`` divides by the summed weight of the
    counted targets (NaN when that is 0, e.g. all ignored); with probabilities,
    the smoothed target ``(1-ε) t + ε/C`` is scaled by ``weight`` per class and
    ``mean`` divides by the number of examples (NaN for none).  Half-precision
    input gives a half-precision loss, accumulated in float32 and rounded once.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> x = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
    >>> F.cross_entropy(x, np.array([2, 1]), reduction="none").round(4)
    array([0.0222, 3.0997])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, x, t, w = namespace(input, target, weight, names=("target", "weight"))
    check_floating(xp, "input", x)
    axis = _class_axis(x)
    eps = check_fraction("label_smoothing", label_smoothing)
    ignore_index = _ignore_index(ignore_index)
    if shape_of(t) == shape_of(x):
        return _cross_entropy_probabilities(xp, x, t, w, ignore_index, eps, red, axis)
    t = _class_ids(xp, t, x, axis, ignore_index, soft_too=True)[0]  # the core makes bad ids NaN
    w = _class_weight(xp, weight, w, x, axis)
    loss = losses.sparse_softmax_cross_entropy(
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


def _cross_entropy_probabilities(
    xp: Any,
    x: Array,
    t: Array,
    w: Array | None,
    ignore_index: int,
    eps: float,
    red: str,
    axis: int,
) -> Array:
    """``cross_entropy`` with class probabilities: ``-sum_c w_c t_c log softmax(x)_c``."""
    if not _is_float(xp, t):
        msg = (
            f"`target` of the input's shape {shape_of(x)} holds class probabilities, which "
            f"must be floating-point; got dtype {t.dtype} (class ids have the input's shape "
            f"without its class dim {axis})"
        )
        raise TypeError(msg)
    if ignore_index >= 0:
        # torch: any negative ignore_index passes (it can match no probability).
        msg = "ignore_index is not supported for floating point target"
        raise ValueError(msg)
    num_classes = x.shape[axis]
    if w is not None and shape_of(w) != (num_classes,):
        msg = f"`weight` must have one weight per class, shape ({num_classes},); got {shape_of(w)}"
        raise ValueError(msg)
    # torch: input, target and weight promote to one dtype, the loss's.
    dtype, x, t = _promoted(xp, x, t, *(() if w is None else (w,)))[:3]
    if eps:
        t = t * (1 - eps) + eps / num_classes
    if w is not None:
        # torch: with probabilities the weight scales each class's term, and
        # `mean` still divides by the number of examples (not by the weights).
        t = t * xp.reshape(xp.astype(w, t.dtype), (num_classes,) + (1,) * (x.ndim - 1 - axis))
    # torch: the mean of no examples is NaN (the core's is 0).
    loss = losses.softmax_cross_entropy(x, t, axis=axis, reduction="none")
    return half_back(xp, _reduce_by_count(xp, loss, red), dtype)


@framework_semantics
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
    ignore_index = _ignore_index(ignore_index)
    t = _class_ids(xp, t, x, axis, ignore_index, soft_too=False)[0]  # the core makes bad ids NaN
    w = _class_weight(xp, weight, w, x, axis)
    loss = negative_log_likelihood(
        x,
        t,
        axis=axis,
        class_weight=w,
        ignore_index=ignore_index,
        reduction="sum" if red == "mean" else red,
    )
    if red == "mean":
        # torch: sum / total weight of the counted targets, NaN (0/0) when that is 0.
        loss = _mean_or_nan(
            xp, loss, xp.sum(_label_weight(xp, t, w, t != ignore_index, loss.dtype))
        )
    return half_back(xp, loss, x.dtype)


# --------------------------------------------------------------------------- binary


def _bce_value(xp: Any, p: Array, t: Array) -> Array:
    """torch: ``-(t max(log p, -100) + (1-t) max(log(1-p), -100))``, so p = 0 or 1 costs 100."""
    with quiet_numpy(xp):
        log_p = xp.clip(xp.log(p), min=-100.0)
        log_1mp = xp.clip(xp.log(1 - p), min=-100.0)
    return -(t * log_p + (1 - t) * log_1mp)


def _bce_partials(xp: Any, p: Array, t: Array) -> tuple[Array, Array]:
    """torch's derivatives.yaml: d/dp and d/dt of :func:`_bce_value`, not those of its clamps.

    d/dp = (p - t) / max(p (1-p), 1e-12)   (binary_cross_entropy_backward)
    d/dt = -logit(p) = log((1-p) / p)      (binary_cross_entropy_target_backward:
                                            unclamped, +inf at p = 0 and -inf at 1)
    """
    with quiet_numpy(xp):
        dp = (p - t) / xp.clip(p * (1 - p), min=_BCE_GRAD_FLOOR)
        dt = -xp.log(p / (1 - p))
    return dp, dt


@framework_semantics
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
    autograd the derivatives are PyTorch's: ``(p - t) / max(p (1-p), 1e-12)``
    in ``p``, finite at ``p = 0`` and ``p = 1``, and ``log((1-p) / p)`` in
    ``t``, not clamped; both differentiable again.

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
    check_floating(xp, "input", p)
    # Values that could not be read and lie outside [0, 1] enter as NaN.
    p = poisoned(xp, p, check_unit_interval(xp, "input", p))
    t = poisoned(xp, xp.astype(t, p.dtype), check_unit_interval(xp, "target", t))
    loss = with_partials(xp, _bce_value, _bce_partials, p, t)
    if w is not None:
        loss = loss * xp.astype(w, loss.dtype)  # torch: the weight does not promote
    return _reduce_by_count(xp, loss, red)


@framework_semantics
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
    term, of any shape that broadcasts to the input's (``(C, 1, 1)`` for
    ``(N, C, H, W)``).  Targets outside [0, 1] and negative weights are taken,
    as PyTorch takes them.

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
    core: Any, input: Any, target: Any, red: str, weight: Any, *, mean_by_weight: bool = True
) -> Array:
    """``core``'s elementwise loss of ``input`` and ``target`` as PyTorch reduces it.

    With ``weight`` (of the input's size) each element's loss is multiplied by
    its weight; ``mean`` divides the sum by the summed weights
    (``mean_by_weight``: mse_loss, l1_loss) or by the number of elements
    (huber_loss).
    """
    xp, x, t, w = namespace(input, target, weight, names=("target", "weight"))
    input_shape = shape_of(x)
    if shape_of(t) != input_shape:
        # torch: different sizes broadcast, with this warning.
        msg = (
            f"Using a target size ({shape_of(t)}) that is different to the input size "
            f"({shape_of(x)}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size."
        )
        warnings.warn(msg, UserWarning, stacklevel=4)
    x, t = xp.broadcast_arrays(x, t)
    if w is not None and shape_of(w) != input_shape:
        msg = "Weights and input must have the same size."
        raise ValueError(msg)
    # torch: input, target and weight promote to one dtype, the loss's.
    dtype, x, t = _promoted(xp, x, t, *(() if w is None else (w,)))[:3]
    if red == "mean" and (w is None or mean_by_weight):
        # torch: with weight, mean = sum(w * e) / sum(w) (the core's weighted mean).
        loss = core(x, t, reduction="mean", sample_weight=w)
        if math.prod(shape_of(x)) == 0:
            loss = loss + _nan_if(xp, True, loss)  # torch: the mean of nothing is NaN
    else:
        # torch: mean = sum(w * e) / numel, NaN for an empty input.
        loss = _reduce_by_count(xp, core(x, t, reduction="none", sample_weight=w), red)
    return half_back(xp, loss, dtype)


@framework_semantics
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
    red = _reduction(size_average, reduce, reduction)
    return _regression(losses.mean_squared_error, input, target, red, weight)


@framework_semantics
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
    red = _reduction(size_average, reduce, reduction)
    return _regression(losses.mean_absolute_error, input, target, red, weight)


@framework_semantics
def huber_loss(
    input: Any, target: Any, reduction: str = "mean", delta: float = 1.0, weight: Any = None
) -> Array:
    """``torch.nn.functional.huber_loss``: ``0.5 e**2`` for ``|e| <= delta``, then linear.

    The linear part is ``delta (|e| - delta/2)``, ``e = input - target``.
    With ``weight`` the ``mean`` is ``sum(weight * loss) / numel``, PyTorch's
    (its ``mse_loss`` and ``l1_loss`` divide by the summed weights instead).
    ``delta`` must be positive and finite.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> F.huber_loss(np.array([0.5, 3.0]), np.zeros(2), reduction="none", delta=2.0)
    array([0.125, 4.   ])
    """
    red = _reduction(None, None, reduction)
    return _regression(
        functools.partial(huber_core, delta=delta), input, target, red, weight, mean_by_weight=False
    )


@framework_semantics
def smooth_l1_loss(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Array:
    """``torch.nn.functional.smooth_l1_loss``: ``0.5 e**2 / beta`` for ``|e| < beta``, then linear.

    The linear part is ``|e| - beta/2``: that is ``huber_loss(delta=beta) /
    beta``; ``beta = 0`` is ``l1_loss``, as in PyTorch.  ``beta`` must be
    non-negative and finite.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> F.smooth_l1_loss(np.array([0.5, 3.0]), np.zeros(2), reduction="none", beta=2.0)
    array([0.0625, 2.    ])
    """
    red = _reduction(size_average, reduce, reduction)
    if not isinstance(beta, numbers.Real) or isinstance(beta, (bool, np.bool_)):
        msg = f"`beta` must be a real number; got {beta!r}"
        raise TypeError(msg)
    if not 0 <= beta < math.inf:
        msg = f"`beta` must be a non-negative finite number; got {beta!r}"
        raise ValueError(msg)
    if beta == 0:
        return _regression(losses.mean_absolute_error, input, target, red, None)

    def scaled_huber(x: Array, t: Array, **kwargs: Any) -> Array:
        return huber_core(x, t, delta=beta, **kwargs) / beta

    return _regression(scaled_huber, input, target, red, None)


# --------------------------------------------------------------------------- likelihoods


@framework_semantics
def poisson_nll_loss(
    input: Any,
    target: Any,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.poisson_nll_loss``: ``exp(input) - target * input`` (``log_input``).

    Without ``log_input``, ``input - target * log(input + eps)``; ``full`` adds
    the Stirling term ``t log t - t + log(2 pi t) / 2`` for ``t > 1``.  Note
    PyTorch's default ``log_input=True`` (the core's is False).  A term
    ``t log(.)`` with ``t = 0`` is 0 also where the log is ``-inf``, where
    PyTorch forms ``0 * inf = NaN``.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> F.poisson_nll_loss(np.log([2.0, 1.0]), np.array([2.0, 0.0]), reduction="none").round(6)
    array([0.613706, 1.      ])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, dtype, x, t = _paired(input, target)
    loss = poisson_nll(x, t, log_input=log_input, full=full, eps=eps, reduction="none")
    return half_back(xp, _reduce_by_count(xp, loss, red), dtype)


def _floor_value(xp: Any, v: Array, floor: Array) -> Array:
    return xp.where(v < floor, floor, v)


def _floor_partials(xp: Any, v: Array, floor: Array) -> tuple[Array, Array]:
    return xp.ones_like(v), xp.zeros_like(floor)  # the clamp is not seen by autograd


@framework_semantics
def gaussian_nll_loss(
    input: Any,
    target: Any,
    var: Any,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.gaussian_nll_loss``: ``(log(var) + (input - target)**2 / var) / 2``.

    ``var`` has the input's shape, that shape with one axis of size 1, the
    shape without its last axis, or is a Python number (PyTorch 2.13's rules);
    it must be non-negative and is raised to ``eps`` where below it, as
    PyTorch does outside autograd: the derivative in ``var`` there is the
    formula's at ``eps``, not 0.  ``full`` adds ``log(2 pi) / 2``.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> mean, target, var = np.array([1.0, 3.0]), np.array([0.0, 1.0]), np.array([1.0, 4.0])
    >>> F.gaussian_nll_loss(mean, target, var, reduction="none").round(6)
    array([0.5     , 1.193147])
    """
    if reduction not in ("none", "mean", "sum"):
        msg = f"{reduction} is not valid"  # torch's words for this loss
        raise ValueError(msg)
    xp, x, t = namespace(input, target, names=("target",))
    dtype, x, t = _promoted(xp, x, t)
    if not isinstance(var, numbers.Real):
        v = namespace(x, var, names=("var",))[2]
        if _is_float(xp, v):
            # torch: negative variances are refused first (traced ones enter as NaN), then
            # var.clamp_(min=eps) under no_grad: the derivative passes as if unclamped.
            v = poisoned(xp, v, check_var(xp, "var", v))
            var = with_partials(xp, _floor_value, _floor_partials, v, xp.full_like(v, eps))
    loss = gaussian_nll(x, t, var, full=full, eps=eps, reduction="none")
    return half_back(xp, _reduce_by_count(xp, loss, reduction), dtype)


_KL_MEAN_WARNING = (
    "reduction: 'mean' divides the total loss by both the batch size and the support size."
    "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
    "'mean' will be changed to behave the same as 'batchmean' in the next major release."
)


@framework_semantics
def kl_div(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Array:
    """``torch.nn.functional.kl_div``: ``target * (log(target) - input)`` elementwise, reduced.

    ``input`` holds log-probabilities; ``target`` probabilities (or
    log-probabilities with ``log_target``: ``exp(target) * (target -
    input)``).  ``"none"`` keeps every element, ``"sum"`` adds them,
    ``"batchmean"`` divides the sum by the size of dim 0 (the KL divergence
    per example), ``"mean"`` by the number of elements, with PyTorch's
    warning.  A target of 0 contributes 0 (``xlogy``); its derivative there is
    ``-input``, where PyTorch's is NaN.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> t, q = np.array([[0.5, 0.5, 0.0]]), np.array([[0.25, 0.5, 0.25]])
    >>> round(float(F.kl_div(np.log(q), t, reduction="batchmean")), 6)  # log(2) / 2
    0.346574
    """
    if size_average is not None or reduce is not None:
        red = legacy_reduction(size_average, reduce, stacklevel=3)
    elif reduction == "batchmean":
        red = reduction
    else:
        if reduction == "mean":
            warnings.warn(_KL_MEAN_WARNING, UserWarning, stacklevel=3)
        red = _reduction(None, None, reduction)
    xp, dtype, x, t = _paired(input, target)
    # Each element as a distribution over one class: the core's terms, unsummed.
    terms = kl_divergence_core(x[..., None], t[..., None], log_target=log_target, reduction="none")
    if red != "batchmean":
        return half_back(xp, _reduce_by_count(xp, terms, red), dtype)
    total = xp.sum(terms)
    return half_back(xp, total / x.shape[0] if x.ndim else total, dtype)


# --------------------------------------------------------------------------- margins


@framework_semantics
def soft_margin_loss(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.soft_margin_loss``: ``log(1 + exp(-target * input))``, reduced.

    Elementwise, ``mean`` over every element.  Finite for any finite input
    (PyTorch's overflows to inf for ``-target * input`` beyond about 709 in
    float64, 88 in float32); its derivative in ``target``, which PyTorch
    refuses to take, is the exact one.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> F.soft_margin_loss(np.array([0.0, 2.0]), np.array([1.0, -1.0]), reduction="none").round(4)
    array([0.6931, 2.1269])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, dtype, x, t = _paired(input, target)
    loss = soft_margin_core(x, t, reduction="none")
    return half_back(xp, _reduce_by_count(xp, loss, red), dtype)


@framework_semantics
def hinge_embedding_loss(
    input: Any,
    target: Any,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.hinge_embedding_loss``: ``x`` (target 1) or ``max(0, margin - x)``.

    The hinge is for target -1; as PyTorch, any other target value counts
    both terms.  At ``x = margin`` the slope is PyTorch's -1 (its
    ``clamp_min``).

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> x = np.array([0.3, 0.3, 2.0])
    >>> F.hinge_embedding_loss(x, np.array([1, -1, -1]), reduction="none")
    array([0.3, 0.7, 0. ])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, dtype, x, t = _paired(input, target)
    with kink_slope(1.0):  # torch's clamp_min(margin - x, 0) passes the whole gradient there
        loss = hinge_embedding_core(x, t, margin=margin, reduction="none")
    return half_back(xp, _reduce_by_count(xp, loss, red), dtype)


@framework_semantics
def multi_margin_loss(
    input: Any,
    target: Any,
    p: int = 1,
    margin: float = 1.0,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.multi_margin_loss``: the Weston-Watkins multi-class margin loss.

    ``sum_{i != y} max(0, margin - x[y] + x[i])**p / C`` per example.
    ``input`` is ``(C,)`` or ``(N, C)``, ``target`` class ids; ``weight[y]``
    scales each example, and ``mean`` divides by the number of examples (not
    by the weights; NaN for none, where PyTorch returns uninitialised memory).
    At a margin of exactly 0 the slope is PyTorch's 0.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> F.multi_margin_loss(np.array([[2.0, 1.5, -1.0]]), np.array([0]), reduction="none").round(4)
    array([0.1667])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, x, y, w = namespace(input, target, weight, names=("target", "weight"))
    axis = _scores(xp, x, "multi_margin_loss")
    if w is not None and w.ndim != 1:
        msg = f"`weight` must be one-dimensional, one weight per class; got shape {shape_of(w)}"
        raise ValueError(msg)
    y = _class_ids(xp, y, x, axis, None, soft_too=False)[0]  # the core makes bad ids NaN
    w = _class_weight(xp, weight, w, x, axis)
    with kink_slope(0.0):  # torch's kernel counts margins > 0 only
        loss = multi_margin_core(
            x, y, p=p, margin=margin, class_weight=w, axis=axis, reduction="none"
        )
    return half_back(xp, _reduce_by_count(xp, loss, red), x.dtype)


@framework_semantics
def multilabel_margin_loss(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.multilabel_margin_loss``: each target class above each other one by 1.

    ``input`` is ``(C,)`` or ``(N, C)``; ``target`` has its shape and lists
    each example's target classes first, ended by the first -1.  ``mean``
    divides by the number of examples; an empty batch gives 0, as PyTorch.
    At a pair's margin of exactly 0 the slope is PyTorch's 0 (the core's is 1/2).

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> s, y = np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([[3, 0, -1, 1]])
    >>> F.multilabel_margin_loss(s, y, reduction="none")
    array([0.85])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, x, y = namespace(input, target, names=("target",))
    _scores(xp, x, "multilabel_margin_loss")
    _same_shape(y, x)
    if not xp.isdtype(y.dtype, "integral"):
        msg = (
            f"`target` holds class ids (then -1 and padding), which must be integers; got {y.dtype}"
        )
        raise TypeError(msg)
    with kink_slope(0.0):  # torch: a pair counts only while its margin is > 0
        loss = multilabel_margin_core(x, y, reduction="none")
    if red == "mean" and math.prod(shape_of(loss)) == 0:
        red = "sum"  # torch: the mean of no examples is 0 here
    return half_back(xp, _reduce_by_count(xp, loss, red), x.dtype)


@framework_semantics
def multilabel_soft_margin_loss(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.multilabel_soft_margin_loss``: one-vs-all logistic loss over classes.

    ``-(t log sigmoid(x) + (1-t) log sigmoid(-x)) * weight`` summed over the
    last dim and divided by its size ``C``; then reduced over the examples.
    ``weight`` is one weight per class or any shape that broadcasts to the
    input's.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> x, t = np.array([[0.0, 1e4, -1e4]]), np.array([[1.0, 1.0, 0.0]])
    >>> F.multilabel_soft_margin_loss(x, t, reduction="none").round(6)  # log(2) / 3
    array([0.231049])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, x, t, w = namespace(input, target, weight, names=("target", "weight"))
    _same_shape(t, x)
    if x.ndim == 0:
        msg = "`input` must have a class dimension (its last); got a 0-d array"
        raise ValueError(msg)
    dtype, x, t = _promoted(xp, x, t, *(() if w is None else (w,)))[:3]
    if w is None or shape_of(w) == shape_of(x)[-1:]:
        loss = multilabel_soft_margin_core(x, t, class_weight=w, reduction="none")
    else:
        # torch: a weight of another shape broadcasts to the input's, term by term.
        terms = sigmoid_cross_entropy_pos_weight(xp, x, t, None)
        loss = xp.sum(terms * xp.astype(w, terms.dtype), axis=-1) / x.shape[-1]
    return half_back(xp, _reduce_by_count(xp, loss, red), dtype)


# --------------------------------------------------------------------------- activations


def _dim(dim: Any, ndim: int) -> int:
    """torch: ``dim`` an int in ``[-ndim, ndim)``; a 0-d tensor takes 0 and -1."""
    if not isinstance(dim, numbers.Integral) or isinstance(dim, (bool, np.bool_)):
        msg = f"`dim` must be an int; got {dim!r}"
        raise TypeError(msg)
    n = max(ndim, 1)
    if not -n <= int(dim) < n:
        msg = f"`dim` must be in [{-n}, {n - 1}] for a {ndim}-d input; got {dim}"
        raise ValueError(msg)
    return int(dim) % n


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's ``_get_softmax_dim``: the deprecated implicit dim, with its warning."""
    msg = (
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument."
    )
    warnings.warn(msg, UserWarning, stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def _as_dtype(xp: Any, dtype: Any) -> Any:
    """``dtype`` (a torch, NumPy or JAX floating dtype, or its name) in ``xp``'s terms."""
    if isinstance(dtype, str):
        name = dtype
    else:
        try:
            name = np.dtype(dtype).name  # NumPy's and JAX's (bfloat16 too)
        except TypeError:
            name = str(dtype).removeprefix("torch.")
    found = getattr(xp, name, None) if name in _FLOATING else None
    if found is None:
        msg = f"`dtype` must be a real floating-point dtype of the input's library; got {dtype!r}"
        raise TypeError(msg)
    return found


def _floating_input(xp: Any, x: Array, dtype: Any) -> Array:
    """torch: with ``dtype`` the input is cast to it before the operation; floating only."""
    if dtype is not None:
        x = xp.astype(x, _as_dtype(xp, dtype))
    check_floating(xp, "input", x)
    return x


def _on_dim(op: Any, x: Array, dim: int, xp: Any) -> Array:
    """``op(x, axis=dim)`` of the core; a 0-d input is taken as one element along dim 0."""
    if x.ndim:
        return op(x, axis=dim)
    return xp.reshape(op(xp.reshape(x, (1,)), axis=0), ())


def softmax(input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Array:
    """``torch.nn.functional.softmax``: ``exp(x) / sum(exp(x), dim)``, over the core's softmax.

    ``dtype`` casts the input before the operation (the result has that
    dtype); ``dim=None`` picks PyTorch's deprecated implicit dim, with its
    warning.  A 0-d input is one element: its softmax is 1.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> F.softmax(np.array([[0.0, 0.0], [0.0, 1e4]]), dim=1)
    array([[0.5, 0.5],
           [0. , 1. ]])
    """
    xp, x = namespace(input)
    if dim is None:
        dim = _softmax_dim("softmax", x.ndim, _stacklevel)
    x = _floating_input(xp, x, dtype)
    return _on_dim(activations.softmax, x, _dim(dim, x.ndim), xp)


def log_softmax(
    input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Array:
    """``torch.nn.functional.log_softmax``: ``x - logsumexp(x, dim)``, over the core's log_softmax.

    ``dtype`` and ``dim=None`` as in :func:`softmax`; a 0-d input gives 0.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> F.log_softmax(np.array([0.0, 0.0]), dim=0).round(6)
    array([-0.693147, -0.693147])
    """
    xp, x = namespace(input)
    if dim is None:
        dim = _softmax_dim("log_softmax", x.ndim, _stacklevel)
    x = _floating_input(xp, x, dtype)
    return _on_dim(activations.log_softmax, x, _dim(dim, x.ndim), xp)


def logsumexp(input: Any, dim: Any, keepdim: bool = False) -> Array:
    """``torch.logsumexp``: ``log(sum(exp(x)))`` over ``dim``, an int or a tuple of ints.

    Several dims are moved together to the end and flattened into one, over
    which the core's logsumexp runs; ``keepdim`` keeps each reduced dim with
    size 1.  Integer and bool input compute in PyTorch's default float dtype
    (float32); an empty dim gives ``-inf``; a 0-d input is its own logsumexp.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> x = np.array([[1000.0, 1000.0], [1000.0, 1000.0]])
    >>> round(float(F.logsumexp(x, dim=(0, 1))), 6)  # 1000 + log 4, no overflow
    1001.386294
    """
    xp, x = namespace(input)
    if not _is_float(xp, x):
        if not xp.isdtype(x.dtype, ("integral", "bool")):
            check_floating(xp, "input", x)
        # torch: integers and bools compute in the default dtype.
        default = sys.modules["torch"].get_default_dtype() if _is_torch(x) else "float32"
        x = xp.astype(x, _as_dtype(xp, default))
    dims = _dims(dim, x.ndim)
    if x.ndim == 0:
        return x  # the logsumexp of one element is that element
    if len(dims) == 1:
        return activations.logsumexp(x, axis=dims[0], keepdims=keepdim)
    rest = [i for i in range(x.ndim) if i not in dims]
    moved = xp.permute_dims(x, (*rest, *dims))
    kept = tuple(x.shape[i] for i in rest)
    flat = xp.reshape(moved, (*kept, math.prod([x.shape[i] for i in dims])))
    result = activations.logsumexp(flat, axis=-1)
    if keepdim:
        result = xp.reshape(result, tuple(1 if i in dims else x.shape[i] for i in range(x.ndim)))
    return result


def _dims(dim: Any, ndim: int) -> tuple[int, ...]:
    """torch: ``dim`` as a tuple of distinct dims in ``[0, ndim)``; a 0-d input takes () too."""
    many = isinstance(dim, (tuple, list))
    dims = tuple(_dim(d, ndim) for d in dim) if many else (_dim(dim, ndim),)
    for d in set(dims):
        if dims.count(d) > 1:
            msg = f"`dim` must name each dim once; dim {d} appears {dims.count(d)} times in {dim}"
            raise ValueError(msg)
    if not dims and ndim:
        msg = f"`dim` must name at least one dim of the {ndim}-d input; got {dim!r}"
        raise ValueError(msg)
    return dims


def _is_torch(x: Array) -> bool:
    return bool(array_api_compat.is_torch_array(x))


# The functions of issues 9-11, one file each (imported last: they use the helpers above).
from ._ctc import (  # noqa: E402
    ctc_loss,
)
from ._linear import (  # noqa: E402
    linear_cross_entropy,
)
from ._similarity import (  # noqa: E402
    cosine_embedding_loss,
    margin_ranking_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)

__all__ += [
    "cosine_embedding_loss",
    "ctc_loss",
    "linear_cross_entropy",
    "margin_ranking_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]
