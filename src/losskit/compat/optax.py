"""``optax.losses`` (0.2.8): every function under its optax name, signature and numbers."""

from __future__ import annotations

__all__: list[str] = []


# ctc_loss and ctc_loss_with_forward_probs live with the CTC work (imported last).
from . import _optax_ctc
from ._optax_ctc import *  # noqa: F403

__all__ += _optax_ctc.__all__
