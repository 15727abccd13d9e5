"""Every loss by name: what it takes, what truth it compares against, what task it fits.

The training loop, ``losskit list``, ``eval`` and ``explain`` all read this
one table, so a loss added to the core becomes usable everywhere by adding a
row here. Each row names the family module of :mod:`losskit.losses` that
defines the loss; the function is imported from there when first used
(``info.fn``), so importing the catalogue imports no loss code.

A loss of more arrays than a prediction and a truth names them: ``inputs``
are the arrays between the first and the truth (``cosine_embedding``'s
``x2``, ``triplet_margin``'s ``positive`` and ``negative``; its truth is
``"none"``), ``extra`` those after the truth (``gaussian_nll``'s ``var``).
``explain_as`` tells ``losskit explain`` to take every array by its name;
``example`` holds the arguments of ``losskit explain`` that the reference
site runs for the loss (:func:`explain_example` derives them otherwise).

``nll`` names :func:`~losskit.losses.likelihood.negative_log_likelihood`
(log-probabilities, PyTorch's ``nll_loss``). Until issue 8 it named
``sparse_categorical_cross_entropy`` (probabilities): that name still works,
and probabilities given to ``nll`` are refused with an error, never read as
log-probabilities.

Examples
--------
>>> info = lookup("mse")
>>> info.name, info.input, info.truth, info.family
('mean_squared_error', 'real', 'real', 'regression')
>>> default_loss("binary")
'sigmoid_cross_entropy'
>>> [i.name for i in fits("binary")][:2]
['softmax_cross_entropy', 'sparse_softmax_cross_entropy']
>>> lookup("nll").name
'negative_log_likelihood'
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CATALOGUE",
    "FAMILIES",
    "INPUTS",
    "TASKS",
    "TRUTHS",
    "LossInfo",
    "UnknownLossError",
    "counterpart",
    "default_loss",
    "explain_example",
    "fits",
    "lookup",
    "names",
]

INPUTS = {
    "logits": "logits (any real scores)",
    "probs": "probabilities in [0, 1]",
    "log_probs": "log-probabilities (<= 0, e.g. log_softmax output)",
    "scores": "real scores (margins, no activation)",
    "rates": "Poisson rates >= 0 (log-rates with log_input)",
    "real": "real-valued predictions",
    "embeddings": "embedding vectors (features on the last axis)",
    "hidden": "hidden states (features on the last axis), before the output layer",
}
TRUTHS = {
    "ids": "integer class ids",
    "distributions": "class distributions (one-hot or soft)",
    "binary": "0/1 (or soft) targets",
    "signs": "-1/1 targets",
    "label_sets": "class ids per example, ended by -1 (multi-label)",
    "counts": "non-negative counts",
    "real": "real values",
    "groups": "a class id per embedding (equal ids make positive pairs)",
    "relevance": "relevance of each item (>= 0; not normalised)",
    "none": "no truth (the positive and the negative say which is which)",
    "sequences": "label sequences (class ids, no blank; padded)",
}
TASKS = ("multiclass", "binary", "regression")
FAMILIES = {
    "cross_entropy": "cross-entropy",
    "binary": "binary cross-entropy",
    "focal": "focal and robust cross-entropies",
    "sparsemax": "sparsemax",
    "likelihood": "likelihoods and divergences",
    "regression": "regression",
    "margin": "margins and hinges",
    "similarity": "similarity and pairs",
    "contrastive": "contrastive",
    "ranking": "listwise ranking",
    "segmentation": "segmentation overlap",
    "sequence": "sequences (CTC)",
    "large_vocab": "large-vocabulary heads",
}


@dataclass(frozen=True)
class LossInfo:
    """One row of the catalogue."""

    name: str
    input: str  # a key of INPUTS
    truth: str  # a key of TRUTHS
    tasks: tuple[str, ...]  # which training tasks it can drive (see train.objective)
    summary: str
    formula: str  # the loss of one example (or element)
    gradient: str  # d loss / d input, for one example
    replaces: str = ""  # the anchors' names (Keras, PyTorch, optax) it replaces
    aliases: tuple[str, ...] = field(default=())
    extra: tuple[str, ...] = field(default=())  # arrays after the truth (gaussian_nll's var)
    uses: str = ""  # the mapping the formula reads (softmax, sigmoid, sparsemax, exp)
    family: str = ""  # the module of losskit.losses that defines it (a key of FAMILIES)
    inputs: tuple[str, ...] = field(default=())  # arrays between the first and the truth
    example: tuple[str, ...] = field(default=())  # `losskit explain NAME` arguments (else derived)
    # How `losskit explain` reads the arrays: "" the input and truth of one example as flat
    # values (--logits, --label, ...); "batch" every positional array by its parameter's name
    # (--x1, --anchor, --embeddings ...), rows split by ";", as the batch itself; "example"
    # the same, as one example (a batch axis of 1 added).
    explain_as: str = ""

    @property
    def fn(self) -> Callable[..., Any]:
        """The loss function, from its family module (imported on first use).

        The family module is the loss's one home; :mod:`losskit` re-exports
        the same object, but a loss is usable here before it is exported.
        """
        module = importlib.import_module(f"losskit.losses.{self.family}")
        fn: Callable[..., Any] = getattr(module, self.name)
        return fn

    @property
    def per_example(self) -> bool:
        """One value per example (the class axis summed), not one per element.

        The shells that reduce over classes (``rowwise_loss``, ``sparse_loss``,
        the softmax family's) are the ones whose public signature has ``axis``.
        """
        return "axis" in inspect.signature(self.fn).parameters

    def fits(self, task: str) -> bool:
        return task in self.tasks


def _family(family: str, rows: list[LossInfo]) -> list[LossInfo]:
    return [dataclasses.replace(row, family=family) for row in rows]


_CLASSIFY = ("multiclass", "binary")

CATALOGUE: dict[str, LossInfo] = {
    info.name: info
    for info in [
        *_family(
            "cross_entropy",
            [
                LossInfo(
                    "softmax_cross_entropy",
                    "logits",
                    "distributions",
                    _CLASSIFY,
                    "Cross-entropy of softmax(logits) against a class distribution "
                    "(one-hot or soft).",
                    "L = -Σ_c t_c log softmax(z)_c",
                    "dL/dz = softmax(z)·Σ_c t_c - t",
                    "tf.nn.softmax_cross_entropy_with_logits",
                    uses="softmax",
                ),
                LossInfo(
                    "sparse_softmax_cross_entropy",
                    "logits",
                    "ids",
                    _CLASSIFY,
                    "The usual classifier loss: -log softmax(logits)[label] for integer class ids.",
                    "L = logsumexp(z) - z_y = -log softmax(z)_y",
                    "dL/dz = softmax(z) - onehot(y)",
                    "torch F.cross_entropy, tf.nn.sparse_softmax_cross_entropy_with_logits",
                    ("cross_entropy", "ce", "xent"),
                    uses="softmax",
                ),
                LossInfo(
                    "categorical_cross_entropy",
                    "probs",
                    "distributions",
                    _CLASSIFY,
                    "Cross-entropy of probabilities (after a softmax) against a class "
                    "distribution.",
                    "L = -Σ_c t_c log clip(p_c, eps, 1-eps)",
                    "dL/dp_c = -t_c / p_c",
                    "keras categorical_crossentropy",
                ),
                LossInfo(
                    "sparse_categorical_cross_entropy",
                    "probs",
                    "ids",
                    _CLASSIFY,
                    "Negative log of the probability given to the true class, for integer "
                    "class ids.",
                    "L = -log clip(p_y, eps, 1-eps)",
                    "dL/dp_c = -[c = y] / p_y",
                    "keras sparse_categorical_crossentropy",
                ),
            ],
        ),
        *_family(
            "binary",
            [
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
                    uses="sigmoid",
                ),
            ],
        ),
        *_family(
            "focal",
            [
                LossInfo(
                    "sigmoid_focal_loss",
                    "logits",
                    "binary",
                    ("binary",),
                    "Sigmoid cross-entropy scaled by (1 - p_t)^γ: easy examples count less "
                    "(Lin et al. 2017).",
                    "L = α_t (1 - p_t)^γ ce;  ce = log(1 + e^z) - t z, 1 - p_t = t σ(-z) + "
                    "(1-t) σ(z), α_t = α t + (1-α)(1-t) (1 if alpha is None)",
                    "dL/dz = α_t (1 - p_t)^γ [σ(z) - t + γ (1 - 2t) ce σ(z) σ(-z) / (1 - p_t)]",
                    "optax sigmoid_focal_loss, keras binary_focal_crossentropy(from_logits=True)",
                    uses="sigmoid",
                ),
                LossInfo(
                    "binary_focal_cross_entropy",
                    "probs",
                    "binary",
                    ("binary",),
                    "Binary cross-entropy of probabilities scaled by (1 - p_t)^γ (Keras's "
                    "focal loss).",
                    "L = α_t (1 - p_t)^γ ce;  ce = -t log p̃ - (1-t) log(1 - p̃), "
                    "p̃ = clip(p, eps, 1-eps), 1 - p_t = t (1-p) + (1-t) p, "
                    "α_t = 1 if alpha is None",
                    "dL/dp = α_t [(1 - p_t)^γ (p̃ - t) / (p̃ (1 - p̃)) "
                    "+ γ (1 - p_t)^(γ-1) (1 - 2t) ce]"
                    "  (the first term 0 where clipped)",
                    "keras binary_focal_crossentropy",
                    ("binary_focal_crossentropy",),
                ),
                LossInfo(
                    "categorical_focal_cross_entropy",
                    "probs",
                    "distributions",
                    _CLASSIFY,
                    "Categorical cross-entropy with each class's term scaled by α (1 - p_c)^γ.",
                    "L = -Σ_c α (1 - p̃_c)^γ t_c log p̃_c,  p̃ = clip(p, eps, 1-eps)",
                    "dL/dp_c = α t_c [γ (1 - p̃_c)^(γ-1) log p̃_c - (1 - p̃_c)^γ / p̃_c]"
                    "  (0 where clipped)",
                    "keras categorical_focal_crossentropy",
                    ("categorical_focal_crossentropy",),
                ),
                LossInfo(
                    "softmax_focal_loss",
                    "logits",
                    "ids",
                    _CLASSIFY,
                    "Focal loss of integer labels under softmax(logits), the "
                    "dense-prediction form.",
                    "L = -(1 - p_y)^γ log p_y,  p = softmax(z)",
                    "dL/dz_c = (1 - p_y)^γ (1 + γ p_y (-log p_y) / (1 - p_y)) (p_c - [c = y])",
                    "torchvision/detectron2's softmax focal loss (Keras, PyTorch and optax "
                    "have none)",
                    uses="softmax",
                ),
                LossInfo(
                    "generalized_cross_entropy",
                    "probs",
                    "ids",
                    _CLASSIFY,
                    "Noise-robust cross-entropy (1 - p_y^q)/q: CE as q → 0, MAE at q = 1.",
                    "L = (1 - p_y^q) / q",
                    "dL/dp_c = -[c = y] p_y^(q-1)",
                    "keras categorical_generalized_cross_entropy",
                ),
                LossInfo(
                    "poly1_cross_entropy",
                    "logits",
                    "distributions",
                    _CLASSIFY,
                    "Softmax cross-entropy plus ε (1 - p_t), the Poly-1 loss (Leng et al. 2022).",
                    "L = -Σ_c t_c log p_c + ε Σ_c t_c (1 - p_c),  p = softmax(z)",
                    "dL/dz = (Σ_c t_c) p - t - ε p ⊙ (t - ⟨t, p⟩)",
                    "optax poly_loss_cross_entropy",
                    ("poly_loss_cross_entropy",),
                    uses="softmax",
                ),
            ],
        ),
        *_family(
            "sparsemax",
            [
                LossInfo(
                    "sparsemax_loss",
                    "logits",
                    "ids",
                    _CLASSIFY,
                    "Fenchel-Young loss of sparsemax: probabilities with exact zeros, a margin "
                    "of zero loss.",
                    "L = ⟨p, z - z_y⟩ + ½ (1 - ‖p‖²),  p = sparsemax(z)",
                    "dL/dz = sparsemax(z) - onehot(y)",
                    "optax sparsemax_loss, multiclass_sparsemax_loss",
                    ("multiclass_sparsemax_loss",),
                    uses="sparsemax",
                ),
            ],
        ),
        *_family(
            "likelihood",
            [
                LossInfo(
                    "poisson_nll",
                    "rates",
                    "counts",
                    (),
                    "Poisson negative log-likelihood of counts under predicted rates.",
                    "L = λ - y log(λ + eps), λ = ŷ  (log_input: L = e^ŷ - y ŷ; full: + Stirling's "
                    "log y! for y > 1)",
                    "dL/dŷ = 1 - y / (ŷ + eps)  (log_input: e^ŷ - y)",
                    "keras poisson (eps=1e-7), torch F.poisson_nll_loss (whose default is "
                    "log_input=True)",
                ),
                LossInfo(
                    "gaussian_nll",
                    "real",
                    "real",
                    (),
                    "Gaussian negative log-likelihood with a predicted variance per output.",
                    "L = ½ (log ṽ + (ŷ - y)² / ṽ),  ṽ = max(var, eps)  (full: + ½ log 2π)",
                    "dL/dŷ = (ŷ - y) / ṽ",
                    "torch F.gaussian_nll_loss",
                    ("gaussian_nll_loss",),
                    extra=("var",),
                ),
                LossInfo(
                    "kl_divergence",
                    "log_probs",
                    "distributions",
                    (),
                    "Kullback-Leibler divergence KL(targets ‖ predictions) of log-probabilities.",
                    "L = Σ_c t_c (log t_c - log q_c)  (0 log 0 = 0; log_target: t = e^s)",
                    "dL/d(log q_c) = -t_c",
                    "keras kl_divergence (on probabilities), torch F.kl_div (batchmean), "
                    "optax kl_divergence",
                    ("kld", "kl_div"),
                    uses="exp",
                ),
                LossInfo(
                    "negative_log_likelihood",
                    "log_probs",
                    "ids",
                    (),
                    "Negative log-probability of the true class (log_softmax output in, as torch).",
                    "L = -log q_y",
                    "dL/d(log q_c) = -[c = y]",
                    "torch F.nll_loss",
                    ("nll", "nll_loss"),
                    uses="exp",
                ),
            ],
        ),
        *_family(
            "regression",
            [
                LossInfo(
                    "mean_squared_error",
                    "real",
                    "real",
                    ("regression", *_CLASSIFY),
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
                    ("regression", *_CLASSIFY),
                    "Absolute error; robust to outliers, constant-size gradient.",
                    "L = |ŷ - y|",
                    "dL/dŷ = sign(ŷ - y)",
                    "keras mean_absolute_error, torch F.l1_loss",
                    ("mae", "l1"),
                ),
                LossInfo(
                    "huber",
                    "real",
                    "real",
                    ("regression",),
                    "Squared error within delta of the target, absolute error beyond: robust "
                    "and smooth.",
                    "L = ½ e² if |e| ≤ δ, else δ (|e| - ½ δ);  e = ŷ - y",
                    "dL/dŷ = clip(e, -δ, δ)",
                    "keras huber, torch F.huber_loss (F.smooth_l1_loss(beta) is "
                    "huber(delta=beta) / beta), optax huber_loss",
                    ("huber_loss",),
                ),
                LossInfo(
                    "log_cosh",
                    "real",
                    "real",
                    ("regression",),
                    "Log of the hyperbolic cosine of the error: squared near 0, absolute far out.",
                    "L = log cosh(ŷ - y)",
                    "dL/dŷ = tanh(ŷ - y)",
                    "keras log_cosh, optax log_cosh",
                    ("logcosh",),
                ),
                LossInfo(
                    "mean_absolute_percentage_error",
                    "real",
                    "real",
                    (),
                    "Absolute error as a percentage of the target (explodes for targets near 0).",
                    "L = 100 |ŷ - y| / max(|y|, 1e-7)",
                    "dL/dŷ = 100 sign(ŷ - y) / max(|y|, 1e-7)",
                    "keras mean_absolute_percentage_error (mape)",
                    ("mape",),
                ),
                LossInfo(
                    "mean_squared_logarithmic_error",
                    "real",
                    "real",
                    (),
                    "Squared error of log(1 + x): relative errors, for targets >= 0.",
                    "L = (log(1 + max(ŷ, ε)) - log(1 + max(y, ε)))²,  ε = 1e-7",
                    "dL/dŷ = 2 (log(1 + ŷ) - log(1 + max(y, ε))) / (1 + ŷ)  (0 where ŷ < ε)",
                    "keras mean_squared_logarithmic_error (msle)",
                    ("msle",),
                ),
            ],
        ),
        *_family(
            "margin",
            [
                LossInfo(
                    "hinge",
                    "scores",
                    "signs",
                    (),
                    "The SVM loss: 0 once the score has the target's sign with a margin of 1.",
                    "L = max(0, 1 - t ŷ)  (targets all 0/1 are read as -1/1)",
                    "dL/dŷ = -t [1 - t ŷ > 0]  (-t/2 at the kink)",
                    "keras hinge, optax hinge_loss",
                    ("hinge_loss",),
                ),
                LossInfo(
                    "squared_hinge",
                    "scores",
                    "signs",
                    (),
                    "The squared SVM loss (L2-SVM): smooth at the margin.",
                    "L = max(0, 1 - t ŷ)²  (targets all 0/1 are read as -1/1)",
                    "dL/dŷ = -2 t max(0, 1 - t ŷ)",
                    "keras squared_hinge",
                ),
                LossInfo(
                    "categorical_hinge",
                    "scores",
                    "distributions",
                    (),
                    "The best wrong score against the true one, with a margin of 1 (Keras).",
                    "L = max(0, 1 + max_c (1 - t_c) ŷ_c - Σ_c t_c ŷ_c)",
                    "dL/dŷ_c = [L > 0] ((1 - t_c) a_c - t_c),  a: 1 at the best wrong class "
                    "(ties share it)",
                    "keras categorical_hinge",
                ),
                LossInfo(
                    "multiclass_hinge",
                    "scores",
                    "ids",
                    (),
                    "Crammer-Singer multiclass hinge: the true score must beat every other by 1.",
                    "L = max_c (s_c + [c ≠ y]) - s_y",
                    "dL/ds_c = a_c - [c = y],  a: 1 at the maximising class (ties share it)",
                    "optax multiclass_hinge_loss",
                    ("multiclass_hinge_loss",),
                ),
                LossInfo(
                    "multi_margin",
                    "scores",
                    "ids",
                    (),
                    "Weston-Watkins multiclass margin: every wrong class within the margin counts.",
                    "L = (1/C) Σ_{c≠y} h_c^p,  h_c = max(0, margin - s_y + s_c)",
                    "dL/ds_c = p h_c^(p-1) [h_c > 0] / C  (c ≠ y),  dL/ds_y = -Σ_{c≠y} dL/ds_c",
                    "torch F.multi_margin_loss",
                    ("multi_margin_loss",),
                ),
                LossInfo(
                    "multilabel_margin",
                    "scores",
                    "label_sets",
                    (),
                    "Multi-label margin: every target class above every other class by 1.",
                    "L = (1/C) Σ_{j∈Y} Σ_{i∉Y} h_ji,  h_ji = max(0, 1 - (s_j - s_i))",
                    "dL/ds_k = (1/C) (Σ_{j∈Y} [h_jk > 0] [k ∉ Y] - [k ∈ Y] Σ_{i∉Y} [h_ki > 0])",
                    "torch F.multilabel_margin_loss",
                    ("multilabel_margin_loss",),
                ),
                LossInfo(
                    "soft_margin",
                    "scores",
                    "signs",
                    (),
                    "Logistic loss of a score against a -1/1 target.",
                    "L = log(1 + e^(-t ŷ))",
                    "dL/dŷ = -t σ(-t ŷ)",
                    "torch F.soft_margin_loss",
                    ("soft_margin_loss",),
                ),
                LossInfo(
                    "multilabel_soft_margin",
                    "logits",
                    "binary",
                    _CLASSIFY,
                    "One-vs-all sigmoid cross-entropy, averaged over the classes of each example.",
                    "L = (1/C) Σ_c w_c [t_c log(1 + e^-z_c) + (1 - t_c) log(1 + e^z_c)]",
                    "dL/dz_c = w_c (σ(z_c) - t_c) / C",
                    "torch F.multilabel_soft_margin_loss",
                    ("multilabel_soft_margin_loss",),
                    uses="sigmoid",
                ),
                LossInfo(
                    "hinge_embedding",
                    "real",
                    "signs",
                    (),
                    "For pairs: the distance when similar (1), max(0, margin - distance) when "
                    "not (-1).",
                    "L = ŷ if t = 1, max(0, margin - ŷ) if t = -1",
                    "dL/dŷ = 1 if t = 1, -[margin - ŷ > 0] if t = -1  (-1/2 at the kink)",
                    "torch F.hinge_embedding_loss",
                    ("hinge_embedding_loss",),
                ),
                LossInfo(
                    "perceptron",
                    "scores",
                    "signs",
                    (),
                    "The hinge without a margin: 0 once the score has the target's sign.",
                    "L = max(0, -t s)",
                    "dL/ds = -t [t s < 0]  (-t/2 at s = 0)",
                    "optax perceptron_loss",
                    ("perceptron_loss",),
                ),
                LossInfo(
                    "multiclass_perceptron",
                    "scores",
                    "ids",
                    (),
                    "The best score minus the true class's score (the multiclass perceptron).",
                    "L = max_c s_c - s_y",
                    "dL/ds_c = a_c - [c = y],  a: 1 at the maximising class (ties share it)",
                    "optax multiclass_perceptron_loss",
                    ("multiclass_perceptron_loss",),
                ),
            ],
        ),
        *_family(
            "similarity",
            [
                LossInfo(
                    "cosine_distance",
                    "real",
                    "real",
                    (),
                    "One minus the cosine similarity of a prediction and a target vector.",
                    "L = 1 - ⟨x, y⟩ / (N(x) N(y)),  N(v) = max(‖v‖, eps)",
                    "dL/dx = -(y / N(y) - cos [‖x‖ > eps] x / N(x)) / N(x)",
                    "keras cosine_similarity/CosineSimilarity (which returns -cos), "
                    "optax cosine_distance, cosine_similarity (1 - this)",
                ),
                LossInfo(
                    "cosine_embedding",
                    "embeddings",
                    "signs",
                    (),
                    "For pairs of embeddings: 1 - cos when similar (1), max(0, cos - margin) "
                    "when not (-1).",
                    "L = 1 - cos(x1, x2) if t = 1, max(0, cos(x1, x2) - margin) if t = -1",
                    "dL/dx1 = -dcos/dx1 if t = 1, [cos > margin] dcos/dx1 if t = -1;  "
                    "dcos/dx1 = x2 / (‖x1‖ ‖x2‖) - cos x1 / ‖x1‖²",
                    "torch F.cosine_embedding_loss, nn.CosineEmbeddingLoss",
                    ("cosine_embedding_loss",),
                    inputs=("x2",),
                    example=(
                        "--x1",
                        "1,0;0.6,0.8",
                        "--x2",
                        "0.8,0.6;0,1",
                        "--targets",
                        "1,-1",
                        "--margin",
                        "0.2",
                    ),
                    explain_as="batch",
                ),
                LossInfo(
                    "margin_ranking",
                    "scores",
                    "signs",
                    (),
                    "For pairs of scores: x1 above x2 by the margin when t = 1, below when t = -1.",
                    "L = max(0, margin - t (x1 - x2))",
                    "dL/dx1 = -t [margin - t (x1 - x2) > 0]  (-t/2 at the kink)",
                    "torch F.margin_ranking_loss, nn.MarginRankingLoss",
                    ("margin_ranking_loss",),
                    inputs=("x2",),
                    example=(
                        "--x1",
                        "1,2",
                        "--x2",
                        "0.5,3",
                        "--targets",
                        "1,1",
                        "--margin",
                        "0.2",
                    ),
                    explain_as="batch",
                ),
                LossInfo(
                    "triplet_margin",
                    "embeddings",
                    "none",
                    (),
                    "The anchor nearer its positive than its negative by a margin (p-norm "
                    "distances).",
                    "L = max(0, margin + d(a, p) - d(a, n)),  d(x, y) = ‖x - y + eps‖_p",
                    "dL/da = [L > 0] (∂d(a, p)/∂a - ∂d(a, n)/∂a),  "
                    "∂d/∂x_i = sign(v_i) (|v_i| / d)^(p-1), v = x - y + eps",
                    "torch F.triplet_margin_loss, nn.TripletMarginLoss "
                    "(triplet_margin_with_distance_loss: the adapter takes the distance), "
                    "optax triplet_margin_loss",
                    ("triplet_margin_loss",),
                    inputs=("positive", "negative"),
                    example=("--anchor", "0,0", "--positive", "1,0", "--negative", "0,1.5"),
                    explain_as="batch",
                ),
            ],
        ),
        *_family(
            "contrastive",
            [
                LossInfo(
                    "ntxent",
                    "embeddings",
                    "groups",
                    (),
                    "NT-Xent (SimCLR): each positive pair picked out among the anchor's "
                    "negatives by a softmax of cosine similarities.",
                    "L_i = (1/|P(i)|) Σ_{j∈P(i)} -log(e^(a_ij) / (e^(a_ij) + Σ_{k∈N(i)} e^(a_ik))),"
                    "  a = cos / τ",
                    "dL/da_ij = -σ(n_i - a_ij) / |P(i)| (j ∈ P(i)), t_i e^(a_ik - n_i) (k ∈ N(i)); "
                    "then through a = (u_i · u_j) / τ, u = e / ‖e‖",
                    "optax ntxent",
                    ("nt_xent",),
                    example=(
                        "--embeddings",
                        "1,0;0.8,0.6;0,1;-0.6,0.8",
                        "--labels",
                        "0,0,1,1",
                        "--temperature",
                        "0.5",
                    ),
                    explain_as="batch",
                ),
                LossInfo(
                    "circle",
                    "embeddings",
                    "groups",
                    (),
                    "Circle loss (Sun et al. 2020): positive and negative pairs re-weighted by "
                    "how far each is from its optimum.",
                    "L_i = log(1 + Σ_{j∈P(i)} e^(z^p_ij) Σ_{k∈N(i)} e^(z^n_ik)),  "
                    "z^p = -γ [1 + m - s]_+ (s - 1 + m), z^n = γ [s + m]_+ (s - m)",
                    "dL/ds_ij = σ(A_i + B_i) (π_ij dz^p/ds + ν_ij dz^n/ds);  π, ν: softmaxes of "
                    "z^p, z^n; then through s = u_i · u_j, u = e / ‖e‖",
                    "keras circle/Circle (its remove_diagonal, ref_labels, ref_embeddings)",
                    ("circle_loss",),
                    example=(
                        "--embeddings",
                        "1,0;0.8,0.6;0,1;-0.6,0.8",
                        "--labels",
                        "0,0,1,1",
                        "--gamma",
                        "4",
                    ),
                    explain_as="batch",
                ),
            ],
        ),
        *_family(
            "ranking",
            [
                LossInfo(
                    "ranking_softmax",
                    "logits",
                    "relevance",
                    (),
                    "Listwise softmax ranking: cross-entropy of the list's softmax against its "
                    "relevances.",
                    "L = Σ_i y_i (logsumexp(s) - s_i)",
                    "dL/ds = (Σ_j y_j) softmax(s) - y",
                    "optax ranking_softmax_loss (its where, weights, reduce_fn in "
                    "losskit.compat.optax)",
                    ("ranking_softmax_loss",),
                    uses="softmax",
                ),
            ],
        ),
        *_family(
            "segmentation",
            [
                LossInfo(
                    "dice",
                    "probs",
                    "binary",
                    (),
                    "One minus the soft Dice coefficient of a probability map and its target.",
                    "L = 1 - (2 Σ p t + 2 s) / (Σ p + Σ t + 2 s + 2 eps)",
                    "dL/dp = N / (2 D²) - t / D,  N = Σ p t + s, D = (Σ p + Σ t)/2 + s + eps",
                    "keras dice/Dice (smooth=0, eps=0.5e-7), optax dice_loss, binary_dice_loss",
                    ("dice_loss",),
                ),
                LossInfo(
                    "generalized_dice",
                    "probs",
                    "distributions",
                    (),
                    "Dice pooled over classes, each weighted by its inverse squared size (Sudre "
                    "et al. 2017).",
                    "L = 1 - (Σ_c w_c I_c + s) / (½ Σ_c w_c (P_c + T_c) + s + eps),  "
                    "w_c ∝ 1 / T_c²",
                    "dL/dp_c = w_c (N / (2 D²) - t_c / D)",
                    "optax multiclass_generalized_dice_loss (another weighting: a mean of "
                    "per-class Dice; its adapter in losskit.compat.optax)",
                    ("generalized_dice_loss",),
                    example=(
                        "--probs",
                        "0.9,0.1;0.2,0.8;0.6,0.4",
                        "--targets",
                        "1,0;0,1;1,0",
                    ),
                    explain_as="example",
                ),
                LossInfo(
                    "tversky",
                    "probs",
                    "binary",
                    (),
                    "One minus the Tversky index: false positives (α) and false negatives (β) "
                    "weighed apart.",
                    "L = 1 - (I + s) / (I + α FP + β FN + s + eps),  I = Σ p t, FP = Σ p (1-t), "
                    "FN = Σ (1-p) t",
                    "dL/dp = N (α + (1 - α - β) t) / D² - t / D",
                    "keras tversky/Tversky (its alpha weighs the false negatives)",
                    ("tversky_loss",),
                ),
            ],
        ),
        *_family(
            "sequence",
            [
                LossInfo(
                    "ctc",
                    "logits",
                    "sequences",
                    (),
                    "Connectionist temporal classification: -log of the probability of the "
                    "label sequence, summed over every alignment of it to the frames.",
                    "L = -log Σ_{π ∈ B⁻¹(y)} Π_t softmax(x_t)_{π_t}  (B: merge repeats, drop "
                    "blanks)",
                    "dL/dx_{t,c} = softmax(x_t)_c - γ_t(c)  (γ_t(c): the posterior probability "
                    "that an alignment emits c at frame t)",
                    "torch F.ctc_loss, nn.CTCLoss (which divide by the label length first), "
                    "tf.nn.ctc_loss, keras ctc/CTC, optax ctc_loss",
                    ("ctc_loss", "connectionist_temporal_classification"),
                    example=("--frames", "8", "--classes", "5"),  # "c a t": the lattice
                    explain_as="example",
                    uses="softmax",
                ),
            ],
        ),
        *_family(
            "large_vocab",
            [
                LossInfo(
                    "linear_cross_entropy",
                    "hidden",
                    "ids",
                    (),
                    "Softmax cross-entropy of hidden @ weight.T + bias, chunked so that the "
                    "full logits never exist (language-model heads).",
                    "L = logsumexp(z) - z_y,  z = W h + b  (with label smoothing, class weights, "
                    "z-loss λ lse², softcap c tanh(z/c))",
                    "dL/dh = Wᵀ (softmax(z) - onehot(y)),  dL/dW = (softmax(z) - onehot(y)) hᵀ  "
                    "(the gradients in h, W and b)",
                    "Liger-Kernel / Apple CCE fused linear cross-entropy; torch "
                    "F.cross_entropy(F.linear(h, W, b), y) without the logits",
                    ("fused_linear_cross_entropy", "cut_cross_entropy"),
                    inputs=("weight",),
                    example=(
                        "--hidden",
                        "1,0;0,2",
                        "--weight",
                        "1,1;0,1;-1,0",
                        "--labels",
                        "0,2",
                    ),
                    explain_as="batch",
                ),
            ],
        ),
    ]
}

_DEFAULTS = {
    "multiclass": "sparse_softmax_cross_entropy",
    "binary": "sigmoid_cross_entropy",
    "regression": "mean_squared_error",
}

# Names a user may reach for that are NOT aliases: the loss is another's with
# other numbers or defaults, so a silent alias would give a wrong number.
_NOT_ALIASES = {
    "smooth_l1": "huber: PyTorch's smooth_l1_loss(beta=b) is huber(delta=b) / b "
    "(the same at b = 1)",
    "poisson": "poisson_nll (Keras's poisson is poisson_nll with eps=1e-7)",
    "poisson_nll_loss": "poisson_nll (PyTorch's poisson_nll_loss defaults to log_input=True, "
    "losskit's to False)",
}
_NOT_ALIASES["smooth_l1_loss"] = _NOT_ALIASES["smooth_l1"]
_NOT_ALIASES["cosine_similarity"] = (
    "cosine_distance: Keras's cosine_similarity is -cos = cosine_distance - 1, optax's is "
    "cos = 1 - cosine_distance"
)

# The same loss on another kind of input: what to suggest when that kind is given.
_SAME_LOSS = (
    ("sparse_softmax_cross_entropy", "sparse_categorical_cross_entropy", "negative_log_likelihood"),
    ("softmax_cross_entropy", "categorical_cross_entropy"),
    ("sigmoid_cross_entropy", "binary_cross_entropy"),
    ("sigmoid_focal_loss", "binary_focal_cross_entropy"),
)


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
    >>> try:
    ...     lookup("smooth_l1")
    ... except UnknownLossError as exc:
    ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
    unknown loss 'smooth_l1'; use huber: PyTorch's smooth_l1_loss(beta=b) is
    huber(delta=b) / b (the same at b = 1)
    """
    key = name.strip().lower().replace("-", "_")
    table = _aliases()
    if key in table:
        return CATALOGUE[table[key]]
    if key in _NOT_ALIASES:
        msg = f"unknown loss {name!r}; use {_NOT_ALIASES[key]}"
        raise UnknownLossError(msg)
    close = difflib.get_close_matches(key, list(table), n=1)
    hint = f"; did you mean {table[close[0]]!r}?" if close else ""
    msg = f"unknown loss {name!r}{hint} (`losskit list` shows all)"
    raise UnknownLossError(msg)


def counterpart(info: LossInfo, kind: str) -> LossInfo | None:
    """The same loss taking input ``kind`` (a key of INPUTS), if the catalogue has one.

    >>> counterpart(lookup("bce"), "logits").name
    'sigmoid_cross_entropy'
    >>> counterpart(lookup("nll"), "probs").name
    'sparse_categorical_cross_entropy'
    """
    for group in _SAME_LOSS:
        if info.name in group:
            return next((CATALOGUE[n] for n in group if CATALOGUE[n].input == kind), None)
    return None


def default_loss(task: str) -> str:
    """The loss that fits a task: sparse softmax CE, sigmoid CE, or MSE."""
    return _DEFAULTS[task]


# `losskit explain` arguments by the kinds of input and truth: (input flag value, truth).
_EXAMPLE_INPUT = {
    "logits": "2,0.5,-1",
    "scores": "2,0.5,-1",
    "probs": "0.7,0.2,0.1",
    "log_probs": "-0.3567,-1.609,-2.303",
    "rates": "1.5,0.5,3",
    "real": "2.5,0,2.1",
}
_EXAMPLE_TRUTH = {
    "ids": ("--label", "0"),
    "distributions": ("--targets", "0.8,0.1,0.1"),
    "binary": ("--targets", "1,0,1"),
    "signs": ("--targets", "1,-1,1"),
    "label_sets": ("--targets", "0,2,-1"),
    "counts": ("--targets", "2,0,3"),
    "real": ("--targets", "3,0.5,2"),
    "relevance": ("--targets", "0,1,2"),
}


def explain_example(info: LossInfo) -> list[str]:
    """Arguments of ``losskit explain NAME`` for a small example of the loss.

    The row's ``example`` if it has one, else three values of its input kind
    and a truth of its truth kind (the reference site runs it for every loss).

    >>> explain_example(lookup("huber"))
    ['--pred', '2.5,0,2.1', '--targets', '3,0.5,2']
    >>> explain_example(lookup("kld"))
    ['--log-probs', '-0.3567,-1.609,-2.303', '--targets', '0.8,0.1,0.1']
    """
    if info.example:
        return list(info.example)
    first = next(iter(inspect.signature(info.fn).parameters))
    args = [f"--{first.replace('_', '-')}", _EXAMPLE_INPUT[info.input], *_EXAMPLE_TRUTH[info.truth]]
    for name in info.extra:  # gaussian_nll's var: one positive value per prediction
        args += [f"--{name}", "1,0.5,2"]
    return args


def fits(task: str) -> list[LossInfo]:
    """The losses that can train a model for ``task``."""
    return [info for info in CATALOGUE.values() if info.fits(task)]
