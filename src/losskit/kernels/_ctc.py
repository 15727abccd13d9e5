"""Connectionist temporal classification: loss and fused gradient (numba).

Per example n with T frames, labels l_1..l_L and the extended labels
l' = (blank, l_1, blank, l_2, ..., l_L, blank) of length S' = 2L + 1::

    lp[t, s]    = x[t, l'_s] - logsumexp_c x[t, c]                 (log-softmax, gathered)
    alpha[0, s] = lp[0, s] for s < 2, -inf beyond
    alpha[t, s] = lp[t, s] + log(e^alpha[t-1, s] + e^alpha[t-1, s-1] + [skip s] e^alpha[t-1, s-2])
    beta[T-1, s] = 0 for s >= S' - 2, -inf before
    beta[t, s]  = log(sum over s2 in {s, s+1, s+2 if [skip s+2]} of e^(lp[t+1, s2] + beta[t+1, s2]))
    nll         = -log(e^alpha[T-1, S'-1] + e^alpha[T-1, S'-2])
    grad[t, c]  = scale (softmax(x[t])[c] - sum_{s: l'_s = c} e^(alpha[t, s] + beta[t, s] + nll))

[skip s] holds for a label (s odd) that differs from the label two states
before it (a repeated label needs a blank between its copies); beta here
leaves out frame t's own emission, so alpha + beta is the log-probability of
the paths through state s at frame t and its exponential, divided by the
total, is the posterior occupation of the gradient.

Three parallel passes, none with a T x C x S temporary:

1. ``_frames`` (parallel over examples and frame ranges): each frame's
   logits are read once (``row_max_sumexp``: blocked max and sum of
   exponentials) and the L + 1 log-probabilities the lattice needs (blank and
   the labels) are gathered into ``lp`` (N, T, L + 1), float64.
2. ``_recursions`` (parallel over examples, and with a gradient over the 2N
   alpha and beta recursions): log space, float64, each frame a vector loop
   over the states (a three-term log-sum-exp with the vectorisable float64
   ``exp`` and ``log`` polynomials of this file). Each frame is normalised by
   its maximum and the maxima summed, so the stored tables (N, T, S') hold
   values near 0 however long the sequence.
3. ``_gradient`` (parallel over examples and frame ranges): each frame's
   logits are read a second time and its gradient row written once,
   scale softmax, minus the posterior of the states, scattered onto their
   classes.

Accuracy: everything after the logits is float64 whatever their dtype, so a
float32 gradient is the float64 one rounded (and its softmax term the float32
``fexp``, within 2 ulp). A first version that kept lp and the tables in
float32 for float32 logits was measured 1e-3 off in the gradient at logits
of +-1e4 (lp of magnitude 2e4 rounds at 2e-3); float32 recursion arithmetic
was not tried, since its rounding would accumulate along the sequence (about
sqrt(T) ulp of lp in the posteriors). Checked against a float64 brute-force
enumeration, a float64 NumPy forward-backward and PyTorch in
``tests/test_kernels_ctc.py``.

References
----------
A. Graves, S. Fernandez, F. Gomez, J. Schmidhuber, "Connectionist temporal
classification: labelling unsegmented sequence data with recurrent neural
networks", ICML 2006.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from . import _threads
from ._primitives import _exp32_ir, maxnum
from ._rowpass import FASTMATH, row_max_sumexp

# --------------------------------------------------------------------------- float64 exp, log

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm: n * _LN2_HI exact for |n| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_ROUND64 = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer
_EXP64_LO = -708.39  # below: 0 (a subnormal result, negligible next to the 1 it is added to)
_EXP64_HI = 709.78  # above: inf
# exp(r) on |r| <= ln2 / 2 by its Taylor series to degree 13 (remainder < 5e-18).
_EXP64_POLY = tuple(1.0 / math.factorial(k) for k in range(14))
# log(f) = 2 atanh(u), u = (f - 1) / (f + 1), |u| <= 0.1716: 2 u sum_k u^(2k) / (2k + 1), k <= 10.
_LOG64_POLY = tuple(1.0 / (2 * k + 1) for k in range(11))


def _exp64_ir(builder: Any, x: Any) -> Any:
    """exp(x) for float64 as LLVM IR (vectorisable): 2^n exp(r), n = round(x / ln2).

    Within about 1 ulp; exp(-inf) = 0, below -708.39 0, above 709.78 inf, NaN stays NaN.
    """
    f64 = ir.DoubleType()
    i64 = ir.IntType(64)
    fm = ("contract",)

    def const(v: float) -> Any:
        return ir.Constant(f64, float(v))

    k = builder.fadd(builder.fmul(x, const(_LOG2E), flags=fm), const(_ROUND64), flags=fm)
    n = builder.fsub(k, const(_ROUND64), flags=fm)
    r = builder.fsub(x, builder.fmul(n, const(_LN2_HI), flags=fm), flags=fm)
    r = builder.fsub(r, builder.fmul(n, const(_LN2_LO), flags=fm), flags=fm)
    p = const(_EXP64_POLY[-1])
    for coeff in _EXP64_POLY[-2::-1]:
        p = builder.fadd(builder.fmul(p, r, flags=fm), const(coeff), flags=fm)
    bits = builder.add(builder.bitcast(k, i64), ir.Constant(i64, 1023))
    bits = builder.shl(bits, ir.Constant(i64, 52))
    e = builder.fmul(p, builder.bitcast(bits, f64), flags=fm)
    e = builder.select(builder.fcmp_ordered("<", x, const(_EXP64_LO)), const(0.0), e)
    return builder.select(builder.fcmp_ordered(">", x, const(_EXP64_HI)), const(np.inf), e)


def _log64_ir(builder: Any, x: Any) -> Any:
    """log(x) for normal positive float64 x as LLVM IR (vectorisable), within about 2 ulp.

    x = 2^k f with f in [sqrt(1/2), sqrt(2)); log f = 2 atanh((f - 1) / (f + 1)).
    0 -> -inf, inf -> inf, negative or NaN -> NaN; subnormal x is not handled
    (the kernel passes sums of exponentials that include a 1).
    """
    f64 = ir.DoubleType()
    i64 = ir.IntType(64)
    fm = ("contract",)

    def const(v: float) -> Any:
        return ir.Constant(f64, float(v))

    bits = builder.bitcast(x, i64)
    k = builder.sub(builder.lshr(bits, ir.Constant(i64, 52)), ir.Constant(i64, 1023))
    mant = builder.and_(bits, ir.Constant(i64, 0x000FFFFFFFFFFFFF))
    f = builder.bitcast(builder.or_(mant, ir.Constant(i64, 0x3FF0000000000000)), f64)  # [1, 2)
    big = builder.fcmp_ordered(">", f, const(math.sqrt(2.0)))
    k = builder.add(k, builder.zext(big, i64))
    f = builder.select(big, builder.fmul(f, const(0.5), flags=fm), f)
    u = builder.fdiv(builder.fsub(f, const(1.0)), builder.fadd(f, const(1.0)))
    u2 = builder.fmul(u, u, flags=fm)
    p = const(_LOG64_POLY[-1])
    for coeff in _LOG64_POLY[-2::-1]:
        p = builder.fadd(builder.fmul(p, u2, flags=fm), const(coeff), flags=fm)
    kf = builder.sitofp(k, f64)
    lo = builder.fadd(
        builder.fmul(builder.fadd(u, u), p, flags=fm), builder.fmul(kf, const(_LN2_LO), flags=fm)
    )
    out = builder.fadd(builder.fmul(kf, const(_LN2_HI), flags=fm), lo)
    out = builder.select(builder.fcmp_ordered("==", x, const(0.0)), const(-np.inf), out)
    out = builder.select(builder.fcmp_ordered("==", x, const(np.inf)), const(np.inf), out)
    bad = builder.or_(builder.fcmp_unordered("uno", x, x), builder.fcmp_ordered("<", x, const(0.0)))
    return builder.select(bad, const(np.nan), out)


@intrinsic
def vexp(typingctx: Any, x: Any) -> Any:
    """exp(x) as a vectorisable polynomial, float32 (``_primitives``) or float64 (this file)."""
    if x == types.float32:

        def codegen32(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return _exp32_ir(builder, args[0])

        return types.float32(types.float32), codegen32
    if x == types.float64:

        def codegen64(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return _exp64_ir(builder, args[0])

        return types.float64(types.float64), codegen64
    return None


@intrinsic
def vlog(typingctx: Any, x: Any) -> Any:
    """log(x) for float64 as a vectorisable polynomial (normal or zero x)."""
    if x == types.float64:

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return _log64_ir(builder, args[0])

        return types.float64(types.float64), codegen
    return None


# --------------------------------------------------------------------------- pass 1


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _frames(x, labels, logit_lengths, label_lengths, blank, K, mx, sm, lp):
    """mx[n, t], sm[n, t] = max and sum of exponentials of frame t; lp[n, t, 0] the blank's
    log-probability, lp[n, t, 1 + j] label j's. Frames split into K ranges per example."""
    N = x.shape[0]
    for task in prange(N * K):
        n = task // K
        k = task % K
        Tn = logit_lengths[n]
        L = label_lengths[n]
        lab = labels[n]
        xn = x[n]
        lpn = lp[n]
        for t in range(k * Tn // K, (k + 1) * Tn // K):
            row = xn[t]
            m, s = row_max_sumexp(row)
            mx[n, t] = m
            sm[n, t] = s
            lse = m + math.log(s)
            lpt = lpn[t]
            lpt[0] = float(row[blank]) - lse
            for j in range(L):
                lpt[j + 1] = float(row[lab[j]]) - lse


# --------------------------------------------------------------------------- pass 2


@njit(fastmath=FASTMATH, cache=True)
def _lse3_frame(a_in, b_in, c_in, skip, emit, out, Sp):
    """out[s] = emit[s] + log(e^a[s] + e^b[s] + e^(c[s] + skip[s])) for s < Sp; returns max(out).

    The three inputs are views of one padded vector at offsets; -inf terms
    give 0 (a state with no way in stays -inf). The maximum is a loop of its
    own: in the same loop, the reduction keeps LLVM from vectorising.
    """
    for s in range(Sp):
        a = a_in[s]
        b = b_in[s]
        c = c_in[s] + skip[s]
        m = maxnum(a, maxnum(b, c))
        # the two terms other than (one copy of) the maximum, whose exponential is 1
        o1 = b if a == m else a
        o2 = b if (a != m and b != m) else c
        mm = m if m > -np.inf else 0.0
        one = 1.0 if m > -np.inf else 0.0
        out[s] = mm + vlog(one + vexp(o1 - mm) + vexp(o2 - mm)) + emit[s]
    top = out[0]
    for s in range(1, Sp):
        top = maxnum(top, out[s])
    return top


@njit(fastmath=FASTMATH, cache=True)
def _expand(lpt, L, e):
    """e[s] = lp of extended state s (float64): the blank at even s, label (s - 1) / 2 at odd s."""
    b = float(lpt[0])
    for j in range(L):
        e[2 * j] = b
        e[2 * j + 1] = float(lpt[j + 1])
    e[2 * L] = b


@njit(fastmath=FASTMATH, cache=True)
def _normalise(v, Sp, top):
    """v[s] -= top."""
    for s in range(Sp):
        v[s] -= top


@njit(fastmath=FASTMATH, cache=True)
def _normalise_store(v, Sp, top, dst):
    """v[s] -= top, and the result into dst (the table's dtype)."""
    for s in range(Sp):
        v[s] -= top
        dst[s] = v[s]


@njit(fastmath=FASTMATH, cache=True)
def _alpha(lpn, lab, Tn, L, store, An, ao):
    """Forward recursion of one example; returns log p(labels). With ``store`` the
    normalised table into An (Tn, S') and the frame offsets into ao (Tn,)."""
    Sp = 2 * L + 1
    skip = np.zeros(Sp)  # skip[s]: 0 where s may be entered from s - 2, else -inf
    for s in range(Sp):
        if not (s % 2 == 1 and s >= 3 and lab[s // 2] != lab[s // 2 - 1]):
            skip[s] = -np.inf
    prev = np.full(Sp + 2, -np.inf)  # prev[s + 2]: state s; two -inf states before 0
    cur = np.empty(Sp)
    e = np.empty(Sp)
    _expand(lpn[0], L, e)
    for s in range(Sp):
        cur[s] = -np.inf
    cur[0] = e[0]
    if Sp > 1:
        cur[1] = e[1]
    top = maxnum(cur[0], cur[1]) if Sp > 1 else cur[0]
    off = 0.0
    for t in range(Tn):
        if t > 0:
            _expand(lpn[t], L, e)
            top = _lse3_frame(prev[2:], prev[1:], prev[:], skip, e, cur, Sp)
        if not top > -np.inf:
            if top != top:  # NaN logits
                return top
            return -np.inf  # no state alive: no alignment fits
        off += top
        if store:
            _normalise_store(cur, Sp, top, An[t])
            ao[t] = off
        else:
            _normalise(cur, Sp, top)
        prev[2:] = cur
    last = cur[Sp - 1]
    if Sp > 1:
        second = cur[Sp - 2]
        m = maxnum(last, second)
        if m == -np.inf:
            return -np.inf
        return off + m + math.log(math.exp(last - m) + math.exp(second - m))
    return off + last


@njit(fastmath=FASTMATH, cache=True)
def _beta(lpn, lab, Tn, L, Bn, bo):
    """Backward recursion of one example (beta leaves out the frame's own emission),
    normalised, into Bn (Tn, S') and the frame offsets into bo (Tn,)."""
    Sp = 2 * L + 1
    skip = np.zeros(Sp + 2)  # skip[s]: 0 where s may be entered from s - 2; pads after
    for s in range(Sp + 2):
        if not (s < Sp and s % 2 == 1 and s >= 3 and lab[s // 2] != lab[s // 2 - 1]):
            skip[s] = -np.inf
    nxt = np.full(Sp + 2, -np.inf)  # lp[t+1, s] + beta[t+1, s]; two -inf states after
    cur = np.empty(Sp)
    e = np.empty(Sp)
    no_emit = np.zeros(Sp)  # beta[t] leaves frame t's emission out
    for s in range(Sp):
        cur[s] = -np.inf
    cur[Sp - 1] = 0.0
    if Sp > 1:
        cur[Sp - 2] = 0.0
    off = 0.0
    top = 0.0
    for t in range(Tn - 1, -1, -1):
        if t < Tn - 1:
            _expand(lpn[t + 1], L, e)
            for s in range(Sp):
                nxt[s] += e[s]
            top = _lse3_frame(nxt[:], nxt[1:], nxt[2:], skip[2:], no_emit, cur, Sp)
        if not top > -np.inf:
            return
        off += top
        _normalise_store(cur, Sp, top, Bn[t])
        bo[t] = off
        nxt[:Sp] = cur


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _recursions(labels, logit_lengths, label_lengths, lp, scale, do_grad, A, ao, B, bo, logz):
    """logz[n] = log p(labels_n); with ``do_grad`` the normalised alpha and beta tables
    (one task each, so 2N tasks run in parallel)."""
    N = lp.shape[0]
    ntasks = 2 * N if do_grad else N
    for task in prange(ntasks):
        n = task % N
        Tn = logit_lengths[n]
        L = label_lengths[n]
        if task < N:
            if Tn == 0:
                logz[n] = 0.0 if L == 0 else -np.inf
            else:
                logz[n] = _alpha(lp[n], labels[n], Tn, L, do_grad, A[n], ao[n])
        elif Tn > 0 and scale[n] != 0.0:
            _beta(lp[n], labels[n], Tn, L, B[n], bo[n])


# --------------------------------------------------------------------------- pass 3


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _gradient(
    x, labels, logit_lengths, label_lengths, blank, K, mx, sm, A, ao, B, bo, logz, scale, g
):
    """g[n, t] = scale[n] (softmax(x[n, t]) - posterior occupation of each class); 0 past
    the example's frames, where no alignment fits, and where scale[n] is 0."""
    N, T, C = x.shape
    zero = x.dtype.type(0.0)
    for task in prange(N * K):
        n = task // K
        k = task % K
        Tn = logit_lengths[n]
        L = label_lengths[n]
        Sp = 2 * L + 1
        lab = labels[n]
        sc = scale[n]
        live = sc != 0.0 and logz[n] != -np.inf
        gam = np.empty(Sp)
        for t in range(k * T // K, (k + 1) * T // K):
            grow = g[n, t]
            if t >= Tn or not live:
                for c in range(C):
                    grow[c] = zero
                continue
            row = x[n, t]
            m = mx[n, t]
            shift = row.dtype.type(m) if m > -np.inf else zero
            f = row.dtype.type(sc / sm[n, t])
            # d nll / d x[t, c] = softmax[t, c] - sum_{s: l'_s = c} e^(alpha + beta - log p)
            for c in range(C):
                grow[c] = vexp(row[c] - shift) * f
            off = ao[n, t] + bo[n, t] - logz[n]
            At = A[n, t]
            Bt = B[n, t]
            for s in range(Sp):
                gam[s] = sc * vexp(float(At[s]) + float(Bt[s]) + off)
            blank_occ = 0.0
            for j in range(L):
                blank_occ += gam[2 * j]
                grow[lab[j]] -= gam[2 * j + 1]
            grow[blank] -= blank_occ + gam[2 * L]


def _chunks(n: int, threads: int) -> int:
    """Frame ranges per example for the frame-parallel passes: at least 4 tasks per thread."""
    return max(1, -(-4 * threads // max(n, 1)))


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
    caller has validated them (labels in [0, C) and not ``blank`` within their
    lengths, 0 <= lengths <= padded sizes). Returns ``(nll, grad)``: nll (N,)
    float64, inf where no alignment fits; grad (N, T, C) of the logits' dtype
    (``grad_out`` if given), ``grad_scale[n] * d nll[n] / d logits[n]``, 0 past
    ``logit_lengths[n]``, for an infeasible example and where ``grad_scale[n]``
    is 0; ``None`` without ``grad_scale`` (only the forward recursion runs).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((1, 2, 3))            # uniform over 3 classes, 2 frames
    >>> nll, g = ctc_loss_and_grad(x, np.array([[1]]), np.array([2]), np.array([1]), 0,
    ...                            grad_scale=np.ones(1))
    >>> round(float(nll[0]), 6), round(float(-np.log(3 / 9)), 6)  # paths 11, 01, 10
    (1.098612, 1.098612)
    >>> (3 * g[0]).round(6) + 0.0  # softmax 1/3 minus the posterior: class 1 in 2 of 3 paths
    array([[ 0., -1.,  1.],
           [ 0., -1.,  1.]])
    """
    import numba

    x = logits
    N, T, _ = x.shape
    lmax = int(label_lengths.max()) if N else 0
    nll = np.empty(N, dtype=np.float64)
    do_grad = grad_scale is not None
    _threads.ensure()
    K = _chunks(N, int(numba.get_num_threads()))
    mx = np.empty((N, T))
    sm = np.empty((N, T))
    lp = np.empty((N, T, lmax + 1))
    logz = np.empty(N)
    kern: tuple[Any, Any, Any] = (_frames, _recursions, _gradient)
    if do_grad:
        g = grad_out if grad_out is not None else np.empty_like(x)
        scale = np.ascontiguousarray(grad_scale, dtype=np.float64)
        A = np.empty((N, T, 2 * lmax + 1))
        B = np.empty((N, T, 2 * lmax + 1))
        ao = np.empty((N, T))
        bo = np.empty((N, T))
    else:
        g = np.empty((N, 0, 0), dtype=x.dtype)
        scale = np.zeros(N)
        A = B = np.empty((N, 0, 0))
        ao = bo = np.empty((N, 0))
    with _threads.serial():
        kern[0](x, labels, logit_lengths, label_lengths, blank, K, mx, sm, lp)
        kern[1](labels, logit_lengths, label_lengths, lp, scale, do_grad, A, ao, B, bo, logz)
        if do_grad:
            tables = (A, ao, B, bo, logz)
            kern[2](x, labels, logit_lengths, label_lengths, blank, K, mx, sm, *tables, scale, g)
    np.negative(logz, out=nll)
    return nll, (g if do_grad else None)
