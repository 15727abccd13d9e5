"""Quiet, lazy, once-per-session imports of the reference frameworks.

TensorFlow takes about five seconds to import and prints C++ log lines and,
depending on the NumPy it meets, Python warnings that ``filterwarnings =
error`` would turn into failures; they are silenced here, around the import
only.  A missing framework skips the tests that need it.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any

import pytest


@functools.cache
def _import_tensorflow() -> tuple[Any, Any] | None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import keras
            import tensorflow as tf
        except ImportError:
            return None
    return tf, keras


def tensorflow() -> tuple[Any, Any]:
    """``(tensorflow, keras)``, or skip the calling test when TensorFlow is not installed."""
    found = _import_tensorflow()
    if found is None:
        pytest.skip("tensorflow is not installed")
    return found
