"""Similarity and pairwise losses: cosine distance and embedding, margin ranking, triplet.

Each loss is one definition through :func:`losskit._define.multi_array_loss`.
Two things are shared:

- The cosine of two vectors, ``<x, y> / (N(x) N(y))``.  Each vector is first
  divided by its largest magnitude (held without gradient), so no square is
  ever formed of a large element: vectors of 1e30 in float32 (whose squares
  overflow) or of 1e-30 (whose squares underflow) give their exact cosine.
  ``N`` is the norm clamped from below, ``max(|x|, eps)`` (optax's and
  Keras's rule; the core's), or PyTorch's ``sqrt(|x|^2 + 1e-12)`` in the
  torch adapter (:func:`torch_norms`).  A zero vector has cosine 0 with
  anything (for ``eps = 0`` too, where the formula is 0/0), and there the
  derivative is that of the clamped norm (0 for ``eps = 0``).
- The p-norm distance ``|x - y + eps|_p`` (PyTorch's ``pairwise_distance``)
  or ``(sum |x - y|^p + eps)^(1/p)`` (optax's), scaled the same way.

The hinges are :mod:`losskit.losses.margin`'s: slope 1/2 at the kink in the
core, the framework's in an adapter (``_config.kink_slope``).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import Any

from .. import _config
from .._backend import Array, device_of, is_dtype, stop_gradient
from .._define import multi_array_loss
from .._validation import check_real
from .likelihood import check_flag
from .margin import _positive, _slope, check_signs

__all__: list[str] = ["cosine_distance", "cosine_embedding", "margin_ranking", "triplet_margin"]

# --------------------------------------------------------------------------- norms and cosines

# PyTorch's cosine_embedding_loss adds EPSILON = 1e-12 to each squared norm, a C++
# float constant: float32(1e-12), also for float64 input.
_TORCH_SQUARED_EPS = 9.999999960041972e-13
_norms = threading.local()  # read inside a trace: a thread-local, as _config's switches


@contextlib.contextmanager
def torch_norms() -> Iterator[None]:
    """Inside the block a cosine's norms are PyTorch's ``sqrt(|x|^2 + 1e-12)`` (for compat)."""
    before = getattr(_norms, "torch", False)
    _norms.torch = True
    try:
        yield
    finally:
        _norms.torch = before


def _max_abs(xp: Any, x: Array) -> Array:
    """``max |x|`` over the last axis (kept), without gradient; 1 where that is 0 (or no axis)."""
    if x.shape[-1] == 0:  # no features: a zero vector
        return xp.ones((*x.shape[:-1], 1), dtype=x.dtype, device=device_of(x))
    a = stop_gradient(xp, xp.max(xp.abs(x), axis=-1, keepdims=True))
    return xp.where(a == 0, xp.ones_like(a), a)


def _safe_sqrt(xp: Any, s: Array) -> Array:
    """``sqrt(s)`` whose derivative at ``s = 0`` is 0, not 0 * inf."""
    zero = s == 0
    return xp.where(zero, xp.zeros_like(s), xp.sqrt(xp.where(zero, xp.ones_like(s), s)))


def _unit(xp: Any, x: Array, eps: float) -> tuple[Array, Array, Array, Array]:
    """``(x / N, 1 / N, s, 1 - |x / N|^2)`` over the last axis, N the clamped (or PyTorch's) norm.

    ``s`` is d N / d |x| (1, 1/2 at ``|x| = eps``, 0 below; 1 for PyTorch's
    form, whose d N / d x is then x / N).  With ``a = max |x|`` and ``u = x / a``
    (all of magnitude <= 1), ``N = a m`` where ``m = max(|u|, eps / a)`` is
    homogeneous: ``eps / a`` may overflow to inf, which only makes ``x / N``
    the 0 it rounds to.  ``1 / N`` is 0 where ``N = 0`` (a zero vector, eps 0).
    The last, ``1 - |x/N|^2``, is formed without cancelling: 0 for a norm above
    ``eps``, ``1 - (|x|/eps)^2`` below, ``e / (|x|^2 + e)`` for PyTorch's form.
    """
    a = _max_abs(xp, x)
    u = x / a
    norm_u = _safe_sqrt(xp, xp.sum(u * u, axis=-1, keepdims=True))
    if getattr(_norms, "torch", False):
        t = math.sqrt(_TORCH_SQUARED_EPS) / a
        m = xp.hypot(norm_u, t)
        share = xp.ones_like(m)
        below = 1 / xp.hypot(norm_u / t, xp.ones_like(m))  # t / m, also for t = inf
        rest = below * below
    else:
        floor = eps / a
        m = xp.maximum(norm_u, floor)
        share = (xp.sign(norm_u - floor) + 1) / 2  # a tie shares, as xp.maximum's gradient
    zero = m == 0
    safe = xp.where(zero, xp.ones_like(m), m)
    # where(zero, 0, ...) rather than u / 1: a zero vector's derivative is 0 under autograd too
    unit = xp.where(zero, xp.zeros_like(u), u / safe)
    inv = xp.where(zero, xp.zeros_like(m), 1 / (safe * a))
    if not getattr(_norms, "torch", False):
        ratio = norm_u / safe
        inside = xp.where(zero, xp.ones_like(m), 1 - ratio * ratio)
        rest = xp.where(norm_u > floor, xp.zeros_like(m), inside)
    return unit, inv, share, rest


def _cosine(xp: Any, x: Array, y: Array, eps: float) -> tuple[Array, Array, Any]:
    """cos(x, y) over the last axis, 1 - cos, and a thunk for d cos / d x.

    ``1 - cos = |x^ - y^|^2 / 2 + (1 - |x^|^2) / 2 + (1 - |y^|^2) / 2`` with
    ``x^ = x / N(x)``: no cancellation for nearly parallel vectors, where
    ``1 - cos`` itself would keep only the rounding error of ``cos``.

    d cos / d x = (y/N(y) - cos s x/N(x)) / N(x)
    """
    ux, inv_x, share, rest_x = _unit(xp, x, eps)
    uy, _, _, rest_y = _unit(xp, y, eps)
    cos = xp.sum(ux * uy, axis=-1)
    diff = ux - uy
    one_minus = (xp.sum(diff * diff, axis=-1) + rest_x[..., 0] + rest_y[..., 0]) / 2
    return cos, one_minus, lambda: (uy - (cos[..., None] * share) * ux) * inv_x


def _check_margin(margin: Any) -> float:
    # comparisons, not math.isfinite: torch.compile traces them for a symbolic float
    # (a margin that changed between calls)
    rule = "a finite real number"
    return check_real("margin", margin, rule, lambda v: -math.inf < v < math.inf)


def _check_eps(eps: Any) -> float:
    return check_real("eps", eps, "a finite number >= 0", lambda v: 0 <= v < math.inf)


def check_sign_targets(xp: Any, name: str, t: Array) -> Array | None:
    """-1 or 1 (:func:`~losskit.losses.margin.check_signs`), and not bool (a core rule).

    A bool array would be read as 1 and 0, and a 0 is not a target here.
    """
    if _config.core_rules() and is_dtype(xp, t.dtype, "bool"):
        msg = f"`{name}` must be -1 or 1 (numbers, not bool: False would be 0); got dtype bool"
        raise TypeError(msg)
    return check_signs(xp, name, t)


# --------------------------------------------------------------------------- cosine


@multi_array_loss(inputs=("pred", "target"), feature_axis=True)
def cosine_distance(xp: Any, pred: Array, target: Array, *, eps: float = 1e-8) -> tuple[Array, Any]:
    r"""Cosine distance ``1 - cos(pred, target)`` along a feature axis.

    .. math::
        \ell = 1 - \frac{\langle p, t\rangle}{N(p)\,N(t)},\quad N(v) = \max(\|v\|_2, \epsilon),
        \qquad \frac{\partial \ell}{\partial p} =
        -\frac{1}{N(p)}\Big(\frac{t}{N(t)} - \cos\,[\|p\|_2 > \epsilon]\frac{p}{N(p)}\Big)

    ``eps`` is the smallest norm a vector is divided by (a norm below it is
    taken as ``eps``; the indicator is 1/2 at ``|p| = eps``).  A zero vector
    has distance 1 from anything, also for ``eps = 0``, where its derivative
    is then 0.  Computed without squaring large elements: finite and exact
    for vectors of any finite magnitude.  One value per example (the feature
    ``axis`` removed); the value lies in [0, 2].

    The frameworks: Keras's ``cosine_similarity`` is ``-cos`` with norms
    clamped at 1e-7, that is ``value - 1`` with ``eps=1e-7`` (Keras's float32
    squares overflow beyond about 1e19, its cosine is then 0); optax's ``cosine_distance(p, t,
    epsilon=e)`` clamps the *squared* norm at ``e``, which is ``eps =
    sqrt(e)`` here, and its default ``epsilon=0`` makes a zero vector NaN
    where the core gives distance 1.

    Replaces keras ``cosine_similarity``/``CosineSimilarity`` (negated),
    optax ``cosine_distance``, ``cosine_similarity`` (``1 - value``).

    Parameters
    ----------
    pred : array (..., D, ...), real floating
        The vectors, features along ``axis``.
    target : array of ``pred``'s shape, real floating
        The vectors compared with (differentiable too).
    axis : int, default -1
        The feature axis; the loss has the other axes.
    eps : float >= 0, default 1e-8
        The smallest norm a vector is divided by.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: one loss per example; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given); ``"sum"``: their (weighted) sum.
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it (default
        None: every weight 1).

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> p = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    >>> t = np.array([[0.0, 2.0], [3.0, 3.0], [1.0, 0.0]])
    >>> lk.cosine_distance(p, t, reduction="none").round(12)  # orthogonal, parallel, zero
    array([1., 0., 1.])

    References
    ----------
    A. Singhal. Modern information retrieval: a brief overview. IEEE Data
    Engineering Bulletin 24(4), 2001.
    """
    eps = _check_eps(eps)
    _, one_minus, dcos = _cosine(xp, pred, target, eps)
    return one_minus, lambda: -dcos()  # d/dp = -d cos / dp


@multi_array_loss(
    inputs=("x1", "x2"),
    truth=("targets",),
    checks=(("targets", check_sign_targets),),
    feature_axis=True,
)
def cosine_embedding(
    xp: Any, x1: Array, x2: Array, targets: Array, *, margin: float = 0.0, eps: float = 1e-8
) -> tuple[Array, Any]:
    r"""Cosine embedding loss: ``1 - cos`` for similar pairs (1), ``max(0, cos - margin)`` for -1.

    .. math::
        \ell = \begin{cases} 1 - \cos(x_1, x_2) & t = 1 \\
        \max(0, \cos(x_1, x_2) - \Delta) & t = -1 \end{cases}, \qquad
        \frac{\partial \ell}{\partial x_1} = \begin{cases} -1 & t = 1 \\
        [\cos - \Delta > 0] & t = -1 \end{cases} \cdot \frac{\partial \cos}{\partial x_1}

    with ``cos`` as in :func:`cosine_distance` (norms clamped at ``eps``;
    ``d cos / d x1`` there).  ``x1`` and ``x2`` are ``(..., D)`` embeddings
    (features on ``axis``), ``targets`` -1 or 1 of the shape without the
    feature axis (not bool: False would be 0), ``margin`` Δ any finite
    number (PyTorch suggests [-1, 1]).
    The slope at ``cos = Δ`` is 1/2 (PyTorch's ``clamp_min`` gives 1); the
    targets enter only through comparisons, so their derivative is 0.
    PyTorch's own cosine adds 1e-12 to each squared norm instead of clamping
    (the torch adapter does so); for vectors of norm well above 1e-6 the two
    agree to rounding.  One value per example.

    Replaces torch ``cosine_embedding_loss``/``CosineEmbeddingLoss``.

    Parameters
    ----------
    x1 : array (..., D, ...), real floating
        The first embeddings, features along ``axis``.
    x2 : array of ``x1``'s shape, real floating
        The second embeddings.
    targets : array of ``x1``'s shape without ``axis``, real numbers (not bool)
        1 (a similar pair) or -1 (a dissimilar one).
    axis : int, default -1
        The feature axis.
    margin : float, default 0.0
        The cosine Δ above which a dissimilar pair costs; any finite number.
    eps : float >= 0, default 1e-8
        The smallest norm a vector is divided by.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: one loss per example; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given); ``"sum"``: their (weighted) sum.
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it (default
        None: every weight 1).

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> x1 = np.array([[1.0, 0.0], [1.0, 1.0]])
    >>> x2 = np.array([[1.0, 1.0], [1.0, 0.0]])
    >>> lk.cosine_embedding(x1, x2, np.array([1, -1]), margin=0.5, reduction="none").round(4)
    array([0.2929, 0.2071])

    References
    ----------
    PyTorch ``torch.nn.CosineEmbeddingLoss``; R. Hadsell, S. Chopra, Y. LeCun.
    Dimensionality reduction by learning an invariant mapping. CVPR 2006.
    """
    margin = _check_margin(margin)
    eps = _check_eps(eps)
    cos, one_minus, dcos = _cosine(xp, x1, x2, eps)
    # PyTorch's form, so that the adapter (which takes any target) gets its numbers
    same, other = targets == 1, targets == -1
    zero = xp.zeros_like(cos)
    m = cos - margin
    value = xp.where(same, one_minus, zero) + xp.where(other, _positive(xp, m), zero)

    def derivative() -> Array:
        # d/dx1 = (-[t = 1] + [t = -1] [cos - margin > 0]) d cos / d x1
        coef = xp.where(same, -1 + zero, zero) + xp.where(other, _slope(xp, m), zero)
        return coef[..., None] * dcos()

    return value, derivative


@multi_array_loss(inputs=("pred", "target"), feature_axis=True)
def negative_cosine_similarity(
    xp: Any, pred: Array, target: Array, *, eps: float = 1e-8
) -> tuple[Array, Any]:
    r"""``-cos(pred, target)``, Keras's ``cosine_similarity`` loss (not exported: for the adapters).

    :func:`cosine_distance` minus 1, without the rounding of ``1 - cos``
    near ``cos = 0``.  d/dp = -d cos / dp.

    >>> import numpy as np
    >>> from losskit.losses.similarity import negative_cosine_similarity
    >>> negative_cosine_similarity(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]]))
    np.float64(-1.0)
    """
    eps = _check_eps(eps)
    cos, _, dcos = _cosine(xp, pred, target, eps)
    return -cos, lambda: -dcos()


# --------------------------------------------------------------------------- ranking


@multi_array_loss(
    inputs=("x1", "x2"), truth=("targets",), checks=(("targets", check_sign_targets),)
)
def margin_ranking(
    xp: Any, x1: Array, x2: Array, targets: Array, *, margin: float = 0.0
) -> tuple[Array, Any]:
    r"""Margin ranking loss ``max(0, margin - t (x1 - x2))``: ``x1`` above ``x2`` when ``t = 1``.

    .. math::
        \ell = \max(0, \Delta - t (x_1 - x_2)), \qquad
        \frac{\partial \ell}{\partial x_1} = -t\,[\Delta - t (x_1 - x_2) > 0]
        \quad (-t/2 \text{ at } 0)

    ``x1``, ``x2`` are scores and ``targets`` -1 or 1 (a core rule; PyTorch
    takes any value and the torch adapter does too), all of one shape;
    ``margin`` Δ any finite number.  d/dx2 is minus d/dx1, d/dt is
    ``-(x1 - x2)`` times the same indicator.  The slope at the kink is 1/2
    (PyTorch's ``clamp_min`` gives 1).  One value per element.

    Replaces torch ``margin_ranking_loss``/``MarginRankingLoss``.

    Parameters
    ----------
    x1 : array, real floating
        The first scores.
    x2 : array of ``x1``'s shape, real floating
        The second scores.
    targets : array of ``x1``'s shape, real numbers (not bool)
        1 (``x1`` should rank above ``x2``) or -1 (below).
    margin : float, default 0.0
        The required gap Δ; any finite number.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given); ``"sum"``: their (weighted) sum.
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it (default
        None: every weight 1).

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> x1, x2 = np.array([2.0, 0.5, 1.0]), np.array([1.0, 1.0, 3.0])
    >>> lk.margin_ranking(x1, x2, np.array([1, 1, -1]), margin=0.5, reduction="none")
    array([0., 1., 0.])

    References
    ----------
    R. Herbrich, T. Graepel, K. Obermayer. Large margin rank boundaries for
    ordinal regression. Advances in Large Margin Classifiers, 2000.
    """
    margin = _check_margin(margin)
    m = margin - targets * (x1 - x2)
    return _positive(xp, m), lambda: -targets * _slope(xp, m)  # d/dx1 = -t [m > 0]


# --------------------------------------------------------------------------- triplet


_EPS_AT = ("difference", "sum")


def _distance(xp: Any, x: Array, y: Array, p: float, eps: float, eps_at: str) -> tuple[Array, Any]:
    """The p-norm distance over the last axis and a thunk for its derivative in ``x``.

    ``eps_at="difference"``: ``|x - y + eps|_p`` (PyTorch's ``pairwise_distance``);
    ``"sum"``: ``(sum |x - y|^p + eps)^(1/p)`` (optax's).  Scaled by
    ``a = max |d|`` (at least ``eps^(1/p)`` in the sum form) held without
    gradient, so no power overflows or underflows.
    d dist / d x_i = sign(d_i) (|d_i| / dist)^(p-1), 0 where dist = 0.
    """
    d = x - y
    extra = 0.0
    if eps_at == "difference":
        d = d + eps
    a = _max_abs(xp, d)
    if eps_at == "sum" and eps > 0:
        a = xp.maximum(a, xp.full_like(a, eps ** (1 / p)))
    u = d / a
    au = xp.where(u == 0, xp.zeros_like(u), xp.abs(u))  # d|u|/du = 0 at 0 under JAX too
    if eps_at == "sum":
        extra = eps / a[..., 0] ** p
    if p == math.inf:  # max |u| (1, or 0 for d = 0): the distance is a itself
        r = xp.max(au, axis=-1) if au.shape[-1] else xp.zeros_like(a[..., 0])
    elif p == 2:
        s = xp.sum(u * u, axis=-1) + extra
        r = _safe_sqrt(xp, s)
    elif p == 1:
        s = xp.sum(au, axis=-1) + extra
        r = s
    else:
        s = xp.sum(au**p, axis=-1) + extra
        zero = s == 0
        r = xp.where(zero, xp.zeros_like(s), xp.where(zero, xp.ones_like(s), s) ** (1 / p))
    dist = r * a[..., 0]

    def derivative() -> Array:
        # d dist / d d_i = sign(d_i) (|u_i| / r)^(p-1), r = dist / a
        if p == 1:
            return xp.sign(u)
        zero = r == 0
        if p == math.inf:  # sign(d_i) at the largest |d_i|, ties sharing (torch's amax)
            top = xp.where(
                zero[..., None], xp.zeros_like(au), xp.astype(au == r[..., None], au.dtype)
            )
            count = xp.sum(top, axis=-1, keepdims=True)
            return xp.sign(u) * top / xp.where(count == 0, xp.ones_like(count), count)
        safe = xp.where(zero, xp.ones_like(r), r)[..., None]
        g = u / safe if p == 2 else xp.sign(u) * (au / safe) ** (p - 1)
        return xp.where(zero[..., None], xp.zeros_like(g), g)

    return dist, derivative


def _check_p(p: Any) -> float:
    # 1 <= v: NaN fails too; inf is the max-norm
    return check_real(
        "p", p, "a number >= 1 (a norm; inf: the largest |x_i - y_i|)", lambda v: 1 <= v
    )


@multi_array_loss(inputs=("anchor", "positive", "negative"), feature_axis=True)
def triplet_margin(
    xp: Any,
    anchor: Array,
    positive: Array,
    negative: Array,
    *,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    eps_at: str = "difference",
) -> tuple[Array, Any]:
    r"""Triplet margin loss: the anchor nearer the positive than the negative by ``margin``.

    .. math::
        \ell = \max(0,\ \Delta + d(a, p) - d(a, n)),\quad
        d(x, y) = \|x - y + \epsilon\|_p, \qquad
        \frac{\partial \ell}{\partial a} = [\ell > 0]
        \Big(\frac{\partial d(a, p)}{\partial a} - \frac{\partial d(a, n)}{\partial a}\Big),
        \quad \frac{\partial d}{\partial x_i} = \operatorname{sign}(v_i)
        \Big(\frac{|v_i|}{d}\Big)^{p-1}

    where ``v = x - y + eps``.  ``eps_at="sum"`` takes ``d(x, y) = (sum_i
    |x_i - y_i|^p + eps)^(1/p)`` instead (optax's placement, differentiable
    where ``x = y``).  With ``swap`` the negative distance is ``min(d(a, n),
    d(p, n))`` (Balntas et al.'s distance swap; a tie shares the
    gradient).  ``p`` is any real number >= 1, ``margin`` Δ any finite
    number (PyTorch requires Δ > 0), ``eps`` >= 0.  ``p = inf`` is the
    largest ``|v_i|``, its derivative ``sign(v_i)`` there (ties share it,
    as PyTorch's).  The slope at the kink is
    1/2 (optax's ``jnp.maximum``; PyTorch's ``clamp_min`` gives 1).  The
    distances are computed without raising large differences to the power
    ``p``: finite for any finite input (PyTorch's float32 distance
    overflows beyond about 1e19).  One value per example (the feature
    ``axis`` removed).

    optax's ``triplet_margin_loss(a, p, n, axis, norm_degree, margin, eps)``
    is ``triplet_margin(a, p, n, axis=axis, p=norm_degree, margin=margin,
    eps=eps, eps_at="sum", reduction="none")`` for an even ``norm_degree``
    (optax raises ``a - p`` to the power without ``abs``).

    Replaces torch ``triplet_margin_loss``/``TripletMarginLoss``, optax
    ``triplet_margin_loss``.

    Parameters
    ----------
    anchor : array (..., D, ...), real floating
        The anchors' embeddings, features along ``axis``.
    positive : array of ``anchor``'s shape, real floating
        Embeddings that should be near their anchor.
    negative : array of ``anchor``'s shape, real floating
        Embeddings that should be far from their anchor.
    axis : int, default -1
        The feature axis; the loss has the other axes.
    margin : float, default 1.0
        The required gap Δ between the two distances; any finite number.
    p : float >= 1 or inf, default 2.0
        The norm's degree; ``inf``: the largest ``|v_i|`` (``eps_at="difference"``
        only).
    eps : float >= 0, default 1e-6
        Added to each difference (or to the sum of powers, ``eps_at="sum"``).
    swap : bool, default False
        Balntas et al.'s distance swap (Python or NumPy bool).
    eps_at : {"difference", "sum"}, default "difference"
        Where ``eps`` enters: PyTorch's placement or optax's.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: one loss per example; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given); ``"sum"``: their (weighted) sum.
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it (default
        None: every weight 1).

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> a = np.array([[0.0, 0.0], [1.0, 1.0]])
    >>> pos = np.array([[0.1, 0.1], [1.1, 1.1]])
    >>> neg = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> lk.triplet_margin(a, pos, neg, eps=0.0, reduction="none").round(4)  # 1 + 0.1414 - 1
    array([0.1414, 0.1414])

    References
    ----------
    F. Schroff, D. Kalenichenko, J. Philbin. FaceNet: a unified embedding for
    face recognition and clustering. CVPR 2015.  V. Balntas, E. Riba, D. Ponsa,
    K. Mikolajczyk. Learning local feature descriptors with triplets and
    shallow convolutional neural networks. BMVC 2016.
    """
    margin = _check_margin(margin)
    p = _check_p(p)
    eps = _check_eps(eps)
    if eps_at not in _EPS_AT:
        msg = f"`eps_at` must be 'difference' or 'sum'; got {eps_at!r}"
        raise (ValueError if isinstance(eps_at, str) else TypeError)(msg)
    if p == math.inf and eps_at == "sum":
        msg = "`p` = inf needs `eps_at`='difference': (sum |d|^p + eps)^(1/p) has no such norm"
        raise ValueError(msg)
    swap = check_flag("swap", swap)
    d_pos, dd_pos = _distance(xp, anchor, positive, p, eps, eps_at)
    d_neg, dd_neg = _distance(xp, anchor, negative, p, eps, eps_at)
    near = None
    if swap:
        d_swap = _distance(xp, positive, negative, p, eps, eps_at)[0]
        near = (xp.sign(d_swap - d_neg) + 1) / 2  # d min / d d_neg: 1, 1/2 at a tie, 0
        d_neg = xp.minimum(d_neg, d_swap)
    m = margin + d_pos - d_neg

    def derivative() -> Array:
        # d/da = [m > 0] (d d(a,p)/da - d d(a,n)/da [d(a,n) is the smaller])
        neg = dd_neg() if near is None else near[..., None] * dd_neg()
        return _slope(xp, m)[..., None] * (dd_pos() - neg)

    return _positive(xp, m), derivative
