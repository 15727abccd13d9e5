"""Reductions ("none", "sum", "mean") for the value and the gradient alike.

A loss first computes its unreduced values ``loss[i]`` (one per example for
the softmax family, one per element for the others; class weights and
ignored examples already folded in).  The reduction then gives

    value = sum_i s[i] loss[i] / D         ("mean")
    value = sum_i s[i] loss[i]             ("sum")
    value[i] = s[i] loss[i]                ("none")

with ``s`` the broadcast ``sample_weight`` (1 when None) and
``D = sum_i s[i] c[i]``, where ``c[i]`` is what example ``i`` counts for in
the mean: 1, or 0 when ignored, or its class weight.  The gradient of the
value with respect to ``loss[i]`` is ``coef[i] = s[i] / D`` (or ``s[i]``), a
quantity that depends on the weights only, never on the loss values, so a
fused kernel can write the finished gradient in the same pass that computes
the loss.  When nothing is counted (``D = 0``) the mean is 0 and so is every
coefficient: never 0/0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ._backend import Array, cast, shape_of
from ._validation import Invalid, check_sample_weight, check_weight_values


@dataclass(frozen=True)
class Reduction:
    """What to multiply each unreduced loss by, and how to combine them."""

    xp: Any
    kind: str
    weight: Array | None  # sample_weight broadcastable to the unreduced shape
    inv_denominator: Array | float  # 1/D for "mean" (0 when D = 0), else 1
    invalid: Invalid  # traced bad values: NaN where they enter

    @property
    def coef(self) -> Array | float:
        """d value / d loss[i]: broadcastable to the unreduced loss."""
        if self.weight is None:
            return self.inv_denominator
        return self.weight * self.inv_denominator

    def apply(self, loss: Array) -> Array:
        """Reduce the unreduced ``loss`` to the returned value."""
        xp = self.xp
        loss = self.invalid.poison_value(loss)
        weighted = loss if self.weight is None else loss * self.weight
        if self.kind == "none":
            return weighted
        total = xp.sum(weighted)
        if self.kind == "sum":
            return total
        return total * self.inv_denominator

    @property
    def takes_sum(self) -> bool:
        """Whether the value follows from the plain sum of the losses alone (see ``of_sum``)."""
        return self.kind != "none" and self.weight is None and self.invalid.mask is None

    def of_sum(self, total: Array) -> Array:
        """The value from ``sum(loss)``, when ``takes_sum``: a fused backend
        kernel can then reduce in the same pass as it computes the losses."""
        return total if self.kind == "sum" else total * self.inv_denominator

    def grad(self, dloss: Array, *, class_axis: bool) -> Array:
        """Scale the per-element derivative of ``loss[i]`` into d value / d input.

        With ``class_axis`` the derivative has one more, trailing axis (the
        classes) than the unreduced loss, over which the coefficient is
        broadcast.
        """
        dloss = self.invalid.poison(dloss, class_axis=class_axis)
        coef = self.coef
        if isinstance(coef, float):
            return dloss if coef == 1.0 else dloss * coef
        if class_axis:
            coef = coef[..., None]
        return dloss * coef


def plan(
    xp: Any,
    kind: str,
    unreduced_shape: tuple[int, ...],
    dtype: Any,
    *,
    sample_weight: Array | None = None,
    counts: Array | None = None,
    invalid: Invalid | None = None,
) -> Reduction:
    """Prepare a reduction before the loss is computed.

    ``counts`` is ``c[i]`` above, of the unreduced shape (None: every example
    counts 1).  ``sample_weight`` is checked and broadcast here.  ``invalid``
    holds what the loss's own value checks could not read (None: nothing).
    """
    if invalid is None:
        invalid = Invalid(xp, unreduced_shape)
    weight = None
    if sample_weight is not None:
        weight = check_sample_weight(xp, sample_weight, unreduced_shape)
        bad = check_weight_values(xp, "sample_weight", sample_weight)
        if bad is not None:
            invalid.add(xp.reshape(bad, shape_of(weight)))
        weight = cast(xp, weight, dtype)
    if kind != "mean":
        return Reduction(xp, kind, weight, 1.0, invalid)
    if weight is None and counts is None:
        n = math.prod(unreduced_shape)
        return Reduction(xp, kind, None, 1.0 / n if n else 0.0, invalid)
    if weight is None:
        total = xp.sum(counts)
    elif counts is None:
        total = xp.sum(xp.broadcast_to(weight, unreduced_shape))
    else:
        total = xp.sum(weight * counts)
    # 1/D with D = 0 mapped to 0 without ever forming 0/0 (which autograd
    # would carry into the gradient as NaN even behind a `where`).
    nonzero = total != 0
    inv = xp.where(nonzero, 1 / xp.where(nonzero, total, xp.ones_like(total)), 0)
    return Reduction(xp, kind, weight, cast(xp, inv, dtype), invalid)
