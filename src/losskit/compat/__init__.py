"""Drop-in adapters with the names, argument orders and numbers of other frameworks.

``from losskit.compat import tf`` gives ``tf.nn.*`` and ``tf.keras.losses.*`` as
TensorFlow 2 / Keras 3 (TensorFlow backend) compute them; ``from losskit.compat
import torch`` gives ``torch.nn.functional``'s losses as PyTorch computes them,
edge cases included.  Both are thin argument mapping over the losskit core and
work on NumPy, PyTorch and JAX arrays alike; neither imports TensorFlow or
PyTorch.  Where a framework's number differs from the core's semantics (Keras's
clipping and renormalisation, PyTorch's NaN mean over an all-ignored batch or
its log clamped at -100), the adapter does that one step itself and says so in
a comment.

This package imports nothing until one of its two modules is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["tf", "torch"]


def __getattr__(name: str) -> Any:
    # `losskit.compat.tf` as an attribute (not only through `from ... import`).
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
