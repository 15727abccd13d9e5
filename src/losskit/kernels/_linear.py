"""One chunk of a fused linear cross-entropy: logits (already ``h @ W.T``) to loss and gradient.

Per row, with z the chunk's logits (bias added here), the soft cap
``z' = c tanh(z / c)`` (when ``cap > 0``), lse = logsumexp(z'), p = softmax(z'),
class weights w (W = sum w), label smoothing e, label y and z-loss weight zl::

    ce      = (1-e) w[y] (lse - z'[y]) + e/C (W lse - sum_c w[c] z'[c])
    grad[c] = (a_ce ((1-e) w[y] (p[c] - [c==y]) + e/C (W p[c] - w[c]))
               + a_z 2 zl lse p[c]) (1 - (z'[c]/c)^2)

``a_ce`` and ``a_z`` are the rows' reduction coefficients (the derivative of
the returned value with respect to the row's cross-entropy and z-loss terms).
The gradient overwrites the logits in place: a row is read once from the
chunk's buffer for its max, then twice more from L2 (the sum of exponentials,
kept in place, then scaled into the gradient). Ignored rows get loss 0 and
gradient 0, but their lse is still computed (for logging). Each row also
gives ``z'[y]`` and, when asked (the class weights require a gradient), adds
``a_ce z'`` into column sums during its first pass: the derivative in the
class weights needs ``Σ_rows a_ce z'``. One exponential an element, two under
a soft cap (its gradient needs z' itself: the last pass computes them again).

The row body is shared by the serial driver here and ``_linear_team``'s, which
spreads the rows over the OpenMP threads of torch's BLAS. Not over numba's
threads: right after a product the BLAS's threads spin on the other core, and
a numba-parallel row pass ran no faster than the serial one (see ``_omp_team``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._primitives import fexp, maxnum
from ._rowpass import BLOCK, FASTMATH

# 2 |u| above this: tanh(u) is +-1 in float32 and float64 alike (exp(80) is finite).
_TANH_CLAMP = 80.0
# exp(z - max) below exp(-cut) is taken as 0. Without the cut, logits spread over
# more than ~90 (common: matmul outputs of standard-deviation 10-20) give exponentials
# that, scaled by the row's small gradient coefficient, are subnormal floats, and
# subnormal arithmetic ran the row pass 6-7x slower (measured: 150 ms instead of
# 21 ms for a 373 x 32000 float32 chunk). The terms dropped are below 2e-22
# (float32; 1e-260 for float64) of the largest, far below the dtype's resolution.
_CUT32 = -50.0
_CUT64 = -600.0


def cut_for(dtype: np.dtype) -> float:
    """The exponent below which a row's exponentials count as 0, for the logits' dtype."""
    return _CUT32 if np.dtype(dtype).itemsize <= 4 else _CUT64


@njit(fastmath=FASTMATH, cache=True)
def _prepare_block(blk, bb, has_bias, cap):
    """blk += bias block; then blk = cap tanh(blk / cap) when cap > 0 (in place).

    tanh(u) = 1 - 2 / (1 + exp(2u)) with 2u clamped to +-80, vectorisable
    through ``fexp``: absolute error about 1e-7 cap in float32.
    """
    one = blk.dtype.type(1.0)
    two = blk.dtype.type(2.0)
    hi = blk.dtype.type(_TANH_CLAMP)
    if has_bias:
        for c in range(blk.shape[0]):
            blk[c] += bb[c]
    if cap > 0.0:
        k = blk.dtype.type(2.0 / cap)
        cc = blk.dtype.type(cap)
        for c in range(blk.shape[0]):
            u = blk[c] * k
            u = hi if u > hi else u
            u = -hi if u < -hi else u
            blk[c] = cc * (one - two / (one + fexp(u)))


@njit(fastmath=FASTMATH, cache=True)
def _row(row, bias, has_bias, yi, counted, w, W, e, cap, zl, ace, az, do_grad, lo_cut, col, colsum):
    """Process one row in place; returns (ce, lse, z'[y]).

    With ``col``, ``colsum[c] += ace z'[c]`` (counted rows): the column sums that the
    derivative in the class weights needs with label smoothing.

    Three passes: z' and its max (and the sums over z'), then exp(z' - max) summed
    and, where the gradient needs nothing else of z' (no soft cap), kept in the row,
    then the gradient, by scaling those exponentials: one exponential an element
    instead of two (the first pass brings the row into L2; the other two run there).
    """
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    cut = row.dtype.type(lo_cut)
    m = -np.inf
    sw = 0.0  # sum_c w[c] z'[c], for smoothing
    smooth = e != 0.0
    for lo in range(0, C, BLOCK):
        hi = min(lo + BLOCK, C)
        blk = row[lo:hi]
        if has_bias or cap > 0.0:
            _prepare_block(blk, bias[lo:hi], has_bias, cap)
        mb = blk[0]
        for c in range(1, blk.shape[0]):
            mb = maxnum(mb, blk[c])
        if mb > m:
            m = float(mb)
        if col and counted:
            for c in range(blk.shape[0]):
                colsum[lo + c] += ace * blk[c]
        if smooth:
            wblk = w[lo:hi]
            swb = zero
            for c in range(blk.shape[0]):
                swb += wblk[c] * blk[c]
            sw += float(swb)
    zy = float(row[yi]) if counted else 0.0  # before the exponentials replace z'
    keep = do_grad and counted and not cap > 0.0
    shift = row.dtype.type(m) if m > -np.inf else zero
    s = 0.0
    for lo in range(0, C, BLOCK):
        hi = min(lo + BLOCK, C)
        blk = row[lo:hi]
        sb = zero
        if keep:
            for c in range(blk.shape[0]):
                d = blk[c] - shift
                ex = fexp(d) if d > cut else zero
                blk[c] = ex
                sb += ex
        else:
            for c in range(blk.shape[0]):
                d = blk[c] - shift
                sb += fexp(d) if d > cut else zero
        s += float(sb)
    return _row_tail(row, yi, counted, w, W, e, cap, zl, ace, az, do_grad, cut, m, s, sw, zy, keep)


@njit(fastmath=FASTMATH, cache=True)
def _row_tail(row, yi, counted, w, W, e, cap, zl, ace, az, do_grad, cut, m, s, sw, zy, kept):
    """The last pass of ``_row``: from the row's max ``m``, sum ``s`` of exp(z' - m),
    ``sw = Σ w z'`` and ``zy = z'[y]``, its (ce, lse, z'[y]) and, with ``do_grad``, its
    gradient in place. ``kept``: the row holds exp(z' - m) (0 below the cut), not z'."""
    C = row.shape[0]
    zero = row.dtype.type(0.0)
    smooth = e != 0.0
    if not s > 0.0:  # a row of NaN/inf logits: NaN loss, lse and gradient (no 1/0)
        s = math.nan
    lse = m if m == math.inf else m + math.log(s)  # logsumexp with a +inf logit is inf
    if not counted:
        if do_grad:
            row[:] = zero
        return 0.0, lse, 0.0
    wy = float(w[yi])
    hard = (1.0 - e) * wy
    ce = hard * ((m - zy) + math.log(s))
    if smooth:
        ce += e / C * (W * lse - sw)
    if do_grad and math.isnan(s):
        row[:] = row.dtype.type(math.nan)
    elif do_grad:
        P = ace * (hard + e * W / C) + az * 2.0 * zl * lse
        scale = row.dtype.type(P / s)
        q = row.dtype.type(ace * e / C)
        shift = row.dtype.type(m)
        if cap > 0.0:
            inv = row.dtype.type(1.0 / cap)
            one = row.dtype.type(1.0)
            fy = 1.0 - (zy / cap) ** 2
            for lo in range(0, C, BLOCK):
                hi = min(lo + BLOCK, C)
                blk = row[lo:hi]
                wblk = w[lo:hi]
                for c in range(blk.shape[0]):
                    v = blk[c]
                    t = v * inv
                    d = v - shift
                    ex = fexp(d) * scale if d > cut else zero
                    blk[c] = (ex - q * wblk[c]) * (one - t * t)
            row[yi] -= ace * hard * fy
        else:
            # the kept exponentials, or (the fused path's rows hold z') computed here
            for lo in range(0, C, BLOCK):
                hi = min(lo + BLOCK, C)
                blk = row[lo:hi]
                if smooth:
                    wblk = w[lo:hi]
                    for c in range(blk.shape[0]):
                        d = blk[c] - shift
                        ex = blk[c] if kept else (fexp(d) if d > cut else zero)
                        blk[c] = ex * scale - q * wblk[c]
                else:
                    for c in range(blk.shape[0]):
                        d = blk[c] - shift
                        ex = blk[c] if kept else (fexp(d) if d > cut else zero)
                        blk[c] = ex * scale
            row[yi] -= ace * hard
    return ce, lse, zy


@njit(fastmath=FASTMATH, cache=True)
def weight_sum(w):
    """Σ w (float64), one compiled function for every driver: the same rounding in each."""
    total = 0.0
    for c in range(w.shape[0]):
        total += float(w[c])
    return total


@njit(fastmath=FASTMATH, cache=True)
def lce_rows_serial(
    z, bias, has_bias, y, counted, w, e, cap, zl, a_ce, a_z, do_grad, ce, lse, zy, col, colsum, cut
):
    """Every row of the chunk ``z`` (n, C) in turn: ce, lse and z'[y] into (n,) arrays, the
    gradient into z; with ``col``, ``colsum`` (C,) += sum over counted rows of a_ce z'.

    ``cut``: ``cut_for(z.dtype)``, where exponentials are taken as 0.
    """
    W = weight_sum(w)
    for i in range(z.shape[0]):
        ce[i], lse[i], zy[i] = _row(
            z[i], bias, has_bias, y[i], counted[i], w, W, e, cap, zl, a_ce[i], a_z[i], do_grad,
            cut, col, colsum,
        )  # fmt: skip


# --------------------------------------------------------------------------- the fused chunk
#
# ``G W`` (the hidden states' gradient) folded into the logits' pass over the weight:
# the chunk's logits come a vocabulary block at a time (``Z_b = H W_bᵀ``), and while
# ``W_b`` is still in cache the product ``acc += exp(Z_b - m) W_b`` runs with the rows'
# running max ``m`` (an online softmax: ``acc`` is rescaled by ``exp(m_old - m_new)``
# when a row's max grows). After the last block, with ``s = Σ exp(z - m)``,
#
#     dh = (P / s) acc - q (w W) - a_ce (1-e) w[y] W[y]
#
# (``P``, ``q`` as in ``_row_tail``; the smoothing term ``w W = Σ_c w_c W_c`` is one
# vector per call). The weight is then read twice per chunk instead of three times.
# Without a soft cap only: its factor ``1 - (z'/c)²`` would enter every product.


@njit(fastmath=FASTMATH, cache=True)
def lce_block_stats(z, v0, v1, bias, has_bias, w, smooth, m, s, sw, eb, acc, first, cut):
    """One vocabulary block ``z[:, v0:v1]`` of a chunk's logits (bias added in place).

    Per row: the running max ``m`` and sum ``s = Σ exp(z - m)`` (float64) and, with
    ``smooth``, ``sw += Σ w z``; ``eb[i, :v1-v0] = exp(z - m)`` with the updated max,
    and the row of ``acc`` (the products of earlier blocks; not read when ``first``)
    multiplied by ``exp(m_old - m_new)`` when the max grew.
    """
    zero = z.dtype.type(0.0)
    ct = z.dtype.type(cut)
    width = v1 - v0
    for i in range(z.shape[0]):
        row = z[i]
        blk = row[v0:v1]
        if has_bias:
            bb = bias[v0:v1]
            for c in range(width):
                blk[c] += bb[c]
        mb = blk[0]
        for c in range(1, width):
            mb = maxnum(mb, blk[c])
        mi = m[i]
        if mb > mi:
            f = math.exp(mi - float(mb))
            s[i] *= f
            if not first:
                ar = acc[i]
                fa = ar.dtype.type(f)
                for k in range(ar.shape[0]):
                    ar[k] *= fa
            mi = float(mb)
            m[i] = mi
        shift = z.dtype.type(mi) if mi > -np.inf else zero
        er = eb[i]
        sb = zero
        for c in range(width):
            d = blk[c] - shift
            ex = fexp(d) if d > ct else zero
            er[c] = ex
            sb += ex
        s[i] += float(sb)
        if smooth:
            wb = w[v0:v1]
            swb = zero
            for c in range(width):
                swb += wb[c] * blk[c]
            sw[i] += float(swb)


@njit(fastmath=FASTMATH, cache=True)
def lce_rows_finish(
    z, y, counted, w, e, zl, a_ce, a_z, ce, lse, zy, m, s, sw, acc, wW, weight, dh, cut
):
    """After ``lce_block_stats`` over every block: each row's (ce, lse, z'[y]), its logit
    gradient into ``z`` (as ``lce_rows_serial``) and its hidden-state gradient into ``dh``
    from ``acc`` (see above); ``wW`` = ``w @ weight`` (used with smoothing only)."""
    W = weight_sum(w)
    C = z.shape[1]
    ct = z.dtype.type(cut)
    zero = dh.dtype.type(0.0)
    smooth = e != 0.0
    for i in range(z.shape[0]):
        yi = y[i]
        zyi = float(z[i, yi]) if counted[i] else 0.0
        ce[i], lse[i], zy[i] = _row_tail(
            z[i], yi, counted[i], w, W, e, 0.0, zl, a_ce[i], a_z[i], True, ct, m[i], s[i], sw[i],
            zyi, False,
        )  # fmt: skip
        out = dh[i]
        if not counted[i]:
            out[:] = zero
            continue
        si = s[i]
        if not si > 0.0:
            out[:] = dh.dtype.type(math.nan)
            continue
        hard = (1.0 - e) * float(w[yi])
        P = a_ce[i] * (hard + e * W / C) + a_z[i] * 2.0 * zl * lse[i]
        scale = dh.dtype.type(P / si)
        hy = dh.dtype.type(a_ce[i] * hard)
        ar = acc[i]
        wy = weight[yi]
        if smooth:
            q = dh.dtype.type(a_ce[i] * e / C)
            for k in range(out.shape[0]):
                out[k] = scale * ar[k] - q * wW[k] - hy * wy[k]
        else:
            for k in range(out.shape[0]):
                out[k] = scale * ar[k] - hy * wy[k]
