"""Scalar building blocks that LLVM can vectorise: maxnum, exp, log; exact (a - b) + c.

numba on this machine has no SVML, so ``math.exp`` in a loop stays scalar.
For float32, ``fexp`` and ``flog`` are range-reduced polynomials emitted as
LLVM IR (plain arithmetic, integer bit tricks, no calls), which the loop
vectoriser turns into AVX-512 code; exp is within 2 ulp, log within 1 ulp of
the float64 reference. float64 keeps ``llvm.exp`` / ``llvm.log`` (libm: accurate, scalar).

They are numba intrinsics typed on the argument, so one kernel source serves
both dtypes, and they are inlined where they are used (a numba function call
would not be, and would keep the loop scalar). ``maxnum`` lowers to
``llvm.maxnum``, which the loop vectoriser turns into a vector max reduction
(numba's own ``max`` compiles to compare-and-branch code that does not
vectorise).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)  # exactly representable; n * _LN2_HI is exact
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_LO = np.float32(-87.33654)  # below this expf underflows (to 0 here)
_EXP_HI = np.float32(87.9)  # valid up to here (n <= 127); the kernels pass x <= 0
_ROUND = np.float32(12582912.0)  # 1.5 * 2^23: adding it rounds to an integer
# exp(r) ~ sum_k _EXP_POLY[k] r^k on |r| <= ln2 / 2 (weighted least squares with
# Lawson iterations, constant term 1: relative error 9.2e-8). Degree 6 (error
# 1.9e-9, 1.04 ulp overall) measured 5-7% slower in the kernels.
_EXP_POLY = tuple(
    np.float32(v)
    for v in (
        1.0,  # fixed, so that exp(0) is exactly 1
        0.9999997066735453,
        0.49999148539821797,
        0.16667637335022736,
        0.041898064160020496,
        0.008290289147070952,
    )
)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_ZERO = np.float32(0.0)


@intrinsic
def maxnum(typingctx, a, b):
    """max(a, b) for floats as ``llvm.maxnum`` (ignores a NaN operand)."""
    if isinstance(a, types.Float) and a == b:
        sig = a(a, b)

        def codegen(context, builder, signature, args):
            lty = context.get_value_type(signature.return_type)
            fnty = ir.FunctionType(lty, [lty, lty])
            fn = builder.module.declare_intrinsic("llvm.maxnum", [lty], fnty)
            return builder.call(fn, args)

        return sig, codegen
    return None


def _fence(builder, v):
    """``llvm.arithmetic.fence``: numba gives every float instruction of a
    fastmath kernel the kernel's flags, intrinsics' included; a fenced value
    cannot be reassociated with what follows. It keeps a loop scalar."""
    fnty = ir.FunctionType(v.type, [v.type])
    return builder.call(
        builder.module.declare_intrinsic("llvm.arithmetic.fence", [v.type], fnty), [v]
    )


def _exp32_ir(builder, x):
    """exp(x) for float32 as LLVM IR: exp(x) = 2^n exp(r), n = round(x / ln2), |r| <= ln2 / 2.

    n is rounded by adding 1.5 * 2^23 (the sum's low mantissa bits are n, which
    also gives 2^n's exponent bits with one integer add and a shift); r comes
    from a two-constant (Cody-Waite) reduction; exp(r) is a degree-5 polynomial
    (relative error 9.2e-8 on the interval, fitted for this kernel), so the
    result is within 2 ulp (1.98 measured over [-87.3, 0]; tests allow 3) and
    exp(0) is exactly 1. numba gives these instructions the calling kernel's
    fast-math flags (reassociation included), and a fence
    (``llvm.arithmetic.fence``) would stop the loop from vectorising; LLVM
    currently leaves the rounding trick and the two-constant reduction alone,
    which ``tests/test_kernels.py`` checks by compiling with the kernels' flags.
    """
    f32 = ir.FloatType()
    i32 = ir.IntType(32)
    fm = ("contract",)

    def const(v):
        return ir.Constant(f32, float(np.float32(v)))

    k = builder.fadd(builder.fmul(x, const(_LOG2E), flags=fm), const(_ROUND), flags=fm)
    n = builder.fsub(k, const(_ROUND), flags=fm)  # round(x / ln2), exactly
    r = builder.fsub(x, builder.fmul(n, const(_LN2_HI), flags=fm), flags=fm)
    r = builder.fsub(r, builder.fmul(n, const(_LN2_LO), flags=fm), flags=fm)
    p = const(_EXP_POLY[-1])
    for coeff in _EXP_POLY[-2::-1]:
        p = builder.fadd(builder.fmul(p, r, flags=fm), const(coeff), flags=fm)
    # bits(k) = bits(1.5 * 2^23) + n; shifted by 23, the constant's bits fall off.
    bits = builder.add(builder.bitcast(k, i32), ir.Constant(i32, 127))
    bits = builder.shl(bits, ir.Constant(i32, 23))
    e = builder.fmul(p, builder.bitcast(bits, f32), flags=fm)
    # Below the range (exp(-inf) included): 0. NaN compares false and stays NaN through p.
    return builder.select(builder.fcmp_ordered("<", x, const(_EXP_LO)), const(_ZERO), e)


@intrinsic
def fexp(typingctx, x):
    """exp(x): a vectorisable polynomial for float32 (about 1 ulp), ``llvm.exp`` for float64."""
    if x == types.float32:
        sig = types.float32(types.float32)

        def codegen32(context, builder, signature, args):
            return _exp32_ir(builder, args[0])

        return sig, codegen32
    if x == types.float64:
        sig = types.float64(types.float64)

        def codegen64(context, builder, signature, args):
            f64 = ir.DoubleType()
            fnty = ir.FunctionType(f64, [f64])
            fn = builder.module.declare_intrinsic("llvm.exp", [f64], fnty)
            return builder.call(fn, args)

        return sig, codegen64
    return None


_SQRTHF = np.float32(0.707106781186547524)
_LOG_P = tuple(
    np.float32(v)
    for v in (
        7.0376836292e-2,
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    )
)


def _log32_ir(builder, x):
    """Cephes logf as LLVM IR for normal positive x; 0 -> -inf, inf -> inf, NaN -> NaN.

    x = 2^k f with f in [sqrt(1/2), sqrt(2)); log(x) = k ln2 + log1p(f - 1) by a
    degree-9 polynomial. Subnormal input is not handled (the kernels pass x >= 1).
    """
    f32 = ir.FloatType()
    i32 = ir.IntType(32)
    fm = ("contract",)

    def const(v):
        return ir.Constant(f32, float(np.float32(v)))

    def iconst(v):
        return ir.Constant(i32, v)

    bits = builder.bitcast(x, i32)
    k = builder.sub(builder.lshr(bits, iconst(23)), iconst(126))
    f = builder.bitcast(
        builder.or_(builder.and_(bits, iconst(0x007FFFFF)), iconst(0x3F000000)), f32
    )
    small = builder.fcmp_ordered(
        "<", f, const(_SQRTHF)
    )  # f in [0.5, 1): fold into [sqrt(1/2), sqrt(2))
    k = builder.sub(k, builder.zext(small, i32))
    f = builder.select(small, builder.fadd(f, f, flags=fm), f)
    r = builder.fsub(f, const(_ONE), flags=fm)
    kf = builder.sitofp(k, f32)
    z = builder.fmul(r, r, flags=fm)
    p = const(_LOG_P[0])
    for coeff in _LOG_P[1:]:
        p = builder.fadd(builder.fmul(p, r, flags=fm), const(coeff), flags=fm)
    y = builder.fmul(builder.fmul(p, r, flags=fm), z, flags=fm)
    y = builder.fadd(y, builder.fmul(kf, const(_LN2_LO), flags=fm), flags=fm)
    y = builder.fsub(y, builder.fmul(z, const(_HALF), flags=fm), flags=fm)
    out = builder.fadd(builder.fadd(r, y, flags=fm), builder.fmul(kf, const(_LN2_HI), flags=fm))
    out = builder.select(builder.fcmp_ordered("==", x, const(_ZERO)), const(-np.inf), out)
    out = builder.select(builder.fcmp_ordered("==", x, const(np.inf)), const(np.inf), out)
    nan = builder.fcmp_unordered("uno", x, x)
    neg = builder.fcmp_ordered("<", x, const(_ZERO))
    return builder.select(builder.or_(nan, neg), const(np.nan), out)


@intrinsic
def flog(typingctx, x):
    """log(x): a vectorisable polynomial for float32 (about 1 ulp), ``llvm.log`` for float64."""
    if x == types.float32:
        sig = types.float32(types.float32)

        def codegen32(context, builder, signature, args):
            return _log32_ir(builder, args[0])

        return sig, codegen32
    if x == types.float64:
        sig = types.float64(types.float64)

        def codegen64(context, builder, signature, args):
            f64 = ir.DoubleType()
            fnty = ir.FunctionType(f64, [f64])
            fn = builder.module.declare_intrinsic("llvm.log", [f64], fnty)
            return builder.call(fn, args)

        return sig, codegen64
    return None


@intrinsic
def sub_add(typingctx, a, b, c):
    """(a - b) + c evaluated as written, whatever the caller's fast-math flags.

    For the loss (m - x[y]) + log(s): reassociated into (m + log(s)) - x[y] it
    would round log(s) at the scale of m. The fence keeps a loop around it
    scalar: use it per row, not per element.
    """
    if isinstance(a, types.Float) and isinstance(b, types.Float) and isinstance(c, types.Float):
        sig = a(a, a, a)

        def codegen(context, builder, signature, args):
            return builder.fadd(_fence(builder, builder.fsub(args[0], args[1])), args[2])

        return sig, codegen
    return None


def _halve(builder, v):
    """v / 2 (exact), fenced so that LLVM cannot factor a*0.5 - b*0.5 into (a - b)*0.5."""
    return _fence(builder, builder.fmul(v, ir.Constant(v.type, 0.5)))


@intrinsic
def half_gap(typingctx, a, b):
    """a/2 - b/2: finite for any finite a, b (a - b overflows at 3e38 - (-3e38) in float32).

    Halving is exact, so 2 half_gap(a, b) rounds as a - b would. The fences keep
    a loop around it scalar: for rows where the plain a - b overflowed.
    """
    if isinstance(a, types.Float) and a == b:
        sig = a(a, b)

        def codegen(context, builder, signature, args):
            return builder.fsub(_halve(builder, args[0]), _halve(builder, args[1]))

        return sig, codegen
    return None


@intrinsic
def half_sub_add(typingctx, a, b, c):
    """((a - b) + c) / 2 evaluated as written (``sub_add`` on halves): no overflow of a - b."""
    if isinstance(a, types.Float) and isinstance(b, types.Float) and isinstance(c, types.Float):
        sig = a(a, a, a)

        def codegen(context, builder, signature, args):
            d = builder.fsub(_halve(builder, args[0]), _halve(builder, args[1]))
            return builder.fadd(_fence(builder, d), _halve(builder, args[2]))

        return sig, codegen
    return None


@intrinsic
def fenced(typingctx, v):
    """v, through ``llvm.arithmetic.fence``: not reassociated with what follows.

    For 2 * fenced(a * half_gap(...)): under reassociation 2 * (a h) may become
    a * (2 h), and 2 h overflows where the true value a (2 h) does not.
    """
    if isinstance(v, types.Float):
        sig = v(v)

        def codegen(context, builder, signature, args):
            return _fence(builder, args[0])

        return sig, codegen
    return None
