"""Listwise ranking losses: softmax ranking."""

from __future__ import annotations

from typing import Any

from .._backend import Array, stop_gradient
from .._define import rowwise_loss
from .._validation import check_non_negative

__all__ = ["ranking_softmax"]


@rowwise_loss(pred="logits", truth="labels", checks=(("labels", check_non_negative),))
def ranking_softmax(xp: Any, logits: Array, labels: Array) -> tuple[Array, Any]:
    r"""Listwise softmax ranking loss: cross-entropy of the list's softmax against its relevances.

    For a list of scores ``s`` and non-negative relevance labels ``y`` (along
    ``axis``):

    .. math::
        \ell(s, y) = -\sum_i y_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}
                   = \sum_i y_i \bigl(\operatorname{LSE}(s) - s_i\bigr), \qquad
        \frac{\partial \ell}{\partial s_i} = \Bigl(\sum_j y_j\Bigr) p_i - y_i

    with ``p = softmax(s)``.  The labels are not normalised (optax's
    ``ranking_softmax_loss``; TF-Ranking's ``SoftmaxLoss`` divides by their
    sum), so graded relevances weigh a list by their total.  An item with
    score ``-inf`` and label 0 is left out of the list (its term and its
    derivatives are 0): that is how optax's ``where`` mask maps onto this
    loss; a list whose every score is ``-inf`` and every label 0 has loss 0.
    One value per list under ``reduction="none"``.  The labels must be
    non-negative (NaN refused); ``log_softmax`` is computed with the maximum
    subtracted, so scores of any finite magnitude give a finite loss.

    Replaces optax ``ranking_softmax_loss`` (``losskit.compat.optax`` maps its
    ``where``, ``weights`` and ``reduce_fn``).

    Parameters
    ----------
    logits : floating array (..., list_size, ...)
        The score of each item.
    labels : real array of the logits' shape
        The relevance of each item, >= 0.
    axis : int, default -1
        The list axis.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: one loss per list (the logits' shape without ``axis``);
        ``"mean"``: their mean, weighted by ``sample_weight`` if given.
    sample_weight : array of the batch shape, optional
        One weight per list, or a leading part of that shape (default None: all 1).

    Examples
    --------
    One relevant item among three equal scores: ``-log(1/3)``.

    >>> import numpy as np, losskit as lk
    >>> float(lk.ranking_softmax(np.zeros((1, 3)), np.array([[0.0, 1.0, 0.0]])))
    1.0986122886681098

    A left-out third item; ``1 (L - 2) + 2 (L - 0)`` with ``L = log(e^2 + 1)``:

    >>> s, y = np.array([[2.0, 0.0, -np.inf]]), np.array([[1.0, 2.0, 0.0]])
    >>> lk.ranking_softmax(s, y, reduction="none").round(6)
    array([4.380784])
    >>> round(3 * float(np.log(np.exp(2.0) + 1)) - 2, 6)
    4.380784

    References
    ----------
    Z. Cao, T. Qin, T.-Y. Liu, M.-F. Tsai, H. Li. Learning to rank: from
    pairwise approach to listwise approach. ICML 2007.
    S. Bruch, X. Wang, M. Bendersky, M. Najork. An analysis of the softmax
    cross entropy loss for learning-to-rank with binary relevance. ICTIR 2019.
    """
    inf = float("inf")
    if logits.shape[-1] == 0:  # empty lists: nothing to rank, loss 0
        return xp.sum(labels, axis=-1), lambda: labels
    top = xp.max(logits, axis=-1, keepdims=True)
    top = stop_gradient(xp, xp.where(xp.abs(top) < inf, top, xp.zeros_like(top)))
    e = xp.exp(logits - top)
    total = xp.sum(e, axis=-1, keepdims=True)
    total = xp.where(total > 0, total, xp.ones_like(total))  # a list of -inf scores only
    minus_log_p = top + xp.log(total) - logits  # LSE(s) - s_i, +inf where s_i = -inf
    left_out = (labels == 0) & (minus_log_p == inf)
    minus_log_p = xp.where(left_out, xp.zeros_like(minus_log_p), minus_log_p)
    value = xp.sum(labels * minus_log_p, axis=-1)
    # d/ds_i = sum(y) softmax(s)_i - y_i
    return value, lambda: xp.sum(labels, axis=-1, keepdims=True) * (e / total) - labels
