"""``torch.nn.functional.ctc_loss`` over the core."""

from __future__ import annotations

__all__: list[str] = []
