"""PyTorch's ``torch.nn`` loss classes, names, constructors and numbers, over ``compat.torch``.

``from losskit.compat.torch import nn`` (or ``import losskit.compat.torch.nn
as nn``) gives ``nn.CrossEntropyLoss``, ``nn.NLLLoss``, ``nn.BCELoss``,
``nn.BCEWithLogitsLoss``, ``nn.MSELoss``, ``nn.L1Loss``, the other losses of
:mod:`losskit.compat.torch` as their classes (``nn.HuberLoss``,
``nn.CosineEmbeddingLoss``, ``nn.TripletMarginLoss``, ``nn.CTCLoss``,
``nn.LinearCrossEntropyLoss``, ...; ``__all__`` lists them) and the deprecated
``nn.NLLLoss2d``, with PyTorch 2's constructor arguments in their places (the
legacy ``size_average`` and ``reduce`` included: given at construction, they
set ``reduction`` with PyTorch's warning) and ``forward``'s argument names.
``nn.functional`` is :mod:`losskit.compat.torch`, as ``torch.nn.functional``
is PyTorch's; each class's ``forward`` calls its function there.

Where PyTorch is installed the classes are ``torch.nn.Module`` subclasses, so
that they sit in a module tree as PyTorch's do (``.to()``, ``.double()``,
``state_dict()``); a ``weight`` or ``pos_weight`` given as a tensor is a
buffer, as in PyTorch.  Asking for this module then imports PyTorch (the
choice does not depend on what was imported before).  Without PyTorch they
are plain classes whose call is ``forward``.  Either way NumPy arrays and JAX
arrays work as inputs, and weights of those kinds are kept as plain
attributes (a PyTorch buffer holds tensors only).

Examples
--------
>>> import numpy as np
>>> from losskit.compat.torch import nn
>>> loss = nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 1.0]), label_smoothing=0.1)
>>> x = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
>>> round(float(loss(x, np.array([2, 1]))), 4)
2.1374
>>> round(float(nn.functional.cross_entropy(
...     x, np.array([2, 1]), np.array([1.0, 2.0, 1.0]), label_smoothing=0.1)), 4)
2.1374
"""

from __future__ import annotations

import sys
import warnings
from types import FrameType
from typing import Any

from ..._backend import Array
from .. import torch as functional

torch: Any
try:
    import torch
except ImportError:  # pragma: no cover - torch is installed where the tests run
    torch = None

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "GaussianNLLLoss",
    "HingeEmbeddingLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "MSELoss",
    "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss",
    "MultiMarginLoss",
    "NLLLoss",
    "NLLLoss2d",
    "PoissonNLLLoss",
    "SmoothL1Loss",
    "SoftMarginLoss",
    "functional",
]


class _PlainModule:
    """What a loss uses of ``torch.nn.Module`` where PyTorch is not installed."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"  # as torch prints a loss module


_Module: Any = _PlainModule if torch is None else torch.nn.Module

# The frames between a user's line and a warning: these modules' and torch.nn's
# (Module.__call__ and the constructors' super() chain).
_INSIDE = ("losskit.compat", "torch.nn.modules")


def _stacklevel() -> int:
    """The ``stacklevel`` naming the user's line for a warning issued by this function's caller."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_INSIDE):
        frame, level = frame.f_back, level + 1
    return level


class _Loss(_Module):
    """``torch.nn.modules.loss._Loss``: the reduction, from the legacy flags with their warning.

    A subclass names its function of :mod:`losskit.compat.torch` in
    ``_function`` and the attributes passed to it as keywords in ``_options``.
    """

    _function: Any = None
    _options: tuple[str, ...] = ()

    def __init__(
        self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            # torch: the flags are read (and warned about) once, here; forward
            # passes only the reduction they name.
            reduction = functional.legacy_reduction(size_average, reduce, _stacklevel())
        self.reduction = reduction

    def _buffer(self, name: str, value: Any) -> None:
        """torch: ``register_buffer``; a non-tensor (NumPy, JAX, a list) is an attribute."""
        if torch is not None and (value is None or isinstance(value, torch.Tensor)):
            self.register_buffer(name, value)
        else:
            setattr(self, name, value)

    def _loss(self, *arrays: Any) -> Array:
        options = {name: getattr(self, name) for name in self._options}
        return type(self)._function(*arrays, **options, reduction=self.reduction)

    def forward(self, input: Any, target: Any) -> Array:
        return self._loss(input, target)


class _WeightedLoss(_Loss):
    """``torch.nn.modules.loss._WeightedLoss``: a ``weight`` buffer before the legacy flags."""

    def __init__(
        self,
        weight: Any = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self._buffer("weight", weight)


class L1Loss(_Loss):
    """``torch.nn.L1Loss``: :func:`losskit.compat.torch.l1_loss` as a module.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> float(nn.L1Loss()(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
    1.5
    """

    _function = staticmethod(functional.l1_loss)


class MSELoss(_Loss):
    """``torch.nn.MSELoss``: :func:`losskit.compat.torch.mse_loss` as a module.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> nn.MSELoss(reduction="none")(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    array([1., 4.])
    """

    _function = staticmethod(functional.mse_loss)


class HuberLoss(_Loss):
    """``torch.nn.HuberLoss``: :func:`losskit.compat.torch.huber_loss` as a module.

    Note PyTorch's constructor order ``(reduction, delta)``, without the legacy flags.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> nn.HuberLoss("none", 2.0)(np.array([0.5, 3.0]), np.zeros(2))
    array([0.125, 4.   ])
    """

    _function = staticmethod(functional.huber_loss)
    _options = ("delta",)

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        if not isinstance(delta, (float, int)):
            msg = f"delta must be a float or int, got: {type(delta)}"  # torch's check and words
            raise TypeError(msg)
        super().__init__(reduction=reduction)
        self.delta = delta


class SmoothL1Loss(_Loss):
    """``torch.nn.SmoothL1Loss``: :func:`losskit.compat.torch.smooth_l1_loss` as a module.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> nn.SmoothL1Loss(beta=2.0)(np.array([0.5, 3.0]), np.zeros(2))
    np.float64(1.03125)
    """

    _function = staticmethod(functional.smooth_l1_loss)
    _options = ("beta",)

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        beta: float = 1.0,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta


class PoissonNLLLoss(_Loss):
    """``torch.nn.PoissonNLLLoss``: :func:`losskit.compat.torch.poisson_nll_loss` as a module.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> loss = nn.PoissonNLLLoss(log_input=False, eps=0.0, reduction="none")
    >>> loss(np.array([2.0, 1.0]), np.array([2.0, 0.0])).round(6)
    array([0.613706, 1.      ])
    """

    _function = staticmethod(functional.poisson_nll_loss)
    _options = ("log_input", "full", "eps")

    def __init__(
        self,
        log_input: bool = True,
        full: bool = False,
        size_average: bool | None = None,
        eps: float = 1e-8,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input: Any, target: Any) -> Array:
        return self._loss(log_input, target)


class GaussianNLLLoss(_Loss):
    """``torch.nn.GaussianNLLLoss``: :func:`losskit.compat.torch.gaussian_nll_loss` as a module.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> loss = nn.GaussianNLLLoss(reduction="none")
    >>> loss(np.array([1.0, 3.0]), np.array([0.0, 1.0]), np.array([1.0, 4.0])).round(6)
    array([0.5     , 1.193147])
    """

    _function = staticmethod(functional.gaussian_nll_loss)
    _options = ("full", "eps")

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(None, None, reduction)
        self.full = full
        self.eps = eps

    def forward(self, input: Any, target: Any, var: Any) -> Array:  # type: ignore[override]
        return self._loss(input, target, var)


class KLDivLoss(_Loss):
    """``torch.nn.KLDivLoss``: :func:`losskit.compat.torch.kl_div` as a module.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> t, q = np.array([[0.5, 0.5, 0.0]]), np.array([[0.25, 0.5, 0.25]])
    >>> round(float(nn.KLDivLoss(reduction="batchmean")(np.log(q), t)), 6)
    0.346574
    """

    _function = staticmethod(functional.kl_div)
    _options = ("log_target",)

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        log_target: bool = False,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target


class SoftMarginLoss(_Loss):
    """``torch.nn.SoftMarginLoss``: :func:`losskit.compat.torch.soft_margin_loss` as a module.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> round(float(nn.SoftMarginLoss()(np.array([0.0, 2.0]), np.array([1.0, -1.0]))), 4)
    1.41
    """

    _function = staticmethod(functional.soft_margin_loss)


class HingeEmbeddingLoss(_Loss):
    """``torch.nn.HingeEmbeddingLoss``: :func:`losskit.compat.torch.hinge_embedding_loss`.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> loss = nn.HingeEmbeddingLoss(margin=2.0, reduction="none")
    >>> loss(np.array([0.3, 0.3, 2.0]), np.array([1, -1, -1]))
    array([0.3, 1.7, 0. ])
    """

    _function = staticmethod(functional.hinge_embedding_loss)
    _options = ("margin",)

    def __init__(
        self,
        margin: float = 1.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin


class MultiMarginLoss(_WeightedLoss):
    """``torch.nn.MultiMarginLoss``: :func:`losskit.compat.torch.multi_margin_loss` as a module.

    ``p`` and the weight's rank are checked at construction, with PyTorch's words.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> loss = nn.MultiMarginLoss(p=2, weight=np.array([2.0, 1.0, 1.0]), reduction="none")
    >>> loss(np.array([[2.0, 1.5, -1.0]]), np.array([0]))
    array([0.16666667])
    """

    _function = staticmethod(functional.multi_margin_loss)
    _options = ("p", "margin", "weight")

    def __init__(
        self,
        p: int = 1,
        margin: float = 1.0,
        weight: Any = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if p not in (1, 2):
            msg = "only p == 1 and p == 2 supported"
            raise ValueError(msg)
        rank = getattr(weight, "ndim", 1)
        if weight is not None and rank != 1:
            msg = f"MultiMarginLoss: expected weight to be None or 1D tensor, got {rank}D instead"
            raise ValueError(msg)
        self.p = p
        self.margin = margin


class MultiLabelMarginLoss(_Loss):
    """``torch.nn.MultiLabelMarginLoss``: :func:`losskit.compat.torch.multilabel_margin_loss`.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> s, y = np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([[3, 0, -1, 1]])
    >>> round(float(nn.MultiLabelMarginLoss()(s, y)), 12)
    0.85
    """

    _function = staticmethod(functional.multilabel_margin_loss)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """``torch.nn.MultiLabelSoftMarginLoss``: ``multilabel_soft_margin_loss`` as a module.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> loss = nn.MultiLabelSoftMarginLoss(weight=np.array([3.0, 1.0, 1.0]))
    >>> round(float(loss(np.array([[0.0, 1e4, -1e4]]), np.array([[1.0, 1.0, 0.0]]))), 6)  # log 2
    0.693147
    """

    _function = staticmethod(functional.multilabel_soft_margin_loss)
    _options = ("weight",)


class NLLLoss(_WeightedLoss):
    """``torch.nn.NLLLoss``: :func:`losskit.compat.torch.nll_loss` as a module.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> nn.NLLLoss(reduction="none")(np.log([[0.5, 0.25, 0.25]]), np.array([1])).round(4)
    array([1.3863])
    """

    _function = staticmethod(functional.nll_loss)
    _options = ("weight", "ignore_index")

    def __init__(
        self,
        weight: Any = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index


class NLLLoss2d(NLLLoss):
    """``torch.nn.NLLLoss2d``: :class:`NLLLoss`, deprecated (a ``FutureWarning``, as PyTorch's)."""

    def __init__(
        self,
        weight: Any = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        msg = (
            "`NLLLoss2d` has been deprecated. Please use `NLLLoss` instead as a drop-in "
            "replacement and see https://pytorch.org/docs/main/nn.html#torch.nn.NLLLoss "
            "for more details."
        )
        warnings.warn(msg, FutureWarning, stacklevel=_stacklevel())
        super().__init__(weight, size_average, ignore_index, reduce, reduction)


class CrossEntropyLoss(_WeightedLoss):
    """``torch.nn.CrossEntropyLoss``: :func:`losskit.compat.torch.cross_entropy` as a module.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> x = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
    >>> nn.CrossEntropyLoss(reduction="none")(x, np.array([2, 1])).round(4)
    array([0.0222, 3.0997])
    """

    _function = staticmethod(functional.cross_entropy)
    _options = ("weight", "ignore_index", "label_smoothing")

    def __init__(
        self,
        weight: Any = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing


class BCELoss(_WeightedLoss):
    """``torch.nn.BCELoss``: :func:`losskit.compat.torch.binary_cross_entropy` as a module.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> nn.BCELoss(reduction="sum")(np.array([0.0, 0.5]), np.array([1.0, 1.0])).round(4)
    np.float64(100.6931)
    """

    _function = staticmethod(functional.binary_cross_entropy)
    _options = ("weight",)


class BCEWithLogitsLoss(_Loss):
    """``torch.nn.BCEWithLogitsLoss``: ``binary_cross_entropy_with_logits`` as a module.

    ``weight`` and ``pos_weight`` are buffers, as in PyTorch.

    >>> import numpy as np
    >>> from losskit.compat.torch import nn
    >>> loss = nn.BCEWithLogitsLoss(pos_weight=np.array([2.0, 1.0]), reduction="none")
    >>> loss(np.array([[0.0, 0.0]]), np.array([[1.0, 1.0]])).round(4)
    array([[1.3863, 0.6931]])
    """

    _function = staticmethod(functional.binary_cross_entropy_with_logits)
    _options = ("weight", "pos_weight")

    def __init__(
        self,
        weight: Any = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        pos_weight: Any = None,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self._buffer("weight", weight)
        self._buffer("pos_weight", pos_weight)


# The classes of issues 9-11, one file each (imported last: they subclass _Loss above).
from ._nn_ctc import (  # noqa: E402
    CTCLoss,
)
from ._nn_linear import (  # noqa: E402
    LinearCrossEntropyLoss,
)
from ._nn_similarity import (  # noqa: E402
    CosineEmbeddingLoss,
    MarginRankingLoss,
    TripletMarginLoss,
    TripletMarginWithDistanceLoss,
)

__all__ += [
    "CTCLoss",
    "CosineEmbeddingLoss",
    "LinearCrossEntropyLoss",
    "MarginRankingLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
]
