"""PyTorch's own kernels, for torch tensors, where their semantics are exactly losskit's.

The portable path works on torch tensors too, but as a chain of small ops;
PyTorch's fused kernels are faster and keep autograd native.  Only the
unreduced values are taken from PyTorch: the reduction stays losskit's
(``_reduce``), which is where the semantics differ (PyTorch's mean over an
all-ignored batch is NaN; losskit's is 0).  Used only for values: gradients
asked of :func:`losskit.value_and_grad` come from the analytic formulas.

Where PyTorch differs, the portable path runs instead: soft-target
cross-entropy (PyTorch forms ``0 * -inf = NaN`` for a zero target on a
logit ~1e38 below the maximum), label smoothing and class weights (PyTorch
overflows on logits near the float maximum where the weighted loss is still
representable), sigmoid cross-entropy (PyTorch's ``(1-t) z + ...`` overflows
for ``|z|`` near 3e38), and binary cross-entropy on probabilities (PyTorch
clamps the log at -100; losskit clips the probability to eps).
"""

from __future__ import annotations

from typing import Any

from ._backend import Array, is_torch_namespace


def applies(xp: Any) -> bool:
    return bool(is_torch_namespace(xp))


def softmax(x: Array, dim: int, dtype: Any) -> Array:
    import torch

    return torch.softmax(x, dim=dim, dtype=dtype).to(x.dtype)


def log_softmax(x: Array, dim: int, dtype: Any) -> Array:
    import torch

    return torch.log_softmax(x, dim=dim, dtype=dtype).to(x.dtype)


def logsumexp(x: Array, dim: int, dtype: Any) -> Array:
    import torch

    return torch.logsumexp(x.to(dtype), dim=dim).to(x.dtype)


def sparse_cross_entropy(
    x: Array, labels: Array, ignore_index: int | None, reduction: str
) -> Array:
    """``F.cross_entropy`` of ``x`` (class axis last, compute dtype), ``reduction``
    "none" or "sum" (PyTorch's fused sum, whose backward is fused too; its
    "mean" is not used: it is NaN where losskit's is 0).

    Only without class weights and label smoothing: with them PyTorch forms
    ``w (lse - z)`` and overflows where losskit's value is still finite.
    """
    import torch
    import torch.nn.functional as F

    if x.ndim > 1:
        x = x.movedim(-1, 1)  # PyTorch wants (N, C, d1, ...)
    # Labels were checked to lie in [0, C) or equal ignore_index, so -100
    # (PyTorch's default) can stand for "no ignore index".
    return F.cross_entropy(
        x,
        labels.to(torch.int64),
        ignore_index=-100 if ignore_index is None else ignore_index,
        reduction=reduction,
    )
