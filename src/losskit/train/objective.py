"""A catalogue loss bound to a task: the output layer it needs, the targets it reads.

The training loop does not know which loss it is minimising. It asks the
:class:`Objective` how many outputs the network needs and which output
activation (none for losses on logits, softmax or sigmoid for losses on
probabilities), turns the labels into the loss's kind of truth (class ids,
one-hot rows, a 0/1 column or real values), and gets the loss and its
gradient from :func:`losskit.value_and_grad`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

import losskit as lk

from ..catalogue import TRUTHS, LossInfo, default_loss, fits, lookup

__all__ = ["LOOP_OWNED", "LossMismatchError", "Objective", "check_loop_owned"]

# The loop takes the mean over each mini-batch of (batch, outputs) arrays itself.
LOOP_OWNED = ("reduction", "axis", "sample_weight")


class LossMismatchError(ValueError):
    """The chosen loss cannot train on this target (e.g. a classifier loss on real values)."""


def _describe_target(task: str, n_classes: int) -> str:
    if task == "regression":
        return "a real-valued target (regression)"
    if task == "binary":
        return "a 0/1 target (binary)"
    return f"{n_classes} classes (multiclass)"


def check_loop_owned(options: Any) -> None:
    """Refuse the options the training loop sets itself (``reduction``, ``axis``, ...).

    >>> check_loop_owned({"reduction": "sum"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: reduction cannot be set for training: the training loop owns the reduction ...
    """
    for key in options:
        if key in LOOP_OWNED:
            msg = (
                f"{key} cannot be set for training: the training loop owns the reduction and "
                f"the batching ({', '.join(LOOP_OWNED)} are not training options)"
            )
            raise ValueError(msg)


class Objective:
    """What the model, the loop and the metrics need to know about a loss.

    Parameters
    ----------
    loss
        A name from :mod:`losskit.catalogue` (aliases allowed), or ``None`` for
        the task's default.
    task
        ``"multiclass"``, ``"binary"`` or ``"regression"``.
    n_classes
        Number of classes (ignored for regression).
    dataset
        Name used in the error message when the loss does not fit.
    **options
        Keyword options passed to the loss (``label_smoothing=0.1``, ...).

    Examples
    --------
    >>> obj = Objective("binary_cross_entropy", "binary", 2)
    >>> obj.n_outputs, obj.output
    (1, 'sigmoid')
    >>> obj.encode(np.array([0, 1]))
    array([[0.],
           [1.]])
    """

    def __init__(
        self,
        loss: str | None,
        task: str,
        n_classes: int,
        *,
        dataset: str = "the data",
        **options: Any,
    ) -> None:
        check_loop_owned(options)
        info: LossInfo = lookup(loss or default_loss(task))
        if not info.fits(task):
            fitting = ", ".join(i.name for i in fits(task))
            msg = (
                f"{info.name} does not fit {dataset}: it takes {TRUTHS[info.truth]}, but "
                f"{dataset} has {_describe_target(task, n_classes)}; losses that fit: {fitting}"
            )
            raise LossMismatchError(msg)
        self.info = info
        self.name = info.name
        self.task = task
        self.n_classes = n_classes
        self.options = dict(options)
        if task == "regression":
            self.n_outputs, self.output = 1, None
        elif task == "binary" and info.truth in ("binary", "real"):
            self.n_outputs = 1
            self.output = None if info.input == "logits" else "sigmoid"
        else:
            self.n_outputs = n_classes
            self.output = None if info.input == "logits" else "softmax"
        fn = functools.partial(info.fn, **options) if options else info.fn
        self._value = fn
        self._value_and_grad = lk.value_and_grad(fn)

    @property
    def metric(self) -> str:
        """``"accuracy"`` for classification, ``"r2"`` for regression."""
        return "r2" if self.task == "regression" else "accuracy"

    def encode(self, y: np.ndarray) -> np.ndarray:
        """Labels (ids or real values) as the truth this loss reads."""
        if self.task == "regression":
            return np.asarray(y, dtype=np.float64).reshape(-1, 1)
        y = np.asarray(y, dtype=np.int64)
        if self.n_outputs == 1:  # a 0/1 column for the binary losses
            return y.astype(np.float64).reshape(-1, 1)
        if self.info.truth == "ids":
            return y
        onehot = np.zeros((y.shape[0], self.n_classes))
        onehot[np.arange(y.shape[0]), y] = 1.0
        return onehot

    def value(self, out: np.ndarray, truth: np.ndarray) -> float:
        """The loss (mean over the batch)."""
        return float(self._value(out, truth))

    def value_and_grad(self, out: np.ndarray, truth: np.ndarray) -> tuple[float, np.ndarray]:
        """The loss and ``dL/d(out)`` from :func:`losskit.value_and_grad`."""
        value, grad = self._value_and_grad(out, truth)
        return float(value), np.asarray(grad)

    def predict(self, out: np.ndarray) -> np.ndarray:
        """Class ids (argmax, or a threshold for one output) or real predictions."""
        if self.task == "regression":
            return out[:, 0]
        if self.n_outputs == 1:
            threshold = 0.0 if self.output is None else 0.5
            return (out[:, 0] > threshold).astype(np.int64)
        return np.argmax(out, axis=1)
