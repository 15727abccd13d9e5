"""``losskit explain``: every loss step by step, agreeing with the library, and its errors."""

# ruff: noqa: E501  (the exact error lines are pinned whole)

from __future__ import annotations

import json

import numpy as np
import pytest

from losskit import catalogue
from test_cli import error_line, run

EXPLAIN = {
    "softmax_cross_entropy": ["--logits", "2,0.5,6", "--label", "2"],
    "sparse_softmax_cross_entropy": ["--logits", "2,0.5,6", "--label", "2"],
    "categorical_cross_entropy": ["--probs", "0.2,0.7,0.1", "--targets", "0,1,0"],
    "sparse_categorical_cross_entropy": ["--probs", "0.2,0.7,0.1", "--label", "1"],
    "binary_cross_entropy": ["--probs", "0.9,0.2", "--targets", "1,0"],
    "sigmoid_cross_entropy": ["--logits", "2,-1", "--targets", "1,0"],
    "mean_squared_error": ["--pred", "2.5,0", "--targets", "3,-1"],
    "mean_absolute_error": ["--pred", "2.5,0", "--targets", "3,-1"],
}


def test_explain_covers_every_loss():
    assert sorted(EXPLAIN) == sorted(catalogue.names())


@pytest.mark.parametrize("name", sorted(EXPLAIN))
def test_explain_every_loss(capsys, name):
    code, out, err = run(capsys, "explain", name, *EXPLAIN[name])
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"{name}: ")
    assert "1. " in out and "gradient" in out and "=" in out
    assert f"losskit.{name} gives loss" in out and "(agrees)" in out


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
            "losskit explain: error: mean_squared_error has no option --pos-weight",
        ),
        (
            ["bce", "--probs", "1.5", "--label", "1"],
            1,
            "losskit explain: error: --probs must be in [0, 1]; got [1.5]",
        ),
        (
            ["hinge", "--logits", "1", "--label", "1"],
            2,
            "losskit explain: error: unknown loss 'hinge' (`losskit list` shows all)",
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
        (
            ["sigmoid_cross_entropy", "--logits", "1", "--label", "1", "--pos-weight", "nan"],
            2,
            "losskit explain: error: argument --pos-weight: must be a finite number >= 0; got 'nan'",
        ),
        (
            ["bce", "--probs", "0.5", "--label", "1", "--eps", "inf"],
            2,
            "losskit explain: error: argument --eps: must be a finite number in [0, 0.5); got 'inf'",
        ),
        (
            ["ce", "--logits", "1,2", "--label", "1", "--label-smoothing", "nan"],
            2,
            "losskit explain: error: argument --label-smoothing: must be a finite number in [0, 1]; "
            "got 'nan'",
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

    real = explain._explain_steps

    def off_by_one(*args):
        steps, loss, grad, opts = real(*args)
        return steps, loss + 1, grad, opts

    monkeypatch.setattr(explain, "_explain_steps", off_by_one)
    argv = ["explain", "mse", "--pred", "1", "--targets", "2", *(["--json"] if as_json else [])]
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert err == "losskit explain: error: the library's result differs from the steps\n"
    if as_json:
        assert json.loads(out)["agrees_with_library"] is False
    else:
        assert "(DIFFERS from the steps above)" in out
