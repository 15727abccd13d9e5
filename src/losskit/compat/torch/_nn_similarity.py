"""``torch.nn``'s pairwise loss classes."""

from __future__ import annotations

__all__: list[str] = []
