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
    """Every public loss (in ``__all__`` where it has one) of losskit.losses: name -> module.

    A loss a module keeps for its adapters (similarity's negative_cosine_similarity) is not
    in its ``__all__``, not exported and not catalogued.
    """
    found = {}
    for mod in pkgutil.iter_modules(losskit.losses.__path__):
        module = importlib.import_module(f"losskit.losses.{mod.name}")
        public = [n for n in vars(module) if not n.startswith("_")]
        for name in getattr(module, "__all__", public):
            obj = getattr(module, name)
            defined_here = getattr(obj, "__module__", None) == module.__name__
            if defined_here and hasattr(obj, IMPL_ATTRIBUTE):
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
    # predictions, the other inputs (x2; positive, negative), the truth, the extra arrays
    truths = 0 if info.truth == "none" else 1
    assert positional[1 : 1 + len(info.inputs)] == list(info.inputs)
    assert positional[1 + len(info.inputs) + truths :] == list(info.extra)
    assert len(positional) == 1 + len(info.inputs) + truths + len(info.extra)
    assert info.explain_as in ("", "batch", "example")
    if info.inputs or info.truth in ("groups", "none"):  # flat --input/--targets cannot say it
        assert info.explain_as
    assert info.input in catalogue.INPUTS and info.truth in catalogue.TRUTHS
    assert info.family in catalogue.FAMILIES
    assert info.summary.endswith(".")
    assert info.formula.startswith(("L = ", "L_i = ")) and info.gradient.startswith("dL/d")
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
        "scores": {"pred", "scores", "x1"},
        "rates": {"pred"},
        "real": {"pred"},
        "embeddings": {"x1", "anchor", "embeddings"},
        "hidden": {"hidden"},
    }
    assert set(expected) == set(catalogue.INPUTS)
    for info in catalogue.CATALOGUE.values():
        first = next(iter(inspect.signature(info.fn).parameters))
        assert first in expected[info.input], info.name


@pytest.mark.parametrize("name", [n for n in NAMES if not catalogue.CATALOGUE[n].explain_as])
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
        "relevance": np.array([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
    }[info.truth]
    extra = [np.ones_like(x) for _ in info.extra]
    value = np.asarray(info.fn(x, t, *extra, reduction="none"))
    assert value.shape == ((2,) if info.per_example else (2, 3))


_RNG = np.random.default_rng(3)
_EMB = _RNG.normal(size=(4, 3))
_MULTI = {  # the rows explained array by array: arrays of two (four) examples
    "cosine_embedding": (_EMB[:2], _EMB[2:], np.array([1, -1])),
    "margin_ranking": (np.array([1.0, 2.0]), np.array([0.5, 3.0]), np.array([1, -1])),
    "triplet_margin": (_EMB[:2], _EMB[2:], _EMB[1:3]),
    "ntxent": (_EMB, np.array([0, 0, 1, 1])),
    "circle": (_EMB, np.array([0, 0, 1, 1])),
    "generalized_dice": (np.full((2, 3, 2), 0.5), np.eye(2)[[[0, 1, 0], [1, 1, 0]]]),
    "ctc": (_RNG.normal(size=(2, 5, 3)), np.array([[1, 2], [2, 2]])),
    "linear_cross_entropy": (_EMB[:2], _EMB, np.array([3, 0])),
}


@pytest.mark.parametrize("name", [n for n in NAMES if catalogue.CATALOGUE[n].explain_as])
def test_rows_of_several_arrays_give_one_value_per_example(name):
    """What `explain` and the reference site rely on: a batch in, one loss per example out."""
    arrays = _MULTI[name]
    assert len(arrays) == len(explain_names := _positional(catalogue.CATALOGUE[name]))
    value = np.asarray(catalogue.CATALOGUE[name].fn(*arrays, reduction="none"))
    assert value.shape == (len(arrays[0]),), explain_names


def _positional(info):
    params = inspect.signature(info.fn).parameters.values()
    return [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]


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
        ("cosine_embedding_loss", "cosine_embedding"),
        ("margin-ranking-loss", "margin_ranking"),
        ("triplet_margin_loss", "triplet_margin"),
        ("nt_xent", "ntxent"),
        ("ranking_softmax_loss", "ranking_softmax"),
        ("dice_loss", "dice"),
        ("tversky_loss", "tversky"),
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
            "cosine_similarity",
            "unknown loss 'cosine_similarity'; use cosine_distance: Keras's cosine_similarity is "
            "-cos = cosine_distance - 1, optax's is cos = 1 - cosine_distance",
        ),
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
