"""Keras 3 losses for ``losskit.compat.tf.keras.losses`` (merged there by name)."""

from __future__ import annotations

from typing import Any

#: name -> function or class, added to ``keras.losses`` by :mod:`losskit.compat.tf`.
KERAS_LOSSES: dict[str, Any] = {}
