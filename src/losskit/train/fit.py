"""The training loop, written out: shuffle, forward, loss, gradient, backward, update.

::

    for epoch in range(epochs):
        for batch in shuffled mini-batches:
            out = model.forward(x)                          # forward pass
            loss, dout = objective.value_and_grad(out, t)   # losskit.value_and_grad
            model.backward(dout)                            # chain rule, layer by layer
            optimizer.step(model.grads())                   # update the weights
        validate; stop when the validation loss has not improved for `patience` epochs

The fit returns a :class:`History` (loss and metric per epoch, train and
validation) and leaves the model holding the weights of its best epoch.
A loss that turns NaN or infinite stops the fit at once with
:class:`NonFiniteLossError` (as Keras's ``TerminateOnNaN``): nothing after
it would be meaningful, and a table of the untrained network would be a
silently wrong result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .model import MLP
from .objective import Objective
from .optim import Adam, Optimizer

__all__ = ["History", "NonFiniteLossError", "evaluate", "fit", "r2_score"]

BatchCallback = Callable[[int, int, int, float], None]  # epoch, batches done, of, running loss
EpochCallback = Callable[["History"], None]


@dataclass
class History:
    """Per-epoch record of a fit; ``metric`` is ``"accuracy"`` or ``"r2"``."""

    metric: str
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # time since the start, per epoch
    best_epoch: int = 0  # 1-based; the weights the model keeps
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            f"train_{self.metric}": self.train_metric,
            f"val_{self.metric}": self.val_metric,
            "seconds": self.seconds,
        }


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite during :func:`fit`; training stopped there.

    ``epoch`` is 1-based; ``batch`` is the 1-based mini-batch of that epoch
    (``None`` when it was the validation loss at the end of the epoch);
    ``value`` is the loss; ``history`` holds the epochs completed before it.
    The model is left with the weights of the best completed epoch (its
    initial weights if none completed).
    """

    def __init__(
        self, epoch: int, batch: int | None, n_batches: int, value: float, history: History
    ) -> None:
        where = f"batch {batch} of {n_batches}" if batch is not None else "validation"
        msg = (
            f"the loss became {value} at epoch {epoch} ({where}); training stopped: "
            "the learning rate is probably too large for this network"
        )
        super().__init__(msg)
        self.epoch, self.batch, self.n_batches = epoch, batch, n_batches
        self.value, self.history = value, history


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot``.

    >>> r2_score(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    1.0
    """
    ss_res = float(np.sum((y_true - y_pred) ** 2))
    ss_tot = float(np.sum((y_true - np.mean(y_true)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0


def _metric(objective: Objective, out: np.ndarray, y: np.ndarray) -> float:
    pred = objective.predict(out)
    if objective.task == "regression":
        return r2_score(np.asarray(y, dtype=np.float64), pred)
    return float(np.mean(pred == y))


def evaluate(
    model: MLP, objective: Objective, X: np.ndarray, y: np.ndarray, *, y_scale: float = 1.0
) -> dict[str, float]:
    """Loss and accuracy, or loss, R² and MAE (times ``y_scale``, the target's unit)."""
    out = model.forward(X)
    result = {"loss": objective.value(out, objective.encode(y))}
    if objective.task == "regression":
        pred = objective.predict(out)
        result["r2"] = r2_score(np.asarray(y, dtype=np.float64), pred)
        result["mae"] = float(np.mean(np.abs(pred - y))) * y_scale
    else:
        result["accuracy"] = _metric(objective, out, y)
    return result


def fit(
    model: MLP,
    objective: Objective,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int = 100,
    batch_size: int = 32,
    optimizer: Optimizer | None = None,
    patience: int | None = 10,
    min_delta: float = 0.0,
    seed: int = 0,
    on_batch: BatchCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> History:
    """Train ``model`` on mini-batches; early-stop on the validation loss.

    Parameters
    ----------
    model, objective
        The network and the loss bound to the task (``objective.n_outputs``
        must be the model's last width).
    X_train, y_train, X_val, y_val
        Features and labels (class ids or real values) of the two splits.
    epochs, batch_size
        At most ``epochs`` passes over the shuffled training rows.
    optimizer
        Defaults to ``Adam(model.params(), lr=1e-3)``.
    patience
        Stop after this many epochs without a lower validation loss and keep
        the best epoch's weights; ``None`` trains all epochs (and keeps the last).
    min_delta
        An epoch counts as an improvement only if it lowers the best validation
        loss by more than this (as Keras' ``EarlyStopping(min_delta=...)``).
    seed
        Seed of the shuffling.
    on_batch, on_epoch
        Progress callbacks: ``on_batch(epoch, done, n_batches, running_loss)``
        and ``on_epoch(history)``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> obj = Objective("sigmoid_cross_entropy", "binary", 2)
    >>> net = MLP([2, 8, 1], seed=0)
    >>> opt = Adam(net.params(), lr=0.01)
    >>> h = fit(net, obj, X[:150], y[:150], X[150:], y[150:], epochs=20, optimizer=opt)
    >>> h.train_loss[-1] < h.train_loss[0] / 2, h.val_metric[-1] > 0.9
    (True, True)
    """
    if model.sizes[-1] != objective.n_outputs:
        msg = (
            f"the model has {model.sizes[-1]} outputs; {objective.name} needs {objective.n_outputs}"
        )
        raise ValueError(msg)
    if batch_size < 1 or epochs < 1:
        msg = f"`epochs` and `batch_size` must be >= 1; got {epochs}, {batch_size}"
        raise ValueError(msg)
    opt = optimizer or Adam(model.params(), lr=1e-3)
    rng = np.random.default_rng(seed)
    t_train, t_val = objective.encode(y_train), objective.encode(y_val)
    n = X_train.shape[0]
    n_batches = -(-n // batch_size)
    history = History(metric=objective.metric)
    best_loss, best_weights, waited = np.inf, model.get_weights(), 0
    start = time.perf_counter()
    # NumPy's overflow warnings would only repeat what the finiteness checks below
    # report as one NonFiniteLossError: every overflow ends in a non-finite loss.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(1, epochs + 1):
            order = rng.permutation(n)
            total, outs = 0.0, []
            for b in range(n_batches):
                idx = order[b * batch_size : (b + 1) * batch_size]
                out = model.forward(X_train[idx])  # forward pass
                loss, dout = objective.value_and_grad(out, t_train[idx])  # loss and dL/d(out)
                if not math.isfinite(loss):  # before the update: one step more only spreads NaN
                    model.set_weights(best_weights)
                    raise NonFiniteLossError(epoch, b + 1, n_batches, loss, history)
                model.backward(dout)  # backward pass: every layer's gradient
                opt.step(model.grads())  # update
                total += loss * idx.size
                outs.append(out)
                if on_batch is not None:
                    on_batch(epoch, b + 1, n_batches, total / min((b + 1) * batch_size, n))
            val_out = model.forward(X_val)
            val_loss = objective.value(val_out, t_val)
            if not math.isfinite(val_loss):  # the epoch's last update overflowed the weights
                model.set_weights(best_weights)
                raise NonFiniteLossError(epoch, None, n_batches, val_loss, history)
            history.train_loss.append(total / n)
            history.train_metric.append(_metric(objective, np.concatenate(outs), y_train[order]))
            history.val_loss.append(val_loss)
            history.val_metric.append(_metric(objective, val_out, y_val))
            history.seconds.append(time.perf_counter() - start)
            if val_loss < best_loss - min_delta:
                best_loss, best_weights, waited = val_loss, model.get_weights(), 0
                history.best_epoch = epoch
            else:
                waited += 1
            if on_epoch is not None:
                on_epoch(history)
            if patience is not None and waited >= patience:
                history.stopped_early = True
                break
    if patience is not None:
        model.set_weights(best_weights)
    else:
        history.best_epoch = history.epochs
    return history
