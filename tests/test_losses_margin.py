"""The margin losses (losskit.losses.margin) against Keras 3, optax and torch.nn.functional.

Values and ``value_and_grad`` gradients on every backend of the ``xp`` fixture, in
float64 against the frameworks (``tests/_refs_margin.py``) under each reduction and
``sample_weight``; torch autograd and ``jax.grad`` of the core for every floating
argument; the subgradient at every kink, with each framework's own (they disagree);
the value rules (eager errors, the NaN rule under ``jax.jit``); half precision;
extreme magnitudes; empty batches; one ``torch.compile(fullgraph=True)`` per loss.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from _refs_margin import (
    ELEMENTWISE,
    NAMES,
    core_reduce,
    keras_ref,
    make_case,
    optax_ref,
    reference,
    torch_ref,
)
from conftest import Backend, assert_close, loss_dtype, round_to
from losskit import _config, value_and_grad
from losskit.losses import margin

REDUCTIONS = ("none", "sum", "mean")
ARRAY_OPTIONS = ("class_weight", "sample_weight")


def fn_of(name: str) -> Any:
    return getattr(margin, name)


@functools.cache
def case(name: str, shape: tuple[int, ...] = (4, 5)) -> tuple[np.ndarray, np.ndarray, dict]:
    return make_case(name, np.random.default_rng(sum(map(ord, name))), shape)


@functools.cache
def expected(name: str, dtype: str = "float64") -> tuple[np.ndarray, ...]:
    """The anchor framework's ``(per, d_x, d_truth)`` on the case rounded to ``dtype``."""
    x, truth, options = case(name)
    if truth.dtype.kind == "f":
        truth = round_to(truth, dtype)
    options = {
        k: round_to(v, loss_dtype(dtype)) if k in ARRAY_OPTIONS else v for k, v in options.items()
    }
    return reference(name, round_to(x, dtype), truth, options)


def counts(name: str) -> np.ndarray | None:
    """What each example counts for in the core's mean: its label's class weight."""
    _, truth, options = case(name)
    return options["class_weight"][truth] if name == "multi_margin" else None


def run(
    xp: Any,
    fn: Any,
    x: Any,
    truth: Any,
    dtype: str = "float64",
    *,
    eager: bool = False,
    **opts: Any,
):
    """``fn`` and ``value_and_grad(fn)`` on ``xp``, as NumPy, after checking kinds and dtypes.

    On JAX the calls are jitted unless ``eager``: a cold eager JAX call compiles each
    operation for its shapes (seconds on this machine), a jitted one the whole function
    once.  test_matches_framework runs eagerly; the traced path is the same code.
    """
    truth = np.asarray(truth)
    xb = xp.asarray(x, dtype)
    tb = xp.asarray(truth, "int64" if truth.dtype.kind in "iu" else dtype)
    arrays = {
        k: xp.asarray(v, loss_dtype(dtype))
        for k, v in opts.items()
        if k in ARRAY_OPTIONS and v is not None
    }
    static = {k: v for k, v in opts.items() if k not in arrays}

    def calls(a: Any, b: Any, kw: dict) -> Any:
        return fn(a, b, **static, **kw), *value_and_grad(fn)(a, b, **static, **kw)

    if xp.name == "jax" and not eager:
        import jax

        calls = jax.jit(calls)
    value, v2, grad = calls(xb, tb, arrays)
    assert xp.is_native(value) and xp.is_native(grad)
    assert xp.dtype_name(value) == loss_dtype(dtype)
    assert xp.dtype_name(grad) == dtype
    assert tuple(grad.shape) == tuple(np.shape(x))
    assert_close(xp.to_numpy(v2), xp.to_numpy(value), dtype)
    return xp.to_numpy(value), xp.to_numpy(grad)


@pytest.fixture(params=("numpy", "torch", "array_api_strict"))
def some_xp(request: Any) -> Backend:
    """The backends for the checks beyond test_matches_framework: JAX's share of them
    (cold compiles) would double the file's time for code paths it already runs."""
    pytest.importorskip(request.param)
    return Backend(request.param)


# ----------------------------------------------------------------------- the frameworks' numbers


@pytest.mark.parametrize("name", NAMES)
def test_matches_framework(xp, name):
    """Each reduction, with and without sample_weight, on the anchor framework's numbers."""
    x, truth, options = case(name)
    per, dx, _ = expected(name)
    sw = np.random.default_rng(3).uniform(0.0, 2.0, size=x.shape[:1])
    for reduction in REDUCTIONS:
        for weight in (None, sw):
            value, grad = run(
                xp,
                fn_of(name),
                x,
                truth,
                eager=True,
                reduction=reduction,
                sample_weight=weight,
                **options,
            )
            ev, eg = core_reduce(per, dx, reduction, weight, counts(name))
            what = f"{name} {reduction} sample_weight={weight is not None}"
            assert_close(value, ev, err_msg=what)
            assert_close(grad, eg, kind="grad", err_msg=what)


def test_hinge_equals_optax_elementwise(some_xp):
    """optax's hinge_loss is the core's hinge under reduction='none' for -1/1 targets."""
    x, t, _ = case("hinge")
    per, dx, _ = optax_ref("hinge_loss", x, t, float_truth=True)
    value, grad = run(some_xp, margin.hinge, x, t, reduction="none")
    assert_close(value, per)
    assert_close(grad, dx, kind="grad")


def test_hinge_reads_all_binary_targets_as_keras(some_xp):
    """Targets all 0 or 1 become 2t - 1 (Keras's convert_binary_labels_to_hinge): the
    numbers of the -1/1 targets, and Keras's own, derivative in t included (x 2)."""
    x, signs, _ = case("hinge")
    binary = (signs + 1) / 2
    for name in ("hinge", "squared_hinge"):
        fn = fn_of(name)
        per, dx, dt = keras_ref(name, x, binary, elementwise=True)
        value, grad = run(some_xp, fn, x, binary, reduction="none")
        assert_close(value, per)
        assert_close(grad, dx, kind="grad")
        assert_close(run(some_xp, fn, x, signs, reduction="none")[0], per)
        assert_close(run(some_xp, fn, x, binary.astype(np.int64), reduction="none")[0], per)
        got_dt = _autograd("torch", fn, x, binary)[1]
        assert_close(got_dt, dt, kind="grad")


def test_keras_averages_over_the_last_axis(some_xp):
    """Keras's hinge and squared_hinge are the row means of the core's elements."""
    x, t, _ = case("hinge")
    for name in ("hinge", "squared_hinge"):
        per, _, _ = keras_ref(name, x, t, elementwise=False)
        value, _ = run(some_xp, fn_of(name), x, t, reduction="none")
        assert_close(value.mean(axis=-1), per)


def test_multi_margin_mean_with_class_weight_is_the_weighted_mean(some_xp):
    """torch's mean divides by N even with weights; the core divides by sum w_y (its
    weighted mean), so core mean = torch sum / sum w_y, and without weights both agree."""
    import torch
    import torch.nn.functional as F

    x, y, options = case("multi_margin")
    w = options["class_weight"]
    xt, yt, wt = torch.tensor(x), torch.tensor(y), torch.tensor(w)
    torch_sum = float(F.multi_margin_loss(xt, yt, weight=wt, reduction="sum"))
    value, _ = run(some_xp, margin.multi_margin, x, y, class_weight=w)
    assert_close(value, torch_sum / w[y].sum())
    value, _ = run(some_xp, margin.multi_margin, x, y, p=2, margin=0.5)
    assert_close(value, float(F.multi_margin_loss(xt, yt, p=2, margin=0.5)))


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin_", [1.0, 0.3, -0.5])
def test_multi_margin_options(some_xp, p, margin_):
    x, y, _ = case("multi_margin")
    per, dx, _ = torch_ref("multi_margin", x, y, p=p, margin=margin_)
    value, grad = run(some_xp, margin.multi_margin, x, y, reduction="none", p=p, margin=margin_)
    assert_close(value, per)
    # torch's kernel and the core differ only at kinks; margins here may land near none
    assert_close(grad, dx, kind="grad")


@pytest.mark.parametrize(
    "name",
    [
        "categorical_hinge",
        "multilabel_soft_margin",
        "multilabel_margin",
        "multi_margin",
        "multiclass_hinge",
    ],
)
def test_class_axis(some_xp, name):
    """axis=0 on the transposed input gives the same losses and the transposed gradient."""
    x, truth, options = case(name)
    value, grad = run(some_xp, fn_of(name), x, truth, reduction="none", **options)
    tt = truth if truth.ndim < 2 else truth.T.copy()
    v0, g0 = run(some_xp, fn_of(name), x.T.copy(), tt, reduction="none", axis=0, **options)
    assert_close(v0, value)
    assert_close(g0, grad.T, kind="grad")


def test_one_dimensional_multilabel_margin(some_xp):
    """torch takes a single example (C,) with labels (C,); so does the core."""
    x, y, _ = case("multilabel_margin")
    per, dx, _ = torch_ref("multilabel_margin", x[0], y[0])
    value, grad = run(some_xp, margin.multilabel_margin, x[0], y[0], reduction="none")
    assert_close(value, per)
    assert_close(grad, dx, kind="grad")


def test_multilabel_margin_counts_a_repeated_target_twice(some_xp):
    """torch's loop visits each listed entry: [3, 3, -1, 1] counts target 3 twice.

    scores [.1, .2, .4, .8], targets {3}, others {0, 1, 2}: 1 - .8 + (.1, .2, .4) sums
    to 1.3; twice over 4 classes: 0.65 (torch gives 0.65 too)."""
    x, y = np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([[3, 3, -1, 1]])
    per, _, _ = torch_ref("multilabel_margin", x, y)
    value, _ = run(some_xp, margin.multilabel_margin, x, y, reduction="none")
    assert_close(value, [0.65])
    assert_close(per, [0.65])


# --------------------------------------------------------------------------- autograd of the core


def _autograd(backend: str, fn: Any, x: np.ndarray, truth: np.ndarray, **opts: Any):
    """d sum(fn(x, truth)) / d x and / d truth (None for integer labels) by torch or jax."""
    floating = truth.dtype.kind == "f"
    if backend == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        tt = torch.tensor(truth, requires_grad=floating)
        opts = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in opts.items()}
        out = fn(xt, tt, reduction="sum", **opts)
        # allow_unused: hinge_embedding's targets only select a branch (no graph to them)
        grads = torch.autograd.grad(out, [xt, tt] if floating else [xt], allow_unused=True)
        if not floating:
            return grads[0].numpy(), None
        dt = torch.zeros_like(tt) if grads[1] is None else grads[1]
        return grads[0].numpy(), dt.numpy()
    import jax
    import jax.numpy as jnp

    arrays = {k: jnp.asarray(v) for k, v in opts.items() if isinstance(v, np.ndarray)}
    static = {k: v for k, v in opts.items() if k not in arrays}

    def total(a: Any, b: Any, kw: dict) -> Any:
        return fn(a, b, reduction="sum", **static, **kw)

    # jitted, as in run(): the eager path is the same formula, much slower to warm up
    grad = jax.jit(jax.grad(total, argnums=(0, 1) if floating else 0))(
        jnp.asarray(x), jnp.asarray(truth), arrays
    )
    if floating:
        return np.asarray(grad[0]), np.asarray(grad[1])
    return np.asarray(grad), None


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("name", NAMES)
def test_autograd_matches_framework(backend, name):
    """torch autograd and jax.grad of the core's formula, in the prediction and the
    targets, equal the framework's autograd of its own (hinge_embedding's targets only
    select a branch: derivative 0, where torch has none)."""
    pytest.importorskip(backend)
    x, truth, options = case(name)
    _, dx, dt = expected(name)
    got_dx, got_dt = _autograd(backend, fn_of(name), x, truth, **options)
    assert_close(got_dx, dx, kind="grad", err_msg=f"{name} d/dx")
    if name == "hinge_embedding":
        np.testing.assert_array_equal(got_dt, np.zeros_like(x))
    elif dt is not None:
        assert_close(got_dt, dt, kind="grad", err_msg=f"{name} d/dtargets")


@pytest.mark.parametrize("name", NAMES)
def test_torch_gradcheck_every_floating_argument(name):
    """Finite differences of the core in torch, float64, for the prediction, a floating
    truth, sample_weight and class_weight, inside framework_rules so that a step off a
    -1/1 target is allowed (hinge_embedding's targets select a branch: not stepped)."""
    torch = pytest.importorskip("torch")
    x, truth, options = case(name, (3, 4))
    fn = fn_of(name)
    floats = {"x": x, "sample_weight": np.random.default_rng(0).uniform(0.5, 2, size=3)}
    if truth.dtype.kind == "f" and name != "hinge_embedding":
        floats["truth"] = truth
    if "class_weight" in options:
        floats["class_weight"] = options["class_weight"]
    keys = tuple(floats)
    static = {k: v for k, v in options.items() if k != "class_weight"}

    def call(*arrays: Any) -> Any:
        a = dict(zip(keys, arrays, strict=True))
        t = a.pop("truth", torch.tensor(truth))
        with _config.framework_rules():
            return fn(a.pop("x"), t, reduction="mean", **a, **static)

    inputs = tuple(torch.tensor(v, requires_grad=True) for v in floats.values())
    assert torch.autograd.gradcheck(call, inputs, eps=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- kinks


def _kink_case(name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """An input with every example exactly at its kink (or with a tie in its maximum)."""
    if name in ("hinge", "squared_hinge"):
        return np.array([[1.0, -1.0, 0.5]]), np.array([[1.0, -1.0, 1.0]]), {}
    if name == "perceptron":
        return np.array([0.0, 0.0, 1.0]), np.array([1.0, -1.0, -1.0]), {}
    if name == "hinge_embedding":
        return np.array([1.0, 1.0, 0.25]), np.array([-1.0, 1.0, -1.0]), {}
    if name == "categorical_hinge":  # 1 + max(.5, 0, -1) - 1.5 = 0; a tie in max(.5, 0, .5)
        return np.array([[0.5, 1.5, -1.0], [0.5, 1.0, 0.5]]), np.array([[0.0, 1, 0], [0, 1, 0]]), {}
    if name in ("multiclass_hinge", "multi_margin"):  # s_y = s_0 + 1: a tie at the kink
        return np.array([[1.0, 2.0, 0.0]]), np.array([1]), {}
    if name == "multiclass_perceptron":
        return np.array([[2.0, 2.0, 0.0]]), np.array([1]), {}
    if name == "multilabel_margin":  # target 1 exactly 1 above class 0
        return np.array([[1.0, 2.0, 0.0]]), np.array([[1, -1, -1]]), {}
    raise AssertionError(name)  # pragma: no cover


# The core's derivative of the sum at the kink (a tie in a max shares the gradient
# equally) and each framework's, measured with Keras 3.x/TF 2.21, optax, torch 2.13.
KINKS = {
    # loss: (core, {framework: its derivative})
    "hinge": ([[-0.5, 0.5, -1.0]], {"keras": [[-1.0, 1.0, -1.0]], "optax": [[-0.5, 0.5, -1.0]]}),
    "squared_hinge": ([[0.0, 0.0, -1.0]], {"keras": [[0.0, 0.0, -1.0]]}),
    "perceptron": ([-0.5, 0.5, 1.0], {"optax": [-0.5, 0.5, 1.0]}),
    "hinge_embedding": ([-0.5, 1.0, -1.0], {"torch": [-1.0, 1.0, -1.0]}),
    "categorical_hinge": (
        [[0.5, -0.5, 0.0], [0.5, -1.0, 0.5]],
        {"keras": [[1.0, -1.0, 0.0], [0.5, -1.0, 0.5]]},
    ),
    "multiclass_hinge": ([[0.5, -0.5, 0.0]], {"optax": [[0.5, -0.5, 0.0]]}),
    "multiclass_perceptron": ([[0.5, -0.5, 0.0]], {"optax": [[0.5, -0.5, 0.0]]}),
    "multi_margin": ([[1 / 6, -1 / 6, 0.0]], {"torch": [[0.0, 0.0, 0.0]]}),
    "multilabel_margin": ([[1 / 6, -1 / 6, 0.0]], {"torch": [[0.0, 0.0, 0.0]]}),
}


def _framework_kink(framework: str, name: str, x: np.ndarray, truth: np.ndarray) -> np.ndarray:
    if framework == "keras":
        return keras_ref(name, x, truth, elementwise=name != "categorical_hinge")[1]
    if framework == "optax":
        optax_name = {"hinge": "hinge_loss", "perceptron": "perceptron_loss"}.get(
            name, f"{name}_loss"
        )
        return optax_ref(optax_name, x, truth, float_truth=False)[1]
    return torch_ref(name, x, truth)[1]


@pytest.mark.parametrize("name", sorted(KINKS))
def test_kink_subgradient(xp, name):
    """value_and_grad, torch autograd and jax.grad of the core agree at the kink; the
    frameworks' own numbers there are pinned (they disagree: the issue note lists them)."""
    x, truth, _ = _kink_case(name)
    core, frameworks = KINKS[name]
    _, grad = run(xp, fn_of(name), x, truth, reduction="sum")
    assert_close(grad, core, kind="grad")
    if xp.has_autograd:
        assert_close(_autograd(xp.name, fn_of(name), x, truth)[0], core, kind="grad")
    if xp.name == "numpy":  # the frameworks, once
        for framework, theirs in frameworks.items():
            got = _framework_kink(framework, name, x, truth)
            assert_close(got, theirs, kind="grad", err_msg=f"{framework} {name}")


# --------------------------------------------------------------------------- value rules


PADDED = "`labels` must be in [-1, 3) (class ids, then -1 and padding);"
SIGN_RULE = "`targets` must be -1 or 1; got 0.0 at position (1,)"
HINGE_RULE = "`targets` must be -1 or 1, or all 0 or 1 (read as -1 and 1, as Keras does); got"

ERRORS = [
    ("hinge", [1.0, 0.5, -1.0], ValueError, f"{HINGE_RULE} 0.5 at position (1,)"),
    ("hinge", [1.0, -1.0, 0.0], ValueError, f"{HINGE_RULE} 0.0 at position (2,)"),
    ("hinge", [1.0, 1.0, np.nan], ValueError, f"{HINGE_RULE} nan at position (2,)"),
    ("squared_hinge", [2.0, 1.0, 1.0], ValueError, f"{HINGE_RULE} 2.0 at position (0,)"),
    ("soft_margin", [1.0, 0.0, -1.0], ValueError, SIGN_RULE),
    ("perceptron", [1.0, 0.0, -1.0], ValueError, SIGN_RULE),
    ("hinge_embedding", [1.0, 0.0, -1.0], ValueError, SIGN_RULE),
]


@pytest.mark.parametrize("name, targets, error, text", ERRORS)
def test_target_rules(xp, name, targets, error, text):
    x = np.array([0.3, -0.2, 0.7])
    with pytest.raises(error) as err:
        fn_of(name)(xp.asarray(x), xp.asarray(np.array(targets)))
    assert str(err.value) == text


def test_class_rules(xp):
    x = xp.asarray(np.array([[0.3, -0.2, 0.7], [0.1, 0.2, 0.3]]))
    cases = [
        (
            margin.categorical_hinge,
            np.array([[0.0, 1.5, 0.0], [1.0, 0, 0]]),
            "`targets` must be in [0, 1]; got 1.5 at position (0, 1)",
        ),
        (
            margin.multilabel_soft_margin,
            np.array([[0.0, 1.0, -0.5], [1.0, 0, 0]]),
            "`targets` must be in [0, 1]; got -0.5 at position (0, 2)",
        ),
        (
            margin.multiclass_hinge,
            np.array([0, 3]),
            "`labels` must be in [0, 3); got 3 at position (1,)",
        ),
        (
            margin.multiclass_perceptron,
            np.array([-1, 0]),
            "`labels` must be in [0, 3); got -1 at position (0,)",
        ),
        (
            margin.multi_margin,
            np.array([0, 7]),
            "`labels` must be in [0, 3); got 7 at position (1,)",
        ),
        (
            margin.multilabel_margin,
            np.array([[0, -1, 3], [1, 2, -1]]),
            f"{PADDED} got 3 at position (0, 2)",
        ),
        (
            margin.multilabel_margin,
            np.array([[0, -1, 2], [-2, 2, -1]]),
            f"{PADDED} got -2 at position (1, 0)",
        ),
    ]
    for fn, truth, text in cases:
        with pytest.raises(ValueError) as err:
            fn(x, xp.asarray(truth))
        assert str(err.value) == text


def test_option_and_dtype_errors():
    x, y = np.zeros((2, 3)), np.array([0, 1])
    bad = [
        (
            lambda: margin.multi_margin(x, y, p=3),
            ValueError,
            "`p` must be 1 or 2 (as torch's multi_margin_loss); got 3",
        ),
        (
            lambda: margin.multi_margin(x, y, p=1.0),
            TypeError,
            "`p` must be 1 or 2 (as torch's multi_margin_loss); got 1.0",
        ),
        (
            lambda: margin.multi_margin(x, y, p=True),
            TypeError,
            "`p` must be 1 or 2 (as torch's multi_margin_loss); got True",
        ),
        (
            lambda: margin.multi_margin(x, y, margin=float("inf")),
            ValueError,
            "`margin` must be a finite real number; got inf",
        ),
        (
            lambda: margin.hinge_embedding(x, np.ones((2, 3)), margin="1"),
            TypeError,
            "`margin` must be a finite real number; got '1'",
        ),
        (
            lambda: margin.multilabel_margin(x, np.zeros((2, 3))),
            TypeError,
            "`labels` must be an integer array of class ids; got dtype float64 "
            "(for one-hot or soft targets use the non-sparse loss)",
        ),
        (
            lambda: margin.multilabel_soft_margin(x, np.zeros((2, 3)), class_weight=np.ones(2)),
            ValueError,
            "`class_weight` must have one weight per class, shape (3,); got (2,)",
        ),
        (
            lambda: margin.multilabel_soft_margin(
                x, np.zeros((2, 3)), class_weight=np.array([1.0, -1.0, 1.0])
            ),
            ValueError,
            "`class_weight` must be finite and non-negative; got -1.0 at position (1,)",
        ),
        (
            lambda: margin.multi_margin(x, y, class_weight=np.array([1.0, np.nan, 1.0])),
            ValueError,
            "`class_weight` must be finite and non-negative; got nan at position (1,)",
        ),
        (
            lambda: margin.categorical_hinge(np.zeros((2, 0)), np.zeros((2, 0))),
            ValueError,
            "`pred` must have at least one class along its class axis; got 0 classes",
        ),
        (
            lambda: margin.multilabel_margin(np.zeros((2, 0)), np.zeros((2, 0), dtype=int)),
            ValueError,
            "`scores` must have at least one class along its class axis; got 0 classes",
        ),
        (
            lambda: margin.hinge(x, np.ones((3, 2))),
            ValueError,
            "`targets` must have the shape of `pred` (2, 3); got (3, 2) "
            "(losskit does not broadcast)",
        ),
    ]
    for call, error, text in bad:
        with pytest.raises(error) as err:
            call()
        assert str(err.value) == text


# (loss, good truth, bad truth, the unreduced losses the bad value must make NaN)
NAN_CASES = [
    ("hinge", [1.0, -1.0, 1.0, 1.0], [1.0, -1.0, 0.5, 1.0], [False, False, True, False]),
    ("hinge", [1.0, -1.0, 1.0, 1.0], [1.0, -1.0, 0.0, 1.0], [False, False, True, False]),
    ("soft_margin", [1.0, -1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 1.0], [False, True, False, False]),
    ("perceptron", [1.0, -1.0, 1.0, 1.0], [1.0, 2.0, 1.0, 1.0], [False, True, False, False]),
    ("hinge_embedding", [1.0, -1.0, 1.0, 1.0], [1.0, -1.0, 1.0, 0.0], [False, False, False, True]),
    ("categorical_hinge", [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.5]], [False, True]),
    ("multilabel_soft_margin", [[1.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, 1.0]], [True, False]),
    ("multiclass_hinge", [0, 1], [0, 2], [False, True]),
    ("multiclass_perceptron", [0, 1], [-1, 1], [True, False]),
    ("multi_margin", [0, 1], [0, 5], [False, True]),
    ("multilabel_margin", [[0, -1], [1, -1]], [[0, 2], [1, -1]], [True, False]),
]


@pytest.mark.parametrize(
    "name, good, bad, hit", NAN_CASES, ids=lambda v: v if isinstance(v, str) else None
)
def test_nan_rule_under_jit(name, good, bad, hit):
    """Inside jax.jit a bad truth cannot be read: the affected losses and their gradient
    are NaN, the others equal eager's."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    fn = fn_of(name)
    good, bad, hit = np.array(good), np.array(bad), np.array(hit)
    x = (
        np.array([0.3, -0.7, 1.4, 0.2])
        if good.ndim == 1 and good.dtype.kind == "f"
        else np.array([[0.3, -0.7], [1.4, 0.2]])
    )
    f = jax.jit(lambda a, b: fn(a, b, reduction="none"))
    g = jax.jit(jax.grad(lambda a, b: fn(a, b, reduction="sum")))
    eager = fn(x, good, reduction="none")  # NumPy: the same numbers, no cold JAX dispatch
    eager_g = value_and_grad(fn)(x, good, reduction="sum")[1]
    value = np.asarray(f(jnp.asarray(x), jnp.asarray(bad)))
    grad = np.asarray(g(jnp.asarray(x), jnp.asarray(bad)))
    assert np.isnan(value[hit]).all() and np.isfinite(value[~hit]).all()
    assert_close(value[~hit], eager[~hit])
    assert np.isnan(grad[hit]).any()
    if good.dtype.kind == "f" and good.ndim == 1:  # elementwise: the others untouched
        assert_close(grad[~hit], eager_g[~hit], kind="grad")
    with pytest.raises(ValueError):  # and eagerly it is refused
        fn(jnp.asarray(x), jnp.asarray(bad))


@pytest.mark.parametrize("name", ["multi_margin", "multilabel_soft_margin"])
def test_nan_rule_class_weight_under_jit(name):
    """A negative class weight under jit: every example is NaN (a weight enters the
    mean's denominator of every example in multi_margin, every row in multilabel_soft_margin)."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x, truth, options = case(name)
    w = options["class_weight"].copy()
    w[1] = -1.0
    f = jax.jit(lambda a, b, cw: fn_of(name)(a, b, class_weight=cw, reduction="none"))
    value = np.asarray(f(jnp.asarray(x), jnp.asarray(truth), jnp.asarray(w)))
    assert np.isnan(value).all()


def test_framework_rules_compute_what_the_frameworks_compute():
    """The adapters call the core inside framework_rules: no value rule, the frameworks'
    formulas."""
    import torch
    import torch.nn.functional as F

    x = np.array([[0.3, -1.2, 2.0], [0.5, 0.1, -0.4]])
    t = np.array([[0.5, -1.0, 0.0], [2.0, 1.0, 1.0]])
    with _config.framework_rules():
        for name in ("hinge", "squared_hinge", "categorical_hinge"):
            per, _, _ = keras_ref(name, x, t, elementwise=name != "categorical_hinge")
            assert_close(fn_of(name)(x, t, reduction="none"), per)
        for name in ("soft_margin", "hinge_embedding"):
            ours = fn_of(name)(x, t, reduction="none")
            assert_close(
                ours,
                getattr(F, f"{name}_loss")(
                    torch.tensor(x), torch.tensor(t), reduction="none"
                ).numpy(),
            )


# ----------------------------------------------------------------------- magnitudes, empty, half


def test_extreme_magnitudes_float32(xp):
    """float32 scores of +-1e4 and +-3e38: finite losses and gradients, by hand.

    p = (3e38, -3e38, 1e4, -1e4), t = 1: hinge 1 - p = (1 - 3e38, 1 + 3e38, 1 - 1e4,
    1 + 1e4) -> (0, 3e38, 0, 10001), d/dp = -[m > 0] = (0, -1, 0, -1).  soft_margin
    log(1 + e^-p) = (0, 3e38, 0, 1e4), d/dp = -sigmoid(-p) = (0, -1, 0, -1).  perceptron
    max(0, -p) = (0, 3e38, 0, 1e4).  hinge_embedding (margin 1), t = (1, -1, -1, -1):
    (p, 1 + 3e38, 1 - 1e4, 1 + 1e4) -> (3e38, 3e38, 0, 10001), d/dp = (1, -1, 0, -1).
    """
    p = np.array([3e38, -3e38, 1e4, -1e4])
    t = np.ones(4)
    sums = {
        "hinge": ([0, 3e38, 0, 10001], [0, -1, 0, -1], t),
        "soft_margin": ([0, 3e38, 0, 1e4], [0, -1, 0, -1], t),
        "perceptron": ([0, 3e38, 0, 1e4], [0, -1, 0, -1], t),
        "hinge_embedding": ([3e38, 3e38, 0, 10001], [1, -1, 0, -1], np.array([1.0, -1, -1, -1])),
    }
    for name, (value, grad, truth) in sums.items():
        v, g = run(xp, fn_of(name), p, truth, "float32", reduction="none")
        np.testing.assert_allclose(v, value, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(g, grad, rtol=1e-6, err_msg=name)
    # multilabel_soft_margin: x = (3e38, -3e38, 1e4), t = (1, 0, 0): (0 + 0 + 1e4) / 3
    v, g = run(
        xp, margin.multilabel_soft_margin, [p[:3]], [[1.0, 0.0, 0.0]], "float32", reduction="none"
    )
    np.testing.assert_allclose(v, [1e4 / 3], rtol=1e-6)
    np.testing.assert_allclose(g, [[0, 0, 1 / 3]], rtol=1e-6)
    # the class losses at +-1e4: s = (1e4, -1e4, 0), y = 1
    s, y = np.array([[1e4, -1e4, 0.0]]), np.array([1])
    for name, value in (
        ("multiclass_hinge", 2e4 + 1),
        ("multiclass_perceptron", 2e4),
        ("multi_margin", (2e4 + 1 + 1e4 + 1) / 3),
    ):
        v, g = run(xp, fn_of(name), s, y, "float32", reduction="none")
        np.testing.assert_allclose(v, [value], rtol=1e-6, err_msg=name)
        assert np.isfinite(g).all()


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(xp, name):
    x, truth, options = case(name)
    x0, t0 = x[:0], truth[:0]
    for reduction in REDUCTIONS:
        value, grad = run(xp, fn_of(name), x0, t0, reduction=reduction, **options)
        if reduction == "none":
            assert value.shape == (x0.shape if name in ELEMENTWISE else (0,))
        else:
            assert value == 0.0
        assert grad.shape == x0.shape


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision(xp, name, dtype):
    """Computed in float32 from the rounded input: the framework's float64 numbers on it."""
    xp.require(dtype)
    x, truth, options = case(name)
    per, dx, _ = expected(name, dtype)
    value, grad = run(xp, fn_of(name), x, truth, dtype, reduction="mean", **options)
    ev, eg = core_reduce(per, dx, "mean", None, counts(name))
    assert_close(value, ev, dtype)
    assert_close(grad, eg, dtype, kind="grad")


# --------------------------------------------------------------------------- torch.compile


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
@pytest.mark.parametrize("name", NAMES)
def test_torch_compile_fullgraph_equals_eager(name):
    torch = pytest.importorskip("torch")
    x, truth, options = case(name)
    opts = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    fn = fn_of(name)
    torch._dynamo.reset()  # `loss` below is one code object for every loss: no recompile limit

    def loss(a: Any, b: Any) -> Any:
        return fn(a, b, reduction="none", **opts)

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    results = []
    for f in (loss, compiled):
        xt = torch.tensor(x, requires_grad=True)
        v = f(xt, torch.tensor(truth))
        v.sum().backward()
        results.append((v.detach().numpy(), xt.grad.numpy()))
    assert_close(results[1][0], results[0][0])
    assert_close(results[1][1], results[0][1], kind="grad")
    assert_close(results[1][0], expected(name)[0])
