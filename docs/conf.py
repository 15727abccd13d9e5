"""Sphinx configuration of losskit's reference site.

Build it with ``sphinx-build -W --keep-going -b html docs docs/_build/html``
(``-W``: every warning is an error, as in CI).  The per-family pages and the
picture of every loss are generated at build time from
:mod:`losskit.catalogue` by ``docs/_generate.py`` into ``docs/generated/``
(git-ignored): a loss added to the catalogue gets its page entry, picture and
example with no edit here.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import losskit

project = "losskit"
author = "the losskit authors"
copyright = "the losskit authors"
version = release = losskit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
]

exclude_patterns = ["_build", "images", "INTERNALS.md"]
templates_path: list[str] = []

# numpydoc: render the docstrings' sections; the signature shows the options, so no
# member tables of classes (there are none in the loss reference) and no validation
# warnings for style choices (checked by ruff and the doctests instead).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

autodoc_typehints = "none"  # the signature says what the docstring explains
add_module_names = False
python_display_short_literal_types = True

html_theme = "pydata_sphinx_theme"
html_title = f"losskit {release}"
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
html_show_sourcelink = False


def _generate(app: object) -> None:
    import _generate

    _generate.write_pages(os.path.dirname(__file__))


def setup(app: object) -> None:
    app.connect("builder-inited", _generate)  # type: ignore[attr-defined]
