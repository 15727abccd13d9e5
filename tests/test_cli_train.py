"""``losskit train``: tables, JSON, --compare, files, and every refusal before training."""

# ruff: noqa: E501  (the exact error lines are pinned whole)

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np
import pytest

from test_cli import error_line, run


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
            "losskit train: error: unknown loss 'hubber'; did you mean 'huber'? (`losskit list` shows all)",
        ),
        (
            ["--dataset", "iris", "--loss", "sigmoid_cross_entropy"],
            1,
            "losskit train: error: sigmoid_cross_entropy does not fit iris: it takes 0/1 (or soft) "
            "targets, but iris has 3 classes (multiclass); losses that fit: softmax_cross_entropy, "
            "sparse_softmax_cross_entropy, categorical_cross_entropy, sparse_categorical_cross_entropy, "
            "categorical_focal_cross_entropy, softmax_focal_loss, generalized_cross_entropy, "
            "poly1_cross_entropy, sparsemax_loss, mean_squared_error, mean_absolute_error, "
            "multilabel_soft_margin",
        ),
        (
            ["--dataset", "diabetes", "--loss", "ce"],
            1,
            "losskit train: error: sparse_softmax_cross_entropy does not fit diabetes: it takes integer "
            "class ids, but diabetes has a real-valued target (regression); losses that fit: "
            "mean_squared_error, mean_absolute_error, huber, log_cosh",
        ),
        # A loss that trains nothing used to get "does not fit iris: it takes integer class ids,
        # but iris has 3 classes", which it does take.
        (
            ["--dataset", "iris", "--loss", "nll"],
            1,
            "losskit train: error: negative_log_likelihood is not one of the losses `losskit train` "
            "can use (it takes log-probabilities (<= 0, e.g. log_softmax output) against integer "
            "class ids); `losskit list` shows the ones that train, `losskit eval` computes any loss "
            "on your arrays",
        ),
        (
            ["--dataset", "diabetes", "--compare", "huber,gaussian_nll"],
            1,
            "losskit train: error: gaussian_nll is not one of the losses `losskit train` can use (it "
            "takes real-valued predictions against real values and var); `losskit list` shows the "
            "ones that train, `losskit eval` computes any loss on your arrays",
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
            "losskit train: error: argument --epochs: must be an integer >= 1; got 'many'",
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
        (
            ["--dataset", "iris", "--optimizer", "sgd", "--momentum", "1.5"],
            2,
            "losskit train: error: argument --momentum: must be a finite number in [0, 1); got '1.5'",
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


@pytest.mark.parametrize(
    ("flag", "value", "rule"),
    [
        ("--lr", "0", "a finite number > 0"),
        ("--lr", "-0.1", "a finite number > 0"),
        ("--lr", "inf", "a finite number > 0"),
        ("--lr", "nan", "a finite number > 0"),
        ("--lr", "1e400", "a finite number > 0"),
        ("--weight-decay", "nan", "a finite number >= 0"),
        ("--weight-decay", "-1e-4", "a finite number >= 0"),
        ("--weight-decay", "inf", "a finite number >= 0"),
        ("--momentum", "nan", "a finite number in [0, 1)"),
        ("--patience", "-1", "an integer >= 0"),
        ("--seed", "-1", "an integer >= 0"),
        ("--epochs", "0", "an integer >= 1"),
        ("--batch-size", "-32", "an integer >= 1"),
        ("--val", "nan", "a finite number in (0, 1)"),
        ("--test", "1", "a finite number in (0, 1)"),
    ],
)
def test_train_refuses_a_bad_number_naming_its_flag(capsys, flag, value, rule):
    """Each used to train (lr inf, NaN decay: a NaN network; patience -1: stop after 1 epoch)
    or fail with a message without the flag (seed -1: "expected non-negative integer")."""
    assert error_line(capsys, 2, "train", "--dataset", "iris", flag, value) == (
        f"losskit train: error: argument {flag}: must be {rule}; got {value!r}"
    )


def test_train_fractions_must_leave_rows_to_train_on(capsys):
    assert error_line(capsys, 2, "train", "--dataset", "iris", "--val", "0.6", "--test", "0.5") == (
        "losskit train: error: --val and --test must add up to less than 1; got 0.6 + 0.5"
    )


@pytest.mark.skipif(not hasattr(os, "sysconf"), reason="the memory check needs os.sysconf")
def test_train_refuses_a_network_larger_than_memory_before_allocating(capsys):
    line = error_line(capsys, 1, "train", "--dataset", "iris", "--hidden", "1000000000")
    # (4 + 1) x 1e9 + (1e9 + 1) x 3 parameters; no "internal error (MemoryError ...)"
    assert line.startswith(
        "losskit train: error: --hidden 1000000000: training a 4-1000000000-3 network "
        "(8,000,000,003 parameters) needs about "
    )
    assert line.endswith(" GiB of memory") and "more than this machine's" in line


def test_train_stops_at_the_first_non_finite_loss(capsys):
    """Keras's TerminateOnNaN: no table of the untrained network, exit 1, one error line."""
    code, out, err = run(
        capsys, "train", "--dataset", "diabetes", "--optimizer", "sgd", "--lr", "1e30", "--quiet"
    )
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "diabetes: 442 samples, 10 features, real target (regression)",
        "losskit train: error: mean_squared_error: the loss became inf at epoch 1 (batch 6 of 9); "
        "training stopped: --lr 1e+30 is too large for this network, try a smaller --lr",
    ]


def test_train_reads_an_excel_csv_with_a_byte_order_mark(capsys, tmp_path):
    rows = ["label,a,b"] + [f"{i % 2},{i},{(i * 7) % 5}" for i in range(40)]
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")
    code, out, err = run(
        capsys, "train", "--data", str(tmp_path / "excel.csv"), "--target", "label",
        "--epochs", "1", "--quiet", "--json",
    )  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    assert d["task"] == "binary" and d["features"] == 2 and d["samples"] == 40


def test_train_reports_short_runs_in_milliseconds(capsys):
    code, out, err = run(capsys, "train", "--dataset", "diabetes", "--epochs", "2", "--quiet")
    assert code == 0, err
    assert re.search(r"2 epochs \(all epochs, kept epoch 2\) in [1-9]\d* ms;", out), out


def test_train_progress_ends_on_the_kept_epoch(capsys, monkeypatch):
    """The bar's last words are the numbers of the epoch the table reports, not the last epoch's."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: the live bar is drawn
    code, out, err = run(
        capsys, "train", "--dataset", "iris", "--epochs", "60", "--patience", "3",
        "--hidden", "32", "--optimizer", "sgd", "--lr", "0.5", "--json",
    )  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    h, kept = d["history"], d["best_epoch"]
    assert d["epochs_run"] == kept + 3  # early stop: the last epoch is not the kept one
    assert f"{h['val_loss'][-1]:.4f}" != f"{h['val_loss'][kept - 1]:.4f}"
    final = err.rsplit("\r", 1)[-1]  # the bar's last frame
    assert "(early stop)" in final
    assert f"kept epoch {kept}: val {d['metrics']['val']['loss']:.4f} acc " in final
    assert d["metrics"]["val"]["loss"] == pytest.approx(h["val_loss"][kept - 1])


def test_train_without_a_terminal_draws_no_bar(capsys):
    code, _, err = run(capsys, "train", "--dataset", "iris", "--epochs", "2")
    assert code == 0 and err == "iris: 150 samples, 4 features, 3 classes (multiclass)\n"


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


@pytest.mark.parametrize("flag", ["--plot", "--save"])
def test_train_unwritable_output_is_found_before_training(capsys, tmp_path, flag):
    """No "iris: 150 samples" line: the data was not even loaded, let alone a model trained."""
    path = tmp_path / ("out.png" if flag == "--plot" else "out.npz")
    path.mkdir()
    assert error_line(capsys, 1, "train", "--dataset", "iris", flag, str(path)) == (
        f"losskit train: error: {flag}: {path} is a directory"
    )
    if sys.platform.startswith("linux"):  # /proc takes no new files, whoever asks
        bad = "/proc/out.png" if flag == "--plot" else "/proc/out.npz"
        assert error_line(capsys, 1, "train", "--dataset", "iris", flag, bad).startswith(
            f"losskit train: error: {flag}: cannot write into /proc: "
        )
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o500)
    try:
        writable = os.access(readonly, os.W_OK)  # root writes anyway
        target = str(readonly / path.name)
        if not writable:
            assert error_line(capsys, 1, "train", "--dataset", "iris", flag, target) == (
                f"losskit train: error: {flag}: cannot write into {readonly}: Permission denied"
            )
    finally:
        readonly.chmod(0o700)
    assert [p.name for p in readonly.iterdir()] == []  # the check leaves nothing behind


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
