"""The ``torch.autograd.Function`` behind :func:`losskit.ctc` for torch tensors.

A module of its own because it imports torch: :mod:`losskit.losses.sequence`
imports it only once a torch tensor that requires grad has arrived.  Defined
at import time, not inside a function, so that ``torch.compile`` meets a class
it knows rather than a class being built while it traces.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from .sequence import _infeasible_rows, _torch_nll_and_grad, _torch_xp


class CTCFunction(torch.autograd.Function):
    """Per-example CTC ``nll`` (N,) whose gradient is computed by the forward pass.

    The forward runs the forward and backward recursions once (the fused
    kernel on CPU tensors, through zero-copy NumPy views; torch operations
    under ``torch.compile`` and on other devices) and saves ``d nll / d x``;
    the backward only scales it by the incoming gradient.  Autograd never
    runs through the recursion's loop over frames.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        labels: torch.Tensor,
        logit_lengths: torch.Tensor,
        label_lengths: torch.Tensor,
        blank: int,
        zero_infinity: bool,
    ) -> torch.Tensor:
        xp = _torch_xp()
        nll, d = _torch_nll_and_grad(xp, x, labels, logit_lengths, label_lengths, blank, True)
        d = _infeasible_rows(xp, nll, d, zero_infinity, logit_lengths)
        if torch.compiler.is_compiling():
            ctx.save_for_backward(d)
            ctx.eager = False
        else:
            # Eager: the first backward scales d in place (no second (N, T, C)
            # array); a later one (retain_graph) recomputes it from the inputs.
            ctx.save_for_backward(x, labels, logit_lengths, label_lengths)
            ctx.eager, ctx.d, ctx.options = True, d, (blank, zero_infinity)
        return nll

    @staticmethod
    @once_differentiable  # no second derivative (as PyTorch's ctc_loss): an error, not a 0
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        # d loss / d x = g[n] * d nll_n / d x; an infeasible row is NaN, or 0 with
        # zero_infinity (whose where then sends g[n] = 0)
        none = (None, None, None, None, None)
        if not ctx.eager:
            (d,) = ctx.saved_tensors
            return (g[:, None, None] * d, *none)
        d, ctx.d = ctx.d, None
        if d is None:
            x, labels, logit_lengths, label_lengths = ctx.saved_tensors
            blank, zero_infinity = ctx.options
            xp = _torch_xp()
            nll, d = _torch_nll_and_grad(xp, x, labels, logit_lengths, label_lengths, blank, True)
            d = _infeasible_rows(xp, nll, d, zero_infinity, logit_lengths)
        return (d.mul_(g[:, None, None]), *none)
