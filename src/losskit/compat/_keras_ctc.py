"""Keras 3's ``ctc`` and ``CTC`` for ``losskit.compat.tf.keras.losses`` (merged there by name).

Keras's rule (``keras.losses.ctc``): ``y_pred`` (batch, T, C) are logits
(normalised with a log-softmax), ``y_true`` (batch, S) class ids padded with
0, the blank (Keras's ``mask_index``); each label's length is its number of
non-zero ids and every frame counts.  The value is the exact CTC loss of
the core and its gradient the exact ``softmax - gamma``, as TensorFlow's.

Deliberate differences: a 0 before a label's last non-zero id raises
``ValueError`` (Keras would count the non-zero ids and take the 0 inside
the label as a class, a meaningless number), as does an id outside
``[0, C)``; an infeasible label (longer than the frames allow) has an
infinite loss with a NaN gradient (TensorFlow's dense CTC returns a large
finite artefact of its ``log 0``, about 710); float64 input is computed in
float64 (Keras computes in float32 and casts back).
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

from .._backend import Array, cast, compute_dtype, device_of, shape_of
from .._validation import Invalid
from ..losses.sequence import _first_bad, checked_sequences, index_dtype, per_example_nll
from ._common import framework_semantics

if f"{__package__}.tf" not in sys.modules:
    # Imported on its own (a doctest run, a direct import): tf.py imports this
    # module at its end and reads its names, so tf goes first, importing a
    # complete copy of this module, which is then the one in sys.modules.
    del sys.modules[__name__]
    import_module(f"{__package__}.tf")

from .tf import _ns, _Wrapper


@framework_semantics
def ctc(y_true: Any, y_pred: Any) -> Array:
    r"""``keras.losses.ctc``: the CTC loss of each sequence, (batch,).

    .. math::
        \ell_b = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_b)} \prod_t
            \operatorname{softmax}(x_{b,t})_{\pi_t}

    with blank 0 and ``y_b`` the non-zero ids of ``y_true[b]``. As Keras, the
    loss of half-precision ``y_pred`` is float32 (computed in float32; the
    gradient keeps ``y_pred``'s dtype).

    >>> import numpy as np
    >>> from losskit.compat import tf
    >>> logits = np.zeros((1, 2, 2), np.float32)  # two frames, {blank, 1} equally likely
    >>> tf.keras.losses.ctc(np.array([[1, 0]]), logits).round(6)  # -log(3/4)
    array([0.287682], dtype=float32)
    """
    xp, x, y = _ns(y_pred, y_true, names=("y_true",))
    if y.ndim != 2:
        msg = (
            "Targets `y_true` are expected to be a tensor of shape `(batch_size, max_length)` "
            f"in integer format. Received: y_true.shape={shape_of(y)}"
        )
        raise ValueError(msg)
    if x.ndim != 3:
        msg = (
            "Logits `y_pred` are expected to be a tensor of shape "
            f"`(batch_size, max_length, num_classes)`. Received: y_pred.shape={shape_of(x)}"
        )
        raise ValueError(msg)
    if not xp.isdtype(x.dtype, "real floating"):
        x = cast(xp, x, xp.float32)
    if not xp.isdtype(y.dtype, "integral"):
        y = cast(xp, y, index_dtype(xp))  # Keras: the loss classes hand y_true over as floats
    n, steps, num_classes = shape_of(x)
    if int(y.shape[0]) != n:
        msg = f"`y_true` must have the batch size {n} of `y_pred` {shape_of(x)}; got {shape_of(y)}"
        raise ValueError(msg)
    width = int(y.shape[1])
    nonzero = cast(xp, y != 0, index_dtype(xp))
    lengths = xp.sum(nonzero, axis=1)  # Keras: the label length is the count of non-zero ids

    def interior_zero(hxp: Any, v: Array) -> Array:
        later = hxp.sum(hxp.astype(v != 0, index_dtype(hxp)), axis=1, keepdims=True)
        seen = hxp.cumulative_sum(hxp.astype(v != 0, index_dtype(hxp)), axis=1)
        return (v == 0) & (seen < later)

    rule = "padded with 0 after its labels (0 is the blank; Keras counts the non-zero ids)"
    invalid = Invalid(xp, (n,))
    bad = _first_bad(xp, "y_true", (y,), interior_zero, rule)
    if bad is not None:
        invalid.add(xp.any(bad, axis=1))
    labels, t_len, s_len, bad_rows = checked_sequences(
        xp,
        y,
        None,
        lengths,
        (n, steps, num_classes, width),
        0,
        device_of(x),
        names=("y_true", "logit_lengths", "label_length"),
    )
    invalid.add(bad_rows)
    z = cast(xp, x, compute_dtype(xp, x.dtype))
    nll, _ = per_example_nll(xp, z, labels, t_len, s_len, 0, zero_infinity=False)
    # Keras: result_type(y_pred.dtype, "float32"), so float32 for half-precision input
    return invalid.poison(nll)


class CTC(_Wrapper):
    """``keras.losses.CTC``: see :func:`ctc` (``reduction="sum_over_batch_size"``: the batch mean).

    >>> import numpy as np
    >>> from losskit.compat import tf
    >>> logits = np.zeros((2, 2, 2), np.float32)
    >>> round(float(tf.keras.losses.CTC()(np.array([[1], [1]]), logits)), 6)  # -log(3/4)
    0.287682
    """

    _function = staticmethod(ctc)
    _keras_name = "ctc"


#: name -> function or class, added to ``keras.losses`` by :mod:`losskit.compat.tf`.
KERAS_LOSSES: dict[str, Any] = {"ctc": ctc, "CTC": CTC}
