"""The ``torch.autograd.Function`` behind :func:`losskit.ctc` for torch tensors.

A module of its own because it imports torch: :mod:`losskit.losses.sequence`
imports it only once a torch tensor that requires grad has arrived.  Defined
at import time, not inside a function, so that ``torch.compile`` meets a class
it knows rather than a class being built while it traces.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .sequence import _host_ctc, _infeasible_rows, _torch_nll_and_grad, _torch_xp


def _nll_and_grad(
    x: torch.Tensor,
    labels: torch.Tensor,
    logit_lengths: torch.Tensor,
    label_lengths: torch.Tensor,
    blank: int,
    zero_infinity: bool,
    as_given: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example loss and ``d loss_n / d x`` (infeasible rows NaN on their frames, or 0).

    ``as_given``: PyTorch's ``ctc_loss`` on log-probabilities taken as they are,
    ``nll - sum_t logsumexp(x_t)`` with PyTorch's gradient ``exp(x) - gamma``
    (the core's ``softmax(x) - gamma`` plus ``exp(x) - softmax(x)``).
    """
    xp = _torch_xp()
    x = x.contiguous()  # once, for the kernel's view and the log-sum-exp alike
    nll, d = _torch_nll_and_grad(xp, x, labels, logit_lengths, label_lengths, blank, True)
    assert d is not None
    if as_given:
        frames = torch.arange(x.shape[1], device=x.device)[None, :] < logit_lengths[:, None]
        lse = torch.where(frames, torch.logsumexp(x, dim=-1), 0.0)
        # exp(x) - softmax(x) = exp(x) (1 - e^-lse), 0 after the frames (lse = 0 there)
        d = d.addcmul_(torch.exp(x), torch.expm1(-lse).neg_()[..., None])
        nll = nll - lse.sum(dim=1)
    return nll, _infeasible_rows(xp, nll, d, zero_infinity, logit_lengths)


def _scaled(d: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``d * g[:, None, None]`` (``d * g`` for a 0-d ``g``), in place: on CPU through the
    kernels' threads (and not at all where every ``g`` is 1, as for ``reduction="sum"``),
    else a torch ``mul_``."""
    if d.device.type == "cpu" and d.is_contiguous() and not g.requires_grad:
        from ..kernels import dispatch

        host = d.numpy()
        if dispatch.use_kernel(host):
            scale = g.detach().to(torch.float64).numpy()
            if not (scale == 1.0).all():
                from ..kernels._ctc import scale_rows

                scale_rows(host, np.broadcast_to(scale, d.shape[:1]))
            return d
    return d.mul_(g if g.ndim == 0 else g[:, None, None])


def _forward(
    ctx: Any,
    as_given: bool,
    x: torch.Tensor,
    labels: torch.Tensor,
    logit_lengths: torch.Tensor,
    label_lengths: torch.Tensor,
    blank: int,
    zero_infinity: bool,
) -> torch.Tensor:
    nll, d = _nll_and_grad(x, labels, logit_lengths, label_lengths, blank, zero_infinity, as_given)
    if torch.compiler.is_compiling():
        ctx.save_for_backward(d)
        ctx.eager = False
    else:
        # Eager: the first backward scales d in place (no second (N, T, C)
        # array); a later one (retain_graph) recomputes it from the inputs.
        ctx.save_for_backward(x, labels, logit_lengths, label_lengths)
        ctx.eager, ctx.d, ctx.options = True, d, (blank, zero_infinity, as_given)
    return nll


class _Saved(torch.autograd.Function):
    """The forward computes the gradient; the backward scales it (see :class:`CTCFunction`)."""

    @staticmethod
    @once_differentiable  # no second derivative (as PyTorch's ctc_loss): an error, not a 0
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        # d loss / d x = g[n] * d loss_n / d x; an infeasible row is NaN, or 0 with
        # zero_infinity (whose where then sends g[n] = 0)
        none = (None, None, None, None, None)
        if not ctx.eager:
            (d,) = ctx.saved_tensors
            return (g[:, None, None] * d, *none)
        d, ctx.d = ctx.d, None
        if d is None:
            d = _nll_and_grad(*ctx.saved_tensors, *ctx.options)[1]
        return (_scaled(d, g), *none)


class CTCFunction(_Saved):
    """Per-example CTC ``nll`` (N,) whose gradient is computed by the forward pass.

    The forward runs the forward and backward recursions once (the fused
    kernel on CPU tensors, through zero-copy NumPy views; torch operations
    under ``torch.compile`` and on other devices) and keeps ``d nll / d x``;
    the backward only scales it by the incoming gradient.  Autograd never
    runs through the recursion's loop over frames.
    """

    @staticmethod
    def forward(ctx: Any, *args: Any) -> torch.Tensor:
        return _forward(ctx, False, *args)


class TorchCTCFunction(_Saved):
    """PyTorch's ``ctc_loss`` per example on log-probabilities taken as given, with
    PyTorch's gradient ``exp(lp) - gamma`` (for :func:`losskit.compat.torch.ctc_loss`)."""

    @staticmethod
    def forward(ctx: Any, *args: Any) -> torch.Tensor:
        return _forward(ctx, True, *args)


class HostCTCFunction(torch.autograd.Function):
    """The reduced CTC loss of an eager CPU tensor checked by ``sequence._torch_fast``
    (the kernel on zero-copy NumPy views).

    One node instead of the general path's function, ``where`` and sum: the
    forward computes the value and the gradient of the value (scaled by the
    reduction's coefficient in the kernel), the first backward scales that
    by the incoming gradient in place (nothing when it is 1), a later one
    (``retain_graph``) recomputes it.  ``options`` is ``(checked, blank,
    zero_infinity, reduction)``, ``checked`` the kernel and the int64 NumPy
    labels and lengths; the tensors are saved only so that autograd refuses
    a backward after they were modified in place.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        labels: torch.Tensor,
        logit_lengths: torch.Tensor | None,
        label_lengths: torch.Tensor | None,
        options: tuple[Any, ...],
    ) -> torch.Tensor:
        # What does not need the kernel's result is done before it: after the kernel
        # (2 MB of tables and rows at 200 x 32 x 32) every line of Python runs from
        # colder caches.
        ctx.save_for_backward(x, labels, logit_lengths, label_lengths)
        ctx.options = options
        value, d = _host_ctc_of(x, options)
        ctx.d = torch.from_numpy(d)
        return torch.from_numpy(np.asarray(value))

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        # once_differentiable's wrapper (a no_grad block around the call) only where a
        # graph of the backward is asked for (create_graph), for its error on a second
        # derivative; a plain backward already runs without grad: 10 us less a call
        # at 200 x 32 x 32 (0.5%, measured in one process).
        if torch.is_grad_enabled():
            return _host_backward_once(ctx, g)
        return _host_backward(ctx, g)


def _host_backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
    """:class:`HostCTCFunction`'s backward: the forward's gradient scaled by ``g``."""
    d, ctx.d = ctx.d, None
    if d is None:
        d = torch.from_numpy(_host_ctc_of(ctx.saved_tensors[0], ctx.options)[1])
    if g.ndim or g.requires_grad:
        return (_scaled(d, g), None, None, None, None)
    factor = float(g)  # "mean" and "sum": one incoming gradient, mostly 1
    if factor != 1.0:
        _scale_rows(d.numpy(), np.full(d.shape[0], factor))
    return (d, None, None, None, None)


# no second derivative (as PyTorch's ctc_loss): an error, not a 0
_host_backward_once = once_differentiable(_host_backward)


def _host_ctc_of(x: torch.Tensor, options: tuple[Any, ...]) -> tuple[Any, np.ndarray]:
    """The value and gradient of :func:`~losskit.losses.sequence._host_ctc` for ``x``."""
    checked, blank, zero_infinity, reduction = options
    value, d = _host_ctc(checked, x.detach().numpy(), blank, zero_infinity, reduction, True)
    assert d is not None
    return value, d


def _scale_rows(g: np.ndarray, scale: np.ndarray) -> None:
    from ..kernels._ctc import scale_rows

    scale_rows(g, scale)


# --------------------------------------------------------------------------- PyTorch's ctc_loss


_scratch = threading.local()
_SCRATCH_KEEP_BYTES = 64 << 20


def _batch_first_copy(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``x`` (N, T, C) in this thread's buffer (fresh memory for
    each call cost page faults: kept up to 64 MiB); overwritten by the next call."""
    size = x.size * x.itemsize
    buf: np.ndarray | None = getattr(_scratch, "buf", None)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=np.uint8)
        _scratch.buf = buf if size <= _SCRATCH_KEEP_BYTES else None
    out = buf[:size].view(x.dtype).reshape(x.shape)
    np.copyto(out, x)
    return out


def _as_given(
    checked: tuple[Any, ...],
    x: np.ndarray,
    blank: int,
    coef: np.ndarray,
    with_grad: bool,
    zero_infinity: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """PyTorch's ``ctc_loss`` per example (float64) on log-probabilities ``x`` (N, T, C)
    taken as given, and ``coef[n]`` times PyTorch's gradient ``exp(x) - gamma`` (N, T, C)
    (for :func:`losskit.compat.torch.ctc_loss`, on host arrays the kernel takes).

    The kernel normalises each frame (``lse_t = log sum_c exp(x_t)``): PyTorch's loss
    is the kernel's minus ``sum_t lse_t`` over the counted frames, its gradient the
    kernel's ``softmax(x) - gamma`` plus ``exp(x) - softmax(x) = exp(x) (1 - e^-lse)``.
    One pass of ``exp`` gives both (the sum of a frame's exponentials, where it is a
    normal number; the stable ``max + log sum exp(x - max)`` elsewhere).  Where every
    counted frame has ``|lse| <= 4 eps`` (log_softmax's output, within a few ulp of
    normalised) the second term, at most 4 ulp of ``exp(x)``, is left out.  Infeasible
    examples: 0 with ``zero_infinity`` (loss and gradient), else ``inf`` and NaN on
    their frames.
    """
    kernel, y, t_len, s_len = checked
    steps = x.shape[1]
    xc = _batch_first_copy(x)
    nll, d = kernel(xc, y, t_len, s_len, blank, grad_scale=coef if with_grad else None)
    # exp overflows (inf, as PyTorch's exp(lp)) or underflows where log-probabilities are huge
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        e = np.exp(xc, out=xc)  # the copy is not needed any more
        total = np.einsum("ntc->nt", e).astype(np.float64)  # sum_c exp(x[n, t, c])
        normal = (total >= np.finfo(x.dtype).tiny) & (total < math.inf)
        lse = np.log(total)
        if not normal.all():  # a frame of huge or tiny log-probabilities (or NaN)
            rows = ~normal
            m = x[rows].max(axis=-1, initial=-math.inf).astype(np.float64)
            m = np.where(np.isfinite(m), m, 0.0)
            lse[rows] = m + np.log(np.exp(x[rows] - m[:, None]).sum(axis=-1, dtype=np.float64))
        counted = np.arange(steps) < t_len[:, None]
        lse = np.where(counted, lse, 0.0)
        nll = nll - lse.sum(axis=1)
        infinite = nll == math.inf
        if d is not None:
            # exp(x) - softmax(x) = exp(x) (1 - e^-lse), on the counted frames of feasible examples
            on = counted & ~infinite[:, None]
            # Normalised input (log_softmax's output: |lse| within a few ulp) makes the term
            # at most 4 ulp of exp(x): below the rounding of exp(x) itself, left out.
            if np.abs(np.where(on, lse, 0.0)).max(initial=0.0) > 4 * np.finfo(x.dtype).eps:
                f = np.where(on, -np.expm1(-lse) * coef[:, None], 0.0)
                e *= f.astype(x.dtype)[:, :, None]
                if not normal.all():  # exp(x) and e^-lse may overflow: the difference itself
                    rows = ~normal
                    xr = x[rows].astype(np.float64)
                    diff = np.exp(xr) - np.exp(xr - lse[rows][:, None])
                    fr = np.where(on, coef[:, None], 0.0)[rows][:, None]
                    e[rows] = np.where(fr != 0.0, diff * fr, 0.0)
                d += e
            if not zero_infinity:
                for i in np.flatnonzero(infinite):
                    d[i, : int(t_len[i])] = math.nan
    if zero_infinity:
        nll = np.where(infinite, 0.0, nll)
    return nll, d


class TorchHostCTCFunction(torch.autograd.Function):
    """PyTorch's ``ctc_loss`` of time-first ``log_probs`` (T, N, C), reduced, on an eager
    CPU tensor checked by :func:`losskit.compat.torch._ctc._host_fast`.

    The forward computes the value and its gradient (:func:`_as_given` on a
    batch-first copy); the backward writes the gradient back time first, scaled by
    the incoming gradient, in one pass; a later backward (``retain_graph``)
    recomputes it.  ``options`` is ``(checked, blank, zero_infinity, reduction)``.
    """

    @staticmethod
    def forward(ctx: Any, log_probs: torch.Tensor, options: tuple[Any, ...]) -> torch.Tensor:
        value, d = _torch_as_given(log_probs, options, True)
        ctx.save_for_backward(log_probs)
        ctx.d, ctx.options = d, options
        return torch.from_numpy(np.asarray(value))

    @staticmethod
    @once_differentiable  # no second derivative (as PyTorch's ctc_loss): an error, not a 0
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        d, ctx.d = ctx.d, None
        if d is None:
            d = _torch_as_given(ctx.saved_tensors[0], ctx.options, True)[1]
        # (N, T, C) -> (T, N, C), times the incoming gradient, in one pass
        scale = g.detach().to(torch.float64).numpy()
        factor = scale.astype(d.dtype)[None, :, None] if scale.ndim else d.dtype.type(scale)
        out = np.empty((d.shape[1], d.shape[0], d.shape[2]), dtype=d.dtype)
        if scale.ndim == 0 and factor == 1.0:
            np.copyto(out, d.transpose(1, 0, 2))
        else:
            np.multiply(d.transpose(1, 0, 2), factor, out=out)
        return torch.from_numpy(out), None


def _torch_as_given(
    log_probs: torch.Tensor, options: tuple[Any, ...], with_grad: bool
) -> tuple[Any, np.ndarray | None]:
    """The reduced value (in ``log_probs``' dtype) and the scaled gradient (N, T, C)."""
    checked, blank, zero_infinity, reduction = options
    lp = log_probs.detach().numpy().transpose(1, 0, 2)
    n = lp.shape[0]
    s_len = checked[3]
    if reduction == "mean":  # PyTorch: each loss over its target length (at least 1), then the mean
        coef = 1.0 / (n * np.maximum(s_len, 1).astype(np.float64))
    else:
        coef = np.ones(n)
    nll, d = _as_given(checked, lp, blank, coef, with_grad, zero_infinity)
    if reduction == "none":
        value = nll.astype(lp.dtype)
    else:
        value = (nll * coef).sum().astype(lp.dtype)
    return value, d
