"""``losskit explain``: every loss step by step, agreeing with the library, and its errors."""

# ruff: noqa: E501  (the exact error lines are pinned whole)

from __future__ import annotations

import json

import numpy as np
import pytest

import losskit as lk
from losskit import catalogue
from losskit.cli import _fd, _hand_steps
from test_cli import error_line, run

# A tiny example of every catalogued loss, away from kinks (those have their own tests).
EXPLAIN = {
    "softmax_cross_entropy": ["--logits", "2,0.5,6", "--label", "2"],
    "sparse_softmax_cross_entropy": ["--logits", "2,0.5,6", "--label", "2"],
    "categorical_cross_entropy": ["--probs", "0.2,0.7,0.1", "--targets", "0,1,0"],
    "sparse_categorical_cross_entropy": ["--probs", "0.2,0.7,0.1", "--label", "1"],
    "binary_cross_entropy": ["--probs", "0.9,0.2", "--targets", "1,0"],
    "sigmoid_cross_entropy": ["--logits", "2,-1", "--targets", "1,0"],
    "sigmoid_focal_loss": ["--logits", "2,-1", "--targets", "1,0"],
    "binary_focal_cross_entropy": ["--probs", "0.9,0.2", "--targets", "1,0"],
    "categorical_focal_cross_entropy": ["--probs", "0.2,0.7,0.1", "--label", "1"],
    "softmax_focal_loss": ["--logits", "2,0.5,6", "--label", "0"],
    "generalized_cross_entropy": ["--probs", "0.2,0.7,0.1", "--label", "1"],
    "poly1_cross_entropy": ["--logits", "2,0.5,6", "--targets", "0.2,0.8,0"],
    "sparsemax_loss": ["--logits", "2,0.5,1.6", "--label", "0"],
    "poisson_nll": ["--pred", "2,0.5", "--targets", "3,0"],
    "gaussian_nll": ["--pred", "1,3", "--targets", "0,1", "--var", "1,4"],
    "kl_divergence": ["--log-probs", "-1.2,-0.9,-1.2", "--targets", "0.5,0.5,0"],
    "negative_log_likelihood": ["--log-probs", "-0.7,-1.4,-1.4", "--label", "0"],
    "mean_squared_error": ["--pred", "2.5,0", "--targets", "3,-1"],
    "mean_absolute_error": ["--pred", "2.5,0", "--targets", "3,-1"],
    "huber": ["--pred", "0.5,3", "--targets", "0,0"],
    "log_cosh": ["--pred", "0.5,3", "--targets", "0,-1"],
    "mean_absolute_percentage_error": ["--pred", "110,45", "--targets", "100,50"],
    "mean_squared_logarithmic_error": ["--pred", "1.5,0.5", "--targets", "0,2"],
    "hinge": ["--pred", "0.3,-2", "--targets", "1,1"],
    "squared_hinge": ["--pred", "0.3,-2", "--targets", "1,0"],
    "categorical_hinge": ["--pred", "0.3,2,-1", "--label", "0"],
    "multiclass_hinge": ["--scores", "0.3,2,-1", "--label", "0"],
    "multi_margin": ["--scores", "0.3,2,-1", "--label", "0"],
    "multilabel_margin": ["--scores", "0.1,0.2,0.4,0.8", "--targets", "3,0,-1,1"],
    "soft_margin": ["--pred", "0.3,-2", "--targets", "1,-1"],
    "multilabel_soft_margin": ["--logits", "0,2,-1", "--targets", "1,1,0"],
    "hinge_embedding": ["--pred", "0.3,0.3,2", "--targets", "1,-1,-1"],
    "perceptron": ["--scores", "0.3,-2", "--targets", "-1,-1"],
    "multiclass_perceptron": ["--scores", "0.3,2,-1", "--label", "0"],
    "cosine_distance": ["--pred", "1,2,-1", "--targets", "0.5,1,1"],
    "cosine_embedding": ["--x1", "1,2;0,1", "--x2", "2,1;1,1", "--targets", "1,-1"],
    "margin_ranking": ["--x1", "1,-1", "--x2", "0.5,0", "--targets", "-1,1", "--margin", "0.5"],
    "triplet_margin": ["--anchor", "0,1;1,1", "--positive", "1,0;1,2", "--negative", "0,2;2,1"],
    "ntxent": ["--embeddings", "1,0.2;0.9,0.5;-0.2,1;0.1,-1", "--labels", "1,1,0,0"],
    "circle": [
        "--embeddings",
        "1,0.2;0.9,0.5;-0.2,1;0.1,-1",
        "--labels",
        "1,1,0,0",
        "--gamma",
        "8",
    ],
    "ranking_softmax": ["--logits", "2,0.5,-1,0", "--targets", "0,1,2,0"],
    "dice": ["--probs", "0.9,0.2,0.6,0.1", "--targets", "1,0,1,1"],
    "generalized_dice": ["--probs", "0.7,0.3;0.4,0.6", "--targets", "1,0;0,1"],
    "tversky": [
        "--probs",
        "0.9,0.2,0.6,0.1",
        "--targets",
        "1,0,1,1",
        "--alpha",
        "0.3",
        "--beta",
        "0.7",
    ],
    "linear_cross_entropy": [
        "--hidden",
        "1,-1;0.5,2;0,1",
        "--weight",
        "1,0;0,1;1,1;-1,0",
        "--labels",
        "3,0,2",
    ],
}


def test_explain_covers_every_loss():
    """ctc has its own explain, the alignment lattice (test_cli_explain_ctc.py)."""
    assert sorted(EXPLAIN) == sorted(set(catalogue.names()) - {"ctc"})


def test_explain_ctc_is_the_lattice(capsys, tmp_path):
    """`losskit explain ctc` dispatches to the lattice explainer, options and all."""
    code, out, err = run(capsys, "explain", "ctc", "--logits", "0,0,0;0,0,0;0,0,0;0,0,0",
                         "--labels", "1,2", "--json")  # fmt: skip
    assert (code, err) == (0, "")
    d = json.loads(out)
    # uniform logits: 15 of the 81 paths of 4 frames over {blank, 1, 2} spell "1 2"
    assert d["value"] == pytest.approx(np.log(81 / 15), rel=1e-12)
    assert d["extended_labels"] == [0, 1, 0, 2, 0] and d["agrees_with_library"] is True
    png = tmp_path / "lattice.png"
    code, out, _ = run(capsys, "explain", "ctc", "--out", str(png))
    assert code == 0 and "alpha[t, s]" in out and png.read_bytes()[:4] == b"\x89PNG"
    assert error_line(capsys, 2, "explain", "ctc", "--gamma", "2").startswith(
        "losskit explain: error: explain ctc takes --labels"
    )


@pytest.mark.parametrize("name", sorted(EXPLAIN))
def test_explain_every_loss(capsys, name):
    info = catalogue.CATALOGUE[name]
    code, out, err = run(capsys, "explain", name, *EXPLAIN[name])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"{name}: {info.summary}"
    assert (info.formula in out and info.gradient in out) or name in _hand_steps.HANDLED
    assert "  1. " in out
    assert f"losskit.{name} gives loss" in out
    assert f"central finite differences ({_fd.H_TEXT}) give" in lines[-1]
    assert lines[-1].endswith("(agrees)") and "DIFFERS" not in out


@pytest.mark.parametrize("name", sorted(EXPLAIN))
def test_explain_every_loss_json_is_the_library_s(capsys, name):
    """The JSON value and gradient are the library's; finite differences agree."""
    info = catalogue.CATALOGUE[name]
    code, out, _ = run(capsys, "explain", name, *EXPLAIN[name], "--json")
    assert code == 0
    d = json.loads(out)
    assert d["agrees_with_library"] is True and d["finite_differences"]["agrees"] is True
    if info.explain_as:  # the arrays by name, as the loss took them
        arrays = [np.array(v) for v in d["arrays"].values()]
        if info.truth in ("groups", "sequences", "ids"):  # JSON has no integer arrays
            k = 1 + len(info.inputs)
            arrays[k] = arrays[k].astype(np.int64)
        value, grad = lk.value_and_grad(info.fn)(*arrays, **d["options"])
        grad = grad[0] if isinstance(grad, tuple) else grad
    else:
        x = np.array(d["input"]["values"])
        t = np.array(d["truth"]["values"])
        extra = [np.array(d[k]) for k in info.extra]
        if info.per_example:
            x, t, extra = x[None], t[None], [e[None] for e in extra]
        value, grad = lk.value_and_grad(info.fn)(x, t, *extra, **d["options"])
    assert d["value"] == pytest.approx(float(value), rel=1e-12)
    np.testing.assert_allclose(np.ravel(d["gradient"]), np.asarray(grad).ravel(), rtol=1e-12)
    np.testing.assert_allclose(
        d["finite_differences"]["gradient"], np.ravel(d["gradient"]), rtol=1e-5, atol=1e-12
    )


def test_explain_sparse_softmax_numbers(capsys):
    _, out, _ = run(
        capsys,
        "explain",
        "sparse_softmax_cross_entropy",
        "--logits",
        "2,0.5,6",
        "--label",
        "2",
        "--json",
    )
    d = json.loads(out)
    p = np.exp([2, 0.5, 6]) / np.exp([2, 0.5, 6]).sum()
    assert d["value"] == pytest.approx(-np.log(p[2]))
    np.testing.assert_allclose(d["gradient"], p - [0, 0, 1], rtol=1e-9)
    assert d["agrees_with_library"] is True
    steps = {s["formula"]: s["value"] for s in d["steps"]}
    np.testing.assert_allclose(steps["p = e^(z - max z) / Σ e^(z - max z)"], p)
    assert steps["L = -log p_y"] == pytest.approx(-np.log(p[2]))


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (
            [
                "softmax_cross_entropy",
                "--logits",
                "2,0.5,6",
                "--label",
                "2",
                "--label-smoothing",
                "0.1",
            ],
            {"label_smoothing": 0.1},
        ),
        (
            ["sigmoid_cross_entropy", "--logits", "2,-1", "--targets", "1,0", "--pos-weight", "3"],
            {"pos_weight": 3.0},
        ),
        (
            [
                "sigmoid_cross_entropy",
                "--logits",
                "0.5",
                "--label",
                "1",
                "--label-smoothing",
                "0.2",
            ],
            {"label_smoothing": 0.2},
        ),
        (["sparse_softmax_cross_entropy", "--logits", "1,2", "--targets", "0,1"], {}),
    ],
)
def test_explain_with_options_agrees_with_library(capsys, args, extra):
    code, out, err = run(capsys, "explain", *args, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["agrees_with_library"] is True
    for k, v in extra.items():
        assert d["options"][k] == v


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["sparse_categorical_cross_entropy", "--probs", "0,1,0", "--label", "0"], "= inf"),
        (["sparse_categorical_cross_entropy", "--probs", "0,1,0", "--label", "1"], "[0, -1, 0]"),
        (["categorical_cross_entropy", "--probs", "0,1,0", "--targets", "0.5,0.5,0"], "= inf"),
        (["categorical_cross_entropy", "--probs", "0,1,0", "--targets", "0,1,0"], "[0, -1, 0]"),
        (["binary_cross_entropy", "--probs", "1,0", "--targets", "1,0"], "[-0.5, 0.5]"),
        (["binary_cross_entropy", "--probs", "1,0.5", "--targets", "0.3,0"], "= inf"),
    ],
)
def test_explain_zero_probability_without_clipping(capsys, args, shown):
    """--eps 0: log 0 and x/0 are the inf the steps mean to show; no NumPy warnings, no NaN."""
    code, out, err = run(capsys, "explain", *args, "--eps", "0")
    assert err == ""
    assert code == 0 and "(agrees)" in out, out
    assert "nan" not in out and shown in out


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (
            ["bce", "--logits", "2", "--label", "1"],
            2,
            "losskit explain: error: binary_cross_entropy takes probabilities in [0, 1], not logits: "
            "give --probs (for logits use sigmoid_cross_entropy)",
        ),
        (
            ["ce", "--logits", "2,0.5,6"],
            2,
            "losskit explain: error: sparse_softmax_cross_entropy needs the truth: give --label or --targets",
        ),
        (
            ["ce", "--logits", "2,0.5,6", "--label", "3"],
            1,
            "losskit explain: error: --label must be in [0, 3) for 3 classes; got 3",
        ),
        (
            ["ce", "--logits", "2,x", "--label", "0"],
            2,
            "losskit explain: error: --logits must be numbers separated by commas; got '2,x'",
        ),
        (
            ["mse", "--pred", "1", "--targets", "1", "--pos-weight", "2"],
            2,
            "losskit explain: error: mean_squared_error has no option --pos-weight; it takes none",
        ),
        (
            ["bce", "--probs", "1.5", "--label", "1"],
            1,
            "losskit explain: error: --probs must be in [0, 1]; got [1.5]",
        ),
        (
            ["hingee", "--logits", "1", "--label", "1"],
            2,
            "losskit explain: error: unknown loss 'hingee'; did you mean 'hinge'? (`losskit list` shows all)",
        ),
        (
            ["hinge", "--logits", "1", "--label", "1"],
            2,
            "losskit explain: error: hinge takes real scores (margins, no activation), not logits: give --pred",
        ),
        (
            ["nll", "--probs", "0.5,0.5", "--label", "0"],
            2,
            "losskit explain: error: negative_log_likelihood takes log-probabilities (<= 0, e.g. "
            "log_softmax output), not probs: give --log-probs (for probs use sparse_categorical_cross_entropy)",
        ),
        # Probabilities as log-probabilities would read log p = 0.5, a plausible wrong number.
        (
            ["nll", "--log-probs", "0.5,-1", "--label", "0"],
            1,
            "losskit explain: error: `log_probs` must be log-probabilities (<= 0); got 0.5 at position (0, 0)",
        ),
        (
            ["smooth_l1", "--pred", "1", "--targets", "0"],
            2,
            "losskit explain: error: unknown loss 'smooth_l1'; use huber: PyTorch's smooth_l1_loss(beta=b) "
            "is huber(delta=b) / b (the same at b = 1)",
        ),
        (
            ["mse", "--pred", "1", "--probs", "0.5", "--targets", "1"],
            2,
            "losskit explain: error: give one input, not --probs and --pred: mean_squared_error takes --pred",
        ),
        (
            ["gaussian_nll", "--pred", "1", "--targets", "0"],
            2,
            "losskit explain: error: gaussian_nll needs --var (one value per prediction)",
        ),
        (
            ["gaussian_nll", "--pred", "1,2", "--targets", "0,0", "--var", "1,2,3"],
            1,
            "losskit explain: error: `var` must have the shape of `pred` (2,), that shape with one axis "
            "of size 1 such as (1,), or one axis fewer, () (PyTorch's rules; losskit broadcasts no "
            "further); got (3,)",
        ),
        (
            ["gaussian_nll", "--pred", "1", "--targets", "0", "--var", "-1"],
            1,
            "losskit explain: error: `var` must be non-negative; got -1.0 at position (0,)",
        ),
        (
            ["mse", "--pred", "1", "--targets", "0", "--reduction", "sum"],
            2,
            "losskit explain: error: explain shows one example and its mean: --reduction cannot be set "
            "(`losskit eval` takes it)",
        ),
        (
            ["ce", "--logits", "1,2", "--label", "0", "--sample-weight", "2"],
            2,
            "losskit explain: error: explain shows one example and its mean: --sample-weight cannot be "
            "set (`losskit eval` takes it)",
        ),
        (
            ["huber", "--pred", "1", "--targets", "0", "--delta", "-1"],
            1,
            "losskit explain: error: `delta` must be a positive finite number; got -1",
        ),
        (
            ["huber", "--pred", "1", "--targets", "0", "--delta", "abc"],
            1,
            "losskit explain: error: `delta` must be a positive finite number; got 'abc'",
        ),
        (
            ["huber", "--pred", "1", "--targets", "0", "--gamma", "2"],
            2,
            "losskit explain: error: huber has no option --gamma; its options are: --delta",
        ),
        (
            ["multi_margin", "--scores", "1,2", "--label", "0", "--p", "3"],
            1,
            "losskit explain: error: `p` must be 1 or 2 (as torch's multi_margin_loss); got 3",
        ),
        (
            ["hinge", "--pred", "1,2", "--targets", "0.5,1"],
            1,
            "losskit explain: error: `targets` must be -1 or 1, or all 0 or 1 (read as -1 and 1, as "
            "Keras does); got 0.5 at position (0,)",
        ),
        (
            ["soft_margin", "--pred", "1,2", "--targets", "0,1"],
            1,
            "losskit explain: error: `targets` must be -1 or 1; got 0.0 at position (0,)",
        ),
        (
            ["multilabel_margin", "--scores", "1,2", "--targets", "0.5,-1"],
            1,
            "losskit explain: error: --targets must be class ids ended by -1 (e.g. 3,0,-1,1); got [0.5, -1]",
        ),
        (
            ["multilabel_margin", "--scores", "1,2", "--targets", "2,-1"],
            1,
            "losskit explain: error: `labels` must be in [-1, 2) (class ids, then -1 and padding); got 2 "
            "at position (0, 0)",
        ),
        (
            ["poisson_nll", "--pred", "-1", "--targets", "1"],
            1,
            "losskit explain: error: `pred` must be non-negative; got -1.0 at position (0,)",
        ),
        (
            ["kl_divergence", "--log-probs", "-1,-0.5", "--label", "1", "--log-target", "true"],
            2,
            "losskit explain: error: with --log-target true give the target log-probabilities as --targets",
        ),
        # Non-finite numbers used to print a table of NaN, "DIFFERS", and exit 1 silently.
        (
            ["ce", "--logits", "1,nan,2", "--label", "0"],
            2,
            "losskit explain: error: --logits must be finite numbers; got 'nan' (value 2 of 3)",
        ),
        (
            ["ce", "--logits", "1,-inf,2", "--label", "0"],
            2,
            "losskit explain: error: --logits must be finite numbers; got '-inf' (value 2 of 3)",
        ),
        (
            ["ce", "--logits", "1,1e400,2", "--label", "0"],
            2,
            "losskit explain: error: --logits must be finite numbers; got '1e400' (value 2 of 3), "
            "beyond the float64 range",
        ),
        (
            ["mse", "--pred", "1", "--targets", "inf"],
            2,
            "losskit explain: error: --targets must be finite numbers; got 'inf' (value 1 of 1)",
        ),
        # An empty value used to be skipped, shifting the later ones: 1,,2 was read as [1, 2].
        (
            ["ce", "--logits", "1,,2", "--label", "0"],
            2,
            "losskit explain: error: --logits has an empty value (value 2 of 3 in '1,,2')",
        ),
        # One target used to be stretched over every prediction.
        (
            ["mse", "--pred", "2.5,0", "--targets", "3"],
            1,
            "losskit explain: error: --targets has 1 value; --pred has 2 values",
        ),
        (
            ["sigmoid_cross_entropy", "--logits", "2,-1", "--label", "1"],
            1,
            "losskit explain: error: --label has 1 value; --logits has 2 values",
        ),
        (
            ["softmax_cross_entropy", "--logits", "1,2,3", "--targets", "1,0"],
            1,
            "losskit explain: error: --targets has 2 values; --logits has 3 classes",
        ),
        # Truth outside [0, 1] made a negative loss that the library "agreed" with.
        (
            ["bce", "--probs", "0.8", "--label", "2"],
            1,
            "losskit explain: error: --label must be in [0, 1] for binary_cross_entropy "
            "(0/1, or a soft target in between); got [2]",
        ),
        (
            ["sigmoid_cross_entropy", "--logits", "0.5,1", "--targets", "1,-1"],
            1,
            "losskit explain: error: --targets must be in [0, 1] for sigmoid_cross_entropy "
            "(0/1, or a soft target in between); got [1, -1]",
        ),
        (
            ["softmax_cross_entropy", "--logits", "1,2", "--targets", "-1,2"],
            1,
            "losskit explain: error: --targets must be in [0, 1] for softmax_cross_entropy "
            "(a distribution over the classes); got [-1, 2]",
        ),
        # The loss's options are the library's to check (one rule per option, for every loss).
        (
            ["sigmoid_cross_entropy", "--logits", "1", "--label", "1", "--pos-weight", "nan"],
            1,
            "losskit explain: error: `pos_weight` must be finite and non-negative; got nan",
        ),
        (
            ["bce", "--probs", "0.5", "--label", "1", "--eps", "inf"],
            1,
            "losskit explain: error: `eps` must be a number in [0, 0.5); got inf",
        ),
        (
            ["ce", "--logits", "1,2", "--label", "1", "--label-smoothing", "nan"],
            1,
            "losskit explain: error: `label_smoothing` must be a number in [0, 1]; got nan",
        ),
    ],
)
def test_explain_errors(capsys, args, code, line):
    assert error_line(capsys, code, "explain", *args) == line


def test_explain_reads_negative_lists(capsys):
    """argparse took "-1,2" for an option ("expected one argument"); -1 alone it knew."""
    code, out, err = run(capsys, "explain", "mse", "--pred", "-1,-2", "--targets", "-1,2", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["truth"]["values"] == [-1, 2] and d["value"] == pytest.approx((0 + 16) / 2)


def test_explain_passes_the_library_s_refusal_on_as_one_line(capsys, monkeypatch):
    import losskit

    def refuses(fn):
        def call(*args, **kwargs):
            raise ValueError("`targets` must be in [0, 1]; got 2.0 at position (0,)")

        return call

    monkeypatch.setattr(losskit, "value_and_grad", refuses)
    code, out, err = run(capsys, "explain", "mse", "--pred", "1", "--targets", "2")
    assert (code, out) == (1, "")
    assert err == "losskit explain: error: `targets` must be in [0, 1]; got 2.0 at position (0,)\n"


@pytest.mark.parametrize("as_json", [False, True])
def test_explain_that_differs_says_so_on_stderr(capsys, monkeypatch, as_json):
    """Exit 1 used to come with nothing on stderr."""
    from losskit.cli import explain

    real = explain.hand_steps

    def off_by_one(*args):
        steps, loss, grad = real(*args)
        return steps, loss + 1, grad

    monkeypatch.setattr(explain, "hand_steps", off_by_one)
    argv = ["explain", "mse", "--pred", "1", "--targets", "2", *(["--json"] if as_json else [])]
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert err == "losskit explain: error: the library's result differs from the steps\n"
    if as_json:
        assert json.loads(out)["agrees_with_library"] is False
    else:
        assert "(DIFFERS from the steps above)" in out


@pytest.mark.parametrize("name", ["mean_squared_error", "huber", "multi_margin"])
def test_a_wrong_gradient_is_caught_by_finite_differences(capsys, monkeypatch, name):
    """A library gradient off by 10% (hand-written steps or not) is reported, exit 1."""
    real = lk.value_and_grad

    def off(fn):
        def call(*args, **kwargs):
            value, grad = real(fn)(*args, **kwargs)
            return value, np.asarray(grad) * 1.1

        return call

    monkeypatch.setattr(lk, "value_and_grad", off)
    argv = {
        "mean_squared_error": ["--pred", "1", "--targets", "2"],
        "huber": ["--pred", "0.5,3", "--targets", "0,0"],
        "multi_margin": ["--scores", "0.3,2,-1", "--label", "0"],
    }[name]
    code, out, err = run(capsys, "explain", name, *argv)
    assert code == 1
    n = len(argv[1].split(","))
    at = ", ".join(f"x[{i}]" for i in range(n) if name != "multi_margin" or i != 2)
    if name == "mean_squared_error":  # the hand-written steps see it first
        assert err == "losskit explain: error: the library's result differs from the steps\n"
    else:
        assert err == (
            "losskit explain: error: the library's gradient differs from finite differences of "
            f"the loss at {at}\n"
        )
    assert "(DIFFERS from the library's gradient)" in out


@pytest.mark.parametrize(
    ("args", "kinks"),
    [
        # Three tied maxima: the library shares the gradient (1/3 each), the one-sided
        # slopes are 0 and 1 (or -1 and 0 for the true class).
        (["multiclass_perceptron", "--scores", "1,1,1", "--label", "0"], [0, 1, 2]),
        (["multiclass_hinge", "--scores", "1,0,0", "--label", "0"], [0, 1, 2]),
    ],
)
def test_explain_at_a_kink_checks_a_subgradient(capsys, args, kinks):
    code, out, err = run(capsys, "explain", *args, "--json")
    assert (code, err) == (0, "")
    d = json.loads(out)
    assert d["finite_differences"]["kinks"] == kinks and d["agrees_with_library"] is True
    code, out, _ = run(capsys, "explain", *args)
    assert out.count("is at a kink: one-sided slopes") == len(kinks)
    assert "lies between (a subgradient)" in out


def test_explain_at_a_kink_where_central_differences_agree(capsys):
    """|e| at 0 and the hinge at its margin: the library's 0 and -t/2 are the central slopes."""
    code, out, _ = run(capsys, "explain", "mae", "--pred", "1,2", "--targets", "1,0", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["gradient"] == [0.0, 0.5] and d["finite_differences"]["kinks"] == []
    _, out, _ = run(capsys, "explain", "hinge", "--pred", "1", "--targets", "1", "--json")
    d = json.loads(out)
    assert d["gradient"] == [-0.5] and d["agrees_with_library"] is True


@pytest.mark.parametrize(
    "args",
    [
        # The rate's scale is eps = 1e-8: h = 1e-6 sees a curve (the slopes -4.6e6 and -6.9e5
        # around -9.9e5 looked like a kink), a smaller step the derivative 1 - t / (p + eps).
        ["poisson_nll", "--pred", "1e-6", "--targets", "1"],
        ["poisson_nll", "--pred", "0", "--targets", "1"],  # -1e8, and one side refused
        # Predictions below eps = 1e-7 are raised to it: flat, no kink at 0 itself.
        ["msle", "--pred", "1.5,0", "--targets", "0,2"],
    ],
)
def test_explain_a_fast_curve_is_no_kink(capsys, args):
    code, out, err = run(capsys, "explain", *args, "--json")
    assert (code, err) == (0, "")
    d = json.loads(out)
    assert d["finite_differences"]["kinks"] == [] and d["agrees_with_library"] is True
    np.testing.assert_allclose(d["finite_differences"]["gradient"], d["gradient"], rtol=1e-5)


@pytest.mark.parametrize(
    ("g", "kinks", "differs"),
    [(0.0, [], []), (0.7, [0], []), (-1.0, [0], []), (1.2, [], [0]), (-1.5, [], [0])],
)
def test_a_subgradient_must_lie_between_the_one_sided_slopes(g, kinks, differs):
    """|x| at 0: 0 is the central slope, [-1, 1] the subgradients, 1.2 none of them."""
    check = _fd.check_gradient(lambda x: float(np.abs(x).sum()), np.zeros(1), np.array([g]))
    assert [i for i, _, _ in check.kinks] == kinks and check.differs == differs


def test_explain_at_the_end_of_the_domain_takes_one_side(capsys):
    """p = 1 cannot be made larger: a one-sided difference of the other side is used."""
    argv = ["bce", "--probs", "1,0.5", "--targets", "1,0", "--eps", "0", "--json"]
    code, out, err = run(capsys, "explain", *argv)
    assert (code, err) == (0, "")
    d = json.loads(out)
    # d/dp of -(log p)/2 at p = 1 is -1/2; of -log(1 - p)/2 at 1/2 is 1 (derivation: 1/(2 (1 - p))).
    np.testing.assert_allclose(d["finite_differences"]["gradient"], [-0.5, 1.0], rtol=1e-6)
    assert d["agrees_with_library"] is True


def test_explain_where_the_loss_is_infinite_takes_no_difference(capsys):
    argv = ["sparse_categorical_cross_entropy", "--probs", "0,1,0", "--label", "0", "--eps", "0"]
    code, out, err = run(capsys, "explain", *argv)
    assert (code, err) == (0, "")
    assert "finite differences: not taken (the loss is not finite here)" in out
    assert "(agrees)" in out  # the hand-written steps still check the library


@pytest.mark.parametrize(
    ("name", "argv", "value", "grad"),
    [
        # huber, delta 1.5: ½ 0.5² = 0.125 and 1.5 (3 - 0.75) = 3.375; mean 1.75;
        # gradients clip(e, -1.5, 1.5) / 2 = 0.25, 0.75.
        ("huber", ["--pred", "0.5,3", "--targets", "0,0", "--delta", "1.5"], 1.75, [0.25, 0.75]),
        # gaussian_nll: ½ (log 1 + 1) = 0.5 and ½ (log 4 + 4/4); (p - t)/v / 2 = 0.5, 0.25.
        (
            "gaussian_nll",
            ["--pred", "1,3", "--targets", "0,1", "--var", "1,4"],
            (0.5 + 0.5 * (np.log(4) + 1)) / 2,
            [0.5, 0.25],
        ),
        # gaussian_nll, full: + ½ log 2π each.
        (
            "gaussian_nll",
            ["--pred", "1,3", "--targets", "0,1", "--var", "1,4", "--full", "true"],
            (0.5 + 0.5 * (np.log(4) + 1)) / 2 + 0.5 * np.log(2 * np.pi),
            [0.5, 0.25],
        ),
        # poisson_nll, log_input: e^x - t x = e^0.5 - 1 and 1; gradients (e^x - t)/2.
        (
            "poisson_nll",
            ["--pred", "0.5,0", "--targets", "1,0", "--log-input", "true"],
            (np.exp(0.5) - 0.5 + 1) / 2,
            [(np.exp(0.5) - 1) / 2, 0.5],
        ),
        # multi_margin, p 2, margin 1.5, y = 0: h = (1.5 - 0.3 + 2, 1.5 - 0.3 - 1) = (3.2, 0.2);
        # L = (3.2² + 0.2²)/3; dL/ds = 2h/3 for the wrong classes, minus their sum for s_y.
        (
            "multi_margin",
            ["--scores", "0.3,2,-1", "--label", "0", "--p", "2", "--margin", "1.5"],
            (3.2**2 + 0.2**2) / 3,
            [-2 * 3.4 / 3, 2 * 3.2 / 3, 2 * 0.2 / 3],
        ),
        # sigmoid focal, alpha off, gamma 0: the sigmoid cross-entropy log(1 + e^-2) / 1.
        (
            "sigmoid_focal_loss",
            ["--logits", "2", "--targets", "1", "--gamma", "0", "--alpha", "none"],
            np.log1p(np.exp(-2.0)),
            [-1 / (1 + np.exp(2.0))],
        ),
        # kl_divergence, log targets s: Σ e^s (s - log q).
        (
            "kl_divergence",
            ["--log-probs", "-1,-0.5", "--targets", "-0.3,-1.2", "--log-target", "true"],
            np.exp(-0.3) * (-0.3 + 1) + np.exp(-1.2) * (-1.2 + 0.5),
            [-np.exp(-0.3), -np.exp(-1.2)],
        ),
        # nll with ignore_index at the label: nothing counted, 0 and a zero gradient.
        ("nll", ["--log-probs", "-0.7,-0.7", "--label", "0", "--ignore-index", "0"], 0.0, [0, 0]),
        # generalized CE, q = 1: the absolute error 1 - p_y; dL/dp_y = -1.
        (
            "generalized_cross_entropy",
            ["--probs", "0.2,0.8", "--label", "1", "--q", "1"],
            0.2,
            [0, -1],
        ),
    ],
)
def test_explain_options_give_independent_numbers(capsys, name, argv, value, grad):
    code, out, err = run(capsys, "explain", name, *argv, "--json")
    assert (code, err) == (0, "")
    d = json.loads(out)
    assert d["value"] == pytest.approx(value, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(d["gradient"], grad, rtol=1e-9, atol=1e-12)
    assert d["agrees_with_library"] is True
    opts = dict(zip(argv[::2], argv[1::2], strict=True))
    shown = {k[2:].replace("-", "_") for k in opts} - {"pred", "targets", "label", "var"}
    assert set(d["options"]) == shown - {"scores", "logits", "probs", "log_probs"}


def test_explain_takes_short_option_names(capsys):
    """argparse took `--p 2` for --pred or --probs (an ambiguous abbreviation)."""
    code, out, err = run(
        capsys, "explain", "multi_margin", "--scores", "1,2", "--label", "0", "--p", "2"
    )
    assert (code, err) == (0, "")
    assert "p = 2" in out.splitlines()[1]


# -- the losses of several arrays: each array by its parameter's name -------------------------


def test_explain_every_catalogue_example(capsys):
    """The example the reference site runs for each loss works and agrees."""
    for info in catalogue.CATALOGUE.values():
        code, out, err = run(capsys, "explain", info.name, *catalogue.explain_example(info))
        assert (code, err) == (0, ""), info.name
        assert f"losskit.{info.name} gives loss" in out and "DIFFER" not in out, info.name
        if info.name != "ctc":  # ctc's last line: "central finite differences (...) agree: ..."
            assert out.splitlines()[-1].endswith("(agrees)"), info.name


def test_explain_arrays_numbers(capsys):
    """Independent numbers: the margin ranking and triplet losses by hand."""
    argv = ["--x1", "1,2", "--x2", "0.5,3", "--targets", "1,1", "--margin", "0.2", "--json"]
    _, out, _ = run(capsys, "explain", "margin_ranking", *argv)
    d = json.loads(out)
    # max(0, 0.2 - (1 - 0.5)) = 0, max(0, 0.2 - (2 - 3)) = 1.2; the mean's slope -1/2 on x1[1]
    assert d["steps"][0]["value"] == pytest.approx([0.0, 1.2])
    assert d["value"] == pytest.approx(0.6)
    assert d["gradient"] == pytest.approx([0.0, -0.5])
    argv = ["--anchor", "0,0", "--positive", "3,4", "--negative", "0,10", "--eps", "0", "--json"]
    _, out, _ = run(capsys, "explain", "triplet_margin", *argv)
    d = json.loads(out)
    # 1 + |a - p| - |a - n| = 1 + 5 - 10 < 0: no loss, no gradient
    assert (d["value"], d["gradient"]) == (0.0, [[0.0, 0.0]])
    argv = ["--anchor", "0,0", "--positive", "3,4", "--negative", "0,5.5", "--eps", "0", "--json"]
    _, out, _ = run(capsys, "explain", "triplet_margin", *argv)
    d = json.loads(out)
    # 1 + 5 - 5.5 = 0.5; d/da = (a - p)/5 - (a - n)/5.5 = (-0.6, -0.8) - (0, -1)
    assert d["value"] == pytest.approx(0.5)
    np.testing.assert_allclose(d["gradient"], [[-0.6, 0.2]], rtol=1e-12)


def test_explain_arrays_text(capsys):
    code, out, err = run(capsys, "explain", "ntxent", *EXPLAIN["ntxent"])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[1] == (
        "  input embeddings = [[1, 0.2], [0.9, 0.5], [-0.2, 1], [0.1, -1]], labels = [1, 1, 0, 0]"
    )
    assert lines[2].startswith("  1. loss per example ")
    assert "gradient w.r.t. embeddings" in lines[4]


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (
            ["triplet_margin", "--anchor", "0,0"],
            2,
            "losskit explain: error: triplet_margin needs --positive and --negative (give --anchor ... --positive ... --negative ...; rows split by ';')",
        ),
        (
            ["ntxent", "--logits", "1,2", "--embeddings", "1,0;0,1", "--labels", "0,0"],
            2,
            "losskit explain: error: ntxent takes --embeddings, --labels; not --logits",
        ),
        (
            ["ntxent", "--embeddings", "1,0;1", "--labels", "0,0"],
            2,
            "losskit explain: error: --embeddings: every row must have as many values; got rows of 2, 1",
        ),
        (
            ["ntxent", "--embeddings", "1,0;0,1", "--labels", "0.5,0"],
            2,
            "losskit explain: error: --labels must be integer ids; got [0.5, 0]",
        ),
        (
            ["ntxent", "--embeddings", "1,0;0,1", "--labels", "0,0", "--tau", "1"],
            2,
            "losskit explain: error: ntxent has no option --tau; its options are: --temperature",
        ),
        (
            ["ntxent", "--embeddings", "1,0;0,1", "--labels", "0,0", "--reduction", "sum"],
            2,
            "losskit explain: error: explain shows each example and the mean: --reduction cannot be set (`losskit eval` takes it)",
        ),
    ],
)
def test_explain_arrays_errors(capsys, args, code, line):
    assert error_line(capsys, code, "explain", *args) == line


def test_explain_arrays_passes_the_library_s_refusal_on(capsys):
    line = error_line(
        capsys, 1, "explain", "margin_ranking", "--x1", "1", "--x2", "0", "--targets", "2"
    )
    assert line.startswith("losskit explain: error: ")
    assert "targets" in line and "2" in line
