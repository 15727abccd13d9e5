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
    ],
)
def test_explain_errors(capsys, args, code, line):
    assert error_line(capsys, code, "explain", *args) == line
