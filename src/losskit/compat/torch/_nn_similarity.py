"""``torch.nn``'s pairwise loss classes over :mod:`losskit.compat.torch`'s functions."""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

from ..._backend import Array
from . import _similarity as functional

if f"{__package__}.nn" not in sys.modules:
    # Imported on its own (a doctest run, a direct import): nn.py imports this
    # module at its end and reads its names, so nn goes first, importing a
    # complete copy of this module, which is then the one in sys.modules (the
    # import system returns what sys.modules holds once this file has run).
    del sys.modules[__name__]
    import_module(f"{__package__}.nn")

from .nn import _Loss

__all__: list[str] = [
    "CosineEmbeddingLoss",
    "MarginRankingLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
]


class _MarginLoss(_Loss):
    """A loss of ``margin`` (PyTorch's default 0) and the legacy flags, over three arrays."""

    _options = ("margin",)

    def __init__(
        self,
        margin: float = 0.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Any, input2: Any, target: Any) -> Array:  # type: ignore[override]
        return self._loss(input1, input2, target)


class CosineEmbeddingLoss(_MarginLoss):
    """``torch.nn.CosineEmbeddingLoss``: :func:`losskit.compat.torch.cosine_embedding_loss`.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> loss = nn.CosineEmbeddingLoss(margin=0.5, reduction="none")
    >>> x1, x2 = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 1.0], [1.0, 0.0]])
    >>> loss(x1, x2, np.array([1, -1])).round(4)
    array([0.2929, 0.2071])
    """

    _function = staticmethod(functional.cosine_embedding_loss)


class MarginRankingLoss(_MarginLoss):
    """``torch.nn.MarginRankingLoss``: :func:`losskit.compat.torch.margin_ranking_loss`.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> loss = nn.MarginRankingLoss(margin=0.5, reduction="sum")
    >>> float(loss(np.array([2.0, 0.5]), np.array([1.0, 1.0]), np.array([1.0, 1.0])))
    1.0
    """

    _function = staticmethod(functional.margin_ranking_loss)


def _margin_above_zero(cls: str, margin: Any) -> None:
    """torch: the triplet losses refuse ``margin <= 0`` at construction (its words)."""
    if margin <= 0:
        msg = f"{cls}: expected margin to be greater than 0, got {margin} instead"
        raise ValueError(msg)


class TripletMarginLoss(_Loss):
    """``torch.nn.TripletMarginLoss``: :func:`losskit.compat.torch.triplet_margin_loss`.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> loss = nn.TripletMarginLoss(margin=1.0, eps=0.0, reduction="none")
    >>> a, pos, neg = np.array([[0.0, 0.0]]), np.array([[0.0, 0.5]]), np.array([[0.0, 1.0]])
    >>> loss(a, pos, neg)
    array([0.5])
    """

    _function = staticmethod(functional.triplet_margin_loss)
    _options = ("margin", "p", "eps", "swap")

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        _margin_above_zero("TripletMarginLoss", margin)
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor: Any, positive: Any, negative: Any) -> Array:  # type: ignore[override]
        return self._loss(anchor, positive, negative)


class TripletMarginWithDistanceLoss(_Loss):
    """``torch.nn.TripletMarginWithDistanceLoss``: the triplet loss of any distance.

    See :func:`losskit.compat.torch.triplet_margin_with_distance_loss`.  A
    ``distance_function`` of None is ``pairwise_distance`` (PyTorch stores a
    ``PairwiseDistance()`` module there; here it stays None).

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> l1 = lambda x, y: np.abs(x - y).sum(-1)
    >>> loss = nn.TripletMarginWithDistanceLoss(distance_function=l1, margin=2.0)
    >>> a, pos, neg = np.array([[0.0, 0.0]]), np.array([[0.0, 0.5]]), np.array([[0.0, 1.0]])
    >>> float(loss(a, pos, neg))
    1.5
    """

    _function = staticmethod(functional.triplet_margin_with_distance_loss)
    _options = ("distance_function", "margin", "swap")

    def __init__(
        self,
        *,
        distance_function: Any = None,
        margin: float = 1.0,
        swap: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(None, None, reduction)
        _margin_above_zero("TripletMarginWithDistanceLoss", margin)
        self.distance_function = distance_function
        self.margin, self.swap = margin, swap

    def forward(self, anchor: Any, positive: Any, negative: Any) -> Array:  # type: ignore[override]
        return self._loss(anchor, positive, negative)
