"""Contrastive metric-learning losses over a batch of embeddings: NT-Xent, Circle."""

from __future__ import annotations

__all__: list[str] = []
