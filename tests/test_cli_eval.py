"""``losskit eval``: a loss and its gradient on arrays from files."""

from __future__ import annotations

import json

import numpy as np
import pytest

import losskit
from test_cli import error_line, run


@pytest.fixture
def arrays(tmp_path):
    np.save(tmp_path / "logits.npy", np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]]))
    np.save(tmp_path / "labels.npy", np.array([2, 1]))
    (tmp_path / "labels.csv").write_text("label\n2\n1\n")
    (tmp_path / "probs.json").write_text("[[0.5, 0.3], [0.2, 0.2]]")
    (tmp_path / "onehot.json").write_text("[[1, 0], [0, 1]]")
    np.save(tmp_path / "real.npy", np.array([0.5, 2.0]))
    return tmp_path


def test_eval_text(capsys, arrays):
    code, out, err = run(
        capsys,
        "eval",
        "sparse_softmax_cross_entropy",
        "--pred",
        str(arrays / "logits.npy"),
        "--target",
        str(arrays / "labels.csv"),
    )
    assert code == 0, err
    ref = losskit.sparse_softmax_cross_entropy(np.load(arrays / "logits.npy"), np.array([2, 1]))
    assert out == f"sparse_softmax_cross_entropy (reduction=mean): {float(ref):.7g}\n"


def test_eval_json_with_options_and_gradient(capsys, arrays):
    grad_path = arrays / "g.npy"
    code, out, err = run(
        capsys,
        "eval",
        "ce",
        "--pred",
        str(arrays / "logits.npy"),
        "--target",
        str(arrays / "labels.npy"),
        "--reduction",
        "none",
        "--class-weight",
        "1,2,1",
        "--label-smoothing=0.1",
        "--grad",
        str(grad_path),
        "--json",
    )
    assert code == 0, err
    d = json.loads(out)
    logits, labels = np.load(arrays / "logits.npy"), np.array([2, 1])
    kw = {"reduction": "none", "class_weight": np.array([1.0, 2.0, 1.0]), "label_smoothing": 0.1}
    ref, ref_grad = losskit.value_and_grad(losskit.sparse_softmax_cross_entropy)(
        logits, labels, **kw
    )
    np.testing.assert_allclose(d["value"], ref)
    assert d["shape"] == [2] and d["reduction"] == "none"
    assert d["grad"] == {"path": str(grad_path), "shape": [2, 3]}
    np.testing.assert_allclose(np.load(grad_path), ref_grad)


def test_eval_warning_is_one_line_and_not_an_error(capsys, arrays):
    code, out, err = run(
        capsys,
        "eval",
        "categorical_cross_entropy",
        "--pred",
        str(arrays / "probs.json"),
        "--target",
        str(arrays / "onehot.json"),
    )
    assert code == 0
    assert out.startswith("categorical_cross_entropy (reduction=mean): ")
    assert err.startswith("losskit eval: warning: ") and err.count("\n") == 1


def test_eval_errors(capsys, arrays):
    logits, labels = str(arrays / "logits.npy"), str(arrays / "labels.npy")
    assert (
        error_line(capsys, 1, "eval", "mse", "--pred", str(arrays / "nope.npy"), "--target", labels)
        == f"losskit eval: error: no such file: {arrays / 'nope.npy'}"
    )
    assert error_line(
        capsys, 2, "eval", "ce", "--pred", logits, "--target", labels, "--foo", "1"
    ) == (
        "losskit eval: error: sparse_softmax_cross_entropy has no option --foo; its options are: "
        "--axis, --class-weight, --ignore-index, --label-smoothing, --reduction, --sample-weight"
    )
    assert error_line(
        capsys, 1, "eval", "ce", "--pred", logits, "--target", str(arrays / "real.npy")
    ) == (
        "losskit eval: error: sparse_softmax_cross_entropy needs integer class ids as the target; "
        "got 0.5 at position (0,) (for distributions use softmax_cross_entropy)"
    )
    # The library's own message, passed through as one line.
    np.save(arrays / "bad_labels.npy", np.array([2, 5]))
    line = error_line(
        capsys, 1, "eval", "ce", "--pred", logits, "--target", str(arrays / "bad_labels.npy")
    )
    assert line.startswith("losskit eval: error: `labels` must be in [0, 3)")
    assert "5" in line
    assert error_line(capsys, 2, "eval", "mse", "--pred", logits) == (
        "losskit eval: error: the following arguments are required: --target"
    )
    text_grad = arrays / "g.txt"
    assert error_line(
        capsys, 2, "eval", "ce", "--pred", logits, "--target", labels, "--grad", str(text_grad)
    ) == (f"losskit eval: error: --grad must be a .npy file; got {str(text_grad)!r}")
    assert not text_grad.exists() and not (arrays / "g.txt.npy").exists()


@pytest.mark.parametrize(
    ("labels", "shown", "hint"),
    [
        (np.array([2.0, np.inf]), "inf", ""),
        (np.array([2.0, np.nan]), "nan", ""),
        (np.array([2.0, 1e20]), "1e+20", " (too large for a class id)"),
        (np.array([2.0, -1e20]), "-1e+20", " (too large for a class id)"),
        (
            np.array([2, 2**64 - 1], dtype=np.uint64),
            "18446744073709551615",
            " (too large for a class id)",
        ),
    ],
)
def test_eval_labels_a_cast_would_change_are_one_line(capsys, arrays, labels, shown, hint):
    """Each used to print NumPy's "invalid value encountered in cast" and its source line,
    then blame the label -9223372036854775808 (or wrap 2**64 - 1 to -1)."""
    np.save(arrays / "bad.npy", labels)
    line = error_line(
        capsys,
        1,
        "eval",
        "ce",
        "--pred",
        str(arrays / "logits.npy"),
        "--target",
        str(arrays / "bad.npy"),
    )
    assert line == (
        "losskit eval: error: sparse_softmax_cross_entropy needs integer class ids as the target; "
        f"got {shown} at position (1,){hint}"
    )


def test_eval_reads_an_excel_csv_with_a_byte_order_mark(capsys, arrays):
    """The BOM made the first label unreadable, so that row was taken for a header and dropped."""
    (arrays / "excel.csv").write_bytes(b"\xef\xbb\xbf2\r\n1\r\n")
    code, out, err = run(
        capsys,
        "eval",
        "ce",
        "--pred",
        str(arrays / "logits.npy"),
        "--target",
        str(arrays / "excel.csv"),
    )
    assert code == 0, err
    ref = losskit.sparse_softmax_cross_entropy(np.load(arrays / "logits.npy"), np.array([2, 1]))
    assert out == f"sparse_softmax_cross_entropy (reduction=mean): {float(ref):.7g}\n"


def test_eval_unwritable_grad_is_found_before_computing(capsys, arrays):
    (arrays / "g.npy").mkdir()
    logits, labels = str(arrays / "logits.npy"), str(arrays / "labels.npy")
    assert (
        error_line(
            capsys,
            1,
            "eval",
            "ce",
            "--pred",
            logits,
            "--target",
            labels,
            "--grad",
            str(arrays / "g.npy"),
        )
        == f"losskit eval: error: --grad: {arrays / 'g.npy'} is a directory"
    )


# -- the issue-8 losses: a third array, short option names, label sets -------------------------


def test_eval_gaussian_nll_takes_the_variances_as_a_file(capsys, tmp_path):
    np.save(tmp_path / "mean.npy", np.array([1.0, 3.0]))
    np.save(tmp_path / "y.npy", np.array([0.0, 1.0]))
    np.save(tmp_path / "var.npy", np.array([1.0, 4.0]))
    argv = ["--pred", str(tmp_path / "mean.npy"), "--target", str(tmp_path / "y.npy")]
    code, out, err = run(capsys, "eval", "gaussian_nll", *argv, "--var", str(tmp_path / "var.npy"))
    assert (code, err) == (0, "")
    # ½ (log 1 + 1²/1) and ½ (log 4 + 2²/4), averaged
    assert out == f"gaussian_nll (reduction=mean): {(0.5 + 0.5 * (np.log(4) + 1)) / 2:.7g}\n"
    assert error_line(capsys, 2, "eval", "gaussian_nll", *argv) == (
        "losskit eval: error: gaussian_nll needs --var FILE"
    )


def test_eval_short_option_is_the_loss_s_not_an_abbreviated_flag(capsys, tmp_path):
    """argparse read `--p 2` as --pred 2 (an abbreviation): multi_margin's p must reach it."""
    np.save(tmp_path / "s.npy", np.array([[0.3, 2.0, -1.0]]))
    np.save(tmp_path / "y.npy", np.array([0]))
    argv = ["--pred", str(tmp_path / "s.npy"), "--target", str(tmp_path / "y.npy"), "--json"]
    _, out, _ = run(capsys, "eval", "multi_margin", *argv, "--p", "2")
    # p = 2, margin 1: h = (1 - 0.3 + 2, 1 - 0.3 - 1) = (2.7, 0) -> 2.7² / 3
    assert json.loads(out)["value"] == pytest.approx(2.7**2 / 3)


def test_eval_label_sets_are_read_as_integers(capsys, tmp_path):
    np.save(tmp_path / "s.npy", np.array([[0.1, 0.2, 0.4, 0.8]]))
    (tmp_path / "y.json").write_text("[[3.0, 0.0, -1.0, 1.0]]")  # JSON numbers come as floats
    argv = ["--pred", str(tmp_path / "s.npy"), "--target", str(tmp_path / "y.json"), "--json"]
    code, out, err = run(capsys, "eval", "multilabel_margin", *argv)
    assert (code, err) == (0, "")
    # targets {3, 0} over {1, 2}: pairs (3,1) .4, (3,2) .6, (0,1) 1.1, (0,2) 1.3 -> 3.4 / 4
    assert json.loads(out)["value"] == pytest.approx(0.85)
