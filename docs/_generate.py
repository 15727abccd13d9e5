"""Write the reference pages of the losses from :mod:`losskit.catalogue` (run by conf.py).

One page per family (``generated/<family>.rst``), every loss on it with its
docstring (numpydoc), what it takes, the anchors' names it replaces, its
picture (``generated/images/<loss>.png``, drawn by :func:`losskit.plots.loss_figure`
as ``losskit plot LOSS`` draws it) and ``losskit explain`` run on a small
example, its output captured here.  ``generated/index.rst`` lists every loss.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import shlex
import sys
import textwrap

import losskit as lk
from losskit import catalogue, plots
from losskit.catalogue import LossInfo

GENERATED = "generated"


def _heading(text: str, char: str, *, over: bool = False) -> str:
    line = char * len(text)
    return f"{line}\n{text}\n{line}\n" if over else f"{text}\n{line}\n"


def target(info: LossInfo) -> str:
    """The dotted name autodoc documents the loss under: losskit's export, else its module."""
    if info.name in lk.__all__ and getattr(lk, info.name) is info.fn:
        return f"losskit.{info.name}"
    return f"losskit.losses.{info.family}.{info.name}"


def explain_output(info: LossInfo) -> tuple[str, str]:
    """``losskit explain`` on the catalogue's example: the command line and what it prints."""
    from losskit.cli import main

    args = catalogue.explain_example(info)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["explain", info.name, *args])
    if code != 0:
        msg = f"losskit explain {info.name} failed on its example:\n{out.getvalue()}"
        raise RuntimeError(msg)
    return shlex.join(["losskit", "explain", info.name, *args]), out.getvalue().rstrip()


def _indent(text: str, n: int = 3) -> str:
    return textwrap.indent(text, " " * n, lambda line: True)


def _literal(text: str) -> str:
    return f"``{text}``" if text else "—"


# Arrays the kinds do not describe well enough.
_ARRAY_WORDS = {
    ("linear_cross_entropy", "weight"): "the output layer's weight, one row of ``D`` per class",
    ("gaussian_nll", "var"): "the predicted variances (> 0), like ``pred``",
}


def arguments(info: LossInfo) -> str:
    """The arrays (what each holds, from the catalogue's kinds) and the options with defaults."""
    params = list(inspect.signature(info.fn).parameters.values())
    arrays = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    first = arrays[0]
    said = {first: catalogue.INPUTS[info.input]}
    said.update({name: f"like ``{first}``" for name in info.inputs})
    if info.truth != "none":
        said[arrays[1 + len(info.inputs)]] = catalogue.TRUTHS[info.truth]
    said.update({name: f"an array like ``{first}``" for name in info.extra})
    said.update({k[1]: v for k, v in _ARRAY_WORDS.items() if k[0] == info.name})
    shown = [f"``{name}``: {said[name]}" for name in arrays]
    options = [
        f"``{p.name}={p.default!r}``"
        for p in params
        if p.kind is p.KEYWORD_ONLY and p.name not in ("reduction", "sample_weight")
    ]
    tail = '``reduction="mean"`` (or ``"sum"``, ``"none"``), ``sample_weight=None``'
    return "; ".join(shown) + ". Options (keyword-only): " + ", ".join([*options, tail]) + "."


# Pictures that `losskit explain LOSS --out FILE.png` draws beside the loss's own.
_EXPLAIN_PICTURES = {
    "ctc": "The alignment lattice of the example above: the forward table alpha (each frame "
    "normalised) and the posterior occupation of each state, with the allowed transitions "
    "(stay, advance, skip a blank between different labels).",
}


def explain_picture(info: LossInfo, images: str) -> str | None:
    """Draw the loss's ``losskit explain --out`` picture into ``images``; its file name."""
    if info.name not in _EXPLAIN_PICTURES:
        return None
    from losskit.cli import main

    name = f"{info.name}-explain.png"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        args = [*catalogue.explain_example(info), "--out", os.path.join(images, name)]
        code = main(["explain", info.name, *args])
    if code != 0:
        msg = f"losskit explain {info.name} --out failed:\n{out.getvalue()}"
        raise RuntimeError(msg)
    return name


def loss_entry(info: LossInfo) -> str:
    sl = plots.loss_slice(info.name)
    command, output = explain_output(info)
    fields = [
        (":Replaces:", info.replaces or "—"),
        (":Arguments:", arguments(info)),
        (":Loss:", _literal(info.formula)),
        (":Gradient:", _literal(info.gradient)),
        (":Also called:", ", ".join(f"``{a}``" for a in info.aliases) or "—"),
        (":Trains:", ", ".join(info.tasks) + " (``losskit train --loss``)" if info.tasks else "—"),
    ]
    axis = sl.xlabel
    coupled = " The loss is the batch's mean." if sl.coupled else ""
    parts = [
        f".. _loss-{info.name}:\n",
        _heading(info.name, "-"),
        f".. autofunction:: {target(info)}\n",
        ".. rubric:: At a glance\n",
        "\n".join(f"{k} {v}" for k, v in fields) + "\n",
        f".. figure:: images/{info.name}.png\n"
        f"   :alt: {info.name}: the loss and its gradient along one input\n"
        "   :width: 100%\n\n"
        f"   The loss and its gradient along one input. Horizontal axis: {axis}. "
        "The gradient drawn is the slope of the loss along that axis (the analytic gradient "
        f"projected on the direction the axis moves the input).{coupled} Drawn by "
        f"``losskit plot {info.name} --out {info.name}.png``.\n",
        ".. rubric:: Step by step\n",
        "The loss computed for one small example, each step with its formula, and the "
        "gradient checked against finite differences:\n",
        ".. code-block:: console\n\n" + _indent(f"$ {command}\n{output}") + "\n",
    ]
    if info.name in _EXPLAIN_PICTURES:
        parts.append(
            f".. figure:: images/{info.name}-explain.png\n"
            f"   :alt: {info.name}: the picture losskit explain draws\n"
            "   :width: 100%\n\n"
            f"   {_EXPLAIN_PICTURES[info.name]} Drawn by ``{command} --out "
            f"{info.name}-explain.png``.\n"
        )
    return "\n".join(parts)


def family_page(family: str, rows: list[LossInfo]) -> str:
    module = importlib.import_module(f"losskit.losses.{family}")
    intro = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    words = catalogue.FAMILIES[family]
    title = words[0].upper() + words[1:]  # "sequences (CTC)": no str.capitalize
    table = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 28 44 28\n",
        "   * - loss",
        "     - what it computes",
        "     - replaces",
    ]
    for info in rows:
        table += [
            f"   * - :ref:`{info.name} <loss-{info.name}>`",
            f"     - {info.summary}",
            f"     - {info.replaces or '—'}",
        ]
    parts = [
        f".. _family-{family}:\n",
        _heading(title, "="),
        f"{intro}\n",
        f"The losses of :mod:`losskit.losses.{family}`; each is also exported by "
        "``losskit`` and adapted in ``losskit.compat`` where a framework has it.\n",
        "\n".join(table) + "\n",
        *(loss_entry(info) for info in rows),
    ]
    return "\n".join(parts)


def index_page(families: dict[str, list[LossInfo]]) -> str:
    table = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 16 24 32 28\n",
        "   * - family",
        "     - loss",
        "     - what it computes",
        "     - replaces",
    ]
    for family, rows in families.items():
        for info in rows:
            table += [
                f"   * - :ref:`{catalogue.FAMILIES[family]} <family-{family}>`",
                f"     - :ref:`{info.name} <loss-{info.name}>`",
                f"     - {info.summary}",
                f"     - {info.replaces or '—'}",
            ]
    n = sum(len(rows) for rows in families.values())
    parts = [
        _heading("The losses", "="),
        f"Every loss of losskit ({n}), by family, with the anchors' names it replaces "
        "(Keras, PyTorch, ``tf.nn``, optax). Each family's page shows every loss's "
        "docstring, formula, picture and a worked example; ``losskit list`` prints the "
        "same catalogue.\n",
        ".. toctree::\n   :maxdepth: 1\n\n" + "\n".join(f"   {f}" for f in families) + "\n",
        "\n".join(table) + "\n",
    ]
    return "\n".join(parts)


def _write(path: str, text: str) -> None:
    """Write only a changed page, so that an incremental build rereads only what changed."""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_pages(docs: str) -> None:
    out = os.path.join(docs, GENERATED)
    images = os.path.join(out, "images")
    os.makedirs(images, exist_ok=True)
    families: dict[str, list[LossInfo]] = {}
    for info in catalogue.CATALOGUE.values():
        families.setdefault(info.family, []).append(info)
    keep = {"index.rst", "images"}
    for family, rows in families.items():
        _write(os.path.join(out, f"{family}.rst"), family_page(family, rows))
        keep.add(f"{family}.rst")
    _write(os.path.join(out, "index.rst"), index_page(families))
    pictures = set()
    for info in catalogue.CATALOGUE.values():
        plots.save(plots.loss_figure(info.name), os.path.join(images, f"{info.name}.png"))
        pictures.add(f"{info.name}.png")
        extra = explain_picture(info, images)
        if extra:
            pictures.add(extra)
    for stale in set(os.listdir(out)) - keep:  # a family that is no longer in the catalogue
        os.remove(os.path.join(out, stale))
    for stale in set(os.listdir(images)) - pictures:
        os.remove(os.path.join(images, stale))


def readme_table() -> str:
    """The README's catalogue table: every loss, its signature, what it computes, what it replaces.

    ``python docs/_generate.py readme`` prints it (tests/test_readme_catalogue.py
    checks the README's copy against it).
    """
    lines = ["| family | loss | what it computes | replaces |", "|---|---|---|---|"]
    for info in catalogue.CATALOGUE.values():
        params = inspect.signature(info.fn).parameters.values()
        arrays = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        options = [
            p.name
            for p in params
            if p.kind is p.KEYWORD_ONLY and p.name not in ("reduction", "sample_weight")
        ]
        shown = ", ".join(arrays + (["*", *options] if options else []))
        family = catalogue.FAMILIES[info.family]
        lines.append(f"| {family} | `{info.name}({shown})` | {info.summary} | {info.replaces} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["readme"]:
        sys.exit("usage: python docs/_generate.py readme  (the site builds the pages itself)")
    sys.stdout.write(readme_table())
