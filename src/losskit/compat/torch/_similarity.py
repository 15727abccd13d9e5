"""``torch.nn.functional``'s pairwise losses over the core."""

from __future__ import annotations

__all__: list[str] = []
