"""optax's ``ctc_loss`` and ``ctc_loss_with_forward_probs`` over the core."""

from __future__ import annotations

__all__: list[str] = []
