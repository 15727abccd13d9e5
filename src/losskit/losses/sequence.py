"""Sequence losses: connectionist temporal classification (CTC).

The CTC loss of a label sequence ``y`` (length ``L``) given per-frame class
scores ``x`` (``T`` frames) is ``-log p(y | x)``, ``p`` summed over every
alignment: a path of ``T`` classes that reads ``y`` once repeated classes
are merged and blanks removed.  The sum is the forward-backward recursion of
Graves et al. over the extended label ``z = (b, y_1, b, y_2, ..., y_L, b)``,
here in log space, vectorised over the batch and the ``2L + 1`` positions,
looping over time only.  The derivative comes from the same pass (the
posterior occupation of each class at each frame), so no autograd ever runs
through the recursion: torch gets a ``torch.autograd.Function``, JAX a
``jax.custom_vjp`` over ``lax.scan``, NumPy the analytic gradient (and the
fused numba kernel of :mod:`losskit.kernels._ctc` where it is installed).
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Any

import numpy as np

from .._backend import (
    Array,
    cast,
    compute_dtype,
    device_of,
    is_numpy,
    is_torch_tensor,
    namespace,
    quiet_numpy,
    readable,
    shape_of,
)
from .._gradient import IMPL_ATTRIBUTE, deliver
from .._reduce import plan
from .._validation import (
    Invalid,
    _first_position,
    _is_int,
    check_floating,
    check_grad_out,
    check_labels_dtype,
    check_reduction,
)

__all__ = ["ctc"]


# --------------------------------------------------------------------------- checks


def index_dtype(xp: Any) -> Any:
    """int64, or int32 for JAX without x64 (where asking for int64 warns and truncates)."""
    if getattr(xp, "__name__", "").endswith("jax.numpy"):
        import jax

        if not jax.config.read("jax_enable_x64"):
            return xp.int32
    return xp.int64


def _check_shapes(logits: Array, labels: Array) -> tuple[int, int, int, int]:
    """``(N, T, C, S)`` of ``logits`` (N, T, C) and ``labels`` (N, S)."""
    if logits.ndim != 3:
        msg = (
            "`logits` must have shape (batch, frames, classes), batch first; "
            f"got {shape_of(logits)}"
        )
        raise ValueError(msg)
    n, t, c = shape_of(logits)
    if labels.ndim != 2 or int(labels.shape[0]) != n:
        msg = (
            f"`labels` must have shape (batch, max label length) with batch {n} as "
            f"`logits` {shape_of(logits)}; got {shape_of(labels)}"
        )
        raise ValueError(msg)
    if c == 0:
        msg = "`logits` must have at least one class (the blank); got 0 classes"
        raise ValueError(msg)
    return n, t, c, int(labels.shape[1])


def _check_blank(blank: Any, num_classes: int) -> int:
    msg = f"`blank` must be an int in [0, {num_classes}); got {blank!r}"
    if not _is_int(blank):
        raise TypeError(msg)
    if not 0 <= int(blank) < num_classes:
        raise ValueError(msg)
    return int(blank)


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        msg = f"`{name}` must be True or False; got {value!r}"
        raise TypeError(msg)
    return bool(value)


def _lengths(
    xp: Any, name: str, lengths: Array | None, n: int, size: int, of: str, device: Any
) -> tuple[Array, Array | None]:
    """``lengths`` (N,) integers in [0, size], as int64; ``size`` for all when None.

    Returns them (clamped into range where they could not be read) and the
    traced mask of the bad ones (None when read and good).
    """
    if lengths is None:
        return xp.full((n,), size, dtype=index_dtype(xp), device=device), None
    if not xp.isdtype(lengths.dtype, "integral"):
        msg = f"`{name}` must be an integer array; got dtype {lengths.dtype}"
        raise TypeError(msg)
    if shape_of(lengths) != (n,):
        msg = f"`{name}` must have one length per example, shape ({n},); got {shape_of(lengths)}"
        raise ValueError(msg)
    lengths = cast(xp, lengths, index_dtype(xp))
    rule = f"in [0, {size}] (the {of})"
    bad = _first_bad(xp, name, (lengths,), lambda hxp, v: (v < 0) | (v > size), rule)
    if bad is None:
        return lengths, None
    clamped = xp.where(lengths < 0, xp.zeros_like(lengths), lengths)
    return xp.where(clamped > size, xp.full_like(clamped, size), clamped), bad


def _first_bad(xp: Any, name: str, arrays: tuple[Array, ...], bad_of: Any, rule: str) -> Any:
    """Raise for the first element of ``arrays[0]`` where ``bad_of(xp, *arrays)``.

    As :func:`losskit._validation.check_values`, with other arrays the rule
    reads (the lengths): where any cannot be read, the traced mask is returned.
    """
    if math.prod(shape_of(arrays[0])) == 0:
        return None
    found = [readable(xp, a) for a in arrays]
    if any(f is None for f in found):
        return bad_of(xp, *arrays)
    hxp = found[0][0]  # type: ignore[index]
    host = [f[1] for f in found]  # type: ignore[index]
    bad = bad_of(hxp, *host)
    if not bool(hxp.any(bad)):
        return None
    pos = _first_position(hxp, bad)
    msg = f"`{name}` must be {rule}; got {int(host[0][pos])} at position {pos}"
    raise ValueError(msg)


def _check_labels(
    xp: Any,
    labels: Array,
    label_lengths: Array,
    num_classes: int,
    blank: int,
    names: tuple[str, str] = ("labels", "label_lengths"),
) -> Array | None:
    """Labels within their lengths are classes in [0, C) other than the blank."""

    def bad_of(hxp: Any, y: Array, lengths: Array) -> Array:
        within = hxp.arange(y.shape[1], device=device_of(y))[None, :] < lengths[:, None]
        return within & ((y < 0) | (y >= num_classes) | (y == blank))

    rule = f"class ids in [0, {num_classes}) other than blank={blank} within `{names[1]}`"
    return _first_bad(xp, names[0], (labels, label_lengths), bad_of, rule)


# --------------------------------------------------------------------------- recursion


def _log_add(xp: Any, a: Array, b: Array, c: Array) -> Array:
    """``log(e^a + e^b + e^c)``; -inf when all three are -inf."""
    m = xp.maximum(xp.maximum(a, b), c)
    m = xp.where(m == -math.inf, xp.zeros_like(m), m)
    return m + xp.log(xp.exp(a - m) + xp.exp(b - m) + xp.exp(c - m))


def _shift(xp: Any, a: Array, k: int) -> Array:
    """``a`` moved ``k`` places along the last axis (right for k > 0), filled with -inf."""
    n, size = a.shape[0], a.shape[-1]
    fill = xp.full((n, min(abs(k), size)), -math.inf, dtype=a.dtype, device=device_of(a))
    if k > 0:
        return xp.concat([fill, a[:, : size - k]], axis=-1)
    return xp.concat([a[:, -k:], fill], axis=-1)


def _python_scan(xp: Any, step: Any, carry: Any, xs: tuple[Array, ...], reverse: bool) -> Any:
    """``lax.scan`` for NumPy and torch: a Python loop over the leading (time) axis."""
    steps = int(xs[0].shape[0])
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    ys: list[Array] = [None] * steps
    for t in order:
        carry, ys[t] = step(carry, tuple(x[t, ...] for x in xs))
    if not steps:
        return carry, None
    if isinstance(ys[0], tuple):
        return carry, tuple(xp.stack(list(y), axis=0) for y in zip(*ys, strict=True))
    return carry, xp.stack(ys, axis=0)


def _jax_scan(xp: Any, step: Any, carry: Any, xs: tuple[Array, ...], reverse: bool) -> Any:
    import jax

    return jax.lax.scan(step, carry, xs, reverse=reverse)


def _extended(
    xp: Any, labels: Array, label_lengths: Array, blank: int
) -> tuple[Array, Array, Array]:
    """The extended labels ``z`` (N, 2S+1), where a skip ``z[s-2] -> z[s]`` is
    allowed (N, 2S+1), and the positions where a path may end (N, 2S+1)."""
    n, s = labels.shape[0], labels.shape[1]
    device = device_of(labels)
    positions = xp.arange(s, device=device)
    within = positions[None, :] < label_lengths[:, None]
    blanks = xp.full((n, s), blank, dtype=index_dtype(xp), device=device)
    y = xp.where(within, cast(xp, labels, index_dtype(xp)), blanks)
    z = xp.concat([xp.reshape(xp.stack([blanks, y], axis=-1), (n, 2 * s)), blanks[:, :1]], axis=-1)
    ext = xp.arange(2 * s + 1, device=device)[None, :]
    two = xp.full((n, 2), blank, dtype=index_dtype(xp), device=device)
    z_before = xp.concat([two, z[:, :-2]], axis=-1) if s else z
    skip = (ext % 2 == 1) & (ext >= 2) & (z != z_before)
    last = 2 * label_lengths[:, None]
    end = (ext == last) | (ext == last - 1)
    return z, skip, end


def _forward_backward(
    xp: Any,
    x: Array,
    labels: Array,
    logit_lengths: Array,
    label_lengths: Array,
    blank: int,
    want_grad: bool,
    scan: Any = _python_scan,
) -> tuple[Array, Array | None]:
    """Per-example ``nll`` (N,) and ``d nll / d x`` (N, T, C) (None unless ``want_grad``).

    ``x`` (N, T, C) raw scores in the compute dtype; everything validated.
    The gradient is that of the exact loss, finite or not (the caller decides
    what an infeasible example's gradient is).
    """
    n, steps, num_classes = shape_of(x)
    device = device_of(x)
    logp = x - _logsumexp_last(xp, x)
    z, skip, end = _extended(xp, labels, label_lengths, blank)
    width = int(z.shape[1])
    index = xp.broadcast_to(z[:, None, :], (n, steps, width))
    # log-probability of each extended label at each frame, time first: (T, N, 2S+1)
    emit = xp.permute_dims(xp.take_along_axis(logp, index, axis=-1), (1, 0, 2))
    frames = xp.arange(steps, device=device)[:, None]
    active = frames < logit_lengths[None, :]  # (T, N)
    last_frame = frames == logit_lengths[None, :] - 1
    neg = xp.full((n, width), -math.inf, dtype=x.dtype, device=device)
    zero = xp.zeros((n, width), dtype=x.dtype, device=device)

    def forward(carry: tuple[Array, Array], inputs: tuple[Array, ...]) -> Any:
        # alpha_t(s) = emit_t(s) + log(alpha_{t-1}(s) + alpha_{t-1}(s-1) + [skip] alpha_{t-1}(s-2)),
        # kept relative to its maximum over s (added to `scale`): values near 0, so
        # float32 loses nothing to the magnitude of long sequences' log-probabilities.
        (alpha, scale), (e, on) = carry, inputs
        moved = _log_add(xp, alpha, _shift(xp, alpha, 1), xp.where(skip, _shift(xp, alpha, 2), neg))
        moved = moved + e
        top = _finite_max(xp, moved)
        alpha = xp.where(on[:, None], moved - top[:, None], alpha)
        return (alpha, xp.where(on, scale + top, scale)), alpha

    # The virtual frame -1 is in state 0 with probability 1: the recursion then
    # starts every path in the first blank or the first label.
    start = xp.where(xp.arange(width, device=device)[None, :] == 0, zero, neg)
    scale0 = xp.zeros((n,), dtype=x.dtype, device=device)
    (final, scale), alphas = scan(xp, forward, (start, scale0), (emit, active), False)
    total = scale + _logsumexp_last(xp, xp.where(end, final, neg))[:, 0]
    nll = 0.0 - total  # 0.0 - 0 is +0
    if not want_grad:
        return nll, None
    if steps == 0:
        return nll, xp.zeros_like(x)

    ends = xp.where(end, zero, neg)
    skip_next = _shift(xp, xp.where(skip, zero, neg), -2) == 0  # may go s -> s+2

    def backward(beta: Array, inputs: tuple[Array, ...]) -> tuple[Array, Array]:
        # beta'_t(s): log-probability of the frames after t given state s at t;
        # beta_t(s) = emit_t(s) + beta'_t(s) (relative to its maximum, as alpha).
        e, on, is_last = inputs
        after = _log_add(
            xp, beta, _shift(xp, beta, -1), xp.where(skip_next, _shift(xp, beta, -2), neg)
        )
        after = xp.where(is_last[:, None], ends, after)
        moved = after + e
        return xp.where(on[:, None], moved - _finite_max(xp, moved)[:, None], beta), after

    _, afters = scan(xp, backward, ends, (emit, active, last_frame), True)
    # alpha_t(s) + beta'_t(s) is the log-probability of the paths through state s at
    # frame t, up to a factor common to the frame; the paths through frame t's states
    # are all paths, so dividing by their sum over s gives the posterior occupation.
    paths = alphas + afters
    per_frame = _logsumexp_last(xp, paths)
    per_frame = xp.where(xp.isfinite(per_frame), per_frame, xp.zeros_like(per_frame))
    occupation = xp.exp(paths - per_frame)
    occupation = xp.where(active[:, :, None], occupation, xp.zeros_like(alphas))
    one_hot = cast(xp, z[..., None] == xp.arange(num_classes, device=device), x.dtype)
    # posterior occupation of each class: gamma (N, T, C) = occupation (N, T, 2S+1) @ one_hot
    gamma = xp.matmul(xp.permute_dims(occupation, (1, 0, 2)), one_hot)
    on = cast(xp, xp.permute_dims(active, (1, 0))[:, :, None], x.dtype)
    # d nll / d x = softmax(x) - gamma on the example's frames, 0 after them
    return nll, xp.exp(logp) * on - gamma


def _finite_max(xp: Any, x: Array) -> Array:
    """The maximum over the last axis, 0 where it is not finite (an all -inf row)."""
    m = xp.max(x, axis=-1)
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


def _logsumexp_last(xp: Any, x: Array) -> Array:
    m = xp.max(x, axis=-1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return m + xp.log(xp.sum(xp.exp(x - m), axis=-1, keepdims=True))


# --------------------------------------------------------------------------- backends


def _kernel(x: np.ndarray) -> Any:
    """The fused numba kernel for ``x``, or None (numba or the kernel missing, ``x``
    too small or not float32/float64, or the portable path asked for)."""
    from ..kernels import dispatch

    if not dispatch.use_kernel(x):
        return None
    try:
        from ..kernels._ctc import ctc_loss_and_grad
    except ImportError:
        return None
    return ctc_loss_and_grad


def _numpy_nll_and_grad(
    x: np.ndarray,
    labels: np.ndarray,
    logit_lengths: np.ndarray,
    label_lengths: np.ndarray,
    blank: int,
    grad_scale: np.ndarray | None,
    grad_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """NumPy: ``(nll (N,) float64, grad_scale[n] * d nll_n / d x)``, the kernel where it exists.

    An infeasible example's gradient row is 0 here (the kernel's contract).
    The kernel writes the gradient into ``grad_out`` when that is a
    C-contiguous array of ``x``'s dtype not sharing memory with ``x``.
    """
    kernel = _kernel(x)
    if kernel is not None:
        x = np.ascontiguousarray(x)
        fits = (
            grad_out is not None
            and grad_out.dtype == x.dtype
            and grad_out.flags.c_contiguous
            and not np.shares_memory(grad_out, x)
        )
        return kernel(
            x,
            np.ascontiguousarray(labels, dtype=np.int64),
            np.ascontiguousarray(logit_lengths, dtype=np.int64),
            np.ascontiguousarray(label_lengths, dtype=np.int64),
            blank,
            grad_scale=None if grad_scale is None else np.asarray(grad_scale, np.float64),
            grad_out=grad_out if fits else None,
        )
    with quiet_numpy():
        nll, d = _forward_backward(
            np, x, labels, logit_lengths, label_lengths, blank, grad_scale is not None
        )
    if d is None or grad_scale is None:
        return nll.astype(np.float64), None
    coef = np.where(np.isfinite(nll), grad_scale, 0.0).astype(x.dtype)
    return nll.astype(np.float64), d * coef[:, None, None]


def _torch_nll_and_grad(
    xp: Any,
    x: Array,
    labels: Array,
    logit_lengths: Array,
    label_lengths: Array,
    blank: int,
    want_grad: bool,
) -> tuple[Array, Array | None]:
    """torch: the NumPy path on zero-copy views of CPU tensors, else the torch recursion."""
    import torch

    with torch.no_grad():
        cpu = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
        if cpu and not torch.compiler.is_compiling():
            host_x, host_y, host_t, host_s = (
                a.detach().contiguous().numpy() for a in (x, labels, logit_lengths, label_lengths)
            )
            scale = np.ones(x.shape[0]) if want_grad else None
            host_nll, host_d = _numpy_nll_and_grad(host_x, host_y, host_t, host_s, blank, scale)
            nll_t = torch.from_numpy(host_nll).to(x.dtype)
            return nll_t, None if host_d is None else torch.from_numpy(host_d)
        nll, d = _forward_backward(xp, x, labels, logit_lengths, label_lengths, blank, want_grad)
        if d is not None:
            d = torch.where(torch.isfinite(nll)[:, None, None], d, torch.zeros_like(d))
        return nll, d


def _infeasible_rows(xp: Any, nll: Array, d: Array, zero_infinity: bool, t_len: Array) -> Array:
    """``d`` with the rows of infeasible examples 0 (``zero_infinity``) or NaN on
    their frames (0 after them, as PyTorch's).

    For the custom backwards: with ``zero_infinity`` the incoming gradient of
    such an example is 0 (its loss went through a ``where``), and 0 * 0 = 0.
    """
    rows = nll == math.inf
    found = readable(xp, rows)
    if found is not None and not bool(found[0].any(found[1])):
        return d  # nothing infeasible: no pass over the gradient
    if zero_infinity:
        return xp.where(rows[:, None, None], xp.zeros_like(d), d)
    return _nan_frames(xp, d, rows, t_len)


def _nan_frames(xp: Any, d: Array, rows: Array, t_len: Array) -> Array:
    """``d`` (N, T, C) with NaN on the frames ``t < t_len[n]`` of the ``rows``."""
    frames = xp.arange(d.shape[1], device=device_of(d))[None, :] < t_len[:, None]
    return xp.where((rows[:, None] & frames)[:, :, None], xp.full_like(d, math.nan), d)


def _torch_xp() -> Any:
    import array_api_compat.torch

    return array_api_compat.torch


@functools.cache
def _jax_function(blank: int, zero_infinity: bool) -> Any:
    """``(nll, nll_and_grad)`` for JAX, both jitted (eager calls compile once per shape).

    ``nll`` is a ``jax.custom_vjp`` whose forward runs the forward and
    backward recursions (``lax.scan``) and whose backward scales the saved
    gradient: autograd never runs through the recursion.
    """
    import jax
    import jax.numpy as jnp

    xp = sys.modules["array_api_compat"].array_namespace(jnp.zeros(()))

    @jax.jit
    def both(x: Any, labels: Any, logit_lengths: Any, label_lengths: Any) -> Any:
        return _forward_backward(
            xp, x, labels, logit_lengths, label_lengths, blank, True, scan=_jax_scan
        )

    @jax.jit
    def forward_only(x: Any, labels: Any, logit_lengths: Any, label_lengths: Any) -> Any:
        return _forward_backward(
            xp, x, labels, logit_lengths, label_lengths, blank, False, scan=_jax_scan
        )[0]

    @jax.custom_vjp
    def nll(x: Any, labels: Any, logit_lengths: Any, label_lengths: Any) -> Any:
        return forward_only(x, labels, logit_lengths, label_lengths)

    def fwd(x: Any, labels: Any, logit_lengths: Any, label_lengths: Any) -> Any:
        value, d = both(x, labels, logit_lengths, label_lengths)
        return value, (
            _infeasible_rows(xp, value, d, zero_infinity, logit_lengths),
            labels,
            logit_lengths,
            label_lengths,
        )

    def bwd(saved: Any, g: Any) -> Any:
        zeros = [np.zeros(shape_of(a), dtype=jax.dtypes.float0) for a in saved[1:]]
        return (g[:, None, None] * saved[0], *zeros)

    nll.defvjp(fwd, bwd)
    return nll, both


def _grad_enabled() -> bool:
    """torch autograd is recording (not inside ``torch.no_grad()``); torch is loaded."""
    return bool(sys.modules["torch"].is_grad_enabled())


def _is_jax(x: Any) -> bool:
    mod = sys.modules.get("jax")
    return mod is not None and isinstance(x, mod.Array)


# --------------------------------------------------------------------------- host fast path

# At 200 x 32 x 32 (S = 50) the kernel takes about 2 ms for the loss and its gradient;
# the general path around it (array-API namespaces, traced-value plumbing, a reduction
# plan, torch operations on the small arrays) cost 0.2-0.3 ms of Python per NumPy call
# and 0.35-0.65 ms per torch forward (and backward).  For NumPy arrays and eager CPU
# tensors that the kernel takes, the path below checks the small arrays once with plain
# NumPy and calls the kernel directly: 0.05-0.1 ms on NumPy, 0.15-0.35 ms on torch, most
# of it torch's autograd.  Whatever it does not take exactly (another dtype or library,
# ``sample_weight``, a bad value) goes the general way, which raises the errors: the
# checks here only decide, never phrase.

# integer dtypes whose values int64 holds (uint64 goes the general way)
_HOST_INTS = frozenset(
    np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32)
)
_entry: Any = None  # the kernel's entry, imported once
_dispatch: Any = None  # losskit.kernels.dispatch, imported once
_full: dict[tuple[int, int], np.ndarray] = {}  # lengths all equal to the padded size


def _kernel_entry(x: np.ndarray) -> Any:
    """``ctc_loss_and_grad`` where the kernel takes ``x`` (see :func:`_kernel`), else None."""
    global _entry, _dispatch
    if _dispatch is None:
        from ..kernels import dispatch

        _dispatch = dispatch
    if not _dispatch.use_kernel(x):
        return None
    if _entry is None:
        try:
            from ..kernels._ctc import ctc_loss_and_grad
        except ImportError:
            return None
        _entry = ctc_loss_and_grad
    return _entry


def _host_lengths(lengths: Any, n: int, size: int) -> np.ndarray | None:
    """``lengths`` as int64 (N,) in ``[0, size]`` (all ``size`` when None), or None
    when they are anything else."""
    if lengths is None:
        full = _full.get((n, size))
        if full is None:
            if len(_full) >= 16:
                _full.clear()
            full = _full[n, size] = np.full(n, size, dtype=np.int64)
        return full  # read by the kernel only, never handed out
    if type(lengths) is not np.ndarray or lengths.dtype not in _HOST_INTS:
        return None
    if lengths.shape != (n,):
        return None
    lengths = lengths.astype(np.int64, copy=False)
    # as unsigned, a negative length is above every size
    if n and (lengths.view(np.uint64) > size).any():
        return None
    return lengths


def _bad_labels(y: np.ndarray, num_classes: int, blank: int) -> bool:
    """Whether any of the int64 ``y`` is not a class id in [0, C) other than ``blank``
    (as unsigned, a negative id is above every class)."""
    if blank == 0:  # the usual blank: y - 1 in [0, C - 1)
        return bool(((y - 1).view(np.uint64) >= num_classes - 1).any())
    if blank == num_classes - 1:
        return bool((y.view(np.uint64) >= num_classes - 1).any())
    return bool(((y.view(np.uint64) >= num_classes) | (y == blank)).any())


def _host_checked(
    x: np.ndarray,
    labels: Any,
    logit_lengths: Any,
    label_lengths: Any,
    blank: Any,
    zero_infinity: Any,
    reduction: Any,
) -> tuple[Any, ...] | None:
    """``(kernel, labels, logit_lengths, label_lengths)`` (int64 NumPy) when the kernel
    takes ``x`` (N, T, C) and every argument is valid, else None (the general path)."""
    if x.ndim != 3 or reduction not in ("mean", "sum", "none"):
        return None
    if zero_infinity is not True and zero_infinity is not False:
        return None
    kernel = _kernel_entry(x)
    if kernel is None:
        return None
    n, steps, num_classes = x.shape
    if type(labels) is not np.ndarray or labels.dtype not in _HOST_INTS:
        return None
    if labels.ndim != 2 or labels.shape[0] != n:
        return None
    if not (type(blank) is int or _is_int(blank)) or not 0 <= blank < num_classes:
        return None
    blank = int(blank)
    t_len = _host_lengths(logit_lengths, n, steps)
    s_len = _host_lengths(label_lengths, n, labels.shape[1])
    if t_len is None or s_len is None:
        return None
    y = labels.astype(np.int64, copy=False)
    if y.size and _bad_labels(y, num_classes, blank):
        if label_lengths is None:
            return None
        # padding past a label's length may hold anything: look within the lengths
        within = np.arange(y.shape[1]) < s_len[:, None]
        if _bad_labels(np.where(within, y, (blank + 1) % num_classes), num_classes, blank):
            return None
    return kernel, y, t_len, s_len


def _host_ctc(
    checked: tuple[Any, ...],
    x: np.ndarray,
    blank: int,
    zero_infinity: bool,
    reduction: str,
    with_grad: bool,
    grad_out: np.ndarray | None = None,
) -> tuple[Any, np.ndarray | None]:
    """The value (the reduction's, in ``x``'s dtype) and the gradient of checked input.

    The same numbers as the general path: the per-example losses rounded to
    ``x``'s dtype, then reduced; infeasible examples 0 with ``zero_infinity``,
    else ``inf`` with NaN on their frames in the gradient.
    """
    kernel, y, t_len, s_len = checked
    n = x.shape[0]
    coef = (1.0 / n if n else 0.0) if reduction == "mean" else 1.0
    x = np.ascontiguousarray(x)
    out = None
    if grad_out is not None and grad_out.flags.c_contiguous and not np.shares_memory(grad_out, x):
        out = grad_out  # the kernel writes the gradient there
    scale = np.full(n, coef) if with_grad else None
    nll64, d = kernel(x, y, t_len, s_len, int(blank), grad_scale=scale, grad_out=out)
    nll = nll64.astype(x.dtype)
    # one reduction over the losses, and a look for infinite ones only where it is not finite
    total = nll.max(initial=-math.inf) if reduction == "none" else nll.sum()
    if not total < math.inf:
        infinite = nll == math.inf
        if zero_infinity:
            nll[infinite] = 0.0  # the kernel's gradient rows are 0 there already
            total = nll.sum()
        elif d is not None:
            for i in np.flatnonzero(infinite):
                d[i, : int(t_len[i])] = math.nan
    if reduction == "none":
        value = nll
    else:
        value = total if reduction == "sum" else total * coef
    if grad_out is not None and d is not None and d is not grad_out:
        grad_out[...] = d
        d = grad_out
    return value, d


def _numpy_fast(
    logits: Any,
    labels: Any,
    logit_lengths: Any,
    label_lengths: Any,
    blank: Any,
    zero_infinity: Any,
    reduction: Any,
    with_grad: bool,
    grad_out: Any,
) -> tuple[Any, Any] | None:
    """:func:`_ctc_impl` for NumPy input the kernel takes, or None."""
    if grad_out is not None and (
        type(grad_out) is not np.ndarray
        or grad_out.shape != logits.shape
        or grad_out.dtype != logits.dtype
        or not grad_out.flags.writeable
    ):
        return None
    checked = _host_checked(
        logits, labels, logit_lengths, label_lengths, blank, zero_infinity, reduction
    )
    if checked is None:
        return None
    return _host_ctc(checked, logits, blank, zero_infinity, reduction, with_grad, grad_out)


def _torch_fast(
    logits: Any,
    labels: Any,
    logit_lengths: Any,
    label_lengths: Any,
    blank: Any,
    zero_infinity: Any,
    reduction: Any,
    with_grad: bool,
) -> tuple[Any, Any] | None:
    """:func:`_ctc_impl` for eager CPU tensors the kernel takes (through zero-copy NumPy
    views), or None: autograd gets one ``autograd.Function`` that returns the reduced
    value, its gradient computed by the forward pass."""
    torch = sys.modules["torch"]
    if type(logits) is not torch.Tensor and type(logits) is not torch.nn.Parameter:
        return None
    if logits.dtype not in (torch.float32, torch.float64) or logits.device.type != "cpu":
        return None
    if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(logits):
        return None
    host: list[Any] = []
    for a in (labels, logit_lengths, label_lengths):
        if a is None:
            host.append(None)
            continue
        if type(a) is not torch.Tensor:
            return None
        try:  # CPU integer tensors only (a float one that requires grad raises here)
            host.append(a.numpy())
        except (RuntimeError, TypeError):  # another device, a functorch wrapper
            return None
    x = logits.detach().numpy()
    y, t_len, s_len = host
    checked = _host_checked(x, y, t_len, s_len, blank, zero_infinity, reduction)
    if checked is None:
        return None
    if with_grad or not (logits.requires_grad and torch.is_grad_enabled()):
        value, d = _host_ctc(checked, x, blank, zero_infinity, reduction, with_grad)
        return torch.from_numpy(np.asarray(value)), None if d is None else torch.from_numpy(d)
    from ._sequence_torch import HostCTCFunction

    options = (checked, int(blank), zero_infinity, reduction)
    return HostCTCFunction.apply(logits, labels, logit_lengths, label_lengths, options), None


# --------------------------------------------------------------------------- the loss


def ctc(
    logits: Array,
    labels: Array,
    *,
    logit_lengths: Array | None = None,
    label_lengths: Array | None = None,
    blank: int = 0,
    zero_infinity: bool = False,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Connectionist temporal classification loss: ``-log p(labels | logits)`` over all alignments.

    .. math::
        \ell_n = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_n)} \prod_{t < T_n}
            \operatorname{softmax}(x_{n,t})_{\pi_t}, \qquad
        \frac{\partial \ell_n}{\partial x_{n,t,c}} =
            \operatorname{softmax}(x_{n,t})_c - \gamma_{n,t}(c)

    where :math:`\mathcal{B}` merges repeated classes and removes blanks, and
    :math:`\gamma_{n,t}(c)` is the posterior probability that an alignment
    emits class ``c`` at frame ``t`` (from the forward-backward recursion,
    in log space; the derivative is 0 on frames ``t >= T_n``).  The logits
    are normalised with a log-softmax over the classes, so any real scores
    are taken.

    An example whose label cannot be aligned in its frames (fewer frames
    than labels plus one blank between each pair of equal neighbours) has an
    infinite loss and a NaN gradient, as in PyTorch; with
    ``zero_infinity=True`` its loss and gradient are 0.  ``"mean"`` is the
    (``sample_weight``-weighted) mean of the per-example losses, as for
    every losskit loss; PyTorch's ``ctc_loss`` divides each loss by its
    label length first (:func:`losskit.compat.torch.ctc_loss` does).

    Replaces PyTorch's ``ctc_loss``/``CTCLoss`` (time first, on
    log-probabilities), Keras's ``ctc``/``CTC`` (blank 0, labels padded with
    0) and optax's ``ctc_loss`` (paddings instead of lengths); the adapters
    in :mod:`losskit.compat` keep each one's conventions and numbers.

    Parameters
    ----------
    logits : array (N, T, C)
        Per-frame class scores, batch first, any real values (log-probabilities too).
    labels : integer array (N, S)
        Label sequences, padded; entries past ``label_lengths[n]`` are ignored.
    logit_lengths, label_lengths : integer arrays (N,), optional
        Frames and labels of each example (all ``T`` and all ``S`` when None).
    blank : int
        The blank class, in ``[0, C)``; labels never equal it.
    zero_infinity : bool
        Give infeasible examples a loss and gradient of 0.
    reduction : {"mean", "sum", "none"}
    sample_weight : array (N,), optional

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> logits = np.zeros((1, 2, 2))  # two frames, classes {blank, 1} equally likely
    >>> float(lk.ctc(logits, np.array([[1]])))  # alignments 11, b1, 1b: -log(3/4)
    0.2876820724517809
    >>> value, grad = lk.value_and_grad(lk.ctc)(logits, np.array([[1]]))
    >>> grad[0].round(4)  # softmax - occupation: frame 0 emits 1 in 2 of 3 alignments
    array([[ 0.1667, -0.1667],
           [ 0.1667, -0.1667]])

    References
    ----------
    A. Graves, S. Fernández, F. Gomez, J. Schmidhuber. Connectionist temporal
    classification: labelling unsegmented sequence data with recurrent neural
    networks. ICML 2006.
    """
    return _ctc_impl(
        logits,
        labels,
        logit_lengths=logit_lengths,
        label_lengths=label_lengths,
        blank=blank,
        zero_infinity=zero_infinity,
        reduction=reduction,
        sample_weight=sample_weight,
    )[0]


def checked_sequences(
    xp: Any,
    labels: Array,
    logit_lengths: Array | None,
    label_lengths: Array | None,
    shape: tuple[int, int, int, int],
    blank: int,
    device: Any,
    names: tuple[str, str, str] = ("labels", "logit_lengths", "label_lengths"),
) -> tuple[Array, Array, Array, Array | None]:
    """The checked ``(labels, logit_lengths, label_lengths)`` as :func:`index_dtype`, and the
    examples with a bad value found where values could not be read (or None).

    Bad labels and lengths are replaced there by harmless ones (the example is
    made NaN by the caller); ``names`` are the arguments' names in messages.
    """
    n, steps, num_classes, width = shape
    y_name, t_name, s_name = names
    t_len, bad_t = _lengths(xp, t_name, logit_lengths, n, steps, "frames", device)
    s_len, bad_s = _lengths(xp, s_name, label_lengths, n, width, "padded labels", device)
    bad = bad_t if bad_s is None else (bad_s if bad_t is None else bad_t | bad_s)
    bad_labels = _check_labels(xp, labels, s_len, num_classes, blank, (y_name, s_name))
    labels = cast(xp, labels, index_dtype(xp))
    if bad_labels is not None:
        labels = xp.where(bad_labels, xp.full_like(labels, (blank + 1) % num_classes), labels)
        rows = xp.any(bad_labels, axis=1)
        bad = rows if bad is None else bad | rows
    return labels, t_len, s_len, bad


def per_example_nll(
    xp: Any,
    z: Array,
    labels: Array,
    t_len: Array,
    s_len: Array,
    blank: int,
    zero_infinity: bool,
    coef: Any = None,
    grad_out: Any = None,
) -> tuple[Array, Array | None]:
    """Per-example ``nll`` (N,) of checked input ``z`` (compute dtype), inf where infeasible.

    Under torch autograd and ``jax.grad`` its derivative is the custom one:
    ``d nll_n / d z``, with an infeasible example's row 0 when
    ``zero_infinity`` (the caller then replaces its loss by a ``where``) and
    NaN otherwise.  With ``coef`` (the reduction's per-example coefficient,
    for :func:`losskit.value_and_grad`) also ``coef[n] d nll_n / d z``, 0 on
    infeasible rows.
    """
    n = int(z.shape[0])
    with_grad = coef is not None
    if is_numpy(xp):
        scale = None if coef is None else np.broadcast_to(np.asarray(coef, np.float64), (n,))
        nll64, d = _numpy_nll_and_grad(z, labels, t_len, s_len, blank, scale, grad_out)
        return nll64.astype(z.dtype), d
    if is_torch_tensor(z) and not with_grad and z.requires_grad and _grad_enabled():
        from ._sequence_torch import CTCFunction  # imports torch, which is loaded

        return CTCFunction.apply(z, labels, t_len, s_len, blank, zero_infinity), None
    if _is_jax(z):
        nll_fn, both = _jax_function(blank, zero_infinity)
        if not with_grad:
            return nll_fn(z, labels, t_len, s_len), None
        nll, d = both(z, labels, t_len, s_len)
    elif is_torch_tensor(z):
        nll, d = _torch_nll_and_grad(xp, z, labels, t_len, s_len, blank, with_grad)
    else:
        with quiet_numpy(xp):
            nll, d = _forward_backward(xp, z, labels, t_len, s_len, blank, with_grad)
    if d is not None:
        c = xp.reshape(xp.asarray(coef, dtype=z.dtype, device=device_of(z)), (-1, 1, 1))
        d = xp.where(xp.isfinite(nll)[:, None, None], d * c, xp.zeros_like(d))
    return nll, d


def _ctc_impl(
    logits: Array,
    labels: Array,
    /,
    *,
    logit_lengths: Array | None,
    label_lengths: Array | None,
    blank: int,
    zero_infinity: bool,
    reduction: str,
    sample_weight: Array | None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> tuple[Array, Array | None]:
    if sample_weight is None:
        args = (logits, labels, logit_lengths, label_lengths, blank, zero_infinity, reduction)
        if type(logits) is np.ndarray:
            fast = _numpy_fast(*args, with_grad, grad_out)
        elif grad_out is None and is_torch_tensor(logits):
            fast = _torch_fast(*args, with_grad)
        else:
            fast = None
        if fast is not None:
            return fast
    xp, x, labels, logit_lengths, label_lengths, sample_weight = namespace(
        logits,
        labels,
        logit_lengths,
        label_lengths,
        sample_weight,
        names=("labels", "logit_lengths", "label_lengths", "sample_weight"),
    )
    reduction = check_reduction(reduction)
    check_floating(xp, "logits", x)
    check_labels_dtype(xp, labels)
    shape = _check_shapes(x, labels)
    blank = _check_blank(blank, shape[2])
    zero_infinity = _check_flag("zero_infinity", zero_infinity)
    check_grad_out(xp, grad_out, x)
    labels, t_len, s_len, bad = checked_sequences(
        xp, labels, logit_lengths, label_lengths, shape, blank, device_of(x)
    )
    invalid = Invalid(xp, shape[:1])
    invalid.add(bad)
    dtype = compute_dtype(xp, x.dtype)
    red = plan(xp, reduction, shape[:1], dtype, sample_weight=sample_weight, invalid=invalid)
    z = cast(xp, x, dtype)
    coef = red.coef if with_grad else None
    nll, d = per_example_nll(xp, z, labels, t_len, s_len, blank, zero_infinity, coef, grad_out)
    value, grad = _finish(xp, nll, d, red, zero_infinity, t_len)
    if grad is None or grad is grad_out:  # the kernel wrote into grad_out
        return value, grad
    return value, deliver(xp, grad, x, grad_out)


def _finish(
    xp: Any, nll: Array, d: Array | None, red: Any, zero_infinity: bool, t_len: Array
) -> tuple[Array, Array | None]:
    """Infeasible examples (``nll = inf``), the NaN rule and the reduction.

    ``d`` is already scaled by the reduction's coefficient and 0 on
    infeasible rows.  Those rows become NaN on the example's frames without
    ``zero_infinity`` (the derivative of an infinite loss; PyTorch's is NaN
    too) and stay 0 with it; the rows of examples with a bad value found in
    a trace are NaN.  (Under autograd the custom backward does the same: see
    :func:`_infeasible_rows`.)
    """
    infinite = nll == math.inf
    if zero_infinity:
        nll = xp.where(infinite, xp.zeros_like(nll), nll)
    value = red.apply(nll)
    if d is None:
        return value, None
    if not zero_infinity:
        d = _nan_on_infeasible(xp, d, infinite, t_len)
    if red.invalid.mask is not None:
        d = xp.where(red.invalid.mask[:, None, None], xp.full_like(d, math.nan), d)
    return value, d


def _nan_on_infeasible(xp: Any, d: Array, rows: Array, t_len: Array) -> Array:
    """:func:`_nan_frames`, skipped when no row is infeasible, in place for NumPy."""
    found = readable(xp, rows)
    if found is not None and not bool(found[0].any(found[1])):
        return d
    if is_numpy(xp) and d.flags.writeable:
        for n in np.flatnonzero(rows):
            d[n, : int(t_len[n])] = math.nan
        return d
    return _nan_frames(xp, d, rows, t_len)


setattr(ctc, IMPL_ATTRIBUTE, _ctc_impl)
