"""Whether an array takes a fused kernel, and the forwarding calls the core makes.

The numba modules are imported on the first forwarding call, so
``import losskit`` (and importing this module) stays free of numba. Inputs are
(N, C) arrays with the class axis last; anything not C-contiguous or of
another dtype than the logits is copied into shape here (O(size), never in the
hot path the core uses). Outputs (``out``, ``grad_out``) must already be
C-contiguous arrays of the logits' dtype; they may be the logits themselves,
and no other overlap with the logits is accepted (``_same_buffer``, checked
once per call for every entry point and loop shape). An input other than the
logits that shares memory with the output is copied first (``_apart``).

numba's threading layer is chosen before the first kernel runs (``_threads``:
TBB, so that forked processes and concurrent threads are both safe).

Examples
--------
>>> import numpy as np
>>> from losskit.kernels import dispatch
>>> x = np.array([[0.0, 0.0], [1.0, 1.0]])
>>> dispatch.logsumexp_rows(x).round(6)
array([0.693147, 1.693147])
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
from types import ModuleType
from typing import Any

import numpy as np

from .. import _config
from . import _threads

# Below this many elements the kernels are not worth a thread-pool wake-up.
# Measured on the 2-core development machine through the public API: the
# kernel path was already faster than the portable one at 250 elements (46 vs
# 61 us for the loss, 85 vs 92 us with the gradient, both dominated by Python
# overhead), and 2-10x faster from 16k elements. The threshold stays above
# zero so that tiny inputs never wait on a preempted worker thread of a
# loaded machine.
MIN_KERNEL_SIZE = 1024
# At or below this many classes the tiled (rows-in-vector-lanes) loop wins.
SMALL_C = 160

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_numba_available: bool | None = None


def _have_numba() -> bool:
    global _numba_available
    if _numba_available is None:
        _numba_available = importlib.util.find_spec("numba") is not None
    return _numba_available


def use_kernel(x: Any) -> bool:
    """True when ``x`` should take the fused kernels.

    That is: kernels are allowed (no ``LOSSKIT_PORTABLE=1``, not inside
    ``losskit.portable()``), ``x`` is a NumPy float32/float64 array of at
    least ``MIN_KERNEL_SIZE`` elements with at least one dimension, and numba
    is installed.

    Examples
    --------
    >>> import numpy as np
    >>> use_kernel(np.zeros((4096, 10), np.float32)), use_kernel(np.zeros((2, 3)))
    (True, False)
    >>> use_kernel(np.zeros((4096, 10), np.float16)), use_kernel([[1.0] * 10] * 4096)
    (False, False)
    """
    if not isinstance(x, np.ndarray) or x.dtype not in _FLOATS:
        return False
    if x.ndim < 1 or x.size < MIN_KERNEL_SIZE:
        return False
    return _config.kernels_allowed() and _have_numba()


class TargetOutOfRange(ValueError):
    """A target outside [0, 1], or NaN, met by ``dense_xent_rows(check_targets=True)``.

    ``index`` is the flat (row-major) index into the ``(N, C)`` targets of the
    first such element; ``value`` is that element.
    """

    def __init__(self, index: int, value: float = float("nan")) -> None:
        self.index = index
        self.value = value
        msg = f"`targets` must be in [0, 1]; got {value!r} at flat index {index}"
        super().__init__(msg)


def threading_layer() -> str:
    """numba's threading layer for the kernels, chosen on the first call (see ``_threads``).

    Code that runs parallel numba itself (a benchmark's floor kernels, for
    instance) calls this first, so that the kernels' choice is the one numba makes.
    """
    return _threads.ensure()


def _kernels(name: str) -> ModuleType:
    """The numba module ``name``; the threading layer is chosen before it first loads."""
    _threads.ensure()
    return importlib.import_module(f"{__package__}.{name}")


def _softmax_mod() -> ModuleType:
    return _kernels("_softmax")


def _sparse_mod() -> ModuleType:
    return _kernels("_sparse")


def _tiled_mod() -> ModuleType:
    return _kernels("_tiled")


def _dense_mod() -> ModuleType:
    return _kernels("_dense")


def _as_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype not in _FLOATS:
        x = x.astype(np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        msg = f"kernels take (N, C) arrays with C >= 1; got shape {x.shape}"
        raise ValueError(msg)
    return np.ascontiguousarray(x)


def _check_out(out: np.ndarray, x: np.ndarray, name: str) -> None:
    if not (
        isinstance(out, np.ndarray)
        and out.shape == x.shape
        and out.dtype == x.dtype
        and out.flags.c_contiguous
        and out.flags.writeable
    ):
        msg = (
            f"`{name}` must be a writeable C-contiguous {x.dtype} array of shape {x.shape}; "
            f"got {type(out).__name__} {getattr(out, 'dtype', '')} {getattr(out, 'shape', '')}"
        )
        raise ValueError(msg)


def _nchunks() -> int:
    _threads.ensure()
    import numba

    return 4 * int(numba.get_num_threads())


def _same_buffer(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a and b are the same memory (an in-place gradient); partial overlap is refused.

    Both are C-contiguous of one shape and dtype (``_check_out``), so the same
    first address means the same elements. Every loop shape reads a row (or a
    tile of rows) before it writes the same rows, which is right in place; an
    output shifted against its input would overwrite rows not yet read.
    """
    if a.size == 0 or not np.shares_memory(a, b):
        return False
    if a.__array_interface__["data"][0] == b.__array_interface__["data"][0]:
        return True
    msg = "the output buffer partly overlaps the input; pass the input itself or a separate array"
    raise ValueError(msg)


_llc_bytes: int | None = None


def _last_level_cache_bytes() -> int:
    """The size of the largest CPU cache as Linux reports it (sysfs), else 32 MiB."""
    global _llc_bytes
    if _llc_bytes is None:
        sizes = [0]
        for f in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
            try:
                with open(f) as fh:
                    text = fh.read().strip().upper()
            except OSError:
                continue
            scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
            digits = text.rstrip("KM")
            if digits.isdigit():
                sizes.append(int(digits) * scale)
        _llc_bytes = max(sizes) or 32 << 20
    return _llc_bytes


def _apart(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``a`` (an input other than the logits), copied if it shares memory with ``out``.

    The kernels read such inputs row by row while they write ``out``; a copy
    (O(size), only in this odd case) keeps the answer right.
    """
    return a.copy() if out.size and np.shares_memory(a, out) else a


def logsumexp_rows(x2d: np.ndarray) -> np.ndarray:
    """log(sum(exp(x2d), axis=1)) as an (N,) array of x2d's dtype."""
    x = _as_rows(x2d)
    out = np.empty(x.shape[0], dtype=x.dtype)
    if x.shape[1] <= SMALL_C:
        kernel: Any = _tiled_mod().logsumexp_tiled
        args: tuple[Any, ...] = (x, out, _nchunks())
    else:
        kernel, args = _softmax_mod().logsumexp_rows, (x, out)
    with _threads.serial():
        return kernel(*args)


def softmax_rows(x2d: np.ndarray, out: np.ndarray) -> np.ndarray:
    """softmax over axis 1 of x2d into ``out`` (which may be x2d); returns ``out``."""
    x = _as_rows(x2d)
    _check_out(out, x, "out")
    inplace = _same_buffer(out, x)
    if x.shape[1] <= SMALL_C:
        kernel: Any = _tiled_mod().softmax_tiled
        args: tuple[Any, ...] = (x, out, _nchunks())
    else:
        kernel, args = _softmax_mod().softmax_rows, (x, out, inplace, _nchunks())
    with _threads.serial():
        return kernel(*args)


def log_softmax_rows(x2d: np.ndarray, out: np.ndarray) -> np.ndarray:
    """log_softmax over axis 1 of x2d into ``out`` (which may be x2d); returns ``out``."""
    x = _as_rows(x2d)
    _check_out(out, x, "out")
    inplace = _same_buffer(out, x)
    if x.shape[1] <= SMALL_C:
        kernel: Any = _tiled_mod().log_softmax_tiled
        args: tuple[Any, ...] = (x, out, _nchunks())
    else:
        kernel, args = _softmax_mod().log_softmax_rows, (x, out, inplace)
    with _threads.serial():
        return kernel(*args)


def _grad_args(
    x: np.ndarray, row_coef: np.ndarray | None, grad_out: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """(coef, gradient buffer, whether to write it, whether it is ``x`` itself)."""
    n = x.shape[0]
    if grad_out is None:
        # A (N, 0) stand-in keeps one compiled signature and never gets written.
        return np.zeros(n, dtype=x.dtype), np.empty((n, 0), dtype=x.dtype), False, False
    _check_out(grad_out, x, "grad_out")
    inplace = _same_buffer(grad_out, x)
    if row_coef is None:
        coef = np.ones(n, dtype=x.dtype)
    else:
        coef = _apart(_small_arg(np.broadcast_to(row_coef, (n,)), x.dtype), grad_out)
    return coef, grad_out, True, inplace


def _small_arg(a: Any, dtype: Any) -> np.ndarray:
    """A C-contiguous, writeable copy-if-needed of an O(N) or O(C) argument.

    Writeable because numba compiles read-only arrays as a separate signature
    (seconds of compile for nothing); these arrays are small, a copy is cheap.
    """
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()


def sparse_xent_rows(
    logits2d: np.ndarray,
    labels1d: np.ndarray,
    class_weight: np.ndarray | None,
    ignore_index: int | None,
    smoothing: float,
    row_coef: np.ndarray | None,
    grad_out: np.ndarray | None,
) -> np.ndarray:
    """Per-row sparse softmax cross-entropy; the scaled gradient into ``grad_out`` if given.

    loss = (1-e) w[y] (lse - x[y]) + e/C sum_c w[c] (lse - x[c]) (0 for ignored rows);
    grad[c] = coef ((1-e) w[y] (p[c] - [c==y]) + e/C (W p[c] - w[c])).
    """
    x = _as_rows(logits2d)
    n, c = x.shape
    coef, g, do_grad, inplace = _grad_args(x, row_coef, grad_out)
    y = _apart(_small_arg(np.reshape(labels1d, (n,)), np.int64), g)
    if class_weight is None:
        w = np.ones(c, dtype=x.dtype)
    else:
        w = _apart(_small_arg(np.reshape(class_weight, (c,)), x.dtype), g)
    has_ignore = ignore_index is not None
    ignore = int(ignore_index) if ignore_index is not None else 0
    loss = np.empty(n, dtype=x.dtype)
    mod = _sparse_mod()
    args = (x, y, w, has_ignore, ignore, float(smoothing), coef, g, do_grad, loss)
    with _threads.serial():
        if c <= SMALL_C:
            mod.sparse_xent_tiled(*args, _nchunks())
        else:
            mod.sparse_xent_rowwise(*args, inplace, _nchunks())
    return loss


def dense_xent_rows(
    logits2d: np.ndarray,
    targets2d: np.ndarray,
    smoothing: float,
    row_coef: np.ndarray | None,
    grad_out: np.ndarray | None,
    *,
    check_targets: bool = False,
) -> np.ndarray:
    """Per-row softmax cross-entropy against distributions; gradient into ``grad_out`` if given.

    t' = (1-e) t + e/C; loss = sum_c t'[c] (lse - x[c]); grad[c] = coef (sum(t') p[c] - t'[c]).

    With ``check_targets`` the kernel also notes, in the pass that reads the
    targets anyway, rows holding a target outside [0, 1] or NaN (-0.0 and 1.0
    are in range); the call then raises ``TargetOutOfRange`` with the flat
    index of the first such element in row-major order, after the kernel ran.
    ``grad_out``'s content is unspecified after that error (the kernel wrote
    some or all of it, from the bad targets); the logits are not modified
    unless ``grad_out`` is the logits themselves.
    """
    x = _as_rows(logits2d)
    t = np.ascontiguousarray(targets2d, dtype=x.dtype)
    if t.shape != x.shape:
        msg = f"targets of shape {t.shape} do not match logits of shape {x.shape}"
        raise ValueError(msg)
    coef, g, do_grad, inplace = _grad_args(x, row_coef, grad_out)
    t = _apart(t, g)
    loss = np.empty(x.shape[0], dtype=x.dtype)
    nchunks = _nchunks()
    bad = np.full(nchunks, -1, dtype=np.int64)  # per row range: its first bad row
    args = (x, t, float(smoothing), coef, g, do_grad, loss)
    with _threads.serial():
        if x.shape[1] <= SMALL_C:
            _tiled_mod().dense_xent_tiled(*args, bool(check_targets), bad, nchunks)
        else:
            mod = _dense_mod()
            check = mod.NO_CHECK
            if check_targets:  # the pass where the check costs least (see _dense.py)
                cached = x.nbytes + t.nbytes <= _last_level_cache_bytes()
                check = mod.CHECK_FIRST if cached else mod.CHECK_SECOND
            mod.dense_xent_rows(*args, inplace, check, bad, nchunks)
    if check_targets and (bad >= 0).any():
        row = int(bad[bad >= 0].min())  # row ranges ascend with their index
        trow = t[row]
        col = int(np.flatnonzero(~((trow >= 0) & (trow <= 1)))[0])
        raise TargetOutOfRange(row * t.shape[1] + col, float(trow[col]))
    return loss
