"""``torch.nn.LinearCrossEntropyLoss``: a linear layer and the chunked cross-entropy."""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

from ..._backend import Array

if f"{__package__}.nn" not in sys.modules:  # pragma: no cover - a standalone doctest run
    # Imported on its own: nn.py imports this module at its end and reads its
    # names, so nn goes first, importing a complete copy of this module, which
    # is then the one in sys.modules.
    del sys.modules[__name__]
    import_module(f"{__package__}.nn")

from . import _linear as functional
from .nn import _WeightedLoss, torch

__all__: list[str] = ["LinearCrossEntropyLoss"]


class LinearCrossEntropyLoss(_WeightedLoss):
    """``torch.nn.LinearCrossEntropyLoss``: a ``Linear(in_features, num_classes)`` and the loss.

    ``forward(input, target)`` is
    :func:`losskit.compat.torch.linear_cross_entropy` of ``input`` through
    ``self.linear`` (a ``torch.nn.Linear``, created as PyTorch creates it:
    ``self.linear.weight`` ``(num_classes, in_features)``, ``self.linear.bias``
    when ``bias=True``), always chunked; ``weight`` (class weights) is a buffer.
    PyTorch's K-dimensional ``out_features`` is not supported (``ValueError``).
    Needs PyTorch (the layer's parameters are tensors).

    >>> import torch
    >>> from losskit.compat.torch import nn
    >>> loss = nn.LinearCrossEntropyLoss(2, 3, bias=True, dtype=torch.float64)
    >>> with torch.no_grad():
    ...     _ = loss.linear.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]]))
    ...     _ = loss.linear.bias.zero_()
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> # logits [[1, 0, -1], [2, 2, 0]]: (0.407606 + 2.758624) / 2
    >>> round(loss(x, torch.tensor([0, 2])).item(), 6)
    1.583115
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        out_features: tuple[int, ...] = (),
        bias: bool = False,
        device: Any = None,
        dtype: Any = None,
        reduction: str = "mean",
        weight: Any = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        options: Any = None,
    ) -> None:
        if torch is None:  # pragma: no cover - torch is installed where the tests run
            msg = "LinearCrossEntropyLoss needs PyTorch (its linear layer holds tensors)"
            raise ImportError(msg)
        if tuple(out_features) != ():
            msg = (
                "`out_features` must be () (the chunked loss has no K-dimensional form); "
                f"got {out_features!r}"
            )
            raise ValueError(msg)
        if weight is not None and tuple(weight.shape) != (num_classes,):
            msg = f"`weight` must have shape ({num_classes},); got {tuple(weight.shape)}"
            raise ValueError(msg)
        if not 0.0 <= label_smoothing <= 1.0:
            msg = f"`label_smoothing` must be in [0, 1]; got {label_smoothing}"
            raise ValueError(msg)
        super().__init__(weight=weight, reduction=reduction)
        self.num_classes = num_classes
        self.out_features = ()
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.linear = torch.nn.Linear(
            in_features, num_classes, bias=bias, device=device, dtype=dtype
        )
        self.options = options

    def forward(self, input: Any, target: Any) -> Array:
        return functional.linear_cross_entropy(
            input,
            self.linear.weight,
            target,
            linear_bias=self.linear.bias,
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            options=self.options,
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.linear.in_features},"
            f" num_classes={self.num_classes},"
            f" out_features={self.out_features},"
            f" bias={self.linear.bias is not None},"
            f" reduction={self.reduction},"
            f" ignore_index={self.ignore_index},"
            f" label_smoothing={self.label_smoothing},"
            f" options={self.options}"
        )
