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
    categorical_cross_entropy,
    mean_absolute_error,
    mean_squared_error,
    sigmoid_cross_entropy,
    softmax_cross_entropy,
    sparse_categorical_cross_entropy,
    sparse_softmax_cross_entropy,
)

__version__ = "0.1.0"

__all__ = [
    "LosskitWarning",
    "ProbabilitiesAsLogitsWarning",
    "UnnormalizedProbabilitiesWarning",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "mean_absolute_error",
    "mean_squared_error",
    "portable",
    "sigmoid",
    "sigmoid_cross_entropy",
    "softmax",
    "softmax_cross_entropy",
    "sparse_categorical_cross_entropy",
    "sparse_softmax_cross_entropy",
    "value_and_grad",
]
