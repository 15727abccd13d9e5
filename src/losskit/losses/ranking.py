"""Listwise ranking losses: softmax ranking."""

from __future__ import annotations

__all__: list[str] = []
