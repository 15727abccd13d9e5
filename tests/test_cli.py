"""The command line, run in-process through ``main(argv)`` and twice as a subprocess."""

# ruff: noqa: E501  (the exact error lines are pinned whole)

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import losskit
from losskit import catalogue
from losskit.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def error_line(capsys, code: int, *argv: str) -> str:
    """Run a failing command: the exit code, and exactly one line on stderr, no traceback."""
    got, _, err = run(capsys, *argv)
    assert got == code, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    return err.rstrip("\n")


# -- list -------------------------------------------------------------------------------------


def test_list(capsys):
    code, out, err = run(capsys, "list")
    assert code == 0 and err == ""
    for name in catalogue.names():
        assert name in out
    assert "logits" in out and "probs" in out


def test_list_json(capsys):
    _, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == catalogue.names()
    assert rows[0].keys() >= {"input", "truth", "tasks", "summary", "formula", "gradient"}


# -- explain ----------------------------------------------------------------------------------

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


# -- eval -------------------------------------------------------------------------------------


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


# -- train ------------------------------------------------------------------------------------


def test_train_text_table(capsys):
    code, out, err = run(capsys, "train", "--dataset", "iris", "--epochs", "3", "--hidden", "8")
    assert code == 0, err
    assert "iris · sparse_softmax_cross_entropy · 4-8-3 relu" in out
    for row in ("train", "validation", "test", "accuracy"):
        assert row in out
    assert "3 epochs (all epochs, kept epoch 3)" in out
    assert err.startswith("iris: 150 samples, 4 features, 3 classes (multiclass)\n")


def test_train_json_is_only_json(capsys, tmp_path):
    model = tmp_path / "m.npz"
    plot = tmp_path / "curves.png"
    code, out, err = run(
        capsys,
        "train",
        "--dataset",
        "breast_cancer",
        "--epochs",
        "3",
        "--json",
        "--save",
        str(model),
        "--plot",
        str(plot),
    )
    assert code == 0, err
    d = json.loads(out)
    assert d["loss"] == "sigmoid_cross_entropy" and d["task"] == "binary"
    assert d["metrics"]["test"]["accuracy"] > 0.8
    assert len(d["history"]["train_loss"]) == 3
    assert d["saved"] == str(model) and model.exists() and plot.exists()
    from losskit.train import load_model

    net, meta, _ = load_model(model)
    assert meta["loss"] == "sigmoid_cross_entropy" and net.sizes == [30, 128, 1]


def test_train_saves_array_options(capsys, tmp_path):
    model = tmp_path / "m.npz"
    code, out, err = run(
        capsys,
        "train",
        "--dataset",
        "iris",
        "--epochs",
        "2",
        "--quiet",
        "--json",
        "--option",
        "class_weight=1,2,1",
        "--save",
        str(model),
    )
    assert code == 0, err
    assert json.loads(out)["config"]["loss_options"] == {"class_weight": [1.0, 2.0, 1.0]}
    from losskit.train import load_model

    _, meta, _ = load_model(model)
    assert meta["loss_options"] == {"class_weight": [1.0, 2.0, 1.0]}


def test_train_regression_reports_r2_and_mae(capsys):
    code, out, err = run(capsys, "train", "--dataset", "diabetes", "--epochs", "3", "--quiet")
    assert code == 0, err
    assert "R²" in out and "MAE" in out and "mean_squared_error" in out
    assert err == "diabetes: 442 samples, 10 features, real target (regression)\n"


def test_train_compare(capsys, tmp_path):
    plot = tmp_path / "cmp.png"
    code, out, err = run(
        capsys,
        "train",
        "--dataset",
        "iris",
        "--epochs",
        "3",
        "--quiet",
        "--compare",
        "ce,mse,categorical_cross_entropy",
        "--plot",
        str(plot),
    )
    assert code == 0, err
    for name in ("sparse_softmax_cross_entropy", "mean_squared_error", "categorical_cross_entropy"):
        assert name in out
    assert plot.read_bytes()[:4] == b"\x89PNG"
    code, out, err = run(
        capsys,
        "train",
        "--dataset",
        "iris",
        "--epochs",
        "2",
        "--quiet",
        "--compare",
        "ce,mae",
        "--json",
    )
    runs = json.loads(out)["runs"]
    assert [r["loss"] for r in runs] == ["sparse_softmax_cross_entropy", "mean_absolute_error"]


def test_train_user_csv_and_options(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    rows = ["a,b,c,kind"] + [
        f"{x[0]},{x[1]},{x[2]},{'yes' if x[0] + x[1] > 0 else 'no'}" for x in X
    ]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    code, out, err = run(
        capsys,
        "train",
        "--data",
        str(tmp_path / "d.csv"),
        "--target",
        "kind",
        "--epochs",
        "5",
        "--quiet",
        "--json",
        "--optimizer",
        "sgd",
        "--loss",
        "sigmoid_cross_entropy",
        "--option",
        "label_smoothing=0.1",
        "--hidden",
        "0",
    )
    assert code == 0, err
    d = json.loads(out)
    assert d["task"] == "binary" and d["model"]["sizes"] == [3, 1]
    assert d["config"]["loss_options"] == {"label_smoothing": 0.1}


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (
            ["--dataset", "digts"],
            2,
            "losskit train: error: unknown dataset 'digts'; did you mean 'digits'? choose one of "
            "digits, iris, wine, breast_cancer, diabetes",
        ),
        (
            ["--dataset", "iris", "--loss", "hubber"],
            2,
            "losskit train: error: unknown loss 'hubber' (`losskit list` shows all)",
        ),
        (
            ["--dataset", "iris", "--loss", "sigmoid_cross_entropy"],
            1,
            "losskit train: error: sigmoid_cross_entropy does not fit iris: it takes 0/1 (or soft) "
            "targets, but iris has 3 classes (multiclass); losses that fit: softmax_cross_entropy, "
            "sparse_softmax_cross_entropy, categorical_cross_entropy, sparse_categorical_cross_entropy, "
            "mean_squared_error, mean_absolute_error",
        ),
        (
            ["--dataset", "diabetes", "--loss", "ce"],
            1,
            "losskit train: error: sparse_softmax_cross_entropy does not fit diabetes: it takes integer "
            "class ids, but diabetes has a real-valued target (regression); losses that fit: "
            "mean_squared_error, mean_absolute_error",
        ),
        ([], 2, "losskit train: error: give --dataset NAME or --data FILE --target COLUMN"),
        (
            ["--data", "x.csv"],
            2,
            "losskit train: error: --data needs --target COLUMN (or a target .npy file)",
        ),
        (
            ["--dataset", "iris", "--compare", "ce"],
            2,
            "losskit train: error: --compare needs at least two losses, e.g. --compare mse,cross_entropy",
        ),
        (
            ["--dataset", "iris", "--hidden", "64,x"],
            2,
            "losskit train: error: --hidden must be integers separated by commas (e.g. 64,32); got '64,x'",
        ),
        (
            ["--dataset", "iris", "--epochs", "many"],
            2,
            "losskit train: error: argument --epochs: invalid int value: 'many'",
        ),
        (
            ["--dataset", "iris", "--option", "eps"],
            2,
            "losskit train: error: --option takes KEY=VALUE, e.g. --option label_smoothing=0.1",
        ),
        (
            ["--dataset", "iris", "--option", "gamma=2"],
            2,
            "losskit train: error: sparse_softmax_cross_entropy has no option --gamma; its options are: "
            "--class-weight, --ignore-index, --label-smoothing",
        ),
        (
            ["--dataset", "iris", "--loss", "mse", "--option", "class_weight=1,2,1"],
            2,
            "losskit train: error: mean_squared_error has no option --class_weight; it takes none",
        ),
        *[
            (
                ["--dataset", "iris", "--option", option],
                2,
                f"losskit train: error: {option.split('=')[0]} cannot be set for training: the training "
                "loop owns the reduction and the batching (reduction, axis, sample_weight are not "
                "training options)",
            )
            for option in ("reduction=none", "axis=0", "sample_weight=1,2")
        ],
        (
            ["--dataset", "iris", "--loss", "mse", "--option", "reduction=sum"],
            2,
            "losskit train: error: reduction cannot be set for training: the training loop owns the "
            "reduction and the batching (reduction, axis, sample_weight are not training options)",
        ),
        (["--dataset", "iris", "--lr", "0"], 2, "losskit train: error: `lr` must be > 0; got 0.0"),
        (
            ["--dataset", "iris", "--optimizer", "sgd", "--momentum", "1.5"],
            2,
            "losskit train: error: `momentum` must be in [0, 1); got 1.5",
        ),
        (
            ["--dataset", "mnist"],
            2,
            "losskit train: error: unknown dataset 'mnist'; choose one of digits, iris, wine, "
            "breast_cancer, diabetes",
        ),
    ],
)
def test_train_errors(capsys, args, code, line):
    assert error_line(capsys, code, "train", *args) == line


def test_train_reads_a_file_option_once(capsys, tmp_path, monkeypatch):
    from losskit.train import data

    np.save(tmp_path / "w.npy", np.array([1.0, 2.0, 1.0]))
    reads = []
    real = data.load_array
    monkeypatch.setattr(data, "load_array", lambda *a, **k: reads.append(a) or real(*a, **k))
    code, out, err = run(
        capsys,
        "train",
        "--dataset",
        "iris",
        "--epochs",
        "1",
        "--quiet",
        "--json",
        "--option",
        f"class_weight={tmp_path / 'w.npy'}",
    )
    assert code == 0, err
    assert json.loads(out)["config"]["loss_options"] == {"class_weight": [1.0, 2.0, 1.0]}
    assert len(reads) == 1


def test_train_bad_option_value_fails_before_training(capsys):
    assert error_line(capsys, 1, "train", "--dataset", "iris", "--option", "label_smoothing=2") == (
        "losskit train: error: `label_smoothing` must be a number in [0, 1]; got 2"
    )


def test_train_output_paths_checked_before_training(capsys, tmp_path):
    assert error_line(capsys, 2, "train", "--dataset", "iris", "--plot", "curves.svg") == (
        "losskit train: error: --plot must be a .png file; got 'curves.svg'"
    )
    missing = tmp_path / "nowhere"
    assert error_line(
        capsys, 1, "train", "--dataset", "iris", "--save", str(missing / "m.npz")
    ) == (f"losskit train: error: --save: no such directory: {missing}")


def test_train_file_errors(capsys, tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,y\n1,2,0\n3,4\n")
    (tmp_path / "ok.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    assert error_line(
        capsys, 1, "train", "--data", str(tmp_path / "none.csv"), "--target", "y"
    ) == (f"losskit train: error: no such file: {tmp_path / 'none.csv'}")
    assert error_line(capsys, 1, "train", "--data", str(tmp_path / "bad.csv"), "--target", "y") == (
        f"losskit train: error: malformed CSV {tmp_path / 'bad.csv'}: row 3 has 2 fields, "
        "the header has 3"
    )
    assert error_line(capsys, 1, "train", "--data", str(tmp_path / "ok.csv"), "--target", "z") == (
        f"losskit train: error: column 'z' is not in {tmp_path / 'ok.csv'}; its columns are: a, b, y"
    )
    (tmp_path / "nan.csv").write_text("a,b,y\n1,2,0.5\n3,4,nan\n5,6,1.5\n")
    assert error_line(capsys, 1, "train", "--data", str(tmp_path / "nan.csv"), "--target", "y") == (
        f"losskit train: error: malformed CSV {tmp_path / 'nan.csv'}: row 3, column 'y': 'nan' is not finite"
    )


# -- plot, bench, the rest --------------------------------------------------------------------


def test_plot(capsys, tmp_path):
    code, _, err = run(capsys, "plot", "sigmoid-gradient", "--out", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").exists()
    code, _, err = run(capsys, "plot", "bce", "--out", str(tmp_path / "b.png"))
    assert code == 0 and "binary-cross-entropy: written to" in err
    code, _, err = run(capsys, "plot", "all", "--out", str(tmp_path / "figs"))
    assert code == 0
    assert sorted(os.listdir(tmp_path / "figs")) == [
        "binary-cross-entropy.png",
        "cross-entropy.png",
        "mse-vs-mae.png",
        "sigmoid-gradient.png",
    ]


def test_plot_errors(capsys, tmp_path):
    assert error_line(capsys, 2, "plot", "roc", "--out", "x.png") == (
        "losskit plot: error: unknown figure 'roc'; choose one of cross-entropy, "
        "binary-cross-entropy, mse-vs-mae, sigmoid-gradient, all, or a loss name"
    )
    assert error_line(capsys, 2, "plot", "mse", "--out", "x.pdf") == (
        "losskit plot: error: --out must be a .png file; got 'x.pdf'"
    )
    missing = tmp_path / "no" / "x.png"
    assert error_line(capsys, 1, "plot", "mse", "--out", str(missing)) == (
        f"losskit plot: error: no such file: {missing}"
    )


def test_bench_is_forwarded_lazily(capsys, monkeypatch):
    seen = []
    fake = types.ModuleType("losskit.benchmark")
    fake.main = lambda argv: seen.append(argv) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "losskit.benchmark", fake)
    assert main(["bench", "--quick", "--sizes", "1"]) == 3
    assert seen == [["--quick", "--sizes", "1"]]


def test_bench_missing(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "losskit.benchmark", None)
    line = error_line(capsys, 1, "bench")
    assert line.startswith("losskit bench: error: the benchmark is not available: ")


def test_top_level(capsys):
    assert error_line(capsys, 2, "frobnicate").startswith(
        "losskit: error: argument COMMAND: invalid choice: 'frobnicate'"
    )
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("losskit ")
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "--compare" in out
    code, _, err = run(capsys)
    assert code == 2 and "train" in err


# -- as a program ---------------------------------------------------------------------------


def _python_m(*args: str) -> subprocess.CompletedProcess[str]:
    src = os.path.dirname(os.path.dirname(losskit.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "losskit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_python_m_json_pipes(tmp_path):
    proc = _python_m("train", "--dataset", "iris", "--epochs", "2", "--hidden", "8", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)  # stdout is exactly one JSON document
    assert d["dataset"] == "iris" and d["epochs_run"] == 2
    assert "iris: 150 samples" not in proc.stdout


def test_python_m_error_is_one_line(tmp_path):
    proc = _python_m("eval", "mse", "--pred", str(tmp_path / "p.npy"), "--target", "t.npy")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"losskit eval: error: no such file: {tmp_path / 'p.npy'}\n"


def test_missing_cli_extra_is_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.table", None)
    line = error_line(capsys, 1, "list")
    assert line == "losskit list: error: this command needs rich: pip install 'losskit[cli]'"
