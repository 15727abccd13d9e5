"""The detailed steps of ``losskit explain`` for the eight losses of the tutorials.

Each step is computed here by hand with NumPy, from the formulas the
tutorials use (softmax, log-sum-exp, clipping, the sigmoid), so that the
library's result can be checked against an independent computation.  The
other losses are explained from their catalogue formula and checked against
finite differences instead (:mod:`losskit.cli._fd`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..catalogue import LossInfo

Step = tuple[str, str, Any]

# The options each hand-written explanation follows; with any other option
# (class_weight, ignore_index, ...) the general explanation is used.
HANDLED = {
    "softmax_cross_entropy": {"label_smoothing"},
    "sparse_softmax_cross_entropy": {"label_smoothing"},
    "categorical_cross_entropy": {"eps"},
    "sparse_categorical_cross_entropy": {"eps"},
    "binary_cross_entropy": {"eps"},
    "sigmoid_cross_entropy": {"label_smoothing", "pos_weight"},
    "mean_squared_error": set(),
    "mean_absolute_error": set(),
}
EPS = 1e-7  # the probability losses' default clipping


def handles(info: LossInfo, opts: dict[str, Any]) -> bool:
    return info.name in HANDLED and set(opts) <= HANDLED[info.name]


def _xlogy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a log b`` with ``0 log 0 = 0`` (a term with no weight adds nothing)."""
    return np.where(a == 0, 0.0, a * np.log(b))


def _xdivy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` with ``0 / 0 = 0``."""
    return np.where(a == 0, 0.0, a / b)


def hand_steps(
    info: LossInfo, x: np.ndarray, t: np.ndarray, opts: dict[str, Any]
) -> tuple[list[Step], float, np.ndarray]:
    """Hand-computed steps ``(what, formula, value)``, the loss and the gradient.

    ``info`` is one of :data:`HANDLED` with only its handled options in ``opts``.
    """
    import losskit as lk

    steps: list[Step] = []
    name, eps_ls = info.name, float(opts.get("label_smoothing", 0.0))
    if info.input == "logits" and info.truth in ("ids", "distributions"):
        C = x.size
        m = x.max()
        steps.append(("shift by the largest logit (stability)", "z - max(z)", x - m))
        e = np.exp(x - m)
        steps.append(("exponentiate", "e^(z - max z)", e))
        p = e / e.sum()
        steps.append(("normalise: softmax", "p = e^(z - max z) / Σ e^(z - max z)", p))
        lse = m + np.log(e.sum())
        steps.append(("log-sum-exp", "logsumexp(z) = max z + log Σ e^(z - max z)", lse))
        onehot = np.eye(C)[int(t)] if info.truth == "ids" else t
        if eps_ls:
            onehot = (1 - eps_ls) * onehot + eps_ls / C
            steps.append(
                ("smooth the targets", f"t' = (1 - {eps_ls:g}) t + {eps_ls:g}/{C}", onehot)
            )
        logp = x - lse
        steps.append(("log-probabilities", "log p = z - logsumexp(z)", logp))
        if info.truth == "ids" and not eps_ls:
            y = int(t)
            steps.append((f"log-probability of the true class y = {y}", "log p_y", logp[y]))
            loss = -logp[y]
            steps.append(("loss: negative log-likelihood", "L = -log p_y", loss))
            grad = p - onehot
            steps.append(("gradient", "dL/dz = p - onehot(y)", grad))
        else:
            tt = "t'" if eps_ls else "t"
            loss = float(-(onehot * logp).sum())
            steps.append(("loss: cross-entropy", f"L = -Σ_c {tt}_c log p_c", loss))
            grad = p * onehot.sum() - onehot
            steps.append(("gradient", f"dL/dz = p·Σ{tt} - {tt}", grad))
        return steps, float(loss), grad
    if info.input == "probs" and info.truth in ("ids", "distributions"):
        eps = float(opts.get("eps", EPS))
        onehot = np.eye(x.size)[int(t)] if info.truth == "ids" else t
        steps.append(("probabilities sum to", "Σ p", x.sum()))
        pc = np.clip(x, eps, 1 - eps)
        steps.append(("clip away from 0 and 1", f"p̃ = clip(p, {eps:g}, 1 - {eps:g})", pc))
        inside = (x >= eps) & (x <= 1 - eps)
        if info.truth == "ids":
            y = int(t)
            steps.append((f"probability of the true class y = {y}", "p̃_y", pc[y]))
            steps.append(("its log", "log p̃_y", np.log(pc[y])))
            loss = -np.log(pc[y])
            steps.append(("loss", "L = -log p̃_y", loss))
            grad = np.where(inside & (onehot != 0), -onehot / pc, 0.0)
            steps.append(("gradient (0 where clipped)", "dL/dp_c = -[c = y] / p̃_y", grad))
        else:
            steps.append(("log-probabilities", "log p̃", np.log(pc)))
            loss = float(-_xlogy(onehot, pc).sum())
            steps.append(("loss: cross-entropy", "L = -Σ_c t_c log p̃_c  (0 log 0 = 0)", loss))
            grad = np.where(inside & (onehot != 0), -onehot / pc, 0.0)
            steps.append(("gradient (0 where clipped)", "dL/dp_c = -t_c / p̃_c", grad))
        return steps, float(loss), grad
    n = x.size
    if name == "sigmoid_cross_entropy":
        if eps_ls:
            t = t * (1 - eps_ls) + eps_ls / 2
            steps.append(("smooth the targets", f"t' = t (1 - {eps_ls:g}) + {eps_ls:g}/2", t))
        sig = np.asarray(lk.sigmoid(x))
        steps.append(("probability of class 1: sigmoid", "p = σ(z) = 1 / (1 + e^-z)", sig))
        if opts.get("pos_weight") is not None:
            q = float(opts["pos_weight"])
            softplus_neg = -np.asarray(lk.log_sigmoid(x))
            steps.append(("log(1 + e^-z), stably", "softplus(-z) = -log σ(z)", softplus_neg))
            per = (1 - t) * x + (1 + (q - 1) * t) * softplus_neg
            steps.append(
                ("loss per element", f"L = (1-t) z + (1 + ({q:g}-1) t) log(1 + e^-z)", per)
            )
            g = (1 - t) - (1 + (q - 1) * t) * np.asarray(lk.sigmoid(-x))
            steps.append(("gradient per element", "dL/dz = (1-t) - (1 + (q-1) t) σ(-z)", g))
        else:
            softplus = -np.asarray(lk.log_sigmoid(-x))
            steps.append(("log(1 + e^z), stably", "softplus(z) = -log σ(-z)", softplus))
            per = softplus - x * t
            steps.append(
                ("loss per element", "L = softplus(z) - z t = -[t log p + (1-t) log(1-p)]", per)
            )
            g = sig - t
            steps.append(("gradient per element", "dL/dz = σ(z) - t", g))
    elif name == "binary_cross_entropy":
        eps = float(opts.get("eps", EPS))
        pc = np.clip(x, eps, 1 - eps)
        steps.append(("clip away from 0 and 1", f"p̃ = clip(p, {eps:g}, 1 - {eps:g})", pc))
        steps.append(
            ("log-probabilities", "log p̃, log(1 - p̃)", np.concatenate([np.log(pc), np.log1p(-pc)]))
        )
        per = -(_xlogy(t, pc) + _xlogy(1 - t, 1 - pc))
        steps.append(("loss per element", "L = -[t log p̃ + (1-t) log(1-p̃)]  (0 log 0 = 0)", per))
        inside = (x >= eps) & (x <= 1 - eps)
        g = np.where(inside, _xdivy(-t, pc) + _xdivy(1 - t, 1 - pc), 0.0)
        steps.append(("gradient per element (0 where clipped)", "dL/dp = -t/p̃ + (1-t)/(1-p̃)", g))
    elif name == "mean_squared_error":
        r = x - t
        steps.append(("residual", "r = ŷ - y", r))
        per = r * r
        steps.append(("loss per element", "L = r²", per))
        g = 2 * r
        steps.append(("gradient per element", "dL/dŷ = 2 r", g))
    elif name == "mean_absolute_error":
        r = x - t
        steps.append(("residual", "r = ŷ - y", r))
        per = np.abs(r)
        steps.append(("loss per element", "L = |r|", per))
        g = np.sign(r)
        steps.append(("gradient per element", "dL/dŷ = sign(r)", g))
    else:  # pragma: no cover - handles() admits only the losses above
        raise AssertionError(name)
    if n > 1:
        steps.append((f"mean over the {n} elements", "L = (1/n) Σ L_i", per.mean()))
        steps.append(("gradient of the mean", "dL/dx_i = (1/n) dL_i/dx_i", g / n))
    return steps, float(per.mean()), g / n
