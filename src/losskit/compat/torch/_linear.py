"""``torch.nn.functional.linear_cross_entropy`` (PyTorch 2.13), always chunked."""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

import numpy as np

if __package__ not in sys.modules:  # pragma: no cover - a standalone doctest run
    # Imported on its own: the package imports this module at its end and reads
    # its names, so the package goes first, importing a complete copy of this
    # module, which is then the one in sys.modules.
    del sys.modules[__name__]
    import_module(__package__)

from ..._backend import Array, namespace, shape_of
from ..._validation import check_floating, check_fraction
from ...losses.large_vocab import linear_cross_entropy as linear_cross_entropy_core
from .._common import framework_semantics, half_back, int64_class_ids
from . import _ignore_index, _label_weight, _mean_or_nan, _reduction

__all__: list[str] = ["linear_cross_entropy"]

#: The fields of ``torch.nn.LinearCrossEntropyOptions`` read here.
_OPTION_FIELDS = (
    "allow_retain_graph",
    "batch_chunk_size",
    "chunking_method",
    "acc_policy",
    "acc_dtype",
)


def _chunk_size(options: Any, reduction: str) -> int | None:
    """The core's ``chunk_size`` from a ``torch.nn.LinearCrossEntropyOptions`` (or None).

    ``batch_chunk_size`` is the chunk's row count.  ``chunking_method``'s
    heuristics (``"auto"``, ``"aspect_ratio[:N]"``) are replaced by the core's
    default chunk (sized by :func:`losskit.linear_cross_entropy` for the BLAS, which runs
    small chunks slowly); the accumulation fields are the core's own rule
    (half-precision input accumulates in float32), so ``acc_policy`` and
    ``acc_dtype`` are accepted and change nothing.
    """
    if options is None:
        return None
    missing = [f for f in _OPTION_FIELDS if not hasattr(options, f)]
    if missing:
        msg = (
            "`options` must be None or a torch.nn.LinearCrossEntropyOptions (fields "
            f"{', '.join(_OPTION_FIELDS)}); got {type(options).__name__} without {missing}"
        )
        raise TypeError(msg)
    size = options.batch_chunk_size
    if size is not None and (
        isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer))
    ):
        msg = f"`options.batch_chunk_size` must be None or a positive int; got {size!r}"
        raise TypeError(msg)
    if size is not None and size <= 0:
        msg = f"`options.batch_chunk_size` must be None or a positive int; got {size!r}"
        raise ValueError(msg)
    method = options.chunking_method
    if size is not None and method not in (None, "auto"):
        # torch: an explicit heuristic and an explicit size disagree in general.
        msg = (
            f"`options` must give batch_chunk_size or chunking_method, not both; got "
            f"batch_chunk_size={size!r} and chunking_method={method!r}"
        )
        raise ValueError(msg)
    if options.allow_retain_graph and reduction != "none":
        # "mean"/"sum": the core computes the gradients in forward and scales them in
        # place in backward, so one backward per call. "none" recomputes in backward and
        # takes retain_graph=True anyway (PyTorch ignores the field there too).
        msg = (
            "`options.allow_retain_graph=True` is not supported: the chunked loss allows one "
            f"backward per call (reduction={reduction!r}); compute the loss again instead, or "
            "use reduction='none', whose backward recomputes and takes retain_graph=True"
        )
        raise ValueError(msg)
    return None if size is None else int(size)


@framework_semantics
def linear_cross_entropy(
    input: Any,
    linear_weight: Any,
    target: Any,
    *,
    linear_bias: Any = None,
    weight: Any = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options: Any = None,
) -> Array:
    r"""``torch.nn.functional.linear_cross_entropy``: ``cross_entropy(linear(input, W, b), y)``.

    The softmax cross-entropy of the logits ``z = input @ linear_weight.T +
    linear_bias`` against class ids, as PyTorch's ``F.cross_entropy(z, target,
    weight, ignore_index, label_smoothing)``, computed by the chunked core
    :func:`losskit.linear_cross_entropy` whatever ``options`` says, so that at
    most one chunk of logits exists at once.  Per counted token (``C`` classes,
    class weights ``w``, smoothing ``ε``)

    .. math::
        \ell_i = (1-\varepsilon)\, w_{y_i} (\mathrm{lse}_i - z_{i y_i})
               + \frac{\varepsilon}{C} \sum_c w_c (\mathrm{lse}_i - z_{ic}),
        \qquad \frac{\partial \ell_i}{\partial z_{ic}} = (1-\varepsilon) w_{y_i}
               (p_{ic} - [c = y_i]) + \frac{\varepsilon}{C} (p_{ic} \textstyle\sum w - w_c),

    and ``∂/∂input = G W``, ``∂/∂linear_weight = Gᵀ input``, ``∂/∂linear_bias =
    Σ_i G_i``.  ``mean`` divides the sum by the summed class weight of the
    counted tokens, NaN when that is 0 (all ignored, or no tokens), as PyTorch.
    ``ignore_index=None`` means PyTorch's -100.  The derivative with respect to
    ``weight`` (which PyTorch refuses to take) is the exact one.

    Parameters
    ----------
    input : array ``(D,)`` or ``(N, D)``, floating
    linear_weight : array ``(C, D)``, ``input``'s dtype
    target : integer array ``()`` or ``(N,)``, class ids
    linear_bias : array ``(C,)``, optional
    weight : array ``(C,)``, optional
        Class weights, ``input``'s dtype.
    reduction : {"mean", "sum", "none"}
    ignore_index : int, optional
    label_smoothing : float in [0, 1]
    options : torch.nn.LinearCrossEntropyOptions, optional
        Its ``batch_chunk_size`` sets the chunk's rows; otherwise the core's
        chunk (sized for the BLAS and the cache) replaces PyTorch's
        heuristics; ``acc_policy``/``acc_dtype`` change nothing (half precision
        always accumulates in float32); ``allow_retain_graph=True`` is refused
        for "mean"/"sum" (one backward per call: their gradients are computed in
        forward and scaled in place) and, as in PyTorch, not needed for "none"
        (its backward recomputes and takes ``retain_graph=True``).

    Returns
    -------
    The loss, of ``input``'s kind and dtype (half precision in, half out,
    rounded once from float32).

    Not supported (``ValueError``): PyTorch's K-dimensional ``linear_weight``
    ``(C, d1, ..., dK, D)`` and class-probability targets, which PyTorch too
    computes only through the full logits.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> x = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> W = np.array([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> # logits [[1, 0, -1], [2, 2, 0]]; the second token is ignored (-100):
    >>> # log(e + 1 + 1/e) - 1 = 0.407606
    >>> round(float(F.linear_cross_entropy(x, W, np.array([0, -100]))), 6)
    0.407606
    >>> float(F.linear_cross_entropy(x, W, np.array([-100, -100])))  # torch: NaN
    nan

    References
    ----------
    PyTorch 2.13, ``torch.nn.functional.linear_cross_entropy``.
    Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models" (2024).
    """
    red = _reduction(None, None, reduction)
    xp, x, lw, t, b, w = namespace(
        input,
        linear_weight,
        target,
        linear_bias,
        weight,
        names=("linear_weight", "target", "linear_bias", "weight"),
    )
    check_floating(xp, "input", x)
    check_floating(xp, "linear_weight", lw)
    eps = check_fraction("label_smoothing", label_smoothing)
    chunk_size = _chunk_size(options, red)
    if x.ndim not in (1, 2):
        msg = f"`input` must have shape (in_features,) or (N, in_features); got {shape_of(x)}"
        raise ValueError(msg)
    d = int(x.shape[-1])
    if lw.ndim != 2:
        msg = (
            f"`linear_weight` must have shape (C, {d}); got {shape_of(lw)} (PyTorch's "
            "K-dimensional weights (C, d1, ..., dK, in_features) are not supported by the "
            "chunked loss)"
        )
        raise ValueError(msg)
    if int(lw.shape[1]) != d:
        msg = (
            f"`linear_weight` must have in_features = {d} columns (the last axis of `input` "
            f"{shape_of(x)}); got shape {shape_of(lw)}"
        )
        raise ValueError(msg)
    if lw.dtype != x.dtype:
        msg = f"`linear_weight` must have the dtype of `input` ({x.dtype}); got {lw.dtype}"
        raise TypeError(msg)
    c = int(lw.shape[0])
    batch = shape_of(x)[:-1]
    if shape_of(t) == (*batch, c) and shape_of(t) != batch:
        msg = (
            f"`target` of the logits' shape {(*batch, c)} holds class probabilities, which "
            "the chunked linear_cross_entropy does not support (compute the logits and use "
            f"cross_entropy); class ids have shape {batch}"
        )
        raise ValueError(msg)
    if shape_of(t) != batch:
        msg = f"`target` must be class ids of shape {batch} (`input` without its last axis); got {shape_of(t)}"  # noqa: E501
        raise ValueError(msg)
    if not xp.isdtype(t.dtype, "integral"):
        msg = f"`target` holds class ids, which must be integers; got dtype {t.dtype}"
        raise TypeError(msg)
    ignore = _ignore_index(-100 if ignore_index is None else ignore_index)
    if b is not None:
        if shape_of(b) != (c,):
            msg = f"`linear_bias` must have shape ({c},); got {shape_of(b)}"
            raise ValueError(msg)
        if b.dtype != x.dtype:
            msg = f"`linear_bias` must have the dtype of `input` ({x.dtype}); got {b.dtype}"
            raise TypeError(msg)
    if w is not None:
        if shape_of(w) != (c,):
            msg = f"`weight` must have one weight per class, shape ({c},); got {shape_of(w)}"
            raise ValueError(msg)
        if not hasattr(weight, "dtype"):
            w = xp.astype(w, x.dtype)  # a list or number takes the input's dtype
        elif w.dtype != x.dtype:
            msg = (
                f"`weight` must have the dtype of `input` ({x.dtype}), as PyTorch requires; "
                f"got {w.dtype}"
            )
            raise TypeError(msg)
    ids = int64_class_ids(xp, t, c, ignore)[0]  # bad ids: the core raises or poisons
    core_red = "sum" if red == "mean" else red
    # the core differentiates in the class weights too (PyTorch refuses to)
    loss = linear_cross_entropy_core(
        x, lw, ids, bias=b, class_weight=w, ignore_index=ignore, label_smoothing=eps,
        reduction=core_red, chunk_size=chunk_size,
    )  # fmt: skip
    if red == "mean":
        den = xp.sum(_label_weight(xp, ids, w, ids != ignore, loss.dtype))
        loss = _mean_or_nan(xp, loss, den)
    return half_back(xp, loss, x.dtype)
