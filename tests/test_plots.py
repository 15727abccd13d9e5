"""Every figure has labelled axes, a legend and a title, and is a small PNG."""

from __future__ import annotations

import numpy as np
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


def _covered_points(fig):
    """(axes title, line label, how many of its points) drawn under the axes' legend box."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    covered = []
    for ax in fig.axes:
        box = ax.get_legend().get_window_extent()
        for line in ax.get_lines():
            xy = line.get_transform().transform(line.get_xydata())
            xy = xy[np.isfinite(xy).all(axis=1)]
            inside = (
                (xy[:, 0] > box.x0)
                & (xy[:, 0] < box.x1)
                & (xy[:, 1] > box.y0)
                & (xy[:, 1] < box.y1)
            )
            if inside.any():
                covered.append((ax.get_title(), line.get_label(), int(inside.sum())))
    return covered


@pytest.mark.parametrize("name", sorted(plots.FIGURES))
def test_no_legend_covers_a_curve(name):
    """The sigmoid-gradient legend used to sit on the cross-entropy gradient near z = -2."""
    assert _covered_points(plots.FIGURES[name]()) == []
