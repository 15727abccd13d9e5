"""``torch.nn.LinearCrossEntropyLoss``."""

from __future__ import annotations

__all__: list[str] = []
