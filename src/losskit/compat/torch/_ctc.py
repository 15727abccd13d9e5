"""``torch.nn.functional.ctc_loss`` over the core."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from ..._backend import (
    Array,
    cast,
    compute_dtype,
    device_of,
    is_torch_tensor,
    namespace,
    shape_of,
    stop_gradient,
)
from ..._validation import check_floating, check_values
from ...losses.sequence import (
    _HOST_INTS,
    _bad_labels,
    _check_blank,
    _check_flag,
    _host_checked,
    checked_sequences,
    index_dtype,
    per_example_nll,
)
from .._common import framework_semantics, half_back, poisoned

__all__ = ["ctc_loss"]


def _integers(xp: Any, name: str, x: Array) -> None:
    if not xp.isdtype(x.dtype, "integral"):
        msg = f"`{name}` must be an integer array; got dtype {x.dtype}"
        raise TypeError(msg)


def _per_example(xp: Any, name: str, x: Array, n: int) -> Array:
    """Lengths: one per example, ``(N,)`` (a 0-d length for an unbatched input)."""
    _integers(xp, name, x)
    if x.ndim == 0 and n == 1:
        return xp.reshape(x, (1,))
    if shape_of(x) != (n,):
        msg = f"`{name}` must have one length per example, shape ({n},); got {shape_of(x)}"
        raise ValueError(msg)
    return x


def _padded(xp: Any, y: Array, s_len: Array, num_classes: int, blank: int) -> Array:
    """Concatenated targets (sum of target_lengths,) as padded rows (N, len(y)).

    Row n holds ``y[offset_n : offset_n + target_lengths[n]]`` and then what
    follows (ignored); built by a gather, so that no value is read.
    """
    width = int(y.shape[0])

    def bad_of(hxp: Any, v: Array) -> Array:
        return (v < 0) | (v >= num_classes) | (v == blank)

    rule = f"class ids in [0, {num_classes}) other than blank={blank}"
    bad = check_values(xp, "targets", y, bad_of, rule, int)
    if bad is not None:  # traced: the examples are made NaN by the core's own check
        y = xp.where(bad, xp.full_like(y, -1), y)
    lengths = cast(xp, s_len, index_dtype(xp))
    found = _readable_total(xp, lengths)
    if found is not None and found != width:
        msg = (
            f"`targets` given concatenated (1-D) must hold sum(target_lengths) = {found} "
            f"ids; got {width}"
        )
        raise ValueError(msg)
    offsets = xp.cumulative_sum(lengths) - lengths if lengths.shape[0] else lengths
    index = offsets[:, None] + xp.arange(width, device=device_of(y))[None, :]
    index = xp.where(index < width, index, xp.zeros_like(index))
    if width == 0:
        return xp.zeros((int(lengths.shape[0]), 0), dtype=y.dtype, device=device_of(y))
    return xp.reshape(xp.take(y, xp.reshape(index, (-1,))), shape_of(index))


def _readable_total(xp: Any, lengths: Array) -> int | None:
    from ..._backend import readable

    found = readable(xp, lengths)
    if found is None:
        return None
    hxp, host = found
    return int(hxp.sum(host)) if host.shape[0] else 0


def _eager_torch_grad(z: Any) -> bool:
    """A torch tensor that requires grad, outside ``torch.compile``."""
    if not is_torch_tensor(z) or not z.requires_grad:
        return False
    import torch

    return torch.is_grad_enabled() and not torch.compiler.is_compiling()


def _logsumexp(xp: Any, z: Array) -> Array:
    m = xp.max(z, axis=-1, keepdims=True)
    m = stop_gradient(xp, xp.where(xp.isfinite(m), m, xp.zeros_like(m)))
    return (m + xp.log(xp.sum(xp.exp(z - m), axis=-1, keepdims=True)))[..., 0]


def _host_array(a: Any) -> np.ndarray | None:
    """A CPU integer tensor's NumPy view, a tuple or list of ints as int64, else None."""
    torch = sys.modules["torch"]
    if type(a) is torch.Tensor:
        try:
            return a.numpy()
        except (RuntimeError, TypeError):  # another device, a functorch wrapper, grad
            return None
    if isinstance(a, (tuple, list)) and all(type(v) is int for v in a):
        return np.array(a, dtype=np.int64)
    return None


def _host_fast(
    log_probs: Any,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    blank: Any,
    reduction: Any,
    zero_infinity: Any,
) -> Any:
    """:func:`ctc_loss` for an eager, batched CPU float32/float64 tensor the kernel takes,
    its targets and lengths CPU integer tensors (or the lengths tuples of ints), every
    value valid; else None (the general path, which raises for what is bad).

    No torch operation runs on the (T, N, C) arrays: the kernel, one ``exp`` pass for
    PyTorch's un-normalised semantics and the transposes run in NumPy on the calling
    thread and the kernels' threads, not in torch's pool.
    """
    torch = sys.modules.get("torch")
    if torch is None or not (
        type(log_probs) is torch.Tensor or type(log_probs) is torch.nn.Parameter
    ):
        return None
    if log_probs.dtype not in (torch.float32, torch.float64) or log_probs.device.type != "cpu":
        return None
    if log_probs.ndim != 3 or reduction not in ("mean", "sum", "none"):
        return None
    if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(log_probs):
        return None
    y, t_len, s_len = (_host_array(a) for a in (targets, input_lengths, target_lengths))
    if y is None or t_len is None or s_len is None:
        return None
    if y.ndim == 1:  # concatenated: every id is a target; rows of max(target_lengths)
        if y.dtype not in _HOST_INTS or s_len.dtype not in _HOST_INTS or s_len.ndim != 1:
            return None
        lengths = s_len.astype(np.int64)
        if (lengths < 0).any() or int(lengths.sum()) != y.shape[0]:
            return None
        num_classes = int(log_probs.shape[2])
        if not (type(blank) is int and 0 <= blank < num_classes):
            return None
        flat = y.astype(np.int64, copy=False)
        if flat.size and _bad_labels(flat, num_classes, blank):
            return None
        width = int(lengths.max()) if lengths.size else 0
        index = (np.cumsum(lengths) - lengths)[:, None] + np.arange(width)
        y = flat[np.minimum(index, max(flat.size - 1, 0))] if flat.size else index * 0
    x = log_probs.detach().numpy().transpose(1, 0, 2)  # (N, T, C), a view
    checked = _host_checked(x, y, t_len, s_len, blank, zero_infinity, reduction)
    if checked is None:
        return None
    from ...losses._sequence_torch import TorchHostCTCFunction, _torch_as_given

    options = (checked, int(blank), zero_infinity, reduction)
    if log_probs.requires_grad and torch.is_grad_enabled():
        return TorchHostCTCFunction.apply(log_probs, options)
    return torch.from_numpy(np.asarray(_torch_as_given(log_probs, options, False)[0]))


@framework_semantics
def ctc_loss(
    log_probs: Any,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Array:
    r"""``torch.nn.functional.ctc_loss``: CTC of time-first log-probabilities.

    ``log_probs`` is ``(T, N, C)`` (or ``(T, C)`` unbatched), the output of
    ``log_softmax``; ``targets`` is ``(N, S)`` padded or 1-D, the sequences
    concatenated (``sum(target_lengths)`` ids); ``input_lengths`` and
    ``target_lengths`` are ``(N,)`` (a tuple too, 0-d unbatched).  As
    PyTorch: the log-probabilities are taken as given (not renormalised), so

    .. math::
        \ell_n = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_n)} \prod_{t < T_n} e^{lp_{t,n,\pi_t}}

    ``"mean"`` divides each loss by its target length (at least 1) and then
    averages over the batch; ``zero_infinity`` makes infinite losses and
    their gradients 0.  The gradient with respect to ``log_probs`` is
    PyTorch's own, ``exp(lp) - gamma`` on the counted frames (the true
    derivative ``-gamma`` plus ``exp(lp)``, which cancels through a
    ``log_softmax``: drop-in code relies on it), 0 after ``input_lengths``;
    NaN for an infinite loss without ``zero_infinity``, as PyTorch.

    Deliberate differences: a target equal to ``blank`` or outside ``[0, C)``
    raises ``ValueError`` naming its position (PyTorch computes a meaningless
    number), as do lengths out of range (PyTorch's RuntimeError); an empty
    batch's mean is NaN (PyTorch refuses an empty input); half-precision
    input is computed in float32 and returned in its dtype (PyTorch's CPU
    kernel refuses it); targets must be integers (PyTorch truncates floats).

    >>> import numpy as np
    >>> from losskit.compat import torch as F
    >>> lp = np.log(np.full((2, 1, 2), 0.5))  # two frames, {blank, 1} equally likely
    >>> float(F.ctc_loss(lp, np.array([[1]]), [2], [1]))  # -log(3/4), divided by 1
    0.2876820724517809
    """
    from . import _reduce_by_count, _reduction

    red = _reduction(None, None, reduction)
    fast = _host_fast(log_probs, targets, input_lengths, target_lengths, blank, red, zero_infinity)
    if fast is not None:
        return fast
    xp, lp, y, t_len, s_len = namespace(
        log_probs,
        targets,
        input_lengths,
        target_lengths,
        names=("targets", "input_lengths", "target_lengths"),
    )
    check_floating(xp, "log_probs", lp)
    zero_infinity = _check_flag("zero_infinity", zero_infinity)
    unbatched = lp.ndim == 2
    if unbatched:
        lp = lp[:, None, :]
        if y.ndim == 1:
            y = y[None, :]
    if lp.ndim != 3:
        msg = (
            "`log_probs` must have shape (T, N, C), time first, or (T, C) unbatched; "
            f"got {shape_of(lp)}"
        )
        raise ValueError(msg)
    steps, n, num_classes = shape_of(lp)
    blank = _check_blank(blank, num_classes) if num_classes else _check_blank(blank, 1)
    t_len = _per_example(xp, "input_lengths", t_len, n)
    s_len = _per_example(xp, "target_lengths", s_len, n)
    _integers(xp, "targets", y)
    if y.ndim == 1:
        y = _padded(xp, y, s_len, num_classes, blank)
    elif y.ndim != 2 or int(y.shape[0]) != n:
        msg = (
            f"`targets` must be padded (N, S) with N = {n} as `log_probs` {shape_of(lp)}, "
            f"or 1-D concatenated; got {shape_of(y)}"
        )
        raise ValueError(msg)
    shape = (n, steps, num_classes, int(y.shape[1]))
    labels, t_len, s_len, bad = checked_sequences(
        xp,
        y,
        t_len,
        s_len,
        shape,
        blank,
        device_of(lp),
        names=("targets", "input_lengths", "target_lengths"),
    )
    dtype = compute_dtype(xp, lp.dtype)
    z = cast(xp, xp.permute_dims(lp, (1, 0, 2)), dtype)  # (N, T, C), batch first
    if _eager_torch_grad(z):
        # one autograd.Function: the core's recursion, the frames' log-sum-exp and
        # PyTorch's gradient, in two passes over the gradient
        from ...losses._sequence_torch import TorchCTCFunction

        loss = TorchCTCFunction.apply(z, labels, t_len, s_len, blank, zero_infinity)
        nll = loss
    else:
        nll, _ = per_example_nll(xp, z, labels, t_len, s_len, blank, zero_infinity)
        # torch: the log-probabilities are not renormalised; the core's log-softmax
        # adds log sum_c exp(lp[t]) per counted frame (0 for normalised input).
        frames = xp.arange(steps, device=device_of(z))[None, :] < t_len[:, None]
        lse = _logsumexp(xp, z)
        norm = xp.sum(xp.where(frames, lse, xp.zeros_like(lse)), axis=1)
        # torch: its gradient is the derivative plus exp(lp) on the counted frames,
        # added by a term that is 0 in value (where lp is finite).
        counted = frames[:, :, None] & xp.isfinite(z)
        moving = xp.where(counted, z - stop_gradient(xp, z), xp.zeros_like(z))
        extra = xp.sum(xp.sum(moving * stop_gradient(xp, xp.exp(z)), axis=2), axis=1)
        loss = nll - norm + extra
    if zero_infinity:
        loss = xp.where(nll == math.inf, xp.zeros_like(loss), loss)
    loss = poisoned(xp, loss, bad)
    if red == "mean":
        # torch: each loss divided by its target length (at least 1), then the batch mean
        one = xp.ones_like(s_len)
        loss = _reduce_by_count(xp, loss / cast(xp, xp.maximum(s_len, one), loss.dtype), red)
    else:
        loss = _reduce_by_count(xp, loss, red)
    if unbatched and red == "none":
        loss = loss[0]
    return half_back(xp, loss, lp.dtype)
