"""Every figure has labelled axes, a legend and a title, and is a small PNG."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from losskit import plots
from losskit.train import load_builtin, train_model


def _check(fig, path):
    assert fig.axes
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel()
        assert ax.get_legend() is not None
        assert ax.get_title() or fig.get_suptitle()
    plots.save(fig, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) < 200_000


@pytest.mark.parametrize("name", sorted(plots.FIGURES))
def test_explanatory_figures(name, tmp_path):
    _check(plots.FIGURES[name](), tmp_path / f"{name}.png")


@pytest.fixture(scope="module")
def runs():
    ds = load_builtin("iris")
    return [train_model(ds, loss=loss, epochs=4, hidden=(8,)) for loss in ("ce", "mse")]


def test_training_curves(runs, tmp_path):
    fig = plots.training_curves(runs[0].history, title="iris")
    assert fig.get_suptitle() == "iris"
    _check(fig, tmp_path / "curves.png")


def test_compare(runs, tmp_path):
    fig = plots.compare(runs)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["sparse_softmax_cross_entropy", "mean_squared_error"]
    _check(fig, tmp_path / "compare.png")
