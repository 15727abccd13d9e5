"""The loss catalogue agrees with the library it describes."""

from __future__ import annotations

import inspect

import pytest

import losskit as lk
from losskit import catalogue


def test_every_catalogued_loss_is_a_library_function():
    for info in catalogue.CATALOGUE.values():
        assert info.fn is getattr(lk, info.name)
        params = inspect.signature(info.fn).parameters
        assert "reduction" in params and "sample_weight" in params
        assert info.input in catalogue.INPUTS and info.truth in catalogue.TRUTHS
        assert info.summary.endswith(".")
        assert set(info.tasks) <= {"multiclass", "binary", "regression"}


def test_every_library_loss_is_catalogued():
    losses = [n for n in lk.__all__ if n.endswith(("_entropy", "_error"))]
    assert losses
    assert sorted(losses) == sorted(catalogue.names())


def test_first_argument_name_matches_input_kind():
    expected = {"logits": "logits", "probs": "probs", "real": "pred"}
    for info in catalogue.CATALOGUE.values():
        first = next(iter(inspect.signature(info.fn).parameters))
        assert first == expected[info.input], info.name


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("mse", "mean_squared_error"),
        ("MAE", "mean_absolute_error"),
        ("cross-entropy", "sparse_softmax_cross_entropy"),
        ("bce", "binary_cross_entropy"),
        ("bce_with_logits", "sigmoid_cross_entropy"),
    ],
)
def test_aliases(alias, name):
    assert catalogue.lookup(alias).name == name


def test_unknown_names():
    with pytest.raises(catalogue.UnknownLossError, match=r"^unknown loss 'huberr'"):
        catalogue.lookup("huberr")
    with pytest.raises(
        catalogue.UnknownLossError,
        match=r"^unknown loss 'sigmoid_crossentropy'; did you mean 'sigmoid_cross_entropy'\?",
    ):
        catalogue.lookup("sigmoid_crossentropy")


def test_defaults_fit_their_task():
    for task in ("multiclass", "binary", "regression"):
        info = catalogue.lookup(catalogue.default_loss(task))
        assert info.fits(task)
        assert info in catalogue.fits(task)
    assert [i.name for i in catalogue.fits("regression")] == [
        "mean_squared_error",
        "mean_absolute_error",
    ]
