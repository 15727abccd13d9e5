"""``optax.losses`` (0.2.8): every function under its optax name, signature and numbers.

``from losskit.compat import optax`` gives every function of ``optax.losses``:
``sigmoid_binary_cross_entropy``, ``sigmoid_focal_loss``,
``softmax_cross_entropy``, ``softmax_cross_entropy_with_integer_labels``,
``safe_softmax_cross_entropy``, ``poly_loss_cross_entropy``,
``smooth_labels``, ``hinge_loss``, ``perceptron_loss``,
``multiclass_hinge_loss``, ``multiclass_perceptron_loss``, ``sparsemax_loss``,
``multiclass_sparsemax_loss``, ``make_fenchel_young_loss``, ``kl_divergence``,
``kl_divergence_with_log_targets``, ``generalized_kl_divergence``,
``convex_kl_divergence`` (deprecated in optax, with optax's
``DeprecationWarning``), ``squared_error``, ``l2_loss``, ``huber_loss``,
``log_cosh``, ``cosine_similarity``, ``cosine_distance``,
``triplet_margin_loss``, ``ntxent``, ``ranking_softmax_loss``, ``dice_loss``,
``binary_dice_loss``, ``multiclass_generalized_dice_loss`` (and ``ctc_loss``,
``ctc_loss_with_forward_probs`` from the CTC work), with optax's argument
names, orders and defaults.  As in optax the element- and example-wise losses
are not reduced (one value per element or per example, of optax's shape;
``ntxent``, ``multiclass_generalized_dice_loss`` and, by default,
``ranking_softmax_loss`` and ``dice_loss`` reduce as optax does), and ``axis``
(an int, a tuple of ints or None) and the ``where`` mask are taken where
optax takes them.

Inputs may be JAX arrays, NumPy arrays, Python lists or PyTorch tensors; the
result is of the first argument's kind, and ``jax.grad``, ``jax.jit`` and
torch autograd work through every function, with optax's derivatives with
respect to every floating argument.  The numbers are optax's, edge cases
included, each step where optax departs from the core's semantics done here
and marked ``# optax:``: truth broadcast against the predictions
(``labels`` of shape ``(C,)`` for ``(N, C)`` logits), soft targets and labels
of any value, hinge targets that are not read as -1/1 (optax computes
``max(0, 1 - y s)`` with the ``y`` given), ``0 * log 0`` as optax forms it
(``softmax_cross_entropy`` and ``poly_loss_cross_entropy`` are NaN where a
logit is ``-inf`` and its label 0, as ``kl_divergence`` where a target is 0
and its log-prediction ``-inf`` and ``kl_divergence_with_log_targets`` where a
log-target is ``-inf``: optax's ``safe_softmax_cross_entropy`` exists for the
first; a zero vector's cosine with optax's default ``epsilon=0``, ``ntxent``
of a batch without a positive pair and ``ranking_softmax_loss`` of a kept
item with score ``-inf`` and label 0 are NaN too), the derivative of
``safe_softmax_cross_entropy`` in its labels
(``-log_softmax(logits)``, ``+inf`` at a ``-inf`` logit), a ``where`` mask
(masked entries count nowhere, a fully masked example is 0, and
``softmax_cross_entropy_with_integer_labels`` takes its label's logit even
where it is masked), the result dtype (floating inputs promote, as JAX does;
``sigmoid_binary_cross_entropy`` and ``sigmoid_focal_loss`` take the logits'
dtype; half precision in, half precision out, accumulated in float32 and
rounded once).

Deliberate differences, all where optax's number is not the loss's: a class
id outside ``[0, C)`` raises ``ValueError`` naming it (optax gathers a clamped
or filled value, or a row of zeros from ``one_hot``: a silently wrong number)
and under ``jax.jit`` makes its example NaN; where optax's derivative is NaN
for a finite value only because ``jnp.where`` met ``0 * inf`` (the labels of
a ``where``-masked entry, a target of exactly 0 in ``kl_divergence``), it is
the exact one here (0 for a masked entry, ``-log q`` for a zero target, the
core's convention); the multiclass losses return the scores' dtype (optax's
``one_hot`` promotes float32 scores to float64 when ``jax_enable_x64`` is on);
``log_cosh`` is exact for small errors (optax's ``logaddexp(e, -e) - log 2``
keeps only its rounding below about 1e-8); ``delta`` (``huber_loss``),
``epsilon`` (``poly_loss_cross_entropy``), ``gamma`` (``sigmoid_focal_loss``,
>= 0), ``smooth`` (the Dice losses, > 0: optax's 0 makes an empty class
0/0), ``margin`` and ``eps`` are numbers with the core's ranges (``huber_loss``
needs ``delta > 0``); ``multiclass_sparsemax_loss`` takes ``(N, C)`` scores,
the only shape optax's ``vmap`` gives a meaning to; ``triplet_margin_loss``
takes an even ``norm_degree`` only (optax raises the differences to it
without ``abs``: a signed sum for an odd degree); ``ntxent`` normalises by
``max(|e|, eps)``, optax by ``sqrt(max(|e|^2, eps))`` (``eps`` the dtype's
machine epsilon), the same for embeddings longer than ``sqrt(eps)`` (1.5e-8
in float64, 3.5e-4 in float32); ``make_fenchel_young_loss`` on NumPy and
torch arrays calls ``max_fun`` once on the whole array (a losskit-aware max
such as :func:`losskit.logsumexp`; JAX's logsumexps are taken as it), where
optax ``vectorize``s it.

Examples
--------
>>> import numpy as np
>>> from losskit.compat import optax
>>> logits = np.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
>>> optax.softmax_cross_entropy(logits, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])).round(4)
array([0.2761, 2.9518])
>>> optax.softmax_cross_entropy_with_integer_labels(logits, np.array([0, 1])).round(4)
array([0.2761, 2.9518])
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np

from .. import activations
from .._backend import Array, cast, compute_dtype, namespace, quiet_numpy, readable, shape_of
from .._validation import check_floating, check_labels_dtype
from ..losses.binary import sigmoid_cross_entropy
from ..losses.contrastive import ntxent as ntxent_core
from ..losses.cross_entropy import softmax_cross_entropy as softmax_cross_entropy_core
from ..losses.cross_entropy import sparse_softmax_cross_entropy
from ..losses.focal import poly1_cross_entropy
from ..losses.focal import sigmoid_focal_loss as sigmoid_focal_loss_core
from ..losses.likelihood import kl_divergence as kl_divergence_core
from ..losses.margin import hinge, multiclass_hinge, multiclass_perceptron, perceptron
from ..losses.ranking import ranking_softmax
from ..losses.regression import huber, mean_squared_error
from ..losses.regression import log_cosh as log_cosh_core
from ..losses.segmentation import tversky
from ..losses.similarity import cosine_distance as cosine_distance_core
from ..losses.similarity import triplet_margin
from ..losses.sparsemax import sparsemax_loss as sparsemax_loss_core
from ._common import framework_semantics, half_back, int64_class_ids, poisoned, with_partials

__all__: list[str] = [
    "binary_dice_loss",
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_similarity",
    "dice_loss",
    "generalized_kl_divergence",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "l2_loss",
    "log_cosh",
    "make_fenchel_young_loss",
    "multiclass_generalized_dice_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "ntxent",
    "perceptron_loss",
    "poly_loss_cross_entropy",
    "ranking_softmax_loss",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sparsemax_loss",
    "squared_error",
    "triplet_margin_loss",
]

Axis = int | tuple[int, ...] | None


# --------------------------------------------------------------------------- helpers


def _is_float(xp: Any, x: Array) -> bool:
    return bool(xp.isdtype(x.dtype, "real floating"))


def _promoted(xp: Any, *arrays: Array) -> tuple[Any, ...]:
    """``(dtype, *arrays)``: the floating arrays' promoted dtype (JAX's rule), all cast to it.

    optax computes ``labels * log_probs`` and the like: float32 logits with
    float64 labels give float64, integer or boolean labels do not widen.
    """
    floating = [a for a in arrays if _is_float(xp, a)] or list(arrays[:1])
    dtype = xp.result_type(*floating)
    return (dtype, *(cast(xp, a, dtype) for a in arrays))


def _broadcast(xp: Any, names: tuple[str, str], a: Array, b: Array) -> tuple[Array, Array]:
    """optax: the truth broadcasts against the predictions (jnp's rule), both to one shape."""
    if shape_of(a) == shape_of(b):
        return a, b
    try:
        shape = np.broadcast_shapes(shape_of(a), shape_of(b))
    except ValueError:
        msg = f"`{names[1]}` must broadcast against `{names[0]}` {shape_of(a)}; got {shape_of(b)}"
        raise ValueError(msg) from None
    return xp.broadcast_to(a, shape), xp.broadcast_to(b, shape)


def _same_shape(names: tuple[str, str], a: Array, b: Array) -> None:
    """optax's ``check_shapes_equal`` (perceptron_loss, squared_error, l2_loss)."""
    if shape_of(a) != shape_of(b):
        msg = f"`{names[1]}` must have the shape of `{names[0]}` {shape_of(a)}; got {shape_of(b)}"
        raise ValueError(msg)


def _axes(axis: Axis, ndim: int, name: str, *, none: bool = True) -> tuple[int, ...]:
    """optax's ``axis``: an int, a tuple of ints, or None (every axis), normalised."""
    if axis is None and none:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    allowed = "an int, a tuple of ints" + (" or None" if none else "")
    out: list[int] = []
    for a in items:
        if not isinstance(a, numbers.Integral) or isinstance(a, (bool, np.bool_)):
            msg = f"`axis` must be {allowed}; got {axis!r}"
            raise TypeError(msg)
        if not -ndim <= int(a) < ndim:
            msg = f"`axis` {int(a)} is out of bounds for {ndim}-d `{name}`"
            raise ValueError(msg)
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        msg = f"`axis` must not repeat an axis; got {axis!r}"
        raise ValueError(msg)
    return tuple(out)


def _classes_last(xp: Any, x: Array, axes: tuple[int, ...]) -> Array:
    """``x`` with ``axes`` moved last (in order) and flattened into one class axis."""
    batch = [a for a in range(x.ndim) if a not in axes]
    if axes == tuple(range(x.ndim - len(axes), x.ndim)) and len(axes) == 1:
        return x
    moved = xp.permute_dims(x, (*batch, *axes))
    lead = shape_of(moved)[: len(batch)]
    return xp.reshape(moved, (*lead, math.prod(shape_of(x)[a] for a in axes)))


def _mask(xp: Any, where: Array | None, x: Array, axis: Axis, axes: tuple[int, ...]) -> Any:
    """optax's ``where``: of the input's shape, or of its shape without ``axis`` (expanded)."""
    if where is None:
        return None
    w = where if xp.isdtype(where.dtype, "bool") else where != 0
    if w.ndim != x.ndim and axis is not None:
        # optax: jnp.expand_dims(where, axis) when its rank is not the input's
        for a in sorted(axes):
            w = xp.expand_dims(w, axis=a)
    try:
        return xp.broadcast_to(w, shape_of(x))
    except (ValueError, RuntimeError):
        msg = f"`where` must broadcast to the input's shape {shape_of(x)}; got {shape_of(where)}"
        raise ValueError(msg) from None


def _fill(xp: Any, keep: Array, x: Array, value: float) -> Array:
    """``x`` where ``keep``, else the constant ``value`` (no gradient reaches ``x`` there)."""
    return xp.where(keep, x, xp.full_like(x, value))


def _corner(xp: Any, t: Array, x: Array) -> Array:
    """Where optax forms ``0 * -inf`` = NaN: a label or target of 0 against a ``-inf``."""
    return (t == 0) & (x == -math.inf)


def _floating(xp: Any, name: str, x: Array) -> None:
    check_floating(xp, name, x)


def _arrays(*args: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    return namespace(*args, names=names[1:])


# --------------------------------------------------------------------------- sigmoid family


@framework_semantics
def sigmoid_binary_cross_entropy(logits: Any, labels: Any) -> Array:
    r"""``optax.losses.sigmoid_binary_cross_entropy``: elementwise sigmoid cross-entropy.

    .. math::
        \ell = -y \log \sigma(z) - (1 - y) \log \sigma(-z), \qquad
        \frac{\partial \ell}{\partial z} = \sigma(z) - y, \quad
        \frac{\partial \ell}{\partial y} = -z

    ``labels`` (0/1 or soft, any value as optax) take the logits' dtype and
    broadcast against them; the result has their broadcast shape.  Computed
    by the core's stable :func:`losskit.sigmoid_cross_entropy`.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.sigmoid_binary_cross_entropy(np.array([1.5, -0.3, 4.0]), np.array([1, 0, 1])).round(5)
    array([0.20141, 0.55436, 0.01815])

    References
    ----------
    Goodfellow, Bengio, Courville, *Deep Learning*, 2016 (section 3.13).
    """
    xp, x, y = _arrays(logits, labels, names=("logits", "labels"))
    _floating(xp, "logits", x)
    x, y = _broadcast(xp, ("logits", "labels"), x, cast(xp, y, x.dtype))  # optax: astype(logits)
    return half_back(xp, sigmoid_cross_entropy(x, y, reduction="none"), x.dtype)


@framework_semantics
def sigmoid_focal_loss(logits: Any, labels: Any, *, alpha: Any = None, gamma: float = 2.0) -> Array:
    r"""``optax.losses.sigmoid_focal_loss``: sigmoid cross-entropy scaled by ``(1 - p_t)^γ``.

    .. math::
        \ell = \alpha_t (1 - p_t)^\gamma\, \mathrm{ce}(z, y), \quad
        1 - p_t = y\,\sigma(-z) + (1 - y)\,\sigma(z), \quad
        \alpha_t = \alpha y + (1 - \alpha)(1 - y)

    (``α_t = 1`` for ``alpha=None``, optax's default); the derivative is the
    core's :func:`losskit.sigmoid_focal_loss` (Lin et al.'s, for soft labels
    too) times ``α_t``, plus ``(2α - 1) ℓ/α_t`` in ``y``.  Labels take the
    logits' dtype and broadcast against them.  ``alpha`` is any number or
    array (optax applies it as given, outside [0, 1] too); ``gamma`` a number
    >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.sigmoid_focal_loss(np.array([2.0, -1.0]), np.array([1.0, 1.0]), alpha=0.25).round(6)
    array([0.000451, 0.175467])

    References
    ----------
    Lin, Goyal, Girshick, He, Dollár, "Focal Loss for Dense Object Detection", ICCV 2017.
    """
    xp, x, y, a = _arrays(logits, labels, alpha, names=("logits", "labels", "alpha"))
    _floating(xp, "logits", x)
    x, y = _broadcast(xp, ("logits", "labels"), x, cast(xp, y, x.dtype))  # optax: astype(logits)
    loss = sigmoid_focal_loss_core(x, y, alpha=None, gamma=gamma, reduction="none")
    if a is not None:
        # optax: (alpha y + (1 - alpha)(1 - y)) loss, for any alpha (the core's takes [0, 1])
        yc = cast(xp, y, loss.dtype)
        ac = cast(xp, a, loss.dtype)
        loss = (ac * yc + (1 - ac) * (1 - yc)) * loss
    return half_back(xp, loss, x.dtype)


# --------------------------------------------------------------------------- softmax family


def _dense(
    logits: Any, labels: Any, where: Any, axis: Axis, fn: str
) -> tuple[Any, Array, Array, Array | None, tuple[int, ...], Any]:
    """The preamble of optax's dense softmax losses: kinds, dtypes, broadcasting, axes, mask."""
    xp, x, t, w = namespace(logits, labels, where, names=("labels", "where"))
    _floating(xp, "logits", x)
    if fn == "poly_loss_cross_entropy":
        check_floating(xp, "labels", t)  # optax: check_subdtype(labels, floating)
    dtype, x, t = _promoted(xp, x, t)
    x, t = _broadcast(xp, ("logits", "labels"), x, t)
    axes = _axes(axis, x.ndim, "logits")
    return xp, x, t, _mask(xp, w, x, axis, axes), axes, dtype


def _masked_rows(
    xp: Any, x: Array, t: Array, keep: Array | None, axes: tuple[int, ...]
) -> tuple[Array, Array, Array | None]:
    """Logits and labels with ``where``'s masked entries out of the softmax and the sum.

    optax: ``log_softmax(logits, where=where)`` leaves masked logits out of the
    normaliser and ``sum(..., where=where)`` leaves their terms out; here a
    masked logit is ``-inf`` and its label 0 (a term of 0 in the core).  A
    fully masked example (optax's empty sum, 0) gets finite stand-ins and is
    set to 0 afterwards; returns the mask of the examples that have an entry.
    """
    if keep is None:
        return x, t, None
    any_kept = xp.any(keep, axis=axes, keepdims=True)
    x = _fill(xp, keep, x, -math.inf)
    x = _fill(xp, xp.broadcast_to(any_kept, shape_of(x)), x, 0.0)
    return x, _fill(xp, keep, t, 0.0), xp.any(keep, axis=axes)


def _optax_nan(
    xp: Any, loss: Array, t: Array, x: Array, keep: Array | None, axes: tuple[int, ...]
) -> Array:
    """optax: ``labels * log_probs`` is ``0 * -inf`` = NaN at a ``-inf`` logit with label 0."""
    corner = _corner(xp, t, x)
    if keep is not None:
        corner = corner & keep
    return poisoned(xp, loss, xp.any(corner, axis=axes))


def _softmax_family(
    logits: Any, labels: Any, axis: Axis, where: Any, fn: str, core: Callable[..., Array]
) -> Array:
    xp, x, t, keep, axes, dtype = _dense(logits, labels, where, axis, fn)
    xm, tm, kept = _masked_rows(xp, x, t, keep, axes)
    loss = core(_classes_last(xp, xm, axes), _classes_last(xp, tm, axes))
    loss = _optax_nan(xp, loss, t, x, keep, axes)
    if kept is not None:
        loss = xp.where(kept, loss, xp.zeros_like(loss))
    return half_back(xp, loss, dtype)


@framework_semantics
def softmax_cross_entropy(logits: Any, labels: Any, axis: Axis = -1, where: Any = None) -> Array:
    r"""``optax.losses.softmax_cross_entropy``: cross-entropy of softmax(logits) and labels.

    .. math::
        \ell = -\sum_c y_c \log \mathrm{softmax}(z)_c, \qquad
        \frac{\partial \ell}{\partial z} = \Big(\sum_c y_c\Big) \mathrm{softmax}(z) - y, \quad
        \frac{\partial \ell}{\partial y} = -\log \mathrm{softmax}(z)

    ``axis`` (an int, a tuple of ints, or None for all) is the class axis,
    removed from the result; ``labels`` broadcast against ``logits``; ``where``
    (the logits' shape, or without ``axis``) leaves entries out of the softmax
    and the sum, a fully masked example being 0.  As optax, a ``-inf`` logit
    whose label is 0 makes the example NaN (``0 * -inf``; see
    :func:`safe_softmax_cross_entropy`).  Computed by the core's
    :func:`losskit.softmax_cross_entropy`.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> z = np.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
    >>> y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> optax.softmax_cross_entropy(z, y).round(4)
    array([0.2761, 2.9518])
    >>> optax.softmax_cross_entropy(z, y, where=np.array([[True, True, False]] * 2)).round(4)
    array([0.1269, 2.2155])

    References
    ----------
    https://en.wikipedia.org/wiki/Cross-entropy
    """
    return _softmax_family(
        logits,
        labels,
        axis,
        where,
        "softmax_cross_entropy",
        lambda x, t: softmax_cross_entropy_core(x, t, reduction="none"),
    )


@framework_semantics
def poly_loss_cross_entropy(
    logits: Any, labels: Any, *, epsilon: float = 2.0, axis: Axis = -1, where: Any = None
) -> Array:
    r"""``optax.losses.poly_loss_cross_entropy``: Poly-1, cross-entropy plus ``ε Σ y (1 - p)``.

    .. math::
        \ell = -\sum_c y_c \log p_c + \epsilon \sum_c y_c (1 - p_c), \quad p = \mathrm{softmax}(z)

    with the derivative of the core's :func:`losskit.poly1_cross_entropy`,
    which computes it.  ``labels`` must be floating (optax's rule) and
    broadcast against ``logits``; ``axis`` and ``where`` as in
    :func:`softmax_cross_entropy`, NaN at a ``-inf`` logit with label 0 too.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.poly_loss_cross_entropy(np.array([[2.0, 1.0, 0.0]]), np.array([[1.0, 0, 0]])).round(6)
    array([1.077124])

    References
    ----------
    Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification
    Loss Functions", ICLR 2022.
    """
    return _softmax_family(
        logits,
        labels,
        axis,
        where,
        "poly_loss_cross_entropy",
        lambda x, t: poly1_cross_entropy(x, t, epsilon=epsilon, reduction="none"),
    )


def _weighted_log_softmax(xp: Any, log_p: Array, t: Array) -> Array:
    """optax's ``weighted_logsoftmax``: ``t log p``, 0 where ``t = 0`` (also at ``-inf``)."""
    return xp.where(t != 0, t * log_p, xp.zeros_like(log_p))


def _weighted_log_softmax_partials(xp: Any, log_p: Array, t: Array) -> tuple[Array, Array]:
    # optax's custom JVP: d/dlog_p = t, d/dt = log_p (-inf at a -inf logit, for t = 0 too)
    return t, log_p


@framework_semantics
def safe_softmax_cross_entropy(logits: Any, labels: Any) -> Array:
    r"""``optax.losses.safe_softmax_cross_entropy``: softmax cross-entropy with ``0 log 0 = 0``.

    .. math::
        \ell = -\sum_c [y_c \ne 0]\, y_c \log \mathrm{softmax}(z)_c, \qquad
        \frac{\partial \ell}{\partial z} = \Big(\sum_c y_c\Big) \mathrm{softmax}(z) - y, \quad
        \frac{\partial \ell}{\partial y_c} = -\log \mathrm{softmax}(z)_c

    over the last axis: a ``-inf`` logit (a masked class) whose label is 0
    counts 0, where :func:`softmax_cross_entropy` is NaN.  optax's custom JVP
    is kept: the derivative in a label is ``-log softmax``, ``+inf`` at a
    ``-inf`` logit even where the label is 0.  ``labels`` broadcast against
    ``logits``.  Built on the core's :func:`losskit.log_softmax`.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> z = np.array([[1.0, -np.inf, 0.5]])
    >>> optax.safe_softmax_cross_entropy(z, np.array([[1.0, 0.0, 0.0]])).round(6)
    array([0.474077])
    """
    xp, x, t = _arrays(logits, labels, names=("logits", "labels"))
    _floating(xp, "logits", x)
    dtype, x, t = _promoted(xp, x, t)
    x, t = _broadcast(xp, ("logits", "labels"), x, t)
    if x.ndim == 0:
        msg = "`logits` must have a class axis (at least 1 dimension); got a 0-d array"
        raise ValueError(msg)
    work = compute_dtype(xp, dtype)
    log_p = activations.log_softmax(cast(xp, x, work), axis=-1)
    with quiet_numpy(xp):  # 0 * -inf is formed and discarded by the where
        terms = with_partials(
            xp, _weighted_log_softmax, _weighted_log_softmax_partials, log_p, cast(xp, t, work)
        )
    return half_back(xp, -xp.sum(terms, axis=-1), dtype)


@framework_semantics
def softmax_cross_entropy_with_integer_labels(
    logits: Any, labels: Any, axis: int | tuple[int, ...] = -1, where: Any = None
) -> Array:
    r"""``optax.losses.softmax_cross_entropy_with_integer_labels``: ``logsumexp(z) - z_y``.

    .. math::
        \ell = \log \sum_c e^{z_c} - z_y, \qquad
        \frac{\partial \ell}{\partial z} = \mathrm{softmax}(z) - \mathrm{onehot}(y)

    ``labels`` are integer class ids of the logits' shape without ``axis``;
    ``axis`` is an int or a tuple of ints (then a label is a flat index into
    those axes, in order).  ``where`` leaves logits out of the normaliser
    only: the label's logit is taken even where masked (optax's rule, which
    can make the loss negative), and an example with nothing kept is 0.  A
    label outside ``[0, C)`` raises ``ValueError`` (NaN under ``jax.jit``).
    Computed by the core's :func:`losskit.sparse_softmax_cross_entropy`
    (:func:`losskit.logsumexp` with a mask).

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> z = np.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
    >>> optax.softmax_cross_entropy_with_integer_labels(z, np.array([0, 1])).round(4)
    array([0.2761, 2.9518])
    """
    xp, x, y, w = namespace(logits, labels, where, names=("labels", "where"))
    _floating(xp, "logits", x)
    check_labels_dtype(xp, y)
    if axis is None or not isinstance(axis, (int, tuple, np.integer)):
        msg = f"`axis` must be an int or a tuple of ints; got {axis!r}"
        raise TypeError(msg)
    axes = _axes(axis, x.ndim, "logits", none=False)
    expected = tuple(n for a, n in enumerate(shape_of(x)) if a not in axes)
    if shape_of(y) != expected:
        msg = (
            f"`labels` must have the shape of `logits` {shape_of(x)} without its class "
            f"axis {axis!r}, that is {expected}; got {shape_of(y)}"
        )
        raise ValueError(msg)
    keep = _mask(xp, w, x, axis, axes)
    x2 = _classes_last(xp, x, axes)
    if keep is None:
        loss = sparse_softmax_cross_entropy(x2, y, reduction="none")
        return half_back(xp, loss, x.dtype)
    ids, bad = int64_class_ids(xp, y, x2.shape[-1], None)
    keep2 = _classes_last(xp, keep, axes)
    kept = xp.any(keep2, axis=-1)
    work = compute_dtype(xp, x.dtype)
    xc = cast(xp, x2, work)
    # optax: logsumexp(z, where=where) - z_y, with z_y read whether or not it is kept
    xm = _fill(xp, keep2, xc, -math.inf)
    xm = _fill(xp, xp.broadcast_to(kept[..., None], shape_of(xm)), xm, 0.0)
    safe = xp.where(kept, xp.clip(ids, 0, x2.shape[-1] - 1), xp.zeros_like(ids))
    z_y = xp.take_along_axis(xc, safe[..., None], axis=-1)[..., 0]
    loss = activations.logsumexp(xm, axis=-1) - z_y
    loss = poisoned(xp, xp.where(kept, loss, xp.zeros_like(loss)), bad)
    return half_back(xp, loss, x.dtype)


@framework_semantics
def smooth_labels(labels: Any, alpha: float, *, axis: Axis = -1, where: Any = None) -> Array:
    r"""``optax.losses.smooth_labels``: ``(1 - α) y + α / C``, label smoothing.

    ``C`` is the number of entries along ``axis`` (an int, a tuple of ints, or
    None for all), or with ``where`` the number of kept entries there (every
    entry is smoothed; ``α / 0 = inf`` where none is kept, as optax).  The
    result has the labels' (floating) dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.smooth_labels(np.array([[0.0, 1.0, 0.0, 0.0]]), 0.2)
    array([[0.05, 0.85, 0.05, 0.05]])

    References
    ----------
    Müller, Kornblith, Hinton, "When Does Label Smoothing Help?", NeurIPS 2019.
    """
    xp, y, w = namespace(labels, where, names=("where",))
    check_floating(xp, "labels", y)
    axes = _axes(axis, y.ndim, "labels")
    if w is None:
        count: Any = math.prod(shape_of(y)[a] for a in axes)
        share = alpha / count if count else math.inf
    else:
        keep = _mask(xp, w, y, axis, axes)
        count = xp.sum(cast(xp, keep, y.dtype), axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):
            share = alpha / count
    return (1.0 - alpha) * y + share


# --------------------------------------------------------------------------- margins


@framework_semantics
def hinge_loss(predictor_outputs: Any, targets: Any) -> Array:
    r"""``optax.losses.hinge_loss``: ``max(0, 1 - y s)`` per element.

    .. math::
        \ell = \max(0, 1 - y s), \qquad
        \frac{\partial \ell}{\partial s} = -y\,[1 - y s > 0] \quad (-y/2 \text{ at the kink})

    ``targets`` are used as given (optax expects -1/1 and does not read 0/1
    as the core's :func:`losskit.losses.margin.hinge` does) and broadcast
    against the scores; the slope at the kink is 1/2, ``jnp.maximum``'s.
    Computed as the core's hinge of the margin ``y s`` against the target 1.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.hinge_loss(np.array([2.0, 0.5, -1.0]), np.array([1, 1, 0]))
    array([0. , 0.5, 1. ])
    """
    xp, s, y = _arrays(predictor_outputs, targets, names=("predictor_outputs", "targets"))
    dtype, s, y = _promoted(xp, s, y)
    _floating(xp, "predictor_outputs", s)
    m = s * y  # optax: no 0/1 -> -1/1 reading; max(0, 1 - m) is the core's hinge of m against 1
    return half_back(xp, hinge(m, xp.ones_like(m), reduction="none"), dtype)


@framework_semantics
def perceptron_loss(predictor_outputs: Any, targets: Any) -> Array:
    r"""``optax.losses.perceptron_loss``: ``max(0, -y s)`` per element.

    .. math::
        \ell = \max(0, -y s), \qquad
        \frac{\partial \ell}{\partial s} = -y\,[y s < 0] \quad (-y/2 \text{ at } s = 0)

    ``targets`` (-1/1 in optax's words, any value computed) must have the
    scores' shape.  The core's :func:`losskit.losses.margin.perceptron`.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.perceptron_loss(np.array([2.0, 0.5, 0.0]), np.array([1.0, -1.0, 1.0]))
    array([0. , 0.5, 0. ])
    """
    xp, s, y = _arrays(predictor_outputs, targets, names=("predictor_outputs", "targets"))
    _same_shape(("predictor_outputs", "targets"), s, y)
    dtype, s, y = _promoted(xp, s, y)
    _floating(xp, "predictor_outputs", s)
    return half_back(xp, perceptron(s, y, reduction="none"), dtype)


def _multiclass(scores: Any, labels: Any, core: Callable[..., Array]) -> Array:
    xp, s, y = _arrays(scores, labels, names=("scores", "labels"))
    _floating(xp, "scores", s)
    return half_back(xp, core(s, y, reduction="none"), s.dtype)


@framework_semantics
def multiclass_hinge_loss(scores: Any, labels: Any) -> Array:
    r"""``optax.losses.multiclass_hinge_loss``: ``max_c (s_c + [c ≠ y]) - s_y``.

    .. math::
        \frac{\partial \ell}{\partial s_c} = a_c - [c = y]

    with ``a`` 1 at the maximising class, split equally among ties
    (``jnp.max``'s rule).  Scores ``(..., C)``, integer labels ``(...)``.  The
    core's :func:`losskit.losses.margin.multiclass_hinge`.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.multiclass_hinge_loss(np.array([[2.0, 1.5, -1.0]]), np.array([0]))
    array([0.5])
    """
    return _multiclass(scores, labels, multiclass_hinge)


@framework_semantics
def multiclass_perceptron_loss(scores: Any, labels: Any) -> Array:
    r"""``optax.losses.multiclass_perceptron_loss``: ``max_c s_c - s_y``.

    .. math::
        \frac{\partial \ell}{\partial s_c} = a_c - [c = y]

    (``a`` as in :func:`multiclass_hinge_loss`).  The core's
    :func:`losskit.losses.margin.multiclass_perceptron`.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.multiclass_perceptron_loss(np.array([[2.0, 1.5, -1.0]]), np.array([1]))
    array([0.5])
    """
    return _multiclass(scores, labels, multiclass_perceptron)


# --------------------------------------------------------------------------- sparsemax


@framework_semantics
def sparsemax_loss(logits: Any, labels: Any) -> Array:
    r"""``optax.losses.sparsemax_loss``: the binary sparsemax loss, ``sparse_plus(∓z)``.

    .. math::
        \ell = \mathrm{sparse\_plus}(u), \quad u = -z \text{ if } y \ne 0 \text{ else } z,
        \quad \mathrm{sparse\_plus}(u) = \begin{cases} 0 & u \le -1 \\
        (u + 1)^2 / 4 & |u| < 1 \\ u & u \ge 1 \end{cases}

    with ``∂ℓ/∂u = clip((u + 1)/2, 0, 1)``.  Computed as the core's
    :func:`losskit.sparsemax_loss` of the two scores ``[0, z]`` against the
    class ``[y ≠ 0]``; labels broadcast against the logits.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.sparsemax_loss(np.array([2.0, 0.0, -0.5]), np.array([1, 1, 0]))
    array([0.    , 0.25  , 0.0625])

    References
    ----------
    Blondel, Martins, Niculae, "Learning with Fenchel-Young Losses", JMLR 2020 (section 4.4).
    """
    xp, z, y = _arrays(logits, labels, names=("logits", "labels"))
    _floating(xp, "logits", z)
    z, y = _broadcast(xp, ("logits", "labels"), z, y)
    # optax: any nonzero label is the positive class
    two = xp.stack([xp.zeros_like(z), z], axis=-1)
    cls = xp.astype(y != 0, xp.int64)
    return half_back(xp, sparsemax_loss_core(two, cls, reduction="none"), z.dtype)


@framework_semantics
def multiclass_sparsemax_loss(scores: Any, labels: Any) -> Array:
    r"""``optax.losses.multiclass_sparsemax_loss``: the sparsemax (Fenchel-Young) loss.

    .. math::
        \ell = \langle p, s - s_y \rangle + \tfrac12 (1 - \|p\|^2), \quad
        p = \mathrm{sparsemax}(s), \qquad
        \frac{\partial \ell}{\partial s} = p - \mathrm{onehot}(y)

    Scores ``(N, C)`` (optax ``vmap``s over the rows) and integer labels
    ``(N,)``.  The core's :func:`losskit.sparsemax_loss`.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.multiclass_sparsemax_loss(np.array([[1.0, 0.5, -1.0]]), np.array([0]))
    array([0.0625])

    References
    ----------
    Martins, Astudillo, "From Softmax to Sparsemax", ICML 2016.
    """
    xp, s, y = _arrays(scores, labels, names=("scores", "labels"))
    _floating(xp, "scores", s)
    if s.ndim != 2:
        msg = f"`scores` must be a matrix (N, C), as optax's vmap over rows; got {shape_of(s)}"
        raise ValueError(msg)
    return half_back(xp, sparsemax_loss_core(s, y, reduction="none"), s.dtype)


def make_fenchel_young_loss(max_fun: Callable[..., Any]) -> Callable[..., Array]:
    r"""``optax.losses.make_fenchel_young_loss``: the Fenchel-Young loss of a max function.

    .. math::
        \ell(s, y) = \Omega^*(s) - \langle y, s \rangle, \qquad
        \frac{\partial \ell}{\partial s} = \nabla \Omega^*(s) - y

    over the last axis, ``Ω*`` being ``max_fun`` (e.g. ``logsumexp``, whose
    loss is softmax cross-entropy).  The returned
    ``fenchel_young_loss(scores, targets, *args, **kwargs)`` passes the extra
    arguments to ``max_fun``.

    On JAX arrays it is optax's: ``max_fun`` is applied to each row through
    ``jnp.vectorize`` (so any JAX function of one vector works, and
    ``jax.grad`` differentiates it).  On NumPy arrays and torch tensors there
    is no ``vectorize``: ``max_fun`` is called once on the whole
    ``(..., n)`` array and must reduce its last axis, returning shape
    ``(...)`` — :func:`losskit.logsumexp` does, on every kind of array (and so
    torch autograd goes through it); ``jax.scipy.special.logsumexp`` and
    ``jax.nn.logsumexp`` are taken as :func:`losskit.logsumexp` there.  A
    result of another shape raises ``ValueError``.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> from losskit.compat import optax
    >>> fy = optax.make_fenchel_young_loss(lk.logsumexp)
    >>> s, y = np.array([[1.2, -0.8, -0.5]]), np.array([[1.0, 0.0, 0.0]])
    >>> fy(s, y).round(4)  # softmax cross-entropy
    array([0.2761])

    References
    ----------
    Blondel, Martins, Niculae, "Learning with Fenchel-Young Losses", JMLR 2020.
    """
    if not callable(max_fun):
        msg = f"`max_fun` must be a callable (a max function of a vector); got {max_fun!r}"
        raise TypeError(msg)

    def fenchel_young_loss(scores: Any, targets: Any, *args: Any, **kwargs: Any) -> Array:
        xp, s, y = namespace(scores, targets, names=("targets",))
        _floating(xp, "scores", s)
        if s.ndim == 0:
            msg = "`scores` must have a last axis to take the max over; got a 0-d array"
            raise ValueError(msg)
        if array_api_compat.is_jax_array(s):
            import jax.numpy as jnp

            # optax: jnp.vectorize of max_fun and of vdot over the last axis
            max_rows = jnp.vectorize(max_fun, signature="(n)->()")
            vdot_rows = jnp.vectorize(jnp.vdot, signature="(n),(n)->()")
            return max_rows(s, *args, **kwargs) - vdot_rows(y, s)
        fn = _losskit_max(max_fun)
        top = fn(s, *args, **kwargs)
        if not array_api_compat.is_array_api_obj(top) or shape_of(top) != shape_of(s)[:-1]:
            got = shape_of(top) if array_api_compat.is_array_api_obj(top) else type(top).__name__
            msg = (
                f"`max_fun` must reduce the last axis of `scores` {shape_of(s)} to "
                f"{shape_of(s)[:-1]} on {type(s).__module__.split('.')[0]} arrays (a losskit-aware "
                f"max such as losskit.logsumexp); got {got}"
            )
            raise ValueError(msg)
        s, y = _broadcast(xp, ("scores", "targets"), s, y)
        return top - xp.sum(y * s, axis=-1)  # optax: vdot(targets, scores) per row

    fenchel_young_loss.__doc__ = (
        f"The Fenchel-Young loss of {getattr(max_fun, '__name__', max_fun)}."
    )
    return fenchel_young_loss


def _losskit_max(max_fun: Callable[..., Any]) -> Callable[..., Any]:
    """JAX's logsumexps reduce one vector under ``vectorize``; off JAX they are losskit's."""
    module = getattr(max_fun, "__module__", "") or ""
    if getattr(max_fun, "__name__", "") == "logsumexp" and module.startswith("jax"):
        return activations.logsumexp
    return max_fun


# --------------------------------------------------------------------------- divergences


def _divergence(
    log_predictions: Any, targets: Any, axis: Axis, where: Any, names: tuple[str, str]
) -> tuple[Any, Array, Array, Array | None, tuple[int, ...], Any]:
    xp, lp, t, w = namespace(log_predictions, targets, where, names=(names[1], "where"))
    check_floating(xp, names[0], lp)
    check_floating(xp, names[1], t)  # optax: check_subdtype(targets, floating)
    dtype, lp, t = _promoted(xp, lp, t)
    lp, t = _broadcast(xp, names, lp, t)
    axes = _axes(axis, lp.ndim, names[0])
    return xp, lp, t, _mask(xp, w, lp, axis, axes), axes, dtype


def _kl(xp: Any, lp: Array, t: Array, keep: Any, axes: Any, *, log_target: bool) -> Array:
    """The core's KL over ``axes`` with ``where``'s masked terms out (as targets of 0)."""
    if keep is not None:
        lp = _fill(xp, keep, lp, 0.0)
        t = _fill(xp, keep, t, -math.inf if log_target else 0.0)
    return kl_divergence_core(
        _classes_last(xp, lp, axes),
        _classes_last(xp, t, axes),
        log_target=log_target,
        reduction="none",
    )


@framework_semantics
def kl_divergence(log_predictions: Any, targets: Any, axis: Axis = -1, where: Any = None) -> Array:
    r"""``optax.losses.kl_divergence``: ``KL(targets ‖ predictions)`` per example.

    .. math::
        \ell = \sum_c t_c (\log t_c - \log q_c), \qquad
        \frac{\partial \ell}{\partial \log q_c} = -t_c, \quad
        \frac{\partial \ell}{\partial t_c} = \log t_c + 1 - \log q_c

    with ``t log t = 0`` at ``t = 0`` (where the derivative in ``t`` is
    ``-log q_c``: optax's is NaN there).  As optax, a target of 0 against a
    ``-inf`` log-prediction makes the example NaN.  ``axis`` (an int, a tuple
    or None) is summed over; ``where`` leaves terms out.  The core's
    :func:`losskit.kl_divergence`.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> t, q = np.array([[0.5, 0.5, 0.0]]), np.array([[0.25, 0.5, 0.25]])
    >>> optax.kl_divergence(np.log(q), t).round(6)  # ½ log 2
    array([0.346574])

    References
    ----------
    Kullback, Leibler, "On Information and Sufficiency", Ann. Math. Statist. 22(1), 1951.
    """
    xp, lp, t, keep, axes, dtype = _divergence(
        log_predictions, targets, axis, where, ("log_predictions", "targets")
    )
    loss = _kl(xp, lp, t, keep, axes, log_target=False)
    return half_back(xp, _optax_nan(xp, loss, t, lp, keep, axes), dtype)


@framework_semantics
def kl_divergence_with_log_targets(
    log_predictions: Any, log_targets: Any, axis: Axis = -1, where: Any = None
) -> Array:
    r"""``optax.losses.kl_divergence_with_log_targets``: KL with targets in log space.

    .. math::
        \ell = \sum_c e^{s_c} (s_c - \log q_c), \qquad
        \frac{\partial \ell}{\partial \log q_c} = -e^{s_c}, \quad
        \frac{\partial \ell}{\partial s_c} = e^{s_c} (s_c + 1 - \log q_c)

    As optax, a log-target of ``-inf`` (a target probability of 0) makes the
    example NaN (``0 * inf``; the core's :func:`losskit.kl_divergence` with
    ``log_target=True``, which computes the rest, counts it 0).  ``axis`` and
    ``where`` as in :func:`kl_divergence`.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> t, q = np.array([[0.5, 0.25, 0.25]]), np.array([[0.25, 0.5, 0.25]])
    >>> optax.kl_divergence_with_log_targets(np.log(q), np.log(t)).round(6)  # ¼ log 2
    array([0.173287])
    """
    xp, lp, s, keep, axes, dtype = _divergence(
        log_predictions, log_targets, axis, where, ("log_predictions", "log_targets")
    )
    loss = _kl(xp, lp, s, keep, axes, log_target=True)
    # optax: exp(-inf) * (-inf - log q) is 0 * -inf = NaN
    corner = s == -math.inf
    if keep is not None:
        corner = corner & keep
    return half_back(xp, poisoned(xp, loss, xp.any(corner, axis=axes)), dtype)


@framework_semantics
def generalized_kl_divergence(
    log_predictions: Any, targets: Any, axis: Axis = -1, where: Any = None
) -> Array:
    r"""``optax.losses.generalized_kl_divergence``: KL of unnormalised measures.

    .. math::
        \ell = \sum_c \big(t_c (\log t_c - \log q_c) + q_c - t_c\big), \qquad
        \frac{\partial \ell}{\partial \log q_c} = q_c - t_c

    the Bregman divergence of ``x log x - x``: :func:`kl_divergence` plus
    ``Σ (e^{log q} - t)``, with its conventions, ``axis`` and ``where``.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.generalized_kl_divergence(np.log(np.array([[0.5, 1.0]])), np.array([[1.0, 1.0]]))
    array([0.19314718])

    References
    ----------
    Boyd, Vandenberghe, *Convex Optimization*, 2004, p. 90.
    """
    xp, lp, t, keep, axes, dtype = _divergence(
        log_predictions, targets, axis, where, ("log_predictions", "targets")
    )
    loss = _optax_nan(xp, _kl(xp, lp, t, keep, axes, log_target=False), t, lp, keep, axes)
    work = compute_dtype(xp, dtype)
    extra = xp.exp(cast(xp, lp, work)) - cast(xp, t, work)
    if keep is not None:
        extra = xp.where(keep, extra, xp.zeros_like(extra))
    return half_back(xp, loss + xp.sum(extra, axis=axes), dtype)


def convex_kl_divergence(
    log_predictions: Any, targets: Any, axis: Axis = -1, where: Any = None
) -> Array:
    """``optax.losses.convex_kl_divergence``: deprecated, :func:`generalized_kl_divergence`.

    Gives optax's ``DeprecationWarning`` and the numbers of
    :func:`generalized_kl_divergence`.

    Examples
    --------
    >>> import numpy as np, warnings
    >>> from losskit.compat import optax
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     v = optax.convex_kl_divergence(np.log(np.array([[0.5, 1.0]])), np.array([[1.0, 1.0]]))
    >>> str(seen[0].message)
    'The function convex_kl_divergence is deprecated. Please use generalized_kl_divergence instead.'
    """
    msg = (
        "The function convex_kl_divergence is deprecated. "
        "Please use generalized_kl_divergence instead."
    )
    warnings.warn(msg, DeprecationWarning, stacklevel=2)  # optax: warn_deprecated_function
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)


# --------------------------------------------------------------------------- regression


def _errors_pair(
    predictions: Any, targets: Any, *, broadcast: bool
) -> tuple[Any, Any, Array, Array]:
    """``(xp, dtype, predictions, targets)``, zeros for targets None (optax's default)."""
    xp, p, t = _arrays(predictions, targets, names=("predictions", "targets"))
    _floating(xp, "predictions", p)
    if t is None:
        t = xp.zeros_like(p)
    elif broadcast:
        p, t = _broadcast(xp, ("predictions", "targets"), p, t)
    else:
        _same_shape(("predictions", "targets"), p, t)  # optax: check_shapes_equal
    dtype, p, t = _promoted(xp, p, t)
    return xp, dtype, p, t


@framework_semantics
def squared_error(predictions: Any, targets: Any = None) -> Array:
    r"""``optax.losses.squared_error``: ``(p - t)^2`` per element.

    ``∂ℓ/∂p = 2 (p - t)``.  ``targets`` (zeros when None) must have the
    predictions' shape.  The core's :func:`losskit.mean_squared_error`.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.squared_error(np.array([2.5, 0.0]), np.array([3.0, -0.5]))
    array([0.25, 0.25])
    """
    xp, dtype, p, t = _errors_pair(predictions, targets, broadcast=False)
    return half_back(xp, mean_squared_error(p, t, reduction="none"), dtype)


@framework_semantics
def l2_loss(predictions: Any, targets: Any = None) -> Array:
    r"""``optax.losses.l2_loss``: ``(p - t)^2 / 2`` per element.

    ``∂ℓ/∂p = p - t``.  ``targets`` (zeros when None) must have the
    predictions' shape.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.l2_loss(np.array([2.5, 0.0]))
    array([3.125, 0.   ])
    """
    xp, dtype, p, t = _errors_pair(predictions, targets, broadcast=False)
    return half_back(xp, 0.5 * mean_squared_error(p, t, reduction="none"), dtype)


@framework_semantics
def huber_loss(predictions: Any, targets: Any = None, *, delta: float = 1.0) -> Array:
    r"""``optax.losses.huber_loss``: quadratic within ``delta`` of the target, linear beyond.

    .. math::
        \ell = \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
        \delta (|e| - \tfrac12 \delta) & |e| > \delta \end{cases}, \qquad
        \frac{\partial \ell}{\partial p} = \mathrm{clip}(e, -\delta, \delta)

    ``e = p - t``; ``targets`` (zeros when None) broadcast against the
    predictions.  ``delta`` a positive number.  The core's
    :func:`losskit.losses.regression.huber`.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.huber_loss(np.array([0.5, 3.0, -2.0]))
    array([0.125, 2.5  , 1.5  ])
    """
    xp, dtype, p, t = _errors_pair(predictions, targets, broadcast=True)
    return half_back(xp, huber(p, t, delta=delta, reduction="none"), dtype)


@framework_semantics
def log_cosh(predictions: Any, targets: Any = None) -> Array:
    r"""``optax.losses.log_cosh``: ``log cosh(p - t)`` per element.

    ``∂ℓ/∂p = tanh(p - t)``; ``targets`` (zeros when None) broadcast against
    the predictions.  The core's :func:`losskit.losses.regression.log_cosh`,
    exact for small errors too.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> optax.log_cosh(np.array([0.0, 1.0, -30.0])).round(6)
    array([ 0.      ,  0.433781, 29.306853])
    """
    xp, dtype, p, t = _errors_pair(predictions, targets, broadcast=True)
    return half_back(xp, log_cosh_core(p, t, reduction="none"), dtype)


# --------------------------------------------------------------------------- similarity


def _cosine(
    predictions: Any, targets: Any, epsilon: float, axis: Axis, where: Any
) -> tuple[Any, Array, Any]:
    """``(xp, 1 - cos, dtype)``: the core's cosine distance with optax's epsilon, axis and where."""
    xp, p, t, w = namespace(predictions, targets, where, names=("targets", "where"))
    check_floating(xp, "predictions", p)
    check_floating(xp, "targets", t)
    dtype, p, t = _promoted(xp, p, t)
    p, t = _broadcast(xp, ("predictions", "targets"), p, t)
    axes = _axes(axis, p.ndim, "predictions")
    keep = _mask(xp, w, p, axis, axes)
    if keep is not None:  # optax: sums with where=where, for the norms and the product
        p, t = _fill(xp, keep, p, 0.0), _fill(xp, keep, t, 0.0)
    e = float(epsilon)
    # optax clamps the squared norm at epsilon: a norm clamped at sqrt(epsilon)
    eps = math.sqrt(e) if e > 0 else 0.0
    p2, t2 = _classes_last(xp, p, axes), _classes_last(xp, t, axes)
    distance = cosine_distance_core(p2, t2, eps=eps, reduction="none")
    if eps == 0:
        # optax: a zero vector divided by its zero norm is 0/0 = NaN (the core's cosine is 0),
        # unless no entry is kept
        has = math.prod(p2.shape[-1:]) > 0
        kept = xp.any(_classes_last(xp, keep, axes), axis=-1) if keep is not None else has
        zero = ~xp.any(p2 != 0, axis=-1) | ~xp.any(t2 != 0, axis=-1)
        distance = poisoned(xp, distance, zero & kept)
    return xp, distance, dtype


@framework_semantics
def cosine_similarity(
    predictions: Any, targets: Any, *, epsilon: float = 0.0, axis: Axis = -1, where: Any = None
) -> Array:
    r"""``optax.losses.cosine_similarity``: ``cos(p, t)`` along ``axis``.

    .. math::
        \cos = \frac{\langle p, t \rangle}{N(p) N(t)}, \quad
        N(v) = \sqrt{\max(\|v\|^2, \epsilon)}, \qquad
        \frac{\partial \cos}{\partial p} = \frac{1}{N(p)}
        \Big(\frac{t}{N(t)} - \cos\,[\|p\|^2 > \epsilon] \frac{p}{N(p)}\Big)

    ``1 -`` the core's :func:`losskit.cosine_distance` with ``eps =
    sqrt(epsilon)`` (optax clamps the squared norm).  As optax, with
    ``epsilon=0`` (its default) a zero vector gives NaN (``0/0``).  ``axis``
    is an int, a tuple or None; ``where`` leaves entries out of the norms and
    the product; the truth broadcasts against the predictions.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> p, t = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 2.0], [3.0, 3.0]])
    >>> optax.cosine_similarity(p, t)
    array([0., 1.])
    """
    xp, distance, dtype = _cosine(predictions, targets, epsilon, axis, where)
    return half_back(xp, 1 - distance, dtype)


@framework_semantics
def cosine_distance(
    predictions: Any, targets: Any, *, epsilon: float = 0.0, axis: Axis = -1, where: Any = None
) -> Array:
    r"""``optax.losses.cosine_distance``: ``1 - cos(p, t)`` along ``axis``.

    As :func:`cosine_similarity` (its conventions, ``epsilon``, ``axis`` and
    ``where``); the core's :func:`losskit.cosine_distance` with ``eps =
    sqrt(epsilon)``, which forms ``1 - cos`` without cancelling for nearly
    parallel vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> p, t = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 2.0], [3.0, 3.0]])
    >>> optax.cosine_distance(p, t)
    array([1., 0.])
    """
    xp, distance, dtype = _cosine(predictions, targets, epsilon, axis, where)
    return half_back(xp, distance, dtype)


@framework_semantics
def triplet_margin_loss(
    anchors: Any,
    positives: Any,
    negatives: Any,
    axis: int = -1,
    norm_degree: float = 2,
    margin: float = 1.0,
    eps: float = 1e-6,
) -> Array:
    r"""``optax.losses.triplet_margin_loss``: ``max(0, d(a, p) - d(a, n) + margin)``.

    .. math::
        d(x, y) = \Big(\sum_i (x_i - y_i)^q + \epsilon\Big)^{1/q}, \qquad
        \frac{\partial \ell}{\partial a} = [\ell > 0]
        \Big(\frac{\partial d(a, p)}{\partial a} - \frac{\partial d(a, n)}{\partial a}\Big)

    with ``q = norm_degree`` and the slope 1/2 at the kink (``jnp.maximum``).
    The core's :func:`losskit.triplet_margin` with ``eps_at="sum"``.  optax
    raises the differences to the power ``q`` without ``abs``, which is a
    distance for an even ``q`` only: any other ``norm_degree`` (for which
    optax returns a signed sum, or NaN) raises ``ValueError``; use
    :func:`losskit.triplet_margin` for the p-norm.  The arrays broadcast
    against each other.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> a, p = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[0.1, 0.1], [1.1, 1.1]])
    >>> optax.triplet_margin_loss(a, p, np.array([[1.0, 0.0], [0.0, 1.0]])).round(4)
    array([0.1414, 0.1414])
    """
    xp, a, p, n = namespace(anchors, positives, negatives, names=("positives", "negatives"))
    for name, v in (("anchors", a), ("positives", p), ("negatives", n)):
        check_floating(xp, name, v)
    q = norm_degree
    if not (isinstance(q, numbers.Real) and float(q) > 0 and float(q) % 2 == 0):
        msg = (
            "`norm_degree` must be an even number (optax raises the differences to it "
            f"without abs, a distance only for an even degree); got {norm_degree!r}"
        )
        raise ValueError(msg)
    dtype, a, p, n = _promoted(xp, a, p, n)
    try:
        shape = np.broadcast_shapes(shape_of(a), shape_of(p), shape_of(n))
    except ValueError:
        msg = (
            f"`anchors` {shape_of(a)}, `positives` {shape_of(p)} and `negatives` "
            f"{shape_of(n)} must broadcast together"
        )
        raise ValueError(msg) from None
    a, p, n = (xp.broadcast_to(v, shape) for v in (a, p, n))
    axes = _axes(axis, len(shape), "anchors")
    loss = triplet_margin(
        *(_classes_last(xp, v, axes) for v in (a, p, n)),
        p=float(q),
        margin=margin,
        eps=eps,
        eps_at="sum",
        reduction="none",
    )
    return half_back(xp, loss, dtype)


@framework_semantics
def ntxent(embeddings: Any, labels: Any, temperature: float = 0.07) -> Array:
    r"""``optax.losses.ntxent``: NT-Xent, the mean over all positive pairs.

    .. math::
        \ell = \frac{1}{\sum_i |P(i)|} \sum_i \sum_{j \in P(i)}
        -\log \frac{e^{a_{ij}}}{e^{a_{ij}} + \sum_{k \in N(i)} e^{a_{ik}}}, \quad
        a = \cos / T

    a scalar: the core's :func:`losskit.ntxent` with each anchor weighted by
    its number of positives ``|P(i)|`` (derivatives there).  As optax, a
    batch without a positive pair is NaN (``0/0``).  ``embeddings`` ``(N,
    D)``, integer ``labels`` ``(N,)``.  The core divides by
    ``max(|e|, eps)``, optax by ``sqrt(max(|e|^2, eps))`` (``eps`` the
    dtype's machine epsilon): they agree for embeddings longer than
    ``sqrt(eps)`` (1.5e-8 in float64, 3.5e-4 in float32).

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> e = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    >>> round(float(optax.ntxent(e, np.array([0, 0, 1, 1]), temperature=1.0)), 6)
    0.551445
    """
    xp, e, y = namespace(embeddings, labels, names=("labels",))
    check_floating(xp, "embeddings", e)
    if y.ndim == 0 or e.ndim == 0 or y.shape[0] != e.shape[0]:
        msg = (
            "`labels` and `embeddings` must have the same leading dimension; got "
            f"{shape_of(y)} for labels and {shape_of(e)} for embeddings"
        )
        raise ValueError(msg)
    same = y[:, None] == y[None, :]
    positives = xp.sum(cast(xp, same, compute_dtype(xp, e.dtype)), axis=1) - 1
    loss = ntxent_core(e, y, temperature=temperature, sample_weight=positives, reduction="mean")
    # optax: the mean over no positive pair is 0/0
    return half_back(xp, poisoned(xp, loss, xp.sum(positives) == 0), e.dtype)


# --------------------------------------------------------------------------- ranking


def _reducer(reduce_fn: Any) -> str | None:
    """``jnp.mean``/``jnp.sum`` (or NumPy's, torch's, "mean"/"sum") as a name; None for none."""
    if reduce_fn is None or reduce_fn in ("mean", "sum"):
        return reduce_fn
    name = getattr(reduce_fn, "__name__", "")
    module = getattr(reduce_fn, "__module__", "") or ""
    if name in ("mean", "sum") and module.split(".")[0] in ("jax", "numpy", "torch"):
        return name
    return "call"


@framework_semantics
def ranking_softmax_loss(
    logits: Any,
    labels: Any,
    *,
    where: Any = None,
    weights: Any = None,
    reduce_fn: Any = "mean",
) -> Array:
    r"""``optax.losses.ranking_softmax_loss``: listwise softmax cross-entropy of relevances.

    .. math::
        \ell = -\sum_i y_i \log \mathrm{softmax}(s)_i, \qquad
        \frac{\partial \ell}{\partial s} = \Big(\sum_i y_i\Big) \mathrm{softmax}(s) - y

    over the last axis, per list; labels take the logits' dtype and are
    multiplied by ``weights``; ``where`` leaves items out (their score
    ``-inf``, their label 0: the core's :func:`losskit.ranking_softmax`) and
    a list without a kept item out of the reduction.  ``reduce_fn`` is
    optax's: ``jnp.mean`` (the default, written ``"mean"`` here; 0 rather
    than NaN when no list is kept), ``jnp.sum``, None (one loss per list, 0
    for a list without a kept item) or any function called as
    ``reduce_fn(loss, where=lists)``; NumPy's and torch's ``mean`` and
    ``sum`` are taken as JAX's.  As optax, an item kept with score ``-inf``
    and label 0 makes its list NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> scores, labels = np.array([2.0, 1.0, 3.0]), np.array([1.0, 0.0, 0.0])
    >>> round(float(optax.ranking_softmax_loss(scores, labels)), 3)
    1.408
    """
    xp, s, y, w, wt = namespace(
        logits, labels, where, weights, names=("labels", "where", "weights")
    )
    check_floating(xp, "logits", s)
    s, y = _broadcast(xp, ("logits", "labels"), s, cast(xp, y, s.dtype))  # optax: astype(logits)
    if s.ndim == 0:
        msg = "`logits` must have a list axis (at least 1 dimension); got a 0-d array"
        raise ValueError(msg)
    how = _reducer(reduce_fn)
    keep = _mask(xp, w, s, -1, (s.ndim - 1,))
    if keep is not None:
        y, s = _fill(xp, keep, y, 0.0), _fill(xp, keep, s, -math.inf)
    if wt is not None:
        y = y * cast(xp, wt, y.dtype)
    loss = ranking_softmax(s, y, reduction="none")
    loss = _optax_nan(xp, loss, y, s, keep, (s.ndim - 1,))
    lists = None if keep is None else xp.any(keep, axis=-1)
    if how == "call":
        return reduce_fn(loss, where=lists)
    if how is None:
        return half_back(xp, loss if lists is None else xp.where(lists, loss, 0 * loss), s.dtype)
    if lists is None:
        total, count = xp.sum(loss), math.prod(shape_of(loss))
        out = total if how == "sum" else total / count if count else total * math.nan
        return half_back(xp, out, s.dtype)
    total = xp.sum(xp.where(lists, loss, xp.zeros_like(loss)))
    if how == "sum":
        return half_back(xp, total, s.dtype)
    count = xp.sum(cast(xp, lists, loss.dtype))
    # optax (_safe_reduce): a mean over no list is 0, unless a loss is NaN
    nan = xp.any(xp.isnan(loss))
    empty = count == 0
    mean = total / xp.where(empty, xp.ones_like(count), count)
    hidden = xp.where(empty & nan, xp.full_like(mean, math.nan), xp.zeros_like(mean))
    return half_back(xp, mean + hidden, s.dtype)


# --------------------------------------------------------------------------- segmentation


def _check_distributions(xp: Any, p: Array) -> None:
    """optax: with apply_softmax=False the predictions must sum to 1 along the class axis."""
    found = readable(xp, p)
    if found is None or math.prod(shape_of(p)) == 0:
        return
    rxp, v = found
    sums = rxp.sum(v, axis=-1)
    if not bool(rxp.all(rxp.abs(sums - 1.0) <= 1e-8 + 1e-5)):
        msg = (
            "When apply_softmax=False, predictions must be valid probability distributions "
            "that sum to 1 along the class axis. Found sum range: "
            f"[{float(rxp.min(sums)):.6f}, {float(rxp.max(sums)):.6f}]"
        )
        raise ValueError(msg)


def _dice_core(
    xp: Any,
    p: Array,
    t: Array,
    cw: Array | None,
    smooth: float,
    alpha: float,
    beta: float,
    apply_softmax: bool,
    reduction: str,
    ignore_background: bool,
    axis: Any,
) -> Array:
    if p.ndim == t.ndim - 1:  # optax: a missing class axis is added
        p = p[..., None]
    if t.ndim == p.ndim - 1:
        t = t[..., None]
    _same_shape(("predictions", "targets"), p, t)
    if reduction not in ("mean", "sum", "none"):
        msg = f"Unsupported reduction: {reduction}"
        raise ValueError(msg)
    check_floating(xp, "predictions", p)
    dtype, p, t = _promoted(xp, p, t)
    if not apply_softmax:
        _check_distributions(xp, p)
        probs = p
    elif p.shape[-1] == 1:
        probs = activations.sigmoid(p)
    else:
        probs = activations.softmax(p, axis=-1)
    axes = tuple(range(1, p.ndim - 1)) if axis is None else axis
    loss = tversky(
        probs, t, alpha=alpha, beta=beta, axis=axes, smooth=smooth, eps=0.0, reduction="none"
    )
    if cw is not None:
        if cw.ndim != 1:
            msg = f"`class_weights` must have rank 1 (one weight per class); got {shape_of(cw)}"
            raise ValueError(msg)
        loss = loss * cast(xp, cw, loss.dtype)
    if ignore_background and p.shape[-1] > 1:
        loss = loss[..., 1:]  # optax: the first class (background) left out
    if reduction == "mean":
        loss = xp.mean(loss, axis=-1)
    elif reduction == "sum":
        loss = xp.sum(loss, axis=-1)
    return half_back(xp, loss, dtype)


@framework_semantics
def dice_loss(
    predictions: Any,
    targets: Any,
    *,
    class_weights: Any = None,
    smooth: float = 1.0,
    alpha: float = 0.5,
    beta: float = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis: Any = None,
) -> Array:
    r"""``optax.losses.dice_loss``: one Dice (Tversky) loss per class, reduced over the classes.

    .. math::
        \ell_c = 1 - \frac{I_c + s}{I_c + \alpha (P_c - I_c) + \beta (T_c - I_c) + s},
        \quad I_c = \sum p_c t_c,\ P_c = \sum p_c,\ T_c = \sum t_c

    with ``p`` the softmax of the logits over the last (class) axis (the
    sigmoid for one class; the predictions as given with
    ``apply_softmax=False``, which must then sum to 1 over the classes), the
    sums over ``axis`` (default: every axis but the first and the last),
    then ``class_weights``, ``ignore_background`` (class 0 left out) and
    ``reduction`` over the classes (``"none"`` keeps them).  The core's
    :func:`losskit.tversky` per class (its derivatives); ``smooth`` must be
    > 0 (optax's 0 gives 0/0 for an empty class).

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> z = np.array([[1.0, -1.0], [0.5, 0.5]])[..., None]
    >>> optax.dice_loss(z, np.array([[1.0, 0.0], [1.0, 0.0]])[..., None]).round(6)
    array([0.134471, 0.235576])
    """
    xp, p, t, cw = namespace(
        predictions, targets, class_weights, names=("targets", "class_weights")
    )
    return _dice_core(
        xp, p, t, cw, smooth, alpha, beta, apply_softmax, reduction, ignore_background, axis
    )


@framework_semantics
def binary_dice_loss(
    predictions: Any, targets: Any, *, smooth: float = 1.0, apply_sigmoid: bool = True
) -> Array:
    r"""``optax.losses.binary_dice_loss``: :func:`dice_loss` of one class (sigmoid).

    Predictions and targets ``(...)`` or ``(..., 1)``; one loss per example
    (the first axis), the sums over the others.  As optax, with
    ``apply_sigmoid=False`` the predictions must sum to 1 over their last
    axis of size 1, that is be 1 (optax's check).

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> z, t = np.array([[2.0, -1.0, 0.0]]), np.array([[1.0, 0.0, 1.0]])
    >>> optax.binary_dice_loss(z, t).round(6)
    array([0.157201])
    """
    xp, p, t = namespace(predictions, targets, names=("targets",))
    if p.ndim == t.ndim and p.ndim > 0 and p.shape[-1] != 1:  # optax: a class axis of 1
        p, t = p[..., None], t[..., None]
    return _dice_core(xp, p, t, None, smooth, 0.5, 0.5, apply_sigmoid, "mean", False, None)


@framework_semantics
def multiclass_generalized_dice_loss(
    predictions: Any,
    targets: Any,
    *,
    smooth: float = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> Array:
    r"""``optax.losses.multiclass_generalized_dice_loss``: class-weighted mean of per-class Dice.

    .. math::
        \ell = \operatorname{mean}_{n, c}\ w_c\, \ell_{n, c}, \qquad
        w_c = C \frac{1 / (F_c^2 + 10^{-7})}{\sum_k 1 / (F_k^2 + 10^{-7})}

    a scalar, with ``ℓ_{n, c}`` :func:`dice_loss`'s per-class losses and
    ``F_c`` the target's total for class ``c`` over the whole batch (optax's
    weighting, not Sudre et al.'s pooled ratio of :func:`losskit.generalized_dice`).

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> t = np.eye(2)[np.array([[0, 0, 1], [1, 1, 1]])]
    >>> z = np.log(np.full((2, 3, 2), 0.5))
    >>> round(float(optax.multiclass_generalized_dice_loss(z, t)), 6)
    0.33693
    """
    xp, p, t = namespace(predictions, targets, names=("targets",))
    _same_shape(("predictions", "targets"), p, t)
    # optax: weights 1 / (F_c^2 + 1e-7) from the whole batch's class totals, scaled to sum to C
    tt = t if _is_float(xp, t) else cast(xp, t, p.dtype)
    freq = xp.sum(tt, axis=tuple(range(t.ndim - 1))) if t.ndim > 1 else tt
    w = 1.0 / (freq**2 + 1e-7)
    w = w / xp.sum(w) * w.shape[0]
    per = _dice_core(xp, p, t, w, smooth, 0.5, 0.5, apply_softmax, "none", ignore_background, None)
    return xp.mean(per)


# ctc_loss and ctc_loss_with_forward_probs live with the CTC work (imported last).
from ._optax_ctc import (  # noqa: E402
    ctc_loss,
    ctc_loss_with_forward_probs,
)

__all__ += [
    "ctc_loss",
    "ctc_loss_with_forward_probs",
]
