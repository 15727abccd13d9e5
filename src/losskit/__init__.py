"""losskit: loss functions with exact gradients, stable at any magnitude.

One source for NumPy, PyTorch and JAX arrays.

Importing losskit imports NumPy and array-api-compat only; numba, torch and
jax are imported when an input or a fast path needs them.
"""

from ._config import portable
from ._validation import (
    LosskitWarning,
    ProbabilitiesAsLogitsWarning,
    UnnormalizedProbabilitiesWarning,
)
from .activations import log_sigmoid, log_softmax, logsumexp, sigmoid, softmax
from .grad import value_and_grad
from .losses import (
    binary_cross_entropy,
    binary_focal_cross_entropy,
    categorical_cross_entropy,
    categorical_focal_cross_entropy,
    categorical_hinge,
    gaussian_nll,
    generalized_cross_entropy,
    hinge,
    hinge_embedding,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    multi_margin,
    multiclass_hinge,
    multiclass_perceptron,
    multilabel_margin,
    multilabel_soft_margin,
    negative_log_likelihood,
    perceptron,
    poisson_nll,
    poly1_cross_entropy,
    sigmoid_cross_entropy,
    sigmoid_focal_loss,
    soft_margin,
    softmax_cross_entropy,
    softmax_focal_loss,
    sparse_categorical_cross_entropy,
    sparse_softmax_cross_entropy,
    sparsemax,
    sparsemax_loss,
    squared_hinge,
)

__version__ = "0.1.0"

__all__ = [
    "LosskitWarning",
    "ProbabilitiesAsLogitsWarning",
    "UnnormalizedProbabilitiesWarning",
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
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
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
    "portable",
    "sigmoid",
    "sigmoid_cross_entropy",
    "sigmoid_focal_loss",
    "soft_margin",
    "softmax",
    "softmax_cross_entropy",
    "softmax_focal_loss",
    "sparse_categorical_cross_entropy",
    "sparse_softmax_cross_entropy",
    "sparsemax",
    "sparsemax_loss",
    "squared_hinge",
    "value_and_grad",
]

# The families of issues 9-11 (see losses/__init__.py).
from . import losses as _losses
from .losses.contrastive import *  # noqa: F403
from .losses.large_vocab import *  # noqa: F403
from .losses.ranking import *  # noqa: F403
from .losses.segmentation import *  # noqa: F403
from .losses.sequence import *  # noqa: F403
from .losses.similarity import *  # noqa: F403

__all__ += [
    name
    for family in (
        _losses.contrastive,
        _losses.large_vocab,
        _losses.ranking,
        _losses.segmentation,
        _losses.sequence,
        _losses.similarity,
    )
    for name in family.__all__
]
