"""SGD and Adam follow torch.optim's update rules step for step."""

from __future__ import annotations

import numpy as np
import pytest

from losskit.train.optim import SGD, Adam, make_optimizer


def _run(make_ours, make_torch, steps: int = 6):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0 = [rng.normal(size=(3, 2)), rng.normal(size=2)]
    grads = [[rng.normal(size=p.shape) for p in w0] for _ in range(steps)]
    ours = [p.copy() for p in w0]
    opt = make_ours(ours)
    ref = [torch.tensor(p, requires_grad=True) for p in w0]
    topt = make_torch(ref)
    for g in grads:
        opt.step(g)
        for p, gi in zip(ref, g, strict=True):
            p.grad = torch.tensor(gi)
        topt.step()
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "weight_decay": 0.01},
        {"momentum": 0.8, "nesterov": True},
    ],
)
def test_sgd_matches_torch(kw):
    torch = pytest.importorskip("torch")
    _run(lambda ps: SGD(ps, lr=0.1, **kw), lambda ps: torch.optim.SGD(ps, lr=0.1, **kw))


@pytest.mark.parametrize("kw", [{}, {"weight_decay": 0.01}, {"betas": (0.8, 0.99), "eps": 1e-6}])
def test_adam_matches_torch(kw):
    torch = pytest.importorskip("torch")
    _run(lambda ps: Adam(ps, lr=0.01, **kw), lambda ps: torch.optim.Adam(ps, lr=0.01, **kw))


def test_adamw_matches_torch():
    torch = pytest.importorskip("torch")
    _run(
        lambda ps: Adam(ps, lr=0.01, weight_decay=0.1, decoupled=True),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    )


def test_optimisers_minimise_a_quadratic():
    for name in ("sgd", "adam", "adamw"):
        w = np.array([3.0, -2.0])
        opt = make_optimizer(name, [w], lr=0.05)
        for _ in range(500):
            opt.step([2 * w])  # d/dw sum(w^2)
        assert np.abs(w).max() < 1e-2, name


def test_bad_arguments():
    w = np.zeros(2)
    with pytest.raises(ValueError, match=r"`lr` must be a finite number > 0; got -1"):
        SGD([w], lr=-1)
    with pytest.raises(ValueError, match=r"`momentum` must be in \[0, 1\); got 1.5"):
        SGD([w], momentum=1.5)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; choose adam, adamw or sgd"):
        make_optimizer("rmsprop", [w])
    for name in ("adam", "adamw", "sgd"):  # 0 is refused, not replaced by the default
        with pytest.raises(ValueError, match=r"`lr` must be a finite number > 0; got 0"):
            make_optimizer(name, [w], lr=0)
        assert make_optimizer(name, [w]).lr == (0.01 if name == "sgd" else 1e-3)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"lr": float("inf")}, "`lr` must be a finite number > 0; got inf"),
        ({"lr": float("nan")}, "`lr` must be a finite number > 0; got nan"),
        ({"lr": -0.1}, "`lr` must be a finite number > 0; got -0.1"),
        ({"weight_decay": float("nan")}, "`weight_decay` must be a finite number >= 0; got nan"),
        ({"weight_decay": -1e-4}, "`weight_decay` must be a finite number >= 0; got -0.0001"),
    ],
)
def test_optimisers_refuse_values_that_make_every_weight_nan(name, kw, message):
    # torch.optim refuses a negative lr and weight_decay too ("Invalid weight_decay value").
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", r"\(")):
        make_optimizer(name, [np.zeros(2)], **kw)
