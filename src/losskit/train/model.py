"""A small multilayer perceptron in NumPy, each layer's backward beside its forward.

In the spirit of karpathy/micrograd: every layer keeps what its forward pass
saw, and ``backward(g)`` takes ``g = dL/d(output)`` and returns
``dL/d(input)``, storing the gradients of its own parameters on the way. The
derivative sits as a comment next to the line that computes it.

Examples
--------
>>> import numpy as np
>>> net = MLP([4, 8, 3], seed=0)
>>> x = np.ones((2, 4))
>>> out = net.forward(x)
>>> out.shape
(2, 3)
>>> dx = net.backward(np.ones_like(out))      # dL/dout = 1 for L = sum(out)
>>> dx.shape, net.grads()[0].shape
((2, 4), (4, 8))
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

import losskit as lk

from .init import INITIALIZERS

__all__ = ["MLP", "Dense", "Layer", "ReLU", "Sigmoid", "Softmax", "Tanh", "load_model"]

ACTIVATIONS = ("relu", "tanh")
OUTPUTS = (None, "softmax", "sigmoid")
_FORMAT = "losskit.train.MLP/1"


class Layer:
    """A step of the network: ``forward(x)`` then ``backward(dL/dy) -> dL/dx``."""

    def params(self) -> list[np.ndarray]:
        return []

    def grads(self) -> list[np.ndarray]:
        return []

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Dense(Layer):
    """Affine layer ``y = x W + b`` with ``W`` of shape ``(n_in, n_out)``."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        rng: np.random.Generator,
        init: str = "he",
        dtype: Any = np.float64,
    ) -> None:
        self.W = INITIALIZERS[init](n_in, n_out, rng).astype(dtype)
        self.b = np.zeros(n_out, dtype=dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self._x: np.ndarray | None = None

    def params(self) -> list[np.ndarray]:
        return [self.W, self.b]

    def grads(self) -> list[np.ndarray]:
        return [self.dW, self.db]

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return x @ self.W + self.b

    def backward(self, grad: np.ndarray) -> np.ndarray:
        assert self._x is not None, "backward before forward"
        self.dW[...] = self._x.T @ grad  # dL/dW = x^T · dL/dy
        self.db[...] = grad.sum(axis=0)  # dL/db = sum over the batch of dL/dy
        return grad @ self.W.T  # dL/dx = dL/dy · W^T


class ReLU(Layer):
    """``y = max(x, 0)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, 0.0).astype(x.dtype, copy=False)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self._mask  # dy/dx = [x > 0]


class Tanh(Layer):
    """``y = tanh(x)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * (1.0 - self._y * self._y)  # dy/dx = 1 - tanh(x)^2


class Sigmoid(Layer):
    """Output activation for probability losses on binary targets."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.asarray(lk.sigmoid(x))
        return self._y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self._y * (1.0 - self._y)  # dσ/dx = σ (1 - σ)


class Softmax(Layer):
    """Output activation for probability losses on class targets (over the last axis)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._p = np.asarray(lk.softmax(x, axis=-1))
        return self._p

    def backward(self, grad: np.ndarray) -> np.ndarray:
        p = self._p
        # dL/dx_i = sum_j dL/dp_j · p_j ([i == j] - p_i) = p_i (g_i - sum_j g_j p_j)
        return p * (grad - np.sum(grad * p, axis=-1, keepdims=True))


class MLP:
    """Dense layers with ReLU or tanh between them and an optional output activation.

    Parameters
    ----------
    sizes
        Widths from input to output, e.g. ``[64, 64, 32, 10]``.
    activation
        ``"relu"`` (He initialisation) or ``"tanh"`` (Glorot initialisation).
    output
        ``None`` (the network returns logits / real values), ``"softmax"`` or
        ``"sigmoid"`` (it returns probabilities, for the probability losses).
    seed
        Seed of the initialisation; the same seed gives the same weights.
    init
        Override the initialiser by name (see :mod:`losskit.train.init`).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        activation: str = "relu",
        output: str | None = None,
        seed: int = 0,
        init: str | None = None,
        dtype: Any = np.float64,
    ) -> None:
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            msg = f"`sizes` needs an input and an output width, all >= 1; got {sizes}"
            raise ValueError(msg)
        if activation not in ACTIVATIONS:
            msg = f"`activation` must be one of {', '.join(ACTIVATIONS)}; got {activation!r}"
            raise ValueError(msg)
        if output not in OUTPUTS:
            msg = f"`output` must be None, 'softmax' or 'sigmoid'; got {output!r}"
            raise ValueError(msg)
        self.sizes = sizes
        self.activation = activation
        self.output = output
        self.seed = seed
        self.init = init or ("he" if activation == "relu" else "glorot")
        self.dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        self.layers: list[Layer] = []
        n_dense = len(sizes) - 1
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            last = i == n_dense - 1
            # The output layer feeds a loss, not a ReLU: Glorot keeps its logits small.
            init_name = "glorot" if last else self.init
            self.layers.append(Dense(n_in, n_out, rng=rng, init=init_name, dtype=self.dtype))
            if not last:
                self.layers.append(ReLU() if activation == "relu" else Tanh())
        if output == "softmax":
            self.layers.append(Softmax())
        elif output == "sigmoid":
            self.layers.append(Sigmoid())

    # -- the two passes -------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Run the layers in order; each remembers what it needs for backward."""
        h = np.asarray(x, dtype=self.dtype)
        for layer in self.layers:
            h = layer.forward(h)
        return h

    __call__ = forward

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Given ``dL/d(output)``, fill every parameter's gradient; return ``dL/d(input)``."""
        g = np.asarray(grad, dtype=self.dtype)
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g

    # -- parameters -------------------------------------------------------------------
    def params(self) -> list[np.ndarray]:
        """The parameter arrays, in layer order (``W0, b0, W1, b1, ...``); updated in place."""
        return [p for layer in self.layers for p in layer.params()]

    def grads(self) -> list[np.ndarray]:
        """The gradients from the last ``backward``, aligned with :meth:`params`."""
        return [g for layer in self.layers for g in layer.grads()]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters (for keeping the best epoch)."""
        return [p.copy() for p in self.params()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Copy ``weights`` into the parameters (shapes must match)."""
        params = self.params()
        if len(weights) != len(params):
            msg = f"expected {len(params)} weight arrays, got {len(weights)}"
            raise ValueError(msg)
        for p, w in zip(params, weights, strict=True):
            if p.shape != np.shape(w):
                msg = f"weight shape {np.shape(w)} does not match parameter shape {p.shape}"
                raise ValueError(msg)
            p[...] = w

    @property
    def n_params(self) -> int:
        return sum(p.size for p in self.params())

    def describe(self) -> str:
        """``"64-64-32-10 relu"`` plus the output activation, if any."""
        text = "-".join(str(s) for s in self.sizes) + f" {self.activation}"
        return text + (f" + {self.output}" if self.output else "")

    # -- persistence ------------------------------------------------------------------
    def save(
        self,
        path: str | os.PathLike[str],
        *,
        meta: dict[str, Any] | None = None,
        arrays: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Write the weights to ``.npz`` (no pickle); ``meta`` must be JSON-serialisable.

        ``arrays`` stores extra arrays beside the weights (e.g. a standardiser's
        mean and scale), read back by :func:`load_model`.
        """
        header = {
            "format": _FORMAT,
            "sizes": self.sizes,
            "activation": self.activation,
            "output": self.output,
            "seed": self.seed,
            "init": self.init,
            "dtype": self.dtype.name,
            "meta": meta or {},
            "arrays": sorted(arrays or {}),
        }
        text = json.dumps(header)  # fails here, before the file is touched
        payload = {f"param_{i}": p for i, p in enumerate(self.params())}
        payload.update({f"extra_{k}": np.asarray(v) for k, v in (arrays or {}).items()})
        # Write beside the target and rename: an error never leaves a partial file.
        path = os.fspath(path)
        folder, name = os.path.split(os.path.abspath(path))
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.partial")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, header=np.array(text), **payload)  # type: ignore[arg-type]
            os.replace(tmp, path)
        except BaseException as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            if isinstance(exc, OSError) and exc.errno is not None:
                # The temporary name is ours, not the user's: report the path they gave.
                raise OSError(exc.errno, exc.strerror, path) from None
            raise


def load_model(
    path: str | os.PathLike[str],
) -> tuple[MLP, dict[str, Any], dict[str, np.ndarray]]:
    """Read a model written by :meth:`MLP.save`: ``(model, meta, extra arrays)``.

    Raises ``ValueError`` (one line) when the file is not such a model.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            files = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        msg = f"{os.fspath(path)} is not a .npz file written by losskit ({exc})"
        raise ValueError(msg) from None
    try:
        header = json.loads(str(files["header"]))
        if header.get("format") != _FORMAT:
            raise KeyError("format")
        model = MLP(
            header["sizes"],
            activation=header["activation"],
            output=header["output"],
            seed=header["seed"],
            init=header["init"],
            dtype=header["dtype"],
        )
        n = len(model.params())
        model.set_weights([files[f"param_{i}"] for i in range(n)])
        extra = {k: files[f"extra_{k}"] for k in header["arrays"]}
    except (KeyError, ValueError, TypeError) as exc:
        msg = f"{os.fspath(path)} is not a model saved by losskit (bad or missing {exc})"
        raise ValueError(msg) from None
    return model, header["meta"], extra
