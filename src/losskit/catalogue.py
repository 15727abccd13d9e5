"""Every loss by name: what it takes, what truth it compares against, what task it fits.

The training loop, ``losskit list``, ``eval`` and ``explain`` all read this
one table, so a loss added to the core becomes usable everywhere by adding a
row here. The loss functions themselves are looked up in :mod:`losskit` when
first used (``info.fn``), so importing the catalogue imports no loss code.

Examples
--------
>>> info = lookup("mse")
>>> info.name, info.input, info.truth
('mean_squared_error', 'real', 'real')
>>> default_loss("binary")
'sigmoid_cross_entropy'
>>> [i.name for i in fits("binary")][:2]
['softmax_cross_entropy', 'sparse_softmax_cross_entropy']
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CATALOGUE",
    "INPUTS",
    "TRUTHS",
    "LossInfo",
    "UnknownLossError",
    "default_loss",
    "fits",
    "lookup",
    "names",
]

INPUTS = {
    "logits": "logits (any real scores)",
    "probs": "probabilities in [0, 1]",
    "real": "real-valued predictions",
}
TRUTHS = {
    "ids": "integer class ids",
    "distributions": "class distributions (one-hot or soft)",
    "binary": "0/1 (or soft) targets",
    "real": "real values",
}


@dataclass(frozen=True)
class LossInfo:
    """One row of the catalogue."""

    name: str
    input: str  # a key of INPUTS
    truth: str  # a key of TRUTHS
    tasks: tuple[str, ...]  # which training tasks it can drive
    summary: str
    formula: str  # the loss of one example
    gradient: str  # d loss / d input, for one example
    replaces: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def fn(self) -> Callable[..., Any]:
        """The loss function from :mod:`losskit` (imported on first use)."""
        import losskit

        fn: Callable[..., Any] = getattr(losskit, self.name)
        return fn

    def fits(self, task: str) -> bool:
        return task in self.tasks


CATALOGUE: dict[str, LossInfo] = {
    info.name: info
    for info in [
        LossInfo(
            "softmax_cross_entropy",
            "logits",
            "distributions",
            ("multiclass", "binary"),
            "Cross-entropy of softmax(logits) against a class distribution (one-hot or soft).",
            "L = -Σ_c t_c log softmax(z)_c",
            "dL/dz = softmax(z)·Σ_c t_c - t",
            "tf.nn.softmax_cross_entropy_with_logits",
        ),
        LossInfo(
            "sparse_softmax_cross_entropy",
            "logits",
            "ids",
            ("multiclass", "binary"),
            "The usual classifier loss: -log softmax(logits)[label] for integer class ids.",
            "L = logsumexp(z) - z_y = -log softmax(z)_y",
            "dL/dz = softmax(z) - onehot(y)",
            "torch F.cross_entropy, tf.nn.sparse_softmax_cross_entropy_with_logits",
            ("cross_entropy", "ce", "xent"),
        ),
        LossInfo(
            "categorical_cross_entropy",
            "probs",
            "distributions",
            ("multiclass", "binary"),
            "Cross-entropy of probabilities (after a softmax) against a class distribution.",
            "L = -Σ_c t_c log clip(p_c, eps, 1-eps)",
            "dL/dp_c = -t_c / p_c",
            "keras categorical_crossentropy",
        ),
        LossInfo(
            "sparse_categorical_cross_entropy",
            "probs",
            "ids",
            ("multiclass", "binary"),
            "Negative log of the probability given to the true class, for integer class ids.",
            "L = -log clip(p_y, eps, 1-eps)",
            "dL/dp_c = -[c = y] / p_y",
            "keras sparse_categorical_crossentropy",
            ("nll",),
        ),
        LossInfo(
            "binary_cross_entropy",
            "probs",
            "binary",
            ("binary",),
            "Binary cross-entropy of a probability (after a sigmoid) against a 0/1 target.",
            "L = -[y log p + (1-y) log(1-p)]",
            "dL/dp = (p - y) / (p (1 - p))",
            "keras binary_crossentropy, torch F.binary_cross_entropy",
            ("bce",),
        ),
        LossInfo(
            "sigmoid_cross_entropy",
            "logits",
            "binary",
            ("binary",),
            "Binary cross-entropy on logits, computed stably (no sigmoid needed first).",
            "L = max(z,0) - z·y + log(1 + e^-|z|)",
            "dL/dz = σ(z) - y",
            "torch BCEWithLogitsLoss, tf.nn.sigmoid_cross_entropy_with_logits",
            ("bce_with_logits", "binary_cross_entropy_with_logits"),
        ),
        LossInfo(
            "mean_squared_error",
            "real",
            "real",
            ("regression", "multiclass", "binary"),
            "Squared error; the regression default (on classes: probabilities vs one-hot).",
            "L = (ŷ - y)²",
            "dL/dŷ = 2 (ŷ - y)",
            "keras mean_squared_error, torch F.mse_loss",
            ("mse", "l2"),
        ),
        LossInfo(
            "mean_absolute_error",
            "real",
            "real",
            ("regression", "multiclass", "binary"),
            "Absolute error; robust to outliers, constant-size gradient.",
            "L = |ŷ - y|",
            "dL/dŷ = sign(ŷ - y)",
            "keras mean_absolute_error, torch F.l1_loss",
            ("mae", "l1"),
        ),
    ]
}

_DEFAULTS = {
    "multiclass": "sparse_softmax_cross_entropy",
    "binary": "sigmoid_cross_entropy",
    "regression": "mean_squared_error",
}


class UnknownLossError(ValueError):
    """A loss name that is not in the catalogue; the message suggests the closest."""


def names() -> list[str]:
    """The canonical loss names, in catalogue order."""
    return list(CATALOGUE)


def _aliases() -> dict[str, str]:
    table = {name: name for name in CATALOGUE}
    for info in CATALOGUE.values():
        table.update({alias: info.name for alias in info.aliases})
    return table


def lookup(name: str) -> LossInfo:
    """The catalogue row for ``name`` (or an alias; ``-`` and ``_`` are the same).

    >>> lookup("softmax-cross-entropy").name
    'softmax_cross_entropy'
    >>> try:
    ...     lookup("mean_sqared_error")
    ... except UnknownLossError as exc:
    ...     print(exc)
    unknown loss 'mean_sqared_error'; did you mean 'mean_squared_error'? (`losskit list` shows all)
    """
    key = name.strip().lower().replace("-", "_")
    table = _aliases()
    if key in table:
        return CATALOGUE[table[key]]
    close = difflib.get_close_matches(key, list(table), n=1)
    hint = f"; did you mean {table[close[0]]!r}?" if close else ""
    msg = f"unknown loss {name!r}{hint} (`losskit list` shows all)"
    raise UnknownLossError(msg)


def default_loss(task: str) -> str:
    """The loss that fits a task: sparse softmax CE, sigmoid CE, or MSE."""
    return _DEFAULTS[task]


def fits(task: str) -> list[LossInfo]:
    """The losses that can train a model for ``task``."""
    return [info for info in CATALOGUE.values() if info.fits(task)]
