"""The losses, one module per family (see DESIGN.md's layout)."""

from .binary import binary_cross_entropy, sigmoid_cross_entropy
from .contrastive import (
    circle,
    ntxent,
)
from .cross_entropy import (
    categorical_cross_entropy,
    softmax_cross_entropy,
    sparse_categorical_cross_entropy,
    sparse_softmax_cross_entropy,
)
from .focal import (
    binary_focal_cross_entropy,
    categorical_focal_cross_entropy,
    generalized_cross_entropy,
    poly1_cross_entropy,
    sigmoid_focal_loss,
    softmax_focal_loss,
)
from .large_vocab import (
    LinearCrossEntropyOutput,
    linear_cross_entropy,
)
from .likelihood import gaussian_nll, kl_divergence, negative_log_likelihood, poisson_nll
from .margin import (
    categorical_hinge,
    hinge,
    hinge_embedding,
    multi_margin,
    multiclass_hinge,
    multiclass_perceptron,
    multilabel_margin,
    multilabel_soft_margin,
    perceptron,
    soft_margin,
    squared_hinge,
)
from .ranking import (
    ranking_softmax,
)
from .regression import (
    huber,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from .segmentation import (
    dice,
    generalized_dice,
    tversky,
)
from .sequence import (
    ctc,
)
from .similarity import (
    cosine_distance,
    cosine_embedding,
    margin_ranking,
    triplet_margin,
)
from .sparsemax import sparsemax, sparsemax_loss

__all__ = [
    "LinearCrossEntropyOutput",
    "binary_cross_entropy",
    "binary_focal_cross_entropy",
    "categorical_cross_entropy",
    "categorical_focal_cross_entropy",
    "categorical_hinge",
    "circle",
    "cosine_distance",
    "cosine_embedding",
    "ctc",
    "dice",
    "gaussian_nll",
    "generalized_cross_entropy",
    "generalized_dice",
    "hinge",
    "hinge_embedding",
    "huber",
    "kl_divergence",
    "linear_cross_entropy",
    "log_cosh",
    "margin_ranking",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "multi_margin",
    "multiclass_hinge",
    "multiclass_perceptron",
    "multilabel_margin",
    "multilabel_soft_margin",
    "negative_log_likelihood",
    "ntxent",
    "perceptron",
    "poisson_nll",
    "poly1_cross_entropy",
    "ranking_softmax",
    "sigmoid_cross_entropy",
    "sigmoid_focal_loss",
    "soft_margin",
    "softmax_cross_entropy",
    "softmax_focal_loss",
    "sparse_categorical_cross_entropy",
    "sparse_softmax_cross_entropy",
    "sparsemax",
    "sparsemax_loss",
    "squared_hinge",
    "triplet_margin",
    "tversky",
]
