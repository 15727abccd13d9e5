"""Figures: training curves, loss comparisons, and the pictures that explain the losses.

Imported only when a figure is asked for (it imports matplotlib). Figures
are built on :class:`matplotlib.figure.Figure` directly, without pyplot, so
no display and no global backend state are involved; :func:`save` writes
a PNG with the Agg renderer. The explanatory curves are computed with
losskit's own losses and :func:`losskit.value_and_grad`.

Examples
--------
>>> fig = binary_cross_entropy_figure()
>>> [ax.get_xlabel() for ax in fig.axes]
['predicted probability of class 1, p']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

import losskit as lk

__all__ = [
    "FIGURES",
    "binary_cross_entropy_figure",
    "compare",
    "cross_entropy_figure",
    "mse_vs_mae_figure",
    "save",
    "sigmoid_gradient_figure",
    "training_curves",
]

_METRIC_LABEL = {"accuracy": "accuracy", "r2": "R²"}


def save(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` as a PNG (100 dpi, tight)."""
    fig.savefig(path, dpi=100, bbox_inches="tight", format="png")


def training_curves(history: Any, *, title: str = "training") -> Figure:
    """Loss and metric per epoch, train and validation; the kept epoch marked."""
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax_loss, ax_metric = fig.subplots(1, 2)
    epochs = np.arange(1, history.epochs + 1)
    metric = _METRIC_LABEL.get(history.metric, history.metric)
    ax_loss.plot(epochs, history.train_loss, label="train (running mean)")
    ax_loss.plot(epochs, history.val_loss, label="validation")
    ax_metric.plot(epochs, history.train_metric, label="train (running)")
    ax_metric.plot(epochs, history.val_metric, label="validation")
    for ax, what in ((ax_loss, "loss"), (ax_metric, metric)):
        if history.best_epoch:
            ax.axvline(
                history.best_epoch, color="gray", ls="--", lw=1, label="kept (best val loss)"
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend()
    if min(history.train_loss + history.val_loss) > 0:
        ax_loss.set_yscale("log")
    ax_loss.set_title("loss")
    ax_metric.set_title(metric)
    fig.suptitle(title)
    return fig


def compare(results: Sequence[Any]) -> Figure:
    """Several losses on one network: validation metric, and training loss relative to epoch 1."""
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax_metric, ax_loss = fig.subplots(1, 2)
    metric = _METRIC_LABEL.get(results[0].history.metric, results[0].history.metric)
    for r in results:
        h = r.history
        epochs = np.arange(1, h.epochs + 1)
        ax_metric.plot(epochs, h.val_metric, label=r.objective.name)
        ax_loss.plot(epochs, np.asarray(h.train_loss) / h.train_loss[0], label=r.objective.name)
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel(f"validation {metric}")
    ax_metric.set_title(f"validation {metric}")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss / its epoch-1 value")
    ax_loss.set_yscale("log")
    ax_loss.set_title("training loss, relative")
    for ax in (ax_metric, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{results[0].dataset.name}: the same network trained with each loss")
    return fig


def cross_entropy_figure() -> Figure:
    """Cross-entropy against the probability given to the true class: ``-log p``."""
    p = np.linspace(0.005, 1.0, 400)
    probs = np.stack([1 - p, p], axis=1)
    labels = np.ones(p.size, dtype=np.int64)
    loss = lk.sparse_categorical_cross_entropy(probs, labels, reduction="none")
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(p, loss, lw=2, label="L = -log p (cross-entropy)")
    ax.plot(p, (1 - p) ** 2, lw=2, ls="--", label="(1 - p)² (squared error, for contrast)")
    for q in (0.9, 0.5, 0.1):
        v = -np.log(q)
        ax.plot([q], [v], "o", color="C0")
        ax.annotate(
            f"p = {q:g}: L = {v:.2f}",
            (q, v),
            textcoords="offset points",
            xytext=(0, 14) if q > 0.8 else (8, 6),
            ha="center" if q > 0.8 else "left",
        )
    ax.set_xlabel("predicted probability of the true class, p")
    ax.set_ylabel("loss")
    ax.set_ylim(0, 5.5)
    ax.set_title("Cross-entropy: confident and wrong costs without bound")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def binary_cross_entropy_figure() -> Figure:
    """Binary cross-entropy against the predicted probability, for y = 1 and y = 0."""
    p = np.linspace(0.002, 0.998, 400)
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for y, style in ((1.0, "-"), (0.0, "--")):
        loss = lk.binary_cross_entropy(p, np.full_like(p, y), reduction="none")
        formula = "-log p" if y else "-log(1 - p)"
        ax.plot(p, loss, ls=style, lw=2, label=f"y = {y:g}: L = {formula}")
    ax.set_xlabel("predicted probability of class 1, p")
    ax.set_ylabel("loss")
    ax.set_ylim(0, 5.5)
    ax.set_title("Binary cross-entropy for each true label")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center")
    return fig


def mse_vs_mae_figure() -> Figure:
    """Squared and absolute error against the residual, with their gradients."""
    r = np.linspace(-3, 3, 601)
    zeros = np.zeros_like(r)
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax_loss, ax_grad = fig.subplots(1, 2)
    for fn, label in ((lk.mean_squared_error, "MSE: r²"), (lk.mean_absolute_error, "MAE: |r|")):
        value, grad = lk.value_and_grad(fn)(r, zeros, reduction="none")
        ax_loss.plot(r, value, lw=2, label=label)
        glabel = "MSE: 2r" if fn is lk.mean_squared_error else "MAE: sign(r)"
        ax_grad.plot(r, grad, lw=2, label=glabel)
    ax_loss.set_title("loss: MSE punishes large errors more")
    ax_grad.set_title("gradient: MAE's does not shrink near 0")
    ax_loss.set_ylabel("loss")
    ax_grad.set_ylabel("dL/dŷ")
    for ax in (ax_loss, ax_grad):
        ax.set_xlabel("residual r = ŷ - y")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Mean squared error against mean absolute error")
    return fig


def sigmoid_gradient_figure() -> Figure:
    """The gradient reaching the logit through a sigmoid: MSE against cross-entropy, y = 1."""
    z = np.linspace(-8, 8, 801)
    ones = np.ones_like(z)
    p = lk.sigmoid(z)
    ce, dce = lk.value_and_grad(lk.sigmoid_cross_entropy)(z, ones, reduction="none")
    mse, dmse_dp = lk.value_and_grad(lk.mean_squared_error)(p, ones, reduction="none")
    dmse = dmse_dp * p * (1 - p)  # chain rule through the sigmoid: dσ/dz = σ (1 - σ)
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax_loss, ax_grad = fig.subplots(1, 2)
    ax_loss.plot(z, ce, lw=2, label="cross-entropy: -log σ(z)")
    ax_loss.plot(z, mse, lw=2, ls="--", label="MSE: (σ(z) - 1)²")
    ax_grad.plot(z, np.abs(dce), lw=2, label="cross-entropy: |σ(z) - 1|")
    ax_grad.plot(z, np.abs(dmse), lw=2, ls="--", label="MSE: |2 (σ(z) - 1) σ(z)(1 - σ(z))|")
    for ax in (ax_loss, ax_grad):
        ax.axvspan(-8, -2, color="C3", alpha=0.08, label="badly wrong (p < 0.12)")
        ax.set_xlabel("logit z (true label y = 1)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss")
    # Headroom above the gradients (which stay below 1) for the legend: in the corner it
    # would hide the cross-entropy gradient where it turns, around z = -2.
    ax_grad.set_ylim(-0.05, 1.4)
    ax_grad.set_yticks(np.linspace(0, 1, 6))  # no ticks in the headroom: |dL/dz| <= 1
    ax_grad.set_ylabel("|dL/dz|")
    ax_grad.set_title("gradient at the logit")
    fig.suptitle("Through a sigmoid, MSE's gradient vanishes when the prediction is badly wrong")
    return fig


FIGURES: dict[str, Callable[[], Figure]] = {
    "cross-entropy": cross_entropy_figure,
    "binary-cross-entropy": binary_cross_entropy_figure,
    "mse-vs-mae": mse_vs_mae_figure,
    "sigmoid-gradient": sigmoid_gradient_figure,
}
