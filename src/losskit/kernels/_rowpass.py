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

from ._primitives import fexp, maxnum, sub_add

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
def shift_of(m, dtype_probe):
    """The row's max as the row dtype, 0 for an all -inf row (so x - shift is never NaN)."""
    zero = dtype_probe.dtype.type(0.0)
    return dtype_probe.dtype.type(m) if m > -np.inf else zero


@njit(fastmath=FASTMATH, cache=True)
def weighted_gap_sum(row, w, shift):
    """sum_c w[c] (shift - row[c]) as float64; a zero weight contributes 0 even at -inf."""
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    d = 0.0
    for lo in range(0, C, BLOCK):
        blk = row[lo : min(lo + BLOCK, C)]
        wblk = w[lo : min(lo + BLOCK, C)]
        db = zero
        for c in range(blk.shape[0]):
            wc = wblk[c]
            db += wc * (shift - blk[c]) if wc != zero else zero
        d += float(db)
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
    """(1-e) w[y] ((m - x[y]) + log s) + e/C (W log s + sum_c w[c] (m - x[c]))."""
    # sub_add keeps LLVM from computing (m + log s) - x[y] (reassociation),
    # which would round log s at the scale of m: 2e-5 off at logits of 1e4.
    val = hard * sub_add(m, xy, ls) if hard != 0.0 else 0.0
    if e != 0.0:
        val += e / C * (W * ls + d)
    return val
