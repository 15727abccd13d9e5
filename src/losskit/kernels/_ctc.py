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

Two passes, none with a T x C x S temporary:

1. ``_frames`` (parallel over examples and frame ranges): each frame's
   logits are read once (max and sum of exponentials) and the probabilities
   that the lattice needs are stored, float64: for a short row, of at most
   L + 1 classes, all its exponentials, its softmax, which the recursions
   read through an index (``_table_index``) and the gradient row again; for a
   longer one ``row_max_sumexp``, blocked, then the blank's and the labels'.
2. ``_lattice`` (parallel over examples), per example ``_example``: the alpha
   recursion, and with a gradient the beta recursion from the last frame,
   each frame's gradient row written as soon as its beta is known, once:
   scale times the softmax (kept, for a short row; else from the logits, read
   a second time) minus the posterior of the states, summed per class.

With at least two examples per thread, ``_fused`` runs both passes of each
example in one parallel region instead (one synchronisation per call, and an
example's tables stay in cache between its passes); smaller batches take the
two passes, so that the first spreads the frames over the threads. The
scratch (the lattice's probabilities, N T (L + 1) float64, and with a gradient
one example's tables per thread of the parallel region: the alpha table, T S',
less past ``CHECKPOINT_BYTES``, and a short row's emissions per state) is kept
per calling thread between calls up to ``SCRATCH_KEEP_BYTES``.

The recursions run in plain float64, each frame's alpha (and beta) divided
by its sum (the log of the sums accumulated, as m 2^k), the posterior of a
state alpha beta over the frame's sum of alpha beta: two multiplications and
two additions per state, no exp or log. They are tilted: alpha(s) lam^s and
beta(s) lam^-s (``tilt``), which leaves alpha beta as it is but keeps both
tables' mass on the paths that end in time; untilted, alpha runs ahead of
them (0.8 states a frame with uninformative logits) and beta lags behind, and
at 4000 frames and 400 labels their overlap fell to 2^-1674 (tilted 2^-90;
at 1000 frames and 200 labels 2^-312 against 2^-21). Float64 covers 2^-1022
below a frame's largest state; where a state that a path reaches falls below
that, the error that underflow can cause is bounded by the overlaps of alpha
and beta (see ``TINY`` below), and where the bound is not below 2^-79 the
loss and the gradient come from an extended range: a value kept as m 2^k with
m in [1, 2) and k an integer held in a float64, so that a product adds exponents and a sum scales
its terms by 2^(k_i - k_max) (bit operations), with no underflow however long
the sequence or large the logits (a term 2^-1022 below the largest of its sum
is dropped, which is below the sum's own rounding). ``last_paths`` says which
ran. At 200 x 32 x 32 with 50 labels the scaled recursions took the forward
plus backward pass from 5.6 to 2.1 ms (one thread), and keeping the short
rows' softmax, summing the posteriors per class and scaling alpha where the
next frame reads it took it on to 1.8, and alpha computed in its table, the
short rows' emissions kept for beta, their max in four chains and one
example's tables per thread to 1.5 (from 1.9 on that round's machine: these
figures come from different machines, each step measured against the one
before on one; another box runs the current code in 2.0); the tilt took the
benchmark's T = 4000 (4 x 1000 classes, 400 labels) from 175 to 82 ms, which
had needed the extended range for both, and 1000 x 8 x 5000 from 71 to 61 ms
(the loss had needed it). The lattice's probabilities are stored per label
(L + 1 a frame, not 2L + 1): at T = 4000 the table's traffic was a fifth of
the time. The log-space version with vectorised float64 exp and log
polynomials (three exponentials and a log per state) was exact too and
2.4-2.7x slower than the extended range.

Accuracy: everything after the logits is float64 whatever their dtype, so a
float32 gradient is the float64 one rounded (its softmax term the float32
``vexp``, within 2 ulp). A first version that kept the lattice's
log-probabilities and tables in float32 for float32 logits was measured 1e-3
off in the gradient at logits of +-1e4 (lp of magnitude 2e4 rounds at 2e-3).
Checked against a float64 brute-force enumeration, a float64 NumPy
forward-backward and PyTorch in ``tests/test_kernels_ctc.py``.

References
----------
A. Graves, S. Fernandez, F. Gomez, J. Schmidhuber, "Connectionist temporal
classification: labelling unsegmented sequence data with recurrent neural
networks", ICML 2006.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from llvmlite import ir
from numba import get_thread_id, njit, prange, types
from numba.extending import intrinsic

from . import _threads
from ._primitives import _exp32_ir, maxnum, sub_add
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


# --------------------------------------------------------------------------- extended range

# A lattice value v > 0 is kept as v = m 2^k, m in [1, 2) and k an integer held in a
# float64; v = 0 (a state no path reaches) as m = 0, k = DEAD. Sums align the
# exponents (a term 2^-1022 below the largest of its sum is dropped: that is below
# the sum's own rounding), products add them; no exp or log per state.
DEAD = -1e300
_LN2 = math.log(2.0)
_MANT = 0x000FFFFFFFFFFFFF
_NORMAL_MIN = 2.0**-1022
_ONE_BITS = 0x3FF0000000000000


@intrinsic
def pow2(typingctx: Any, d: Any) -> Any:
    """2^d for an integer-valued float64 d <= 0; 0 for d <= -1023 (and for d = DEAD)."""
    if d == types.float64:

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            f64 = ir.DoubleType()
            i64 = ir.IntType(64)
            lo = ir.Constant(f64, -1023.0)
            dd = builder.select(builder.fcmp_ordered("<", args[0], lo), lo, args[0])
            i = builder.fptosi(builder.fadd(dd, ir.Constant(f64, 1023.0)), i64)
            return builder.bitcast(builder.shl(i, ir.Constant(i64, 52)), f64)

        return types.float64(types.float64), codegen
    return None


@intrinsic
def mantissa(typingctx: Any, p: Any) -> Any:
    """p / 2^floor(log2 p), in [1, 2), for a normal positive float64 p."""
    if p == types.float64:

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            f64 = ir.DoubleType()
            i64 = ir.IntType(64)
            bits = builder.and_(builder.bitcast(args[0], i64), ir.Constant(i64, _MANT))
            return builder.bitcast(builder.or_(bits, ir.Constant(i64, _ONE_BITS)), f64)

        return types.float64(types.float64), codegen
    return None


@intrinsic
def exponent(typingctx: Any, p: Any) -> Any:
    """floor(log2 p) as a float64, for a normal positive float64 p (-1023 for 0)."""
    if p == types.float64:

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            f64 = ir.DoubleType()
            i64 = ir.IntType(64)
            e = builder.lshr(builder.bitcast(args[0], i64), ir.Constant(i64, 52))
            e = builder.sub(builder.and_(e, ir.Constant(i64, 0x7FF)), ir.Constant(i64, 1023))
            return builder.sitofp(e, f64)

        return types.float64(types.float64), codegen
    return None


# ------------------------------------------------------------ extended range: the recursions


@njit(fastmath=FASTMATH, cache=True)
def _expand(emt, ekt, L, m, k):
    """The extended states' emission: the blank's at even s, label (s - 1) / 2's at odd s."""
    bm = emt[0]
    bk = ekt[0]
    for j in range(L):
        m[2 * j] = bm
        k[2 * j] = bk
        m[2 * j + 1] = emt[j + 1]
        k[2 * j + 1] = ekt[j + 1]
    m[2 * L] = bm
    k[2 * L] = bk


@njit(fastmath=FASTMATH, cache=True)
def _skips(lab, L, pad):
    """0 where state s may be entered from s - 2 (a label unlike the one before it), else
    DEAD; ``pad`` DEAD entries after the S' states."""
    Sp = 2 * L + 1
    skip = np.full(Sp + pad, DEAD)
    for j in range(1, L):
        if lab[j] != lab[j - 1]:
            skip[2 * j + 1] = 0.0
    return skip


@njit(fastmath=FASTMATH, cache=True)
def _step(am, ak, bm, bk, cm, ck, skip, wm, wk, outm, outk, Sp):
    """out[s] = w[s] (a[s] + b[s] + c[s] [skip s]) in the extended range, for s < Sp.

    a, b, c are views of one padded state vector at three offsets; w the emission.
    """
    for s in range(Sp):
        ka = ak[s]
        kb = bk[s]
        ok = skip[s] == 0.0
        kc = ck[s] if ok else DEAD
        mc = cm[s] if ok else 0.0
        km = maxnum(ka, maxnum(kb, kc))
        p = (am[s] * pow2(ka - km) + bm[s] * pow2(kb - km) + mc * pow2(kc - km)) * wm[s]
        live = p > 0.0
        outm[s] = mantissa(p) if live else 0.0
        outk[s] = km + wk[s] + exponent(p) if live else DEAD


@njit(fastmath=FASTMATH, cache=True)
def _emit(vm, vk, wm, wk, outm, outk, Sp):
    """out[s] = v[s] w[s] in the extended range."""
    for s in range(Sp):
        p = vm[s] * wm[s]
        live = p > 0.0
        outm[s] = mantissa(p) if live else 0.0
        outk[s] = vk[s] + wk[s] + exponent(p) if live else DEAD


@njit(fastmath=FASTMATH, cache=True)
def _log_of(m, k, dst, Sp):
    """dst[s] = log(m[s] 2^k[s]) (-inf for 0)."""
    for s in range(Sp):
        dst[s] = k[s] * _LN2 + vlog(m[s])


@njit(fastmath=FASTMATH, cache=True)
def _log_sum2(m1, k1, m2, k2):
    """log(m1 2^k1 + m2 2^k2), -inf for 0."""
    km = max(k1, k2)
    p = m1 * pow2(k1 - km) + m2 * pow2(k2 - km)
    if not p > 0.0:
        return -np.inf if p == 0.0 else p
    return km * _LN2 + math.log(p)


@njit(fastmath=FASTMATH, cache=True)
def _alpha(wn, idx, xn, lab, Tn, L, blank, mxn, smn, store, An):
    """Forward recursion of one example; returns log p(labels). With ``store``, log alpha
    into An (Tn, S')."""
    Sp = 2 * L + 1
    skip = _skips(lab, L, 0)
    pm = np.zeros(Sp + 2)  # pm[s + 2]: state s of the previous frame; two dead states first
    pk = np.full(Sp + 2, DEAD)
    wm = np.empty(Sp)
    wk = np.empty(Sp)
    cm = np.empty(Sp)
    ck = np.empty(Sp)
    emt = np.empty(L + 1)
    ekt = np.empty(L + 1)
    for t in range(Tn):
        _ext_row(wn[t], idx, xn[t], lab, L, blank, mxn[t], smn[t], emt, ekt)
        if emt[0] != emt[0]:
            return np.nan  # a NaN (or +inf) logit in the frame
        _expand(emt, ekt, L, wm, wk)
        if t == 0:
            for s in range(Sp):
                cm[s] = 0.0
                ck[s] = DEAD
            cm[0] = wm[0]
            ck[0] = wk[0]
            if Sp > 1:
                cm[1] = wm[1]
                ck[1] = wk[1]
        else:
            _step(pm[2:], pk[2:], pm[1:], pk[1:], pm[:], pk[:], skip, wm, wk, cm, ck, Sp)
        if store:
            _log_of(cm, ck, An[t], Sp)
        pm[2:] = cm
        pk[2:] = ck
    if Sp == 1:
        return _log_sum2(cm[0], ck[0], 0.0, DEAD)
    return _log_sum2(cm[Sp - 1], ck[Sp - 1], cm[Sp - 2], ck[Sp - 2])


# ------------------------------------------------------------ extended range: backward, rows


@njit(fastmath=FASTMATH, cache=True)
def _write_row(row, pt, idx, occ, grow, m, s, sc, lab, blank, post, pf, L):
    """grow[c] = sc softmax[c] - pf (posterior of the states with l'_s = c).

    A short row (a per-class table, ``idx`` not None) takes its softmax from ``pt``,
    its row of ``_frame_range``'s table, and sums the posteriors per class in float64 first
    (``occ``, C): one rounding, and no float32 read-modify-write per label (a fifth of
    the backward pass at 32 classes). A longer one computes exp(x[c] - m) / s and
    subtracts the L + 1 posteriors from its entries.
    """
    # d nll / d x[t, c] = softmax[t, c] - sum_{s: l'_s = c} e^(alpha + beta - log p)
    C = row.shape[0]
    blank_occ = 0.0
    if idx is not None:
        for c in range(C):
            occ[c] = 0.0
        for j in range(L):
            blank_occ += post[2 * j]
            occ[lab[j]] += post[2 * j + 1]
        occ[blank] += blank_occ + post[2 * L]
        for c in range(C):
            grow[c] = row.dtype.type(pt[c] * sc - occ[c] * pf)
        return
    shift = row.dtype.type(m) if m > -np.inf else row.dtype.type(0.0)
    f = row.dtype.type(sc / s)
    for c in range(C):
        grow[c] = vexp(row[c] - shift) * f
    for j in range(L):
        blank_occ += post[2 * j]
        grow[lab[j]] -= post[2 * j + 1] * pf
    grow[blank] -= (blank_occ + post[2 * L]) * pf


@njit(fastmath=FASTMATH, cache=True)
def _backward_one(xn, lab, Tn, L, blank, mxn, smn, wn, idx, An, lz, sc, gn):
    """One example: the backward recursion from the last frame, each frame's gradient
    row written as soon as its beta is known, gn[t] = sc (softmax(x[t]) - posterior
    occupation of each class); 0 past Tn, where no alignment fits, and where sc is 0."""
    T, C = xn.shape
    zero = xn.dtype.type(0.0)
    Sp = 2 * L + 1
    live = sc != 0.0 and lz != -np.inf
    for t in range(Tn if live else 0, T):
        grow = gn[t]
        for c in range(C):
            grow[c] = zero
    if not live:
        return
    skip = _skips(lab, L, 2)
    bm = np.zeros(Sp)  # beta[t] (the frames after t), extended range
    bk = np.full(Sp, DEAD)
    xm = np.zeros(Sp + 2)  # emission of t + 1 times beta[t + 1]; two dead states after
    xk = np.full(Sp + 2, DEAD)
    wm = np.empty(Sp)
    wk = np.empty(Sp)
    emt = np.empty(L + 1)
    ekt = np.empty(L + 1)
    ones = np.ones(Sp)  # beta[t] leaves frame t's emission out: a sum, times 1
    zeros = np.zeros(Sp)
    post = np.empty(Sp)
    occ = np.empty(C)
    for t in range(Tn - 1, -1, -1):
        if t == Tn - 1:
            bm[Sp - 1] = 1.0
            bk[Sp - 1] = 0.0
            if Sp > 1:
                bm[Sp - 2] = 1.0
                bk[Sp - 2] = 0.0
        else:
            _ext_row(wn[t + 1], idx, xn[t + 1], lab, L, blank, mxn[t + 1], smn[t + 1], emt, ekt)
            _expand(emt, ekt, L, wm, wk)
            _emit(bm, bk, wm, wk, xm, xk, Sp)
            # beta[t, s] = x[s] + x[s + 1] + x[s + 2] [skip s + 2]
            _step(xm[:], xk[:], xm[1:], xk[1:], xm[2:], xk[2:], skip[2:], ones, zeros, bm, bk, Sp)
        At = An[t]
        for s in range(Sp):
            # the posterior of state s: alpha beta / p, scaled; at most 1 (its exponent
            # cancels to within rounding, which at logits of 1e30 is 1e14: kept finite)
            post[s] = sc * bm[s] * vexp(min(At[s] + bk[s] * _LN2 - lz, 0.0))
        _write_row(xn[t], wn[t], idx, occ, gn[t], mxn[t], smn[t], sc, lab, blank, post, 1.0, L)


# --------------------------------------------------------------------------- pass 1: frames


@njit(fastmath=FASTMATH, cache=True)
def _per_class(C, L):
    """Whether a row of C classes is short for L labels (C <= L + 1): its table row holds
    every class's probability (fewer exponentials than one per label and the blank),
    read through ``_table_index``."""
    return C <= L + 1


@njit(fastmath=FASTMATH, cache=True)
def _short_max(row, C):
    """max(row[:C]) for C >= 1 in four independent running maxima: one chain of C
    dependent compares (LLVM keeps this loop scalar, with or without maxnum) held the
    short rows' pass at its latency. A NaN may or may not come out: the exponentials
    that follow make the row's sum NaN either way."""
    m0 = row[0]
    m1 = m0
    m2 = m0
    m3 = m0
    c = 1
    while c + 4 <= C:
        m0 = max(m0, row[c])
        m1 = max(m1, row[c + 1])
        m2 = max(m2, row[c + 2])
        m3 = max(m3, row[c + 3])
        c += 4
    for k in range(c, C):
        m0 = max(m0, row[k])
    return max(max(m0, m1), max(m2, m3))


@njit(fastmath=FASTMATH, cache=True)
def _frame_range(xn, lab, L, blank, t0, t1, mxn, smn, wn):
    """Frames t0 <= t < t1 of one example: mxn[t], smn[t] = max and sum of exponentials;
    the probabilities e^(x - m) / s in float64 (NaN for a NaN or +inf logit; 0 or
    subnormal below e^-708) that the lattice reads (``_table_index``): a short row's
    (C <= L + 1) softmax, which its gradient row reads again, else the blank's (wn[t, 0])
    and each label's (wn[t, j + 1]). Stored per class or label, not per extended state:
    the table is read by both recursions, and at long sequences its traffic was a fifth
    of the time."""
    C = xn.shape[1]
    by_class = _per_class(C, L)
    e = np.empty(L + 1)
    for t in range(t0, t1):
        row = xn[t]
        wt = wn[t]
        if by_class:  # a short row: its max, then its exponentials in float64 and their sum
            m = np.float64(_short_max(row, C))
            shift = m if m > -np.inf else 0.0  # an all -inf row: exp(-inf) = 0, s = 0
            s = 0.0
            for c in range(C):
                v = vexp(np.float64(row[c]) - shift)
                wt[c] = v
                s += v
        else:
            m, s = row_max_sumexp(row)
        mxn[t] = m
        smn[t] = s
        inv = 1.0 / s if s > 0.0 else np.nan  # (NaN, or an all -inf row: NaN as lp)
        if by_class:
            for c in range(C):
                wt[c] *= inv
        else:
            e[0] = np.float64(row[blank])
            for j in range(L):
                e[j + 1] = np.float64(row[lab[j]])
            for j in range(L + 1):
                wt[j] = vexp(e[j] - m) * inv


@njit(fastmath=FASTMATH, cache=True)
def _spread(wt, idx, L, we):
    """we[s] = the probability of extended state s: the blank's at even s, label
    (s - 1) / 2's at odd s: wt[idx[j]] for j = 0, (s + 1) / 2 (``_table_index``), or
    wt[j] where ``idx`` is None (a per-label table; numba compiles each case apart)."""
    if idx is None:
        b = wt[0]
        for j in range(L):
            we[2 * j] = b
            we[2 * j + 1] = wt[j + 1]
    else:
        b = wt[idx[0]]
        for j in range(L):
            we[2 * j] = b
            we[2 * j + 1] = wt[idx[j + 1]]
    we[2 * L] = b


@njit(fastmath=FASTMATH, cache=True)
def _keeps(idx, En):
    """Whether alpha leaves its emissions per state in En for beta: a short row's
    (``_spread`` gathers them through ``idx``: keeping them took 2-4% off 200 x 32 x 32,
    where a per-label table's copy cost more to keep than to redo), where En has room."""
    if idx is None:
        return False
    return En.shape[0] > 0


@njit(fastmath=FASTMATH, cache=True)
def _table_index(lab, L, blank):
    """Where a row of ``_frame_range``'s table holds the blank's probability (j = 0) and
    label j's (j >= 1), idx[j], for a short row (C <= L + 1), whose table row is per
    class: the exponentials and the softmax are the row's own, which the gradient
    row reads again (gathering them per label cost as much as the recursions' reads
    through this index). A longer row's table is per label, read without an index
    (``idx`` None: reading the identity through one cost 8% at T = 4000)."""
    idx = np.empty(L + 1, np.int64)
    idx[0] = blank
    for j in range(L):
        idx[j + 1] = lab[j]
    return idx


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _frames(x, labels, logit_lengths, label_lengths, blank, K, mx, sm, w):
    """``_frame_range`` of every example, its frames split into K ranges (parallel)."""
    N = x.shape[0]
    for task in prange(N * K):
        n = task // K
        k = task % K
        Tn = logit_lengths[n]
        L = label_lengths[n]
        t0 = k * Tn // K
        t1 = (k + 1) * Tn // K
        _frame_range(x[n], labels[n], L, blank, t0, t1, mx[n], sm[n], w[n])


@njit(fastmath=FASTMATH, cache=True)
def _entry(wt, idx, j):
    """wt[idx[j]], or wt[j] where ``idx`` is None (see ``_spread``)."""
    if idx is None:
        return wt[j]
    return wt[idx[j]]


@njit(fastmath=FASTMATH, cache=True)
def _ext_row(wt, idx, row, lab, L, blank, m, s, emt, ekt):
    """One frame's lattice probabilities as m 2^k (m in [1, 2), or 0 with DEAD; NaN for
    a NaN or +inf logit) into emt, ekt (L + 1, blank first): the bits of a normal
    float64 probability in ``wt`` (at ``idx``), else (below 2^-1022) from
    lp = (x - m) - log s in float64."""
    normal = 0.0
    for j in range(L + 1):
        v = _entry(wt, idx, j)  # (the blank's at j = 0, label j - 1's after)
        emt[j] = mantissa(v)
        ekt[j] = exponent(v)
        normal += 1.0 if v >= _NORMAL_MIN else 0.0
    if normal == L + 1:
        return
    for j in range(L + 1):
        v = _entry(wt, idx, j)
        if v >= _NORMAL_MIN:
            continue
        if v != v:  # NaN stays NaN
            emt[j] = v
            ekt[j] = 0.0
            continue
        # lp = (x - m) - log(s), in that order: m + log(s) would round log(s) at the
        # scale of m (all of it at logits of 1e30)
        lp = sub_add(np.float64(row[lab[j - 1] if j > 0 else blank]), m, -math.log(s))
        # lp = k ln2 + r, k = floor(lp / ln2): e^lp = e^r 2^k, e^r in [1, 2). The clamp
        # only acts where lp is so large (|lp| > 1e15) that k ln2 rounds.
        kk = np.floor(lp * 1.4426950408889634)
        live = lp > -np.inf
        kk = kk if live else 0.0
        r = min(max(lp - kk * _LN2, 0.0), _LN2)
        emt[j] = vexp(r) if live else 0.0
        ekt[j] = kk if live else DEAD


@njit(fastmath=FASTMATH, cache=True)
def _lattice_masks(lab, L):
    """(skip, first, last) of the extended states: skip[s] = 1.0 where state s may be
    entered from s - 2 (a label unlike the one before it), else 0.0 (two 0.0 entries
    after the S' states); first[s] the first frame at which state s can be reached from
    the start, last[s] the number of frames that state s needs to reach an end state
    (both as float64, for vector compares)."""
    Sp = 2 * L + 1
    skip = np.zeros(Sp + 2)
    for j in range(1, L):
        if lab[j] != lab[j - 1]:
            skip[2 * j + 1] = 1.0
    first = np.empty(Sp)
    first[0] = 0.0
    for s in range(1, Sp):
        f = first[s - 1]
        if s == 1:
            f = -1.0
        elif skip[s] != 0.0:
            f = min(f, first[s - 2])
        first[s] = f + 1.0
    last = np.empty(Sp)
    last[Sp - 1] = 0.0
    for s in range(Sp - 2, -1, -1):
        f = last[s + 1]
        if s == Sp - 2:
            f = -1.0
        elif skip[s + 2] != 0.0:
            f = min(f, last[s + 2])
        last[s] = f + 1.0
    return skip, first, last


# The scaled recursions keep each frame's alpha (and beta) summed to 1 in plain float64.
# A state that a path reaches and whose scaled value falls below TINY (2^-1000) may have
# lost digits to underflow; an example where none does is exact (every product and sum is
# a normal float64, rounded as in the extended range). Where some do, what underflow can
# lose is bounded: each state's loss is below 5 2^-1022 of the scaled previous frame (five
# roundings: two tilt products, two sums, the emission), so below 5 2^-1022 / total_t of
# its own frame (total_t its frame's sum before scaling), and the paths through state s
# at frame t carry alpha_t(s) beta_t(s) <= A_t B_t of the p = A_t B_t overlap_t, A_t and
# B_t the frame's sums and overlap_t = sum_s alpha beta with both scaled to sum 1 (the
# tilt lam^s of alpha and lam^-s of beta cancel in alpha beta). The loss and every
# posterior are then off by at most 10 S' T 2^-1022 / min_t (overlap_t min(1, total_t,
# btotal_t)) (relative, resp. absolute): with that minimum >= MIN_OVERLAP (2^-899) and
# S' T <= MAX_STATES (2^40), below 2^-79: the loss and the gradient rows are then the
# scaled recursions'. Otherwise the extended-range recursions run instead.
#
# The tilt: without it alpha's mass runs ahead of the paths that end in time (about 0.8
# states a frame against the 0.2 of 400 labels in 4000 frames) and beta's lags behind:
# their overlaps fell to 2^-1674 at that shape, and every long sequence took the
# extended range. With the tilt (``tilt``) both stay on the paths: the overlaps at that
# shape stay above 2^-91 and the scaled recursions hold.
TINY = 2.0**-1000
MIN_OVERLAP = 2.0**-899
MAX_STATES = 2.0**40


@njit(fastmath=FASTMATH, cache=True)
def tilt(Tn, Sp):
    """The factor lam of the tilted recursions for Tn frames and Sp extended states.

    With probabilities alike for every class (a network early in training), a step
    weighs 1 (stay), lam (to the next state) and lam^2 (a skip, from a label state), and
    alpha's mass moves 2 lam (1 + lam) / (2 + 2 lam + lam^2) states per frame (a renewal
    argument: from a label state two states are gained either way, after 1 / leave
    frames there and, through the blank, 1 / lam more). The posterior moves
    r = (Sp - 1) / (Tn - 1) per frame; lam solves (2 - r) lam^2 + (2 - 2r) lam - 2r = 0
    so that alpha's mass (and beta's) stays where the paths are. At r >= 0.8 (lam = 1:
    no tilt) the label leaves few alignments and none is needed.
    """
    if Sp < 2 or Tn < 2:
        return 1.0
    r = (Sp - 1.0) / (Tn - 1.0)
    if r >= 0.8:
        return 1.0
    a = 2.0 - r
    b = 2.0 - 2.0 * r
    return max((math.sqrt(b * b + 8.0 * r * a) - b) / (2.0 * a), 1e-150)


#: Where the threads' alpha tables (one example's each, T S' float64) would exceed
#: CHECKPOINT_BYTES together, alpha is stored every CHECKPOINT frames only, and the
#: backward pass recomputes the frames between from there, a block at a time in a table
#: that stays in cache. While the table held all N examples (N T S'), storing every
#: frame cost more than recomputing at 4000 x 4 frames and 400 labels (fwd+bwd 80 vs 77
#: ms, one thread; 100 MB); one example's table per thread, written over while in
#: cache, turned that round (80 vs 86 ms; 1000 x 8 x 5000 with 200 labels and 500 x 16 x
#: 1000 with 100 equal or faster too; on a later box 89.5 vs 96.4 ms, one thread). At 200
#: x 32 frames and 50 labels recomputing took fwd+bwd from 2.2 to 2.85 ms.
CHECKPOINT = 16
CHECKPOINT_BYTES = 64 << 20


@njit(fastmath=FASTMATH, cache=True)
def _alpha_scaled(wn, idx, lab, Tn, L, store, An, Zn, En, give_up, lam, every):
    """Forward recursion of one example in plain float64, tilted by ``lam`` and each
    frame scaled to sum 1.

    Returns (log p(labels), exact); with ``store``, each frame's sum before scaling
    into Zn (Tn,) and the alpha of every ``every``-th frame before its scaling into
    An (ceil(Tn / every), S' + 2), state s at An[t // every, s + 2] after two 0
    states; where En has rows (Tn, S'), each frame's emission per state (``_spread``)
    there, which beta reads again. ``exact`` is False where a reachable state's scaled
    value fell below ``TINY``: the loss is then the scaled one only where
    ``_beta_scaled``'s bound holds; with ``give_up`` the recursion stops there.
    """
    Sp = 2 * L + 1
    skip, first, _ = _lattice_masks(lab, L)
    lam2 = lam * lam
    for s in range(Sp):
        skip[s] *= lam2  # the tilted weight of a skip into s
    # prev[s + 2]: state s of the previous frame before its scaling by pinv (1 / its sum),
    # two 0 states first. The scaling is done where the next frame reads it: a pass over
    # the states fewer (alpha alone 0.43 -> 0.37 ms at 200 x 32 frames and 50 labels),
    # the same operations and values as scaling first. Where every frame is kept
    # (``direct``), frame t is computed in its row of the table, An[t], and read from
    # there by the next: no copy (beta reads the unscaled values, its posteriors are
    # ratios).
    direct = store and every == 1
    keep = _keeps(idx, En)
    prev = np.zeros(Sp + 2)
    cur = np.zeros(Sp + 2)
    wbuf = np.empty(Sp)
    pm = 1.0  # the product of the frames' sums, pm 2^pk
    pk = 0.0
    bad = 0.0
    pinv = 1.0
    for t in range(Tn):
        wt = En[t] if keep else wbuf
        _spread(wn[t], idx, L, wt)
        if direct:
            cur = An[t]
            cur[0] = 0.0
            cur[1] = 0.0
        total = 0.0
        tp = np.float64(t - 1)
        if t == 0:
            if direct:  # (else cur is still the zeros it was made with)
                for s in range(Sp):
                    cur[s + 2] = 0.0
            cur[2] = wt[0]
            if Sp > 1:
                cur[3] = wt[1] * lam  # tilted: alpha(s) lam^s
            total = cur[2] + cur[3] if Sp > 1 else cur[2]
        else:  # (repeated in _beta_scaled's recomputation: a shared function ran 40% slower)
            for s in range(Sp):
                q = prev[s + 2] * pinv  # frame t - 1's scaled state s
                v = wt[s] * (q + lam * (prev[s + 1] * pinv) + skip[s] * (prev[s] * pinv))
                cur[s + 2] = v
                total += v
                # a reachable state of frame t - 1 below TINY (a bitwise & keeps it a vector loop)
                bad += 1.0 if ((q < TINY) & (first[s] <= tp)) else 0.0
        inv = 1.0 / total if total > 0.0 else 0.0  # (0: no state reached, all stay 0)
        if store:
            Zn[t] = total
            if not direct and t % every == 0:
                At = An[t // every]
                for s in range(Sp + 2):
                    At[s] = cur[s]
        if give_up and bad != 0.0:
            return 0.0, False
        if total > 0.0:
            pm *= total
            pk += exponent(pm)
            pm = mantissa(pm)
        elif total != total:
            pm = total  # NaN: stays to the end
        prev, cur = cur, prev
        pinv = inv
    tl = np.float64(Tn - 1)
    for s in range(Sp):  # the last frame's check
        bad += 1.0 if (prev[s + 2] * pinv < TINY and first[s] <= tl) else 0.0
    # untilted: alpha(S' - 1) + alpha(S' - 2) = lam^-(S' - 1) (tilted(S' - 1) + lam tilted(S' - 2))
    end = prev[2] * pinv if Sp == 1 else prev[Sp + 1] * pinv + lam * (prev[Sp] * pinv)
    if pm != pm or end != end:
        return np.nan, True
    if not end > 0.0:  # no path ends in time (or the end states underflowed: not exact)
        return -np.inf, bad == 0.0
    untilt = 0.0 if lam == 1.0 else (Sp - 1) * math.log(lam)
    return pk * _LN2 + math.log(pm * end) - untilt, bad == 0.0


@njit(fastmath=FASTMATH, cache=True)
def _zero_rows(gn, t0):
    """gn[t] = 0 for t >= t0."""
    zero = gn.dtype.type(0.0)
    for t in range(t0, gn.shape[0]):
        grow = gn[t]
        for c in range(grow.shape[0]):
            grow[c] = zero


@njit(fastmath=FASTMATH, cache=True)
def _fill_rows(gn, Tn, value):
    """gn[t] = value for t < Tn."""
    v = gn.dtype.type(value)
    for t in range(min(Tn, gn.shape[0])):
        grow = gn[t]
        for c in range(grow.shape[0]):
            grow[c] = v


@njit(fastmath=FASTMATH, cache=True)
def _beta_scaled(xn, lab, Tn, L, blank, mxn, smn, wn, idx, An, Zn, En, sc, gn, write, lam, every):
    """The backward recursion of one example in plain float64 (each frame scaled by the
    sum of the one after, tilted by 1 / ``lam``: beta(s) lam^-s, so that alpha beta is
    untilted), given the alpha ``An`` (before each frame's scaling) and the frame sums
    ``Zn`` of ``_alpha_scaled`` (each frame's, or every ``every``-th: the frames between
    recomputed from there by the same operations) and, where En has rows, the emissions
    per state that alpha spread there; with ``write``, the gradient rows
    gn[t] = sc (softmax(x[t]) - posterior occupation), the posterior of state s
    alpha beta / sum_s alpha beta.
    Returns whether the bound above holds (every overlap_t min(1, total_t, btotal_t) >=
    ``MIN_OVERLAP``, S' T <= ``MAX_STATES``): otherwise the rows written are not to be
    used."""
    Sp = 2 * L + 1
    if Sp * np.float64(Tn) > MAX_STATES:
        return False
    skip, _, _ = _lattice_masks(lab, L)
    lam2 = lam * lam
    for s in range(Sp + 2):
        skip[s] *= lam2
    beta = np.zeros(Sp)  # beta[t] (the frames after t), over the sum of beta[t + 1]
    xm = np.zeros(Sp + 2)  # emission of t + 1 times beta[t + 1], scaled; two 0 states after
    post = np.empty(Sp)
    occ = np.empty(xn.shape[1])
    wt = np.empty(Sp)  # a frame's emissions per state, spread here (En's rows stay alpha's)
    keep = _keeps(idx, En)
    # alpha's recomputation (skip[s], the tilted skip into s, serves it as it is), a block
    # of frames
    prev = np.zeros(Sp + 2)
    cur = np.empty(Sp)
    block = np.empty((every, Sp + 2))  # laid out as An's rows
    t0 = Tn
    ib = 1.0  # 1 / the sum of beta[t + 1]
    for t in range(Tn - 1, -1, -1):
        if every > 1 and t < t0:  # frames t0..t, from the checkpoint at t0
            t0 = t - t % every
            check = An[t0 // every]
            z0 = Zn[t0]
            inv = 1.0 / z0 if z0 > 0.0 else 0.0  # (as alpha's)
            for s in range(Sp):
                prev[s + 2] = check[s + 2] * inv
                block[0, s + 2] = check[s + 2]
            for u in range(t0 + 1, t + 1):  # (u > 0: alpha's recursion as it ran)
                _spread(wn[u], idx, L, wt)
                total = 0.0
                for s in range(Sp):
                    v = wt[s] * (prev[s + 2] + lam * prev[s + 1] + skip[s] * prev[s])
                    cur[s] = v
                    total += v
                inv = 1.0 / total if total > 0.0 else 0.0
                row_u = block[u - t0]
                for s in range(Sp):
                    v = cur[s]
                    row_u[s + 2] = v
                    prev[s + 2] = v * inv
        At = An[t] if every == 1 else block[t - t0]
        btotal = 1.0
        overlap = 0.0  # sum_s alpha beta, alpha to its sum Zn[t], beta to btotal
        if t == Tn - 1:
            beta[Sp - 1] = 1.0
            if Sp > 1:
                beta[Sp - 2] = lam  # lam^-(S' - 2) over lam^-(S' - 1)
            for s in range(Sp):
                p = At[s + 2] * beta[s]
                post[s] = p
                overlap += p
        else:
            if keep:
                we = En[t + 1]
            else:
                _spread(wn[t + 1], idx, L, wt)
                we = wt
            for s in range(Sp):
                xm[s] = we[s] * beta[s] * ib
            # beta[t, s] = x[s] + x[s + 1] + x[s + 2] [skip s + 2], tilted, and the
            # posterior numerator alpha beta in the same pass
            btotal = 0.0
            for s in range(Sp):
                v = xm[s] + lam * xm[s + 1] + skip[s + 2] * xm[s + 2]
                beta[s] = v
                btotal += v
                p = At[s + 2] * v
                post[s] = p
                overlap += p
            if not btotal > 0.0:
                return False
            ib = 1.0 / btotal
        z = Zn[t]  # (0 where alpha reached no state: no overlap, the bound fails)
        if not (z > 0.0 and (overlap / (btotal * z)) * min(1.0, z, btotal) >= MIN_OVERLAP):
            return False
        if write:
            pf = sc / overlap
            _write_row(xn[t], wn[t], idx, occ, gn[t], mxn[t], smn[t], sc, lab, blank, post, pf, L)
    return True


@njit(fastmath=FASTMATH, cache=True)
def _example(xn, lab, Tn, L, blank, mxn, smn, wn, do_grad, An, Zn, En, sc, gn, path, every):
    """``_example_in`` with the index of the example's table (``_table_index``) for
    short rows, None for a per-label table (numba compiles the two apart)."""
    args = (mxn, smn, wn)
    rest = (do_grad, An, Zn, En, sc, gn, path, every)
    if _per_class(xn.shape[1], L):
        idx = _table_index(lab, L, blank)
        return _example_in(xn, lab, Tn, L, blank, *args, idx, *rest)
    return _example_in(xn, lab, Tn, L, blank, *args, None, *rest)


@njit(fastmath=FASTMATH, cache=True)
def _example_in(xn, lab, Tn, L, blank, mxn, smn, wn, idx, do_grad, An, Zn, En, sc, gn, path, every):
    """log p(labels) of one example and, with ``do_grad``, its gradient rows: the scaled
    recursions, or the extended-range ones where those do not hold. The loss is the
    scaled one where no reachable state underflowed or the bound on underflow holds
    (checked the same way with or without a gradient, so that both calls give the same
    number), else the extended range's; the rows are the scaled ones where the bound
    holds. path[0] says which ran: 0 the scaled ones, 1 the extended range for both,
    2 the extended range for the rows only. ``every``: the frames between the alpha
    table's rows (An (ceil(T / every), S' + 2)); En (T, S') or (0, 0): where alpha
    leaves each frame's emissions per state for beta (``_alpha_scaled``)."""
    path[0] = 0.0
    rows = do_grad and sc != 0.0
    if do_grad:
        _zero_rows(gn, Tn if rows else 0)
    if Tn == 0:
        return 0.0 if L == 0 else -np.inf
    Sp = 2 * L + 1
    lam = tilt(Tn, Sp)
    lz, exact = _alpha_scaled(wn, idx, lab, Tn, L, rows, An, Zn, En, not rows, lam, every)
    if lz != lz:  # a NaN (or +inf) logit: the loss and the example's rows are NaN
        if rows:
            _fill_rows(gn, Tn, np.nan)
        return lz
    if exact and (not rows or lz == -np.inf):
        if rows:  # no alignment fits: a zero gradient (the caller decides what it is)
            _zero_rows(gn, 0)
        return lz
    if not rows:
        # A state underflowed and only the loss is asked for: the bound decides, from
        # the same recursions that a call with a gradient runs (tables of this example's
        # own; the rows are not written).
        An1 = np.empty(((Tn + every - 1) // every, Sp + 2))
        Zn1 = np.empty(Tn)
        En1 = np.empty((0, 0))
        lz, _ = _alpha_scaled(wn, idx, lab, Tn, L, True, An1, Zn1, En1, False, lam, every)
        holds = lz > -np.inf and _beta_scaled(
            xn, lab, Tn, L, blank, mxn, smn, wn, idx, An1, Zn1, En1, sc, gn, False, lam, every
        )
        if holds:
            return lz
        path[0] = 1.0
        return _alpha(wn, idx, xn, lab, Tn, L, blank, mxn, smn, False, An)
    beta_args = (mxn, smn, wn, idx, An, Zn, En, sc, gn, True, lam, every)
    if _beta_scaled(xn, lab, Tn, L, blank, *beta_args):
        return lz
    log_alpha = np.empty((Tn, Sp))  # (every frame's: the extended range is the rare path)
    lz_exact = _alpha(wn, idx, xn, lab, Tn, L, blank, mxn, smn, True, log_alpha)
    path[0] = 1.0 if not exact else 2.0
    _backward_one(xn, lab, Tn, L, blank, mxn, smn, wn, idx, log_alpha, lz_exact, sc, gn)
    return lz if exact else lz_exact


@njit(fastmath=FASTMATH, cache=True)
def _tables(A, Z, E):
    """This thread's set of A, Z, E (one set per thread of the parallel region: the
    alpha table, frame sums and emissions, or in ``_fused`` the frames' maxima, sums and
    probabilities): an example's tables live while it runs, and the next example on the
    thread writes over them while they are still in cache. (A thread id past the sets,
    which numba does not give, would get fresh ones.)"""
    k = get_thread_id()
    if k < A.shape[0]:
        return A[k], Z[k], E[k]
    return np.empty(A.shape[1:]), np.empty(Z.shape[1:]), np.empty(E.shape[1:])


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _lattice(
    x,
    labels,
    logit_lengths,
    label_lengths,
    blank,
    mx,
    sm,
    w,
    do_grad,
    A,
    Z,
    E,
    logz,
    scale,
    g,
    path,
    every,
):
    """``_example`` of every example after ``_frames`` (parallel over the examples)."""
    N = x.shape[0]
    for n in prange(N):
        tables = _tables(A, Z, E)
        args = (mx[n], sm[n], w[n], do_grad, *tables, scale[n], g[n], path[n : n + 1], every)
        logz[n] = _example(x[n], labels[n], logit_lengths[n], label_lengths[n], blank, *args)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _fused(
    x,
    labels,
    logit_lengths,
    label_lengths,
    blank,
    mx,
    sm,
    w,
    do_grad,
    A,
    Z,
    E,
    logz,
    scale,
    g,
    path,
    every,
):
    """Both passes of each example in one parallel region over the examples: for a
    batch of at least two examples per thread (one synchronisation instead of two, and
    an example's tables stay in cache between its passes). mx, sm, w hold one
    example's frames per thread, like A, Z, E (``_tables``)."""
    N = x.shape[0]
    for n in prange(N):
        Tn = logit_lengths[n]
        L = label_lengths[n]
        mxn, smn, wn = _tables(mx, sm, w)  # (one example's too, per thread)
        _frame_range(x[n], labels[n], L, blank, 0, Tn, mxn, smn, wn)
        tables = _tables(A, Z, E)
        args = (mxn, smn, wn, do_grad, *tables, scale[n], g[n], path[n : n + 1], every)
        logz[n] = _example(x[n], labels[n], Tn, L, blank, *args)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def _scale_rows(g, scale):
    """g[n] *= scale[n] for g (N, T, C), parallel over the N T rows."""
    N, T, C = g.shape
    for r in prange(N * T):
        n = r // T
        row = g[n, r - n * T]
        f = row.dtype.type(scale[n])
        for c in range(C):
            row[c] *= f


def scale_rows(g: np.ndarray, scale: np.ndarray) -> None:
    """``g[n] *= scale[n]`` in place, for a C-contiguous (N, T, C) float32/float64 ``g``.

    The torch backward's scaling of a saved gradient by the incoming one, in the
    kernels' threads rather than torch's (whose OpenMP workers, spinning after a
    parallel op, took a core from the next call's kernel on a 2-core machine).

    >>> g = np.ones((2, 1, 3), np.float32)
    >>> scale_rows(g, np.array([2.0, -1.0]))
    >>> g[:, 0]
    array([[ 2.,  2.,  2.],
           [-1., -1., -1.]], dtype=float32)
    """
    _threads.ensure()
    with _threads.serial():
        _scale_rows(g, np.ascontiguousarray(scale, dtype=np.float64))


# Scratch (the lattice's probabilities, N T (L + 1) float64, and with a gradient each
# kernel thread's tables for one example) is kept per thread between calls up to this
# size and reused: fresh memory costs page faults and zeroing, measured 30% of a call at
# 200 x 32 x 32. (The tables were N examples' until an example's were found to live
# only while it runs: one set per thread, written over while in cache, took 4-10% off.)
SCRATCH_KEEP_BYTES = 256 << 20
_scratch = threading.local()


def _scratch_f64(n: int) -> np.ndarray:
    """A float64 buffer of at least n elements: this thread's kept one, or a new one."""
    buf: np.ndarray | None = getattr(_scratch, "buf", None)
    if buf is None or buf.size < n:
        buf = np.empty(max(n, 1))
        _scratch.buf = buf if buf.nbytes <= SCRATCH_KEEP_BYTES else None
    return buf


def _carve(buf: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """C-contiguous float64 arrays of ``shapes`` laid one after the other in ``buf``."""
    out, at = [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(buf[at : at + size].reshape(shape))
        at += size
    return out


def last_paths() -> np.ndarray | None:
    """Which recursions the last call on this thread ran, per example (int8): 0 the
    scaled ones, 1 the extended range, 2 the extended range for the gradient only (the
    scaled loss was exact but the bound on its posteriors failed). For tests and
    benchmarks."""
    return getattr(_scratch, "paths", None)


def _chunks(n: int, threads: int) -> int:
    """Frame ranges per example for the frame-parallel pass: at least 4 tasks per thread."""
    return max(1, -(-4 * threads // max(n, 1)))


def _small(a: np.ndarray, dtype: Any) -> np.ndarray:
    """A C-contiguous writeable array (numba compiles read-only arrays separately)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()


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
    labels = _small(labels, np.int64)
    logit_lengths = _small(logit_lengths, np.int64)
    label_lengths = _small(label_lengths, np.int64)
    lmax = int(label_lengths.max()) if N else 0
    do_grad = grad_scale is not None
    _threads.ensure()
    threads = int(numba.get_num_threads())
    fused = N >= 2 * threads  # (then the frames' tables are per thread too: ``_fused``)
    rows = threads if fused else N
    shapes = [(rows, T), (rows, T), (rows, T, lmax + 1), (N,), (N,)]
    every = CHECKPOINT if 8 * threads * T * (2 * lmax + 1) > CHECKPOINT_BYTES else 1
    checks = -(-T // every)
    # one example's tables per thread (``_tables``): the alpha table, the frame sums and,
    # where the alpha table keeps every frame, short rows' emissions per state, spread by
    # alpha and read again by beta (``_keeps``)
    if do_grad:
        keep = every == 1 and _per_class(x.shape[2], lmax)
        ext = (T, 2 * lmax + 1) if keep else (0, 0)
        shapes += [(threads, checks, 2 * lmax + 3), (threads, T), (threads, *ext)]
    else:
        shapes += [(threads, 0, 0), (threads, 0), (threads, 0, 0)]
    need = sum(math.prod(sh) for sh in shapes)
    mx, sm, w, logz, path, A, Z, E = _carve(_scratch_f64(need), *shapes)
    if grad_scale is not None:
        g = grad_out if grad_out is not None else np.empty_like(x)
        scale = _small(grad_scale, np.float64)
    else:
        g = np.empty((N, 0, 0), dtype=x.dtype)
        scale = np.zeros(N)
    kern: tuple[Any, Any, Any] = (_frames, _lattice, _fused)
    sizes = (x, labels, logit_lengths, label_lengths, blank)
    with _threads.serial():
        if fused:
            kern[2](*sizes, mx, sm, w, do_grad, A, Z, E, logz, scale, g, path, every)
        else:
            kern[0](*sizes, _chunks(N, threads), mx, sm, w)
            kern[1](*sizes, mx, sm, w, do_grad, A, Z, E, logz, scale, g, path, every)
    _scratch.paths = path.astype(np.int8)
    nll = 0.0 - logz  # (not -logz: -0.0 for an empty label sequence in no frames)
    return nll, (g if do_grad else None)
