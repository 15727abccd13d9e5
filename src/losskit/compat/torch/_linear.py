"""``torch.nn.functional.linear_cross_entropy`` (PyTorch 2.13), always chunked."""

from __future__ import annotations

__all__: list[str] = []
