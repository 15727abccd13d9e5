"""The CTC adapters against the frameworks themselves: PyTorch's ``F.ctc_loss`` and
``nn.CTCLoss``, optax's ``ctc_loss`` and ``ctc_loss_with_forward_probs``, Keras 3's
``ctc`` and ``CTC`` (TensorFlow backend).  Values and gradients (torch autograd,
``jax.grad``, ``tf.GradientTape``), every reduction, blank not 0, repeated labels,
zero-length labels, infeasible examples, lengths and paddings shorter than the padded
sizes, float16, and the pinned errors of the deliberate differences.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from conftest import GRAD_TOL, LOSS_TOL, assert_close, round_to

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.nn.functional")

from losskit.compat import torch as LF  # noqa: E402

# --------------------------------------------------------------------------- PyTorch

T, N, C = 6, 4, 5
# example 2 is infeasible (three 2s need 5 frames, it has 4); example 3 has no label
TARGETS = np.array([[1, 1, 2], [3, 4, 0], [2, 2, 2], [4, 4, 4]])
INPUT_LENGTHS = np.array([6, 4, 4, 3])
TARGET_LENGTHS = np.array([3, 2, 3, 0])


def _log_probs(normalised, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, N, C, generator=g, dtype=torch.float64) * 2
    return (x.log_softmax(-1) if normalised else x).to(dtype)


def _torch_pair(fn_ref, fn_ours, x):
    a = x.detach().clone().requires_grad_(True)
    b = x.detach().clone().requires_grad_(True)
    ra, rb = fn_ref(a), fn_ours(b)
    (ga,) = torch.autograd.grad(ra.sum(), a)
    (gb,) = torch.autograd.grad(rb.sum(), b)
    return ra.detach(), rb.detach(), ga, gb


def _same(got, expected, dtype="float64", kind="loss"):
    """Equal, inf and NaN in the same places."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(np.isinf(got), np.isinf(expected))
    fin = np.isfinite(expected)
    assert_close(got[fin], expected[fin], dtype, kind=kind)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("normalised", [True, False])
def test_ctc_loss_matches_torch(reduction, zero_infinity, normalised):
    """Values and PyTorch's own gradient (exp(lp) - gamma), also for log-probabilities
    that are not normalised (PyTorch takes them as they are)."""
    x = _log_probs(normalised)
    args = (torch.tensor(TARGETS), torch.tensor(INPUT_LENGTHS), torch.tensor(TARGET_LENGTHS))
    kw = dict(reduction=reduction, zero_infinity=zero_infinity)
    ra, rb, ga, gb = _torch_pair(
        lambda z: F.ctc_loss(z, *args, **kw), lambda z: LF.ctc_loss(z, *args, **kw), x
    )
    _same(rb, ra)
    _same(gb, ga, kind="grad")
    if not zero_infinity:
        # NaN on the infeasible example's 4 frames, 0 after them, in both
        assert torch.isnan(gb[:4, 2]).all() and (gb[4:, 2] == 0).all()


def test_blank_not_zero_concatenated_targets_and_float32():
    x = _log_probs(True, torch.float32, seed=1)
    blank = C - 1
    targets = np.array([[0, 0, 2], [3, 1, 3], [2, 1, 0], [1, 2, 3]])
    lengths = np.array([3, 2, 2, 1])
    flat = np.concatenate([t[:n] for t, n in zip(targets, lengths, strict=True)])
    il = torch.tensor(INPUT_LENGTHS)
    for tg in (torch.tensor(targets), torch.tensor(flat)):
        ra, rb, ga, gb = _torch_pair(
            lambda z, tg=tg: F.ctc_loss(z, tg, il, torch.tensor(lengths), blank=blank),
            lambda z, tg=tg: LF.ctc_loss(z, tg, il, torch.tensor(lengths), blank=blank),
            x,
        )
        assert rb.dtype == torch.float32
        assert_close(rb.numpy(), ra.numpy(), "float32")
        assert_close(gb.numpy(), ga.numpy(), "float32", kind="grad")


def test_unbatched_and_tuple_lengths():
    x = _log_probs(True)[:, 0]
    tg = torch.tensor([1, 1, 2])
    for reduction in ("none", "mean", "sum"):
        ref = F.ctc_loss(x, tg, torch.tensor(6), torch.tensor(3), reduction=reduction)
        got = LF.ctc_loss(x, tg, torch.tensor(6), torch.tensor(3), reduction=reduction)
        assert got.shape == ref.shape == ()
        assert_close(got.numpy(), ref.numpy())
    lp = _log_probs(True)
    ref = F.ctc_loss(lp, torch.tensor(TARGETS), (6, 4, 5, 3), (3, 2, 2, 0), reduction="none")
    got = LF.ctc_loss(lp, torch.tensor(TARGETS), (6, 4, 5, 3), (3, 2, 2, 0), reduction="none")
    assert_close(got.numpy(), ref.numpy())


def test_nn_ctcloss_matches_torch():
    from losskit.compat.torch import nn

    x = _log_probs(True)
    args = (torch.tensor(TARGETS), torch.tensor(INPUT_LENGTHS), torch.tensor(TARGET_LENGTHS))
    ours = nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
    ref = torch.nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
    assert isinstance(ours, torch.nn.Module)
    ra, rb, ga, gb = _torch_pair(lambda z: ref(z, *args), lambda z: ours(z, *args), x)
    assert_close(rb.numpy(), ra.numpy())
    assert_close(gb.numpy(), ga.numpy(), kind="grad")


def test_float16_computed_in_float32():
    """PyTorch's CPU kernel refuses float16; the adapter computes in float32 and rounds once."""
    x = _log_probs(True).to(torch.float16)
    args = (torch.tensor(TARGETS), torch.tensor(INPUT_LENGTHS), torch.tensor(TARGET_LENGTHS))
    got = LF.ctc_loss(x, *args, reduction="none", zero_infinity=True)
    ref = F.ctc_loss(x.float(), *args, reduction="none", zero_infinity=True)
    assert got.dtype == torch.float16
    assert_close(got.float().numpy(), ref.half().float().numpy(), "float16")


def test_jax_gets_pytorchs_gradient():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x = _log_probs(False, seed=3)
    args = (torch.tensor(TARGETS), torch.tensor(INPUT_LENGTHS), torch.tensor(TARGET_LENGTHS))
    ra, _, ga, _ = _torch_pair(
        lambda z: F.ctc_loss(z, *args, zero_infinity=True),
        lambda z: LF.ctc_loss(z, *args, zero_infinity=True),
        x,
    )
    jargs = tuple(jnp.asarray(a) for a in (TARGETS, INPUT_LENGTHS, TARGET_LENGTHS))

    def f(z):
        return LF.ctc_loss(z, *jargs, zero_infinity=True)

    v, g = jax.value_and_grad(f)(jnp.asarray(x.numpy()))
    assert_close(float(v), float(ra))
    assert_close(np.asarray(g), ga.numpy(), kind="grad")
    vj, gj = jax.jit(jax.value_and_grad(f))(jnp.asarray(x.numpy()))
    assert_close(float(vj), float(ra))
    assert_close(np.asarray(gj), ga.numpy(), kind="grad")


def test_torch_compile_equals_torch_and_nan_rule():
    """Compiled (fullgraph, aot_eager): PyTorch's numbers; a target equal to the blank
    makes its example NaN instead of raising."""
    x = _log_probs(True)[:4]  # 4 frames: a shorter graph to compile
    il, tl = torch.tensor([4, 4, 4, 3]), torch.tensor(TARGET_LENGTHS)

    def f(z, tg):
        return LF.ctc_loss(z, tg, il, tl, reduction="none", zero_infinity=True)

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    a = x.clone().requires_grad_(True)
    ref = F.ctc_loss(a, torch.tensor(TARGETS), il, tl, reduction="none", zero_infinity=True)
    assert float(ref[2].detach()) == 0.0  # infeasible, zeroed
    (ga,) = torch.autograd.grad(ref.sum(), a)
    b = x.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = compiled(b, torch.tensor(TARGETS))
        (gb,) = torch.autograd.grad(got.sum(), b)
        bad_targets = TARGETS.copy()
        bad_targets[1, 0] = 0  # the blank inside example 1's label
        bad = compiled(x, torch.tensor(bad_targets))
    assert_close(got.detach().numpy(), ref.detach().numpy())
    assert_close(gb.numpy(), ga.numpy(), kind="grad")
    bad = bad.numpy()
    assert np.isnan(bad[1]) and np.isfinite(bad[[0, 2, 3]]).all()


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            dict(targets=np.array([[1, 0, 2], [3, 4, 0], [2, 2, 2], [4, 4, 4]])),
            ValueError,
            "`targets` must be class ids in [0, 5) other than blank=0 within `target_lengths`; "
            "got 0 at position (0, 1)",
        ),
        (
            dict(targets=np.array([1, 1, 2, 3, 9, 2, 2, 2])),
            ValueError,
            "`targets` must be class ids in [0, 5) other than blank=0; got 9 at position (4,)",
        ),
        (
            dict(targets=np.array([1, 1, 2, 3, 4])),
            ValueError,
            "`targets` given concatenated (1-D) must hold sum(target_lengths) = 8 ids; got 5",
        ),
        (
            dict(input_lengths=np.array([7, 4, 4, 3])),
            ValueError,
            "`input_lengths` must be in [0, 6] (the frames); got 7 at position (0,)",
        ),
        (
            dict(target_lengths=np.array([4, 2, 3, 0])),
            ValueError,
            "`target_lengths` must be in [0, 3] (the padded labels); got 4 at position (0,)",
        ),
        (
            dict(input_lengths=np.array([6.0, 4, 4, 3])),
            TypeError,
            "`input_lengths` must be an integer array; got dtype float64",
        ),
        (dict(blank=5), ValueError, "`blank` must be an int in [0, 5); got 5"),
        (dict(reduction="avg"), ValueError, "avg is not a valid value for reduction"),
        (
            dict(log_probs=np.zeros((2, 3, 4, 5))),
            ValueError,
            "`log_probs` must have shape (T, N, C), time first, or (T, C) unbatched; "
            "got (2, 3, 4, 5)",
        ),
    ],
)
def test_ctc_loss_errors(change, error, message):
    kw = dict(
        log_probs=_log_probs(True).numpy(),
        targets=TARGETS,
        input_lengths=INPUT_LENGTHS,
        target_lengths=TARGET_LENGTHS,
    )
    kw.update(change)
    with pytest.raises(error, match=re.escape(message)):
        LF.ctc_loss(**kw)


def test_empty_batch_mean_is_nan():
    x = np.zeros((3, 0, 4))
    empty = np.zeros((0,), dtype=np.int64)
    assert math.isnan(float(LF.ctc_loss(x, np.zeros((0, 2), np.int64), empty, empty)))
    assert float(LF.ctc_loss(x, np.zeros((0, 2), np.int64), empty, empty, reduction="sum")) == 0


# --------------------------------------------------------------------------- optax


def _optax_case(seed=0):
    rng = np.random.default_rng(seed)
    b, t, k = 4, 7, 5
    logits = rng.normal(size=(b, t, k)) * 2
    logit_paddings = np.zeros((b, t))
    logit_paddings[1, 5:] = 1  # trailing
    logit_paddings[2, [0, 3]] = 1  # padded frames inside the sequence: skipped
    logit_paddings[3, 2:] = 1  # 2 frames left for (4, 4), which needs 3: infeasible
    labels = np.array([[1, 1, 2], [3, 4, 2], [2, 2, 1], [4, 4, 0]])
    label_paddings = np.zeros((b, 3))
    label_paddings[1, 2:] = 1
    label_paddings[3, 2:] = 1
    return logits, logit_paddings, labels, label_paddings


def test_optax_ctc_loss_values_and_grad(optax):
    """blank_id 3 here (0, the default, in the other optax tests); jit in the NaN-rule test."""
    import jax
    import jax.numpy as jnp

    from losskit.compat import optax as lo

    blank_id = 3
    logits, lpad, labels, ypad = _optax_case()
    labels = np.where(labels == 3, 0, labels)
    args = tuple(jnp.asarray(a) for a in (lpad, labels, ypad))

    def ref(z):
        return optax.ctc_loss(z, *args, blank_id=blank_id)

    def ours(z):
        return lo.ctc_loss(z, *args, blank_id=blank_id)

    x = jnp.asarray(logits)
    expected = np.asarray(ref(x))
    assert expected[3] > 1e5  # optax's log_epsilon value for the infeasible example
    assert_close(np.asarray(ours(x)), expected)
    g_ref = jax.grad(lambda z: ref(z).sum())(x)
    g = jax.grad(lambda z: ours(z).sum())(x)
    assert_close(np.asarray(g), np.asarray(g_ref), kind="grad")
    # torch tensors get the same numbers (autograd: the core's backward where feasible)
    xt = torch.tensor(logits, requires_grad=True)
    v = lo.ctc_loss(xt, *(torch.tensor(a) for a in (lpad, labels, ypad)), blank_id=blank_id)
    v.sum().backward()
    assert_close(v.detach().numpy(), expected)
    assert_close(xt.grad.numpy(), np.asarray(g_ref), kind="grad")


def test_optax_forward_probs(optax):
    import jax
    import jax.numpy as jnp

    from losskit.compat import optax as lo

    logits, lpad, labels, ypad = _optax_case(seed=1)
    args = tuple(jnp.asarray(a) for a in (lpad, labels, ypad))
    x = jnp.asarray(logits)
    expected = optax.ctc_loss_with_forward_probs(x, *args)
    got = lo.ctc_loss_with_forward_probs(logits, lpad, labels, ypad)
    assert len(got) == 3
    for a, b in zip(got, expected, strict=True):
        assert a.shape == b.shape
        assert_close(a, np.asarray(b))
    g_ref = jax.grad(lambda z: optax.ctc_loss_with_forward_probs(z, *args)[1].sum())(x)
    g = jax.grad(lambda z: lo.ctc_loss_with_forward_probs(z, *args)[1].sum())(x)
    assert_close(np.asarray(g), np.asarray(g_ref), kind="grad")


def test_optax_float32_feasible(optax):
    import jax.numpy as jnp

    from losskit.compat import optax as lo

    logits, lpad, labels, ypad = _optax_case(seed=2)
    x = logits[:3].astype(np.float32)
    expected = optax.ctc_loss(jnp.asarray(x), lpad[:3], labels[:3], ypad[:3])
    got = lo.ctc_loss(x, lpad[:3], labels[:3], ypad[:3])
    assert got.dtype == np.float32
    assert_close(got, np.asarray(expected), "float32")


def test_optax_nan_rule_under_jit_and_errors(optax):
    """Under jax.jit: optax's numbers (its recursion only when an example is infeasible,
    through lax.cond), a blank inside a label NaN; eagerly a ValueError."""
    import jax
    import jax.numpy as jnp

    from losskit.compat import optax as lo

    logits, lpad, labels, ypad = _optax_case()
    f = jax.jit(lo.ctc_loss)
    expected = np.asarray(optax.ctc_loss(jnp.asarray(logits), lpad, labels, ypad))
    assert_close(np.asarray(f(jnp.asarray(logits), lpad, jnp.asarray(labels), ypad)), expected)
    feasible = (logits[:3], lpad[:3], labels[:3], ypad[:3])
    assert_close(
        np.asarray(f(*(jnp.asarray(a) for a in feasible))),
        np.asarray(optax.ctc_loss(*(jnp.asarray(a) for a in feasible))),
    )
    labels = labels.copy()
    labels[1, 0] = 0  # the blank inside example 1's label
    value = np.asarray(f(jnp.asarray(logits), lpad, jnp.asarray(labels), ypad))
    assert np.isnan(value[1]) and np.isfinite(value[[0, 2, 3]]).all()
    message = (
        "`labels` must be class ids in [0, 5) other than blank=0 within `label_lengths`; "
        "got 0 at position (1, 0)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        lo.ctc_loss(logits, lpad, labels, ypad)
    half = lpad.copy()
    half[0, 0] = 0.5
    with pytest.raises(ValueError, match=re.escape("`logit_paddings` must be 0 or 1; got 0.5")):
        lo.ctc_loss(logits, half, labels, ypad)


# Against a framework's own half-precision result: optax takes the log-softmax of
# half-precision logits in that precision (a rounding of |lp| ~ 3 per frame, T = 7
# frames), losskit in float32; a float64 reference on the rounded input is tight.
HALF_VS_FRAMEWORK = {  # (loss, gradient) tolerances; measured 3e-4 / 1.1e-3 and 2.5e-3 / 3.9e-3
    "float16": (dict(rtol=1e-3, atol=1e-3), dict(rtol=0.0, atol=3e-3)),
    "bfloat16": (dict(rtol=1e-2, atol=1e-2), dict(rtol=0.0, atol=1.5e-2)),
}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_optax_half_precision(optax, dtype):
    """Half-precision logits: optax's dtype (its default float), its values within the
    precision of its half-precision log-softmax, the exact loss of the rounded logits
    within float32's, and a gradient in the logits' dtype as optax's."""
    import jax
    import jax.numpy as jnp

    from losskit.compat import optax as lo

    logits, lpad, labels, ypad = _optax_case(seed=3)
    x = jnp.asarray(logits, dtype=getattr(jnp, dtype))
    args = tuple(jnp.asarray(a) for a in (lpad, labels, ypad))
    expected = optax.ctc_loss(x, *args)
    got = lo.ctc_loss(x, *args)
    assert got.dtype == expected.dtype == jnp.ones(()).dtype  # float64 here (x64 is on)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), **HALF_VS_FRAMEWORK[dtype][0])
    exact = lo.ctc_loss(round_to(logits, dtype), lpad, labels, ypad)  # float64 in, float64 out
    np.testing.assert_allclose(np.asarray(got), exact, **LOSS_TOL["float32"])
    feasible = slice(0, 3)  # example 3 is infeasible: optax's log_epsilon slope, not compared

    def grad(fn):
        return jax.grad(lambda z: fn(z, *args)[feasible].sum())(x)

    g, g_ref = grad(lo.ctc_loss), grad(optax.ctc_loss)
    assert g.dtype == g_ref.dtype == x.dtype
    g64, g_ref64 = (np.asarray(a.astype(jnp.float32), np.float64) for a in (g, g_ref))
    np.testing.assert_allclose(g64, g_ref64, **HALF_VS_FRAMEWORK[dtype][1])
    # torch half tensors and NumPy float16: optax's default (float32) result
    xt = torch.tensor(logits).to(getattr(torch, dtype))
    lt = lo.ctc_loss(xt, *(torch.tensor(a) for a in (lpad, labels, ypad)))
    assert lt.dtype == torch.float32
    np.testing.assert_allclose(lt.numpy(), np.asarray(got), **LOSS_TOL["float32"])
    if dtype == "float16":
        ln = lo.ctc_loss(logits.astype(np.float16), lpad, labels, ypad)
        assert ln.dtype == np.float32
        np.testing.assert_allclose(ln, np.asarray(got), **LOSS_TOL["float32"])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_optax_forward_probs_half_precision(optax, dtype):
    import jax.numpy as jnp

    from losskit.compat import optax as lo

    logits, lpad, labels, ypad = _optax_case(seed=4)
    x = jnp.asarray(logits, dtype=getattr(jnp, dtype))
    args = tuple(jnp.asarray(a) for a in (lpad, labels, ypad))
    expected = optax.ctc_loss_with_forward_probs(x, *args)
    got = lo.ctc_loss_with_forward_probs(x, *args)
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        # the tables hold log_epsilon (-1e5) sums: relative precision
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), **HALF_VS_FRAMEWORK[dtype][0])


# --------------------------------------------------------------------------- Keras


_Y_TRUE = np.array([[1, 1, 0], [2, 3, 1], [3, 0, 0], [0, 0, 0]])


def _keras_logits(seed=0, dtype=np.float32):
    return (np.random.default_rng(seed).normal(size=(4, 5, 4)) * 2).astype(dtype)


def test_keras_ctc_values_and_gradient(tf, keras_losses):
    from losskit.compat import tf as ltf

    x = _keras_logits()
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        ref = keras_losses.ctc(_Y_TRUE, xv)
        total = tf.reduce_sum(ref)
    g_ref = tape.gradient(total, xv).numpy()
    got = ltf.keras.losses.ctc(_Y_TRUE, x)
    assert got.dtype == np.float32
    assert_close(got, ref.numpy(), "float32")
    xt = torch.tensor(x, requires_grad=True)
    ltf.keras.losses.ctc(torch.tensor(_Y_TRUE), xt).sum().backward()
    assert_close(xt.grad.numpy(), g_ref, "float32", kind="grad")
    # float64: Keras rounds through float32; losskit computes in float64
    got64 = ltf.keras.losses.ctc(_Y_TRUE, x.astype(np.float64))
    assert got64.dtype == np.float64
    assert_close(got64, ref.numpy(), "float32")


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none", "mean"])
def test_keras_ctc_class(keras_losses, reduction):
    from losskit.compat import tf as ltf

    x = _keras_logits(seed=1)
    w = np.array([1.0, 2.0, 0.0, 0.5])
    ref = keras_losses.CTC(reduction=reduction)(_Y_TRUE, x, sample_weight=w)
    got = ltf.keras.losses.CTC(reduction=reduction)(_Y_TRUE, x, sample_weight=w)
    assert_close(got, np.asarray(ref), "float32")
    assert ltf.keras.losses.CTC().get_config() == keras_losses.CTC().get_config()


def test_keras_deliberate_differences(keras_losses):
    from losskit.compat import tf as ltf

    x = _keras_logits(seed=2)
    message = (
        "`y_true` must be padded with 0 after its labels (0 is the blank; Keras counts the "
        "non-zero ids); got 0 at position (0, 1)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        ltf.keras.losses.ctc(np.array([[1, 0, 2]]), x[:1])
    # (1, 1, 1) needs 5 frames; 3 given: inf (Keras: a finite artefact near 710)
    assert float(ltf.keras.losses.ctc(np.array([[1, 1, 1]]), x[:1, :3])[0]) == math.inf
    assert np.isfinite(np.asarray(keras_losses.ctc(np.array([[1, 1, 1]]), x[:1, :3]))).all()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_keras_ctc_half_precision(tf, keras_losses, dtype):
    """Keras casts half-precision y_pred to float32 and returns float32; the gradient
    comes back in y_pred's dtype."""
    from losskit.compat import tf as ltf

    x = _keras_logits(seed=3, dtype=np.float64)
    xv = tf.Variable(tf.cast(x, dtype))
    with tf.GradientTape() as tape:
        ref = keras_losses.ctc(_Y_TRUE, xv)
        total = tf.reduce_sum(ref)
    g_ref = tape.gradient(total, xv)
    assert ref.dtype == tf.float32 and g_ref.dtype == xv.dtype
    xt = torch.tensor(x).to(getattr(torch, dtype)).requires_grad_(True)
    got = ltf.keras.losses.ctc(torch.tensor(_Y_TRUE), xt)
    assert got.dtype == torch.float32
    assert_close(got.detach().numpy(), ref.numpy(), "float32")  # both float32 arithmetic
    got.sum().backward()
    assert xt.grad.dtype == xt.dtype
    g = xt.grad.float().numpy()
    np.testing.assert_allclose(g, tf.cast(g_ref, tf.float32).numpy(), **GRAD_TOL[dtype])
    klass = keras_losses.CTC()(_Y_TRUE, tf.cast(x, dtype))
    ours = ltf.keras.losses.CTC()(torch.tensor(_Y_TRUE), xt.detach())
    assert ours.dtype == torch.float32
    assert_close(ours.numpy(), klass.numpy(), "float32")
    if dtype == "float16":  # NumPy has float16 only
        got_np = ltf.keras.losses.ctc(_Y_TRUE, x.astype(np.float16))
        assert got_np.dtype == np.float32
        assert_close(got_np, ref.numpy(), "float32")
