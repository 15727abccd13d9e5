"""Every figure has labelled axes, a legend and a title, and is a small PNG."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from losskit import catalogue, plots
from losskit.cli import main
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


# -- one picture per loss: `losskit plot LOSS` ------------------------------------------------


def _values(name, build_points, s, coupled):
    """The loss along the slice from the loss itself (value only, no gradient code)."""
    info = catalogue.CATALOGUE[name]
    options = dict(plots.loss_slice(name).options)
    if coupled:
        return np.array(
            [
                float(info.fn(*build_points(np.array([p]))[0], reduction="mean", **options))
                for p in s
            ]
        )
    value = np.asarray(info.fn(*build_points(s)[0], reduction="none", **options), dtype=np.float64)
    return value.reshape(s.size, -1).sum(axis=1)


@pytest.mark.parametrize("name", catalogue.names())
def test_every_loss_has_a_picture_of_its_loss_and_gradient(name, tmp_path, capsys, monkeypatch):
    """`losskit plot NAME` writes a PNG of two panels whose curves are the loss and its slope.

    The drawn loss is checked against the loss function; the drawn gradient (the analytic
    gradient projected on the slice) against central differences of the loss function,
    except at the kinks (where the one-sided slopes differ; a few points at most).
    """
    drawn = []
    save = plots.save
    monkeypatch.setattr(plots, "save", lambda fig, path: (drawn.append(fig), save(fig, path)))
    out = tmp_path / f"{name}.png"
    assert main(["plot", name, "--out", str(out)]) == 0
    assert capsys.readouterr().err == f"{name}: written to {out}\n"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = drawn
    ax_loss, ax_grad = fig.axes
    assert (ax_loss.get_title(), ax_grad.get_title()) == ("loss", "gradient")
    sl = plots.loss_slice(name)
    assert ax_loss.get_xlabel() == ax_grad.get_xlabel() == sl.xlabel
    loss_lines = ax_loss.get_lines()
    grad_lines = [ln for ln in ax_grad.get_lines() if len(ln.get_xdata()) > 2]  # not the 0 line
    assert [ln.get_label() for ln in loss_lines] == [label for label, _ in sl.curves]
    assert [ln.get_label() for ln in grad_lines] == [label for label, _ in sl.curves]
    for (label, build), ln_loss, ln_grad in zip(sl.curves, loss_lines, grad_lines, strict=True):
        s = np.asarray(ln_loss.get_xdata(), dtype=np.float64)
        np.testing.assert_array_equal(s, sl.s)
        value = _values(name, build, s, sl.coupled)
        np.testing.assert_allclose(ln_loss.get_ydata(), value, rtol=1e-12, atol=1e-12)
        inner = s[1:-1]  # the slice's ends may be the edge of the domain (p = 1)
        h = 1e-6 * np.maximum(1.0, np.abs(inner))
        left_v = _values(name, build, inner - h, sl.coupled)
        mid_v = _values(name, build, inner, sl.coupled)
        right_v = _values(name, build, inner + h, sl.coupled)
        left, right = (mid_v - left_v) / h, (right_v - mid_v) / h
        scale = 1.0 + np.abs(left) + np.abs(right)
        smooth = np.abs(left - right) < 1e-3 * scale
        assert smooth.mean() > 0.97, f"{name} {label}: {np.sum(~smooth)} kinks"
        central = (right_v - left_v) / (2 * h)
        drawn_slope = np.asarray(ln_grad.get_ydata(), dtype=np.float64)[1:-1]
        np.testing.assert_allclose(
            drawn_slope[smooth], central[smooth], rtol=1e-4, atol=1e-5, err_msg=f"{name} {label}"
        )
        assert np.ptp(value) > 0  # a picture of something
