"""Drop-in adapters with the names, argument orders and numbers of other frameworks.

``from losskit.compat import tf`` gives ``tf.nn.*`` and ``tf.keras.losses.*`` as
TensorFlow 2 / Keras 3 (TensorFlow backend) compute them; ``from losskit.compat
import torch`` gives ``torch.nn.functional``'s losses and softmaxes as PyTorch
computes them, edge cases included.  Both are thin argument mapping over the
losskit core and work on NumPy, PyTorch and JAX arrays alike; neither imports
TensorFlow or PyTorch.  Where a framework's number differs from the core's
semantics (Keras's clipping and renormalisation, PyTorch's NaN mean over an
all-ignored batch or its log clamped at -100), the adapter does that one step
itself and says so in a comment; the core's own value rules (targets in
[0, 1], non-negative weights) are off inside the adapters, which take what
the frameworks take.  Derivatives with respect to every floating argument are
the frameworks' own, under torch autograd and ``jax.grad``; inside
``jax.jit``, ``torch.compile`` and on ``meta`` a value an adapter would refuse
eagerly makes the losses it enters NaN, as in the core.

This package imports nothing until one of its two modules is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["optax", "tf", "torch"]


def __getattr__(name: str) -> Any:
    # `losskit.compat.tf` as an attribute (not only through `from ... import`).
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
