"""Connectionist temporal classification: loss and fused gradient (numba), first version.

Per example n with T frames, labels l_1..l_L and the extended labels
l' = (blank, l_1, blank, l_2, ..., l_L, blank) of length S' = 2L + 1::

    lp[t, s]    = x[t, l'_s] - logsumexp_c x[t, c]                 (log-softmax, gathered)
    alpha[0, s] = lp[0, s] for s < 2, -inf beyond
    alpha[t, s] = lp[t, s] + log(e^alpha[t-1, s] + e^alpha[t-1, s-1] + [skip s] e^alpha[t-1, s-2])
    nll         = -log(e^alpha[T-1, S'-1] + e^alpha[T-1, S'-2])
    grad[t, c]  = scale (softmax(x[t])[c] - sum_{s: l'_s = c} e^(alpha[t, s] + beta[t, s] + nll))

where [skip s] holds for a label (s odd) that differs from the label before
it, and beta[t, s] is the log-probability of the frames after t given state
s at t (the backward recursion, mirror of alpha).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, prange

from . import _threads
from ._rowpass import FASTMATH, row_max_sumexp


@njit(cache=True)
def _lse2(a, b):
    m = max(a, b)
    if m == -np.inf:
        return -np.inf
    return m + math.log(math.exp(a - m) + math.exp(b - m))


@njit(cache=True)
def _lse3(a, b, c):
    m = max(a, max(b, c))
    if m == -np.inf:
        return -np.inf
    return m + math.log(math.exp(a - m) + math.exp(b - m) + math.exp(c - m))


@njit(cache=True)
def _ext_label(lab, s, blank):
    return blank if s % 2 == 0 else lab[s // 2]


@njit(cache=True)
def _can_skip(lab, s):
    """Whether state s may be entered from s - 2: a label different from the one before it."""
    return s % 2 == 1 and s >= 3 and lab[s // 2] != lab[s // 2 - 1]


@njit(fastmath=FASTMATH, cache=True)
def _log_norms(x, Tn, lse):
    for t in range(Tn):
        m, s = row_max_sumexp(x[t])
        lse[t] = m + math.log(s)


@njit(cache=True)
def _alpha_table(x, lab, Tn, L, blank, lse, alpha):
    """alpha[t, s] for t < Tn, s < 2L + 1 (log space, float64); returns log p(labels)."""
    Sp = 2 * L + 1
    for s in range(Sp):
        alpha[0, s] = -np.inf
    alpha[0, 0] = float(x[0, blank]) - lse[0]
    if Sp > 1:
        alpha[0, 1] = float(x[0, lab[0]]) - lse[0]
    for t in range(1, Tn):
        for s in range(Sp):
            c = _ext_label(lab, s, blank)
            a = alpha[t - 1, s]
            b = alpha[t - 1, s - 1] if s >= 1 else -np.inf
            k = alpha[t - 1, s - 2] if _can_skip(lab, s) else -np.inf
            alpha[t, s] = float(x[t, c]) - lse[t] + _lse3(a, b, k)
    last = alpha[Tn - 1, Sp - 1]
    return _lse2(last, alpha[Tn - 1, Sp - 2]) if Sp > 1 else last


@njit(parallel=True, cache=True)
def _ctc_v1(x, labels, logit_lengths, label_lengths, blank, scale, g, do_grad, nll):
    N, _, C = x.shape
    for n in prange(N):
        Tn = logit_lengths[n]
        L = label_lengths[n]
        lab = labels[n]
        Sp = 2 * L + 1
        if do_grad:
            g[n] = 0.0
        if Tn == 0:
            nll[n] = 0.0 if L == 0 else np.inf
            continue
        xn = x[n]
        lse = np.empty(Tn, dtype=np.float64)
        _log_norms(xn, Tn, lse)
        alpha = np.empty((Tn, Sp), dtype=np.float64)
        logz = _alpha_table(xn, lab, Tn, L, blank, lse, alpha)
        nll[n] = -logz
        if not do_grad or logz == -np.inf or scale[n] == 0.0:
            continue
        sc = scale[n]
        beta = np.full(Sp, -np.inf)
        nxt = np.empty(Sp, dtype=np.float64)
        beta[Sp - 1] = 0.0
        if Sp > 1:
            beta[Sp - 2] = 0.0
        gn = g[n]
        for t in range(Tn - 1, -1, -1):
            row = xn[t]
            grow = gn[t]
            # d nll / d x[t, c] = softmax[t, c] - sum_{s: l'_s = c} posterior[t, s]
            for c in range(C):
                grow[c] = sc * math.exp(float(row[c]) - lse[t])
            for s in range(Sp):
                post = math.exp(alpha[t, s] + beta[s] + nll[n])
                grow[_ext_label(lab, s, blank)] -= sc * post
            if t == 0:
                break
            # beta[t-1, s] = log sum_{s' in {s, s+1, s+2 (skip)}} e^(lp[t, s'] + beta[t, s'])
            for s in range(Sp):
                nxt[s] = float(row[_ext_label(lab, s, blank)]) - lse[t] + beta[s]
            for s in range(Sp):
                b = nxt[s + 1] if s + 1 < Sp else -np.inf
                k = nxt[s + 2] if s + 2 < Sp and _can_skip(lab, s + 2) else -np.inf
                beta[s] = _lse3(nxt[s], b, k)
    return nll


def ctc_loss_and_grad(
    logits: np.ndarray,
    labels: np.ndarray,
    logit_lengths: np.ndarray,
    label_lengths: np.ndarray,
    blank: int,
    *,
    grad_scale: np.ndarray | None = None,
    grad_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """CTC negative log-likelihood per example and, with ``grad_scale``, its scaled gradient.

    ``logits`` (N, T, C) raw scores, float32 or float64, C-contiguous; ``labels``
    (N, S) int64 padded; ``logit_lengths`` and ``label_lengths`` (N,) int64. The
    caller has validated them. Returns ``(nll, grad)``: nll (N,) float64 (inf
    where no alignment fits); grad (N, T, C) of the logits' dtype,
    ``grad_scale[n] * d nll[n] / d logits[n]``, 0 past ``logit_lengths[n]``, for an
    infeasible example and where ``grad_scale[n] == 0``; ``None`` without ``grad_scale``.
    """
    x = logits
    n = x.shape[0]
    nll = np.empty(n, dtype=np.float64)
    do_grad = grad_scale is not None
    if do_grad:
        g = grad_out if grad_out is not None else np.empty_like(x)
        scale = np.ascontiguousarray(grad_scale, dtype=np.float64)
    else:
        g = np.empty((n, 0, 0), dtype=x.dtype)
        scale = np.zeros(n, dtype=np.float64)
    _threads.ensure()
    args: tuple[Any, ...] = (x, labels, logit_lengths, label_lengths, int(blank), scale, g)
    with _threads.serial():
        _ctc_v1(*args, do_grad, nll)
    return nll, (g if do_grad else None)
