"""Overlap losses of segmentation: Dice, generalized Dice, Tversky."""

from __future__ import annotations

__all__: list[str] = []
