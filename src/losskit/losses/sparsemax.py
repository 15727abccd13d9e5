"""Sparsemax (Martins & Astudillo 2016) and its Fenchel-Young loss.

``sparsemax`` is the Euclidean projection of the scores onto the probability
simplex: a probability vector that, unlike softmax, has exact zeros.
``sparsemax_loss`` is the loss whose gradient is ``sparsemax(z) - onehot(y)``,
as the cross-entropy's is ``softmax(z) - onehot(y)``.
"""

from __future__ import annotations

from typing import Any

from .._arrays import gather_last, is_label
from .._backend import Array, cast, compute_dtype, device_of, namespace, quiet_numpy
from .._define import sparse_loss
from .._validation import check_class_axis, check_floating
from ..activations import shifted_by_max


def sparsemax_last(xp: Any, z: Array) -> Array:
    """Sparsemax over the last axis, in ``z``'s dtype (the portable formula).

    Sort each row in decreasing order, ``z_(1) >= z_(2) >= ...``; the support
    is the ``k`` largest scores with ``k`` the largest index such that
    ``1 + k z_(k) > sum_{j<=k} z_(j)``, the threshold
    ``tau = (sum_{j<=k} z_(j) - 1) / k``, and the result ``max(z - tau, 0)``.
    The row maximum is subtracted first (sparsemax is shift invariant): the
    support then lies in ``(-1, 0]``, so its partial sums stay below ``k`` in
    magnitude whatever the scores' magnitude, and scores far below (-inf
    after an overflowing shift) fall out of the support as they should.
    """
    if z.shape[-1] == 0:
        return z
    shifted, _ = shifted_by_max(xp, z)
    ranked = xp.sort(shifted, axis=-1, descending=True)
    partial = xp.cumulative_sum(ranked, axis=-1)
    k = xp.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=device_of(z))
    in_support = 1 + k * ranked > partial  # a prefix of each sorted row
    size = xp.sum(xp.astype(in_support, xp.int64), axis=-1, keepdims=True)  # >= 1
    tau = (xp.take_along_axis(partial, size - 1, axis=-1) - 1) / cast(xp, size, z.dtype)
    # d/dz (v . sparsemax(z)) = s * (v - sum(s v) / sum(s)),  s = [sparsemax(z) > 0];
    # autograd reads it off this formula: tau's derivative is s / |S| through
    # the gather of the sorted partial sum, the max's is s.
    return xp.clip(shifted - tau, 0, None)


def sparsemax(x: Array, /, *, axis: int = -1) -> Array:
    r"""Sparsemax along ``axis``: the closest probability vector to ``x``, with exact zeros.

    .. math::
        \mathrm{sparsemax}(x) = \operatorname*{argmin}_{p \in \Delta} \|p - x\|^2
        = \max(x - \tau(x), 0), \qquad
        \tau = \frac{\sum_{j \in S} x_j - 1}{|S|}

    with ``S`` the support (the ``k`` largest entries, ``k`` the largest with
    ``1 + k x_{(k)} > \sum_{j \le k} x_{(j)}`` in decreasing order).
    Jacobian-vector product, with ``s`` the support's indicator:
    ``d/dx (v · sparsemax(x)) = s ⊙ (v - ⟨s, v⟩ / |S|)``; torch autograd and
    ``jax.grad`` derive it from the sort-based formula (the same as
    ``optax.projections.projection_simplex``'s custom JVP).  Exact for scores
    of any finite magnitude (computed after subtracting the row maximum);
    vectorised (a sort and a cumulative sum, no loop).  Half-precision input
    is computed in float32 and cast back.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> lk.sparsemax(np.array([1.0, 0.5, -1.0]))  # tau = (1 + 0.5 - 1) / 2
    array([0.75, 0.25, 0.  ])
    >>> lk.sparsemax(np.array([3e38, -3e38, 2.9e38], dtype=np.float32))  # a gap far above 1
    array([1., 0., 0.], dtype=float32)

    References
    ----------
    Martins, Astudillo, "From Softmax to Sparsemax: A Sparse Model of Attention
    and Multi-Label Classification", ICML 2016 (algorithm 1).
    """
    xp, x = namespace(x)
    check_floating(xp, "x", x)
    axis = check_class_axis("x", x, axis)
    moved = x if axis == x.ndim - 1 else xp.moveaxis(x, axis, -1)
    with quiet_numpy(xp):
        result = cast(xp, sparsemax_last(xp, cast(xp, moved, compute_dtype(xp, x.dtype))), x.dtype)
    return result if axis == x.ndim - 1 else xp.moveaxis(result, -1, axis)


@sparse_loss(pred="logits")
def sparsemax_loss(xp: Any, logits: Array, labels: Array) -> tuple[Array, Any]:
    r"""The sparsemax loss: the Fenchel-Young loss of sparsemax against integer labels.

    .. math::
        \ell = \langle p, z - z_y \rangle + \tfrac12 (1 - \|p\|^2)
        = \tfrac12 \sum_{j \in S} (z_j^2 - \tau^2) - z_y + \tfrac12,
        \qquad p = \mathrm{sparsemax}(z)

    .. math::
        \frac{\partial \ell}{\partial z} = \mathrm{sparsemax}(z) - \mathrm{onehot}(y)

    ``ℓ >= 0``, and 0 exactly when ``sparsemax(z) = onehot(y)`` (``z_y`` at
    least 1 above every other score).  The first form is computed: it uses
    differences of scores only, so it does not lose the loss to cancellation
    between squares of large scores, and the differences are formed on the
    support only (elsewhere ``p_j = 0``).  Replaces optax's
    ``multiclass_sparsemax_loss`` (same numbers under ``reduction="none"``);
    optax's binary ``sparsemax_loss(z, y)`` is this loss on the two scores
    ``[0, z]`` with the same 0/1 labels.  One value per example under
    ``reduction="none"``.

    Parameters
    ----------
    logits : array, real floating
        Any real scores.
    labels : integer array, the shape of ``logits`` without ``axis``
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
    >>> import numpy as np, losskit as lk
    >>> z = np.array([[1.0, 0.5, -1.0], [3.0, 0.0, 0.0]])
    >>> # p = [.75, .25, 0]: .25 (0.5 - 1) + (1 - .625)/2;  p = [1, 0, 0]: 0
    >>> lk.sparsemax_loss(z, np.array([0, 0]), reduction="none")
    array([0.0625, 0.    ])

    References
    ----------
    Martins, Astudillo, ICML 2016 (section 3); Blondel, Martins, Niculae,
    "Learning with Fenchel-Young Losses", JMLR 2020.
    """
    p = sparsemax_last(xp, logits)
    z_y = gather_last(xp, logits, labels)
    supported = p > 0
    # z_j - z_y only where p_j > 0: elsewhere it may overflow, and 0 * inf is NaN
    gap = xp.where(supported, logits - z_y[..., None], xp.zeros_like(logits))
    loss = xp.sum(p * gap, axis=-1) + (1 - xp.sum(p * p, axis=-1)) / 2
    # d/dz = sparsemax(z) - onehot(y)
    return loss, lambda: xp.where(is_label(xp, labels, logits.shape[-1]), p - 1, p)
