"""Training with losskit losses: a NumPy MLP, optimisers, datasets and the fit loop.

>>> from losskit.train import MLP, Adam, fit, load_builtin, train_model
"""

from .data import BUILTIN, DataError, Dataset, Split, Standardizer, load, load_builtin, split
from .fit import History, NonFiniteLossError, evaluate, fit, r2_score
from .model import MLP, load_model
from .objective import LossMismatchError, Objective
from .optim import SGD, Adam, make_optimizer
from .pipeline import TrainResult, train_model

__all__ = [
    "BUILTIN",
    "MLP",
    "SGD",
    "Adam",
    "DataError",
    "Dataset",
    "History",
    "LossMismatchError",
    "NonFiniteLossError",
    "Objective",
    "Split",
    "Standardizer",
    "TrainResult",
    "evaluate",
    "fit",
    "load",
    "load_builtin",
    "load_model",
    "make_optimizer",
    "r2_score",
    "split",
    "train_model",
]
