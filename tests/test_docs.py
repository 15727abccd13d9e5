"""The reference site's generated pages: every catalogued loss has its entry and picture.

Fast checks of ``docs/_generate.py`` (CI builds the whole site separately, with
``sphinx-build -W``): each loss's page entry documents the loss object itself,
names what it replaces, shows its picture and a ``losskit explain`` run that
succeeds on the catalogue's example.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from losskit import catalogue, plots

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generate():
    spec = importlib.util.spec_from_file_location("_losskit_docs", ROOT / "docs" / "_generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("family", list(catalogue.FAMILIES))
def test_every_loss_has_an_entry_on_its_family_page(generate, family):
    rows = [i for i in catalogue.CATALOGUE.values() if i.family == family]
    assert rows, f"family {family} has no loss"
    page = generate.family_page(family, rows)
    documented = re.findall(r"^\.\. autofunction:: (\S+)$", page, re.MULTILINE)
    assert [_resolve(d) for d in documented] == [i.fn for i in rows]
    for info in rows:
        entry = page[page.index(f".. _loss-{info.name}:") :]
        entry = entry[: entry.find(".. _loss-", 1) if ".. _loss-" in entry[1:] else None]
        assert f":Replaces: {info.replaces}\n" in entry
        assert info.replaces, f"{info.name} names no anchor it replaces"
        assert f".. figure:: images/{info.name}.png\n" in entry
        assert plots.loss_slice(info.name).xlabel in entry  # the caption says what the axis is
        command = f"$ losskit explain {info.name} "
        assert command in entry
        # the captured run: its steps, the library's numbers, finite differences that agree
        assert f"losskit.{info.name} gives loss" in entry
        assert "DIFFERS" not in entry and "(agrees)" in entry


def test_explain_example_failing_stops_the_build(generate, monkeypatch):
    info = catalogue.lookup("huber")
    monkeypatch.setattr(catalogue, "explain_example", lambda i: ["--pred", "1,2", "--targets", "1"])
    with pytest.raises(RuntimeError, match="losskit explain huber failed on its example"):
        generate.explain_output(info)


def test_write_pages_writes_a_page_per_family_and_a_picture_per_loss(
    generate, tmp_path, monkeypatch
):
    from matplotlib.figure import Figure

    drawn = []

    def tiny(name):  # the pictures themselves are checked in test_plots
        drawn.append(name)
        fig = Figure(figsize=(1, 1))
        fig.subplots().plot([0, 1], [0, 1])
        return fig

    monkeypatch.setattr(plots, "loss_figure", tiny)
    monkeypatch.setattr(generate, "explain_output", lambda info: ("$ losskit", "out"))
    stale = tmp_path / "generated" / "images" / "gone.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    (tmp_path / "generated" / "gone_family.rst").write_text("old")
    generate.write_pages(str(tmp_path))
    out = tmp_path / "generated"
    assert drawn == catalogue.names()
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(
        [*(f"{n}.png" for n in catalogue.names()), "ctc-explain.png"]  # explain ctc --out
    )
    assert (out / "images" / "ctc-explain.png").read_bytes()[:4] == b"\x89PNG"
    assert ".. figure:: images/ctc-explain.png" in (out / "sequence.rst").read_text()
    assert sorted(p.name for p in out.glob("*.rst")) == sorted(
        ["index.rst", *(f"{f}.rst" for f in catalogue.FAMILIES)]
    )
    index = (out / "index.rst").read_text()
    for info in catalogue.CATALOGUE.values():
        assert f":ref:`{info.name} <loss-{info.name}>`" in index
    toctree = index[index.index(".. toctree::") :].split("\n\n")[1].split()
    assert toctree == list(catalogue.FAMILIES)


def test_ci_builds_the_site_with_warnings_as_errors_and_readme_says_how():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "sphinx-build -E -W --keep-going -q -b html docs docs/_build/html" in ci
    readme = (ROOT / "README.md").read_text()
    assert "sphinx-build -W --keep-going -b html docs docs/_build/html" in readme
    ignored = (ROOT / ".gitignore").read_text().split()
    assert {"/docs/_build/", "/docs/generated/"} <= set(ignored)
