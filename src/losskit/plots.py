"""Figures: training curves, loss comparisons, and the pictures that explain the losses.

Imported only when a figure is asked for (it imports matplotlib). Figures
are built on :class:`matplotlib.figure.Figure` directly, without pyplot, so
no display and no global backend state are involved; :func:`save` writes
a PNG with the Agg renderer. The explanatory curves are computed with
losskit's own losses and :func:`losskit.value_and_grad`.

Every catalogued loss has a picture, :func:`loss_figure`: the loss and its
gradient along one input, moved over its range while everything else is
held fixed (:func:`loss_slice` says which input and what is held).  The
gradient drawn is the slope of the drawn loss: the analytic gradient from
:func:`losskit.value_and_grad` projected on the direction in which the
slice moves the input (for a slice that moves one coordinate, that
coordinate's partial derivative).

Examples
--------
>>> fig = binary_cross_entropy_figure()
>>> [ax.get_xlabel() for ax in fig.axes]
['predicted probability of class 1, p']
>>> fig = loss_figure("huber")
>>> [ax.get_title() for ax in fig.axes]
['loss', 'gradient']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

import losskit as lk

__all__ = [
    "FIGURES",
    "Curve",
    "LossSlice",
    "binary_cross_entropy_figure",
    "compare",
    "cross_entropy_figure",
    "loss_curves",
    "loss_figure",
    "loss_slice",
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


# -- one picture per loss: the loss and its gradient along one input ----------------------

Build = Callable[[np.ndarray], tuple[tuple[Any, ...], np.ndarray]]
"""Points of the axis -> (the loss's positional arrays, d first array / d axis)."""


@dataclass(frozen=True)
class LossSlice:
    """One input of a loss moved along an axis, everything else held: what a picture shows.

    ``curves`` pairs a legend label with a :data:`Build`; ``coupled`` marks a
    loss whose examples interact (a batch of embeddings), built and evaluated
    one point of the axis at a time with ``reduction="mean"``; otherwise one
    call evaluates every point as one example of a batch (``reduction="none"``).
    """

    xlabel: str  # what the horizontal axis is and what is held fixed
    glabel: str  # the gradient drawn: the slope of the loss along the axis
    s: np.ndarray
    curves: tuple[tuple[str, Build], ...]
    coupled: bool = False
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Curve:
    """A loss and its slope over the points ``s`` of a :class:`LossSlice`."""

    label: str
    s: np.ndarray
    value: np.ndarray
    slope: np.ndarray


def _column(s: np.ndarray, value: float) -> np.ndarray:
    return np.full(s.shape, value)


def _elementwise(truth: float, *, extra: int = 0) -> Build:
    """One element per point: the input is the axis, the truth ``truth`` (extra arrays 1)."""

    def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
        ones = [np.ones_like(s) for _ in range(extra)]
        return (s, _column(s, truth), *ones), np.ones_like(s)

    return build


def _class_row(truth: np.ndarray, others: tuple[float, float] = (1.0, -1.0)) -> Build:
    """Three classes: class 0's input is the axis, the other two held at ``others``."""

    def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
        x = np.empty((s.size, 3))
        x[:, 0] = s
        x[:, 1:] = others
        direction = np.zeros_like(x)
        direction[:, 0] = 1.0
        return (x, np.broadcast_to(truth, (s.size, *truth.shape)).copy()), direction

    return build


def _prob_row(truth: np.ndarray, *, log: bool = False) -> Build:
    """Three classes: class 0's probability (or log) is the axis, the rest shared equally."""

    def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
        p0 = np.exp(s) if log else s
        rest = (1.0 - p0) / 2
        x = np.stack([p0, rest, rest], axis=1)
        if log:  # d log p0 / ds = 1; d log((1 - e^s)/2) / ds = -e^s / (1 - e^s)
            x = np.log(x)
            side = -p0 / (1.0 - p0)
        else:
            side = np.full_like(s, -0.5)
        direction = np.stack([np.ones_like(s), side, side], axis=1)
        return (x, np.broadcast_to(truth, (s.size, *truth.shape)).copy()), direction

    return build


_ONE_HOT = np.array([1.0, 0.0, 0.0])
_SPECIAL: dict[str, Callable[[], LossSlice]] = {}


def _special(name: str) -> Callable[[Callable[[], LossSlice]], Callable[[], LossSlice]]:
    def register(make: Callable[[], LossSlice]) -> Callable[[], LossSlice]:
        _SPECIAL[name] = make
        return make

    return register


@_special("mean_absolute_percentage_error")
def _mape() -> LossSlice:
    return LossSlice(
        "prediction ŷ (target y = 1)",
        "dL/dŷ",
        np.linspace(-1, 3, 401),
        (("y = 1", _elementwise(1.0)),),
    )


@_special("mean_squared_logarithmic_error")
def _msle() -> LossSlice:
    return LossSlice(
        "prediction ŷ (target y = 1)",
        "dL/dŷ",
        np.linspace(0, 4, 401),
        (("y = 1", _elementwise(1.0)),),
    )


@_special("poisson_nll")
def _poisson() -> LossSlice:
    return LossSlice(
        "predicted rate λ = ŷ (observed count y)",
        "dL/dŷ",
        np.linspace(0.05, 6, 400),
        (("y = 2", _elementwise(2.0)), ("y = 0", _elementwise(0.0))),
    )


@_special("gaussian_nll")
def _gaussian() -> LossSlice:
    def with_var(var: float) -> Build:
        def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
            return (s, np.zeros_like(s), _column(s, var)), np.ones_like(s)

        return build

    return LossSlice(
        "prediction ŷ (target y = 0, predicted variance var)",
        "dL/dŷ",
        np.linspace(-3, 3, 401),
        (("var = 1", with_var(1.0)), ("var = 4", with_var(4.0))),
    )


@_special("hinge_embedding")
def _hinge_embedding() -> LossSlice:
    return LossSlice(
        "distance ŷ of a pair (margin 1)",
        "dL/dŷ",
        np.linspace(0, 3, 301),
        (("similar, t = 1", _elementwise(1.0)), ("dissimilar, t = -1", _elementwise(-1.0))),
    )


@_special("kl_divergence")
def _kl() -> LossSlice:
    t = np.array([0.6, 0.2, 0.2])
    return LossSlice(
        "log-probability of class 0, log q_0 (q_1 = q_2)",
        "slope dL/d(log q_0) along the axis",
        np.linspace(np.log(0.02), np.log(0.98), 400),
        (("t = (0.6, 0.2, 0.2)", _prob_row(t, log=True)),),
    )


def _circle_point(s: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(s), np.sin(s)], axis=-1)


def _turning(s: np.ndarray) -> np.ndarray:
    """d (cos s, sin s) / ds."""
    return np.stack([-np.sin(s), np.cos(s)], axis=-1)


@_special("cosine_distance")
def _cosine_distance() -> LossSlice:
    def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
        return (_circle_point(s), np.tile([1.0, 0.0], (s.size, 1))), _turning(s)

    return LossSlice(
        "angle θ of pred = (cos θ, sin θ) from target = (1, 0), in radians",
        "dL/dθ",
        np.linspace(-np.pi, np.pi, 401),
        (("target (1, 0)", build),),
    )


@_special("cosine_embedding")
def _cosine_embedding() -> LossSlice:
    def pairs(t: float) -> Build:
        def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
            x2 = np.tile([1.0, 0.0], (s.size, 1))
            return (_circle_point(s), x2, _column(s, t)), _turning(s)

        return build

    return LossSlice(
        "angle θ of x1 = (cos θ, sin θ) from x2 = (1, 0), in radians (margin 0.5)",
        "dL/dθ",
        np.linspace(-np.pi, np.pi, 401),
        (("similar, t = 1", pairs(1.0)), ("dissimilar, t = -1", pairs(-1.0))),
        options=(("margin", 0.5),),
    )


@_special("margin_ranking")
def _margin_ranking() -> LossSlice:
    def pairs(t: float) -> Build:
        def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
            return (s, np.zeros_like(s), _column(s, t)), np.ones_like(s)

        return build

    return LossSlice(
        "x1 - x2, the first score's lead (x2 = 0, margin 1)",
        "dL/dx1",
        np.linspace(-3, 3, 401),
        (("x1 ranked first, t = 1", pairs(1.0)), ("x2 ranked first, t = -1", pairs(-1.0))),
        options=(("margin", 1.0),),
    )


@_special("triplet_margin")
def _triplet() -> LossSlice:
    def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
        anchor = np.stack([s, np.zeros_like(s)], axis=1)
        positive = np.zeros_like(anchor)
        negative = np.tile([2.0, 0.0], (s.size, 1))
        direction = np.zeros_like(anchor)
        direction[:, 0] = 1.0
        return (anchor, positive, negative), direction

    return LossSlice(
        "anchor a = (s, 0) on the line through the positive (0, 0) and the negative (2, 0)",
        "dL/ds",
        np.linspace(-1, 3, 401),
        (("margin 1, p = 2", build),),
    )


def _embedding_batch(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
    """Three unit embeddings, labels 0, 0, 1: embedding 1 turns away from its positive."""
    e = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    e[1] = _circle_point(s[0])
    direction = np.zeros_like(e)
    direction[1] = _turning(s[0])
    return (e, np.array([0, 0, 1])), direction


def _pairwise(defaults: str) -> LossSlice:
    return LossSlice(
        "angle θ of embedding 1 = (cos θ, sin θ) from its positive, embedding 0",
        "dL/dθ",
        np.linspace(-np.pi, np.pi, 181),
        (("labels 0, 0, 1; e0 = (1, 0), e2 = (-1, 0); " + defaults, _embedding_batch),),
        coupled=True,
    )


@_special("ntxent")
def _ntxent() -> LossSlice:
    return _pairwise("τ = 0.07")


@_special("circle")
def _circle() -> LossSlice:
    return _pairwise("γ = 80, m = 0.4")


@_special("ranking_softmax")
def _ranking_softmax() -> LossSlice:
    return LossSlice(
        "score of item 0, s_0 (s_1 = 1, s_2 = -1)",
        "dL/ds_0",
        np.linspace(-6, 6, 481),
        (("relevances y = (2, 1, 0)", _class_row(np.array([2.0, 1.0, 0.0]))),),
    )


def _one_pixel(k: int) -> Build:
    """Four pixels, targets 1, 1, 0, 0, every one right but pixel ``k``, whose p is the axis."""

    def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
        targets = np.tile([1.0, 1.0, 0.0, 0.0], (s.size, 1))
        probs = targets.copy()
        probs[:, k] = s
        direction = np.zeros_like(probs)
        direction[:, k] = 1.0
        return (probs, targets), direction

    return build


_OVERLAP_AXIS = "p: one pixel's probability (targets 1, 1, 0, 0; the other pixels right)"
_OVERLAP_CURVES = (
    ("a pixel of the target (t = 1): probs (p, 1, 0, 0)", _one_pixel(0)),
    ("a background pixel (t = 0): probs (1, 1, p, 0)", _one_pixel(2)),
)


@_special("dice")
def _dice() -> LossSlice:
    return LossSlice(_OVERLAP_AXIS, "dL/dp", np.linspace(0, 1, 401), _OVERLAP_CURVES)


@_special("tversky")
def _tversky() -> LossSlice:
    return LossSlice(
        _OVERLAP_AXIS + "; α = 0.3, β = 0.7",
        "dL/dp",
        np.linspace(0, 1, 401),
        _OVERLAP_CURVES,
        options=(("alpha", 0.3), ("beta", 0.7)),
    )


@_special("generalized_dice")
def _generalized_dice() -> LossSlice:
    onehot = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # pixels of classes 0, 1, 0

    def pixel(k: int) -> Build:
        def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
            probs = np.broadcast_to(onehot, (s.size, 3, 2)).copy()
            sign = 2 * onehot[k] - 1  # +1 on the pixel's true class, -1 on the other
            probs[:, k] = (1 - onehot[k]) + sign * s[:, None]
            direction = np.zeros_like(probs)
            direction[:, k] = sign
            return (probs, np.broadcast_to(onehot, probs.shape).copy()), direction

        return build

    return LossSlice(
        "p: one pixel's probability of its true class (pixels' classes 0, 1, 0; the rest right)",
        "slope dL/dp along the axis",
        np.linspace(0, 1, 401),
        (("pixel 0, of class 0", pixel(0)), ("pixel 1, of class 1 (the rarer)", pixel(1))),
    )


@_special("ctc")
def _ctc() -> LossSlice:
    def frame0(c: int) -> Build:
        def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
            logits = np.zeros((s.size, 3, 3))  # 3 frames, classes {blank, 1, 2}
            logits[:, 0, c] = s
            direction = np.zeros_like(logits)
            direction[:, 0, c] = 1.0
            return (logits, np.tile([1, 2], (s.size, 1))), direction

        return build

    return LossSlice(
        "logit x of one class at frame 0 (labels (1, 2), 3 frames, blank 0, other logits 0)",
        "dL/dx",
        np.linspace(-6, 6, 481),
        (
            ("class 1, the first label", frame0(1)),
            ("class 2, the second label", frame0(2)),
            ("the blank", frame0(0)),
        ),
    )


@_special("linear_cross_entropy")
def _linear_cross_entropy() -> LossSlice:
    weight = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])

    def build(s: np.ndarray) -> tuple[tuple[Any, ...], np.ndarray]:
        hidden = np.stack([s, np.ones_like(s)], axis=1)
        direction = np.zeros_like(hidden)
        direction[:, 0] = 1.0
        return (hidden, weight, np.zeros(s.size, dtype=np.int64)), direction

    return LossSlice(
        "h_0 of hidden h = (h_0, 1); weight rows (1, 0), (0, 1), (-1, 0): logits (h_0, 1, -h_0)",
        "dL/dh_0",
        np.linspace(-6, 6, 481),
        (("label 0", build),),
    )


def _by_kind(info: Any) -> LossSlice:
    """The slice for a loss of (pred, truth): from the kinds of its input and truth."""
    symbol = {"logits": "z", "scores": "s", "probs": "p", "log_probs": "log q"}.get(info.input, "ŷ")
    if info.per_example:
        truth = {
            "ids": np.array(0),
            "label_sets": np.array([0, -1, -1]),
            "binary": _ONE_HOT,
            "distributions": _ONE_HOT,
        }[info.truth]
        label = {
            "ids": "label y = 0",
            "label_sets": "label set {0}",
            "binary": "targets t = (1, 0, 0)",
            "distributions": "targets t = (1, 0, 0)",
        }[info.truth]
        if info.input in ("logits", "scores"):
            name = "logit" if info.input == "logits" else "score"
            return LossSlice(
                f"{name} of the true class 0, {symbol}_0 ({symbol}_1 = 1, {symbol}_2 = -1)",
                f"dL/d{symbol}_0",
                np.linspace(-6, 6, 481) if info.input == "logits" else np.linspace(-4, 4, 401),
                ((label, _class_row(truth)),),
            )
        if info.input == "probs":
            return LossSlice(
                "probability of the true class 0, p_0 (p_1 = p_2)",
                "slope dL/dp_0 along the axis",
                np.linspace(0.02, 1.0, 393),
                ((label, _prob_row(truth)),),
            )
        if info.input == "log_probs":
            return LossSlice(
                "log-probability of the true class 0, log q_0 (q_1 = q_2)",
                "slope dL/d(log q_0) along the axis",
                np.linspace(np.log(0.02), np.log(0.98), 400),
                ((label, _prob_row(truth, log=True)),),
            )
    if info.truth == "binary":
        grid = np.linspace(0.02, 0.98, 385) if info.input == "probs" else np.linspace(-6, 6, 481)
        what = "probability" if info.input == "probs" else "logit"
        return LossSlice(
            f"predicted {what} {symbol}",
            f"dL/d{symbol}",
            grid,
            (("t = 1", _elementwise(1.0)), ("t = 0", _elementwise(0.0))),
        )
    if info.truth == "signs":
        return LossSlice(
            f"score {symbol}",
            f"dL/d{symbol}",
            np.linspace(-3, 3, 401),
            (("t = 1", _elementwise(1.0)), ("t = -1", _elementwise(-1.0))),
        )
    if info.input == "real" and info.truth == "real" and not info.per_example:
        return LossSlice(
            "prediction ŷ = residual ŷ - y (target y = 0)",
            "dL/dŷ",
            np.linspace(-3, 3, 401),
            (("y = 0", _elementwise(0.0, extra=len(info.extra))),),
        )
    msg = f"no picture is defined for {info.name} (input {info.input}, truth {info.truth})"
    raise ValueError(msg)


def loss_slice(name: str) -> LossSlice:
    """What :func:`loss_figure` draws for the loss ``name`` (a catalogue name or alias)."""
    from .catalogue import lookup

    info = lookup(name)
    if info.name in _SPECIAL:
        return _SPECIAL[info.name]()
    return _by_kind(info)


def loss_curves(name: str) -> list[Curve]:
    """The loss and its slope along :func:`loss_slice`, one :class:`Curve` per legend entry.

    The slope is ``value_and_grad``'s gradient with respect to the first
    argument, summed against the direction in which the axis moves it.
    """
    from .catalogue import lookup

    info = lookup(name)
    sl = loss_slice(info.name)
    options = dict(sl.options)
    vg = lk.value_and_grad(info.fn)
    curves = []
    for label, build in sl.curves:
        if sl.coupled:
            values, slopes = [], []
            for point in sl.s:
                args, direction = build(np.array([point]))
                v, g = vg(*args, reduction="mean", **options)
                g = g[0] if isinstance(g, tuple) else g  # several gradients: the first's
                values.append(float(v))
                slopes.append(float(np.sum(np.asarray(g) * direction)))
            value, slope = np.array(values), np.array(slopes)
        else:
            args, direction = build(sl.s)
            v, g = vg(*args, reduction="none", **options)
            g = g[0] if isinstance(g, tuple) else g  # several gradients: the first's
            value = np.asarray(v, dtype=np.float64).reshape(sl.s.size, -1).sum(axis=1)
            prod = np.asarray(g, dtype=np.float64) * direction
            slope = prod.reshape(sl.s.size, -1).sum(axis=1)
        curves.append(Curve(label, sl.s, value, slope))
    return curves


def loss_figure(name: str) -> Figure:
    """The loss ``name`` and its gradient along one input (:func:`loss_slice`)."""
    from .catalogue import lookup

    info = lookup(name)
    sl = loss_slice(info.name)
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax_loss, ax_grad = fig.subplots(1, 2)
    for k, c in enumerate(loss_curves(info.name)):
        style = "-" if k == 0 else "--"
        ax_loss.plot(c.s, c.value, lw=2, ls=style, label=c.label)
        ax_grad.plot(c.s, c.slope, lw=2, ls=style, label=c.label)
    ax_loss.set_ylabel("loss" + (" (mean over the batch)" if sl.coupled else ""))
    ax_grad.set_ylabel(sl.glabel)
    ax_grad.axhline(0.0, color="gray", lw=0.8)
    for ax, title in ((ax_loss, "loss"), (ax_grad, "gradient")):
        ax.set_xlabel(sl.xlabel, wrap=True)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{info.name}: the loss and its gradient along one input")
    return fig


FIGURES: dict[str, Callable[[], Figure]] = {
    "cross-entropy": cross_entropy_figure,
    "binary-cross-entropy": binary_cross_entropy_figure,
    "mse-vs-mae": mse_vs_mae_figure,
    "sigmoid-gradient": sigmoid_gradient_figure,
}
