"""Sparse (integer label) softmax cross-entropy, loss and optional fused gradient.

Per row, with lse = logsumexp(x), p = softmax(x), w the class weights, W = sum(w),
e the label smoothing and y the label::

    loss    = (1-e) w[y] (lse - x[y]) + e/C sum_c w[c] (lse - x[c])
    grad[c] = coef ((1-e) w[y] (p[c] - [c==y]) + e/C (W p[c] - w[c]))

Two loop shapes. ``sparse_xent_rowwise`` reads each row once for (max, sum)
and, when a gradient is asked for, once more from cache to write it.
``sparse_xent_tiled`` is for small C, where per-row scalar work dominates: it
transposes a tile of TILE rows into a (C, TILE) scratch buffer so every step
(max, exp, sum, gradient) runs across rows in vector lanes.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._primitives import fexp, flog, maxnum, sub_add
from ._rowpass import (
    BLOCK,
    FASTMATH,
    rescale_blocks,
    robust_gap_row,
    robust_gap_sum,
    row_max_sumexp,
    row_max_sumexp_inplace,
    row_max_sumexp_store,
    shift_of,
    sparse_row_loss,
    weighted_gap_sum,
)
from ._tiled import TILE, load_tile, tile_shift


@njit(cache=True)
def _all_ones(w):
    for c in range(w.shape[0]):
        if w[c] != 1.0:
            return False
    return True


@njit(cache=True)
def _gap_coefs(w, e):
    """k[c] = e/C w[c] in w's dtype: the smoothing term's weights on the gaps m - x[c]."""
    C = w.shape[0]
    k = np.empty(C, dtype=w.dtype)
    for c in range(C):
        k[c] = e / C * float(w[c])
    return k


@njit(fastmath=FASTMATH, cache=True)
def _grad_row_smooth(row, grow, shift, scale, ci, k):
    """Write coef a p[c] - coef k[c] (k = e/C w); return sum_c k[c] (shift - x[c]), read
    before the write.

    A row whose gap sum is not finite (shift - x overflowed) is summed again
    by ``robust_gap_sum``, as in ``weighted_gap_sum``.
    """
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    d = 0.0
    for lo in range(0, C, BLOCK):
        hi = min(lo + BLOCK, C)
        blk = row[lo:hi]
        gblk = grow[lo:hi]
        kblk = k[lo:hi]
        db = zero
        for c in range(blk.shape[0]):
            xc = blk[c]
            kc = kblk[c]
            db += kc * (shift - xc) if kc != zero else zero
            # d/dx[c] = coef ((1-e) w[y] + e W / C) p[c] - coef e/C w[c]
            gblk[c] = fexp(xc - shift) * scale - ci * kc
        d += float(db)
    if not math.isfinite(d):  # the logits are still there: sum the row again
        d = robust_gap_sum(row, k, 1.0, 0.0, shift)
    return d


@njit(fastmath=FASTMATH, cache=True)
def _grad_row_smooth_inplace(row, shift, scale, ci, k, keep):
    """``_grad_row_smooth`` writing over ``row`` (one array: no failing overlap check).

    Each block's logits are kept in ``keep`` (BLOCK,) as they are read, for the
    rare block whose gap sum overflowed (summed again by ``robust_gap_sum``).
    """
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    d = 0.0
    for lo in range(0, C, BLOCK):
        hi = min(lo + BLOCK, C)
        blk = row[lo:hi]
        kblk = k[lo:hi]
        kp = keep[: hi - lo]
        db = zero
        for c in range(blk.shape[0]):
            xc = blk[c]
            kc = kblk[c]
            kp[c] = xc
            db += kc * (shift - xc) if kc != zero else zero
            blk[c] = fexp(xc - shift) * scale - ci * kc
        d += float(db)
        if not math.isfinite(db):
            d += robust_gap_sum(kp, kblk, 1.0, 0.0, shift) - float(db)
    return d


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def sparse_xent_rowwise(x, y, w, has_ignore, ignore, e, coef, g, do_grad, loss, inplace, nchunks):
    """Losses into ``loss`` (N,); with ``do_grad`` the scaled gradient into ``g``.

    ``inplace`` says g is x. Rows are split into ``nchunks`` contiguous ranges.
    Without smoothing the gradient pass stores exp(x - running max) while it
    finds (max, sum), then rescales each block: one exp per element.
    """
    N, C = x.shape
    W = 0.0
    for c in range(C):
        W += float(w[c])
    kw = _gap_coefs(w, e)
    nchunks = max(1, min(N, nchunks))
    for k in prange(nchunks):
        shifts = np.empty((C + BLOCK - 1) // BLOCK, dtype=np.float64)
        keep = np.empty(min(C, BLOCK) if do_grad and inplace and e != 0.0 else 0, dtype=x.dtype)
        for i in range(k * N // nchunks, (k + 1) * N // nchunks):
            yi = y[i]
            if has_ignore and yi == ignore:
                loss[i] = 0.0
                if do_grad:
                    g[i, :] = 0.0
                continue
            row = x[i]
            xy = float(row[yi])  # read before an in-place gradient overwrites it
            wy = float(w[yi])
            hard = (1.0 - e) * wy
            d = 0.0
            if do_grad and e == 0.0:
                grow = g[i]
                if inplace:
                    m, s = row_max_sumexp_inplace(grow, shifts)
                else:
                    m, s = row_max_sumexp_store(row, grow, shifts)
                ci = float(coef[i])
                # d/dx[c] = coef w[y] (p[c] - [c==y])
                rescale_blocks(grow, shifts, m, ci * hard / s)
                grow[yi] -= ci * hard
            else:
                m, s = row_max_sumexp(row)
                shift = shift_of(m, row)
                if do_grad:
                    ci = float(coef[i])
                    scale = row.dtype.type(ci * (hard + e * W / C) / s)
                    cd = row.dtype.type(ci)
                    if inplace:
                        d = _grad_row_smooth_inplace(row, shift, scale, cd, kw, keep)
                    else:
                        d = _grad_row_smooth(row, g[i], shift, scale, cd, kw)
                    g[i, yi] -= ci * hard
                elif e != 0.0:
                    d = weighted_gap_sum(row, kw, shift)
            # e/C sum_c w[c] (lse - x[c]) = e/C W log(s) + sum_c e/C w[c] (m - x[c])
            loss[i] = sparse_row_loss(m, xy, math.log(s), hard, e, C, W, d)
    return loss


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def sparse_xent_tiled(x, y, w, has_ignore, ignore, e, coef, g, do_grad, loss, nchunks):
    """Same contract as ``sparse_xent_rowwise``; fast for small C. Tiles split into ``nchunks``."""
    N, C = x.shape
    W = 0.0
    for c in range(C):
        W += float(w[c])
    zero = x.dtype.type(0.0)
    inf = x.dtype.type(np.inf)
    ntiles = (N + TILE - 1) // TILE
    nchunks = max(1, min(ntiles, nchunks))
    smooth = e != 0.0
    plain = not smooth and not has_ignore and W == C and _all_ones(w)
    kw = _gap_coefs(w, e)
    for k in prange(nchunks):
        t = np.empty((C, TILE), dtype=x.dtype)  # the tile, transposed: rows in vector lanes
        m = np.empty(TILE, dtype=x.dtype)
        s = np.empty(TILE, dtype=x.dtype)
        d = np.empty(TILE, dtype=x.dtype)
        a = np.empty(TILE, dtype=x.dtype)
        b = np.empty(TILE, dtype=x.dtype)
        for tile in range(k * ntiles // nchunks, (k + 1) * ntiles // nchunks):
            r0 = tile * TILE
            nr = min(TILE, N - r0)
            xt = x[r0 : r0 + nr]  # views indexed from 0: no wrap-around checks
            yt = y[r0 : r0 + nr]
            ct = coef[r0 : r0 + nr]
            lt = loss[r0 : r0 + nr]
            load_tile(xt, t, nr)
            tile_shift(t, m, nr)
            for r in range(nr):
                s[r] = zero
                d[r] = zero
            # The exponentials go over the tile itself (tile_max_sumexp wants a second
            # buffer, 3% slower here at C = 10); with smoothing, the gap sum in the same pass.
            if smooth:
                for c in range(C):
                    kc = kw[c]
                    for r in range(nr):
                        xv = t[c, r]
                        d[r] += kc * (m[r] - xv) if kc != zero else zero
                        ev = fexp(xv - m[r])
                        t[c, r] = ev
                        s[r] += ev
            else:
                for c in range(C):
                    for r in range(nr):
                        ev = fexp(t[c, r] - m[r])
                        t[c, r] = ev
                        s[r] += ev
            for r in range(nr):
                a[r] = flog(s[r])  # log(s) for now; a is reused for the gradient scale below
            if plain:
                # No options: loss = (m - x[y]) + log(s); grad = coef (p - onehot).
                for r in range(nr):
                    lt[r] = sub_add(m[r], xt[r, yt[r]], a[r])  # scalar: a gather anyway
                if do_grad:
                    for r in range(nr):
                        a[r] = ct[r] / s[r]
                        b[r] = zero
            for r in range(nr if not plain else 0):
                yi = yt[r]
                if has_ignore and yi == ignore:
                    lt[r] = 0.0
                    a[r] = zero
                    b[r] = zero
                else:
                    ls = float(a[r])
                    wy = float(w[yi])
                    hard = (1.0 - e) * wy
                    xy = float(xt[r, yi])
                    lt[r] = sparse_row_loss(float(m[r]), xy, ls, hard, e, C, W, float(d[r]))
                    ci = float(ct[r]) if do_grad else 0.0
                    a[r] = ci * (hard + e * W / C) / float(s[r])
                    b[r] = ci * e / C
            if smooth:
                big = zero
                for r in range(nr):
                    big = maxnum(big, abs(d[r]))
                if big == inf:  # m - x overflowed (3e38 - (-3e38)), or a -inf logit
                    for r in range(nr):
                        yi = yt[r]
                        if abs(d[r]) == inf and not (has_ignore and yi == ignore):
                            # sum again; the logits are intact (the gradient comes below)
                            dr = robust_gap_row(xt, r, kw, m[r])
                            hard = (1.0 - e) * float(w[yi])
                            ls = float(flog(s[r]))
                            xy = float(xt[r, yi])
                            lt[r] = sparse_row_loss(float(m[r]), xy, ls, hard, e, C, W, dr)
            if do_grad:
                gt = g[r0 : r0 + nr]
                for c in range(C):
                    wc = w[c]
                    for r in range(nr):
                        # d/dx[c] = coef ((1-e) w[y] + e W/C) p[c] - coef e/C w[c]
                        gt[r, c] = a[r] * t[c, r] - b[r] * wc
                for r in range(nr):
                    yi = yt[r]
                    if not (has_ignore and yi == ignore):
                        gt[r, yi] -= ct[r] * (1.0 - e) * w[yi]  # the one-hot term
    return loss
