"""Scalar building blocks that LLVM can vectorise: maxnum, and an exp per dtype.

numba on this machine has no SVML, so ``math.exp`` in a loop stays scalar.
For float32 a range-reduced polynomial (Cephes ``expf``) written with plain
arithmetic, a float-to-int conversion and a bit cast vectorises; its relative
error on [-87, 0] is about 1 ulp. float64 keeps ``math.exp`` (accurate, scalar).

``fexp`` is overloaded on the argument type, so one kernel source serves both
dtypes. ``maxnum`` lowers to ``llvm.maxnum``, which the loop vectoriser turns
into a vector max reduction (numba's own ``max`` compiles to compare-and-branch
code that does not vectorise).
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
_P0 = np.float32(1.9875691500e-4)
_P1 = np.float32(1.3981999507e-3)
_P2 = np.float32(8.3334519073e-3)
_P3 = np.float32(4.1665795894e-2)
_P4 = np.float32(1.6666665459e-1)
_P5 = np.float32(5.0000001201e-1)
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


def _exp32_ir(builder, x):
    """Cephes expf as LLVM IR: exp(x) = 2^n exp(r), n = round(x / ln2), |r| <= ln2 / 2.

    Only ``contract`` (FMA) is allowed on these instructions, whatever the
    calling kernel's fast-math flags, so the two-constant range reduction
    keeps its precision.
    """
    f32 = ir.FloatType()
    i32 = ir.IntType(32)
    fm = ("contract",)

    def const(v):
        return ir.Constant(f32, float(np.float32(v)))

    def call(name, *args):
        fnty = ir.FunctionType(f32, [f32] * len(args))
        return builder.call(builder.module.declare_intrinsic(name, [f32], fnty), args)

    # No clamp: for x < _EXP_LO the integer part is out of range, and the
    # select below replaces that lane by 0 (exp(-inf) included).
    xc = x
    n = call("llvm.floor", builder.fadd(builder.fmul(xc, const(_LOG2E), flags=fm), const(_HALF)))
    r = builder.fsub(xc, builder.fmul(n, const(_LN2_HI), flags=fm), flags=fm)
    r = builder.fsub(r, builder.fmul(n, const(_LN2_LO), flags=fm), flags=fm)
    z = builder.fmul(r, r, flags=fm)
    p = const(_P0)
    for coeff in (_P1, _P2, _P3, _P4, _P5):
        p = builder.fadd(builder.fmul(p, r, flags=fm), const(coeff), flags=fm)
    p = builder.fadd(builder.fadd(builder.fmul(p, z, flags=fm), r, flags=fm), const(_ONE), flags=fm)
    # 2^n from the exponent bits; n is in [-126, 127] for x in [_EXP_LO, _EXP_HI].
    k = builder.shl(
        builder.add(builder.fptosi(n, i32), ir.Constant(i32, 127)), ir.Constant(i32, 23)
    )
    e = builder.fmul(p, builder.bitcast(k, f32), flags=fm)
    # Below the range: 0. NaN compares false and stays NaN through p.
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
def fence(typingctx, x):
    """x, behind ``llvm.arithmetic.fence``: fast-math reassociation cannot reach through it.

    ``fence(m - x) + log_s`` stays that sum; without the fence LLVM may compute
    ``(m + log_s) - x``, which rounds ``log_s`` at the scale of ``m``.
    """
    if isinstance(x, types.Float):
        sig = x(x)

        def codegen(context, builder, signature, args):
            lty = context.get_value_type(signature.return_type)
            fnty = ir.FunctionType(lty, [lty])
            fn = builder.module.declare_intrinsic("llvm.arithmetic.fence", [lty], fnty)
            return builder.call(fn, args)

        return sig, codegen
    return None
