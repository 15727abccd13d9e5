"""The README's catalogue table lists every loss the library exports, with its signature."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import losskit as lk
from losskit.catalogue import CATALOGUE

README = Path(__file__).resolve().parents[1] / "README.md"


def _table_signatures() -> dict[str, str]:
    rows = re.findall(r"^\| [^|]+ \| `(\w+)\(([^`]*)\)` \|", README.read_text(), re.MULTILINE)
    return dict(rows)


def test_every_catalogued_loss_has_a_row_with_its_signature():
    rows = _table_signatures()
    for name, info in CATALOGUE.items():
        assert name in rows, f"README's catalogue table lacks {name}"
        sig = inspect.signature(info.fn)
        shown = {p.strip() for p in rows[name].replace("*,", "").split(",") if p.strip()}
        actual = {n for n in sig.parameters if n not in ("reduction", "sample_weight")}
        assert shown == actual, f"{name}: README shows {sorted(shown)}, it takes {sorted(actual)}"


def test_every_exported_loss_is_catalogued():
    activations = {"softmax", "log_softmax", "logsumexp", "sigmoid", "log_sigmoid", "sparsemax"}
    for name in lk.__all__:
        obj = getattr(lk, name)
        if callable(obj) and name not in activations and hasattr(obj, "__losskit_value_and_grad__"):
            assert name in CATALOGUE, f"{name} is exported but not in the catalogue"


def test_the_table_is_the_catalogue():
    """Every row as the catalogue has it: summary and the anchors' names it replaces, in order.

    After a catalogue change, ``python docs/_generate.py readme`` prints the table to paste.
    """
    import importlib.util

    path = README.parent / "docs" / "_generate.py"
    spec = importlib.util.spec_from_file_location("_losskit_docs_readme", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.readme_table()
    assert table in README.read_text(), "README's table is stale: python docs/_generate.py readme"
    for info in CATALOGUE.values():
        assert f"| {info.summary} | {info.replaces} |" in table
        assert info.replaces
