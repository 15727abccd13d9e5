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
from .losses.contrastive import (
    circle,
    ntxent,
)
from .losses.large_vocab import (
    LinearCrossEntropyOutput,
    linear_cross_entropy,
)
from .losses.ranking import (
    ranking_softmax,
)
from .losses.segmentation import (
    dice,
    generalized_dice,
    tversky,
)
from .losses.sequence import (
    ctc,
)
from .losses.similarity import (
    cosine_distance,
    cosine_embedding,
    margin_ranking,
    triplet_margin,
)

__version__ = "0.1.0"

__all__ = [
    "LinearCrossEntropyOutput",
    "LosskitWarning",
    "ProbabilitiesAsLogitsWarning",
    "UnnormalizedProbabilitiesWarning",
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
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
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
    "portable",
    "ranking_softmax",
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
    "triplet_margin",
    "tversky",
    "value_and_grad",
]
