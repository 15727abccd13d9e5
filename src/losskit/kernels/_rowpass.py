"""One row of logits, read once: blocked online max and sum of exponentials.

A row is walked in L1-sized blocks of ``BLOCK`` elements. Each block takes
its max (a vector ``maxnum`` reduction), the running sum is rescaled by
``exp(m_old - m_new)`` when the max grows, then the block's ``exp(x - m)`` are
summed (vectorised ``fexp``). The block is in L1 for the second loop, so the
row is read from memory once. Block sums are float32-vector sums of at most
``BLOCK`` terms; the running sum is float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._primitives import fenced, fexp, half_gap, half_sub_add, maxnum, sub_add

BLOCK = 2048
# No nnan/ninf: -inf logits are legal input and must stay -inf.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


@njit(fastmath=FASTMATH, cache=True)
def row_max_sumexp(row):
    """(m, s) with m = max(row), s = sum(exp(row - m)), both float64."""
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    m = -np.inf
    s = 0.0
    for lo in range(0, C, BLOCK):
        # Loops index a block view from 0: numba then knows the index is not
        # negative, skips the wrap-around select, and LLVM sees unit stride.
        blk = row[lo : min(lo + BLOCK, C)]
        mb = blk[0]
        for c in range(1, blk.shape[0]):
            mb = maxnum(mb, blk[c])
        if mb > m:
            s *= math.exp(m - mb)  # m == -inf: s is 0 and stays 0
            m = float(mb)
        # A row that is -inf so far shifts by 0, so exp(-inf - 0) = 0, not NaN.
        shift = row.dtype.type(m) if m > -np.inf else zero
        sb = zero
        for c in range(blk.shape[0]):
            sb += fexp(blk[c] - shift)
        s += float(sb)
    return m, s


@njit(fastmath=FASTMATH, cache=True)
def inf_max_lse(row):
    """logsumexp of a row whose max is +inf: +inf, or NaN if the row holds a NaN.

    (The online pass gives NaN there either way: exp(inf - inf).)
    """
    for c in range(row.shape[0]):
        if row[c] != row[c]:
            return row[c]
    return np.inf


@njit(fastmath=FASTMATH, cache=True)
def shift_of(m, dtype_probe):
    """The row's max as the row dtype, 0 for an all -inf row (so x - shift is never NaN)."""
    zero = dtype_probe.dtype.type(0.0)
    return dtype_probe.dtype.type(m) if m > -np.inf else zero


@njit(fastmath=FASTMATH, cache=True)
def weighted_gap_sum(row, k, shift):
    """sum_c k[c] (shift - row[c]) as float64; a zero k[c] contributes 0 even at -inf.

    Block sums in the row's dtype, as the other passes. shift - x overflows
    for logits of opposite sign near the dtype's maximum (3e38 - (-3e38) in
    float32): a row whose sum is not finite is summed again by
    ``robust_gap_sum``, so the result is finite whenever its true value is.
    """
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    d = 0.0
    for lo in range(0, C, BLOCK):
        blk = row[lo : min(lo + BLOCK, C)]
        kblk = k[lo : min(lo + BLOCK, C)]
        db = zero
        for c in range(blk.shape[0]):
            kc = kblk[c]
            db += kc * (shift - blk[c]) if kc != zero else zero
        d += float(db)
    if not math.isfinite(d):  # checked once per row: a check per block costs 5% at C = 1000
        d = robust_gap_sum(row, k, 1.0, 0.0, shift)
    return d


@njit(fastmath=FASTMATH, cache=True)
def robust_gap_sum(row, v, a, b, shift):
    """sum_c t[c] (shift - row[c]) with t[c] = a v[c] + b, t[c] = 0 adding 0, in float64.

    Formed as sum_c (2 t[c]) (shift/2 - row[c]/2), as the portable path's
    ``NegLogSoftmax``: halving is exact and the half-gap never overflows, so the
    sum is finite whenever its true value is. Scalar (fenced): for the rare
    blocks or rows where the fast sum was not finite.
    """
    d = 0.0
    for c in range(row.shape[0]):
        t = a * float(v[c]) + b
        if t != 0.0:
            d += 2.0 * fenced(t * float(half_gap(shift, row[c])))
    return d


@njit(fastmath=FASTMATH, cache=True)
def robust_gap_row(x, i, k, shift):
    """``robust_gap_sum`` over row i of x (N, C) with weights k[c] (C,).

    Indexes x in place (no array view, so no reference counting): the rare
    call leaves the tile loop around it as fast as without it.
    """
    d = 0.0
    for c in range(x.shape[1]):
        w = float(k[c])
        if w != 0.0:
            d += 2.0 * fenced(w * float(half_gap(shift, x[i, c])))
    return d


@njit(fastmath=FASTMATH, cache=True)
def robust_gap_col2(t, tt, r, shift):
    """``robust_gap_row`` over column r of a transposed tile t (C, TILE), weights tt[c, r]."""
    d = 0.0
    for c in range(t.shape[0]):
        w = float(tt[c, r])
        if w != 0.0:
            d += 2.0 * fenced(w * float(half_gap(shift, t[c, r])))
    return d


@njit(fastmath=FASTMATH, cache=True)
def row_max_sumexp_store(row, out, shifts):
    """``row_max_sumexp`` that also writes exp(x - shift_b) into ``out`` (not aliasing row).

    shift_b, the running max when block b was read, goes to ``shifts[b]``;
    ``rescale_blocks`` later turns the stored values into exp(x - m) times a factor,
    so the row is exponentiated once.
    """
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    m = -np.inf
    s = 0.0
    b = 0
    for lo in range(0, C, BLOCK):
        hi = min(lo + BLOCK, C)
        blk = row[lo:hi]
        oblk = out[lo:hi]
        mb = blk[0]
        for c in range(1, blk.shape[0]):
            mb = maxnum(mb, blk[c])
        if mb > m:
            s *= math.exp(m - mb)
            m = float(mb)
        shift = row.dtype.type(m) if m > -np.inf else zero
        shifts[b] = float(shift)
        b += 1
        sb = zero
        for c in range(blk.shape[0]):
            ev = fexp(blk[c] - shift)
            oblk[c] = ev
            sb += ev
        s += float(sb)
    return m, s


@njit(fastmath=FASTMATH, cache=True)
def row_max_sumexp_inplace(row, shifts):
    """``row_max_sumexp_store`` with out = row (one array, so LLVM needs no alias check)."""
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    m = -np.inf
    s = 0.0
    b = 0
    for lo in range(0, C, BLOCK):
        blk = row[lo : min(lo + BLOCK, C)]
        mb = blk[0]
        for c in range(1, blk.shape[0]):
            mb = maxnum(mb, blk[c])
        if mb > m:
            s *= math.exp(m - mb)
            m = float(mb)
        shift = row.dtype.type(m) if m > -np.inf else zero
        shifts[b] = float(shift)
        b += 1
        sb = zero
        for c in range(blk.shape[0]):
            ev = fexp(blk[c] - shift)
            blk[c] = ev
            sb += ev
        s += float(sb)
    return m, s


@njit(fastmath=FASTMATH, cache=True)
def rescale_blocks(out, shifts, m, factor):
    """out[c] *= factor * exp(shift_b - m) over each block b: exp(x - shift_b) -> factor p[c] s."""
    C = out.shape[0]
    b = 0
    for lo in range(0, C, BLOCK):
        blk = out[lo : min(lo + BLOCK, C)]
        f = (
            out.dtype.type(factor * math.exp(shifts[b] - m))
            if m > -np.inf
            else out.dtype.type(factor)
        )
        b += 1
        for c in range(blk.shape[0]):
            blk[c] *= f


@njit(fastmath=FASTMATH, cache=True)
def sparse_row_loss(m, xy, ls, hard, e, C, W, d):
    """(1-e) w[y] ((m - x[y]) + log s) + e/C (W log s + sum_c w[c] (m - x[c])).

    ``d`` is sum_c e/C w[c] (m - x[c]) (``weighted_gap_sum``), already scaled.
    A NaN log s (a NaN logit) gives NaN even when w[y] = 0.
    """
    # sub_add keeps LLVM from computing (m + log s) - x[y] (reassociation),
    # which would round log s at the scale of m: 2e-5 off at logits of 1e4.
    if hard != 0.0:
        val = hard * sub_add(m, xy, ls)
        if val == np.inf:
            # m - x[y] may have overflowed (float64 logits beyond +-9e307): halved
            # (exactly) it cannot, and the doubling is exact, so same value otherwise.
            val = 2.0 * fenced(hard * half_sub_add(m, xy, ls))
    else:
        val = 0.0 if ls == ls else ls
    if e != 0.0:
        val += e / C * W * ls + d
    return val
