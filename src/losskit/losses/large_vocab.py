"""The language-model head without the logits: chunked fused linear cross-entropy.

``linear_cross_entropy(hidden, weight, labels)`` is the softmax cross-entropy
of ``hidden @ weight.T (+ bias)`` against integer labels, computed a chunk of
tokens at a time so that at most one chunk of logits (and of their gradient)
exists at once. Each chunk's logits are computed by one matrix product, turned
into the chunk's loss and logit gradient in place (one fused row pass), and
the gradient then goes into the two products that give the gradients of
``hidden`` (this chunk's rows) and ``weight``/``bias`` (accumulated across
chunks into preallocated arrays). Backends:

* NumPy: the products by NumPy's BLAS (the weight gradient accumulated by the
  BLAS's own ``gemm`` with beta = 1, no temporary of the weight's size, in
  vocabulary blocks so that the BLAS's packing stays small), the row pass by
  the numba kernel ``kernels._linear``, else by array-API code. From
  ``_FUSED_MIN_V`` classes up, without a soft cap, the hidden states' gradient
  ``G W`` is folded into the logits' pass over the weight (``_fused_chunks``:
  an online softmax per vocabulary block, the block of the weight still in
  cache for its second product), which OpenBLAS runs faster than a separate
  ``G W`` with the vocabulary as inner dimension. The row pass
  runs serially between the BLAS calls: it is a few percent of the time, and
  numba's parallel version, measured in the same loop at 4096 x 1024 x 32000,
  took 2.7-5.2 s against 2.7-2.9 s serial (OpenBLAS's threads spin on the
  other core after each product).
* PyTorch: a ``torch.autograd.Function`` (``_LinearCrossEntropyFn``). On CPU for
  float32/float64 the products run in torch and the row pass in the numba
  kernel through zero-copy NumPy views, on the OpenMP threads of torch's BLAS
  where torch has GNU OpenMP (``kernels._linear_team``: those threads spin right
  after each product, so they are the ones free to take the row pass), else on
  the calling thread; elsewhere (bfloat16/float16, GPU) the
  row pass is torch code in float32. For "mean"/"sum" the gradients are
  computed in forward and scaled by the upstream gradient in backward, in
  place (one backward); "none" recomputes in backward (``retain_graph=True``
  works). The class and sample weights are differentiated too: the function
  takes the rows' reduction coefficients and the class weights as inputs.
* JAX: a ``jax.custom_vjp`` over a ``lax.scan`` of the chunks, jit-compatible.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import math
import os
from typing import Any, NamedTuple

import numpy as np

from .._backend import (
    Array,
    cast,
    compute_dtype,
    is_numpy,
    is_torch_tensor,
    namespace,
    shape_of,
)
from .._config import core_rules, kernels_allowed
from .._gradient import differentiable
from .._validation import (
    check_floating,
    check_fraction,
    check_ignore_index,
    check_label_range,
    check_labels_dtype,
    check_numeric,
    check_real,
    check_reduction,
    check_weight_values,
)
from ..kernels import _omp_team  # its fork hook must be in place before any fork

__all__ = ["LinearCrossEntropyOutput", "linear_cross_entropy"]

#: The default chunk: as many rows as ``DEFAULT_CHUNK_BYTES`` of logits hold, within
#: [``DEFAULT_MIN_ROWS``, ``DEFAULT_MAX_ROWS``]. Measured on the 2-core machine: the
#: BLAS runs chunks of 256-512 rows within 5-15% of the full-size products (fewer
#: rows slow them down), and 40 MiB keeps the memory above the inputs and the
#: gradients under 64 MB at V = 32000 (316 rows); at V = 128256 the 256-row floor
#: gives 131 MB of logits.
DEFAULT_CHUNK_BYTES = 40 << 20
#: The NumPy path's default: each chunk packs the weight twice and rewrites the weight
#: gradient once (OpenBLAS), traffic that fewer, larger chunks save: 456 rows ran
#: 4096 x 1024 x 32000 in 2.40 s against 2.52 s for 316 (the minimum of interleaved
#: runs), 61 MB above the gradients; the torch path keeps 40 MiB (its buffers take
#: 10 MB more).
NUMPY_CHUNK_BYTES = 56 << 20
DEFAULT_MIN_ROWS = 256
DEFAULT_MAX_ROWS = 4096
#: The smallest chunk a memory budget may make (below it the products slow down).
MIN_CHUNK_ROWS = 16


class LinearCrossEntropyOutput(NamedTuple):
    """What ``linear_cross_entropy(..., return_aux=True)`` returns.

    ``loss``: the loss (z-loss included), reduced as asked. ``z_loss``: the
    z-loss term alone, reduced the same way (0 when ``z_loss=0``). ``lse``:
    the log-sum-exp of every token's (soft-capped) logits, shape of
    ``labels``, float32 for half-precision input, not differentiable (also
    given for ignored tokens).
    """

    loss: Any
    z_loss: Any
    lse: Any


# --------------------------------------------------------------------------- validation, plan


class _Plan(NamedTuple):
    xp: Any
    h2: Any  # (N, D)
    weight: Any  # (V, D)
    bias: Any  # (V,) or None
    y: Any  # (N,) int64 labels, 0 where not counted
    counted: Any  # (N,) bool
    w: Any  # (V,) class weights in the compute dtype (ones when None)
    has_cw: bool
    s: Any  # (N,) sample weights or None
    a_ce: Any  # (N,) d value / d ce row (reduced) or the sample weight ("none")
    a_z: Any  # (N,) d value / d z-loss row
    bad: Any  # (N,) traced invalid mask or None
    batch: tuple[int, ...]
    eps: float
    zl: float
    cap: float
    reduction: str
    rows: int
    dtype: Any  # compute dtype


def _check_options(
    label_smoothing: Any, z_loss: Any, softcap: Any, chunk_size: Any, memory_budget: Any
) -> tuple[float, float, float]:
    eps = check_fraction("label_smoothing", label_smoothing)
    zl = check_real("z_loss", z_loss, "a finite number >= 0", lambda v: 0 <= v < math.inf)
    cap = 0.0
    if softcap is not None:
        cap = check_real("softcap", softcap, "None or a finite number > 0", _positive_finite)
    for name, value in (("chunk_size", chunk_size), ("memory_budget", memory_budget)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            msg = f"`{name}` must be None or a positive int; got {value!r}"
            raise TypeError(msg)
        if value <= 0:
            msg = f"`{name}` must be None or a positive int; got {value!r}"
            raise ValueError(msg)
    return eps, zl, cap


def _positive_finite(v: float) -> bool:
    return 0 < v < math.inf


def chunk_rows(
    n: int,
    v: int,
    itemsize: int,
    chunk_size: int | None,
    memory_budget: int | None,
    *,
    default_bytes: int = DEFAULT_CHUNK_BYTES,
) -> int:
    """Rows per chunk: ``chunk_size``, else what ``memory_budget`` bytes of logits allow
    (at least ``MIN_CHUNK_ROWS``), else the default (``DEFAULT_CHUNK_BYTES`` of
    logits, or ``default_bytes``, within [``DEFAULT_MIN_ROWS``, ``DEFAULT_MAX_ROWS``]);
    balanced so that the last chunk is not a sliver.

    >>> chunk_rows(4096, 32000, 4, None, None), chunk_rows(2048, 128256, 4, None, None)
    (316, 256)
    >>> chunk_rows(4096, 128256, 4, None, 2**26)
    128
    """
    if chunk_size is not None:
        return max(1, min(int(chunk_size), max(n, 1)))
    per_row = max(1, v * itemsize)
    if memory_budget is not None:
        rows = max(MIN_CHUNK_ROWS, int(memory_budget) // per_row)
    else:
        rows = min(DEFAULT_MAX_ROWS, max(DEFAULT_MIN_ROWS, default_bytes // per_row))
    rows = max(1, min(rows, n))
    nchunks = -(-n // rows) if n else 1
    return -(-n // nchunks) if n else 1


def _plan(
    hidden: Any,
    weight: Any,
    labels: Any,
    bias: Any,
    class_weight: Any,
    ignore_index: Any,
    label_smoothing: Any,
    z_loss: Any,
    softcap: Any,
    reduction: Any,
    sample_weight: Any,
    chunk_size: Any,
    memory_budget: Any,
) -> _Plan:
    xp, hidden, weight, labels, bias, class_weight, sample_weight = namespace(
        hidden,
        weight,
        labels,
        bias,
        class_weight,
        sample_weight,
        names=("weight", "labels", "bias", "class_weight", "sample_weight"),
    )
    reduction = check_reduction(reduction)
    check_floating(xp, "hidden", hidden)
    check_floating(xp, "weight", weight)
    check_labels_dtype(xp, labels)
    eps, zl, cap = _check_options(label_smoothing, z_loss, softcap, chunk_size, memory_budget)
    ignore_index = check_ignore_index(ignore_index)
    if len(hidden.shape) < 1:
        msg = "`hidden` must have a feature axis (shape (..., D)); got a 0-d array"
        raise ValueError(msg)
    d = int(hidden.shape[-1])
    if len(weight.shape) != 2 or int(weight.shape[1]) != d:
        msg = (
            f"`weight` must have shape (V, {d}) for `hidden` of shape {shape_of(hidden)}; "
            f"got {shape_of(weight)}"
        )
        raise ValueError(msg)
    if weight.dtype != hidden.dtype:
        msg = f"`weight` must have the dtype of `hidden` ({hidden.dtype}); got {weight.dtype}"
        raise TypeError(msg)
    v = int(weight.shape[0])
    if v == 0:
        msg = "`weight` must have at least one row (class); got shape (0, D)"
        raise ValueError(msg)
    batch = shape_of(hidden)[:-1]
    if shape_of(labels) != batch:
        msg = (
            f"`labels` must have the shape of `hidden` without its last axis {batch}; "
            f"got {shape_of(labels)}"
        )
        raise ValueError(msg)
    if bias is not None:
        if shape_of(bias) != (v,):
            msg = f"`bias` must have shape ({v},); got {shape_of(bias)}"
            raise ValueError(msg)
        if bias.dtype != hidden.dtype:
            msg = f"`bias` must have the dtype of `hidden` ({hidden.dtype}); got {bias.dtype}"
            raise TypeError(msg)
    dtype = compute_dtype(xp, hidden.dtype)
    n = math.prod(batch)
    h2 = xp.reshape(hidden, (n, d))
    y = xp.reshape(labels, (n,))
    bad = check_label_range(xp, y, v, ignore_index)
    if class_weight is not None:
        if shape_of(class_weight) != (v,):
            msg = (
                f"`class_weight` must have one weight per class, shape ({v},); "
                f"got {shape_of(class_weight)}"
            )
            raise ValueError(msg)
        check_numeric(xp, "class_weight", class_weight)
        if core_rules():
            cw_bad = check_weight_values(xp, "class_weight", class_weight)
            if cw_bad is not None:
                any_bad = xp.any(cw_bad)
                bad = any_bad if bad is None else bad | any_bad
        w = cast(xp, class_weight, dtype)
    else:
        w = xp.ones((v,), dtype=dtype, device=_device(hidden))
    counted = (y != ignore_index) if ignore_index is not None else xp.ones_like(y, dtype=xp.bool)
    if bad is not None:
        bad = xp.broadcast_to(bad, (n,))
        counted = counted & ~bad
    y_safe = xp.where(counted, y, xp.zeros_like(y))
    y_safe = cast(xp, y_safe, xp.int64)
    # Reduction coefficients (float64 on NumPy and torch CPU: they are O(N)).
    cdt = xp.float64 if _float64_ok(xp, hidden) else dtype
    cnt = cast(xp, counted, cdt)
    s = None
    if sample_weight is not None:
        check_numeric(xp, "sample_weight", sample_weight)
        sw_shape = shape_of(sample_weight)
        if sw_shape != batch[: len(sw_shape)]:
            msg = (
                f"`sample_weight` must have the shape of `labels` {batch} or a leading "
                f"part of it; got {sw_shape}"
            )
            raise ValueError(msg)
        sw = xp.reshape(
            cast(xp, sample_weight, cdt), sw_shape + (1,) * (len(batch) - len(sw_shape))
        )
        s = xp.reshape(xp.broadcast_to(sw, batch), (n,))
    wy = xp.take(cast(xp, w, cdt), y_safe) if class_weight is not None else None
    base = cnt if s is None else s * cnt
    if reduction == "mean":
        den_ce = xp.sum(base if wy is None else base * wy)
        den_z = xp.sum(base)
        a_ce = _safe_div(xp, base, den_ce)
        a_z = _safe_div(xp, base, den_z) if wy is not None else a_ce
    else:
        a_ce = a_z = base
    default_bytes = NUMPY_CHUNK_BYTES if is_numpy(xp) else DEFAULT_CHUNK_BYTES
    rows = chunk_rows(
        n, v, _itemsize(dtype), chunk_size, memory_budget, default_bytes=default_bytes
    )
    return _Plan(
        xp, h2, weight, bias, y_safe, counted, w, class_weight is not None, s, a_ce, a_z,
        bad, batch, eps, zl, cap, reduction, rows, dtype,
    )  # fmt: skip


def _itemsize(dtype: Any) -> int:
    size = getattr(dtype, "itemsize", None)
    return int(size) if isinstance(size, int) else int(np.dtype(dtype).itemsize)


def _np_dtype(dtype: Any) -> Any:
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(str(dtype).replace("torch.", "")) if "float" in str(dtype) else np.float32


def _device(x: Any) -> Any:
    if is_torch_tensor(x):
        return x.device
    import array_api_compat

    return array_api_compat.device(x)


def _float64_ok(xp: Any, x: Any) -> bool:
    if is_numpy(xp):
        return True
    if is_torch_tensor(x):
        return x.device.type == "cpu"
    return False  # JAX: float64 only with x64 on; stay in the compute dtype


def _safe_div(xp: Any, num: Any, den: Any) -> Any:
    """num / den, 0 where den == 0 (nothing counted: the mean is 0, never NaN)."""
    ok = den != 0
    return xp.where(ok, num / xp.where(ok, den, xp.ones_like(den)), xp.zeros_like(num))


# --------------------------------------------------------------------------- portable chunk math


def _chunk_math(
    xp: Any,
    z: Any,
    p: _Plan,
    y: Any,
    counted: Any,
    a_ce: Any,
    a_z: Any,
    do_grad: bool,
    col: bool = False,
) -> tuple[Any, Any, Any, Any, Any]:
    """(ce, lse, dz, z'[y], colsum) of one chunk of logits ``z`` (compute dtype, bias added)
    in array-API code; ``colsum = Σ_rows a_ce z'`` over counted rows with ``col``, else None."""
    v = z.shape[-1]
    if p.cap:
        t = xp.tanh(z / p.cap)
        z = p.cap * t
    m = xp.max(z, axis=-1, keepdims=True)
    ex = xp.exp(z - m)
    ssum = xp.sum(ex, axis=-1, keepdims=True)
    lse = (m + xp.log(ssum))[..., 0]
    zy = xp.take_along_axis(z, y[:, None], axis=-1)[..., 0]
    w = p.w
    wy = xp.take(w, y)
    hard = (1 - p.eps) * wy
    ce = hard * (lse - zy)
    wsum = xp.sum(w)
    if p.eps:
        ce = ce + (p.eps / v) * (wsum * lse - xp.sum(w * z, axis=-1))
    zero = xp.zeros_like(ce)
    ce = xp.where(counted, ce, zero)
    if not do_grad:
        return ce, lse, None, zy, None
    a_ce = cast(xp, a_ce, z.dtype)
    a_z = cast(xp, a_z, z.dtype)
    a_ce = xp.where(counted, a_ce, xp.zeros_like(a_ce))
    a_z = xp.where(counted, a_z, xp.zeros_like(a_z))
    colsum = xp.sum(a_ce[:, None] * z, axis=0) if col else None  # Σ_i a_ce_i z'_ic
    coef = a_ce * (hard + p.eps * wsum / v) + a_z * (2 * p.zl) * lse
    g = (ex / ssum) * coef[:, None]
    onehot = y[:, None] == xp.arange(v, device=_device(z))[None, :]
    g = g - xp.where(onehot, (a_ce * hard)[:, None], xp.zeros_like(g))
    if p.eps:
        g = g - (a_ce * (p.eps / v))[:, None] * w[None, :]
    if p.cap:
        g = g * (1 - t * t)
    return ce, lse, g, zy, colsum


def _class_weight_grad(xp: Any, p: _Plan, c: Any, lse: Any, zy: Any, colsum: Any, v: int) -> Any:
    """``Σ_i c_i ∂ce_i/∂w_k`` for every class k: the derivative in the class weights with
    the rows' coefficients ``c`` (the reduction's a_ce, times the upstream gradient) held.

    ``ce_i = (1-ε) w_{y_i} (lse_i - z'_{i y_i}) + ε/V Σ_k w_k (lse_i - z'_{ik})``, so
    ``∂ce_i/∂w_k = (1-ε) [k = y_i] (lse_i - z'_{i y_i}) + ε/V (lse_i - z'_{ik})``; summed:
    a scatter of the first term onto the labels, plus ``ε/V (Σ_i c_i lse_i - colsum_k)``
    with ``colsum_k = Σ_i c_i z'_{ik}`` from the chunk pass. (The "mean" denominators'
    share comes from differentiating ``c`` itself, outside.)
    """
    c = cast(xp, c, lse.dtype)
    c = xp.where(p.counted, c, xp.zeros_like(c))
    hard = (1 - p.eps) * c * (lse - cast(xp, zy, lse.dtype))
    hard = xp.where(p.counted, hard, xp.zeros_like(hard))
    out = _scatter_add(xp, p.y, hard, v)
    if p.eps:
        out = out + (p.eps / v) * (xp.sum(c * lse) - cast(xp, colsum, lse.dtype))
    return out


def _scatter_add(xp: Any, idx: Any, vals: Any, v: int) -> Any:
    """out (v,) with out[k] = Σ_{i: idx_i = k} vals_i."""
    if is_numpy(xp):
        return np.bincount(np.asarray(idx), weights=np.asarray(vals), minlength=v).astype(
            vals.dtype, copy=False
        )
    if is_torch_tensor(vals):
        import torch

        return torch.zeros(v, dtype=vals.dtype, device=vals.device).index_add_(0, idx, vals)
    return xp.zeros((v,), dtype=vals.dtype).at[idx].add(vals)


# --------------------------------------------------------------------------- NumPy / CPU chunks


_GEMM_LIBS: dict[str, Any] = {}


def _cblas_gemm(dtype: Any) -> Any:
    """NumPy's own BLAS ``cblas_?gemm`` through ctypes (for beta = 1), or None."""
    key = np.dtype(dtype).char
    if key in _GEMM_LIBS:
        return _GEMM_LIBS[key]
    fn = None
    letter = "s" if key == "f" else "d"
    libdir = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name, itype in (
            (f"scipy_cblas_{letter}gemm64_", ctypes.c_int64),
            (f"cblas_{letter}gemm64_", ctypes.c_int64),
            (f"scipy_cblas_{letter}gemm", ctypes.c_int),
            (f"cblas_{letter}gemm", ctypes.c_int),
        ):
            f = getattr(lib, name, None)
            if f is not None:
                real = ctypes.c_float if letter == "s" else ctypes.c_double
                f.restype = None
                f.argtypes = [ctypes.c_int] * 3 + [itype] * 3 + [real, ctypes.c_void_p, itype]
                f.argtypes += [ctypes.c_void_p, itype, real, ctypes.c_void_p, itype]
                fn = f
                break
        if fn is not None:
            break
    _GEMM_LIBS[key] = fn
    return fn


#: The products with the weight run over vocabulary blocks of about this many bytes:
#: both BLAS libraries copy (pack) the transposed operand whole, which at full width
#: was another chunk of logits in memory (46 MiB at 373 x 32000 float32, measured).
_PACK_BYTES = 4 << 20


def _vocab_blocks(v: int, rows: int, itemsize: int) -> range:
    step = max(1024, _PACK_BYTES // max(1, rows * itemsize))
    return range(0, v, step)


def _acc_gt_h(dw: np.ndarray, g: np.ndarray, h: np.ndarray, first: bool = False) -> None:
    """dw (V, D) += g.T (V, n) @ h (n, D), without a temporary of dw's size where possible;
    ``first``: dw = g.T @ h (dw's old content, maybe uninitialised, is not read)."""
    gemm = _cblas_gemm(dw.dtype) if g.dtype == dw.dtype == h.dtype else None
    n, v = g.shape
    d = h.shape[1]
    blocks = _vocab_blocks(v, n, g.itemsize)
    if gemm is None:
        for v0 in blocks:
            v1 = min(v, v0 + blocks.step)
            if first:
                dw[v0:v1] = g[:, v0:v1].T @ h
            else:
                dw[v0:v1] += (g[:, v0:v1].T @ h).astype(dw.dtype, copy=False)
        return
    # Row-major: C (V, D) = 1 * A^T (A: n x V) @ B (n x D) + 1 * C, a block of V at a time
    item = g.itemsize
    beta = 0.0 if first else 1.0
    for v0 in blocks:
        m = min(v, v0 + blocks.step) - v0
        a_ptr, c_ptr = g.ctypes.data + item * v0, dw.ctypes.data + item * v0 * d
        gemm(101, 112, 111, m, d, n, 1.0, a_ptr, v, h.ctypes.data, d, beta, c_ptr, d)


#: The largest vocabulary for which ``G W`` runs as the plain product. Measured with
#: OpenBLAS (2 threads, float32, chunks of 256-316 rows, the minimum of interleaved
#: runs): g @ W took 108 ms against 126 ms for (W.T @ g.T).T at D x V = 2048 x 32000,
#: 65 against 72 ms at 1024 x 32000, the same at 256 x 32000; but 758 against 478 ms
#: at 1024 x 128256 and 1274 against 946 ms at 2048 x 128256.
_PLAIN_DH_MAX_V = 65536


class _NumpyProducts:
    """The three products on NumPy arrays (NumPy's BLAS)."""

    #: The fused chunk's vocabulary block (columns of logits per product pair).
    fused_block = 1024
    #: No threads to hand the row pass to: OpenBLAS's threads spin after its products,
    #: and OpenBLAS offers no way to run other work on them (see ``kernels._omp_team``).
    row_team: Any = None

    def __init__(self, h2: np.ndarray, weight: np.ndarray, rows: int) -> None:
        self.h2, self.weight, self.weight_np = h2, weight, weight
        self.plain = weight.shape[0] <= _PLAIN_DH_MAX_V
        self.rows = rows
        self.dh_t: np.ndarray | None = None  # (D, rows), allocated on first use
        self.gemm: Any = _cblas_gemm(weight.dtype) if h2.dtype == weight.dtype else None
        self.fused_ok = self.gemm is not None

    def logits_block(self, i0: int, i1: int, v0: int, v1: int, z: np.ndarray) -> None:
        """z[:, v0:v1] = h[i0:i1] @ W[v0:v1].T (z: the chunk's C-contiguous logits)."""
        n, v = z.shape
        d = self.h2.shape[1]
        item = z.itemsize
        h_ptr = self.h2.ctypes.data + item * i0 * d
        w_ptr = self.weight.ctypes.data + item * v0 * d
        self.gemm(
            101, 111, 112, n, v1 - v0, d, 1.0, h_ptr, d, w_ptr, d, 0.0, z.ctypes.data + item * v0, v
        )

    def acc_block(self, e: np.ndarray, v0: int, v1: int, acc: np.ndarray, first: bool) -> None:
        """acc (= if first, else +=) e (n, v1-v0) @ W[v0:v1] (all C-contiguous)."""
        n, d = acc.shape
        w_ptr = self.weight.ctypes.data + e.itemsize * v0 * d
        beta = 0.0 if first else 1.0
        gemm, e_ptr, a_ptr, k = self.gemm, e.ctypes.data, acc.ctypes.data, v1 - v0
        gemm(101, 111, 111, n, d, k, 1.0, e_ptr, k, w_ptr, d, beta, a_ptr, d)

    def logits(self, i0: int, i1: int, out: np.ndarray) -> None:
        np.matmul(self.h2[i0:i1], self.weight.T, out=out)

    def d_hidden(self, g: np.ndarray, out: np.ndarray) -> None:
        if self.plain:
            np.matmul(g, self.weight, out=out)
            return
        if self.dh_t is None:
            self.dh_t = np.empty((self.weight.shape[1], self.rows), dtype=self.weight.dtype)
        # (W.T @ g.T).T: at V = 128256 OpenBLAS ran g @ W (no operand transposed, a
        # long inner dimension V) 1.3-1.6x slower than this form and the small copy.
        t = self.dh_t[:, : g.shape[0]]
        np.matmul(self.weight.T, g.T, out=t)
        out[...] = t.T

    def d_weight(
        self, g: np.ndarray, i0: int, i1: int, dw: np.ndarray, first: bool = False
    ) -> None:
        _acc_gt_h(dw, g, self.h2[i0:i1], first)


class _TorchProducts:
    """The three products on CPU torch tensors (torch's BLAS), NumPy views in and out."""

    #: The fused chunk (see ``_fused_chunks``) is not for MKL: measured at 512 x 2048 x
    #: 128256 (2 chunks, 6 interleaved runs, minimum): 2.66-2.70 s fused against
    #: 2.64-2.68 s for the three products apart (MKL's ``G W`` is within 5% of its
    #: full-size rate in 256-row chunks, where OpenBLAS's is not).
    fused_ok = False

    def __init__(self, h2: Any, weight: Any) -> None:
        import torch

        self.torch = torch
        self.h2, self.weight = h2, weight
        # The row pass runs on the BLAS's own OpenMP threads, which spin right after
        # each product (numba's would share a core with them): 4.5 against 9.1 ms on
        # one thread for a 316 x 32000 chunk, 2 threads. None: one thread.
        self.row_threads = torch.get_num_threads()
        self.row_team = _row_team() if self.row_threads > 1 else None

    def logits(self, i0: int, i1: int, out: np.ndarray) -> None:
        # In vocabulary blocks: MKL packed a quarter of the weight for the full-width
        # product (31 MiB at 32000 x 1024, measured), a block's product a few MiB.
        t = self.torch
        hc, wt, zt = self.h2[i0:i1], self.weight, t.from_numpy(out)
        blocks = _vocab_blocks(out.shape[1], out.shape[0], out.itemsize)
        for v0 in blocks:
            v1 = min(out.shape[1], v0 + blocks.step)
            t.matmul(hc, wt[v0:v1].T, out=zt[:, v0:v1])

    def d_hidden(self, g: np.ndarray, out: np.ndarray) -> None:
        t = self.torch
        t.matmul(t.from_numpy(g), self.weight, out=t.from_numpy(out))

    def d_weight(
        self, g: np.ndarray, i0: int, i1: int, dw: np.ndarray, first: bool = False
    ) -> None:
        t = self.torch
        hc, gt, dwt = self.h2[i0:i1], t.from_numpy(g), t.from_numpy(dw)
        blocks = _vocab_blocks(g.shape[1], g.shape[0], g.itemsize)
        for v0 in blocks:  # in blocks, as _acc_gt_h (MKL packs the operand too)
            v1 = min(g.shape[1], v0 + blocks.step)
            if first:
                t.matmul(gt[:, v0:v1].T, hc, out=dwt[v0:v1])
            else:
                dwt[v0:v1].addmm_(gt[:, v0:v1].T, hc)


def _row_team() -> Any:
    return _omp_team.torch_team()


#: A chunk smaller than this many logits keeps the row pass on the calling thread
#: (below ~0.1 ms of work, waking a second thread is not worth it).
_ROW_TEAM_MIN = 1 << 17


def _use_kernel(dtype: Any) -> bool:
    if np.dtype(dtype) not in (np.float32, np.float64) or not kernels_allowed():
        return False
    from ..kernels import dispatch

    return dispatch._have_numba()


def _cpu_chunks(
    p: _Plan,
    products: Any,
    bias: np.ndarray | None,
    y: np.ndarray,
    counted: np.ndarray,
    w: np.ndarray,
    a_ce: np.ndarray,
    a_z: np.ndarray,
    do_grad: bool,
    dh: np.ndarray | None,
    dw: np.ndarray | None,
    db: np.ndarray | None,
    dtype: Any,
    col: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The chunk loop on CPU arrays: (ce, lse, z'[y]) rows in float64 and, with ``col``,
    the column sums ``Σ_i a_ce_i z'_i`` (float64, for the class weights' derivative);
    gradients into dh/dw/db (``dw`` is overwritten by the first chunk: it may come
    uninitialised, ``db`` must come zeroed)."""
    n = y.shape[0]
    v = w.shape[0]
    ce = np.zeros(n, dtype=np.float64)
    lse = np.zeros(n, dtype=np.float64)
    zy = np.zeros(n, dtype=np.float64)
    colsum = np.zeros(v if col else 1, dtype=np.float64)
    if n == 0:
        return ce, lse, zy, (colsum if col else None)
    rows = p.rows
    buf = np.empty((min(rows, n), v), dtype=dtype)
    kernel = None
    cut = 0.0
    team = None
    if _use_kernel(dtype):
        from ..kernels import _linear, dispatch

        dispatch.threading_layer()
        kernel = _linear.lce_rows_serial
        cut = _linear.cut_for(dtype)
        if products.row_team is not None and not (col and do_grad):  # no racing column sums
            from ..kernels import _linear_team

            team = products.row_team
    has_bias = bias is not None
    b = bias if bias is not None else np.zeros(1, dtype=dtype)
    wk = np.ascontiguousarray(w, dtype=dtype)
    ones = np.ones(min(rows, n), dtype=dtype) if (do_grad and db is not None) else None
    fused = (
        kernel is not None and do_grad and dh is not None and not p.cap
        and not col and v >= _FUSED_MIN_V and products.fused_ok
    )  # fmt: skip
    if fused:
        assert dh is not None
        _fused_chunks(
            p, products, b, has_bias, y, counted, wk, a_ce, a_z, ce, lse, zy, buf, dh, dw, db,
            ones, cut,
        )  # fmt: skip
        return ce, lse, zy, None
    for i0 in range(0, n, rows):
        i1 = min(i0 + rows, n)
        z = buf[: i1 - i0]
        products.logits(i0, i1, z)
        if kernel is not None:
            args = (
                z, b, has_bias, y[i0:i1], counted[i0:i1], wk, p.eps, p.cap, p.zl,
                a_ce[i0:i1], a_z[i0:i1], do_grad, ce[i0:i1], lse[i0:i1], zy[i0:i1],
            )  # fmt: skip
            if team is not None and z.size >= _ROW_TEAM_MIN:
                _linear_team.lce_rows_on_team(team, products.row_threads, *args, cut)
            else:
                kernel(*args, col and do_grad, colsum, cut)
        else:
            zz = z + b if has_bias else z
            c_, l_, g, zy_, cs = _chunk_math(
                np, zz, p, y[i0:i1], counted[i0:i1], a_ce[i0:i1], a_z[i0:i1], do_grad, col
            )
            ce[i0:i1], lse[i0:i1], zy[i0:i1] = c_, l_, zy_
            if cs is not None:
                colsum += cs
            if do_grad:
                z[...] = g
        if do_grad:
            if dh is not None:
                products.d_hidden(z, dh[i0:i1])
            if dw is not None:
                products.d_weight(z, i0, i1, dw, i0 == 0)
            if db is not None and ones is not None:
                db += ones[: i1 - i0] @ z
    return ce, lse, zy, (colsum if col else None)


#: The fused chunk (``kernels._linear``'s ``G W`` folded into the logits' pass over the
#: weight) from this vocabulary size up. MEASURED (see ``_fused_chunks``).
_FUSED_MIN_V = 65536


def _fused_chunks(
    p: _Plan,
    products: Any,
    b: np.ndarray,
    has_bias: bool,
    y: np.ndarray,
    counted: np.ndarray,
    wk: np.ndarray,
    a_ce: np.ndarray,
    a_z: np.ndarray,
    ce: np.ndarray,
    lse: np.ndarray,
    zy: np.ndarray,
    buf: np.ndarray,
    dh: np.ndarray,
    dw: np.ndarray | None,
    db: np.ndarray | None,
    ones: np.ndarray | None,
    cut: float,
) -> None:
    """The chunk loop with the hidden states' gradient folded into the logits' pass: per
    chunk, per vocabulary block, ``Z_b = H W_bᵀ``, then (the row kernel) the rows' running
    max and sum and ``E_b = exp(Z_b - m)``, then ``acc += E_b W_b`` while ``W_b`` is in
    cache; after the last block the row kernel writes the loss rows, the logit gradient
    (in place, for ``Gᵀ H``) and ``dh`` from ``acc``. No soft cap, no column sums."""
    from ..kernels import _linear

    n, v = y.shape[0], wk.shape[0]
    d = dh.shape[1]
    rows, dtype = buf.shape[0], buf.dtype
    step = products.fused_block
    m = np.empty(rows, dtype=np.float64)
    s = np.empty(rows, dtype=np.float64)
    sw = np.zeros(rows, dtype=np.float64)
    acc_buf = np.empty(rows * d, dtype=dtype)
    e_buf = np.empty(rows * min(step, v), dtype=dtype)
    smooth = p.eps != 0
    ww = (wk @ products.weight_np) if smooth else np.zeros(1, dtype=dtype)
    weight = products.weight_np
    for i0 in range(0, n, rows):
        i1 = min(i0 + rows, n)
        k = i1 - i0
        z = buf[:k]
        mc, sc, swc = m[:k], s[:k], sw[:k]
        mc.fill(-np.inf)
        sc.fill(0.0)
        swc.fill(0.0)
        acc = acc_buf[: k * d].reshape(k, d)
        for v0 in range(0, v, step):
            v1 = min(v, v0 + step)
            e = e_buf[: k * (v1 - v0)].reshape(k, v1 - v0)
            products.logits_block(i0, i1, v0, v1, z)
            _linear.lce_block_stats(
                z, v0, v1, b, has_bias, wk, smooth, mc, sc, swc, e, acc, v0 == 0, cut
            )
            products.acc_block(e, v0, v1, acc, v0 == 0)
        _linear.lce_rows_finish(
            z, y[i0:i1], counted[i0:i1], wk, p.eps, p.zl, a_ce[i0:i1], a_z[i0:i1],
            ce[i0:i1], lse[i0:i1], zy[i0:i1], mc, sc, swc, acc, ww, weight, dh[i0:i1], cut,
        )  # fmt: skip
        if dw is not None:
            products.d_weight(z, i0, i1, dw, i0 == 0)
        if db is not None and ones is not None:
            db += ones[:k] @ z


def _numpy_core(p: _Plan, do_grad: bool) -> tuple[Any, Any, Any, Any, Any]:
    """(ce, lse, dh, dw, db) for NumPy input; gradients in the input's dtype."""
    dtype = np.dtype(p.dtype)
    h2 = np.ascontiguousarray(p.h2, dtype=dtype)
    wt = np.ascontiguousarray(p.weight, dtype=dtype)
    bias = None if p.bias is None else np.ascontiguousarray(p.bias, dtype=dtype)
    n, d = h2.shape
    v = wt.shape[0]
    dh = np.empty((n, d), dtype=dtype) if do_grad else None
    # overwritten by the first chunk (no pass to zero a weight-sized array)
    dw = (np.empty if n else np.zeros)((v, d), dtype=dtype) if do_grad else None
    db = np.zeros(v, dtype=dtype) if (do_grad and bias is not None) else None
    ce, lse, _, _ = _cpu_chunks(
        p, _NumpyProducts(h2, wt, min(p.rows, max(n, 1))), bias, np.asarray(p.y, dtype=np.int64),
        np.asarray(p.counted, dtype=np.bool_), np.asarray(p.w), _f64(p.a_ce), _f64(p.a_z),
        do_grad, dh, dw, db, dtype,
    )  # fmt: skip
    if do_grad:
        out_dt = p.h2.dtype
        dh = dh.astype(out_dt, copy=False)  # type: ignore[union-attr]
        dw = dw.astype(out_dt, copy=False)  # type: ignore[union-attr]
        db = None if db is None else db.astype(out_dt, copy=False)
    return ce, lse, dh, dw, db


def _f64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=np.float64), np.shape(a)))


# --------------------------------------------------------------------------- torch


def _torch_fast(p: _Plan) -> bool:
    import torch

    h = p.h2
    return (
        h.device.type == "cpu"
        and h.dtype in (torch.float32, torch.float64)
        and _use_kernel(_np_dtype(h.dtype))
    )


def _torch_core(
    p: _Plan, a_ce: Any, a_z: Any, do_grad: bool, need: tuple[bool, bool, bool, bool]
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """(ce, lse, dh, dw, db, d class_weight) for torch tensors (no autograd inside); the
    gradients of ``need`` (hidden, weight, bias, class weights) only, in the input dtype.

    ``d class_weight`` is the derivative in ``p.w`` with ``a_ce`` held (see
    :func:`_class_weight_grad`), None unless asked for and there are class weights.
    """
    import torch

    with torch.no_grad():
        h2 = p.h2.detach().contiguous()
        wt = p.weight.detach().contiguous()
        bias = None if p.bias is None else p.bias.detach().contiguous()
        a_ce, a_z = a_ce.detach(), a_z.detach()
        n, d = h2.shape
        v = wt.shape[0]
        cw = do_grad and need[3] and p.has_cw
        col = cw and p.eps != 0  # the column sums enter with smoothing only
        if _torch_fast(p):
            dt = h2.dtype
            # only the gradients some input asks for (a frozen head skips G^T h)
            dh = torch.empty((n, d), dtype=dt) if do_grad and need[0] else None
            alloc = torch.empty if n else torch.zeros  # dw: overwritten by the first chunk
            dw = alloc((v, d), dtype=dt) if do_grad and need[1] else None
            db = torch.zeros(v, dtype=dt) if do_grad and need[2] and bias is not None else None
            ce_n, lse_n, zy_n, colsum = _cpu_chunks(
                p, _TorchProducts(h2, wt), None if bias is None else bias.numpy(),
                p.y.numpy(), p.counted.numpy(), p.w.detach().numpy(),
                _f64(a_ce.numpy()), _f64(a_z.numpy()), do_grad,
                None if dh is None else dh.numpy(), None if dw is None else dw.numpy(),
                None if db is None else db.numpy(), np.dtype(_np_dtype(dt)), col,
            )  # fmt: skip
            ce, lse, zy = (torch.from_numpy(a) for a in (ce_n, lse_n, zy_n))
            dcw = None
            if cw:
                cs = None if colsum is None else torch.from_numpy(colsum)
                dcw = _class_weight_grad(p.xp, p, a_ce, lse, zy, cs, v).to(p.w.dtype)
            return ce, lse, dh, dw, db, dcw
        return _torch_generic(p, h2, wt, bias, a_ce, a_z, do_grad, cw)


def _torch_generic(
    p: _Plan, h2: Any, wt: Any, bias: Any, a_ce: Any, a_z: Any, do_grad: bool, cw: bool
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """Chunks in torch ops: products in the input dtype, the row pass in the compute dtype;
    the weight and bias gradients accumulate in the compute dtype (float32 for half);
    with ``cw``, the derivative in the class weights too."""
    import torch

    from .._backend import _torch_xp

    xp = _torch_xp()
    n, d = h2.shape
    v = wt.shape[0]
    cdt = p.dtype
    ce = torch.zeros(n, dtype=cdt, device=h2.device)
    lse = torch.zeros(n, dtype=cdt, device=h2.device)
    zy = torch.zeros(n, dtype=cdt, device=h2.device)
    col = cw and p.eps != 0
    colsum = torch.zeros(v, dtype=cdt, device=h2.device) if col else None
    dh = torch.empty((n, d), dtype=h2.dtype, device=h2.device) if do_grad else None
    dw = torch.zeros((v, d), dtype=cdt, device=h2.device) if do_grad else None
    db = torch.zeros(v, dtype=cdt, device=h2.device) if (do_grad and bias is not None) else None
    b_c = None if bias is None else bias.to(cdt)
    w = p.w.detach()
    q = p._replace(w=w)
    for i0 in range(0, n, p.rows):
        i1 = min(i0 + p.rows, n)
        hc = h2[i0:i1]
        z = (hc @ wt.T).to(cdt)
        if b_c is not None:
            z = z + b_c
        c_, l_, g, zy_, cs = _chunk_math(
            xp, z, q, p.y[i0:i1], p.counted[i0:i1], a_ce[i0:i1], a_z[i0:i1], do_grad, col
        )
        ce[i0:i1], lse[i0:i1], zy[i0:i1] = c_, l_, zy_
        if colsum is not None:
            colsum += cs
        if do_grad:
            assert dh is not None and dw is not None
            dh[i0:i1] = (g.to(h2.dtype) @ wt) if h2.dtype != cdt else g @ wt
            dw.addmm_(g.T, hc.to(cdt))
            if db is not None:
                db += g.sum(0)
    if dw is not None:
        dw = dw.to(h2.dtype)
    if db is not None:
        db = db.to(h2.dtype)
    dcw = None
    if cw:
        dcw = _class_weight_grad(xp, q, a_ce, lse, zy, colsum, v).to(p.w.dtype)
    return ce, lse, dh, dw, db, dcw


_ONE_BACKWARD = (
    "linear_cross_entropy (reduction={!r}): backward was called a second time through the "
    "same loss; with reduction 'mean' or 'sum' the gradients are computed in forward, "
    "scaled in place by the first backward's upstream gradient and released, so there is "
    "nothing left for a second one (retain_graph=True cannot keep them). Compute the loss "
    "again, or use reduction='none', which recomputes in backward."
)


def _torch_fn() -> Any:
    import torch

    class _LinearCrossEntropyFn(torch.autograd.Function):
        """Forward: loss (+ its gradients for mean/sum); backward: scaled in place, once.

        Inputs: hidden, weight, bias, the rows' reduction coefficients ``a_ce`` and
        ``a_z`` (functions of sample_weight and class_weight, differentiated by autograd
        outside: the "mean" denominators), the class weights ``w`` and the plan.
        ``∂value/∂a_ce_i = ce_i``, ``∂value/∂a_z_i = λ lse_i²``, ``∂value/∂w`` by
        :func:`_class_weight_grad`.
        """

        @staticmethod
        def forward(
            ctx: Any, hidden: Any, weight: Any, bias: Any, a_ce: Any, a_z: Any, w: Any, p: _Plan
        ) -> Any:
            ng = ctx.needs_input_grad
            need = (ng[0], ng[1], bias is not None and ng[2], p.has_cw and ng[5])
            ctx.plan = p
            ctx.need = need
            ctx.used = False
            if p.reduction == "none":
                ce, lse, *_ = _torch_core(p, p.a_ce, p.a_z, False, need)
                ctx.grads = None
            else:
                ce, lse, dh, dw, db, dcw = _torch_core(p, p.a_ce, p.a_z, True, need)
                ctx.grads = [dh, dw, db, dcw]
            value, zterm = _reduce_value(p.xp, p, ce, lse)
            ce_eff, zr = _row_cotangents(p.xp, p, ce, lse)
            # saved through autograd: a second backward without retain_graph gets torch's
            # own error; "none" recomputes from them (and torch checks they are unchanged)
            if p.reduction == "none":
                ctx.save_for_backward(hidden, weight, bias, ce_eff, zr)
            else:
                ctx.save_for_backward(ce_eff, zr)
            value = value.to(p.dtype)
            ctx.mark_non_differentiable(zterm, lse)
            return value, zterm.to(p.dtype), lse.to(p.dtype)

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx: Any, gv: Any, _gz: Any, _gl: Any) -> Any:
            saved = ctx.saved_tensors
            p = ctx.plan
            ng = ctx.needs_input_grad
            if p.reduction == "none":
                hidden, weight, bias, ce_eff, zr = saved
                g = gv.reshape(-1).to(p.a_ce.dtype)
                q = p._replace(h2=hidden, weight=weight, bias=bias)
                _, _, dh, dw, db, dcw = _torch_core(q, g * p.a_ce, g * p.a_z, True, ctx.need)
            else:
                if ctx.used:
                    raise RuntimeError(_ONE_BACKWARD.format(p.reduction))
                ctx.used = True
                ce_eff, zr = saved
                (dh, dw, db, dcw), ctx.grads = ctx.grads, None
                scale = gv.reshape(())
                if not (scale.device.type == "cpu" and float(scale) == 1.0):
                    for gr in (dh, dw, db, dcw):
                        if gr is not None:
                            gr.mul_(scale.to(gr.dtype))
                g = scale.to(ce_eff.dtype)
            # value = Σ a_ce ce + Σ a_z zr (per row for "none")
            ga_ce = (g * ce_eff).to(p.a_ce.dtype) if ng[3] else None
            ga_z = (g * zr).to(p.a_z.dtype) if ng[4] else None
            return dh, dw, db, ga_ce, ga_z, dcw, None

    return _LinearCrossEntropyFn


@functools.cache
def _torch_fn_cached() -> Any:
    return _torch_fn()


def _z_rows(xp: Any, p: _Plan, lse: Any) -> Any:
    """The z-loss rows ``λ lse²``, 0 where not counted."""
    if not p.zl:
        return xp.zeros_like(lse)
    zr = p.zl * lse * lse
    return xp.where(p.counted, zr, xp.zeros_like(zr))


def _nan_rows(xp: Any, p: _Plan, like: Any) -> Any:
    """NaN where traced values were bad, else 0 (None when nothing is traced)."""
    if p.bad is None:
        return None
    return xp.where(p.bad, xp.asarray(math.nan, dtype=like.dtype), xp.zeros_like(like))


def _reduce_rows(xp: Any, p: _Plan, ce: Any, zr: Any) -> tuple[Any, Any]:
    """(value, z-loss term) from the rows' terms and the reduction coefficients.

    The NaN of a bad row is added after the coefficients multiply (a bad row's
    coefficient is 0, and XLA rewrites ``x * convert(mask)`` as a select that drops
    a NaN in ``x``).
    """
    a_ce = cast(xp, p.a_ce, ce.dtype)
    a_z = cast(xp, p.a_z, ce.dtype)
    rows = a_ce * ce + a_z * zr
    nan = _nan_rows(xp, p, rows)
    if nan is not None:
        rows = rows + nan
    if p.reduction == "none":
        return xp.reshape(rows, p.batch), xp.reshape(a_z * zr, p.batch)
    zterm = xp.sum(a_z * zr)
    return xp.sum(rows), zterm


def _reduce_value(xp: Any, p: _Plan, ce: Any, lse: Any) -> tuple[Any, Any]:
    """(value, z-loss term) from the rows' ce and lse (NaN where traced values were bad)."""
    return _reduce_rows(xp, p, ce, _z_rows(xp, p, lse))


def _row_cotangents(xp: Any, p: _Plan, ce: Any, lse: Any) -> tuple[Any, Any]:
    """(∂value/∂a_ce, ∂value/∂a_z) per row for a unit upstream gradient: (ce, λ lse²),
    NaN in the first where traced values were bad."""
    nan = _nan_rows(xp, p, ce)
    return (ce if nan is None else ce + nan), _z_rows(xp, p, lse)


# --------------------------------------------------------------------------- JAX


def _jax_core(p: _Plan) -> Any:
    """The custom_vjp function of (h2, weight, bias_or_zeros, a_ce, a_z, w, aux) for this plan.

    ``a_ce``/``a_z`` (the rows' reduction coefficients, functions of the sample and
    class weights) and ``w`` (the class weights) get their exact cotangents, so that
    ``jax.grad`` differentiates the "mean" denominators through them outside. ``aux`` =
    (labels, counted, bad mask) travels as an argument (no cotangent), not in the
    closure: under ``jax.grad(jax.jit(...))`` they are tracers of the outer trace, which
    a custom_vjp may not close over.
    """
    import jax
    import jax.numpy as jnp

    has_bias = p.bias is not None
    rows = p.rows
    n = int(p.h2.shape[0])
    nchunks = max(1, -(-n // rows))
    pad = nchunks * rows - n
    cw = p.has_cw
    col = cw and p.eps != 0  # the column sums enter with smoothing only

    def chunks(x: Any) -> Any:
        if pad:
            x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
        return x.reshape((nchunks, rows, *x.shape[1:]))

    def run(h2: Any, wt: Any, b: Any, q: _Plan, do_grad: bool) -> Any:
        """(ce, lse, z'[y], grads): grads (dh, dw, db, d class weights with a_ce held)."""
        cdt = q.dtype
        y_c, cnt_c = chunks(q.y), chunks(q.counted)
        v, d = wt.shape

        def body(carry: Any, xs: Any) -> Any:
            hc, yc, cc, ac, az = xs
            z = jnp.matmul(hc, wt.T, preferred_element_type=cdt).astype(cdt)
            if has_bias:
                z = z + b.astype(cdt)
            ce, lse, g, zy, cs = _chunk_math(jnp, z, q, yc, cc, ac, az, do_grad, col)
            if not do_grad:
                return carry, (ce, lse, zy)
            dw, db, colsum = carry
            dhc = jnp.matmul(g.astype(h2.dtype), wt, preferred_element_type=cdt).astype(h2.dtype)
            dw = dw + jnp.matmul(g.T, hc.astype(cdt))
            db = db + jnp.sum(g, axis=0)
            if col:
                colsum = colsum + cs
            return (dw, db, colsum), (ce, lse, zy, dhc)

        carry0: Any = ()
        if do_grad:
            carry0 = (jnp.zeros((v, d), cdt), jnp.zeros((v,), cdt), jnp.zeros((v,), cdt))
        xs = (chunks(h2), y_c, cnt_c, chunks(q.a_ce), chunks(q.a_z))
        carry, outs = jax.lax.scan(body, carry0, xs)
        ce, lse, zy = (o.reshape(-1)[:n] for o in outs[:3])
        if not do_grad:
            return ce, lse, zy, None
        dh = outs[3].reshape(nchunks * rows, d)[:n]
        dw, db, colsum = carry
        dcw = _class_weight_grad(jnp, q, q.a_ce, lse, zy, colsum, v) if cw else None
        return ce, lse, zy, (dh, dw.astype(wt.dtype), db.astype(wt.dtype), dcw)

    def plan_of(a_ce: Any, a_z: Any, w: Any, aux: Any) -> _Plan:
        y, counted, bad = aux
        return p._replace(a_ce=a_ce, a_z=a_z, w=w, y=y, counted=counted, bad=bad)

    def primal(h2: Any, wt: Any, b: Any, a_ce: Any, a_z: Any, w: Any, aux: Any) -> Any:
        q = plan_of(a_ce, a_z, w, aux)
        ce, lse, _, _ = run(h2, wt, b, q, False)
        value, zterm = _reduce_value(jnp, q, ce, lse)
        return value, zterm, lse

    f = jax.custom_vjp(primal)

    def fwd(h2: Any, wt: Any, b: Any, a_ce: Any, a_z: Any, w: Any, aux: Any) -> Any:
        q = plan_of(a_ce, a_z, w, aux)
        if p.reduction == "none":
            ce, lse, _, _ = run(h2, wt, b, q, False)
            res: Any = (h2, wt, b, a_ce, a_z, w)
        else:
            ce, lse, _, grads = run(h2, wt, b, q, True)
            res = grads
        value, zterm = _reduce_value(jnp, q, ce, lse)
        ce_eff, zr = _row_cotangents(jnp, q, ce, lse)
        return (value, zterm, lse), (res, aux, ce_eff, zr)

    def bwd(res: Any, cts: Any) -> Any:
        gv = cts[0]
        res, aux, ce_eff, zr = res
        if p.reduction == "none":
            h2, wt, b, a_ce, a_z, w = res
            g = jnp.reshape(gv, (-1,)).astype(a_ce.dtype)
            q = plan_of(g * a_ce, g * a_z, w, aux)
            _, _, _, (dh, dw, db, dcw) = run(h2, wt, b, q, True)
        else:
            dh, dw, db, dcw = res
            dh, dw, db = (x * gv.astype(x.dtype) for x in (dh, dw, db))
            dcw = None if dcw is None else dcw * gv.astype(dcw.dtype)
            g = gv
        # value = Σ a_ce ce + Σ a_z zr (per row for "none")
        ga_ce = (g * ce_eff).astype(p.a_ce.dtype)
        ga_z = (g * zr).astype(p.a_z.dtype)
        bad = aux[2]
        if bad is not None:
            nanrow = jnp.where(bad, jnp.nan, 0.0).astype(dh.dtype)
            dh = dh + nanrow[:, None]
            dw = dw + jnp.where(jnp.any(bad), jnp.nan, 0.0).astype(dw.dtype)
        if dcw is None:
            dcw = jnp.zeros((int(p.weight.shape[0]),), dtype=p.w.dtype)
        elif bad is not None:
            dcw = dcw + jnp.where(jnp.any(bad), jnp.nan, 0.0).astype(dcw.dtype)
        db = db if has_bias else jnp.zeros_like(db)
        # labels, mask and bad rows get no derivative (None: a zero cotangent)
        return dh, dw, db, ga_ce, ga_z, dcw.astype(p.w.dtype), None

    f.defvjp(fwd, bwd)
    return f


# --------------------------------------------------------------------------- the public loss


def _run(
    hidden: Any, weight: Any, labels: Any, options: dict[str, Any], with_grad: bool
) -> tuple[LinearCrossEntropyOutput, tuple[Any, Any, Any] | None]:
    """Dispatch to the backend: the outputs and, with ``with_grad``, (dh, dw, db)."""
    p = _plan(
        hidden, weight, labels, options["bias"], options["class_weight"],
        options["ignore_index"], options["label_smoothing"], options["z_loss"],
        options["softcap"], options["reduction"], options["sample_weight"],
        options["chunk_size"], options["memory_budget"],
    )  # fmt: skip
    xp = p.xp
    hshape = shape_of(p.h2)[:0] + p.batch + (shape_of(p.h2)[1],)
    if is_numpy(xp):
        # "none" too: its coefficients (the sample weights) give the gradient of the sum
        ce, lse, dh, dw, db = _numpy_core(p, with_grad)
        value, zterm = _reduce_value(np, p, ce, lse)
        out = _outputs(np, p, value, zterm, lse)
        grads = None if not with_grad else (np.reshape(dh, hshape), dw, db)
        return out, grads
    if is_torch_tensor(p.h2):
        import torch

        needs = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (p.h2, p.weight, p.bias, p.a_ce, p.a_z, p.w)
        )
        if with_grad or not needs:
            need = (True, True, True, False)
            ce, lse, dh, dw, db, _ = _torch_core(p, p.a_ce, p.a_z, with_grad, need)
            value, zterm = _reduce_value(p.xp, p, ce, lse)
            out = _outputs(p.xp, p, value, zterm, lse)
            grads = None if not with_grad else (dh.reshape(hshape), dw, db)
            return out, grads
        fn = _torch_fn_cached()
        value, zterm, lse = _torch_apply(fn, p)
        return LinearCrossEntropyOutput(value, zterm, lse.reshape(p.batch)), None
    import jax

    f = _jax_core(p)
    b = p.bias if p.bias is not None else xp.zeros((int(p.weight.shape[0]),), dtype=p.weight.dtype)
    args = (p.h2, p.weight, b, p.a_ce, p.a_z, p.w, (p.y, p.counted, p.bad))
    if with_grad:
        (value, zterm, lse), vjp = jax.vjp(f, *args)
        ones = xp.ones_like(value)
        dh, dw, db, *_ = vjp((ones, xp.zeros_like(zterm), xp.zeros_like(lse)))
        grads = (xp.reshape(dh, hshape), dw, db if p.bias is not None else None)
    else:
        value, zterm, lse = f(*args)
        grads = None
    return _outputs(xp, p, value, zterm, lse), grads


def _torch_apply(fn: Any, p: _Plan) -> Any:
    return fn.apply(p.h2, p.weight, p.bias, p.a_ce, p.a_z, p.w, p)


_RUN_EAGER: list[Any] = []


def _run_outside_compile() -> Any:
    """``_run`` outside any torch.compile graph (a graph break at the op): the row pass
    is numba code on NumPy views and the chunk loop is Python, neither for the compiler.
    (A plain list as the cache: dynamo warns about functools caches.)"""
    if not _RUN_EAGER:
        import torch

        _RUN_EAGER.append(torch.compiler.disable(_run))
    return _RUN_EAGER[0]


def _outputs(xp: Any, p: _Plan, value: Any, zterm: Any, lse: Any) -> LinearCrossEntropyOutput:
    dt = p.dtype
    lse = xp.reshape(cast(xp, lse, dt), p.batch)
    return LinearCrossEntropyOutput(cast(xp, value, dt), cast(xp, zterm, dt), lse)


def _linear_cross_entropy(
    hidden: Array,
    weight: Array,
    labels: Array,
    *,
    bias: Array | None = None,
    class_weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: str = "mean",
    sample_weight: Array | None = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    return_aux: bool = False,
    with_grad: bool = False,
    grad_out: Any = None,
) -> tuple[Any, Any]:
    if grad_out is not None:
        msg = (
            "`grad_out` is not supported by linear_cross_entropy (it returns three "
            f"gradients, for hidden, weight and bias); got {type(grad_out).__name__}"
        )
        raise ValueError(msg)
    options = dict(
        bias=bias, class_weight=class_weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap, reduction=reduction,
        sample_weight=sample_weight, chunk_size=chunk_size, memory_budget=memory_budget,
    )  # fmt: skip
    run = _run_outside_compile() if is_torch_tensor(hidden) else _run
    out, grads = run(hidden, weight, labels, options, with_grad)
    return (out if return_aux else out.loss), grads


@differentiable(_linear_cross_entropy)
def linear_cross_entropy(
    hidden: Array,
    weight: Array,
    labels: Array,
    *,
    bias: Array | None = None,
    class_weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: str = "mean",
    sample_weight: Array | None = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    return_aux: bool = False,
) -> Any:
    r"""Softmax cross-entropy of ``hidden @ weight.T + bias`` without the full logits.

    With ``z = hidden @ weight.T + bias`` (one row of ``V`` logits per token),
    the soft cap ``z' = c tanh(z / c)`` (``softcap=c``; ``z' = z`` when None),
    ``lse = logsumexp(z')`` and ``p = softmax(z')``, each counted token
    contributes

    .. math::
        \ell = (1-\varepsilon)\, w_y (\mathrm{lse} - z'_y)
             + \frac{\varepsilon}{V} \sum_c w_c (\mathrm{lse} - z'_c)
             + \lambda\, \mathrm{lse}^2

    (``label_smoothing`` ε, ``class_weight`` w, ``z_loss`` λ), and

    .. math::
        \frac{\partial \ell}{\partial z_c} = \Big((1-\varepsilon) w_y (p_c - [c = y])
            + \frac{\varepsilon}{V}(W p_c - w_c) + 2 \lambda\, \mathrm{lse}\, p_c\Big)
            \big(1 - (z'_c / c)^2\big),

    ``W = Σ w``; the products give ``∂/∂hidden = G W``, ``∂/∂weight = Gᵀ hidden``,
    ``∂/∂bias = Σ_tokens G``. The cross-entropy part is exactly
    :func:`sparse_softmax_cross_entropy` on the logits (PyTorch's
    ``F.cross_entropy(weight=w, label_smoothing=ε)``): ``"mean"`` divides it by
    the summed class weight of the counted tokens (times ``sample_weight``);
    the z-loss part (PaLM) is a plain mean over the counted tokens (as
    Liger-Kernel), so the two denominators differ only with class weights.
    Tokens labelled ``ignore_index`` count nowhere; nothing counted gives 0.

    The tokens are processed ``chunk_size`` rows at a time (default: what 40 MiB
    of logits hold, 56 MiB on NumPy, at least 256 rows; or what ``memory_budget``
    bytes allow), so at most one
    chunk of logits exists at once. ``losskit.value_and_grad(linear_cross_entropy)``
    returns ``(value, (d_hidden, d_weight, d_bias))`` (``d_bias`` None without
    ``bias``). Under PyTorch autograd and ``jax.grad`` the same gradients flow
    through a custom function (PyTorch: computed during forward for "mean"
    and "sum", so one backward only, while "none" recomputes in backward and
    takes ``retain_graph=True``; JAX: ``jax.custom_vjp``), and so do those in
    ``class_weight`` and ``sample_weight``: with the row's reduction
    coefficient ``a`` held,

    .. math::
        \frac{\partial \ell}{\partial w_k} = (1-\varepsilon) [k = y]
            (\mathrm{lse} - z'_y) + \frac{\varepsilon}{V} (\mathrm{lse} - z'_k),

    summed over the tokens with ``a`` (the column sums ``Σ a z'`` come from
    the chunk pass), and ``∂value/∂a = ce``, ``λ lse²`` for the two terms;
    autograd then differentiates ``a`` itself (``s``, ``s / Σ s w_y``,
    ``s / Σ s``), which gives the "mean" denominators' share.

    Parameters
    ----------
    hidden : array ``(..., D)``, real floating
    weight : array ``(V, D)``, the dtype of ``hidden``
    labels : integer array, ``hidden``'s shape without the last axis
    bias : array ``(V,)``, optional
    class_weight : array ``(V,)``, optional
    ignore_index : int, optional
    label_smoothing : float in [0, 1]
    z_loss : float >= 0
        Weight of ``lse²`` per counted token (1e-4 is PaLM's).
    softcap : float > 0, optional
        Gemma-2's final-logit soft cap ``c``.
    reduction : {"mean", "sum", "none"}
    sample_weight : array, optional
        ``labels``' shape or a leading part of it.
    chunk_size : int, optional
        Tokens per chunk (overrides the default and ``memory_budget``).
    memory_budget : int, optional
        Bytes one chunk's logits may take (at least 16 rows).
    return_aux : bool
        Return a :class:`LinearCrossEntropyOutput` ``(loss, z_loss, lse)``
        instead of the loss alone (``z_loss``: the z-loss term reduced as
        the loss; ``lse``: every token's log-sum-exp, not differentiable).

    Returns
    -------
    The loss, of ``hidden``'s kind; float32 for half-precision input.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> h = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> W = np.array([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> # logits [[1, 0, -1], [2, 2, 0]], labels 0 and 2:
    >>> # log(e + 1 + 1/e) - 1 + log(2 e^2 + 1) - 0 = 0.407606 + 2.758624
    >>> round(float(lk.linear_cross_entropy(h, W, np.array([0, 2]), reduction="sum")), 6)
    3.16623
    >>> value, (dh, dw, db) = lk.value_and_grad(lk.linear_cross_entropy)(h, W, np.array([0, 2]))
    >>> dh.shape, dw.shape, db is None
    ((2, 2), (3, 2), True)

    References
    ----------
    Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models" (2024).
    Hsu et al., "Liger Kernel: Efficient Triton Kernels for LLM Training" (2024).
    Chowdhery et al., "PaLM" (2022), section 5: the z-loss.
    Gemma Team, "Gemma 2" (2024): logit soft-capping.
    """
    return _linear_cross_entropy(
        hidden, weight, labels, bias=bias, class_weight=class_weight,
        ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
        softcap=softcap, reduction=reduction, sample_weight=sample_weight,
        chunk_size=chunk_size, memory_budget=memory_budget, return_aux=return_aux,
    )[0]  # fmt: skip
