"""``torch.nn.CTCLoss``."""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

from ..._backend import Array
from . import _ctc

if f"{__package__}.nn" not in sys.modules:
    # Imported on its own (a doctest run, a direct import): nn.py imports this
    # module at its end and reads its names, so nn goes first, importing a
    # complete copy of this module, which is then the one in sys.modules.
    del sys.modules[__name__]
    import_module(f"{__package__}.nn")

from .nn import _Loss

__all__: list[str] = ["CTCLoss"]


class CTCLoss(_Loss):
    """``torch.nn.CTCLoss``: see :func:`losskit.compat.torch.ctc_loss`.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> lp = np.log(np.full((2, 1, 2), 0.5))
    >>> float(nn.CTCLoss()(lp, np.array([[1]]), [2], [1]))  # -log(3/4)
    0.2876820724517809
    """

    _function = staticmethod(_ctc.ctc_loss)
    _options = ("blank", "zero_infinity")

    def __init__(
        self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False
    ) -> None:
        super().__init__(reduction=reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(  # type: ignore[override]
        self, log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any
    ) -> Array:
        return self._loss(log_probs, targets, input_lengths, target_lengths)
