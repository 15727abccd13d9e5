"""The losses, one module per family (see DESIGN.md's layout)."""

from .binary import binary_cross_entropy, sigmoid_cross_entropy
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
from .regression import (
    huber,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from .sparsemax import sparsemax, sparsemax_loss

__all__ = [
    "binary_cross_entropy",
    "binary_focal_cross_entropy",
    "categorical_cross_entropy",
    "categorical_focal_cross_entropy",
    "categorical_hinge",
    "gaussian_nll",
    "generalized_cross_entropy",
    "hinge",
    "hinge_embedding",
    "huber",
    "kl_divergence",
    "log_cosh",
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
    "perceptron",
    "poisson_nll",
    "poly1_cross_entropy",
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
]

# The families of issues 9-11, re-exported by their own __all__ while they fill in.
from . import contrastive, large_vocab, ranking, segmentation, sequence, similarity
from .contrastive import *  # noqa: F403
from .large_vocab import *  # noqa: F403
from .ranking import *  # noqa: F403
from .segmentation import *  # noqa: F403
from .sequence import *  # noqa: F403
from .similarity import *  # noqa: F403

__all__ += [
    *contrastive.__all__,
    *large_vocab.__all__,
    *ranking.__all__,
    *segmentation.__all__,
    *sequence.__all__,
    *similarity.__all__,
]
