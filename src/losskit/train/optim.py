"""Optimisers that update parameter arrays in place: SGD with momentum, and Adam.

The update rules are PyTorch's (``torch.optim.SGD`` and ``torch.optim.Adam``),
so the same gradients give the same weights step for step; ``weight_decay``
is the L2 term added to the gradient, or, with ``decoupled=True`` on Adam,
AdamW's decay of the weights themselves (Loshchilov & Hutter, 2019).

Examples
--------
>>> import numpy as np
>>> w = np.array([1.0, -2.0])
>>> opt = SGD([w], lr=0.1)
>>> opt.step([2 * w])           # gradient of sum(w**2)
>>> w
array([ 0.8, -1.6])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["SGD", "Adam", "Optimizer", "make_optimizer"]


class Optimizer:
    """Holds the parameters; ``step(grads)`` updates them in place."""

    def __init__(
        self, params: Sequence[np.ndarray], *, lr: float, weight_decay: float = 0.0
    ) -> None:
        # As torch.optim: an infinite lr or a NaN decay turns every weight NaN at the
        # first step, and a negative decay makes the weights grow instead of shrink.
        if not (lr > 0 and math.isfinite(lr)):
            msg = f"`lr` must be a finite number > 0; got {lr}"
            raise ValueError(msg)
        if not (weight_decay >= 0 and math.isfinite(weight_decay)):
            msg = f"`weight_decay` must be a finite number >= 0; got {weight_decay}"
            raise ValueError(msg)
        self.params = list(params)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.t = 0

    def step(self, grads: Sequence[np.ndarray]) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with (heavy-ball or Nesterov) momentum.

    ``g <- g + wd·w;  v <- μ·v + g  (v = g on the first step);  w <- w - lr·v``
    (Nesterov: ``w <- w - lr·(g + μ·v)``).
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        *,
        lr: float = 0.01,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay)
        if not 0 <= momentum < 1:
            msg = f"`momentum` must be in [0, 1); got {momentum}"
            raise ValueError(msg)
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.velocity = [np.zeros_like(p) for p in self.params]

    def step(self, grads: Sequence[np.ndarray]) -> None:
        for w, g, v in zip(self.params, grads, self.velocity, strict=True):
            if self.weight_decay:
                g = g + self.weight_decay * w  # d/dw (wd/2 ||w||^2) = wd·w
            if self.momentum:
                if self.t == 0:
                    v[...] = g
                else:
                    v *= self.momentum
                    v += g
                g = g + self.momentum * v if self.nesterov else v
            w -= self.lr * g
        self.t += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction; AdamW with ``decoupled=True``.

    ``m <- β1·m + (1-β1)·g;  v <- β2·v + (1-β2)·g²;
    w <- w - lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + ε)``
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        *,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.decoupled = decoupled
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]

    def step(self, grads: Sequence[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        bias1 = 1.0 - b1**self.t
        bias2 = 1.0 - b2**self.t
        for w, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            if self.weight_decay:
                if self.decoupled:
                    w *= 1.0 - self.lr * self.weight_decay  # AdamW: decay the weights
                else:
                    g = g + self.weight_decay * w  # L2: decay through the gradient
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            w -= self.lr * (m / bias1) / (np.sqrt(v / bias2) + self.eps)


def make_optimizer(
    name: str,
    params: Sequence[np.ndarray],
    *,
    lr: float | None = None,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> Optimizer:
    """``"adam"`` (default lr 1e-3), ``"adamw"``, or ``"sgd"`` (default lr 0.01, momentum 0.9)."""
    # `is None`, not `or`: lr=0 must reach the optimiser's check, not turn into the default.
    if name == "adam":
        return Adam(params, lr=1e-3 if lr is None else lr, weight_decay=weight_decay)
    if name == "adamw":
        return Adam(
            params, lr=1e-3 if lr is None else lr, weight_decay=weight_decay, decoupled=True
        )
    if name == "sgd":
        return SGD(
            params, lr=0.01 if lr is None else lr, momentum=momentum, weight_decay=weight_decay
        )
    msg = f"unknown optimizer {name!r}; choose adam, adamw or sgd"
    raise ValueError(msg)
