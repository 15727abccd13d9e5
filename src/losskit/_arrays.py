"""Array helpers the loss definitions share: axes, gathers, safe products, clipping.

Each is a few array-API operations written once so that the losses read as
their formulas.  Only ``check_probs`` checks anything; the rest trust their
inputs, which the public layer has validated.
"""

from __future__ import annotations

from typing import Any

from ._backend import Array, cast, device_of, is_torch_namespace
from ._validation import check_fraction, check_unit_interval


def class_last(xp: Any, x: Array, axis: int) -> Array:
    return x if axis == x.ndim - 1 else xp.moveaxis(x, axis, -1)


def class_back(xp: Any, g: Array, axis: int) -> Array:
    return g if axis == g.ndim - 1 else xp.moveaxis(g, -1, axis)


def ratio(xp: Any, num: Array, den: Array) -> Array:
    """``num / den`` with ``0/0 = 0`` and ``num/0 = inf``, and no warning for either."""
    zero = den == 0
    r = num / xp.where(zero, xp.ones_like(den), den)
    return xp.where(zero & (num != 0), xp.full_like(r, float("inf")), r)


def per_example(xp: Any, bad: Array | None, axis: int) -> Array | None:
    """A bad-value mask over the classes (on ``axis``) as one flag per example."""
    return None if bad is None else xp.any(bad, axis=axis)


def xlogy_safe(xp: Any, t: Array, p: Array) -> Array:
    """``p`` with 1 put where ``t = 0`` and ``p = 0``, so ``t * log(...)`` is 0 there.

    Only that corner is replaced (``t log p`` is 0 by convention, ``0 * -inf``
    otherwise): where ``p > 0`` a zero target still gets its derivative
    ``log p``; where ``p = 0`` the derivative with respect to ``t`` is 0, the
    convention of ``torch.xlogy``.
    """
    return xp.where((t == 0) & (p == 0), xp.ones_like(p), p)


def gather_last(xp: Any, x: Array, index: Array) -> Array:
    """``x[..., index]`` per row: the log-probability of each example's label."""
    if is_torch_namespace(xp):
        index = cast(xp, index, xp.int64)  # torch.gather takes int64 only
    return xp.take_along_axis(x, index[..., None], axis=-1)[..., 0]


def is_label(xp: Any, labels: Array, num_classes: int) -> Array:
    """The one-hot mask ``[c == y]``, boolean, class axis last."""
    classes = xp.arange(num_classes, device=device_of(labels))
    return labels[..., None] == classes


def safe_labels(xp: Any, labels: Array, counted: Array | None, bad: Array | None) -> Array:
    """Labels fit to index with: 0 where ignored or (in a trace) out of range.

    An out-of-range index would crash a compiled gather; the example's loss is
    made NaN by the reduction's ``Invalid`` instead.
    """
    keep = counted if bad is None else (~bad if counted is None else counted & ~bad)
    return labels if keep is None else xp.where(keep, labels, xp.zeros_like(labels))


def check_probs(xp: Any, probs: Array, eps: float) -> tuple[float, Array | None]:
    """``eps`` in [0, 0.5) and ``probs`` (already known floating) in [0, 1].

    Returns ``eps`` and the traced mask of bad probabilities (None when read and good).
    """
    eps = check_fraction("eps", eps, upper=0.5, closed=False)
    return eps, check_unit_interval(xp, "probs", probs)


def clipped(xp: Any, p: Array, eps: float) -> tuple[Array, Array | None]:
    """``clip(p, eps, 1-eps)`` and where the clip let the gradient through (None: everywhere)."""
    if eps == 0:
        return p, None
    inside = (p >= eps) & (p <= 1 - eps)
    # Two wheres rather than xp.clip: array-api-compat's torch clip inspects the
    # bounds in Python (math.isnan), which torch.compile cannot trace for a
    # symbolic eps.
    device = device_of(p)
    low = xp.asarray(eps, dtype=p.dtype, device=device)
    high = xp.asarray(1 - eps, dtype=p.dtype, device=device)
    return xp.where(p < eps, low, xp.where(p > 1 - eps, high, p)), inside


def pass_through(xp: Any, d: Array, inside: Array | None) -> Array:
    """The clip's derivative: 1 inside [eps, 1-eps], 0 where a value was clipped."""
    return d if inside is None else xp.where(inside, d, xp.zeros_like(d))


def abs_flat_at_zero(xp: Any, x: Array) -> Array:
    """``|x|`` whose derivative at 0 is 0 under every autograd.

    PyTorch and TensorFlow take ``d|x|/dx = sign(x)``, 0 at 0, as the analytic
    gradients here do; JAX takes 1 there.  The ``where`` makes it 0 in JAX too.
    """
    return xp.where(x == 0, xp.zeros_like(x), xp.abs(x))
