"""Keras 3 losses for ``losskit.compat.tf.keras.losses`` (merged there by name).

``circle``/``Circle``, over the core's per-anchor Circle loss
(:func:`losskit.losses.contrastive.circle_rows`, the formula of
:func:`losskit.circle`).  Keras departs from the core in these ways, each
mapped here and marked ``# Keras:``:

- ``y_pred`` is taken as already of unit length: the similarity is the plain
  dot product ``y_pred @ ref_embeddings.T`` (the core normalises), and the
  cosine distance ``1 - s`` is clipped at 0 (``s`` at 1), TensorFlow's
  ``maximum`` passing the whole gradient at the tie, as at the kinks of the
  weights ``[1 + m - s]_+`` and ``[s + m]_+`` (the core: 1/2);
- ``ref_embeddings``/``ref_labels`` (default ``y_pred``/``y_true``) are the
  other side of the pairs; ``remove_diagonal=False`` keeps ``(i, i)`` as a
  positive pair (with references, the diagonal is ``i == j`` of the
  rectangular ``(N, M)`` matrix, as Keras's ``eye(N, M)``);
- ``y_true`` is cast to int32 (float labels truncated) and may be ``(N, 1)``;
- the loss class averages over the anchors whose loss is above 0 (Keras
  masks the others out), ``"sum_over_batch_size"`` and ``"mean"`` alike.

Inputs in half precision are computed in float32 and the result rounded to
the input's dtype once (Keras computes in float16).  ``gamma`` and ``margin``
must be finite numbers (Keras takes NaN and inf too).
"""

from __future__ import annotations

from typing import Any

from .._backend import Array, cast, compute_dtype, is_dtype, shape_of
from .._config import kink_slope
from .._validation import check_floating, check_real
from ..losses.contrastive import circle_rows, pair_masks
from ._common import framework_semantics, half_back

#: name -> function or class, added to ``keras.losses`` by :mod:`losskit.compat.tf`.
#: Made before ``.tf`` is imported, so that tf.py's import of this module at its
#: bottom finds it when this module is imported first (a doctest run).
KERAS_LOSSES: dict[str, Any] = {}

from . import tf as _tf  # noqa: E402
from .tf import _ns, _Wrapper  # noqa: E402


def _labels(xp: Any, name: str, labels: Array, rows: int) -> Array:
    """Keras: ``ops.cast(labels, "int32")``, ``(N,)`` or ``(N, 1)``, one per embedding."""
    if not is_dtype(xp, labels.dtype, ("integral", "real floating", "bool")):
        msg = f"`{name}` must be a real array of integer labels; got dtype {labels.dtype}"
        raise TypeError(msg)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = xp.reshape(labels, (-1,))
    if shape_of(labels) != (rows,):
        msg = (
            f"`{name}` must have shape ({rows},) or ({rows}, 1), one label per row; "
            f"got {shape_of(labels)}"
        )
        raise ValueError(msg)
    return cast(xp, labels, xp.int32)  # Keras: floats truncated toward 0


def _embeddings(xp: Any, name: str, x: Array) -> None:
    check_floating(xp, name, x)
    if x.ndim != 2:
        msg = f"`{name}` must be a 2-d array (batch, features); got shape {shape_of(x)}"
        raise ValueError(msg)


@framework_semantics
def circle(
    y_true: Any,
    y_pred: Any,
    ref_labels: Any = None,
    ref_embeddings: Any = None,
    remove_diagonal: bool = True,
    gamma: float = 80,
    margin: float = 0.4,
) -> Array:
    """``keras.losses.circle``: the Circle loss of each row of ``y_pred`` (unit-length embeddings).

    ``softplus(LSE_P -gamma a_p (s - 1 + m) + LSE_N gamma a_n (s - m))`` with
    ``s = min(y_pred @ ref_embeddings.T, 1)``, ``a_p = [1 + m - s]_+``,
    ``a_n = [s + m]_+``; 0 for an anchor without a positive or a negative.

    >>> import numpy as np
    >>> from losskit.compat import tf
    >>> e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> # s = 1 with the positive, 0 with both negatives: log(1 + 2 exp(-2 gamma m^2))
    >>> tf.keras.losses.circle([0, 0, 1, 1], e, gamma=4.0, margin=0.25)
    array([0.79437677, 0.79437677, 0.79437677, 0.79437677])
    """
    xp, p, t, ref_t, ref_p = _ns(
        y_pred, y_true, ref_labels, ref_embeddings, names=("y_true", "ref_labels", "ref_embeddings")
    )
    _embeddings(xp, "y_pred", p)
    labels = _labels(xp, "y_true", t, shape_of(p)[0])
    if ref_p is None:
        ref_p = p
    else:
        _embeddings(xp, "ref_embeddings", ref_p)
        if shape_of(ref_p)[1] != shape_of(p)[1]:
            msg = (
                f"`ref_embeddings` must have the features of `y_pred`, {shape_of(p)[1]}; "
                f"got shape {shape_of(ref_p)}"
            )
            raise ValueError(msg)
    if ref_t is None:
        ref_labels_ = labels
    else:
        ref_labels_ = _labels(xp, "ref_labels", ref_t, shape_of(ref_p)[0])
    gamma = check_real("gamma", gamma)
    margin = check_real("margin", margin)
    dtype = compute_dtype(xp, p.dtype)
    q, k = cast(xp, p, dtype), cast(xp, ref_p, dtype)
    s = q @ k.T  # Keras: no normalisation
    d = 1 - s
    s = 1 - xp.where(d >= 0, d, xp.zeros_like(d))  # Keras: maximum(1 - s, 0), slope 1 at the tie
    pos, neg = pair_masks(xp, labels, ref_labels_, bool(remove_diagonal))
    with kink_slope(1.0):  # TF: maximum(x, 0) passes the whole gradient at x = 0
        loss, _ = circle_rows(xp, s, pos, neg, gamma, margin)
    return half_back(xp, loss, p.dtype)


class Circle(_Wrapper):
    """``keras.losses.Circle``: see :func:`circle`; the mean is over the anchors with a loss > 0.

    ``Circle(gamma, margin, remove_diagonal, reduction, name, dtype)``, in Keras's order.

    >>> import numpy as np
    >>> from losskit.compat import tf
    >>> e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.6, 0.8]])
    >>> per = tf.keras.losses.Circle(gamma=4.0, margin=0.25, reduction=None)([0, 0, 1, 1, 2], e)
    >>> per[-1]  # the last anchor has no positive: 0, left out of the mean
    np.float32(0.0)
    >>> bool(tf.keras.losses.Circle(gamma=4.0, margin=0.25)([0, 0, 1, 1, 2], e) == per.sum() / 4)
    True
    """

    _function = staticmethod(circle)
    _keras_name = "circle"
    _options = (("gamma", 80.0), ("margin", 0.4), ("remove_diagonal", True))

    def call(self, y_true: Array, y_pred: Array) -> tuple[Array, Array | None]:
        losses = circle(y_true, y_pred, **self._option_values())
        return losses, losses > 0  # Keras: set_keras_mask(loss, loss > 0)


KERAS_LOSSES.update(circle=circle, Circle=Circle)
vars(_tf.keras.losses).update(KERAS_LOSSES)
