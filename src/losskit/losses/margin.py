"""Margin losses: the hinge family, multi-class margins, soft margins and the perceptron.

Each loss is one definition through a shell of :mod:`losskit._define`.  Every
hinge here is a maximum, ``max(m, 0)`` or a maximum over classes, and every
maximum follows one rule where its arguments tie, the one ``jnp.max``,
``jnp.maximum``, ``torch.amax``, ``torch.maximum`` and ``tf.reduce_max``
share: the gradient is split equally among the tied arguments.  At a kink
``m = 0`` the slope is therefore 1/2, as optax's losses have it (Keras's
``tf.maximum`` gives 1 there, PyTorch's margin kernels 0; the frameworks
disagree), and a binary loss has the subgradient of its two-class form.
The values are written with ``xp.maximum`` and ``xp.max``, so torch autograd
and ``jax.grad`` of the value give the same numbers as the analytic
derivatives beside them.
"""

from __future__ import annotations

import math
from typing import Any

from .. import _config
from .._arrays import gather_last, is_label
from .._backend import Array, cast, device_of, namespace
from .._define import elementwise_loss, rowwise_loss, sparse_loss
from .._validation import (
    _is_int,
    check_class_weight,
    check_labels_dtype,
    check_real,
    check_target_interval,
    check_values,
    check_weight_values,
)
from ..activations import sigmoid_of

# --------------------------------------------------------------------------- helpers


def _positive(xp: Any, m: Array) -> Array:
    """``max(m, 0)``, NaN kept (autograd: slope 1/2 at ``m = 0``, as :func:`_slope`).

    An adapter may ask for its framework's slope there (``_config.kink_slope``):
    the added term is 0 in value (``m`` is 0 where it is taken) and moves the
    slope at the kink from 1/2 to the one asked for.
    """
    value = xp.maximum(m, xp.zeros_like(m))
    slope = _config.hinge_kink_slope()
    if slope == 0.5:
        return value
    return value + (slope - 0.5) * xp.where(m == 0, m, xp.zeros_like(m))


def _slope(xp: Any, m: Array) -> Array:
    """d max(m, 0) / dm: 1, 1/2, 0 for m >, =, < 0 (a tie shares the gradient)."""
    slope = _config.hinge_kink_slope()
    half = (xp.sign(m) + 1) / 2
    return half if slope == 0.5 else xp.where(m == 0, xp.full_like(m, slope), half)


def _top_share(xp: Any, a: Array, top: Array) -> Array:
    """d max_c(a_c) / d a: 1 at the maximum, split equally among tied maxima."""
    hit = cast(xp, a == top[..., None], a.dtype)
    return hit / xp.sum(hit, axis=-1, keepdims=True)


def _poison(xp: Any, x: Array, bad: Array | None) -> Array:
    """``x`` times NaN where ``bad`` (traced bad values the body found itself)."""
    if bad is None:
        return x
    nan = xp.asarray(math.nan, dtype=x.dtype, device=device_of(x))
    return x * xp.where(bad, nan, xp.ones_like(x))


def _check_classes(name: str, x: Array) -> int:
    """The number of classes (class axis last), which must be at least 1."""
    num_classes = int(x.shape[-1])
    if num_classes == 0:
        msg = f"`{name}` must have at least one class along its class axis; got 0 classes"
        raise ValueError(msg)
    return num_classes


def _check_power(p: Any) -> int:
    msg = f"`p` must be 1 or 2 (as torch's multi_margin_loss); got {p!r}"
    if not _is_int(p):
        raise TypeError(msg)
    if p not in (1, 2):
        raise ValueError(msg)
    return int(p)


def _not_sign(xp: Any, t: Array) -> Array:
    return ~((t == 1) | (t == -1))  # NaN is neither


def check_signs(xp: Any, name: str, t: Array) -> Array | None:
    """Targets are -1 or 1 (a core rule; the adapters compute with any value)."""
    if not _config.core_rules():
        return None
    return check_values(xp, name, t, _not_sign, "-1 or 1")


def _not_hinge_target(xp: Any, t: Array) -> Array:
    zero = t == 0
    # a 0 among -1s is neither a -1/1 target nor part of an all-0/1 array
    return (_not_sign(xp, t) & ~zero) | (zero & xp.any(t == -1))


def check_hinge_targets(xp: Any, name: str, t: Array) -> Array | None:
    """-1 or 1, or all 0 or 1 (read as -1 and 1, Keras's rule); never a mix of -1 and 0."""
    if not _config.core_rules():
        return None
    rule = "-1 or 1, or all 0 or 1 (read as -1 and 1, as Keras does)"
    return check_values(xp, name, t, _not_hinge_target, rule)


def _as_signs(xp: Any, t: Array) -> Array:
    """Keras's ``convert_binary_labels_to_hinge``: ``2t - 1`` when every target is 0 or 1."""
    binary = xp.all((t == 0) | (t == 1))
    return xp.where(binary, 2 * t - 1, t)


def _integer_labels(xp: Any, name: str, labels: Array) -> None:
    check_labels_dtype(xp, labels)


# --------------------------------------------------------------------------- binary hinges


@elementwise_loss(truth="targets", checks=(("targets", check_hinge_targets),))
def hinge(xp: Any, pred: Array, targets: Array) -> tuple[Array, Any]:
    r"""Hinge loss ``max(0, 1 - t p)`` of a score against a -1/1 target.

    .. math::
        \ell = \max(0, 1 - t p), \qquad
        \frac{\partial \ell}{\partial p} = -t\,[1 - t p > 0]
        \quad (-t/2 \text{ at } 1 - t p = 0)

    ``targets`` are -1 or 1; if every target is 0 or 1 they are read as
    ``2 t - 1`` (Keras's rule, decided over the whole array).  One value per
    element under ``reduction="none"`` (optax's ``hinge_loss``); Keras's
    ``hinge`` is the mean of those over the last axis, so ``"mean"`` equals
    Keras's default.  At the kink the slope is 1/2 (optax's); Keras gives 1.

    Replaces keras ``hinge``/``Hinge``, optax ``hinge_loss``.

    Parameters
    ----------
    pred : array, real floating
        Scores (margins, no activation).
    targets : array, the shape of ``pred``
        -1 or 1 (all 0/1 are read as -1/1).
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.margin import hinge
    >>> hinge(np.array([2.0, 0.5, -1.0]), np.array([1, 1, 0]), reduction="none")
    array([0. , 0.5, 0. ])

    References
    ----------
    C. Cortes, V. Vapnik. Support-vector networks. Machine Learning 20, 1995.
    """
    t = _as_signs(xp, targets)
    m = 1 - t * pred
    return _positive(xp, m), lambda: -t * _slope(xp, m)  # d/dp = -t [m > 0]


@elementwise_loss(truth="targets", checks=(("targets", check_hinge_targets),))
def squared_hinge(xp: Any, pred: Array, targets: Array) -> tuple[Array, Any]:
    r"""Squared hinge loss ``max(0, 1 - t p)^2`` (the L2-SVM loss).

    .. math::
        \ell = \max(0, 1 - t p)^2, \qquad
        \frac{\partial \ell}{\partial p} = -2 t \max(0, 1 - t p)

    Targets as for :func:`hinge` (-1/1, or all 0/1 read as -1/1).  One value
    per element; Keras's ``squared_hinge`` averages them over the last axis.
    The derivative is continuous (0 at the kink in every framework).

    Replaces keras ``squared_hinge``/``SquaredHinge``.

    Parameters
    ----------
    pred : array, real floating
        Scores (margins, no activation).
    targets : array, the shape of ``pred``
        -1 or 1 (all 0/1 are read as -1/1).
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.margin import squared_hinge
    >>> squared_hinge(np.array([2.0, 0.5, 1.0]), np.array([1.0, 1.0, -1.0]), reduction="none")
    array([0.  , 0.25, 4.  ])

    References
    ----------
    Y. Tang. Deep learning using linear support vector machines. ICML workshop, 2013.
    """
    t = _as_signs(xp, targets)
    h = _positive(xp, 1 - t * pred)
    return h * h, lambda: -2 * t * h  # d/dp = -2 t max(0, 1 - t p)


@elementwise_loss(pred="scores", truth="targets", checks=(("targets", check_signs),))
def perceptron(xp: Any, scores: Array, targets: Array) -> tuple[Array, Any]:
    r"""Perceptron loss ``max(0, -t s)``: the hinge without a margin.

    .. math::
        \ell = \max(0, -t s), \qquad
        \frac{\partial \ell}{\partial s} = -t\,[t s < 0] \quad (-t/2 \text{ at } s = 0)

    ``targets`` are -1 or 1.  The slope 1/2 at ``s = 0`` (optax's) lets a
    zero-initialised model learn.  One value per element.

    Replaces optax ``perceptron_loss``.

    Parameters
    ----------
    scores : array, real floating
        Scores (margins, no activation).
    targets : array, the shape of ``scores``
        -1 or 1.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.margin import perceptron
    >>> perceptron(np.array([2.0, 0.5, 0.0]), np.array([1, -1, 1]), reduction="none")
    array([0. , 0.5, 0. ])

    References
    ----------
    F. Rosenblatt. The perceptron: a probabilistic model for information storage
    and organization in the brain. Psychological Review 65(6), 1958.
    """
    m = -targets * scores
    return _positive(xp, m), lambda: -targets * _slope(xp, m)  # d/ds = -t [t s < 0]


@elementwise_loss(truth="targets", checks=(("targets", check_signs),))
def soft_margin(xp: Any, pred: Array, targets: Array) -> tuple[Array, Any]:
    r"""Soft-margin (logistic) loss ``log(1 + exp(-t p))`` against -1/1 targets.

    .. math::
        \ell = \log(1 + e^{-t p}), \qquad
        \frac{\partial \ell}{\partial p} = -t\,\sigma(-t p)

    Computed as ``logaddexp(0, -t p)``: finite for any finite input (PyTorch's
    ``soft_margin_loss`` overflows to inf beyond ``|p| > 88`` in float32).
    One value per element.

    Replaces torch ``soft_margin_loss``/``SoftMarginLoss``.

    Parameters
    ----------
    pred : array, real floating
        Scores (margins, no activation).
    targets : array, the shape of ``pred``
        -1 or 1.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.margin import soft_margin
    >>> soft_margin(np.array([0.0, 1e4]), np.array([1.0, -1.0]), reduction="none")  # log 2, 1e4
    array([6.93147181e-01, 1.00000000e+04])

    References
    ----------
    T. Zhang. Statistical behavior and consistency of classification methods
    based on convex risk minimization. Annals of Statistics 32(1), 2004.
    """
    z = -targets * pred
    value = xp.logaddexp(xp.zeros_like(z), z)
    return value, lambda: -targets * sigmoid_of(xp, z)  # d/dp = -t sigmoid(-t p)


@elementwise_loss(truth="targets", checks=(("targets", check_signs),))
def hinge_embedding(
    xp: Any, pred: Array, targets: Array, *, margin: float = 1.0
) -> tuple[Array, Any]:
    r"""Hinge embedding loss: ``x`` for similar pairs (1), ``max(0, margin - x)`` for others (-1).

    .. math::
        \ell = \begin{cases} x & t = 1 \\ \max(0, \Delta - x) & t = -1 \end{cases},
        \qquad \frac{\partial \ell}{\partial x} =
        \begin{cases} 1 & t = 1 \\ -[\Delta - x > 0] & t = -1 \end{cases}

    ``pred`` is typically a distance between two embeddings, ``targets`` -1
    or 1, ``margin`` Δ any finite number.  The slope at ``x = Δ`` is 1/2
    (PyTorch's ``clamp_min`` gives 1).  One value per element.

    Replaces torch ``hinge_embedding_loss``/``HingeEmbeddingLoss``.

    Parameters
    ----------
    pred : array, real floating
        Distances (or dissimilarities) of pairs.
    targets : array, the shape of ``pred``
        1 (similar) or -1 (dissimilar).
    margin : float
        The distance a dissimilar pair must reach.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.margin import hinge_embedding
    >>> x = np.array([0.3, 0.3, 2.0])
    >>> hinge_embedding(x, np.array([1, -1, -1]), margin=1.0, reduction="none")
    array([0.3, 0.7, 0. ])

    References
    ----------
    R. Hadsell, S. Chopra, Y. LeCun. Dimensionality reduction by learning an
    invariant mapping. CVPR 2006.
    """
    margin = check_real("margin", margin, "a finite real number")
    # PyTorch's form, so that the adapter (which allows any target) gets its numbers
    other, same = targets != 1, targets != -1
    zero = xp.zeros_like(pred)
    m = margin - pred
    value = xp.where(other, _positive(xp, m), zero) + xp.where(same, pred, zero)
    # d/dx = -[margin - x > 0] for t = -1, 1 for t = 1
    return value, lambda: xp.where(other, -_slope(xp, m), zero) + xp.where(same, 1 + zero, zero)


# --------------------------------------------------------------------------- over classes


@rowwise_loss(pred="pred", truth="targets", checks=(("targets", check_target_interval),))
def categorical_hinge(xp: Any, pred: Array, targets: Array) -> tuple[Array, Any]:
    r"""Keras's categorical hinge: the best wrong score against the true one, with a margin of 1.

    .. math::
        \ell = \max(0,\ 1 + \max_c (1 - t_c) p_c - \textstyle\sum_c t_c p_c), \qquad
        \frac{\partial \ell}{\partial p_c} = [\ell > 0]\,\big((1 - t_c)\,a_c - t_c\big)

    where ``a`` is 1 at the maximising class (split equally among ties).
    ``targets`` are one-hot (or soft) rows in [0, 1].  As Keras, the maximum
    includes the true class's term ``0 * p_y``, so wrong scores below 0 count
    as 0.  One value per example (the class axis removed).

    Replaces keras ``categorical_hinge``/``CategoricalHinge``.

    Parameters
    ----------
    pred : array, real floating
        Scores.
    targets : array, the shape of ``pred``
        One-hot (or soft) targets along ``axis``.
    axis : int
        The class axis.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.margin import categorical_hinge
    >>> p, t = np.array([[2.0, 1.5, -1.0]]), np.array([[1.0, 0.0, 0.0]])
    >>> categorical_hinge(p, t, reduction="none")  # 1 + 1.5 - 2
    array([0.5])

    References
    ----------
    K. Crammer, Y. Singer. On the algorithmic implementation of multiclass
    kernel-based vector machines. JMLR 2, 2001.
    """
    _check_classes("pred", pred)
    pos = xp.sum(targets * pred, axis=-1)
    wrong = (1 - targets) * pred
    neg = xp.max(wrong, axis=-1)
    m = 1 + neg - pos
    value = _positive(xp, m)
    # d/dp_c = [m > 0] ((1 - t_c) a_c - t_c)
    return (
        value,
        lambda: _slope(xp, m)[..., None] * ((1 - targets) * _top_share(xp, wrong, neg) - targets),
    )


@sparse_loss(pred="scores")
def multiclass_hinge(xp: Any, scores: Array, labels: Array) -> tuple[Array, Any]:
    r"""Crammer-Singer multiclass hinge: the best score (wrong classes + 1) minus the true score.

    .. math::
        \ell = \max_c (s_c + [c \ne y]) - s_y, \qquad
        \frac{\partial \ell}{\partial s_c} = a_c - [c = y]

    where ``a`` is 1 at the maximising class (split equally among ties, as
    ``jnp.max``).  ``labels`` are class ids.  One value per example; equal to
    optax's ``multiclass_hinge_loss``.

    Replaces optax ``multiclass_hinge_loss``.

    Parameters
    ----------
    scores : array, real floating
        Scores.
    labels : integer array, the shape of ``scores`` without ``axis``
        Class ids in ``[0, C)``.
    axis : int
        The class axis.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.margin import multiclass_hinge
    >>> multiclass_hinge(np.array([[2.0, 1.5, -1.0]]), np.array([0]), reduction="none")
    array([0.5])

    References
    ----------
    K. Crammer, Y. Singer. On the algorithmic implementation of multiclass
    kernel-based vector machines. JMLR 2, 2001.
    """
    _check_classes("scores", scores)
    onehot = is_label(xp, labels, scores.shape[-1])
    shifted = xp.where(onehot, scores, scores + 1)
    top = xp.max(shifted, axis=-1)
    value = top - gather_last(xp, scores, labels)
    # d/ds_c = a_c - [c = y]
    return value, lambda: _top_share(xp, shifted, top) - cast(xp, onehot, scores.dtype)


@sparse_loss(pred="scores")
def multiclass_perceptron(xp: Any, scores: Array, labels: Array) -> tuple[Array, Any]:
    r"""Multiclass perceptron loss: the best score minus the true class's score.

    .. math::
        \ell = \max_c s_c - s_y, \qquad
        \frac{\partial \ell}{\partial s_c} = a_c - [c = y]

    where ``a`` is 1 at the maximising class (split equally among ties).  One
    value per example; equal to optax's ``multiclass_perceptron_loss``.

    Replaces optax ``multiclass_perceptron_loss``.

    Parameters
    ----------
    scores : array, real floating
        Scores.
    labels : integer array, the shape of ``scores`` without ``axis``
        Class ids in ``[0, C)``.
    axis : int
        The class axis.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.margin import multiclass_perceptron
    >>> multiclass_perceptron(np.array([[2.0, 1.5, -1.0]]), np.array([1]), reduction="none")
    array([0.5])

    References
    ----------
    M. Collins. Discriminative training methods for hidden Markov models:
    theory and experiments with perceptron algorithms. EMNLP 2002.
    """
    _check_classes("scores", scores)
    top = xp.max(scores, axis=-1)
    value = top - gather_last(xp, scores, labels)
    onehot = cast(xp, is_label(xp, labels, scores.shape[-1]), scores.dtype)
    return value, lambda: _top_share(xp, scores, top) - onehot  # d/ds_c = a_c - [c = y]


@sparse_loss(pred="scores", class_weight=True)
def multi_margin(
    xp: Any, scores: Array, labels: Array, *, p: int = 1, margin: float = 1.0
) -> tuple[Array, Any]:
    r"""Weston-Watkins multi-class margin loss: every wrong class within ``margin`` of the true one.

    .. math::
        \ell = \frac{1}{C} \sum_{c \ne y} h_c^p,\quad h_c = \max(0, \Delta - s_y + s_c),
        \qquad \frac{\partial \ell}{\partial s_c} = \frac{p\, h_c^{p-1} [h_c > 0]}{C}
        \ (c \ne y), \quad \frac{\partial \ell}{\partial s_y} = -\sum_{c \ne y}
        \frac{\partial \ell}{\partial s_c}

    ``p`` is 1 or 2, ``margin`` Δ any finite number.  With ``class_weight``
    each example's loss is multiplied by its label's weight and ``"mean"``
    divides by the sum of those weights (the core's weighted mean; PyTorch's
    ``multi_margin_loss`` divides by the number of examples instead).

    Replaces torch ``multi_margin_loss``/``MultiMarginLoss``.

    Parameters
    ----------
    scores : array, real floating
        Scores.
    labels : integer array, the shape of ``scores`` without ``axis``
        Class ids in ``[0, C)``.
    axis : int
        The class axis.
    class_weight : array (C,), optional
        Each example's loss times its label's weight; ``"mean"`` divides by
        their sum.
    p : {1, 2}
        The power of each hinge.
    margin : float
        The margin every wrong class must be below the true one by.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.margin import multi_margin
    >>> s = np.array([[2.0, 1.5, -1.0]])
    >>> multi_margin(s, np.array([0]), reduction="none")  # (0.5 + 0) / 3
    array([0.16666667])

    References
    ----------
    J. Weston, C. Watkins. Support vector machines for multi-class pattern
    recognition. ESANN 1999.
    """
    p = _check_power(p)
    margin = check_real("margin", margin, "a finite real number")
    num_classes = _check_classes("scores", scores)
    wrong = ~is_label(xp, labels, num_classes)
    m = margin - gather_last(xp, scores, labels)[..., None] + scores
    h = _positive(xp, m)
    zero = xp.zeros_like(h)
    value = xp.sum(xp.where(wrong, h if p == 1 else h * h, zero), axis=-1) / num_classes

    def derivative() -> Array:
        # d/ds_c = p h_c^(p-1) [h_c > 0] / C for c != y; d/ds_y = -(their sum)
        dc = xp.where(wrong, _slope(xp, m) if p == 1 else 2 * h, zero) / num_classes
        return dc - cast(xp, ~wrong, dc.dtype) * xp.sum(dc, axis=-1, keepdims=True)

    return value, derivative


@rowwise_loss(pred="scores", truth="labels", checks=(("labels", _integer_labels),))
def multilabel_margin(xp: Any, scores: Array, labels: Array) -> tuple[Array, Any]:
    r"""Multi-label margin loss: every target class above every other class by a margin of 1.

    .. math::
        \ell = \frac{1}{C} \sum_{j \in Y} \sum_{i \notin Y} h_{ji},\quad
        h_{ji} = \max(0, 1 - (s_j - s_i)), \qquad
        \frac{\partial \ell}{\partial s_k} = \frac{1}{C}\Big(\sum_{j \in Y} [h_{jk} > 0]
        [k \notin Y] - [k \in Y] \sum_{i \notin Y} [h_{ki} > 0]\Big)

    ``labels`` has the shape of ``scores`` and PyTorch's layout: each row
    lists its target classes first, ended by the first -1 (what follows is
    padding); every entry must be in [-1, C).  A class listed twice counts
    twice, as in PyTorch.  One value per example.  Memory: O(N C²), the
    pairs at once (PyTorch loops over them).

    Replaces torch ``multilabel_margin_loss``/``MultiLabelMarginLoss``.

    Parameters
    ----------
    scores : array, real floating
        Scores.
    labels : integer array, the shape of ``scores``
        Each row's target classes first, ended by -1 (PyTorch's layout).
    axis : int
        The class axis.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.margin import multilabel_margin
    >>> s = np.array([[0.1, 0.2, 0.4, 0.8]])
    >>> # targets {3, 0} against {1, 2}: pairs (3,1) .4, (3,2) .6, (0,1) 1.1, (0,2) 1.3
    >>> y = np.array([[3, 0, -1, 1]])
    >>> multilabel_margin(s, y, reduction="none")  # 3.4 / 4
    array([0.85])

    References
    ----------
    PyTorch ``torch.nn.MultiLabelMarginLoss``; A. Elisseeff, J. Weston. A kernel
    method for multi-labelled classification. NIPS 2001.
    """
    num_classes = _check_classes("scores", scores)
    # the shell hands the labels over in the compute dtype (exact below 2**24 classes)
    bad = check_values(
        xp,
        "labels",
        labels,
        lambda xp, y: ~((y >= -1) & (y < num_classes)),
        f"in [-1, {num_classes}) (class ids, then -1 and padding)",
        int,
    )
    row_bad = None if bad is None else xp.any(bad, axis=-1)
    classes = xp.arange(num_classes, dtype=scores.dtype, device=device_of(scores))
    # entries before the first -1 list the targets; count[c]: how often c is listed
    last = xp.full_like(classes, num_classes)
    first_pad = xp.min(xp.where(labels == -1, classes, last), axis=-1)
    listed = classes < first_pad[..., None]
    hits = (labels[..., :, None] == classes) & listed[..., :, None]
    count = xp.sum(cast(xp, hits, scores.dtype), axis=-2)
    # pair[j, i] = count[j] [i not a target]; h[j, i] = max(0, 1 - s_j + s_i)
    pair = count[..., :, None] * cast(xp, count == 0, scores.dtype)[..., None, :]
    m = 1 - scores[..., :, None] + scores[..., None, :]
    used = pair > 0
    zero = xp.zeros_like(m)
    terms = xp.where(used, pair * _positive(xp, m), zero)  # no 0 * inf from unused pairs
    value = _poison(xp, xp.sum(terms, axis=(-2, -1)) / num_classes, row_bad)

    def derivative() -> Array:
        a = xp.where(used, pair * _slope(xp, m), zero) / num_classes
        # d/ds_k = sum_j a[j, k] (k as the other class) - sum_i a[k, i] (k as the target)
        d = xp.sum(a, axis=-2) - xp.sum(a, axis=-1)
        return d if row_bad is None else _poison(xp, d, row_bad[..., None])

    return value, derivative


@rowwise_loss(pred="logits", truth="targets", checks=(("targets", check_target_interval),))
def multilabel_soft_margin(
    xp: Any, logits: Array, targets: Array, *, class_weight: Array | None = None
) -> tuple[Array, Any]:
    r"""One-vs-all logistic loss over classes, averaged over the classes of each example.

    .. math::
        \ell = \frac{1}{C} \sum_c w_c \big(t_c \log(1 + e^{-x_c})
        + (1 - t_c) \log(1 + e^{x_c})\big), \qquad
        \frac{\partial \ell}{\partial x_c} = \frac{w_c (\sigma(x_c) - t_c)}{C}

    ``targets`` in [0, 1] (multi-hot or soft), ``class_weight`` ``w`` one
    finite non-negative weight per class (PyTorch's ``weight``; the mean over
    classes still divides by C).  Stable for any finite logit.  One value
    per example.

    Replaces torch ``multilabel_soft_margin_loss``/``MultiLabelSoftMarginLoss``.

    Parameters
    ----------
    logits : array, real floating
        Any real scores, one per class.
    targets : array, the shape of ``logits``
        Multi-hot or soft targets in [0, 1].
    axis : int
        The class axis.
    class_weight : array (C,), optional
        One non-negative weight per class.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.margin import multilabel_soft_margin
    >>> x, t = np.array([[0.0, 1e4, -1e4]]), np.array([[1.0, 1.0, 0.0]])
    >>> multilabel_soft_margin(x, t, reduction="none")  # log(2) / 3
    array([0.23104906])

    References
    ----------
    PyTorch ``torch.nn.MultiLabelSoftMarginLoss``.
    """
    num_classes = _check_classes("logits", logits)
    w, bad = None, None
    if class_weight is not None:
        _, _, w = namespace(logits, class_weight, names=("class_weight",))
        check_class_weight(xp, w, num_classes)
        bad = check_weight_values(xp, "class_weight", w)
        w = cast(xp, w, logits.dtype)
    zero = xp.zeros_like(logits)
    per_class = targets * xp.logaddexp(zero, -logits) + (1 - targets) * xp.logaddexp(zero, logits)
    if w is not None:
        per_class = per_class * w
    # every example depends on every class weight: one bad weight poisons all
    everywhere = None if bad is None else xp.any(bad)
    value = _poison(xp, xp.sum(per_class, axis=-1) / num_classes, everywhere)

    def derivative() -> Array:
        d = (
            sigmoid_of(xp, logits) - targets
        ) / num_classes  # d/dx_c = w_c (sigmoid(x_c) - t_c) / C
        return _poison(xp, d if w is None else d * w, everywhere)

    return value, derivative
