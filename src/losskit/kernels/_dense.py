"""Dense (distribution target) softmax cross-entropy, loss and optional fused gradient.

Per row, with t' = (1-e) t + e/C, T = sum(t'), lse = logsumexp(x), p = softmax(x)::

    loss    = sum_c t'[c] (lse - x[c]) = T log(s) + sum_c t'[c] (m - x[c])
    grad[c] = coef (T p[c] - t'[c])

A class with t'[c] == 0 contributes 0 to the loss even where x[c] = -inf.
Pass one reads x for (max, sum) and t for T; pass two reads both again (from
cache) for the remaining loss term and, when asked, writes the gradient.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._primitives import fexp
from ._rowpass import BLOCK, FASTMATH, robust_gap_sum, row_max_sumexp, shift_of


@njit(fastmath=FASTMATH, cache=True)
def _target_sum(trow, keep, add):
    C = trow.shape[0]
    acc = 0.0
    for lo in range(0, C, BLOCK):
        tblk = trow[lo : min(lo + BLOCK, C)]
        tb = trow.dtype.type(0.0)
        for c in range(tblk.shape[0]):
            tb += tblk[c]
        acc += float(tb)
    return keep * acc + add * C


@njit(fastmath=FASTMATH, cache=True)
def _target_sum_checked(trow, keep, add):
    """``_target_sum``, and whether the row holds a target not in [0, 1] (or NaN).

    Flagged in the loop that sums, as a float count per block: an integer
    count or a loop of its own did not vectorise as well (measured 1.3-2x
    slower alone); this one runs at the plain sum's speed.
    """
    C = trow.shape[0]
    zero = trow.dtype.type(0.0)
    one = trow.dtype.type(1.0)
    acc = 0.0
    bad = False
    for lo in range(0, C, BLOCK):
        tblk = trow[lo : min(lo + BLOCK, C)]
        tb = zero
        nb = zero
        for c in range(tblk.shape[0]):
            v = tblk[c]
            tb += v
            nb += zero if (v >= zero and v <= one) else one  # NaN compares False (no nnan)
        acc += float(tb)
        bad = bad or nb != zero
    return keep * acc + add * C, bad


@njit(fastmath=FASTMATH, cache=True)
def _gap_and_grad(row, trow, grow, shift, keep, add, scale, ci, do_grad):
    """Return sum_c t'[c] (shift - x[c]); with do_grad write coef (T p[c] - t'[c]).

    Block sums in the row's dtype; a row whose sum is not finite (shift - x
    overflows at 3e38 - (-3e38) in float32) is summed again by ``robust_gap_sum``
    (half-gaps, as the portable path), so the loss is finite whenever it is representable.
    """
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    d = 0.0
    for lo in range(0, C, BLOCK):
        hi = min(lo + BLOCK, C)
        blk = row[lo:hi]
        tblk = trow[lo:hi]
        db = zero
        if do_grad:
            gblk = grow[lo:hi]
            for c in range(blk.shape[0]):
                xc = blk[c]
                tc = keep * tblk[c] + add
                db += tc * (shift - xc) if tc != zero else zero
                # d/dx[c] = coef (T p[c] - t'[c])
                gblk[c] = fexp(xc - shift) * scale - ci * tc
        else:
            for c in range(blk.shape[0]):
                tc = keep * tblk[c] + add
                db += tc * (shift - blk[c]) if tc != zero else zero
        d += float(db)
    if not math.isfinite(d):  # the logits are still there: sum the row again
        d = robust_gap_sum(row, trow, float(keep), float(add), shift)
    return d


@njit(fastmath=FASTMATH, cache=True)
def _gap_and_grad_inplace(row, trow, shift, keep, add, scale, ci, kept):
    """``_gap_and_grad`` writing the gradient over ``row`` itself (one array: LLVM
    vectorises without a run-time overlap check, which would fail here). Each
    block's logits are kept in ``kept`` (BLOCK,) as they are read, for the rare
    block whose gap sum overflowed (summed again by ``robust_gap_sum``)."""
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    d = 0.0
    for lo in range(0, C, BLOCK):
        hi = min(lo + BLOCK, C)
        blk = row[lo:hi]
        tblk = trow[lo:hi]
        kp = kept[: hi - lo]
        db = zero
        for c in range(blk.shape[0]):
            xc = blk[c]
            kp[c] = xc
            tc = keep * tblk[c] + add
            db += tc * (shift - xc) if tc != zero else zero
            blk[c] = fexp(xc - shift) * scale - ci * tc
        d += float(db)
        if not math.isfinite(db):
            d += robust_gap_sum(kp, tblk, float(keep), float(add), shift) - float(db)
    return d


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def dense_xent_rows(x, t, e, coef, g, do_grad, loss, inplace, check, bad, nchunks):
    """Losses into ``loss`` (N,); with ``do_grad`` the scaled gradient into ``g``.

    ``inplace`` says g is x. Rows are split into ``nchunks`` contiguous ranges.
    With ``check``, ``bad[k]`` is set to the first row of range k holding a target
    not in [0, 1] (or NaN), -1 if none (``bad`` has at least ``nchunks`` entries).
    """
    N, C = x.shape
    keep = x.dtype.type(1.0 - e)
    add = x.dtype.type(e / C)
    nchunks = max(1, min(N, nchunks))
    for k in prange(nchunks):
        # in place: the logits of the block being overwritten (see _gap_and_grad_inplace)
        kept = np.empty(min(C, BLOCK) if inplace else 0, dtype=x.dtype)
        first = -1
        for i in range(k * N // nchunks, (k + 1) * N // nchunks):
            row = x[i]
            trow = t[i]
            m, s = row_max_sumexp(row)
            shift = shift_of(m, row)
            if check:  # the targets are read here anyway: the check costs no pass of its own
                T, bad_row = _target_sum_checked(trow, keep, add)
                if bad_row and first < 0:
                    first = i
            else:
                T = _target_sum(trow, keep, add)
            ls = math.log(s)
            ci = float(coef[i]) if do_grad else 0.0
            scale = row.dtype.type(ci * T / s)
            cd = row.dtype.type(ci)
            if inplace:
                d = _gap_and_grad_inplace(row, trow, shift, keep, add, scale, cd, kept)
            else:
                d = _gap_and_grad(row, trow, g[i], shift, keep, add, scale, cd, do_grad)
            loss[i] = T * ls + d if T != 0.0 else d
        if check:
            bad[k] = first
    return loss
