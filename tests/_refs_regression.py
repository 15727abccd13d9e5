"""References for the regression and likelihood losses, from the frameworks themselves.

Each ``torch_*``, ``keras_*`` and ``optax_*`` function returns the framework's
unreduced loss and its derivative with respect to the prediction (and, where
asked, the target) in float64, by that framework's own autograd
(``torch.autograd``, ``tf.GradientTape``, ``jax.grad``); nothing here calls
losskit.  Keras averages over the last axis, so its functions are called with a
trailing axis of size 1, which makes them elementwise.

:func:`reduce_ref` applies the core's reduction (README, ``_reduce.py``):
``"none"``: ``s * l``; ``"sum"``: ``sum(s * l)``; ``"mean"``: ``sum(s * l) /
sum(s)`` (0 when nothing is counted), with the gradient scaled alike.
:func:`run` calls a losskit loss and its ``value_and_grad`` on one backend.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from _frameworks import tensorflow
from conftest import Backend, assert_close, loss_dtype


def _weights(per: np.ndarray, sample_weight: Any) -> np.ndarray:
    if sample_weight is None:
        return np.ones_like(per)
    s = np.asarray(sample_weight, dtype=np.float64)
    return np.broadcast_to(s.reshape(s.shape + (1,) * (per.ndim - s.ndim)), per.shape)


def reduce_ref(
    per: np.ndarray,
    dper: np.ndarray,
    reduction: str,
    sample_weight: Any = None,
    counts: np.ndarray | None = None,
) -> tuple[Any, np.ndarray]:
    """The core's reduction of the unreduced loss ``per`` and its derivative ``dper``.

    ``dper`` has ``per``'s shape, or one more trailing (class) axis.  ``counts``
    is what each example counts for in the mean (class weight, 0 if ignored).
    """
    per = np.asarray(per, dtype=np.float64)
    s = _weights(per, sample_weight)
    c = np.ones_like(per) if counts is None else counts
    if reduction == "none":
        value, coef = s * per, s
    elif reduction == "sum":
        value, coef = np.sum(s * per), s
    else:
        den = float(np.sum(s * c))
        value = np.sum(s * per) / den if den else 0.0
        coef = s / den if den else np.zeros_like(s)
    if np.ndim(dper) > per.ndim:
        coef = coef[..., None]
    return value, dper * coef


def run(xp: Backend, fn: Any, pred: Any, *others: Any, dtype: str = "float64", **opts: Any):
    """Call ``fn(pred, *others, **opts)`` and its ``value_and_grad`` on backend ``xp``.

    ``pred`` and floating ``others`` go in ``dtype``, integer ones as int64,
    array options in the loss dtype.  Checks that both calls return the
    backend's arrays, the value in the loss dtype, the gradient in ``dtype``
    and ``pred``'s shape, and that the two values agree.  Returns NumPy
    ``(value, grad)``.
    """
    import losskit as lk

    def convert(a: Any, float_dtype: str) -> Any:
        if a is None or np.isscalar(a):
            return a
        a = np.asarray(a)
        return xp.asarray(a, "int64" if a.dtype.kind in "iu" else float_dtype)

    args = [convert(pred, dtype), *(convert(a, dtype) for a in others)]
    kw = {k: convert(v, loss_dtype(dtype)) for k, v in opts.items()}
    value = fn(*args, **kw)
    v2, grad = lk.value_and_grad(fn)(*args, **kw)
    for arr, what in ((value, "value"), (v2, "value_and_grad value"), (grad, "gradient")):
        assert xp.is_native(arr), f"{what} is {type(arr)}, not a {xp.name} array"
    assert xp.dtype_name(value) == loss_dtype(dtype), (xp.dtype_name(value), dtype)
    assert xp.dtype_name(grad) == dtype, (xp.dtype_name(grad), dtype)
    assert tuple(grad.shape) == tuple(np.shape(pred))
    vn, v2n = xp.to_numpy(value), xp.to_numpy(v2)
    assert_close(v2n, vn, dtype, err_msg="value_and_grad value != plain call")
    return vn, xp.to_numpy(grad)


# --------------------------------------------------------------------------- frameworks


def _torch(a: Any, grad: bool = False) -> Any:
    import torch

    return torch.tensor(np.asarray(a, dtype=np.float64)).requires_grad_(grad)


def torch_ref(fn: Any, pred: Any, *others: Any, wrt: int = 0, **kw: Any):
    """``(fn(pred, *others, reduction="none", **kw), d sum / d argument wrt)`` by torch autograd."""
    import torch

    args = [_torch(pred, wrt == 0), *(_torch(a, wrt == i + 1) for i, a in enumerate(others))]
    value = fn(*args, reduction="none", **kw)
    (g,) = torch.autograd.grad(value.sum(), args[wrt])
    return value.detach().numpy(), g.numpy()


def keras_ref(name: str, pred: Any, target: Any, *, wrt: str = "pred", **kw: Any):
    """Keras's elementwise loss (a trailing axis of 1) and its derivative by GradientTape."""
    tf, keras = tensorflow()
    p = tf.constant(np.asarray(pred, dtype=np.float64)[..., None])
    t = tf.constant(np.asarray(target, dtype=np.float64)[..., None])
    with tf.GradientTape() as tape:
        tape.watch(p if wrt == "pred" else t)
        value = getattr(keras.losses, name)(t, p, **kw)
        total = tf.reduce_sum(value)
    g = tape.gradient(total, p if wrt == "pred" else t)
    return value.numpy(), g.numpy()[..., 0]


def optax_ref(name: str, pred: Any, *others: Any, wrt: int = 0, **kw: Any):
    """optax's unreduced loss and its derivative by ``jax.grad`` of the sum."""
    import jax
    import jax.numpy as jnp

    args = [jnp.asarray(np.asarray(a, dtype=np.float64)) for a in (pred, *others)]

    def total(x: Any) -> Any:
        full = list(args)
        full[wrt] = x
        return jnp.sum(fn(*full, **kw))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optax's import, deprecated names
        import optax

        fn = getattr(optax.losses, name)
        value = fn(*args, **kw)
        g = jax.grad(total)(args[wrt])
    return np.asarray(value), np.asarray(g)
