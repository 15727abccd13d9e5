"""``_linear.lce_rows_serial`` spread over an OpenMP team (see ``_omp_team``).

The team runs a numba ``cfunc`` with one ``void *`` argument; here that is an
int64 array of the call's arguments (array addresses, sizes, flags, and the
float64 parameters by their bits, see ``_Z`` and the slots after it). Every
thread of the team claims the next few rows with an atomic add on one slot of
that array until the rows run out, and runs ``_linear._row`` on each: the
serial driver's code, so a row's results do not depend on the thread that
computes it and equal the serial driver's up to the last bits (bit for bit
where LLVM compiles ``_row`` alike in both, as on the machines measured). No
column sums (the threads would race on them): the caller keeps the serial
driver when the class weights need them. numba caches the compiled ``cfunc``
keyed on this file only: after editing ``_linear.py`` in a checkout, delete
this module's cache files too (see ``kernels/__init__``).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

from ._linear import _row, weight_sum
from ._rowpass import FASTMATH

# The argument array's slots: addresses and integers, then float64 bit patterns
# (module constants: numba reads them as compile-time integers).
(
    _Z, _ROWS, _COLS, _BIAS, _HAS_BIAS, _Y, _COUNTED, _W, _A_CE, _A_Z, _DO_GRAD, _CE, _LSE,
    _ZY, _NEXT_ROW, _COLSUM, _E, _CAP, _ZL, _CUT, _NSLOTS,
) = range(21)  # fmt: skip
# Rows claimed at a time: about this many logits, so that a claim is a few
# microseconds of work against one atomic add.
_CLAIM_ELEMENTS = 1 << 16


@intrinsic
def _pointer(typingctx, address, dtype):
    """A typed pointer (``CPointer(dtype)``) from an int64 address or a ``void *``."""
    ty = dtype.instance_type
    sig = types.CPointer(ty)(address, dtype)

    def codegen(context, builder, signature, args):
        lty = context.get_value_type(signature.return_type)
        if isinstance(address, types.Integer):
            return builder.inttoptr(args[0], lty)
        return builder.bitcast(args[0], lty)

    return sig, codegen


@intrinsic
def _fetch_add(typingctx, array, index, value):
    """``array[index] += value`` atomically (an int64 array); returns the value before."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        return None
    sig = types.int64(array, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.atomic_rmw("add", builder.gep(data, [args[1]]), args[2], "monotonic")

    return sig, codegen


@njit(fastmath=FASTMATH, cache=True)
def _claim_and_run(data, dtype):
    a = carray(_pointer(data, np.int64), _NSLOTS)
    f = carray(_pointer(data, np.float64), _NSLOTS)
    n = a[_ROWS]
    c = a[_COLS]
    z = carray(_pointer(a[_Z], dtype), (n, c))
    has_bias = a[_HAS_BIAS] != 0
    bias = carray(_pointer(a[_BIAS], dtype), c if has_bias else 1)
    y = carray(_pointer(a[_Y], np.int64), n)
    counted = carray(_pointer(a[_COUNTED], np.bool_), n)
    w = carray(_pointer(a[_W], dtype), c)
    a_ce = carray(_pointer(a[_A_CE], np.float64), n)
    a_z = carray(_pointer(a[_A_Z], np.float64), n)
    ce = carray(_pointer(a[_CE], np.float64), n)
    lse = carray(_pointer(a[_LSE], np.float64), n)
    zy = carray(_pointer(a[_ZY], np.float64), n)
    colsum = f[_COLSUM : _COLSUM + 1]  # unused: col is False
    do_grad = a[_DO_GRAD] != 0
    e, cap, zl = f[_E], f[_CAP], f[_ZL]
    cut = f[_CUT]
    w_sum = weight_sum(w)
    step = max(1, _CLAIM_ELEMENTS // max(1, c))
    while True:
        i0 = _fetch_add(a, _NEXT_ROW, step)  # the rows' counter, 0 at the start
        if i0 >= n:
            break
        for i in range(i0, min(n, i0 + step)):
            ce[i], lse[i], zy[i] = _row(
                z[i], bias, has_bias, y[i], counted[i], w, w_sum, e, cap, zl, a_ce[i], a_z[i],
                do_grad, cut, False, colsum,
            )  # fmt: skip


def _rows_float32(data):
    _claim_and_run(data, np.float32)


def _rows_float64(data):
    _claim_and_run(data, np.float64)


_DRIVERS = {np.dtype(np.float32): _rows_float32, np.dtype(np.float64): _rows_float64}
_cfuncs: dict[np.dtype, Any] = {}
_compile_lock = threading.Lock()


def _cfunc_for(dtype: np.dtype) -> Any:
    """The compiled ``cfunc`` for ``dtype``, built on first use (seconds without numba's
    cache, ``cache=True``), so that a float32 user never compiles the float64 one."""
    fn = _cfuncs.get(dtype)
    if fn is None:
        with _compile_lock:
            fn = _cfuncs.get(dtype)
            if fn is None:
                fn = cfunc(types.void(types.voidptr), cache=True)(_DRIVERS[dtype])
                _cfuncs[dtype] = fn
    return fn


def _contiguous(x: np.ndarray, dtype: Any) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=dtype)


def lce_rows_on_team(
    team: Any, threads: int, z: np.ndarray, bias: np.ndarray, has_bias: bool, y: np.ndarray,
    counted: np.ndarray, w: np.ndarray, e: float, cap: float, zl: float, a_ce: np.ndarray,
    a_z: np.ndarray, do_grad: bool, ce: np.ndarray, lse: np.ndarray, zy: np.ndarray, cut: float,
) -> None:  # fmt: skip
    """``lce_rows_serial`` (without column sums) on ``threads`` threads of ``team``.

    ``z`` C-contiguous float32/float64 (n, C); ``bias`` and ``w`` of its dtype
    (``bias`` (C,) when ``has_bias``); ``ce``, ``lse``, ``zy`` C-contiguous float64
    (n,), written. The other inputs are converted as needed (a copy of n values).
    """
    n, c = z.shape
    # Explicit checks, not asserts: the team reads and writes through raw addresses.
    if not (z.flags.c_contiguous and z.dtype in _DRIVERS):
        raise ValueError(f"z must be C-contiguous float32/float64, got {z.dtype}, {z.strides}")
    for out in (ce, lse, zy):
        if not (out.dtype == np.float64 and out.flags.c_contiguous and out.shape == (n,)):
            raise ValueError(f"outputs must be C-contiguous float64 ({n},), got {out.shape}")
    if n == 0:
        return
    dt = z.dtype
    bias, w = _contiguous(bias, dt), _contiguous(w, dt)
    if bias.ndim != 1 or bias.shape[0] < (c if has_bias else 1) or w.shape != (c,):
        raise ValueError(f"bias {bias.shape} and w {w.shape} must be ({c},) (bias (1,) unused)")
    if not (y.shape == counted.shape == a_ce.shape == a_z.shape == (n,)):
        raise ValueError(f"y, counted, a_ce and a_z must be ({n},)")
    # Held until the call returns: the team reads them through their addresses.
    arrays = (
        (_Z, z), (_BIAS, bias), (_Y, _contiguous(y, np.int64)),
        (_COUNTED, _contiguous(counted, np.bool_)), (_W, w),
        (_A_CE, _contiguous(a_ce, np.float64)), (_A_Z, _contiguous(a_z, np.float64)),
        (_CE, ce), (_LSE, lse), (_ZY, zy),
    )  # fmt: skip
    args = np.zeros(_NSLOTS, dtype=np.int64)
    for slot, arr in arrays:
        args[slot] = arr.ctypes.data
    args[_ROWS], args[_COLS] = n, c
    args[_HAS_BIAS], args[_DO_GRAD] = has_bias, do_grad
    floats = args.view(np.float64)
    floats[_E], floats[_CAP], floats[_ZL] = e, cap, zl
    floats[_CUT] = cut
    team.run(_cfunc_for(dt).address, args.ctypes.data, threads)
