"""The loss catalogue agrees with the library it describes."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import losskit as lk
import losskit.losses
from losskit import catalogue
from losskit._gradient import IMPL_ATTRIBUTE

NAMES = catalogue.names()


def _library_losses() -> dict[str, str]:
    """Every public loss defined in a module of losskit.losses: name -> family module."""
    found = {}
    for mod in pkgutil.iter_modules(losskit.losses.__path__):
        module = importlib.import_module(f"losskit.losses.{mod.name}")
        for name, obj in vars(module).items():
            defined_here = getattr(obj, "__module__", None) == module.__name__
            if not name.startswith("_") and defined_here and hasattr(obj, IMPL_ATTRIBUTE):
                found[name] = mod.name
    return found


@pytest.mark.parametrize("name", NAMES)
def test_every_row_resolves_to_its_loss(name):
    info = catalogue.CATALOGUE[name]
    module = importlib.import_module(f"losskit.losses.{info.family}")
    assert info.fn is getattr(module, name)
    if name in lk.__all__:  # the top-level export is the same object
        assert getattr(lk, name) is info.fn
    params = inspect.signature(info.fn).parameters
    assert "reduction" in params and "sample_weight" in params
    positional = [
        p for p, v in params.items() if v.kind in (v.POSITIONAL_ONLY, v.POSITIONAL_OR_KEYWORD)
    ]
    assert positional[2:] == list(info.extra)  # predictions, truth, then the extra arrays
    assert info.input in catalogue.INPUTS and info.truth in catalogue.TRUTHS
    assert info.family in catalogue.FAMILIES
    assert info.summary.endswith(".")
    assert info.formula.startswith("L = ") and info.gradient.startswith("dL/d")
    assert set(info.tasks) <= set(catalogue.TASKS)


def test_every_library_loss_is_catalogued():
    found = _library_losses()
    assert len(found) >= 34
    assert sorted(found) == sorted(NAMES)
    assert {n: catalogue.CATALOGUE[n].family for n in NAMES} == found
    exported = [n for n in lk.__all__ if hasattr(getattr(lk, n), IMPL_ATTRIBUTE)]
    assert set(exported) <= set(NAMES)


def test_families_are_contiguous_and_in_order():
    """`losskit list` shows a family under one heading: its rows must be adjacent."""
    families = [catalogue.CATALOGUE[n].family for n in NAMES]
    order = list(dict.fromkeys(families))
    assert families == sorted(families, key=order.index)
    assert set(order) == set(catalogue.FAMILIES)


def test_first_argument_name_matches_input_kind():
    expected = {
        "logits": {"logits"},
        "probs": {"probs"},
        "log_probs": {"log_probs"},
        "scores": {"pred", "scores"},
        "rates": {"pred"},
        "real": {"pred"},
    }
    assert set(expected) == set(catalogue.INPUTS)
    for info in catalogue.CATALOGUE.values():
        first = next(iter(inspect.signature(info.fn).parameters))
        assert first in expected[info.input], info.name


@pytest.mark.parametrize("name", NAMES)
def test_per_example_matches_the_unreduced_shape(name):
    """Row losses drop the class axis under reduction="none"; the others keep every element."""
    info = catalogue.CATALOGUE[name]
    scores = np.array([[2.0, -1.0, 0.5], [0.1, 3.0, -2.0]])
    x = {
        "probs": np.full((2, 3), 1 / 3),
        "log_probs": np.log(np.full((2, 3), 1 / 3)),
        "rates": np.abs(scores),
    }.get(info.input, scores)
    t = {
        "ids": np.array([0, 2]),
        "distributions": np.eye(3)[[0, 2]],
        "binary": np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
        "signs": np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]]),
        "label_sets": np.array([[0, -1, 0], [2, 1, -1]]),
        "counts": np.array([[1.0, 0.0, 3.0], [2.0, 1.0, 0.0]]),
        "real": np.array([[0.0, 1.0, 0.5], [0.2, 0.3, 0.1]]),
    }[info.truth]
    extra = [np.ones_like(x) for _ in info.extra]
    value = np.asarray(info.fn(x, t, *extra, reduction="none"))
    assert value.shape == ((2,) if info.per_example else (2, 3))


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("mse", "mean_squared_error"),
        ("MAE", "mean_absolute_error"),
        ("cross-entropy", "sparse_softmax_cross_entropy"),
        ("bce", "binary_cross_entropy"),
        ("bce_with_logits", "sigmoid_cross_entropy"),
        ("huber_loss", "huber"),
        ("logcosh", "log_cosh"),
        ("mape", "mean_absolute_percentage_error"),
        ("MSLE", "mean_squared_logarithmic_error"),
        ("kld", "kl_divergence"),
        ("kl-div", "kl_divergence"),
        ("nll", "negative_log_likelihood"),
        ("nll_loss", "negative_log_likelihood"),
        ("gaussian_nll_loss", "gaussian_nll"),
        ("hinge_loss", "hinge"),
        ("multi_margin_loss", "multi_margin"),
        ("poly_loss_cross_entropy", "poly1_cross_entropy"),
        ("binary_focal_crossentropy", "binary_focal_cross_entropy"),
    ],
)
def test_aliases(alias, name):
    assert catalogue.lookup(alias).name == name


def test_no_alias_is_claimed_twice():
    """The alias table is a dict: a second claim would silently win over the first."""
    claims = list(NAMES) + [a for i in catalogue.CATALOGUE.values() for a in i.aliases]
    assert len(claims) == len(set(claims))


def test_nll_names_the_log_probability_loss():
    """`nll` used to name sparse_categorical_cross_entropy (probabilities): now torch's meaning."""
    info = catalogue.lookup("nll")
    assert (info.name, info.input, info.truth) == ("negative_log_likelihood", "log_probs", "ids")
    assert "nll" not in catalogue.lookup("sparse_categorical_cross_entropy").aliases
    # Probabilities are refused, never read as log-probabilities (log 0.5 would be 0.69).
    with pytest.raises(ValueError, match=r"^`log_probs` must be log-probabilities \(<= 0\)"):
        info.fn(np.array([[0.5, 0.5]]), np.array([0]))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "smooth_l1",
            "unknown loss 'smooth_l1'; use huber: PyTorch's smooth_l1_loss(beta=b) is "
            "huber(delta=b) / b (the same at b = 1)",
        ),
        (
            "smooth-l1-loss",
            "unknown loss 'smooth-l1-loss'; use huber: PyTorch's smooth_l1_loss(beta=b) is "
            "huber(delta=b) / b (the same at b = 1)",
        ),
        (
            "poisson_nll_loss",
            "unknown loss 'poisson_nll_loss'; use poisson_nll (PyTorch's poisson_nll_loss "
            "defaults to log_input=True, losskit's to False)",
        ),
        ("huberr", "unknown loss 'huberr'; did you mean 'huber'? (`losskit list` shows all)"),
        (
            "sigmoid_crossentropy",
            "unknown loss 'sigmoid_crossentropy'; did you mean 'sigmoid_cross_entropy'? "
            "(`losskit list` shows all)",
        ),
    ],
)
def test_unknown_names(name, message):
    with pytest.raises(catalogue.UnknownLossError) as info:
        catalogue.lookup(name)
    assert str(info.value) == message


def test_counterparts():
    assert catalogue.counterpart(catalogue.lookup("bce"), "logits").name == "sigmoid_cross_entropy"
    nll = catalogue.lookup("nll")
    assert catalogue.counterpart(nll, "probs").name == "sparse_categorical_cross_entropy"
    assert catalogue.counterpart(nll, "logits").name == "sparse_softmax_cross_entropy"
    assert catalogue.counterpart(catalogue.lookup("huber"), "logits") is None
    for group in catalogue._SAME_LOSS:
        infos = [catalogue.CATALOGUE[n] for n in group]
        assert len({i.truth for i in infos}) == 1 and len({i.input for i in infos}) == len(group)


def test_defaults_fit_their_task():
    for task in catalogue.TASKS:
        info = catalogue.lookup(catalogue.default_loss(task))
        assert info.fits(task)
        assert info in catalogue.fits(task)
    assert [i.name for i in catalogue.fits("regression")] == [
        "mean_squared_error",
        "mean_absolute_error",
        "huber",
        "log_cosh",
    ]


CLAIMS = [(i.name, task) for i in catalogue.CATALOGUE.values() for task in i.tasks]


@pytest.mark.parametrize(("name", "task"), CLAIMS)
def test_every_claimed_task_trains(name, task):
    """What `tasks` claims, the training loop can do: the loss falls and the model learns."""
    from losskit.train.model import MLP
    from losskit.train.objective import Objective

    n_classes = {"multiclass": 3, "binary": 2, "regression": 0}[task]
    obj = Objective(name, task, n_classes)
    net = MLP([2, 8, obj.n_outputs], output=obj.output, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    x[:, 0] += np.sign(x[:, 0])  # classes apart: the focal losses learn slowly near a boundary
    if task == "regression":
        y = x[:, 0] - 0.5 * x[:, 1]
    else:
        y = (x[:, 0] > 0).astype(np.int64) + (n_classes == 3) * (x[:, 1] > 0.5)
    truth = obj.encode(y)
    first = obj.value(net.forward(x), truth)
    for _ in range(150):
        _, dout = obj.value_and_grad(net.forward(x), truth)
        net.backward(dout)
        for p, g in zip(net.params(), net.grads(), strict=True):
            p -= 0.2 * g
    last = obj.value(net.forward(x), truth)
    assert np.isfinite(last) and last < 0.7 * first
    pred = obj.predict(net.forward(x))
    if task == "regression":
        assert np.mean((pred - y) ** 2) < 0.3 * np.var(y)
    else:
        assert np.mean(pred == y) >= 0.85
