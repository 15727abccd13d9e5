"""Bad input: the exact error (type and text) on every backend.

The texts were pinned from the core once seen; each one names the argument,
states the rule and shows what arrived (DESIGN.md "Errors say which argument,
the rule, and what arrived").
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import losskit as lk

X = np.zeros((2, 3))
P = np.full((2, 3), 1 / 3)


def first_arg(name):
    """Logits get zeros (no double-softmax warning); probabilities get 1/3."""
    return X if "softmax" in name else P


def raises(exc, text):
    return pytest.raises(exc, match="^" + re.escape(text) + "$")


# --------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["sparse_softmax_cross_entropy", "sparse_categorical_cross_entropy"]
)
@pytest.mark.parametrize("bad,pos", [(5, 1), (3, 0), (-1, 1)])
def test_label_out_of_range_names_value_and_position(xp, name, bad, pos):
    y = np.array([0, 0])
    y[pos] = bad
    with raises(ValueError, f"`labels` must be in [0, 3); got {bad} at position ({pos},)"):
        getattr(lk, name)(xp.asarray(first_arg(name)), xp.asarray(y))


def test_label_out_of_range_with_ignore_index(xp):
    with raises(
        ValueError, "`labels` must be in [0, 3) or equal ignore_index=-100; got 3 at position (1,)"
    ):
        lk.sparse_softmax_cross_entropy(
            xp.asarray(X), xp.asarray(np.array([-100, 3])), ignore_index=-100
        )
    # -1 is not the ignore index: still an error
    with raises(
        ValueError, "`labels` must be in [0, 3) or equal ignore_index=-100; got -1 at position (0,)"
    ):
        lk.sparse_softmax_cross_entropy(
            xp.asarray(X), xp.asarray(np.array([-1, 2])), ignore_index=-100
        )


def test_label_out_of_range_kdim_position(xp):
    y = np.array([[0, 1, 2, 1], [0, 9, 0, 0]])
    with raises(ValueError, "`labels` must be in [0, 3); got 9 at position (1, 1)"):
        lk.sparse_softmax_cross_entropy(xp.asarray(np.zeros((2, 3, 4))), xp.asarray(y), axis=1)


def test_label_out_of_range_in_value_and_grad(xp):
    with raises(ValueError, "`labels` must be in [0, 3); got 7 at position (0,)"):
        lk.value_and_grad(lk.sparse_softmax_cross_entropy)(
            xp.asarray(X), xp.asarray(np.array([7, 0]))
        )


@pytest.mark.parametrize(
    "name", ["sparse_softmax_cross_entropy", "sparse_categorical_cross_entropy"]
)
def test_float_labels_are_a_type_error(xp, name):
    yb = xp.asarray(np.array([0.0, 1.0]))
    with raises(
        TypeError,
        f"`labels` must be an integer array of class ids; got dtype "
        f"{yb.dtype} (for one-hot or soft targets use the non-sparse loss)",
    ):
        getattr(lk, name)(xp.asarray(first_arg(name)), yb)


def test_bool_labels_are_a_type_error():
    with pytest.raises(TypeError, match=r"^`labels` must be an integer array"):
        lk.sparse_softmax_cross_entropy(X, np.array([True, False]))


def test_huge_label():
    with raises(ValueError, "`labels` must be in [0, 3); got 1099511627776 at position (1,)"):
        lk.sparse_softmax_cross_entropy(X, np.array([0, 2**40]))


# --------------------------------------------------------------------------
# shapes: no silent broadcasting
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels,got",
    [(np.array([[0], [1]]), "(2, 1)"), (np.array([0, 1, 2]), "(3,)"), (np.array(1), "()")],
)
def test_labels_shape_mismatch(xp, labels, got):
    with raises(
        ValueError,
        "`labels` must have the shape of `logits` (2, 3) without its class "
        f"axis 1, that is (2,); got {got}",
    ):
        lk.sparse_softmax_cross_entropy(xp.asarray(X), xp.asarray(labels))


@pytest.mark.parametrize(
    "name,first,second,shape2",
    [
        ("softmax_cross_entropy", "logits", "targets", (2, 1)),
        ("softmax_cross_entropy", "logits", "targets", (3,)),
        ("categorical_cross_entropy", "probs", "targets", (1, 3)),
        ("binary_cross_entropy", "probs", "targets", (3,)),
        ("sigmoid_cross_entropy", "logits", "targets", (2, 1)),
        ("mean_squared_error", "pred", "target", (2,)),
        ("mean_absolute_error", "pred", "target", (1, 3)),
    ],
)
def test_truth_shape_mismatch(xp, name, first, second, shape2):
    with raises(
        ValueError,
        f"`{second}` must have the shape of `{first}` (2, 3); got "
        f"{shape2} (losskit does not broadcast)",
    ):
        getattr(lk, name)(
            xp.asarray(P if first == "probs" else X), xp.asarray(np.full(shape2, 0.5))
        )


def test_sample_weight_shape(xp):
    with raises(
        ValueError,
        "`sample_weight` must have the shape of the batch, a leading part "
        "of the unreduced loss shape (2,) such as (2,); got (3,)",
    ):
        lk.sparse_softmax_cross_entropy(
            xp.asarray(X), xp.asarray(np.array([0, 1])), sample_weight=xp.asarray(np.ones(3))
        )
    with raises(
        ValueError,
        "`sample_weight` must have the shape of the batch, a leading part "
        "of the unreduced loss shape (2, 3) such as (2,) or (2, 3); got (3,)",
    ):
        lk.mean_squared_error(xp.asarray(X), xp.asarray(X), sample_weight=xp.asarray(np.ones(3)))
    # trailing alignment (NumPy broadcasting) is not accepted either
    with pytest.raises(ValueError, match=r"^`sample_weight` must have the shape"):
        lk.mean_squared_error(
            xp.asarray(X), xp.asarray(X), sample_weight=xp.asarray(np.ones((1, 3)))
        )


def test_class_weight_wrong_length(xp):
    with raises(ValueError, "`class_weight` must have one weight per class, shape (3,); got (4,)"):
        lk.sparse_softmax_cross_entropy(
            xp.asarray(X), xp.asarray(np.array([0, 1])), class_weight=xp.asarray(np.ones(4))
        )


def test_pos_weight_wrong_length(xp):
    with raises(
        ValueError,
        "`pos_weight` must be a scalar or have one weight per class along "
        "the last axis of `logits`, shape (3,); got (4,)",
    ):
        lk.sigmoid_cross_entropy(xp.asarray(X), xp.asarray(X), pos_weight=xp.asarray(np.ones(4)))


def test_axis_out_of_range():
    with raises(ValueError, "`axis` must be an int in [-2, 2) for 2-d `logits`; got 2"):
        lk.softmax_cross_entropy(X, P, axis=2)


# --------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------

ALL_LOSSES = [
    ("softmax_cross_entropy", X, P),
    ("sparse_softmax_cross_entropy", X, np.array([0, 1])),
    ("categorical_cross_entropy", P, P),
    ("sparse_categorical_cross_entropy", P, np.array([0, 1])),
    ("binary_cross_entropy", P, P),
    ("sigmoid_cross_entropy", X, P),
    ("mean_squared_error", X, P),
    ("mean_absolute_error", X, P),
]


@pytest.mark.parametrize("name,a,b", ALL_LOSSES, ids=[c[0] for c in ALL_LOSSES])
@pytest.mark.parametrize("reduction", ["avg", "MEAN", None, "batchmean"])
def test_unknown_reduction_lists_choices(name, a, b, reduction):
    with raises(ValueError, f"`reduction` must be one of 'mean', 'sum', 'none'; got {reduction!r}"):
        getattr(lk, name)(a, b, reduction=reduction)


@pytest.mark.parametrize(
    "name,a,b",
    [ALL_LOSSES[0], ALL_LOSSES[1], ALL_LOSSES[5]],
    ids=["softmax", "sparse_softmax", "sigmoid"],
)
@pytest.mark.parametrize("eps", [-0.1, 1.5, 2.0, float("nan")])
def test_label_smoothing_outside_unit_interval(xp, name, a, b, eps):
    with raises(ValueError, f"`label_smoothing` must be a number in [0, 1]; got {eps}"):
        getattr(lk, name)(xp.asarray(a), xp.asarray(b), label_smoothing=eps)


@pytest.mark.parametrize("eps", [-1e-3, 0.6])
def test_eps_outside_range(eps):
    with raises(ValueError, f"`eps` must be a number in [0, 0.5); got {eps}"):
        lk.binary_cross_entropy(np.array([0.5]), np.array([1.0]), eps=eps)


def test_ignore_index_must_be_int():
    with raises(TypeError, "`ignore_index` must be an int or None; got 1.5"):
        lk.sparse_softmax_cross_entropy(X, np.array([0, 1]), ignore_index=1.5)


# --------------------------------------------------------------------------
# probabilities outside [0, 1]
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,probs,truth,got,pos",
    [
        ("binary_cross_entropy", [0.5, 1.2], [0.0, 1.0], "1.2", "(1,)"),
        ("binary_cross_entropy", [-0.25, 0.5], [0.0, 1.0], "-0.25", "(0,)"),
        ("categorical_cross_entropy", [[-0.1, 1.1]], [[0.0, 1.0]], "-0.1", "(0, 0)"),
        ("sparse_categorical_cross_entropy", [[0.5, 1.5]], [1], "1.5", "(0, 1)"),
    ],
)
def test_probabilities_outside_unit_interval(xp, name, probs, truth, got, pos):
    with raises(
        ValueError, f"`probs` must be probabilities in [0, 1]; got {got} at position {pos}"
    ):
        getattr(lk, name)(xp.asarray(np.array(probs)), xp.asarray(np.array(truth)))


def test_nan_probabilities_are_an_error_not_a_nan_loss(xp):
    """NaN does not lie in [0, 1]; issue 2: never a NaN instead of an error."""
    with raises(ValueError, "`probs` must be probabilities in [0, 1]; got nan at position (0,)"):
        lk.binary_cross_entropy(
            xp.asarray(np.array([np.nan, 0.5])), xp.asarray(np.array([0.0, 1.0]))
        )


# --------------------------------------------------------------------------
# kinds and calling convention
# --------------------------------------------------------------------------


def test_integer_logits_are_a_type_error():
    with raises(TypeError, "`logits` must be a real floating-point array; got dtype int64"):
        lk.softmax_cross_entropy(np.zeros((2, 3), dtype=np.int64), P)


def test_options_are_keyword_only_and_arrays_positional():
    with pytest.raises(TypeError):
        lk.softmax_cross_entropy(X, P, -1)
    with pytest.raises(TypeError):
        lk.sparse_softmax_cross_entropy(X, np.array([0, 1]), -1, None)
    with pytest.raises(TypeError):
        lk.softmax(x=X)


# --------------------------------------------------------------------------
# warnings are warnings, with their text
# --------------------------------------------------------------------------


def test_unnormalized_warning_text():
    with pytest.warns(lk.UnnormalizedProbabilitiesWarning) as rec:
        lk.categorical_cross_entropy(np.array([[0.2, 0.6, 0.1]]), np.array([[0.0, 1.0, 0.0]]))
    assert str(rec[0].message) == (
        "`probs` given to categorical_cross_entropy should sum to 1 along the class axis; the "
        "row at position (0,) sums to 0.9. losskit does not renormalise them; if they are "
        "scores, not probabilities, use the softmax loss on logits."
    )


@pytest.mark.parametrize(
    "name,probs_fn,truth",
    [
        ("softmax_cross_entropy", "categorical_cross_entropy", np.array([[0.0, 1.0, 0.0]])),
        ("sparse_softmax_cross_entropy", "sparse_categorical_cross_entropy", np.array([1])),
    ],
)
def test_double_softmax_warning_text(xp, name, probs_fn, truth):
    with pytest.warns(lk.ProbabilitiesAsLogitsWarning) as rec:
        getattr(lk, name)(xp.asarray(np.array([[0.2, 0.7, 0.1]])), xp.asarray(truth))
    assert str(rec[0].message) == (
        f"`logits` given to {name} look like probabilities (all in [0, 1], each row summing to "
        f"1); {name} applies softmax itself, so softmax would be applied twice. Pass "
        f"probabilities to {probs_fn} instead, or pass the raw logits."
    )


def test_value_and_grad_keeps_the_calling_convention():
    vg = lk.value_and_grad(lk.softmax_cross_entropy)
    with pytest.raises(TypeError):
        vg(X, P, -1)  # options are keyword-only
    with pytest.raises(TypeError):
        vg(X, P, label_smothing=0.1)  # a misspelt option is not silently ignored
    with raises(ValueError, "`reduction` must be one of 'mean', 'sum', 'none'; got 'avg'"):
        vg(X, P, reduction="avg")


def test_integer_valued_options_are_accepted():
    """label_smoothing=1 and eps=0 as Python ints are numbers in range."""
    a = lk.sparse_softmax_cross_entropy(X, np.array([0, 1]), label_smoothing=1)
    b = lk.sparse_softmax_cross_entropy(X, np.array([0, 1]), label_smoothing=1.0)
    assert a == b
    a = lk.binary_cross_entropy(np.array([0.5]), np.array([1.0]), eps=0)
    np.testing.assert_allclose(a, np.log(2), rtol=1e-12)


# --------------------------------------------------------------------------
# issue 7: the core's value rules, integer ranges, NumPy bfloat16
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sparse_softmax_cross_entropy", "negative_log_likelihood"])
@pytest.mark.parametrize("ignore_index", [2**63, -(2**63) - 1, 2**70])
def test_ignore_index_outside_int64(name, ignore_index):
    msg = f"`ignore_index` must fit in int64, [-2**63, 2**63); got {ignore_index}"
    big = np.zeros((2048, 3))  # large enough for the fused kernel
    for x in (X, big):
        with raises(ValueError, msg):
            getattr(lk, name)(x, np.zeros(x.shape[0], np.int64), ignore_index=ignore_index)


def test_torch_unsigned_labels_are_refused_with_a_message():
    torch = pytest.importorskip("torch")
    msg = (
        "`labels` must be a signed integer tensor or torch.uint8; got dtype torch.uint64, "
        "which PyTorch cannot compare or index with (convert with labels.to(torch.int64))"
    )
    with raises(TypeError, msg):
        lk.sparse_softmax_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1], dtype=torch.uint64))
    # uint8 works as it does in PyTorch
    got = lk.sparse_softmax_cross_entropy(
        torch.zeros(2, 3), torch.tensor([0, 1], dtype=torch.uint8)
    )
    assert abs(float(got) - np.log(3)) < 1e-6


@pytest.mark.parametrize(
    "name,kw,text",
    [
        ("class_weight", {"class_weight": np.array([1.0, 1.0, -1.0])}, "-1.0 at position (2,)"),
        ("class_weight", {"class_weight": np.array([1.0, np.inf, 1.0])}, "inf at position (1,)"),
        ("sample_weight", {"sample_weight": np.array([1.0, -1.0])}, "-1.0 at position (1,)"),
        ("sample_weight", {"sample_weight": np.array([np.nan, 1.0])}, "nan at position (0,)"),
    ],
)
def test_weights_must_be_finite_and_non_negative(xp, name, kw, text):
    args = {k: xp.asarray(v) for k, v in kw.items()}
    with raises(ValueError, f"`{name}` must be finite and non-negative; got {text}"):
        lk.sparse_softmax_cross_entropy(xp.asarray(X), xp.asarray(np.array([0, 2])), **args)


@pytest.mark.parametrize(
    "name", ["binary_cross_entropy", "sigmoid_cross_entropy", "softmax_cross_entropy"]
)
@pytest.mark.parametrize("bad", [-1.0, 1.5, np.nan])
def test_targets_outside_unit_interval(xp, name, bad):
    t = np.full((2, 3), 1 / 3)
    t[1, 2] = bad
    with raises(ValueError, f"`targets` must be in [0, 1]; got {bad!r} at position (1, 2)"):
        getattr(lk, name)(xp.asarray(first_arg(name) if "softmax" in name else P), xp.asarray(t))


def test_numpy_bfloat16_is_half_precision():
    """ml_dtypes' bfloat16 (JAX's dtype seen from NumPy) computes in float32, as torch's does:
    the loss comes back in float32, the gradient in bfloat16, the values those of the
    bfloat16-rounded input in float64 within bfloat16's precision."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = ml_dtypes.bfloat16
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 5)).astype(bf16)
    y = np.array([0, 4, 2, 1])
    value, grad = lk.value_and_grad(lk.sparse_softmax_cross_entropy)(z, y)
    assert value.dtype == np.float32 and grad.dtype == bf16
    # The reference: PyTorch in float64 on the bfloat16-rounded inputs.
    torch = pytest.importorskip("torch")
    zt = torch.tensor(z.astype(np.float64), requires_grad=True)
    expected = torch.nn.functional.cross_entropy(zt, torch.tensor(y))
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-6)
    np.testing.assert_allclose(grad.astype(np.float64), zt.grad.numpy(), atol=4e-3)
    z64 = torch.tensor(z.astype(np.float64))
    references = {
        lk.softmax: torch.softmax(z64, -1),
        lk.log_softmax: torch.log_softmax(z64, -1),
        lk.sigmoid: torch.sigmoid(z64),
        lk.log_sigmoid: torch.nn.functional.logsigmoid(z64),
    }
    for fn, reference in references.items():
        out = fn(z)
        assert out.dtype == bf16
        np.testing.assert_allclose(out.astype(np.float64), reference.numpy(), rtol=1e-2)
    assert lk.mean_squared_error(z, z).dtype == np.float32


@pytest.mark.parametrize(
    ("loss", "option", "values"),
    [
        ("circle", "margin", (0.4, 0.3)),
        ("huber", "delta", (1.0, 0.5)),
        ("hinge_embedding", "margin", (1.0, 0.5)),
        ("multi_margin", "margin", (1.0, 0.5)),
    ],
)
def test_float_option_changing_between_compiled_calls(loss, option, values):
    # dynamo makes a float option symbolic once it changes between calls; the option
    # checks must stay traceable then (math.isfinite on it broke the graph)
    torch = pytest.importorskip("torch")
    import losskit as lk

    fn = getattr(lk, loss)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    truth = {
        "circle": torch.tensor([0, 0, 1, 1, 2, 2]),
        "huber": torch.randn(6, 3, generator=gen, dtype=torch.float64),
        "hinge_embedding": torch.ones(6, 3, dtype=torch.float64),
        "multi_margin": torch.tensor([0, 1, 2, 0, 1, 2]),
    }[loss]
    compiled = torch.compile(
        lambda x, v: fn(x, truth, **{option: v}), fullgraph=True, backend="aot_eager"
    )
    for value in values:
        expected = fn(x, truth, **{option: value})
        torch.testing.assert_close(compiled(x, value), expected, rtol=1e-12, atol=1e-12)
