"""optax's ``ctc_loss`` and ``ctc_loss_with_forward_probs`` over the core.

optax (0.2.8) marks padded frames and labels with paddings (1.0 = padded)
instead of lengths, and approximates ``log(0)`` by ``log_epsilon = -1e5``:
a forbidden transition costs ``log_epsilon`` rather than being impossible.
For an example whose label fits its frames that changes nothing a float can
hold (the forbidden paths weigh ``e^-1e5`` relative to the allowed ones), so
:func:`ctc_loss` takes the core's exact forward-backward and its gradient; an
infeasible example (label too long for its frames), whose exact loss is
infinite, gets optax's finite value from optax's own recursion, as does
:func:`ctc_loss_with_forward_probs`, whose forward tables are that
recursion's (``lax.scan`` for JAX, a loop over frames elsewhere).

Deliberate differences: paddings must be 0 or 1 (optax interpolates between
frames for other values) and a label equal to ``blank_id`` or outside
``[0, K)`` within its length raises ``ValueError`` naming its position (optax
computes a meaningless number); where values cannot be read (``jax.jit``)
such examples are NaN.
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Any

from .._backend import (
    Array,
    cast,
    compute_dtype,
    device_of,
    namespace,
    readable,
    shape_of,
)
from .._validation import Invalid, check_floating, check_labels_dtype, check_values
from ..losses.sequence import (
    _check_blank,
    _is_jax,
    _jax_scan,
    _python_scan,
    checked_sequences,
    index_dtype,
    per_example_nll,
)
from ._common import framework_semantics

__all__ = ["ctc_loss", "ctc_loss_with_forward_probs"]


def _not_binary(xp: Any, p: Array) -> Array:
    return ~((p == 0) | (p == 1))


def _inputs(
    logits: Any, logit_paddings: Any, labels: Any, label_paddings: Any, blank_id: Any
) -> tuple[Any, ...]:
    """Namespace, shapes (optax's messages) and the 0/1 paddings, with the traced bad rows."""
    xp, x, lpad, y, ypad = namespace(
        logits,
        logit_paddings,
        labels,
        label_paddings,
        names=("logit_paddings", "labels", "label_paddings"),
    )
    check_floating(xp, "logits", x)
    check_labels_dtype(xp, y)
    if x.ndim != 3:
        msg = f"`logits` must have rank 3, (B, T, K); got shape {shape_of(x)}"
        raise ValueError(msg)
    if y.ndim != 2:
        msg = f"`labels` must have rank 2, (B, N); got shape {shape_of(y)}"
        raise ValueError(msg)
    b, t, k = shape_of(x)
    if shape_of(ypad) != shape_of(y):
        msg = (
            f"`label_paddings` must have the shape of `labels` {shape_of(y)}; got {shape_of(ypad)}"
        )
        raise ValueError(msg)
    if shape_of(lpad) != (b, t):
        msg = f"`logit_paddings` must have shape (B, T) = {(b, t)}; got {shape_of(lpad)}"
        raise ValueError(msg)
    if int(y.shape[0]) != b:
        msg = f"Expected `labels` to have batch size {b}, got {int(y.shape[0])}."
        raise ValueError(msg)
    blank = _check_blank(blank_id, k) if k else _check_blank(blank_id, 1)
    bad = Invalid(xp, (b,))
    for name, p in (("logit_paddings", lpad), ("label_paddings", ypad)):
        found = check_values(xp, name, p, _not_binary, "0 or 1")
        if found is not None:
            bad.add(xp.any(found, axis=1))
            p = xp.where(found, xp.ones_like(p), p)
        if name == "logit_paddings":
            lpad = p
        else:
            ypad = p
    return xp, x, lpad, y, ypad, blank, bad


def _optax_recursion(
    xp: Any,
    logprobs: Array,
    logit_paddings: Array,
    labels: Array,
    label_paddings: Array,
    blank: int,
    log_epsilon: float,
) -> tuple[Array, Array, Array]:
    """optax's ``ctc_loss_with_forward_probs`` recursion, step for step, in array-API code."""
    b, _, k = shape_of(logprobs)
    n = int(labels.shape[1])
    dtype, device = logprobs.dtype, device_of(logprobs)
    labellens = n - cast(xp, xp.sum(label_paddings, axis=1), index_dtype(xp))
    # repeat[b, n] = 1 when label[b, n] == label[b, n+1]
    same = cast(xp, labels[:, :-1] == labels[:, 1:], dtype)
    repeat = xp.concat([same, xp.zeros((b, 1), dtype=dtype, device=device)], axis=1)
    phi_emit = xp.permute_dims(logprobs[:, :, blank : blank + 1], (1, 0, 2))  # (T, B, 1)
    one_hot = cast(xp, labels[..., None] == xp.arange(k, device=device), dtype)  # (B, N, K)
    emit = xp.permute_dims(xp.matmul(logprobs, xp.permute_dims(one_hot, (0, 2, 1))), (1, 0, 2))
    eps = xp.asarray(log_epsilon, dtype=dtype, device=device)
    first = xp.arange(n + 1, device=device)[None, :] == 0
    phi0 = xp.where(first, xp.zeros((b, n + 1), dtype=dtype, device=device), eps)
    emit0 = xp.zeros((b, n), dtype=dtype, device=device) + eps

    def update_phi(phi: Array, added: Array) -> Array:
        return xp.concat([phi[:, :1], xp.logaddexp(phi[:, 1:], added)], axis=-1)

    def step(carry: tuple[Array, Array], xs: tuple[Array, ...]) -> Any:
        prev_phi, prev_emit = carry
        e, p, pad = xs
        prev_phi_orig = prev_phi
        prev_phi = update_phi(prev_phi, prev_emit + eps * repeat)
        next_emit = xp.logaddexp(prev_phi[:, :-1] + e, prev_emit + e)
        next_phi = update_phi(prev_phi + p, prev_emit + p + eps * (1.0 - repeat))
        pad = xp.reshape(pad, (b, 1))
        next_emit = pad * prev_emit + (1.0 - pad) * next_emit
        next_phi = pad * prev_phi_orig + (1.0 - pad) * next_phi
        return (next_phi, next_emit), (next_phi, next_emit)

    scan = _jax_scan if _is_jax(logprobs) else _python_scan
    pads = cast(xp, xp.permute_dims(logit_paddings, (1, 0)), dtype)
    _, (alpha_phi, alpha_emit) = scan(xp, step, (phi0, emit0), (emit, phi_emit, pads), False)
    last = update_phi(alpha_phi[-1, ...], alpha_emit[-1, ...])
    alpha_phi = xp.concat([alpha_phi[:-1, ...], last[None, ...]], axis=0)
    loss = -xp.take_along_axis(last, labellens[:, None], axis=1)[:, 0]
    return loss, alpha_phi, alpha_emit


@functools.cache
def _jax_recursion(blank: int) -> Any:
    """:func:`_optax_recursion` for JAX, jitted (eager calls compile once per shape)."""
    jax = sys.modules["jax"]
    xp = sys.modules["array_api_compat"].array_namespace(jax.numpy.zeros(()))

    def run(lp: Array, lpad: Array, labels: Array, ypad: Array, eps: Any) -> Any:
        return _optax_recursion(xp, lp, lpad, labels, ypad, blank, eps)

    return jax.jit(run)


def _recursion(
    xp: Any,
    lp: Array,
    lpad: Array,
    labels: Array,
    ypad: Array,
    blank: int,
    log_epsilon: Any,
) -> tuple[Array, Array, Array]:
    if _is_jax(lp):
        return _jax_recursion(blank)(lp, lpad, labels, ypad, log_epsilon)
    return _optax_recursion(xp, lp, lpad, labels, ypad, blank, log_epsilon)


def _result_dtype(xp: Any, x: Array) -> Any:
    """optax's result dtype: its tables start as ``jnp.ones(...) * log_epsilon`` in JAX's
    default float, so the loss is ``x``'s dtype promoted with it (float32 for
    half-precision logits, and float64 for any logits under ``jax_enable_x64``); for
    NumPy and torch input, the promotion with float32 (optax's default configuration)."""
    if _is_jax(x):
        jnp = sys.modules["jax"].numpy
        return jnp.promote_types(x.dtype, jnp.ones(()).dtype)
    return compute_dtype(xp, x.dtype)


def _log_softmax(xp: Any, x: Array) -> Array:
    m = xp.max(x, axis=-1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return x - m - xp.log(xp.sum(xp.exp(x - m), axis=-1, keepdims=True))


@framework_semantics
def ctc_loss(
    logits: Any,
    logit_paddings: Any,
    labels: Any,
    label_paddings: Any,
    *,
    blank_id: int = 0,
    log_epsilon: float = -1e5,
) -> Array:
    r"""``optax.losses.ctc_loss``: the CTC loss of each sequence, (B,).

    ``logits`` (B, T, K) are normalised with a log-softmax; frames with
    ``logit_paddings[b, t] == 1`` are skipped wherever they are; the first
    ``N - sum(label_paddings[b])`` labels are the sequence.  The value is
    the exact ``-log p(labels | logits)`` and its gradient the exact
    ``softmax - gamma`` (the core's); an infeasible example gets optax's
    finite value, in which each forbidden step costs ``-log_epsilon``.  The
    result's dtype is optax's: half-precision logits give float32 (computed
    in float32 here; optax takes their log-softmax in half precision), and
    under ``jax_enable_x64`` JAX logits give float64.

    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> logits = np.zeros((1, 2, 2))  # two frames, {blank, 1} equally likely
    >>> optax.ctc_loss(logits, np.zeros((1, 2)), np.array([[1]]), np.zeros((1, 1)))
    array([0.28768207])
    """
    xp, x, lpad, y, ypad, blank, bad = _inputs(
        logits, logit_paddings, labels, label_paddings, blank_id
    )
    b, t, k = shape_of(x)
    dtype = compute_dtype(xp, x.dtype)
    z = cast(xp, x, dtype)
    # optax skips padded frames wherever they are: move the kept ones first (stably)
    order = xp.argsort(cast(xp, lpad, dtype), axis=1, stable=True)
    index = xp.broadcast_to(order[:, :, None], (b, t, k))
    kept = xp.take_along_axis(z, index, axis=1)
    t_len = t - cast(xp, xp.sum(cast(xp, lpad, dtype), axis=1), index_dtype(xp))
    s_len = int(y.shape[1]) - cast(xp, xp.sum(cast(xp, ypad, dtype), axis=1), index_dtype(xp))
    shape = (b, t, k, int(y.shape[1]))
    checked, t_len, s_len, bad_rows = checked_sequences(
        xp, y, t_len, s_len, shape, blank, device_of(x)
    )
    bad.add(bad_rows)
    nll, _ = per_example_nll(xp, kept, checked, t_len, s_len, blank, zero_infinity=True)
    infinite = nll == math.inf

    def with_optax_values() -> Array:
        # optax: an infeasible label costs log_epsilon per forbidden step, not inf
        lp = _log_softmax(xp, z)
        approx = _recursion(xp, lp, lpad, checked, ypad, blank, log_epsilon)[0]
        return xp.where(infinite, approx, nll)

    found = readable(xp, infinite)
    if found is not None:
        if bool(found[0].any(found[1])):
            nll = with_optax_values()
    elif _is_jax(nll):
        # traced: optax's recursion runs only when an example is infeasible
        import jax

        nll = jax.lax.cond(xp.any(infinite), with_optax_values, lambda: nll)
    else:
        nll = with_optax_values()
    return cast(xp, bad.poison(nll), _result_dtype(xp, x))


@framework_semantics
def ctc_loss_with_forward_probs(
    logits: Any,
    logit_paddings: Any,
    labels: Any,
    label_paddings: Any,
    *,
    blank_id: int = 0,
    log_epsilon: float = -1e5,
) -> tuple[Array, Array, Array]:
    r"""``optax.losses.ctc_loss_with_forward_probs``: the loss and optax's forward tables.

    Returns ``(loss (B,), logalpha_blank (T, B, N+1), logalpha_nonblank (T, B, N))``,
    the log-probabilities of the paths up to frame ``t`` that have emitted
    ``n`` labels and sit in a blank, or sit in label ``n``, computed by
    optax's recursion (``log_epsilon`` for ``log 0``).  Derivatives come from
    autograd through that recursion, as optax's.

    >>> import numpy as np
    >>> from losskit.compat import optax
    >>> loss, blank, label = optax.ctc_loss_with_forward_probs(
    ...     np.zeros((1, 2, 2)), np.zeros((1, 2)), np.array([[1]]), np.zeros((1, 1)))
    >>> loss.round(6), blank.shape, label.shape
    (array([0.287682]), (2, 1, 2), (2, 1, 1))
    """
    xp, x, lpad, y, ypad, blank, bad = _inputs(
        logits, logit_paddings, labels, label_paddings, blank_id
    )
    b, t, k = shape_of(x)
    dtype = compute_dtype(xp, x.dtype)
    s_len = int(y.shape[1]) - cast(xp, xp.sum(cast(xp, ypad, dtype), axis=1), index_dtype(xp))
    shape = (b, t, k, int(y.shape[1]))
    full = xp.full((b,), t, dtype=index_dtype(xp), device=device_of(x))
    checked, _, _, bad_rows = checked_sequences(xp, y, full, s_len, shape, blank, device_of(x))
    bad.add(bad_rows)
    lp = _log_softmax(xp, cast(xp, x, dtype))
    loss, alpha_phi, alpha_emit = _optax_recursion(xp, lp, lpad, checked, ypad, blank, log_epsilon)
    out = _result_dtype(xp, x)
    return cast(xp, bad.poison(loss), out), cast(xp, alpha_phi, out), cast(xp, alpha_emit, out)
