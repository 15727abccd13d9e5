"""``losskit explain ctc`` (``cli._explain_ctc.explain_ctc``): text, JSON, picture, errors."""

from __future__ import annotations

import argparse
import itertools
import json
import math

import numpy as np
import pytest

from losskit.cli._common import CliError
from losskit.cli._explain_ctc import explain_ctc, lattice


def args(*extra: str, logits: str | None = None, json_out: bool = False) -> argparse.Namespace:
    """What ``losskit explain ctc ...`` hands over: explain's own flags and the rest as extra."""
    return argparse.Namespace(
        name="ctc", logits=logits, targets=None, label=None, json=json_out, extra=list(extra)
    )


# Uniform logits: every path has probability 3^-4, and 15 of the 81 paths of 4 frames
# over {blank, 1, 2} collapse to "1 2" (blank* 1+ blank* 2+ blank*: 4 letters in 5 runs,
# two of them non-empty, C(6, 4) = 15), so the loss is log(81 / 15).
UNIFORM = ";".join(["0,0,0"] * 4)
UNIFORM_LOSS = math.log(81 / 15)


def test_default_example_prints_the_lattice_and_agrees(capsys):
    assert explain_ctc(args()) == 0
    out = capsys.readouterr().out
    assert "labels y = [2, 1, 3] (c a t)" in out
    assert "(- c - a - t -), S' = 7" in out
    assert "(agrees)" in out and "finite differences" in out and "agree:" in out
    # The loss line of the lattice and the library's line carry the same number.
    lattice_loss = float(out.split("S'-2]) = ")[1].split()[0])
    library_loss = float(out.split("losskit.ctc gives loss ")[1].split()[0])
    assert lattice_loss == pytest.approx(library_loss, rel=1e-9)


def test_uniform_logits_give_the_counted_loss(capsys):
    assert explain_ctc(args("--labels", "1,2", logits=UNIFORM)) == 0
    out = capsys.readouterr().out
    assert float(out.split("losskit.ctc gives loss ")[1].split()[0]) == pytest.approx(
        UNIFORM_LOSS, rel=1e-8
    )


def test_json_holds_the_tables(capsys):
    assert explain_ctc(args("--labels", "1,2", logits=UNIFORM, json_out=True)) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["extended_labels"] == [0, 1, 0, 2, 0]
    assert rec["value"] == pytest.approx(UNIFORM_LOSS, rel=1e-12)
    assert rec["lattice_loss"] == pytest.approx(UNIFORM_LOSS, rel=1e-12)
    post = np.array(rec["posterior"])
    assert post.shape == (4, 5)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, rtol=1e-12)  # one state per frame
    # Frame 0 is blank in the alignments of "1 2" in the 3 frames left: C(5, 4) = 5 of 15.
    np.testing.assert_allclose(post[0, :2], [5 / 15, 10 / 15], rtol=1e-12)
    grad = np.array(rec["gradient"])
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-12)  # softmax and posterior
    assert rec["finite_differences"]["agrees"] and rec["agrees_with_library"]
    alpha = np.array([[np.nan if v is None else v for v in row] for row in rec["alpha"]])
    assert alpha[0, 0] == pytest.approx(-math.log(3)) and np.isnan(alpha[0, 2])  # -inf -> null


def test_the_picture_is_a_png(tmp_path, capsys):
    path = tmp_path / "lattice.png"
    assert explain_ctc(args("--out", str(path), "--frames", "6", "--classes", "4")) == 0
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert f"written to {path}" in capsys.readouterr().out


def test_infeasible_labels_give_inf_and_take_no_finite_differences(capsys):
    # Three copies of one label need 5 frames (blanks between the copies); there are 4.
    assert explain_ctc(args("--labels", "1,1,1", "--frames", "4", "--classes", "3")) == 0
    out = capsys.readouterr().out
    assert "losskit.ctc gives loss inf (agrees)" in out
    assert "finite differences: not taken" in out


def test_lattice_matches_enumeration_of_paths():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3))
    lat = lattice(x, [1, 1], 0)
    lsm = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    total = 0.0  # every path of 4 frames over 3 classes that collapses to "1 1"
    for path in itertools.product(range(3), repeat=4):
        spelled = [c for i, c in enumerate(path) if c != 0 and (i == 0 or c != path[i - 1])]
        if spelled == [1, 1]:
            total += np.exp(sum(lsm[t, c] for t, c in enumerate(path)))
    assert lat["loss"] == pytest.approx(-np.log(total), rel=1e-13)


@pytest.mark.parametrize(
    ("extra", "logits", "message"),
    [
        (["--labels", "0,1"], None, "--labels must be in [0, 5) and not the blank 0; got 0 at"),
        (["--labels", "1,x"], None, "--labels are comma-separated class ids; got '1,x'"),
        (["--blank", "7"], None, "--blank must be in [0, 5); got 7"),
        (["--frames", "0"], None, "--frames must be an integer >= 1; got '0'"),
        (["--out", "lattice.txt"], None, "--out must be a .png file; got 'lattice.txt'"),
        (["--gamma", "2"], None, "explain ctc takes --labels"),
        ([], "1,2;3", "--logits must be T rows of C >= 2 numbers, every row as long; got '1,2;3'"),
        ([], "1,a", "--logits are rows of comma-separated numbers split by ';'; got '1,a'"),
        ([], "1,inf", "--logits must be finite; got '1,inf'"),
    ],
)
def test_bad_options_are_refused_by_name(extra, logits, message):
    with pytest.raises(CliError) as info:
        explain_ctc(args(*extra, logits=logits))
    assert message in str(info.value)
    assert info.value.code == 2
