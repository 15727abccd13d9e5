"""The language-model head without the logits: chunked fused linear cross-entropy."""

from __future__ import annotations

__all__: list[str] = []
