"""The NumPy MLP: each layer's backward and the whole network's gradient.

References: central finite differences of the forward pass (float64), and
PyTorch autograd on the same weights with the same loss.
"""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk
from losskit.train.init import INITIALIZERS, glorot_uniform, he_normal
from losskit.train.model import MLP, Dense, ReLU, Sigmoid, Softmax, Tanh, load_model
from losskit.train.objective import Objective

RNG = np.random.default_rng(1234)


def numeric_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to x (perturbed in place)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * h)
    return g


@pytest.mark.parametrize(
    "layer", [ReLU(), Tanh(), Sigmoid(), Softmax()], ids=lambda layer: type(layer).__name__
)
def test_activation_backward_matches_finite_differences(layer):
    x = RNG.normal(size=(4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from ReLU's kink
    w = RNG.normal(size=(4, 5))  # L = sum(w * layer(x)) so dL/dy = w
    layer.forward(x)
    analytic = layer.backward(w)
    numeric = numeric_grad(lambda: float(np.sum(w * layer.forward(x))), x)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_dense_backward_matches_finite_differences():
    layer = Dense(3, 2, rng=np.random.default_rng(0))
    x = RNG.normal(size=(5, 3))
    w = RNG.normal(size=(5, 2))
    layer.forward(x)
    dx = layer.backward(w)

    def f() -> float:
        return float(np.sum(w * layer.forward(x)))

    np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-6)
    np.testing.assert_allclose(layer.dW, numeric_grad(f, layer.W), rtol=1e-6)
    np.testing.assert_allclose(layer.db, numeric_grad(f, layer.b), rtol=1e-6)


# Every catalogue loss, on a task it can train.
CASES = [
    ("sparse_softmax_cross_entropy", "multiclass"),
    ("softmax_cross_entropy", "multiclass"),
    ("categorical_cross_entropy", "multiclass"),
    ("sparse_categorical_cross_entropy", "multiclass"),
    ("mean_squared_error", "multiclass"),
    ("sigmoid_cross_entropy", "binary"),
    ("binary_cross_entropy", "binary"),
    ("mean_squared_error", "binary"),
    ("mean_squared_error", "regression"),
    ("mean_absolute_error", "regression"),
]


def _problem(loss: str, task: str, activation: str = "tanh"):
    n_classes = {"multiclass": 3, "binary": 2, "regression": 0}[task]
    obj = Objective(loss, task, n_classes)
    net = MLP([4, 6, 5, obj.n_outputs], activation=activation, output=obj.output, seed=3)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 4))
    if task == "regression":
        y = rng.normal(size=8)
    else:
        y = np.arange(8) % n_classes
    return obj, net, x, y


@pytest.mark.parametrize(("loss", "task"), CASES)
def test_network_gradient_matches_finite_differences(loss, task):
    obj, net, x, y = _problem(loss, task)
    truth = obj.encode(y)
    _, dout = obj.value_and_grad(net.forward(x), truth)
    net.backward(dout)
    for p, g in zip(net.params(), net.grads(), strict=True):
        numeric = numeric_grad(lambda: obj.value(net.forward(x), truth), p)
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-8)


def _torch_loss(torch, loss: str, out, truth):
    F = torch.nn.functional
    t = torch.tensor(truth)
    if loss == "sparse_softmax_cross_entropy":
        return F.cross_entropy(out, t)
    if loss == "softmax_cross_entropy":
        return F.cross_entropy(out, t)  # soft targets
    if loss == "categorical_cross_entropy":
        return -(t * torch.log(out.clamp(1e-7, 1 - 1e-7))).sum(dim=1).mean()
    if loss == "sparse_categorical_cross_entropy":
        return F.nll_loss(torch.log(out.clamp(1e-7, 1 - 1e-7)), t)
    if loss == "sigmoid_cross_entropy":
        return F.binary_cross_entropy_with_logits(out, t)
    if loss == "binary_cross_entropy":
        return F.binary_cross_entropy(out, t)
    if loss == "mean_squared_error":
        return F.mse_loss(out, t)
    return F.l1_loss(out, t)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize(("loss", "task"), CASES)
def test_network_gradient_matches_torch_autograd(loss, task, activation):
    torch = pytest.importorskip("torch")
    obj, net, x, y = _problem(loss, task, activation)
    truth = obj.encode(y)
    value, dout = obj.value_and_grad(net.forward(x), truth)
    net.backward(dout)

    params = [torch.tensor(p, requires_grad=True) for p in net.params()]
    h = torch.tensor(x)
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i + 2 < len(params):
            h = torch.relu(h) if activation == "relu" else torch.tanh(h)
    if obj.output == "softmax":
        h = torch.softmax(h, dim=1)
    elif obj.output == "sigmoid":
        h = torch.sigmoid(h)
    ref = _torch_loss(torch, loss, h, truth)
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-10)
    for g, p in zip(net.grads(), params, strict=True):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_initialisers_are_seeded_and_scaled():
    a = MLP([64, 128, 10], seed=5).get_weights()
    b = MLP([64, 128, 10], seed=5).get_weights()
    c = MLP([64, 128, 10], seed=6).get_weights()
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    w = he_normal(400, 300, np.random.default_rng(0))
    assert w.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    w = glorot_uniform(400, 300, np.random.default_rng(0))
    assert np.abs(w).max() <= np.sqrt(6 / 700)
    assert w.var() == pytest.approx(2 / 700, rel=0.03)
    assert set(INITIALIZERS) >= {"he", "glorot"}


def test_mlp_rejects_bad_configuration():
    with pytest.raises(ValueError, match="`sizes` needs an input and an output width"):
        MLP([4])
    with pytest.raises(ValueError, match="`activation` must be one of relu, tanh; got 'gelu'"):
        MLP([4, 2], activation="gelu")
    with pytest.raises(ValueError, match="`output` must be None, 'softmax' or 'sigmoid'"):
        MLP([4, 2], output="softplus")


def test_save_and_load_round_trip(tmp_path):
    net = MLP([4, 6, 3], activation="tanh", output="softmax", seed=2)
    path = tmp_path / "model.npz"
    net.save(path, meta={"loss": "categorical_cross_entropy"}, arrays={"x_mean": np.ones(4)})
    again, meta, extra = load_model(path)
    x = RNG.normal(size=(5, 4))
    np.testing.assert_array_equal(again.forward(x), net.forward(x))
    assert meta == {"loss": "categorical_cross_entropy"}
    np.testing.assert_array_equal(extra["x_mean"], np.ones(4))
    assert again.describe() == "4-6-3 tanh + softmax"
    with np.load(path, allow_pickle=False) as data:  # readable without pickle
        assert "header" in data.files


def test_failed_save_leaves_no_partial_file(tmp_path):
    net = MLP([4, 3], seed=0)
    path = tmp_path / "m.npz"
    with pytest.raises(TypeError, match="not JSON serializable"):
        net.save(path, meta={"w": object()})
    assert list(tmp_path.iterdir()) == []
    net.save(path, meta={"ok": 1})
    before = path.read_bytes()
    with pytest.raises(TypeError):
        MLP([4, 5, 3], seed=1).save(path, meta={"w": object()})
    assert path.read_bytes() == before  # the old model is still there, whole
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_load_rejects_other_files(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"other.npz is not a model saved by losskit"):
        load_model(other)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"junk.npz is not a .npz file written by losskit"):
        load_model(junk)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.npz")


def test_softmax_layer_uses_the_library():
    x = RNG.normal(size=(3, 4)) * 50
    np.testing.assert_allclose(Softmax().forward(x), lk.softmax(x, axis=-1))


def test_failed_save_names_the_path_given_not_the_temporary_file(tmp_path):
    path = tmp_path / "m.npz"
    path.mkdir()  # a directory where the file should go: the final rename fails
    with pytest.raises(IsADirectoryError) as info:
        MLP([4, 3], seed=0).save(path)
    assert info.value.filename == str(path)
    assert ".partial" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left
