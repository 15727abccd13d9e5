"""The ``torch.autograd.Function`` behind :func:`losskit.compat._common.with_partials`.

A module of its own because it imports torch: it is imported only once a
torch tensor that requires grad has been handed to an adapter.  Defined at
import time, not inside a function, so that ``torch.compile`` meets a class it
knows rather than a class being built while it traces.  Two classes, because
dynamo cannot trace a Function with a forward-mode rule (``jvp``): the one
with it serves eager code (``torch.func.jvp``, ``hessian``), the one without
it ``torch.compile``.
"""

from __future__ import annotations

from typing import Any

import torch


def apply(value: Any, partials: Any, xp: Any, *args: torch.Tensor) -> Any:
    """``value(xp, *args)`` with derivatives ``partials(xp, *args)`` under autograd."""
    if torch.compiler.is_compiling():
        return WithPartials.apply(value, partials, xp, *args)
    return WithPartialsForwardMode.apply(value, partials, xp, *args)


class WithPartials(torch.autograd.Function):
    """``value(xp, *args)`` with the elementwise partials ``partials(xp, *args)``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(value: Any, partials: Any, xp: Any, *args: torch.Tensor) -> Any:
        return value(xp, *args)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        _, partials, xp, *args = inputs
        ctx.partials, ctx.xp = partials, xp
        ctx.save_for_backward(*args)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        # Made of differentiable operations on the saved inputs, so that
        # autograd differentiates the derivative again under create_graph.
        args = ctx.saved_tensors
        parts = ctx.partials(ctx.xp, *args)
        needed = ctx.needs_input_grad[3:]
        grads = (grad * d if n else None for d, n in zip(parts, needed, strict=True))
        return (None, None, None, *grads)


class WithPartialsForwardMode(WithPartials):
    """:class:`WithPartials` with the forward-mode rule, outside ``torch.compile``."""

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        WithPartials.setup_context(ctx, inputs, output)
        ctx.save_for_forward(*inputs[3:])

    @staticmethod
    def jvp(ctx: Any, value: Any, partials: Any, xp: Any, *tangents: Any) -> Any:
        # Forward mode (torch.func.jvp, jacfwd, hessian): sum of partial * tangent
        # over the arguments that have a tangent (an infinite partial never meets
        # a missing one).
        total = None
        for d, tangent in zip(ctx.partials(ctx.xp, *ctx.saved_tensors), tangents, strict=True):
            if tangent is not None:
                total = d * tangent if total is None else total + d * tangent
        return total
