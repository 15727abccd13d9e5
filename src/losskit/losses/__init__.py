"""The losses, one module per family (see DESIGN.md's layout)."""

from .binary import binary_cross_entropy, sigmoid_cross_entropy
from .cross_entropy import (
    categorical_cross_entropy,
    softmax_cross_entropy,
    sparse_categorical_cross_entropy,
    sparse_softmax_cross_entropy,
)
from .regression import mean_absolute_error, mean_squared_error

__all__ = [
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "mean_absolute_error",
    "mean_squared_error",
    "sigmoid_cross_entropy",
    "softmax_cross_entropy",
    "sparse_categorical_cross_entropy",
    "sparse_softmax_cross_entropy",
]
