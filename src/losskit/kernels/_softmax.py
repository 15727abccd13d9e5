"""Row-wise logsumexp, softmax and log_softmax over C-contiguous (N, C) arrays."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._rowpass import (
    BLOCK,
    FASTMATH,
    inf_max_lse,
    rescale_blocks,
    row_max_sumexp,
    row_max_sumexp_inplace,
    row_max_sumexp_store,
    shift_of,
)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def logsumexp_rows(x, out):
    """out[i] = log(sum(exp(x[i]))) = m + log(sum(exp(x[i] - m))).

    A NaN logit gives NaN (maxnum drops it from m, but not from s); an all -inf
    row gives -inf (s = 0); a +inf logit gives +inf, NaN if the row also has a NaN.
    """
    for i in prange(x.shape[0]):
        m, s = row_max_sumexp(x[i])
        out[i] = m + math.log(s) if m != np.inf else inf_max_lse(x[i])
    return out


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def softmax_rows(x, out, inplace, nchunks):
    """out[i] = exp(x[i] - m) / sum(exp(x[i] - m)); ``inplace`` says out is x.

    Each element is exponentiated once: the first pass stores exp(x - running max)
    into out, the second multiplies each block by exp(block shift - m) / s.
    """
    N, C = x.shape
    nchunks = max(1, min(N, nchunks))
    for k in prange(nchunks):
        shifts = np.empty((C + BLOCK - 1) // BLOCK, dtype=np.float64)
        for i in range(k * N // nchunks, (k + 1) * N // nchunks):
            orow = out[i]
            if inplace:
                m, s = row_max_sumexp_inplace(orow, shifts)
            else:
                m, s = row_max_sumexp_store(x[i], orow, shifts)
            rescale_blocks(orow, shifts, m, 1.0 / s)
    return out


# No reassociation here: (x - m) - log(s) must not become x - (m + log(s)),
# which would round m + log(s) at the scale of m.
@njit(parallel=True, fastmath={"contract"}, cache=True)
def log_softmax_rows(x, out, inplace):
    """out[i] = (x[i] - m) - log(sum(exp(x[i] - m))); ``inplace`` says out is x."""
    for i in prange(x.shape[0]):
        row = x[i]
        m, s = row_max_sumexp(row)
        shift = shift_of(m, row)
        ls = row.dtype.type(math.log(s))
        if inplace:  # one array in the loop: no failing run-time overlap check
            for c in range(row.shape[0]):
                row[c] = (row[c] - shift) - ls
        else:
            orow = out[i]
            for c in range(row.shape[0]):
                orow[c] = (row[c] - shift) - ls
    return out
