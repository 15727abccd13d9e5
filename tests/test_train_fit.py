"""The fit loop and the dataset-to-model pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from losskit.train import (
    MLP,
    SGD,
    Adam,
    LossMismatchError,
    NonFiniteLossError,
    Objective,
    evaluate,
    fit,
    load_builtin,
    load_model,
    r2_score,
    split,
    train_model,
)


@pytest.fixture(scope="module")
def iris_parts():
    from losskit.train.data import Standardizer

    parts = split(load_builtin("iris"), seed=0)
    s = Standardizer().fit(parts.X_train)
    return s.transform(parts.X_train), parts.y_train, s.transform(parts.X_val), parts.y_val


@pytest.mark.parametrize(
    "loss", ["sparse_softmax_cross_entropy", "categorical_cross_entropy", "mse"]
)
def test_training_loss_decreases(iris_parts, loss):
    Xtr, ytr, Xva, yva = iris_parts
    obj = Objective(loss, "multiclass", 3)
    net = MLP([4, 16, 3], output=obj.output, seed=0)
    opt = Adam(net.params(), lr=0.01)
    h = fit(net, obj, Xtr, ytr, Xva, yva, epochs=15, optimizer=opt, patience=None, seed=0)
    assert h.epochs == 15
    assert h.train_loss[-1] < 0.7 * h.train_loss[0]
    assert h.val_loss[-1] < h.val_loss[0]
    assert h.val_metric[-1] > 0.6
    assert not h.stopped_early
    assert len(h.seconds) == 15 and h.seconds == sorted(h.seconds)


def test_sgd_trains_too(iris_parts):
    Xtr, ytr, Xva, yva = iris_parts
    obj = Objective(None, "multiclass", 3)
    net = MLP([4, 16, 3], seed=0)
    opt = SGD(net.params(), lr=0.05, momentum=0.9)
    h = fit(net, obj, Xtr, ytr, Xva, yva, epochs=10, optimizer=opt, patience=None)
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]


def test_without_patience_the_last_epoch_is_kept(iris_parts):
    Xtr, ytr, Xva, yva = iris_parts
    obj = Objective(None, "multiclass", 3)
    net = MLP([4, 64, 3], seed=0)
    opt = SGD(net.params(), lr=0.5, momentum=0.9)  # overfits: an earlier epoch was better
    h = fit(net, obj, Xtr, ytr, Xva, yva, epochs=30, patience=None, optimizer=opt)
    assert h.epochs == 30 and not h.stopped_early
    assert min(h.val_loss) < h.val_loss[-1]  # so keeping the best would show
    assert evaluate(net, obj, Xva, yva)["loss"] == pytest.approx(h.val_loss[-1])
    assert h.best_epoch == 30  # the epoch whose weights were kept


def test_early_stopping_keeps_the_best_epoch(iris_parts):
    Xtr, ytr, Xva, yva = iris_parts
    obj = Objective(None, "multiclass", 3)
    net = MLP([4, 64, 3], seed=0)
    # A learning rate this large overfits fast, so the validation loss turns up.
    opt = SGD(net.params(), lr=0.5, momentum=0.9)
    seen = []
    h = fit(
        net,
        obj,
        Xtr,
        ytr,
        Xva,
        yva,
        epochs=200,
        patience=3,
        optimizer=opt,
        on_epoch=lambda hist: seen.append(hist.epochs),
    )
    assert h.stopped_early
    assert h.epochs == h.best_epoch + 3
    assert seen == list(range(1, h.epochs + 1))
    kept = evaluate(net, obj, Xva, yva)["loss"]
    assert kept == pytest.approx(min(h.val_loss))


def test_batch_callback_reports_running_loss(iris_parts):
    Xtr, ytr, Xva, yva = iris_parts
    calls = []
    net = MLP([4, 8, 3], seed=0)
    fit(
        net,
        Objective(None, "multiclass", 3),
        Xtr,
        ytr,
        Xva,
        yva,
        epochs=1,
        batch_size=40,
        on_batch=lambda *a: calls.append(a),
    )
    assert [c[1:3] for c in calls] == [(1, 3), (2, 3), (3, 3)]
    assert all(c[3] > 0 for c in calls)


def test_fit_checks_its_arguments(iris_parts):
    Xtr, ytr, Xva, yva = iris_parts
    with pytest.raises(
        ValueError, match="the model has 2 outputs; sparse_softmax_cross_entropy needs 3"
    ):
        fit(MLP([4, 2]), Objective(None, "multiclass", 3), Xtr, ytr, Xva, yva)
    with pytest.raises(ValueError, match="`epochs` and `batch_size` must be >= 1"):
        fit(MLP([4, 3]), Objective(None, "multiclass", 3), Xtr, ytr, Xva, yva, epochs=0)


def _regression(n=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2))
    return X, X @ np.array([1.0, 2.0])


def test_a_diverging_loss_stops_the_fit_at_once():
    """Keras's TerminateOnNaN: the first non-finite batch loss ends the fit, with no warning."""
    X, y = _regression()
    obj = Objective("mse", "regression", 0)
    net = MLP([2, 4, 1], activation="tanh", seed=0)
    initial = net.get_weights()
    batches = []
    with pytest.raises(NonFiniteLossError) as info:
        fit(
            net,
            obj,
            X,
            y,
            X,
            y,
            epochs=50,
            batch_size=4,
            optimizer=SGD(net.params(), lr=1e30),
            on_batch=lambda *a: batches.append(a[:2]),
        )
    err = info.value
    assert err.epoch == 1 and err.batch == len(batches) + 1 and err.n_batches == 10
    assert not np.isfinite(err.value)
    assert str(err).startswith(f"the loss became {err.value} at epoch 1 (batch {err.batch} of 10)")
    assert err.history.epochs == 0 and err.history.val_loss == []
    for w, w0 in zip(net.get_weights(), initial, strict=True):  # no epoch completed
        np.testing.assert_array_equal(w, w0)


def test_a_last_update_that_overflows_is_caught_by_the_validation_loss():
    X, y = _regression()
    obj = Objective("mse", "regression", 0)
    net = MLP([2, 4, 1], activation="tanh", seed=0)
    # One batch per epoch: its loss is finite, the update sends the weights to inf.
    with pytest.raises(NonFiniteLossError, match=r"at epoch 1 \(validation\)") as info:
        fit(net, obj, X, y, X, y, epochs=3, batch_size=40, optimizer=SGD(net.params(), lr=1e308))
    assert info.value.batch is None and info.value.history.epochs == 0


def test_objective_shapes_and_mismatch():
    assert Objective(None, "multiclass", 10).name == "sparse_softmax_cross_entropy"
    assert Objective(None, "binary", 2).name == "sigmoid_cross_entropy"
    assert Objective(None, "regression", 0).name == "mean_squared_error"
    obj = Objective("sparse_softmax_cross_entropy", "binary", 2)
    assert (obj.n_outputs, obj.output) == (2, None)
    obj = Objective("mse", "multiclass", 3)
    assert (obj.n_outputs, obj.output) == (3, "softmax")
    np.testing.assert_array_equal(obj.encode(np.array([2, 0])), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(
        LossMismatchError,
        match=r"sigmoid_cross_entropy does not fit digits: it takes 0/1 \(or soft\) targets, "
        r"but digits has 10 classes \(multiclass\); losses that fit: softmax_cross_entropy",
    ):
        Objective("sigmoid_cross_entropy", "multiclass", 10, dataset="digits")
    with pytest.raises(LossMismatchError, match="takes integer class ids, but diabetes has a real"):
        Objective("cross_entropy", "regression", 0, dataset="diabetes")
    for key, value in (("reduction", "sum"), ("axis", 0), ("sample_weight", np.ones(2))):
        with pytest.raises(
            ValueError, match=f"{key} cannot be set for training: the training loop"
        ):
            Objective("cross_entropy", "multiclass", 3, **{key: value})


def test_r2_score_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=50), rng.normal(size=50)
    assert r2_score(y, p) == pytest.approx(metrics.r2_score(y, p))


def test_train_model_on_breast_cancer_and_save(tmp_path):
    result = train_model(load_builtin("breast_cancer"), epochs=8, seed=0)
    assert result.objective.name == "sigmoid_cross_entropy"
    assert result.model.sizes == [30, 128, 1]
    assert set(result.metrics) == {"train", "val", "test"}
    assert result.metrics["test"]["accuracy"] > 0.9
    d = result.as_dict()
    assert d["loss"] == "sigmoid_cross_entropy" and d["epochs_run"] == 8
    path = tmp_path / "bc.npz"
    result.save(path)
    model, meta, arrays = load_model(path)
    assert meta["class_names"] == ["malignant", "benign"]
    X = result.x_scaler.transform(load_builtin("breast_cancer").X[:5])
    np.testing.assert_array_equal(model.forward(X), result.model.forward(X))
    np.testing.assert_array_equal(arrays["x_mean"], result.x_scaler.mean_)


def test_array_loss_options_are_saved_as_json(tmp_path):
    weights = np.array([1.0, 2.0, 1.0])
    result = train_model(
        load_builtin("iris"), epochs=2, seed=0, loss_options={"class_weight": weights}
    )
    assert result.config["loss_options"] == {"class_weight": [1.0, 2.0, 1.0]}
    path = tmp_path / "iris.npz"
    result.save(path)
    _, meta, _ = load_model(path)
    assert meta["loss_options"] == {"class_weight": [1.0, 2.0, 1.0]}


def test_train_model_regression_reports_r2_and_mae():
    result = train_model(load_builtin("diabetes"), epochs=5, activation="tanh", seed=0)
    m = result.metrics["test"]
    assert set(m) == {"loss", "r2", "mae"}
    assert m["mae"] > 10  # in the target's own unit, not the standardised one
    assert result.y_scaler is not None


@pytest.mark.parametrize(
    "loss",
    [
        "softmax_cross_entropy",
        "sparse_softmax_cross_entropy",
        "categorical_cross_entropy",
        "sparse_categorical_cross_entropy",
        "mean_squared_error",
        "mean_absolute_error",
    ],
)
def test_every_classification_loss_trains_wine(loss):
    result = train_model(load_builtin("wine"), loss=loss, epochs=25, seed=0, patience=None)
    h = result.history
    assert h.train_loss[-1] < h.train_loss[0]
    assert result.metrics["test"]["accuracy"] > 0.8


def _blas_threads():
    from threadpoolctl import threadpool_info

    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_small_networks_train_on_one_blas_thread(monkeypatch):
    """BLAS's threads oversubscribe on the MLP's small products (2x slower on 2 busy cores)."""
    pytest.importorskip("threadpoolctl")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    before = _blas_threads()
    seen = []
    train_model(
        load_builtin("iris"), epochs=1, hidden=(8,), on_epoch=lambda h: seen.append(_blas_threads())
    )
    assert seen == [{1}]
    assert _blas_threads() == before  # restored afterwards


def test_large_products_and_the_user_s_setting_keep_blas_threads(monkeypatch):
    from losskit.train.pipeline import SMALL_PRODUCT, blas_threads_for

    pytest.importorskip("threadpoolctl")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    before = _blas_threads()
    with blas_threads_for([64, 128, 10], 32):  # 32 x 64 x 128: small
        assert _blas_threads() == {1}
    with blas_threads_for([64, 4096, 10], SMALL_PRODUCT // (64 * 4096)):  # at the threshold
        assert _blas_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with blas_threads_for([64, 128, 10], 32):
        assert _blas_threads() == before
