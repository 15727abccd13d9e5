"""Keras 3 losses for ``losskit.compat.tf.keras.losses`` (merged there by name).

``cosine_similarity`` and ``CosineSimilarity``: ``-cos(y_true, y_pred)``
along ``axis``, each vector divided by ``max(|v|, 1e-7)`` (Keras's
``normalize``).  Deliberate differences: the vectors must have one shape
after Keras's squeeze-or-expand of a trailing size-1 axis (Keras would
broadcast them); the cosine stays exact where Keras's float32 squares
overflow (elements beyond about 1e19, where Keras gives 0) or its float16
ones do (beyond 256); half precision is accumulated in float32 and rounded
once; a zero vector's derivative is the clamped norm's (Keras's is NaN).
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

from .._backend import Array, shape_of
from .._define import _check_feature_axis
from ..losses.similarity import negative_cosine_similarity
from ._common import framework_semantics, half_back

_TF = f"{__package__}.tf"
if _TF not in sys.modules:
    # Imported on its own (a doctest run, a direct import): tf.py imports this
    # module at its end and reads KERAS_LOSSES, so tf goes first, importing a
    # complete copy of this module, which is then the one in sys.modules.
    del sys.modules[__name__]
    import_module(_TF)

from .tf import EPSILON, _ns, _squeeze_or_expand_to_same_rank, _Wrapper  # noqa: E402


@framework_semantics
def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Array:
    """``keras.losses.cosine_similarity``: ``-sum(normalize(y_true) * normalize(y_pred), axis)``.

    ``normalize(x) = x / max(|x|, 1e-7)`` along ``axis``; the loss lies in
    [-1, 1], -1 for parallel vectors.  ``y_true`` is cast to ``y_pred``'s
    dtype, and the loss has that dtype.

    >>> from losskit.compat import tf
    >>> y_true = [[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    >>> y_pred = [[1.0, 0.0], [1.0, 1.0], [-1.0, -1.0]]
    >>> tf.keras.losses.cosine_similarity(y_true, y_pred).round(6)
    array([-0., -1.,  1.], dtype=float32)
    """
    xp, p, t = _ns(y_pred, y_true, names=("y_true",))
    t = xp.astype(t, p.dtype)
    t, p = _squeeze_or_expand_to_same_rank(xp, t, p)
    if shape_of(t) != shape_of(p):
        msg = (
            f"`y_true` must have the shape of `y_pred` {shape_of(p)}; got {shape_of(t)} "
            "(Keras would broadcast them)"
        )
        raise ValueError(msg)
    _check_feature_axis("y_pred", p, axis)  # Keras's name in the message (the core's: `pred`)
    loss = negative_cosine_similarity(p, t, axis=axis, eps=EPSILON, reduction="none")
    return half_back(xp, loss, p.dtype)


class CosineSimilarity(_Wrapper):
    """``keras.losses.CosineSimilarity``: see :func:`cosine_similarity`.

    >>> from losskit.compat import tf
    >>> loss = tf.keras.losses.CosineSimilarity(axis=1)
    >>> float(loss([[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]]))
    -0.4999999701976776
    """

    _function = staticmethod(cosine_similarity)
    _keras_name = "cosine_similarity"
    _options = (("axis", -1),)


#: name -> function or class, added to ``keras.losses`` by :mod:`losskit.compat.tf`.
KERAS_LOSSES: dict[str, Any] = {
    "cosine_similarity": cosine_similarity,
    "CosineSimilarity": CosineSimilarity,
}
