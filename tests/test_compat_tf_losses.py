"""The catalogue's losses in losskit.compat.tf's keras.losses against Keras 3 (TensorFlow backend).

Each case is one call written for both modules (``m.keras.losses`` is Keras's
or the adapter's) and run on the same float64 arrays (the classes with
``dtype="float64"``): the value and its derivative with respect to every
floating argument, by ``tf.GradientTape`` for Keras, torch autograd and
``jax.grad`` for the adapter; NumPy arrays give the value.  Edge cases
(clipping, kinks, label conversion) are cases too; the adapter's deliberate
departures (errors where Keras computes a meaningless number) come after.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from _frameworks import tensorflow
from losskit.compat import tf as ctf

RNG = np.random.default_rng(20270303)
TOL = {"rtol": 1e-10, "atol": 1e-12}

X = RNG.normal(size=(4, 3)) * 2
T = RNG.normal(size=(4, 3)) * 2
POS_X = RNG.uniform(0.0, 5.0, size=(4, 3))
POS_T = RNG.uniform(0.0, 5.0, size=(4, 3))
SW_ROWS = RNG.random(4) + 0.2
# Errors at Huber's kinks (0 and +-1), and a row of both sides.
KINK_T = np.array([[0.25, 0.25, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0]])
KINK_P = np.array([[0.25, 1.25, -0.75, 1.0], [3.0, -2.0, 0.5, -0.5]])
P = RNG.uniform(0.05, 0.95, size=(4, 3))
T01 = RNG.random((4, 3))
T01[0] = [0.0, 1.0, 1.0]
# Probabilities at and near the clip bounds 1e-7 and 1 - 1e-7, against targets 0, 1, 0.5.
P_EDGE = np.array([[0.0, 1.0, 1e-9, 1 - 1e-9], [0.0, 1.0, 0.5, 1e-3], [0.3, 0.0, 1.0, 0.9]])
T_EDGE = np.array([[1.0, 0.0, 0.5, 1.0], [0.0, 1.0, 1.0, 0.0], [0.5, 0.5, 0.5, 0.0]])


def _softmax_rows(a, axis=-1):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


P_ROWS = _softmax_rows(RNG.normal(size=(4, 3)))
P_ROWS[0] = [0.0, 0.7, 0.3]  # a zero probability: clipped
T_ROWS = _softmax_rows(RNG.normal(size=(4, 3)) * 2)
T_ROWS[1] = [0.0, 1.0, 0.0]
LABELS = np.array([1, 0, 2, 2])
SIGNS = np.where(RNG.random((4, 3)) < 0.5, -1.0, 1.0)
ONE_HOT = np.eye(3)[LABELS]
# Margins at the kink (t p = 1) and on both sides of it.
KINK_SIGNS = np.array([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])
KINK_SCORES = np.array([[1.0, -1.0, 0.5, 2.0], [1.5, 1.0, -1.0, 0.0]])
# Keras's log_cosh subtracts log 2 computed in float32 whatever the dtype: its
# float64 value is this much too low.  The adapter subtracts log 2.
KERAS_LOG2_ERROR = float(np.float32(np.log(2.0))) - np.log(2.0)


def keras_class(name, *args, **kwargs):
    """``m.keras.losses.<name>(*args, dtype="float64", **kwargs)``, called on the arrays."""

    def call(m, y_true, y_pred, sample_weight=None):
        loss = getattr(m.keras.losses, name)(*args, dtype="float64", **kwargs)
        return loss(y_true, y_pred, sample_weight=sample_weight)

    return call


def function(name, **kwargs):
    return lambda m, y_true, y_pred: getattr(m.keras.losses, name)(y_true, y_pred, **kwargs)


def case(call, wrt=("y_true", "y_pred"), **arrays):
    return call, arrays, list(wrt)


def log_cosh_case(call, wrt=("y_true", "y_pred"), **arrays):
    """A log-cosh case: Keras's value (a mean of per-row means) is ``KERAS_LOG2_ERROR`` low."""
    return (*case(call, wrt, **arrays), KERAS_LOG2_ERROR)


CASES = {
    # ---------------------------------------------------------------- huber, Huber
    "huber": case(function("huber"), y_true=T, y_pred=X),
    "huber-delta": case(function("huber", delta=0.5), y_true=T, y_pred=X),
    "huber-kinks": case(function("huber"), y_true=KINK_T, y_pred=KINK_P),
    "huber-big": case(
        function("huber", delta=2.0),
        y_true=np.array([[1e4, -1e4, 3e38]]),
        y_pred=np.array([[-1e4, 1e4, -3e38]]) / 4,
    ),
    "Huber": case(
        keras_class("Huber", 0.7),
        ("y_true", "y_pred", "sample_weight"),
        y_true=T,
        y_pred=X,
        sample_weight=SW_ROWS,
    ),
    "Huber-sum-rank-1-targets": case(
        # Keras's wrapper expands a (4,) y_true against (4, 1) predictions.
        keras_class("Huber", reduction="sum"),
        y_true=T[:, 0].copy(),
        y_pred=X[:, :1].copy(),
    ),
    # ---------------------------------------------------------------- log_cosh, LogCosh
    "log_cosh": log_cosh_case(function("log_cosh"), y_true=T, y_pred=X),
    "log_cosh-big-and-small": log_cosh_case(
        function("log_cosh"),
        y_true=np.array([[0.0, 0.0, 0.0, 1e-3]]),
        y_pred=np.array([[1e4, -1e4, 30.0, 0.0]]),
    ),
    "LogCosh": log_cosh_case(
        keras_class("LogCosh", reduction="mean_with_sample_weight"),
        ("y_true", "y_pred", "sample_weight"),
        y_true=T,
        y_pred=X,
        sample_weight=SW_ROWS,
    ),
    # ------------------------------------------- mean_absolute_percentage_error, MAPE
    "mape": case(function("mean_absolute_percentage_error"), y_true=T, y_pred=X),
    "mape-zero-targets": case(
        # |y_true| below 1e-7 divides by 1e-7, whose derivative Keras cuts (maximum).
        function("mean_absolute_percentage_error"),
        y_true=np.array([[0.0, 1e-9, -1e-8, 2.0]]),
        y_pred=np.array([[0.5, 1.0, -2.0, 1.0]]),
    ),
    "mape-at-the-target": case(
        # |e| at e = 0: derivative 0 in TensorFlow (and PyTorch).
        function("mean_absolute_percentage_error"),
        y_true=np.array([[2.0, -1.0, 0.5]]),
        y_pred=np.array([[2.0, -1.0, 0.7]]),
    ),
    "MeanAbsolutePercentageError": case(
        keras_class("MeanAbsolutePercentageError", reduction=None),
        ("y_true", "y_pred", "sample_weight"),
        y_true=T,
        y_pred=X,
        sample_weight=SW_ROWS,
    ),
    # ------------------------------------------- mean_squared_logarithmic_error, MSLE
    "msle": case(function("mean_squared_logarithmic_error"), y_true=POS_T, y_pred=POS_X),
    "msle-below-epsilon": case(
        # Predictions and targets below 1e-7 (negative too) count as 1e-7, without gradient.
        function("mean_squared_logarithmic_error"),
        y_true=np.array([[0.0, -1.0, 2.0, 3.0, 1e-9]]),
        y_pred=np.array([[1.0, 0.5, -3.0, 1e-12, 2.0]]),
    ),
    "MeanSquaredLogarithmicError": case(
        keras_class("MeanSquaredLogarithmicError"),
        ("y_true", "y_pred", "sample_weight"),
        y_true=POS_T,
        y_pred=POS_X,
        sample_weight=SW_ROWS,
    ),
    # ---------------------------------------- binary_focal_crossentropy, BinaryFocalCrossentropy
    "binary_focal": case(function("binary_focal_crossentropy"), y_true=T01, y_pred=P),
    "binary_focal-edges": case(
        function("binary_focal_crossentropy", gamma=1.5, label_smoothing=0.1),
        y_true=T_EDGE,
        y_pred=P_EDGE,
    ),
    "binary_focal-balanced-axis-0": case(
        function("binary_focal_crossentropy", apply_class_balancing=True, alpha=0.3, axis=0),
        y_true=T01,
        y_pred=P,
    ),
    "binary_focal-gamma-0-is-bce": case(
        function("binary_focal_crossentropy", gamma=0.0), y_true=T01, y_pred=P
    ),
    "binary_focal-logits": case(
        function("binary_focal_crossentropy", from_logits=True, gamma=3.0), y_true=T01, y_pred=X
    ),
    "binary_focal-logits-balanced-smoothed": case(
        function(
            "binary_focal_crossentropy",
            apply_class_balancing=True,
            from_logits=True,
            label_smoothing=0.2,
        ),
        y_true=T01,
        y_pred=X,
    ),
    "BinaryFocalCrossentropy": case(
        keras_class("BinaryFocalCrossentropy", True, 0.4, 2.5, True),
        ("y_true", "y_pred", "sample_weight"),
        y_true=T01,
        y_pred=X,
        sample_weight=SW_ROWS,
    ),
    # ------------------------------ categorical_focal_crossentropy, CategoricalFocalCrossentropy
    "categorical_focal": case(
        function("categorical_focal_crossentropy"), y_true=T_ROWS, y_pred=P_ROWS
    ),
    "categorical_focal-unnormalised-rows": case(
        # Keras divides each row by its sum first (then clips).
        function("categorical_focal_crossentropy", gamma=1.0, alpha=0.5),
        y_true=T_ROWS,
        y_pred=P_ROWS * np.array([[0.5], [1.0], [0.2], [0.9]]),
    ),
    "categorical_focal-per-class-alpha": case(
        function("categorical_focal_crossentropy", alpha=[0.2, 0.5, 0.3], label_smoothing=0.1),
        y_true=T_ROWS,
        y_pred=P_ROWS,
    ),
    "categorical_focal-logits-axis-0": case(
        # Label smoothing counts the last axis's classes, whatever the axis (Keras).
        function("categorical_focal_crossentropy", from_logits=True, axis=0, label_smoothing=0.3),
        y_true=T_ROWS.T.copy(),
        y_pred=X.T.copy(),
    ),
    "CategoricalFocalCrossentropy": case(
        keras_class("CategoricalFocalCrossentropy", gamma=2.5, from_logits=True),
        ("y_true", "y_pred", "sample_weight"),
        y_true=T_ROWS,
        y_pred=X,
        sample_weight=SW_ROWS,
    ),
    # --------------- categorical_generalized_cross_entropy, CategoricalGeneralizedCrossEntropy
    "generalized": case(
        function("categorical_generalized_cross_entropy", q=0.5),
        ["y_pred"],
        y_true=LABELS,
        y_pred=P_ROWS,
    ),
    "generalized-float-labels": case(
        # Keras casts float ids to integers (truncating).
        function("categorical_generalized_cross_entropy", q=0.3),
        ["y_pred"],
        y_true=LABELS + 0.75,
        y_pred=_softmax_rows(X),
    ),
    "CategoricalGeneralizedCrossEntropy": case(
        keras_class("CategoricalGeneralizedCrossEntropy", 0.7, "sum"),
        ["y_pred", "sample_weight"],
        y_true=LABELS,
        y_pred=P_ROWS,
        sample_weight=SW_ROWS,
    ),
    # ---------------------------------------------------------------- hinge, Hinge
    "hinge": case(function("hinge"), y_true=SIGNS, y_pred=X),
    "hinge-kinks": case(function("hinge"), y_true=KINK_SIGNS, y_pred=KINK_SCORES),
    "hinge-0-1-targets": case(
        # All targets 0 or 1: Keras takes them as 2t - 1 (also its d/dt: 2x).
        function("hinge"),
        y_true=(KINK_SIGNS + 1) / 2,
        y_pred=KINK_SCORES,
    ),
    "hinge-other-targets": case(
        # Not all 0/1: used as they are (0.5, 0 and 2 included).
        function("hinge"),
        y_true=np.array([[1.0, 0.5, 0.0, 2.0], [-1.0, 1.0, 1.0, 0.0]]),
        y_pred=KINK_SCORES,
    ),
    "Hinge": case(
        keras_class("Hinge", "sum"),
        ("y_true", "y_pred", "sample_weight"),
        y_true=SIGNS,
        y_pred=X,
        sample_weight=SW_ROWS,
    ),
    # ---------------------------------------------------------------- squared_hinge
    "squared_hinge": case(function("squared_hinge"), y_true=SIGNS, y_pred=X),
    "squared_hinge-kinks-0-1-targets": case(
        function("squared_hinge"), y_true=(KINK_SIGNS + 1) / 2, y_pred=KINK_SCORES
    ),
    "SquaredHinge": case(
        keras_class("SquaredHinge"),
        ("y_true", "y_pred", "sample_weight"),
        y_true=SIGNS,
        y_pred=X,
        sample_weight=SW_ROWS,
    ),
    # ---------------------------------------------------------------- categorical_hinge
    "categorical_hinge": case(function("categorical_hinge"), y_true=ONE_HOT, y_pred=X),
    "categorical_hinge-soft": case(function("categorical_hinge"), y_true=T_ROWS, y_pred=X),
    "categorical_hinge-kink-and-ties": case(
        # Row 0 at the kink with two tied wrong classes (they share the gradient);
        # row 1 with tied wrong classes beyond it; row 2 with negative wrong
        # scores (the maximum is the true class's 0).
        function("categorical_hinge"),
        y_true=np.eye(3)[[0, 1, 2]],
        y_pred=np.array([[2.0, 1.0, 1.0], [0.5, 0.2, 0.5], [-1.0, -2.0, 0.5]]),
    ),
    "CategoricalHinge": case(
        keras_class("CategoricalHinge", "mean_with_sample_weight"),
        ("y_true", "y_pred", "sample_weight"),
        y_true=ONE_HOT,
        y_pred=X,
        sample_weight=SW_ROWS,
    ),
    # ---------------------------------------------------------------- kl_divergence, KLDivergence
    "kl_divergence": case(function("kl_divergence"), y_true=T_ROWS, y_pred=P_ROWS),
    "kl_divergence-one-hot-and-zeros": case(
        # Targets 0 and 1 and a probability 0, all at a clip bound (Keras's
        # clip_by_value passes the gradient there).
        function("kl_divergence"),
        y_true=ONE_HOT,
        y_pred=np.array([[0.0, 0.6, 0.4], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [1.0, 0.0, 0.0]]),
    ),
    "KLDivergence": case(
        keras_class("KLDivergence", "sum"),
        ("y_true", "y_pred", "sample_weight"),
        y_true=T_ROWS,
        y_pred=P_ROWS,
        sample_weight=SW_ROWS,
    ),
    # ---------------------------------------------------------------- poisson, Poisson
    "poisson": case(function("poisson"), y_true=np.round(POS_T), y_pred=POS_X),
    "poisson-zero-rates-and-counts": case(
        function("poisson"),
        y_true=np.array([[0.0, 3.0, 0.0, 1.5]]),
        y_pred=np.array([[0.0, 0.0, 2.0, 1e-9]]),
    ),
    "Poisson": case(
        keras_class("Poisson"),
        ("y_true", "y_pred", "sample_weight"),
        y_true=np.round(POS_T),
        y_pred=POS_X,
        sample_weight=SW_ROWS,
    ),
}

# tf.keras's aliases: the same functions.
ALIASES = {
    "MAPE": "mean_absolute_percentage_error",
    "mape": "mean_absolute_percentage_error",
    "MSLE": "mean_squared_logarithmic_error",
    "msle": "mean_squared_logarithmic_error",
    "logcosh": "log_cosh",
    "KLD": "kl_divergence",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
}


@pytest.fixture(scope="module")
def references():
    """name -> (value, {arg: gradient}) by Keras under tf.GradientTape, once per module."""
    tf, keras = tensorflow()
    module = SimpleNamespace(keras=keras)
    found = {}
    for name, (call, arrays, wrt, *offset) in CASES.items():
        consts = {k: tf.constant(a) for k, a in arrays.items()}
        with tf.GradientTape() as tape:
            for k in wrt:
                tape.watch(consts[k])
            value = call(module, **consts)
            total = tf.reduce_sum(value)
        grads = tape.gradient(total, [consts[k] for k in wrt])
        value = value.numpy() + sum(offset)
        found[name] = (value, {k: g.numpy() for k, g in zip(wrt, grads, strict=True)})
    return found


def assert_same(value, grads, v_ref, g_ref, what):
    assert np.shape(value) == np.shape(v_ref), what
    np.testing.assert_allclose(np.asarray(value), v_ref, err_msg=f"{what} value", **TOL)
    for k, g in g_ref.items():
        np.testing.assert_allclose(np.asarray(grads[k]), g, err_msg=f"{what} d/d{k}", **TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_torch_tensors(references, name):
    torch = pytest.importorskip("torch")
    call, arrays, wrt = CASES[name][:3]
    tensors = {k: torch.tensor(a, requires_grad=k in wrt) for k, a in arrays.items()}
    value = call(ctf, **tensors)
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float64
    grads = torch.autograd.grad(value.sum(), [tensors[k] for k in wrt])
    assert_same(
        value.detach().numpy(),
        {k: g.numpy() for k, g in zip(wrt, grads, strict=True)},
        *references[name],
        name,
    )


# jnp.abs's derivative at 0 is 1 (JAX's convention), TensorFlow's 0; the core's
# mean_absolute_percentage_error differentiates jnp.abs under jax.grad.  A core
# matter (losses/regression.py).


@pytest.mark.parametrize(
    "name",
    list(CASES),
)
def test_jax_arrays(references, name):
    jax = pytest.importorskip("jax")
    call, arrays, wrt = CASES[name][:3]
    fixed = {k: jax.numpy.asarray(a) for k, a in arrays.items() if k not in wrt}

    def total(*inputs):
        return call(ctf, **fixed, **dict(zip(wrt, inputs, strict=True))).sum()

    inputs = [jax.numpy.asarray(arrays[k]) for k in wrt]
    grads = jax.grad(total, argnums=tuple(range(len(wrt))))(*inputs)
    value = call(ctf, **{k: jax.numpy.asarray(a) for k, a in arrays.items()})
    assert isinstance(value, jax.Array)
    assert_same(value, dict(zip(wrt, grads, strict=True)), *references[name], name)


@pytest.mark.parametrize("name", list(CASES))
def test_numpy_arrays(references, name):
    call, arrays = CASES[name][:2]
    value = call(ctf, **arrays)
    assert isinstance(value, (np.ndarray, np.generic)) and value.dtype == np.float64
    np.testing.assert_allclose(value, references[name][0], **TOL)


# --------------------------------------------------------------------------- beyond the table


def test_names_and_aliases_are_tf_keras():
    tf, keras = tensorflow()
    for alias, name in ALIASES.items():
        assert getattr(ctf.keras.losses, alias) is getattr(ctf.keras.losses, name)
        assert hasattr(tf.keras.losses, alias)  # tf.keras has the alias ...
    for name in ALIASES.values():
        assert hasattr(keras.losses, name)  # ... and Keras 3 the full name


@pytest.mark.parametrize(
    ("name", "args", "config"),
    [
        ("Huber", (0.5,), {"name": "huber_loss", "reduction": "sum_over_batch_size"}),
        ("LogCosh", ("sum",), {"name": "log_cosh", "reduction": "sum"}),
        ("MeanAbsolutePercentageError", (), {"name": "mean_absolute_percentage_error"}),
        ("MeanSquaredLogarithmicError", (None, "x"), {"name": "x", "reduction": None}),
    ],
)
def test_class_constructors_are_keras(name, args, config):
    _, keras = tensorflow()
    ours, theirs = getattr(ctf.keras.losses, name)(*args), getattr(keras.losses, name)(*args)
    assert ours.name == theirs.name and ours.reduction == theirs.reduction
    for key, value in config.items():
        assert ours.get_config()[key] == value
    if name == "Huber":
        assert ours.delta == 0.5


KERAS_NAMES = {
    "MAPE": "mean_absolute_percentage_error",
    "MSLE": "mean_squared_logarithmic_error",
}


@pytest.mark.parametrize(
    "name",
    [
        "huber",
        "log_cosh",
        "MAPE",
        "MSLE",
        "binary_focal_crossentropy",
        "categorical_focal_crossentropy",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "kl_divergence",
        "poisson",
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_low_precision_keeps_kerass_dtype(name, dtype):
    _, keras = tensorflow()
    t, p = POS_T.astype(dtype), POS_X.astype(dtype)
    if "focal" in name or name == "kl_divergence":
        # No zero probability: Keras's float16 KL divides by the clipped 1e-7 and overflows.
        t, p = T_ROWS.astype(dtype), (P_ROWS * 0.9 + 0.1 / 3).astype(dtype)
    ours = getattr(ctf.keras.losses, name)(t, p)
    theirs = getattr(keras.losses, KERAS_NAMES.get(name, name))(t, p).numpy()
    # Keras's MSLE takes max(y_pred, epsilon) with a float32 epsilon: half
    # precision promotes to float32.  The others keep the input's dtype.
    expected = "float32" if name == "MSLE" else dtype
    assert ours.dtype == theirs.dtype == np.dtype(expected)
    # Keras rounds each float16 step; losskit accumulates in float32 and rounds once.
    tol = {"rtol": 5e-3, "atol": 2e-3} if dtype == "float16" else {"rtol": 2e-6}
    np.testing.assert_allclose(ours, theirs, **tol)


def test_log_cosh_of_a_tiny_error_is_exact_where_kerass_is_zero():
    _, keras = tensorflow()
    t, p = np.zeros((1, 2), np.float32), np.array([[1e-9, -3e-9]], np.float32)
    assert keras.losses.log_cosh(t, p).numpy()[0] == 0.0  # Keras: x + softplus(-2x) - log 2
    # log cosh e = e^2 / 2 to float32 rounding: (0.5e-18 + 4.5e-18) / 2.
    np.testing.assert_allclose(ctf.keras.losses.log_cosh(t, p), [2.5e-18], rtol=1e-6)


def test_kerass_float64_log_cosh_subtracts_a_float32_log_2():
    _, keras = tensorflow()
    t, p = np.zeros((1, 1)), np.array([[30.0]])
    # log cosh 30 = 30 - log 2 + log1p(e^-60), to float64 rounding.
    exact = 30.0 - np.log(2.0) + np.log1p(np.exp(-60.0))
    np.testing.assert_allclose(ctf.keras.losses.log_cosh(t, p), [exact], rtol=1e-15)
    np.testing.assert_allclose(keras.losses.log_cosh(t, p), [exact - KERAS_LOG2_ERROR], rtol=1e-15)


def test_huber_refuses_a_delta_keras_computes_nonsense_with():
    # Keras takes delta = -1 and returns a negative loss; the core names the rule.
    for delta in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"^`delta` must be a positive finite number; got "):
            ctf.keras.losses.huber(T, X, delta=delta)
    with pytest.raises(ValueError, match=r"^`delta` must be a positive finite number"):
        ctf.keras.losses.Huber(delta=-1.0)(T, X)


def test_confident_focal_logits_keep_their_digits_where_kerass_cancel():
    # z = 30, t = 1: 1 - p_t = sigmoid(-30) = 9.36e-14.  Keras forms 1 - sigmoid(30),
    # about one float64 ulp of 1 (1.1e-16) apart from it: the factor squared
    # loses three digits.  losskit's value is the exact one.
    _, keras = tensorflow()
    t, z = np.array([[1.0, 0.0]]), np.array([[30.0, -30.0]])
    q = 1 / (1 + np.exp(30.0))
    exact = np.mean([q**2 * np.log1p(np.exp(-30.0))] * 2)
    ours = ctf.keras.losses.binary_focal_crossentropy(t, z, from_logits=True)
    theirs = keras.losses.binary_focal_crossentropy(t, z, from_logits=True).numpy()
    np.testing.assert_allclose(ours, [exact], rtol=1e-13)
    assert abs(theirs[0] / exact - 1) > 1e-5


def test_focal_and_generalized_options_and_labels_are_checked():
    _, keras = tensorflow()
    losses = ctf.keras.losses
    # Keras's own check and words, at construction.
    for q in (0.0, 1.0, 1.5):
        for module in (keras.losses, losses):
            with pytest.raises(ValueError, match=r"^q must be in the interval \(0, 1\)$"):
                module.CategoricalGeneralizedCrossEntropy(q=q)
    # A label out of range is p_y = 0 to Keras's one-hot (loss 1/q); ids of shape
    # (N, 1) broadcast against (N, C) predictions into an (N, N) loss.
    with pytest.raises(
        ValueError, match=r"^`labels` must be in \[0, 3\); got 3 at position \(1,\)$"
    ):
        losses.categorical_generalized_cross_entropy(np.array([1, 3, 0, 0]), P_ROWS, q=0.5)
    with pytest.raises(ValueError, match=r"^`y_true` must hold class ids of the shape of `y_pred`"):
        losses.categorical_generalized_cross_entropy(LABELS[:, None], P_ROWS, q=0.5)
    # Keras balances with any alpha and raises the factor to any power.
    with pytest.raises(ValueError, match=r"^`alpha` must be a number in \[0, 1\]; got 1.5$"):
        losses.binary_focal_crossentropy(T01, P, apply_class_balancing=True, alpha=1.5)
    with pytest.raises(ValueError, match=r"^`gamma` must be a finite number >= 0; got -1$"):
        losses.CategoricalFocalCrossentropy(gamma=-1)(T_ROWS, P_ROWS)
    # A probability outside [0, 1], which Keras would clip (or renormalise) silently.
    with pytest.raises(ValueError, match=r"^`y_pred` must be probabilities in \[0, 1\]; got 1.5"):
        losses.binary_focal_crossentropy(T01, P + np.array([0.0, 0.0, 1.5 - P[0, 2]]))
