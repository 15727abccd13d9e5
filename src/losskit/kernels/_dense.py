"""Dense (distribution target) softmax cross-entropy, loss and optional fused gradient.

Per row, with t' = (1-e) t + e/C, T = sum(t'), lse = logsumexp(x), p = softmax(x)::

    loss    = sum_c t'[c] (lse - x[c]) = T log(s) + sum_c t'[c] (m - x[c])
    grad[c] = coef (T p[c] - t'[c])

A class with t'[c] == 0 contributes 0 to the loss even where x[c] = -inf.
Pass one reads x for (max, sum) and t for T; pass two reads both again (from
cache) for the remaining loss term and, when asked, writes the gradient.

The optional target-range check (targets not in [0, 1], or NaN) rides on
one of the two passes, never a pass of its own: ``check`` is ``CHECK_FIRST``
(in the target sum) or ``CHECK_SECOND`` (in the gap loop). Measured on
the 2-core Xeon, float32 fwd+bwd, CPU time per call: in the first pass the
check cost 0.5-4% at 8192 x 1000 (in cache) but 7-10% at 4096 x 32000, where
the targets stream from memory and the extra work slows the stream; in the
second pass, which re-reads the row from cache, it cost 0-2% at 4096 x 32000
but 4-9% at 8192 x 1000, where that loop (exp and gradient) is the
bottleneck. So the dispatcher picks the first pass when logits and targets
fit the last-level cache, the second otherwise: about 3% at 8192 x 1000 and
0-1% at 4096 x 32000 (an A/A comparison varied by 2%).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._primitives import fexp
from ._rowpass import BLOCK, FASTMATH, robust_gap_sum, row_max_sumexp, shift_of

NO_CHECK, CHECK_FIRST, CHECK_SECOND = 0, 1, 2


@njit(fastmath=FASTMATH, cache=True)
def _target_sum(trow, keep, add, check):
    """(T, bad): T = sum_c t'[c]; with ``check``, whether a t[c] is not in [0, 1] or NaN.

    The flag is a float count (an integer one does not vectorise) in the
    summing loop; LLVM unswitches the loop on ``check``, so without it the
    loop is the plain sum.
    """
    C = trow.shape[0]
    zero = trow.dtype.type(0.0)
    one = trow.dtype.type(1.0)
    acc = 0.0
    nb = zero
    for lo in range(0, C, BLOCK):
        tblk = trow[lo : min(lo + BLOCK, C)]
        tb = zero
        for c in range(tblk.shape[0]):
            tv = tblk[c]
            tb += tv
            if check:  # NaN compares False (no nnan flag)
                nb += zero if (tv >= zero and tv <= one) else one
        acc += float(tb)
    return keep * acc + add * C, nb != zero


@njit(fastmath=FASTMATH, cache=True)
def _gap_and_grad(row, trow, grow, shift, keep, add, scale, ci, do_grad, check):
    """Return (sum_c t'[c] (shift - x[c]), bad); with do_grad write coef (T p[c] - t'[c]).

    Block sums in the row's dtype; a row whose sum is not finite (shift - x
    overflows at 3e38 - (-3e38) in float32) is summed again by ``robust_gap_sum``
    (half-gaps, as the portable path), so the loss is finite whenever it is representable.
    With ``check``, ``bad`` says whether a target (before smoothing) is not in
    [0, 1] or is NaN (False without ``check``), flagged as in ``_target_sum``.
    """
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    one = row.dtype.type(1.0)
    d = 0.0
    nb = zero
    for lo in range(0, C, BLOCK):
        hi = min(lo + BLOCK, C)
        blk = row[lo:hi]
        tblk = trow[lo:hi]
        db = zero
        if do_grad:
            gblk = grow[lo:hi]
            for c in range(blk.shape[0]):
                xc = blk[c]
                tv = tblk[c]
                if check:  # NaN compares False (no nnan flag)
                    nb += zero if (tv >= zero and tv <= one) else one
                tc = keep * tv + add
                db += tc * (shift - xc) if tc != zero else zero
                # d/dx[c] = coef (T p[c] - t'[c])
                gblk[c] = fexp(xc - shift) * scale - ci * tc
        else:
            for c in range(blk.shape[0]):
                tv = tblk[c]
                if check:  # NaN compares False (no nnan flag)
                    nb += zero if (tv >= zero and tv <= one) else one
                tc = keep * tv + add
                db += tc * (shift - blk[c]) if tc != zero else zero
        d += float(db)
    if not math.isfinite(d):  # the logits are still there: sum the row again
        d = robust_gap_sum(row, trow, float(keep), float(add), shift)
    return d, nb != zero


@njit(fastmath=FASTMATH, cache=True)
def _gap_and_grad_inplace(row, trow, shift, keep, add, scale, ci, kept, check):
    """``_gap_and_grad`` writing the gradient over ``row`` itself (one array: LLVM
    vectorises without a run-time overlap check, which would fail here). Each
    block's logits are kept in ``kept`` (BLOCK,) as they are read, for the rare
    block whose gap sum overflowed (summed again by ``robust_gap_sum``)."""
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    one = row.dtype.type(1.0)
    d = 0.0
    nb = zero
    for lo in range(0, C, BLOCK):
        hi = min(lo + BLOCK, C)
        blk = row[lo:hi]
        tblk = trow[lo:hi]
        kp = kept[: hi - lo]
        db = zero
        for c in range(blk.shape[0]):
            xc = blk[c]
            kp[c] = xc
            tv = tblk[c]
            if check:
                nb += zero if (tv >= zero and tv <= one) else one
            tc = keep * tv + add
            db += tc * (shift - xc) if tc != zero else zero
            blk[c] = fexp(xc - shift) * scale - ci * tc
        d += float(db)
        if not math.isfinite(db):
            d += robust_gap_sum(kp, tblk, float(keep), float(add), shift) - float(db)
    return d, nb != zero


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def dense_xent_rows(x, t, e, coef, g, do_grad, loss, inplace, check, bad, nchunks):
    """Losses into ``loss`` (N,); with ``do_grad`` the scaled gradient into ``g``.

    ``inplace`` says g is x. Rows are split into ``nchunks`` contiguous ranges.
    With ``check`` (``CHECK_FIRST`` or ``CHECK_SECOND``: the pass that checks),
    ``bad[k]`` is set to the first row of range k holding a target not in
    [0, 1] (or NaN), -1 if none (``bad`` has at least ``nchunks`` entries).
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
            T, bad_1 = _target_sum(trow, keep, add, check == CHECK_FIRST and first < 0)
            ls = math.log(s)
            ci = float(coef[i]) if do_grad else 0.0
            scale = row.dtype.type(ci * T / s)
            cd = row.dtype.type(ci)
            chk = check == CHECK_SECOND and first < 0
            if inplace:
                d, bad_row = _gap_and_grad_inplace(
                    row, trow, shift, keep, add, scale, cd, kept, chk
                )
            else:
                d, bad_row = _gap_and_grad(
                    row, trow, g[i], shift, keep, add, scale, cd, do_grad, chk
                )
            if bad_1 or bad_row:
                first = i
            loss[i] = T * ls + d if T != 0.0 else d
        if check != NO_CHECK:
            bad[k] = first
    return loss
