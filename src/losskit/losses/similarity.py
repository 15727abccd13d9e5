"""Similarity and pairwise losses: cosine distance and embedding, margin ranking, triplet."""

from __future__ import annotations

__all__: list[str] = []
