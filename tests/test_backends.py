"""One source, every backend: kinds, devices, dtypes, autograd, jit, lists, traces."""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk
from conftest import (
    CLASS_AXIS,
    LOSS_NAMES,
    REFS,
    SPARSE,
    Backend,
    assert_close,
    loss_dtype,
    make_case,
    round_to,
    run_loss,
    unreduced_shape,
)

REDUCTIONS = ("none", "sum", "mean")
SHAPE = (3, 4)


def _case(name, seed=0, shape=SHAPE):
    return make_case(name, np.random.default_rng(seed), shape=shape)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_kind_dtype_shape_in_equals_out(xp, name, dtype):
    """Output is the input's kind, its dtype (float32 for half input), the stated shape."""
    xp.require(dtype)
    x, t = _case(name)
    if dtype in ("float16", "bfloat16") and name in (
        "categorical_cross_entropy",
        "sparse_categorical_cross_entropy",
    ):
        x = np.full(SHAPE, 0.25)  # rows that sum to 1 exactly in half precision
    for reduction in REDUCTIONS:
        v, g = run_loss(xp, name, x, t, dtype, reduction=reduction)
        expected_shape = unreduced_shape(name, SHAPE) if reduction == "none" else ()
        assert v.shape == expected_shape, (name, reduction, v.shape)
        exp_v, exp_g = REFS[name](
            round_to(x, dtype), t if name in SPARSE else round_to(t, dtype), reduction=reduction
        )
        assert_close(v, exp_v, dtype)
        assert_close(g, exp_g, dtype, kind="grad")


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "sigmoid", "log_sigmoid"])
def test_activation_kinds_and_dtypes(xp, name):
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    for dtype in ("float32", "float64", "float16", "bfloat16"):
        if not xp.supports(dtype):
            continue
        out = getattr(lk, name)(xp.asarray(x, dtype))
        assert xp.is_native(out)
        assert xp.dtype_name(out) == dtype


def _on_device(xp: Backend, a, dtype=None):
    arr = xp.asarray(a, dtype)
    if xp.name == "array_api_strict":
        import array_api_strict as xs

        return xs.asarray(arr, device=xs.Device("device1"))
    return arr


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_output_on_input_device(xp, name):
    """Results stay where the input lives (array_api_strict has a second device to try)."""
    x, t = _case(name)
    xb = _on_device(xp, x)
    tb = _on_device(xp, t)
    kw = {}
    if name == "sparse_softmax_cross_entropy":
        kw["class_weight"] = _on_device(xp, np.ones(SHAPE[-1]))
    for reduction in REDUCTIONS:
        v = getattr(lk, name)(xb, tb, reduction=reduction, **kw)
        v2, g = lk.value_and_grad(getattr(lk, name))(xb, tb, reduction=reduction, **kw)
        for arr in (v, v2, g):
            assert xp.device(arr) == xp.device(xb), (name, reduction)
    for act in ("softmax", "log_softmax", "logsumexp", "sigmoid", "log_sigmoid"):
        assert xp.device(getattr(lk, act)(xb)) == xp.device(xb), act


_OPTS = {
    "softmax_cross_entropy": dict(label_smoothing=0.1, sample_weight=[1.0, 0.5, 2.0]),
    "sparse_softmax_cross_entropy": dict(
        class_weight=[1.0, 0.5, 2.0, 1.5],
        ignore_index=-100,
        label_smoothing=0.1,
        sample_weight=[1.0, 0.5, 2.0],
    ),
    "categorical_cross_entropy": dict(sample_weight=[1.0, 0.5, 2.0]),
    "sparse_categorical_cross_entropy": dict(sample_weight=[1.0, 0.5, 2.0]),
    "binary_cross_entropy": dict(sample_weight=[1.0, 0.5, 2.0]),
    "sigmoid_cross_entropy": dict(
        pos_weight=[1.0, 2.0, 0.5, 3.0], label_smoothing=0.1, sample_weight=[1.0, 0.5, 2.0]
    ),
    "mean_squared_error": dict(sample_weight=[1.0, 0.5, 2.0]),
    "mean_absolute_error": dict(sample_weight=[1.0, 0.5, 2.0]),
}


def _opts_on(xp, name, dtype):
    return {
        k: (xp.asarray(np.asarray(v), loss_dtype(dtype)) if isinstance(v, list) else v)
        for k, v in _OPTS[name].items()
    }


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_autograd_through_every_loss(autograd_xp, name, dtype):
    """torch autograd and jax.vjp through the loss equal the reference gradient."""
    xp = autograd_xp
    x, t = _case(name, seed=1)
    if name == "sparse_softmax_cross_entropy":
        t[1] = -100
    if dtype in ("float16", "bfloat16") and name in (
        "categorical_cross_entropy",
        "sparse_categorical_cross_entropy",
    ):
        x = np.full(SHAPE, 0.25)
    xb = xp.asarray(x, dtype)
    tb = xp.asarray(t, "int64" if name in SPARSE else dtype)
    for reduction in REDUCTIONS:
        opts = _opts_on(xp, name, dtype)
        v, g = xp.autograd(getattr(lk, name), xb, tb, reduction=reduction, **opts)
        assert xp.dtype_name(v) == loss_dtype(dtype)
        assert xp.dtype_name(g) == dtype
        exp_v, exp_g = REFS[name](
            round_to(x, dtype),
            t if name in SPARSE else round_to(t, dtype),
            reduction=reduction,
            **_OPTS[name],
        )
        assert_close(xp.to_numpy(v), exp_v, dtype)
        assert_close(xp.to_numpy(g), exp_g, dtype, kind="grad")


def test_torch_backward():
    """The DESIGN.md quick start: .backward() on the loss of a leaf tensor."""
    torch = pytest.importorskip("torch")
    logits = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]], dtype=np.float32)
    labels = np.array([2, 1])
    t = torch.tensor(logits, requires_grad=True)
    loss = lk.sparse_softmax_cross_entropy(t, torch.tensor(labels))
    loss.backward()
    ref = torch.tensor(logits, requires_grad=True)
    ref_loss = torch.nn.functional.cross_entropy(ref, torch.tensor(labels))
    ref_loss.backward()
    assert isinstance(loss, torch.Tensor) and loss.dtype == torch.float32
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-6)
    np.testing.assert_allclose(t.grad.numpy(), ref.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_jax_jit_and_grad_through_every_loss(name):
    jax = pytest.importorskip("jax")
    xp = Backend("jax")
    x, t = _case(name, seed=3)
    if name == "sparse_softmax_cross_entropy":
        t[0] = -100
    xb, tb = xp.asarray(x), xp.asarray(t)
    opts = _opts_on(xp, name, "float64")
    fn = getattr(lk, name)
    for reduction in ("sum", "mean"):
        eager = fn(xb, tb, reduction=reduction, **opts)
        jitted = jax.jit(lambda a, b, r=reduction: fn(a, b, reduction=r, **opts))(xb, tb)
        g = jax.jit(jax.grad(lambda a, b, r=reduction: fn(a, b, reduction=r, **opts)))(xb, tb)
        exp_v, exp_g = REFS[name](x, t, reduction=reduction, **_OPTS[name])
        assert_close(np.asarray(eager), exp_v)
        assert_close(np.asarray(jitted), exp_v)
        assert_close(np.asarray(g), exp_g, kind="grad")
        # the usual JAX pattern: the truth (and options) closed over, only the input traced
        g = jax.jit(jax.grad(lambda a, r=reduction: fn(a, tb, reduction=r, **opts)))(xb)
        assert_close(np.asarray(g), exp_g, kind="grad")
        # value_and_grad (analytic) inside jit too
        v2, g2 = jax.jit(
            lambda a, b, r=reduction: lk.value_and_grad(fn)(a, b, reduction=r, **opts)
        )(xb, tb)
        assert_close(np.asarray(v2), exp_v)
        assert_close(np.asarray(g2), exp_g, kind="grad")


def test_jax_trace_skips_value_checks_keeps_shape_and_dtype_checks():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3)))
    bad = jnp.asarray([0, 7])  # out of range: cannot be seen inside a trace
    f = jax.jit(lambda a, b: lk.sparse_softmax_cross_entropy(a, b, reduction="none"))
    out = f(x, bad)  # must not raise (value checks need concrete values)
    assert out.shape == (2,)
    with pytest.raises(ValueError, match="labels"):
        jax.jit(lambda a, b: lk.sparse_softmax_cross_entropy(a, b))(x, jnp.asarray([0, 1, 2]))
    with pytest.raises(TypeError, match="labels"):
        jax.jit(lambda a, b: lk.sparse_softmax_cross_entropy(a, b))(x, jnp.asarray([0.0, 1.0]))
    with pytest.raises(ValueError, match="targets"):
        jax.jit(lambda a, b: lk.softmax_cross_entropy(a, b))(x, jnp.ones((2, 4)) / 4)
    with pytest.raises(ValueError, match="class_weight"):
        jax.jit(lambda a, w: lk.sparse_softmax_cross_entropy(a, bad, class_weight=w))(
            x, jnp.ones(4)
        )
    with pytest.raises(ValueError, match="reduction"):
        jax.jit(lambda a: lk.sparse_softmax_cross_entropy(a, bad, reduction="avg"))(x)
    with pytest.raises(ValueError, match="target"):
        jax.jit(lambda a, b: lk.mean_squared_error(a, b))(x, jnp.ones((3, 2)))
    # outside the trace the same out-of-range label is an error
    with pytest.raises(ValueError, match="7"):
        lk.sparse_softmax_cross_entropy(x, bad)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_lists_become_numpy(name):
    x, t = _case(name, seed=4)
    v = getattr(lk, name)(x.tolist(), t.tolist(), reduction="none")
    assert isinstance(v, np.ndarray)
    exp_v, _ = REFS[name](x, t, reduction="none")
    assert_close(v, exp_v)
    v, g = lk.value_and_grad(getattr(lk, name))(x.tolist(), t.tolist())
    assert isinstance(g, np.ndarray) and g.shape == x.shape


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_numpy_and_lists_among_the_others_follow_the_first(autograd_xp, name):
    """The first array decides the kind; NumPy truth / weights are converted to it."""
    xp = autograd_xp
    x, t = _case(name, seed=5)
    opts = dict(_OPTS[name])
    v = getattr(lk, name)(
        xp.asarray(x),
        t,
        reduction="sum",
        **{k: (np.asarray(o) if isinstance(o, list) else o) for k, o in opts.items()},
    )
    assert xp.is_native(v)
    exp_v, _ = REFS[name](x, t, reduction="sum", **opts)
    assert_close(xp.to_numpy(v), exp_v)
    v = getattr(lk, name)(xp.asarray(x), t.tolist(), reduction="sum", **opts)
    assert xp.is_native(v)
    assert_close(xp.to_numpy(v), exp_v)


@pytest.mark.parametrize("name", [n for n in CLASS_AXIS])
def test_class_axis_removed_kdim_every_backend(xp, name):
    x, t = _case(name, seed=6, shape=(2, 3, 5))
    v, _ = run_loss(xp, name, x, t, reduction="none")
    assert v.shape == (2, 3)


# --------------------------------------------------------------------------
# autograd at the edges: nothing counted, extreme inputs, eps = 0
# (a where() that hides a 0/0 or an inf in the forward pass still leaks NaN
# into the backward pass; the spec wants 0 and finite gradients)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_autograd_nothing_counted_is_zero_not_nan(autograd_xp, reduction):
    xp = autograd_xp
    x = xp.asarray(np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]))
    cases = [
        dict(labels=np.array([-100, -100]), ignore_index=-100),
        dict(
            labels=np.array([-100, -100]),
            ignore_index=-100,
            label_smoothing=0.2,
            class_weight=xp.asarray(np.array([1.0, 2.0, 3.0])),
        ),
        dict(labels=np.array([0, 2]), sample_weight=xp.asarray(np.zeros(2))),
    ]
    for case in cases:
        y = xp.asarray(case.pop("labels"))
        v, g = xp.autograd(lk.sparse_softmax_cross_entropy, x, y, reduction=reduction, **case)
        np.testing.assert_array_equal(xp.to_numpy(v), np.zeros(2) if reduction == "none" else 0.0)
        np.testing.assert_array_equal(xp.to_numpy(g), np.zeros((2, 3)), err_msg=str(case))
    for name in ("mean_squared_error", "sigmoid_cross_entropy", "binary_cross_entropy"):
        p = xp.asarray(np.array([[0.25, 0.5], [0.75, 0.5]]))
        v, g = xp.autograd(
            getattr(lk, name),
            p,
            xp.asarray(np.ones((2, 2))),
            sample_weight=xp.asarray(np.zeros(2)),
            reduction=reduction,
        )
        np.testing.assert_array_equal(xp.to_numpy(g), np.zeros((2, 2)), err_msg=name)


def test_autograd_nothing_counted_under_jit():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x = jnp.asarray(np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]))
    y = jnp.asarray(np.array([-100, -100]))
    f = jax.jit(
        lambda a: lk.sparse_softmax_cross_entropy(a, y, ignore_index=-100, label_smoothing=0.1)
    )
    assert float(f(x)) == 0.0
    np.testing.assert_array_equal(np.asarray(jax.jit(jax.grad(f))(x)), np.zeros((2, 3)))


BIG = 3e38


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_autograd_extreme_logits_finite(autograd_xp, dtype):
    """Autograd through every logit loss at ±3e38 / ±1e4: finite, and equal to the derivation."""
    xp = autograd_xp
    x = np.array([[BIG, -BIG, 0.0, 1e4], [-1e4, 1e4, BIG, BIG]])
    xb = xp.asarray(x, dtype)
    y = xp.asarray(np.array([0, 1]))
    _, g = xp.autograd(lk.sparse_softmax_cross_entropy, xb, y, reduction="sum")
    # d/dx = softmax(x) - onehot: row 0 softmax = e0 -> 0; row 1 softmax = [0, 0, .5, .5]
    np.testing.assert_allclose(xp.to_numpy(g), [[0, 0, 0, 0], [0, -1, 0.5, 0.5]], atol=1e-6)
    t = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]])
    _, g = xp.autograd(lk.softmax_cross_entropy, xb, xp.asarray(t, dtype), reduction="sum")
    np.testing.assert_allclose(xp.to_numpy(g), [[0, 0, 0, 0], [0, 0, 0, 0]], atol=1e-6)
    tb = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.5, 1.0]])
    for pw in (None, 2.0):
        _, g = xp.autograd(
            lk.sigmoid_cross_entropy, xb, xp.asarray(tb, dtype), pos_weight=pw, reduction="sum"
        )
        s = (x > 0).astype(float)
        s[0, 2] = 0.5  # sigmoid(0)
        q = 1.0 if pw is None else pw
        # d/dx = sigmoid(x) (1 - t + q t) - q t
        np.testing.assert_allclose(
            xp.to_numpy(g), s * (1 - tb + q * tb) - q * tb, atol=1e-6, err_msg=f"pos_weight={pw}"
        )


def test_autograd_eps0_zero_terms_have_zero_gradient(autograd_xp):
    """eps = 0: a term with target 0 at p = 0 is identically 0, so its gradient is 0, not NaN.

    categorical: t = [0, 1, 0], p = [0, .25, .75] -> d/dp = -t/p = [0, -4, 0].
    binary: p = [0, 1], t = [0, 1] -> d/dp = -t/p + (1-t)/(1-p) = [1, -1].
    """
    xp = autograd_xp
    _, g = xp.autograd(
        lk.categorical_cross_entropy,
        xp.asarray(np.array([[0.0, 0.25, 0.75]])),
        xp.asarray(np.array([[0.0, 1.0, 0.0]])),
        eps=0.0,
        reduction="sum",
    )
    np.testing.assert_allclose(xp.to_numpy(g), [[0.0, -4.0, 0.0]], rtol=1e-12)
    _, g = xp.autograd(
        lk.binary_cross_entropy,
        xp.asarray(np.array([0.0, 1.0])),
        xp.asarray(np.array([0.0, 1.0])),
        eps=0.0,
        reduction="sum",
    )
    np.testing.assert_allclose(xp.to_numpy(g), [1.0, -1.0], rtol=1e-12)


def test_mixed_option_dtypes_follow_the_input(autograd_xp):
    """float32 logits with float64 NumPy weights: the loss stays float32 (input's dtype)."""
    xp = autograd_xp
    x = xp.asarray(np.random.default_rng(9).normal(size=(3, 4)), "float32")
    v = lk.sparse_softmax_cross_entropy(
        x, np.array([0, 1, 3]), class_weight=np.ones(4), sample_weight=np.ones(3)
    )
    assert xp.is_native(v) and xp.dtype_name(v) == "float32"
    v = lk.sigmoid_cross_entropy(
        x, np.zeros((3, 4)), pos_weight=np.ones(4), sample_weight=np.ones(3)
    )
    assert xp.is_native(v) and xp.dtype_name(v) == "float32"


@pytest.mark.parametrize("label_dtype", ["int32", "int64", "uint8", "int16"])
def test_integer_label_dtypes(xp, label_dtype):
    if xp.name == "torch" and label_dtype == "uint8":
        label_dtype = "int32"  # torch's uint8 is for masks; int32 is the common case there
    x = np.random.default_rng(10).normal(size=(4, 3))
    y = np.array([0, 2, 1, 2])
    v = lk.sparse_softmax_cross_entropy(xp.asarray(x), xp.asarray(y, label_dtype), reduction="none")
    exp_v, _ = REFS["sparse_softmax_cross_entropy"](x, y, reduction="none")
    assert_close(xp.to_numpy(v), exp_v)


@pytest.mark.parametrize(
    "name", ["softmax_cross_entropy", "sparse_softmax_cross_entropy", "sigmoid_cross_entropy"]
)
def test_autograd_at_zero_logits(autograd_xp, name):
    """Zero-initialised logits (x == 0 exactly, all tied): autograd gives the true gradient.

    Derivations: softmax CE: softmax(0) - t = 1/C - t; sigmoid CE: sigmoid(0) - t = 0.5 - t
    (with pos_weight q: 0.5 (1 - t + q t) - q t).
    """
    xp = autograd_xp
    x = np.zeros((3, 4))
    _, t = _case(name, seed=12)
    for opts in ({}, {"pos_weight": 3.0}) if name == "sigmoid_cross_entropy" else ({},):
        _, g = xp.autograd(getattr(lk, name), xp.asarray(x), xp.asarray(t), reduction="sum", **opts)
        _, exp_g = REFS[name](x, t, reduction="sum", **opts)
        assert_close(xp.to_numpy(g), exp_g, kind="grad", err_msg=f"autograd {opts}")
        # and the analytic gradient agrees
        _, g = lk.value_and_grad(getattr(lk, name))(
            xp.asarray(x), xp.asarray(t), reduction="sum", **opts
        )
        assert_close(xp.to_numpy(g), exp_g, kind="grad", err_msg=f"value_and_grad {opts}")


PUBLIC = {
    "softmax", "log_softmax", "logsumexp", "sigmoid", "log_sigmoid",
    "softmax_cross_entropy", "sparse_softmax_cross_entropy", "categorical_cross_entropy",
    "sparse_categorical_cross_entropy", "binary_cross_entropy", "sigmoid_cross_entropy",
    "mean_squared_error", "mean_absolute_error", "value_and_grad",
    "LosskitWarning", "ProbabilitiesAsLogitsWarning", "UnnormalizedProbabilitiesWarning",
}  # fmt: skip


def test_public_names():
    assert PUBLIC <= set(lk.__all__)
    for name in PUBLIC:
        assert getattr(lk, name) is not None


def test_import_and_numpy_use_pull_in_no_framework():
    """losskit never imports a framework it was not handed (DESIGN.md: _backend.py)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, losskit as lk\n"
        "lk.sparse_softmax_cross_entropy(np.zeros((4, 3)), np.array([0, 1, 2, 0]))\n"
        "lk.value_and_grad(lk.sigmoid_cross_entropy)(np.zeros(3), np.ones(3))\n"
        "heavy = {'torch', 'jax', 'tensorflow', 'keras', 'optax', 'matplotlib'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_jax_jit_with_traced_options(name):
    """Array options (weights) passed as jit arguments, i.e. traced, not closed over."""
    jax = pytest.importorskip("jax")
    xp = Backend("jax")
    x, t = _case(name, seed=20)
    arrays = {k: v for k, v in _OPTS[name].items() if isinstance(v, list)}
    rest = {k: v for k, v in _OPTS[name].items() if not isinstance(v, list)}
    keys = sorted(arrays)
    fn = getattr(lk, name)

    def loss(a, b, *ws):
        return fn(a, b, **dict(zip(keys, ws, strict=True)), **rest)

    ws = [xp.asarray(np.asarray(arrays[k])) for k in keys]
    v = jax.jit(loss)(xp.asarray(x), xp.asarray(t), *ws)
    g = jax.jit(jax.grad(loss))(xp.asarray(x), xp.asarray(t), *ws)
    exp_v, exp_g = REFS[name](x, t, **_OPTS[name])
    assert_close(np.asarray(v), exp_v)
    assert_close(np.asarray(g), exp_g, kind="grad")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_half_precision_with_every_option(xp, name, dtype):
    xp.require(dtype)
    x, t = _case(name, seed=21)
    if name in ("categorical_cross_entropy", "sparse_categorical_cross_entropy"):
        x = np.full(SHAPE, 0.25)
    for reduction in REDUCTIONS:
        v, g = run_loss(xp, name, x, t, dtype, reduction=reduction, **_OPTS[name])
        exp_v, exp_g = REFS[name](
            round_to(x, dtype),
            t if name in SPARSE else round_to(t, dtype),
            reduction=reduction,
            **_OPTS[name],
        )
        assert_close(v, exp_v, dtype)
        assert_close(g, exp_g, dtype, kind="grad")
