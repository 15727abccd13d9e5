"""Contrastive metric-learning losses over a batch of embeddings: NT-Xent, Circle.

Both losses take a batch of embeddings ``(N, D)`` and integer group labels
``(N,)``: two examples with equal labels form a positive pair, two with
different labels a negative pair, and an example is never paired with itself.
Each example (anchor) has one loss, which depends on the whole batch.

Shared semantics (the core's; the adapters reproduce each framework's own):

- The embeddings are scaled to unit length inside, ``u = e / max(||e||, eps)``
  with ``eps`` the machine epsilon of the embeddings' dtype (a zero embedding
  has similarity 0 to everything), and ``s_ij = u_i . u_j`` is their cosine
  similarity.  optax 0.2.8 clamps the *squared* norm instead,
  ``e / sqrt(max(||e||^2, eps))``, a norm floor of ``sqrt(eps)``: the two
  agree for embeddings longer than ``sqrt(eps)`` (1.5e-8 in float64, 3.5e-4
  in float32) and differ below it (the core divides by ``eps``, optax by
  ``sqrt(eps)``; see ``losskit.compat.optax.ntxent``).  The norm is computed
  with the row scaled by its largest element, so it neither overflows nor
  underflows.
- ``reduction="none"`` gives one loss per anchor.  An anchor without a
  positive pair has loss 0 and counts nowhere: ``"mean"`` divides by the
  (weighted) number of anchors that have a positive.  A batch without any
  positive pair gives 0 and a zero gradient.
- Everything is formed in log space (log-sum-exp over the pairs of an anchor
  with its maximum subtracted, ``softplus`` that never exponentiates a
  positive number), so a small temperature or a large ``gamma`` gives a finite
  loss and gradient.  Memory is a few ``N x N`` arrays, no Python loop over
  examples.

The gradient is batch-coupled: with ``G_ij = d value / d s_ij`` (each anchor's
row scaled by the reduction's coefficient for that anchor),
``d value / d u = (G + G^T) u`` and, through the normalisation,
``d value / d e = (g - u (u . g)) / ||e||`` (``g / eps`` for a row shorter
than ``eps``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._backend import (
    Array,
    cast,
    compute_dtype,
    device_of,
    is_dtype,
    namespace,
    quiet_numpy,
    shape_of,
    stop_gradient,
)
from .._gradient import deliver, differentiable
from .._reduce import Reduction, plan
from .._validation import Invalid, check_floating, check_grad_out, check_real, check_reduction
from .margin import _positive, _slope

__all__ = ["circle", "ntxent"]

# --------------------------------------------------------------------------- helpers


def check_pair_inputs(
    xp: Any, embeddings: Array, labels: Array, *, name: str = "embeddings"
) -> None:
    """Embeddings ``(N, D)`` floating, labels ``(N,)`` integer."""
    check_floating(xp, name, embeddings)
    if embeddings.ndim != 2:
        msg = (
            f"`{name}` must be a 2-d array (batch, features); "
            f"got {embeddings.ndim}-d of shape {shape_of(embeddings)}"
        )
        raise ValueError(msg)
    if not is_dtype(xp, labels.dtype, "integral"):
        msg = (
            "`labels` must be an integer array of group ids (equal labels make a "
            f"positive pair); got dtype {labels.dtype}"
        )
        raise TypeError(msg)
    expected = shape_of(embeddings)[:1]
    if shape_of(labels) != expected:
        msg = (
            f"`labels` must have one label per row of `{name}`, shape {expected}; "
            f"got {shape_of(labels)}"
        )
        raise ValueError(msg)


def unit_rows(xp: Any, x: Array, eps: float) -> tuple[Array, Array, Array]:
    """``(u, r, long)``: ``u = x / max(||x||, eps)`` per row, ``r = ||x||``, ``long = r > eps``.

    The norm is ``a ||x / a||`` with ``a`` the row's largest magnitude (held
    constant for autograd: the norm is still exactly ``||x||`` as a function
    of ``x``), so it neither overflows nor underflows; a zero row has norm 0
    and no NaN in its derivative.
    """
    if x.shape[-1] == 0:  # no features: every row has norm 0
        r = xp.zeros((*x.shape[:-1], 1), dtype=x.dtype, device=device_of(x))
        return x, r, r > eps
    a = stop_gradient(xp, xp.max(xp.abs(x), axis=-1, keepdims=True))
    a = xp.where(a > 0, a, xp.ones_like(a))
    sq = xp.sum((x / a) ** 2, axis=-1, keepdims=True)
    nonzero = sq > 0
    r = xp.where(nonzero, a * xp.sqrt(xp.where(nonzero, sq, xp.ones_like(sq))), xp.zeros_like(sq))
    long = r > eps
    return x / xp.where(long, r, xp.full_like(r, eps)), r, long


def unit_rows_grad(xp: Any, g: Array, u: Array, r: Array, long: Array, eps: float) -> Array:
    """d/dx of ``sum(g * u)`` for ``u = x / max(||x||, eps)``: ``(g - u (u . g)) / ||x||``."""
    radial = xp.sum(u * g, axis=-1, keepdims=True)
    return xp.where(long, (g - u * radial) / xp.where(long, r, xp.ones_like(r)), g / eps)


def masked_logsumexp(xp: Any, z: Array, mask: Array) -> tuple[Array, Callable[[], Array]]:
    """``log sum_{j: mask} exp(z_j)`` per row (``-inf`` for none) and a thunk of the softmax
    over the mask (0 off it).

    Off the mask ``z`` is replaced by ``-inf`` before anything else (``z + log(mask)``,
    a constant; half the time of a ``where`` on NumPy), and the subtracted
    maximum is finite (0 for an empty row), so ``exp`` gives an exact 0 there
    and autograd never meets ``inf - inf``.
    """
    if z.shape[-1] == 0:  # no columns (an empty batch)
        lse = xp.full(z.shape[:-1], -float("inf"), dtype=z.dtype, device=device_of(z))
        return lse, lambda: z
    with quiet_numpy(xp):  # log(0) = -inf on purpose
        masked = z + xp.log(cast(xp, mask, z.dtype))
    top = xp.max(masked, axis=-1, keepdims=True)
    top = stop_gradient(xp, xp.where(top > -float("inf"), top, xp.zeros_like(top)))
    e = xp.exp(masked - top)
    total = xp.sum(e, axis=-1, keepdims=True)
    some = total > 0
    safe = xp.where(some, total, xp.ones_like(total))
    lse = xp.where(some, top + xp.log(safe), xp.full_like(total, -float("inf")))
    return lse[..., 0], lambda: e / safe


def softplus(xp: Any, x: Array) -> Array:
    """``log(1 + e^x)`` as ``max(x, 0) + log1p(e^-|x|)``: never exponentiates a positive number."""
    return xp.maximum(x, xp.zeros_like(x)) + xp.log1p(xp.exp(-xp.abs(x)))


def sigmoid(xp: Any, x: Array) -> Array:
    """``e^min(x, 0) / (1 + e^-|x|)``: ``1 / (1 + e^-x)`` without exponentiating a positive
    number (0 at ``-inf``)."""
    return xp.exp(xp.minimum(x, xp.zeros_like(x))) / (1 + xp.exp(-xp.abs(x)))


def relu(xp: Any, x: Array) -> tuple[Array, Callable[[], Array]]:
    """``(max(x, 0), a thunk of its slope)``: the margin losses' hinge, slope 1/2 at 0 (a tie shares
    the gradient, as ``torch.maximum`` and ``jnp.maximum``) unless an adapter asks for its
    framework's inside ``_config.kink_slope`` (TensorFlow's ``maximum`` passes all of it)."""
    return _positive(xp, x), lambda: _slope(xp, x)


def pair_masks(
    xp: Any, labels: Array, ref_labels: Array, remove_diagonal: bool
) -> tuple[Array, Array]:
    """``(positive, negative)`` pair masks ``(N, M)``: equal labels, off the diagonal if asked."""
    same = labels[:, None] == ref_labels[None, :]
    if not remove_diagonal:
        return same, ~same
    device = device_of(labels)
    rows = xp.arange(shape_of(labels)[0], device=device)[:, None]
    cols = xp.arange(shape_of(ref_labels)[0], device=device)[None, :]
    return same & (rows != cols), ~same


# --------------------------------------------------------------------------- per-anchor losses
# Each takes the similarity matrix s (N, M) and the pair masks and returns
# (loss per anchor (N,), d loss_i / d s_ij as a thunk).


def ntxent_rows(
    xp: Any, s: Array, pos: Array, neg: Array, temperature: float
) -> tuple[Array, Callable[[], Array]]:
    """``l_i = mean_{j in P(i)} softplus(LSE_{k in N(i)} a_ik - a_ij)``, ``a = s / temperature``."""
    a = s / temperature
    n, nu = masked_logsumexp(xp, a, neg)  # n_i = log sum_{k in N(i)} exp(a_ik)
    # x is finite, or -inf in the row of an anchor without a negative (softplus 0, slope
    # 0): a product with the 0/1 mask keeps the pairs, no NaN in value or autograd.
    x = n[:, None] - a
    on = cast(xp, pos, s.dtype)
    count = xp.sum(on, axis=-1)
    per = 1 / xp.where(count > 0, count, xp.ones_like(count))
    loss = xp.sum(softplus(xp, x) * on, axis=-1) * per

    def derivative() -> Array:
        # d l_i / d a_ij = -sigma(x_ij) / p_i on P(i); t_i softmax_N(i)(a)_ik on N(i)
        sig = sigmoid(xp, x) * (on * per[:, None])
        t = xp.sum(sig, axis=-1, keepdims=True)
        return (t * nu() - sig) / temperature

    return loss, derivative


def circle_rows(
    xp: Any, s: Array, pos: Array, neg: Array, gamma: float, margin: float
) -> tuple[Array, Callable[[], Array]]:
    """``l_i = softplus(LSE_P -gamma a_p (s - 1 + m) + LSE_N gamma a_n (s - m))`` (Sun et al.)."""
    alpha_p, slope_p = relu(xp, 1 + margin - s)  # a_p = [1 + m - s]_+
    alpha_n, slope_n = relu(xp, s + margin)  # a_n = [s + m]_+
    zp = -gamma * alpha_p * (s - (1 - margin))
    zn = gamma * alpha_n * (s - margin)
    lse_p, pi = masked_logsumexp(xp, zp, pos)
    lse_n, nu = masked_logsumexp(xp, zn, neg)
    both = lse_p + lse_n  # -inf when an anchor has no positive or no negative
    loss = softplus(xp, both)

    def derivative() -> Array:
        # d l / d s = sigma(A + B) (pi dzp/ds + nu dzn/ds), with
        # dzp/ds = -gamma (a_p - slope_p (s - 1 + m)), dzn/ds = gamma (slope_n (s - m) + a_n)
        dzp = -gamma * (alpha_p - slope_p() * (s - (1 - margin)))
        dzn = gamma * (slope_n() * (s - margin) + alpha_n)
        return sigmoid(xp, both)[:, None] * (pi() * dzp + nu() * dzn)

    return loss, derivative


# --------------------------------------------------------------------------- the shell

Rows = Callable[..., tuple[Array, Callable[[], Array]]]


def _pairwise_impl(
    rows: Rows, check_options: Callable[..., dict[str, float]]
) -> Callable[..., tuple[Array, Array | None]]:
    """The implementation behind a loss of a batch of embeddings against group labels.

    ``rows(xp, s, pos, neg, **options)`` gives the loss per anchor and its
    derivative in the similarity matrix, ``check_options(**options)`` the
    checked options; this does the checks, the
    normalisation, the reduction (anchors without a positive count nowhere)
    and the chain rule back to the embeddings.
    """

    def impl(
        embeddings: Array,
        labels: Array,
        /,
        *,
        reduction: str,
        sample_weight: Array | None,
        with_grad: bool = False,
        grad_out: Any = None,
        **options: Any,
    ) -> tuple[Array, Array | None]:
        xp, e, labels, sample_weight = namespace(
            embeddings, labels, sample_weight, names=("labels", "sample_weight")
        )
        reduction = check_reduction(reduction)
        options = check_options(**options)
        check_pair_inputs(xp, e, labels)
        check_grad_out(xp, grad_out, e)
        n = shape_of(e)[0]
        dtype = compute_dtype(xp, e.dtype)
        eps = float(xp.finfo(e.dtype).eps)
        x = cast(xp, e, dtype)
        invalid = Invalid(xp, (n,))
        # A bad weight's anchor makes the gradient NaN even if its loss is a constant 0.
        invalid.watch(x, class_axis=True)
        with quiet_numpy(xp):
            u, r, long = unit_rows(xp, x, eps)
            s = u @ u.T
            pos, neg = pair_masks(xp, labels, labels, remove_diagonal=True)
            counted = cast(xp, xp.any(pos, axis=-1), dtype)
            red: Reduction = plan(
                xp,
                reduction,
                (n,),
                dtype,
                sample_weight=sample_weight,
                counts=counted,
                invalid=invalid,
            )
            loss, derivative = rows(xp, s, pos, neg, **options)
            value = red.apply(loss)
            if not with_grad:
                return value, None
            big_g = red.grad(derivative(), class_axis=True)  # d value / d s_ij
            # (G + G^T) u as two products: BLAS reads G^T in place, no strided add
            grad = unit_rows_grad(xp, big_g @ u + big_g.T @ u, u, r, long, eps)
        return value, deliver(xp, grad, e, grad_out)

    return impl


def _positive_option(name: str, value: Any) -> float:
    return check_real(name, value, "a finite number > 0", lambda v: 0 < v < float("inf"))


def _finite_option(name: str, value: Any) -> float:
    return check_real(name, value)


def _ntxent_options(*, temperature: Any) -> dict[str, float]:
    return {"temperature": _positive_option("temperature", temperature)}


def _circle_options(*, gamma: Any, margin: Any) -> dict[str, float]:
    return {"gamma": _positive_option("gamma", gamma), "margin": _finite_option("margin", margin)}


_ntxent_impl = _pairwise_impl(ntxent_rows, _ntxent_options)
_circle_impl = _pairwise_impl(circle_rows, _circle_options)


# --------------------------------------------------------------------------- public losses


@differentiable(_ntxent_impl)
def ntxent(
    embeddings: Any,
    labels: Any,
    *,
    temperature: float = 0.07,
    reduction: str = "mean",
    sample_weight: Any = None,
) -> Array:
    r"""Normalized temperature-scaled cross-entropy (NT-Xent, SimCLR's contrastive loss).

    With ``s_ij`` the cosine similarity of embeddings ``i`` and ``j``,
    ``a = s / temperature``, ``P(i)`` the other examples with ``i``'s label
    and ``N(i)`` those with another label, anchor ``i``'s loss is the mean
    over its positive pairs of the cross-entropy of picking ``j`` among
    itself and ``i``'s negatives:

    .. math::
        \ell_i = \frac{1}{|P(i)|} \sum_{j \in P(i)}
            -\log \frac{e^{a_{ij}}}{e^{a_{ij}} + \sum_{k \in N(i)} e^{a_{ik}}}
          = \frac{1}{|P(i)|} \sum_{j \in P(i)} \operatorname{softplus}(n_i - a_{ij}),
        \qquad n_i = \log \sum_{k \in N(i)} e^{a_{ik}}

    .. math::
        \frac{\partial \ell_i}{\partial a_{ij}} = -\frac{\sigma(n_i - a_{ij})}{|P(i)|}
        \ (j \in P(i)), \qquad
        \frac{\partial \ell_i}{\partial a_{ik}} = t_i\,\frac{e^{a_{ik}}}{e^{n_i}}
        \ (k \in N(i)), \quad t_i = \frac{1}{|P(i)|} \sum_{j \in P(i)} \sigma(n_i - a_{ij})

    and the chain rule through ``s_ij = u_i . u_j``, ``u = e / max(||e||, eps)``
    (module docstring).  The denominator holds the positive ``j`` and the
    negatives only, not the other positives (optax's and
    pytorch-metric-learning's form; with one positive per anchor, SimCLR's
    two views, the forms agree).  An anchor without a negative has loss 0;
    one without a positive has loss 0 and counts nowhere in the mean.

    optax's ``ntxent`` is the mean over all positive pairs, which is this
    loss with ``sample_weight=|P(i)|`` (each anchor weighted by its number of
    positives) and ``reduction="mean"``; optax gives NaN where there is no
    positive pair at all, the core 0.

    Parameters
    ----------
    embeddings : floating array (N, D)
        One embedding per row, of any length (normalised inside).
    labels : integer array (N,)
        Group ids: equal labels make a positive pair.
    temperature : float > 0
        Divides the similarities (default 0.07).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"`` gives one loss per anchor.
    sample_weight : array (N,), optional
        One weight per anchor (default None: all 1).

    Examples
    --------
    Two pairs of orthogonal embeddings: each anchor's positive has ``a = 1/T``
    and its two negatives ``a = 0``, so the loss is ``log(1 + 2 e^{-1/T})``.

    >>> import numpy as np, losskit as lk
    >>> e = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> lk.ntxent(e, y, temperature=1.0, reduction="none")
    array([0.55144471, 0.55144471, 0.55144471, 0.55144471])
    >>> float(np.log1p(2 * np.exp(-1.0)))
    0.5514447139320511

    References
    ----------
    T. Chen, S. Kornblith, M. Norouzi, G. Hinton. A simple framework for
    contrastive learning of visual representations. ICML 2020.
    K. Sohn. Improved deep metric learning with multi-class N-pair loss
    objective. NeurIPS 2016.
    """
    return _ntxent_impl(
        embeddings,
        labels,
        temperature=temperature,
        reduction=reduction,
        sample_weight=sample_weight,
    )[0]


@differentiable(_circle_impl)
def circle(
    embeddings: Any,
    labels: Any,
    *,
    gamma: float = 80.0,
    margin: float = 0.4,
    reduction: str = "mean",
    sample_weight: Any = None,
) -> Array:
    r"""Circle loss (Sun et al. 2020): pairs re-weighted by how far they are from their optimum.

    With ``s`` the cosine similarities, ``m = margin``, ``P(i)``/``N(i)``
    anchor ``i``'s positive and negative pairs, the weights
    ``a_p = [1 + m - s]_+``, ``a_n = [s + m]_+`` and the logits
    ``z^p = -gamma a_p (s - (1 - m))``, ``z^n = gamma a_n (s - m)``:

    .. math::
        \ell_i = \log\Bigl(1 + \sum_{j \in P(i)} e^{z^p_{ij}}
                 \sum_{k \in N(i)} e^{z^n_{ik}}\Bigr)
               = \operatorname{softplus}(A_i + B_i),
        \quad A_i = \operatorname{LSE}_{P(i)} z^p, \ B_i = \operatorname{LSE}_{N(i)} z^n

    .. math::
        \frac{\partial \ell_i}{\partial s_{ij}} = \sigma(A_i + B_i)\,\Bigl(
            \pi_{ij}\,\frac{\partial z^p_{ij}}{\partial s_{ij}}
          + \nu_{ij}\,\frac{\partial z^n_{ij}}{\partial s_{ij}}\Bigr),\quad
        \frac{\partial z^p}{\partial s} = -\gamma\,(a_p - [1 + m > s](s - 1 + m)),\quad
        \frac{\partial z^n}{\partial s} = \gamma\,(a_n + [s > -m](s - m))

    with ``pi``, ``nu`` the softmaxes of ``z^p`` over ``P(i)`` and of ``z^n``
    over ``N(i)`` (slope 1/2 at a kink), then the chain rule through the
    normalisation (module docstring).  Whether the weights ``a_p``, ``a_n``
    are differentiated is a choice: the core differentiates them, as Keras
    does; the paper's code detaches them (treats them as constants), which
    gives another gradient for the same value.  An anchor without a positive
    or without a negative pair has loss 0; one without a positive counts
    nowhere in the mean.  Keras's ``circle`` takes embeddings already of unit
    length and does not normalise them; its class averages over the anchors
    with a loss above 0 (``losskit.compat.tf.keras.losses.Circle``).

    Parameters
    ----------
    embeddings : floating array (N, D)
        One embedding per row (normalised inside).
    labels : integer array (N,)
        Group ids: equal labels make a positive pair.
    gamma : float > 0
        Scale of the logits (default 80).
    margin : float
        Relaxation ``m`` (default 0.4): optima ``1 + m`` and ``-m``, decision
        margins ``1 - m`` and ``m``.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"`` gives one loss per anchor.
    sample_weight : array (N,), optional
        One weight per anchor (default None: all 1).

    Examples
    --------
    Each anchor's positive has ``s = 1`` and its two negatives ``s = 0`` (``m =
    0.25``): ``z^p = -gamma m^2`` and ``z^n = -gamma m^2`` (``a_p = a_n = m``),
    so the loss is ``log(1 + 2 e^{-2 gamma m^2})``.

    >>> import numpy as np, losskit as lk
    >>> e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> lk.circle(e, y, gamma=4.0, margin=0.25, reduction="none")
    array([0.79437677, 0.79437677, 0.79437677, 0.79437677])
    >>> float(np.log1p(2 * np.exp(-2 * 4.0 * 0.25**2)))
    0.7943767694176432

    References
    ----------
    Y. Sun, C. Cheng, Y. Zhang, C. Zhang, L. Zheng, Z. Wang, Y. Wei. Circle
    loss: a unified perspective of pair similarity optimization. CVPR 2020.
    """
    return _circle_impl(
        embeddings,
        labels,
        gamma=gamma,
        margin=margin,
        reduction=reduction,
        sample_weight=sample_weight,
    )[0]
