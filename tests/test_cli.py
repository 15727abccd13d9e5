"""The command line as a whole (list, plot, bench, the top level), run in-process through
``main(argv)`` and as a subprocess; the helpers every ``test_cli_*.py`` uses."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

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


# -- plot, bench, the rest --------------------------------------------------------------------


def test_plot(capsys, tmp_path, monkeypatch):
    code, _, err = run(capsys, "plot", "sigmoid-gradient", "--out", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").exists()
    # A loss (by any of its names) draws its loss and gradient; a figure is named with hyphens.
    code, _, err = run(capsys, "plot", "bce", "--out", str(tmp_path / "b.png"))
    assert code == 0 and err == f"binary_cross_entropy: written to {tmp_path / 'b.png'}\n"
    code, _, err = run(capsys, "plot", "binary-cross-entropy", "--out", str(tmp_path / "f.png"))
    assert code == 0 and err.startswith("binary-cross-entropy: written to")
    from matplotlib.figure import Figure

    from losskit import plots

    drawn = []  # every loss's own picture is checked in test_plots; here only that all are drawn

    def tiny(name):
        drawn.append(name)
        return Figure(figsize=(1, 1))

    monkeypatch.setattr(plots, "loss_figure", tiny)
    code, _, err = run(capsys, "plot", "all", "--out", str(tmp_path / "figs"))
    assert drawn == catalogue.names()
    assert code == 0
    expected = [f"{n}.png" for n in catalogue.names()] + [
        "binary-cross-entropy.png",
        "cross-entropy.png",
        "mse-vs-mae.png",
        "sigmoid-gradient.png",
    ]
    assert sorted(os.listdir(tmp_path / "figs")) == sorted(expected)
    assert err.count("written to") == len(expected)


def test_plot_errors(capsys, tmp_path):
    figures = "cross-entropy, binary-cross-entropy, mse-vs-mae, sigmoid-gradient, all"
    assert error_line(capsys, 2, "plot", "roc", "--out", "x.png") == (
        f"losskit plot: error: unknown loss 'roc' (`losskit list` shows all; the figures: "
        f"{figures})"
    )
    assert error_line(capsys, 2, "plot", "hubr", "--out", "x.png") == (
        "losskit plot: error: unknown loss 'hubr'; did you mean 'huber'? (`losskit list` shows "
        f"all; the figures: {figures})"
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
    assert line.startswith("losskit bench: error: the softmax benchmark is not available: ")


@pytest.mark.parametrize(
    ("blocked", "line"),
    [
        (
            ("torch",),
            "losskit bench: torch is not installed, so its columns are left out "
            "(pip install torch)",
        ),
        (
            ("torch", "optax"),
            "losskit bench: torch and jax/optax are not installed, so their columns are left out "
            "(pip install torch jax optax)",
        ),
    ],
)
def test_bench_says_why_columns_are_missing(capsys, monkeypatch, blocked, line):
    """Without torch or jax the columns used to vanish without a word."""
    pytest.importorskip("numba")
    for module in blocked:
        monkeypatch.setitem(sys.modules, module, None)
    argv = [
        "bench",
        "--shapes",
        "8x4",
        "--threads",
        "1",
        "--repeats",
        "1",
        "--only",
        "numpy,torch,jax",
        "--json",
    ]
    code, out, err = run(capsys, *argv)
    assert code == 0
    assert err == line + "\n"
    impls = {r["impl"] for r in json.loads(out)}
    assert impls == {"numpy textbook"} | ({"jax+optax"} if "optax" not in blocked else set())


def test_bench_with_everything_installed_says_nothing(capsys):
    pytest.importorskip("torch")
    pytest.importorskip("optax")
    argv = ["bench", "--shapes", "8x4", "--threads", "1", "--repeats", "1", "--only", "numpy,torch"]
    code, out, err = run(capsys, *argv)
    assert code == 0 and err == ""
    assert "\ntorch " in out and "\nlosskit (torch) " not in out  # losskit's rows not asked for


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


def test_a_stray_warning_is_one_line_not_python_s_two(capsys, monkeypatch):
    """A NumPy RuntimeWarning escaping a command used to print its file, line and source."""
    import numpy as np

    from losskit.cli import listing

    def warns(args):
        np.log(np.zeros(1))
        return 0

    monkeypatch.setattr(listing, "run", warns)
    code, out, err = run(capsys, "list")
    assert code == 0 and out == ""
    assert err == "losskit list: warning: divide by zero encountered in log\n"


def test_a_warning_comes_before_the_error_line(capsys, monkeypatch):
    import warnings

    from losskit.cli import listing

    def warns_then_fails(args):
        warnings.warn("first this", UserWarning, stacklevel=1)
        raise ValueError("then this")

    monkeypatch.setattr(listing, "run", warns_then_fails)
    code, _, err = run(capsys, "list")
    assert code == 1
    assert err == "losskit list: warning: first this\nlosskit list: error: then this\n"


def test_memory_error_is_not_an_internal_error(capsys, monkeypatch):
    from losskit.cli import listing

    def fails(args):
        raise MemoryError("Unable to allocate 29.8 GiB")

    monkeypatch.setattr(listing, "run", fails)
    assert error_line(capsys, 1, "list") == (
        "losskit list: error: not enough memory (Unable to allocate 29.8 GiB)"
    )


# -- the README's commands, as written ----------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_block(containing: str) -> str:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    return next(b for b in blocks if containing in b)


def test_readme_eval_example_runs_as_written(capsys, tmp_path, monkeypatch):
    """It used to read pred.npy and y.npy that nothing in the README made."""
    monkeypatch.chdir(tmp_path)
    outputs = {}
    for line in _readme_block("losskit eval").splitlines():
        argv = shlex.split(line, comments=True)
        if argv and argv[0] == "python":
            subprocess.run([sys.executable, *argv[1:]], check=True, timeout=120)
        elif argv:
            assert argv[0] == "losskit", line
            code, out, err = run(capsys, *argv[1:])
            assert code == 0, (line, err)
            outputs[argv[1]] = out
    assert set(outputs) == {"explain", "eval", "plot"}
    d = json.loads(outputs["eval"])
    np.testing.assert_allclose(d["value"], [0.25, 0.25, 0.01])  # (2.5-3)², (0+0.5)², (2.1-2)²
    np.testing.assert_allclose(np.load(tmp_path / "grad.npy"), [-1.0, 1.0, 0.2])  # 2 (pred - y)
    assert (tmp_path / "huber.png").read_bytes()[:4] == b"\x89PNG"


def test_readme_compare_command_matches_its_figure(capsys, tmp_path, monkeypatch):
    """The caption said three losses where the command compared two."""
    text = README.read_text(encoding="utf-8")
    (line,) = [x for x in _readme_block("--compare").splitlines() if x.strip()]
    argv = shlex.split(line)
    losses = argv[argv.index("--compare") + 1].split(",")
    caption = re.search(r"!\[the same network trained with (\w+) losses\]", text)
    assert caption is not None
    assert {"two": 2, "three": 3, "four": 4}[caption.group(1)] == len(losses)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(
        capsys, *argv[1:], "--epochs", "2", "--quiet"
    )  # shortened, else as written
    assert code == 0, err
    for loss in losses:
        assert loss in out
    assert (tmp_path / "compare.png").exists()


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


def test_list_groups_the_losses_by_family_and_cuts_no_name(capsys):
    _, out, _ = run(capsys, "list")
    assert "…" not in out
    for info in catalogue.CATALOGUE.values():
        assert info.name in out
    headings = [out.index(f"│ {title} ") for title in catalogue.FAMILIES.values()]
    firsts = {}
    for info in catalogue.CATALOGUE.values():
        firsts.setdefault(info.family, out.index(f"│ {info.name} "))
    # each family's heading comes right before its first loss, in catalogue order
    assert headings == sorted(headings)
    for family, title in catalogue.FAMILIES.items():
        assert out.index(f"│ {title} ") < firsts[family]
    assert "nll names negative_log_likelihood" in out


def test_plot_subprocess_unknown_loss(tmp_path):
    """As a process: one line on stderr, exit status 2, nothing written."""
    out = tmp_path / "x.png"
    proc = subprocess.run(
        [sys.executable, "-m", "losskit", "plot", "no_such_loss", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("losskit plot: error: unknown loss 'no_such_loss'")
    assert not out.exists()


def test_losses_of_several_arrays_in_list_train_and_eval(capsys, tmp_path):
    """Listed with their arrays; train refuses them in one line; eval takes (pred, target) only."""
    _, out, _ = run(capsys, "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["triplet_margin"]["inputs"] == ["positive", "negative"]
    assert rows["cosine_embedding"]["inputs"] == ["x2"]
    assert rows["ntxent"]["truth"] == "groups"
    line = error_line(capsys, 1, "train", "--dataset", "iris", "--loss", "triplet_margin")
    assert line.startswith(
        "losskit train: error: triplet_margin is not one of the losses `losskit train` can use"
    )
    e = tmp_path / "e.npy"
    np.save(e, np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]))
    assert error_line(
        capsys, 2, "eval", "triplet_margin", "--pred", str(e), "--target", str(e)
    ) == (
        "losskit eval: error: eval reads a prediction and a target; triplet_margin takes anchor, "
        "positive, negative: call losskit.triplet_margin from Python (`losskit explain "
        "triplet_margin` shows it on values)"
    )
    labels = tmp_path / "y.npy"
    np.save(labels, np.array([0.0, 1.0, 0.0]))  # group ids saved as floats are read as ids
    code, out, _ = run(
        capsys, "eval", "ntxent", "--pred", str(e), "--target", str(labels), "--json"
    )
    assert code == 0
    expected = losskit.ntxent(np.load(e), np.array([0, 1, 0]))
    assert json.loads(out)["value"] == pytest.approx(float(expected), rel=1e-12)
