"""Small-C loop shape: a tile of TILE rows transposed so that rows sit in vector lanes.

With few classes a row is shorter than one vector register and per-row scalar
work dominates the row-wise loops. Here a tile of rows is copied into a
(C, TILE) scratch array (``load_tile``); every later step then runs along the
rows with unit stride and vectorises: the max over classes, exp and sum
(``tile_max_sumexp``), the log of the sums (``flog``), and the outputs, which
``store_tile`` writes back in row order. Used for C <= dispatch.SMALL_C by the
activations and the dense cross-entropy here, and by the sparse one in
``_sparse.py`` (which takes ``load_tile`` and ``tile_shift``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._primitives import fexp, flog, maxnum
from ._rowpass import FASTMATH, inf_max_lse, robust_gap_col2

TILE = 64


@njit(fastmath=FASTMATH, cache=True)
def load_tile(src, t, nr):
    """t[c, r] = src[r, c] for the nr rows of ``src`` (strided loads, unit-stride stores)."""
    for c in range(src.shape[1]):
        for r in range(nr):
            t[c, r] = src[r, c]


@njit(fastmath=FASTMATH, cache=True)
def first_bad_row(rows):
    """The index of the first row of ``rows`` holding a value not in [0, 1] (or NaN); -1 if none."""
    for r in range(rows.shape[0]):
        for c in range(rows.shape[1]):
            v = rows[r, c]
            if not (v >= 0.0 and v <= 1.0):
                return r
    return -1


@njit(fastmath=FASTMATH, cache=True)
def store_tile(t, dst, nr):
    """dst[r, c] = t[c, r] for the nr rows of ``dst``."""
    for c in range(dst.shape[1]):
        for r in range(nr):
            dst[r, c] = t[c, r]


@njit(fastmath=FASTMATH, cache=True)
def tile_shift(t, m, nr):
    """m[r] = max_c t[c, r], the row's shift: 0 for an all -inf row (so t - m is never NaN)."""
    C = t.shape[0]
    zero = t.dtype.type(0.0)
    ninf = t.dtype.type(-np.inf)
    for r in range(nr):
        m[r] = t[0, r]
    for c in range(1, C):
        for r in range(nr):
            m[r] = maxnum(m[r], t[c, r])
    for r in range(nr):
        m[r] = m[r] if m[r] > ninf else zero


@njit(fastmath=FASTMATH, cache=True)
def tile_max_sumexp(t, e, m, s, nr):
    """m[r] = max_c t[c, r] (0 for an all -inf row), e[c, r] = exp(t[c, r] - m[r]), s[r] = sum.

    ``e`` must not be ``t``: LLVM cannot prove two arguments apart, and a
    run-time overlap check that fails runs the scalar loop.
    """
    C = t.shape[0]
    zero = t.dtype.type(0.0)
    tile_shift(t, m, nr)
    for r in range(nr):
        s[r] = zero
    for c in range(C):
        for r in range(nr):
            ev = fexp(t[c, r] - m[r])
            e[c, r] = ev
            s[r] += ev


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def logsumexp_tiled(x, out, nchunks):
    N, C = x.shape
    ntiles = (N + TILE - 1) // TILE
    nchunks = max(1, min(ntiles, nchunks))
    for k in prange(nchunks):
        t = np.empty((C, TILE), dtype=x.dtype)
        e = np.empty((C, TILE), dtype=x.dtype)
        m = np.empty(TILE, dtype=x.dtype)
        s = np.empty(TILE, dtype=x.dtype)
        for tile in range(k * ntiles // nchunks, (k + 1) * ntiles // nchunks):
            r0 = tile * TILE
            nr = min(TILE, N - r0)
            load_tile(x[r0 : r0 + nr], t, nr)
            tile_max_sumexp(t, e, m, s, nr)
            ot = out[r0 : r0 + nr]
            for r in range(nr):
                ot[r] = m[r] + flog(s[r])  # a NaN logit: s is NaN
        # A +inf logit made s NaN too (exp(inf - inf)): +inf unless the row has a NaN.
        # Checked once per chunk: a check inside the tile loop costs 15% at C = 10.
        lo, hi = k * ntiles // nchunks * TILE, min(N, (k + 1) * ntiles // nchunks * TILE)
        oc = out[lo:hi]
        nnan = 0
        for i in range(oc.shape[0]):
            nnan += 1 if oc[i] != oc[i] else 0
        if nnan:
            for i in range(lo, hi):
                if out[i] != out[i]:
                    out[i] = inf_max_lse(x[i])
    return out


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def softmax_tiled(x, out, nchunks):
    """out may be x: a tile is read completely before it is written."""
    N, C = x.shape
    ntiles = (N + TILE - 1) // TILE
    nchunks = max(1, min(ntiles, nchunks))
    for k in prange(nchunks):
        t = np.empty((C, TILE), dtype=x.dtype)
        e = np.empty((C, TILE), dtype=x.dtype)
        m = np.empty(TILE, dtype=x.dtype)
        s = np.empty(TILE, dtype=x.dtype)
        for tile in range(k * ntiles // nchunks, (k + 1) * ntiles // nchunks):
            r0 = tile * TILE
            nr = min(TILE, N - r0)
            load_tile(x[r0 : r0 + nr], t, nr)
            tile_max_sumexp(t, e, m, s, nr)
            for r in range(nr):
                s[r] = 1.0 / s[r]
            for c in range(C):
                for r in range(nr):
                    e[c, r] *= s[r]
            store_tile(e, out[r0 : r0 + nr], nr)
    return out


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def log_softmax_tiled(x, out, nchunks):
    """out = (x - m) - log(s); out may be x."""
    N, C = x.shape
    ntiles = (N + TILE - 1) // TILE
    nchunks = max(1, min(ntiles, nchunks))
    for k in prange(nchunks):
        t = np.empty((C, TILE), dtype=x.dtype)
        e = np.empty((C, TILE), dtype=x.dtype)
        m = np.empty(TILE, dtype=x.dtype)
        s = np.empty(TILE, dtype=x.dtype)
        for tile in range(k * ntiles // nchunks, (k + 1) * ntiles // nchunks):
            r0 = tile * TILE
            nr = min(TILE, N - r0)
            load_tile(x[r0 : r0 + nr], t, nr)
            tile_max_sumexp(t, e, m, s, nr)
            for r in range(nr):
                s[r] = flog(s[r])
            # (x - m) - log(s) in two loops: through memory, LLVM cannot
            # reassociate it into x - (m + log(s)), rounded at the scale of m.
            for c in range(C):
                for r in range(nr):
                    t[c, r] -= m[r]
            for c in range(C):
                for r in range(nr):
                    t[c, r] -= s[r]
            store_tile(t, out[r0 : r0 + nr], nr)
    return out


@njit(fastmath=FASTMATH, cache=True)
def tile_target_terms(t, tt, m, T, d, keep, add, nr, check):
    """tt = t' = keep tt + add (in place), T[r] = sum_c t'[c, r], d[r] = sum_c t' (m[r] - t).

    With ``check``, return whether a target (before smoothing) is not in [0, 1]
    or NaN, flagged in the same loop (as a float count: an integer one does not
    vectorise). False without ``check``. Measured at 65536 x 10, CPU time: 2-4%
    (a loop of its own cost 8%, the check fused into the strided load 25%).
    """
    zero = t.dtype.type(0.0)
    one = t.dtype.type(1.0)
    for r in range(nr):
        T[r] = zero
        d[r] = zero
    nb = zero
    if check:
        for c in range(t.shape[0]):
            for r in range(nr):
                v = tt[c, r]
                nb += zero if (v >= zero and v <= one) else one  # NaN compares False (no nnan)
                tc = keep * v + add
                tt[c, r] = tc
                T[r] += tc
                d[r] += tc * (m[r] - t[c, r]) if tc != zero else zero
    else:
        for c in range(t.shape[0]):
            for r in range(nr):
                tc = keep * tt[c, r] + add
                tt[c, r] = tc
                T[r] += tc
                # a zero target contributes 0, even at a -inf logit
                d[r] += tc * (m[r] - t[c, r]) if tc != zero else zero
    return nb != zero


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def dense_xent_tiled(x, tg, e, coef, g, do_grad, loss, check, bad, nchunks):
    """Same contract as ``_dense.dense_xent_rows``, for small C (``bad[k]``: first bad
    row of tile range k)."""
    N, C = x.shape
    keep = x.dtype.type(1.0 - e)
    add = x.dtype.type(e / C)
    zero = x.dtype.type(0.0)
    inf = x.dtype.type(np.inf)
    ntiles = (N + TILE - 1) // TILE
    nchunks = max(1, min(ntiles, nchunks))
    for k in prange(nchunks):
        t = np.empty((C, TILE), dtype=x.dtype)
        ex = np.empty((C, TILE), dtype=x.dtype)
        tt = np.empty((C, TILE), dtype=x.dtype)
        m = np.empty(TILE, dtype=x.dtype)
        s = np.empty(TILE, dtype=x.dtype)
        T = np.empty(TILE, dtype=x.dtype)
        d = np.empty(TILE, dtype=x.dtype)
        first = -1
        for tile in range(k * ntiles // nchunks, (k + 1) * ntiles // nchunks):
            r0 = tile * TILE
            nr = min(TILE, N - r0)
            load_tile(x[r0 : r0 + nr], t, nr)
            load_tile(tg[r0 : r0 + nr], tt, nr)
            tile_max_sumexp(t, ex, m, s, nr)
            if tile_target_terms(t, tt, m, T, d, keep, add, nr, check and first < 0):
                # rare: find the row in the targets themselves (tt is smoothed by now)
                first = r0 + first_bad_row(tg[r0 : r0 + nr])
            big = zero
            for r in range(nr):
                big = maxnum(big, abs(d[r]))
            if big == inf:  # m - x overflowed (3e38 - (-3e38)), or a -inf logit: sum again
                for r in range(nr):
                    if abs(d[r]) == inf:  # (the loss is representable only if d is)
                        d[r] = robust_gap_col2(t, tt, r, m[r])
            lt = loss[r0 : r0 + nr]
            for r in range(nr):
                # loss = T log(s) + sum_c t'[c] (m - x[c])
                lt[r] = T[r] * flog(s[r]) + d[r] if T[r] != zero else d[r]
            if do_grad:
                ct = coef[r0 : r0 + nr]
                for r in range(nr):
                    s[r] = ct[r] * T[r] / s[r]
                for c in range(C):
                    for r in range(nr):
                        # d/dx[c] = coef (T p[c] - t'[c])
                        t[c, r] = s[r] * ex[c, r] - ct[r] * tt[c, r]
                store_tile(t, g[r0 : r0 + nr], nr)
        if check:
            bad[k] = first
    return loss
