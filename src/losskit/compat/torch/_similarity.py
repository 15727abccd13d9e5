"""``torch.nn.functional``'s pairwise losses over the core.

``cosine_embedding_loss``, ``margin_ranking_loss``, ``triplet_margin_loss`` and
``triplet_margin_with_distance_loss`` with PyTorch 2.13's signatures and
numbers: the cosine's norms are PyTorch's ``sqrt(|x|^2 + 1e-12)``, a target
other than 1 and -1 gives 0 in ``cosine_embedding_loss`` and counts as its
value in ``margin_ranking_loss``, the triplet distances are
``pairwise_distance``'s ``|x - y + eps|_p``, each hinge passes its whole
gradient at the kink (PyTorch's ``clamp_min``), a swap's tie shares it
(``torch.min``), ``mean`` divides by the number of values (NaN for none).

Deliberate differences: the arrays must have the same shape (PyTorch would
broadcast them); the distances and cosines stay finite where PyTorch's
squares overflow (float32 elements beyond about 1e19); half-precision
input is accumulated in float32 and rounded once; ``p`` must be >= 1 (a
norm; ``inf`` is taken, the largest ``|x_i - y_i + eps|``, as PyTorch) and
``eps`` >= 0.
"""

from __future__ import annotations

from typing import Any

from ..._backend import Array, is_dtype, namespace, shape_of
from ..._config import kink_slope
from ...losses.similarity import cosine_embedding as cosine_embedding_core
from ...losses.similarity import margin_ranking as margin_ranking_core
from ...losses.similarity import torch_norms
from ...losses.similarity import triplet_margin as triplet_margin_core
from .._common import framework_semantics, half_back
from . import _promoted, _reduce_by_count, _reduction

__all__: list[str] = [
    "cosine_embedding_loss",
    "margin_ranking_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]


def _same_shapes(names: tuple[str, ...], arrays: tuple[Array, ...]) -> None:
    """The arrays have the first one's shape (PyTorch would broadcast them)."""
    first = shape_of(arrays[0])
    for name, a in zip(names[1:], arrays[1:], strict=True):
        if shape_of(a) != first:
            msg = (
                f"`{name}` must have the shape of `{names[0]}` {first}; got {shape_of(a)} "
                "(PyTorch would broadcast them)"
            )
            raise ValueError(msg)


def _margin_above_zero(margin: Any) -> None:
    """torch's triplet losses: ``margin`` > 0 (its ValueError, its words)."""
    if margin <= 0:
        msg = f"margin must be greater than 0, got {margin}"
        raise ValueError(msg)


def _triplet_arrays(anchor: Any, positive: Any, negative: Any) -> tuple[Any, ...]:
    """``(xp, dtype, a, p, n)``: three arrays of one shape (at least 1-d), promoted."""
    xp, a, p, n = namespace(anchor, positive, negative, names=("positive", "negative"))
    if not a.ndim == p.ndim == n.ndim:
        msg = (
            "The anchor, positive, and negative tensors are expected to have the same number "
            f"of dimensions, but got: anchor {a.ndim}D, positive {p.ndim}D, and negative "
            f"{n.ndim}D inputs"
        )
        raise ValueError(msg)
    _same_shapes(("anchor", "positive", "negative"), (a, p, n))
    return (xp, *_promoted(xp, a, p, n))


@framework_semantics
def cosine_embedding_loss(
    input1: Any,
    input2: Any,
    target: Any,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.cosine_embedding_loss``: ``1 - cos`` or ``max(0, cos - margin)``.

    ``input1`` and ``input2`` are ``(N, D)`` with a target ``(N,)``, or
    ``(D,)`` with a 0-d target.  The cosine is PyTorch's
    ``<x1, x2> / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))``; a target other
    than 1 and -1 gives 0, as PyTorch.  At ``cos = margin`` the slope is
    PyTorch's 1.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> x1, x2 = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 1.0], [1.0, 0.0]])
    >>> F.cosine_embedding_loss(x1, x2, np.array([1, -1]), margin=0.5, reduction="none").round(4)
    array([0.2929, 0.2071])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, x1, x2, t = namespace(input1, input2, target, names=("input2", "target"))
    if t.ndim not in (0, 1):
        msg = f"`target` must be 0-d or 1-d (multi-target not supported); got shape {shape_of(t)}"
        raise ValueError(msg)
    if x1.ndim != t.ndim + 1:
        msg = (
            f"a {t.ndim}-d `target` takes {t.ndim + 1}-d inputs; got `input1` of shape "
            f"{shape_of(x1)} and `input2` of shape {shape_of(x2)}"
        )
        raise ValueError(msg)
    _same_shapes(("input1", "input2"), (x1, x2))
    if shape_of(t) != shape_of(x1)[:-1]:
        msg = (
            f"`target` must have the shape of `input1` {shape_of(x1)} without its last dim, "
            f"that is {shape_of(x1)[:-1]}; got {shape_of(t)}"
        )
        raise ValueError(msg)
    dtype, x1, x2 = _promoted(xp, x1, x2)
    with torch_norms(), kink_slope(1.0):  # torch: clamp_min passes the whole gradient
        loss = cosine_embedding_core(x1, x2, t, margin=margin, reduction="none")
    return half_back(xp, _reduce_by_count(xp, loss, red), dtype)


@framework_semantics
def margin_ranking_loss(
    input1: Any,
    input2: Any,
    target: Any,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.margin_ranking_loss``: ``max(0, -target (input1 - input2) + margin)``.

    Elementwise over arrays of one shape, ``mean`` over every element.  Any
    target value is taken, as PyTorch; at the kink the slope is PyTorch's 1.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> x1, x2 = np.array([2.0, 0.5, 1.0]), np.array([1.0, 1.0, 3.0])
    >>> F.margin_ranking_loss(x1, x2, np.array([1.0, 1.0, -1.0]), margin=0.5, reduction="none")
    array([0., 1., 0.])
    """
    red = _reduction(size_average, reduce, reduction)
    xp, x1, x2, t = namespace(input1, input2, target, names=("input2", "target"))
    if not x1.ndim == x2.ndim == t.ndim:
        msg = (
            "margin_ranking_loss: all input tensors must have the same number of dimensions; "
            f"got input1 {shape_of(x1)}, input2 {shape_of(x2)}, target {shape_of(t)}"
        )
        raise ValueError(msg)
    _same_shapes(("input1", "input2", "target"), (x1, x2, t))
    if is_dtype(xp, t.dtype, "bool"):
        # torch: "Negation, the `-` operator, on a bool tensor is not supported"
        msg = "`target` must be numbers, not bool (PyTorch cannot negate a bool tensor)"
        raise TypeError(msg)
    dtype, x1, x2, t = _promoted(xp, x1, x2, t)
    with kink_slope(1.0):  # torch: clamp_min passes the whole gradient
        loss = margin_ranking_core(x1, x2, t, margin=margin, reduction="none")
    return half_back(xp, _reduce_by_count(xp, loss, red), dtype)


@framework_semantics
def triplet_margin_loss(
    anchor: Any,
    positive: Any,
    negative: Any,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.triplet_margin_loss``: ``max(0, margin + d(a, p) - d(a, n))``.

    ``d(x, y) = |x - y + eps|_p`` over the last dim (``pairwise_distance``;
    ``p=inf``: the largest ``|x_i - y_i + eps|``); with ``swap`` the
    negative distance is ``min(d(a, n), d(p, n))``.  ``margin`` must be > 0,
    as PyTorch requires.  At the kink the slope is PyTorch's 1.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> a, pos, neg = np.array([[0.0, 0.0]]), np.array([[0.0, 0.5]]), np.array([[0.0, 1.0]])
    >>> F.triplet_margin_loss(a, pos, neg, eps=0.0, reduction="none")
    array([0.5])
    """
    red = _reduction(size_average, reduce, reduction)
    _margin_above_zero(margin)
    xp, dtype, a, pos, neg = _triplet_arrays(anchor, positive, negative)
    with kink_slope(1.0):  # torch: clamp_min passes the whole gradient
        loss = triplet_margin_core(
            a, pos, neg, margin=margin, p=p, eps=eps, swap=swap, reduction="none"
        )
    return half_back(xp, _reduce_by_count(xp, loss, red), dtype)


@framework_semantics
def triplet_margin_with_distance_loss(
    anchor: Any,
    positive: Any,
    negative: Any,
    *,
    distance_function: Any = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Array:
    """``torch.nn.functional.triplet_margin_with_distance_loss``: the triplet loss of any distance.

    ``distance_function(x, y)`` returns one distance per example (None:
    ``pairwise_distance``, the 2-norm of ``x - y + 1e-6`` over the last dim);
    the loss is ``max(0, margin + d(a, p) - d(a, n))``, with ``swap``
    ``d(a, n)`` replaced by ``min(d(a, n), d(p, n))``.  ``margin`` must be > 0.

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> a, pos, neg = np.array([[0.0, 0.0]]), np.array([[0.0, 0.5]]), np.array([[0.0, 1.0]])
    >>> l1 = lambda x, y: np.abs(x - y).sum(-1)
    >>> F.triplet_margin_with_distance_loss(a, pos, neg, distance_function=l1, reduction="none")
    array([0.5])
    """
    if reduction not in ("mean", "sum", "none"):
        msg = f"{reduction} is not a valid value for reduction"
        raise ValueError(msg)
    _margin_above_zero(margin)
    if distance_function is None:
        return triplet_margin_loss(
            anchor, positive, negative, margin=margin, swap=swap, reduction=reduction
        )
    xp, _, a, pos, neg = _triplet_arrays(anchor, positive, negative)
    names = ["distance_function(anchor, positive)", "distance_function(anchor, negative)"]
    outputs = [distance_function(a, pos), distance_function(a, neg)]
    if swap:
        names.append("distance_function(positive, negative)")
        outputs.append(distance_function(pos, neg))
    # the shapes before the swap's minimum, which would broadcast (N, 1) and (N,) to (N, N)
    _, *outputs = namespace(*outputs, names=tuple(names[1:]))
    _same_shapes(tuple(names), tuple(outputs))
    d_pos, d_neg = outputs[0], outputs[1]
    if swap:
        d_neg = xp.minimum(d_neg, outputs[2])  # torch.minimum: a tie shares
    ones = xp.ones_like(d_pos)
    with kink_slope(1.0):  # torch: clamp_min(margin + d_pos - d_neg, 0)
        loss = margin_ranking_core(d_neg, d_pos, ones, margin=margin, reduction="none")
    return half_back(xp, _reduce_by_count(xp, loss, reduction), d_pos.dtype)
