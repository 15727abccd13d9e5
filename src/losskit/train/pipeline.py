"""From a dataset to a fitted, evaluated model in one call (what ``losskit train`` runs).

Split (seeded, stratified), standardise with statistics of the training rows
only (the target too, for regression), build the network the loss needs,
fit with early stopping, evaluate on train/validation/test.

The MLP's matrices are small, and BLAS's threads cost more than they save on
them: on a shared 2-core machine ``losskit train --dataset digits`` took
2.95 s with one OpenBLAS thread against 6.39 s with its default of one per
core (medians of 4 interleaved runs at load 3), and 6.5 s against 14.6 s at
load 5-6 (6 runs), with the same epochs and test accuracy. So the fit runs
with one BLAS thread (threadpoolctl, if installed) when every matrix product
of a training step is below :data:`SMALL_PRODUCT` multiply-adds, unless the
user chose a thread count in the environment (``OMP_NUM_THREADS``, ...).

Examples
--------
>>> from losskit.train.data import load_builtin
>>> result = train_model(load_builtin("breast_cancer"), epochs=10, seed=0)
>>> result.objective.name, result.model.describe()
('sigmoid_cross_entropy', '30-128-1 relu')
>>> result.metrics["test"]["accuracy"] > 0.9
True
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import Dataset, Split, Standardizer, split
from .fit import BatchCallback, EpochCallback, History, evaluate, fit
from .model import MLP
from .objective import Objective
from .optim import make_optimizer

__all__ = [
    "DEFAULT_HIDDEN",
    "DEFAULT_WEIGHT_DECAY",
    "SMALL_PRODUCT",
    "TrainResult",
    "blas_threads_for",
    "train_model",
]

DEFAULT_HIDDEN = (128,)
DEFAULT_WEIGHT_DECAY = 1e-4
DEFAULT_EPOCHS = 200
DEFAULT_PATIENCE = 20
# batch x n_in x n_out of the largest product in a training step below which one BLAS
# thread is used. digits' default network is 32 x 64 x 128 = 2.6e5; a product of 1.7e7
# takes about a millisecond on one core, where sharing it out can start to pay.
SMALL_PRODUCT = 2**24
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class TrainResult:
    """The fitted model with everything needed to report on it and reuse it."""

    dataset: Dataset
    objective: Objective
    model: MLP
    history: History
    metrics: dict[str, dict[str, float]]  # split -> {"loss", "accuracy" | "r2", "mae"}
    x_scaler: Standardizer
    y_scaler: Standardizer | None
    config: dict[str, Any]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (what ``losskit train --json`` prints)."""
        return {
            "dataset": self.dataset.name,
            "task": self.dataset.task,
            "samples": int(self.dataset.X.shape[0]),
            "features": int(self.dataset.X.shape[1]),
            "classes": self.dataset.n_classes,
            "loss": self.objective.name,
            "model": {
                "sizes": self.model.sizes,
                "activation": self.model.activation,
                "output": self.model.output,
                "parameters": self.model.n_params,
            },
            "config": self.config,
            "epochs_run": self.history.epochs,
            "best_epoch": self.history.best_epoch,
            "seconds": round(self.seconds, 3),
            "metrics": self.metrics,
            "history": self.history.as_dict(),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Weights, standardisation and labels in one ``.npz`` (no pickle)."""
        arrays = {"x_mean": self.x_scaler.mean_, "x_scale": self.x_scaler.scale_}
        if self.y_scaler is not None:
            arrays.update(y_mean=self.y_scaler.mean_, y_scale=self.y_scaler.scale_)
        meta = {
            "dataset": self.dataset.name,
            "task": self.dataset.task,
            "loss": self.objective.name,
            "loss_options": jsonable(self.objective.options),
            "class_names": self.dataset.class_names,
            "feature_names": self.dataset.feature_names,
            "target_name": self.dataset.target_name,
        }
        self.model.save(path, meta=meta, arrays={k: np.asarray(v) for k, v in arrays.items()})


def blas_threads_for(
    sizes: Sequence[int], batch_size: int
) -> contextlib.AbstractContextManager[Any]:
    """A context that runs BLAS on one thread for an MLP whose products are small.

    A no-op when a product is large, when the user set a thread count in the
    environment, or when threadpoolctl is not installed.

    >>> with blas_threads_for([64, 128, 10], 32):
    ...     pass
    """
    largest = batch_size * max(a * b for a, b in itertools.pairwise(sizes))
    if largest >= SMALL_PRODUCT or any(os.environ.get(v) for v in _THREAD_VARIABLES):
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - the cli extra installs it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def jsonable(value: Any) -> Any:
    """Options as JSON can hold them: arrays become lists, NumPy scalars Python numbers.

    >>> jsonable({"class_weight": np.array([1.0, 2.0]), "eps": np.float32(0.5)})
    {'class_weight': [1.0, 2.0], 'eps': 0.5}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return value


def train_model(
    ds: Dataset,
    *,
    loss: str | None = None,
    loss_options: dict[str, Any] | None = None,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    activation: str = "relu",
    optimizer: str = "adam",
    lr: float | None = None,
    momentum: float = 0.9,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = 32,
    patience: int | None = DEFAULT_PATIENCE,
    min_delta: float = 0.0,
    seed: int = 0,
    val: float = 0.15,
    test: float = 0.2,
    parts: Split | None = None,
    on_batch: BatchCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train an MLP on ``ds`` with a catalogue loss; see the module docstring."""
    start = time.perf_counter()
    objective = Objective(loss, ds.task, ds.n_classes, dataset=ds.name, **(loss_options or {}))
    parts = parts or split(ds, val=val, test=test, seed=seed)
    x_scaler = Standardizer().fit(parts.X_train)
    X = {k: x_scaler.transform(x) for k, (x, _) in parts.parts().items()}
    y = {k: t for k, (_, t) in parts.parts().items()}
    y_scaler = None
    if ds.task == "regression":
        y_scaler = Standardizer().fit(parts.y_train)
        y = {k: y_scaler.transform(t) for k, t in y.items()}
    model = MLP(
        [ds.X.shape[1], *hidden, objective.n_outputs],
        activation=activation,
        output=objective.output,
        seed=seed,
    )
    opt = make_optimizer(
        optimizer, model.params(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    with blas_threads_for(model.sizes, min(batch_size, len(y["train"]))):
        history = fit(
            model,
            objective,
            X["train"],
            y["train"],
            X["val"],
            y["val"],
            epochs=epochs,
            batch_size=batch_size,
            optimizer=opt,
            patience=patience,
            min_delta=min_delta,
            seed=seed,
            on_batch=on_batch,
            on_epoch=on_epoch,
        )
        y_unit = float(y_scaler.scale_) if y_scaler is not None else 1.0  # type: ignore[arg-type]
        metrics = {k: evaluate(model, objective, X[k], y[k], y_scale=y_unit) for k in X}
    config = {
        "hidden": list(hidden),
        "activation": activation,
        "optimizer": optimizer,
        "lr": opt.lr,
        "weight_decay": weight_decay,
        "epochs": epochs,
        "batch_size": batch_size,
        "patience": patience,
        "min_delta": min_delta,
        "seed": seed,
        "loss_options": jsonable(dict(loss_options or {})),
    }
    return TrainResult(
        ds,
        objective,
        model,
        history,
        metrics,
        x_scaler,
        y_scaler,
        config,
        time.perf_counter() - start,
    )
