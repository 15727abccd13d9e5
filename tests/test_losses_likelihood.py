"""poisson_nll, gaussian_nll, kl_divergence and negative_log_likelihood.

Against the frameworks themselves in float64 (PyTorch's ``poisson_nll_loss``,
``gaussian_nll_loss``, ``kl_div``, ``nll_loss``; Keras 3's ``poisson`` and
``kl_divergence``; optax's ``kl_divergence``, ``kl_divergence_with_log_targets``,
``generalized_kl_divergence`` and ``convex_kl_divergence``), values and
``value_and_grad`` gradients on every backend, each reduction and ``sample_weight``;
PyTorch's shape rules for ``var``; edge cases (zero counts and rates, ``-inf``
log-probabilities against zero targets, ignored rows, variances below ``eps``, huge
counts), half precision, empty batches, exact error texts, derivatives for every
floating argument (targets, variances and weights too) under torch autograd and
``jax.grad``, the NaN rule under ``jax.jit`` and ``torch.compile``.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest

import losskit as lk
from _refs_regression import keras_ref, optax_ref, reduce_ref, run, torch_ref
from conftest import assert_close, round_to, softmax_np
from losskit import _config
from losskit.losses.likelihood import (
    gaussian_nll,
    kl_divergence,
    negative_log_likelihood,
    poisson_nll,
)

REDUCTIONS = ("none", "sum", "mean")
# The weighted mean covers the plain one (test_torch_reductions_map_onto_the_core
# compares PyTorch's own reductions without weights).
COMBOS = [("none", False), ("sum", True), ("mean", True)]


def _log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.log(softmax_np(z, axis=axis))


def _data(case_id: str) -> dict:
    """The arrays of one case (float64 / int64 NumPy), seeded by the case's name."""
    rng = np.random.default_rng(sum(map(ord, case_id)))
    name, opts = CASES[case_id]
    if name == "poisson":
        rate = rng.uniform(0.2, 4.0, size=(4, 3))
        counts = rng.choice([0.0, 1.0, 2.0, 3.0, 7.0, 0.5, 2.5], size=(4, 3))
        pred = np.log(rate) if opts.get("log_input") else rate
        return {"pred": pred, "target": counts}
    if name == "gaussian":
        shape, var_shape = (2, 3, 4), opts["var_shape"]
        var = 2.5 if var_shape == "float" else rng.uniform(0.2, 3.0, size=var_shape)
        return {"pred": rng.normal(size=shape), "target": rng.normal(size=shape), "var": var}
    if name == "kl":
        t = softmax_np(rng.normal(size=(5, 4)) * 2)
        if opts.get("log_target"):  # a log-target of -inf is NaN in PyTorch: see test_kl_corners
            return {"pred": _log_softmax(rng.normal(size=(5, 4))), "target": np.log(t)}
        t[1, 2], t[3, 0] = 0.0, 0.0  # zero targets: 0 (log 0 - log q) = 0
        truth = t / t.sum(axis=-1, keepdims=True)
        return {"pred": _log_softmax(rng.normal(size=(5, 4))), "target": truth}
    labels = np.array([0, 3, 2, -100 if "ignore_index" in opts else 1, 1, 3])
    return {"pred": _log_softmax(rng.normal(size=(6, 4))), "target": labels}


CASES = {
    "poisson": ("poisson", {}),
    "poisson-full": ("poisson", {"full": True}),
    "poisson-log": ("poisson", {"log_input": True}),
    "poisson-log-full": ("poisson", {"log_input": True, "full": True}),
    "poisson-keras": ("poisson", {"eps": 1e-7}),
    "gaussian": ("gaussian", {"var_shape": (2, 3, 4)}),
    "gaussian-last1-full": ("gaussian", {"var_shape": (2, 3, 1), "full": True}),
    "gaussian-fewer": ("gaussian", {"var_shape": (2, 3)}),
    "gaussian-middle1": ("gaussian", {"var_shape": (2, 1, 4)}),
    "gaussian-float": ("gaussian", {"var_shape": "float", "eps": 1e-3}),
    "kl": ("kl", {}),
    "kl-log_target": ("kl", {"log_target": True}),
    "nll": ("nll", {}),
    "nll-weight-ignore": ("nll", {"class_weight": [0.5, 2.0, 1.0, 3.0], "ignore_index": -100}),
}
FNS = {
    "poisson": poisson_nll,
    "gaussian": gaussian_nll,
    "kl": kl_divergence,
    "nll": negative_log_likelihood,
}


def _options(case_id: str) -> dict:
    opts = dict(CASES[case_id][1])
    opts.pop("var_shape", None)
    return opts


def _arrays(case_id: str) -> tuple:
    d = _data(case_id)
    return (d["pred"], d["target"]) + ((d["var"],) if "var" in d else ())


def _labels_ok(y: np.ndarray) -> np.ndarray:
    return np.where(y == -100, 0, y)


@functools.cache
def _refs(case_id: str) -> dict:
    """Each framework's unreduced loss, its derivative in the prediction and the
    per-example count of the mean (class weight, 0 if ignored) for one case."""
    import torch
    import torch.nn.functional as F

    name, _ = CASES[case_id]
    opts = _options(case_id)
    args = _arrays(case_id)
    out = {}
    if name == "poisson":
        # PyTorch's default is log_input=True, the core's False (as Keras's poisson)
        topts = {"log_input": False, **opts}
        out["torch"] = (*torch_ref(F.poisson_nll_loss, *args, **topts), None)
        if opts == {"eps": 1e-7}:  # Keras's poisson is this case
            out["keras"] = (*keras_ref("poisson", *args), None)
    elif name == "gaussian":
        p, t, v = args
        var = v if np.isscalar(v) else torch.tensor(v)  # var's own grad is tested apart
        per, dper = torch_ref(lambda p, t, **k: F.gaussian_nll_loss(p, t, var, **k), p, t, **opts)
        out["torch"] = (per, dper, None)
    elif name == "kl":
        lp, t = args
        per, dper = torch_ref(F.kl_div, lp, t, **opts)  # elementwise: sum the classes
        out["torch"] = (per.sum(axis=-1), dper, None)
        optax_name = "kl_divergence_with_log_targets" if opts else "kl_divergence"
        out["optax"] = (*optax_ref(optax_name, lp, t), None)
    else:
        lp, y = args
        w = opts.get("class_weight")
        wt = None if w is None else torch.tensor(w, dtype=torch.float64)
        x = torch.tensor(lp, requires_grad=True)
        per = F.nll_loss(x, torch.tensor(y), weight=wt, reduction="none")
        (g,) = torch.autograd.grad(per.sum(), x)
        counted = (y != -100).astype(float)
        counts = counted * (1.0 if w is None else np.asarray(w)[_labels_ok(y)])
        out["torch"] = (per.detach().numpy(), g.numpy(), counts)
    return out


def _case_call(case_id: str):
    """``(fn, positional arrays, options)`` of a case, for :func:`run`."""
    name, _ = CASES[case_id]
    return FNS[name], _arrays(case_id), _options(case_id)


# every case but those whose only difference is covered elsewhere (the var shapes:
# test_gaussian_var_shapes_pytorch_accepts)
MATCH_CASES = [c for c in CASES if c not in ("poisson-log", "gaussian", "gaussian-middle1", "nll")]


@pytest.mark.parametrize(("reduction", "weighted"), COMBOS)
@pytest.mark.parametrize("case_id", MATCH_CASES)
def test_matches_every_framework(xp, case_id, reduction, weighted):
    fn, args, opts = _case_call(case_id)
    batch = np.shape(args[0])[:1]
    sw = np.random.default_rng(3).uniform(0.0, 2.0, size=batch) if weighted else None
    got_v, got_g = run(xp, fn, *args, reduction=reduction, sample_weight=sw, **opts)
    for framework, (per, dper, counts) in _refs(case_id).items():
        exp_v, exp_g = reduce_ref(per, dper, reduction, sw, counts)
        assert_close(got_v, exp_v, err_msg=f"{case_id} value vs {framework}")
        assert_close(got_g, exp_g, kind="grad", err_msg=f"{case_id} gradient vs {framework}")


def test_torch_reductions_map_onto_the_core():
    """PyTorch's own reductions: kl_div "batchmean" is the core's "mean", its "mean"
    the core's sum over every element; nll_loss's weighted mean is the core's; the
    elementwise losses' "mean" and "sum" are the core's."""
    import torch
    import torch.nn.functional as F

    lp, t = (torch.tensor(a) for a in _arrays("kl"))
    core_sum = float(kl_divergence(lp, t, reduction="sum"))
    assert float(F.kl_div(lp, t, reduction="batchmean")) == pytest.approx(
        float(kl_divergence(lp, t)), rel=1e-12
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's warning about its "mean"
        assert float(F.kl_div(lp, t, reduction="mean")) == pytest.approx(
            core_sum / lp.numel(), rel=1e-12
        )
    lp, y = (torch.tensor(a) for a in _arrays("nll-weight-ignore"))
    w = torch.tensor(CASES["nll-weight-ignore"][1]["class_weight"], dtype=torch.float64)
    for reduction in ("mean", "sum"):
        expected = F.nll_loss(lp, y, weight=w, ignore_index=-100, reduction=reduction)
        got = negative_log_likelihood(lp, y, class_weight=w, ignore_index=-100, reduction=reduction)
        torch.testing.assert_close(got, expected)
    for case_id, f in (("poisson-full", F.poisson_nll_loss), ("gaussian-fewer", None)):
        fn, args, opts = _case_call(case_id)
        targs = [torch.tensor(a) for a in args]
        for reduction in ("mean", "sum"):
            if f is None:
                expected = F.gaussian_nll_loss(*targs, reduction=reduction)
            else:
                expected = f(*targs, reduction=reduction, log_input=False, **opts)
            torch.testing.assert_close(fn(*targs, reduction=reduction, **opts), expected)


# --------------------------------------------------------------------------- Poisson


def test_poisson_edges(xp):
    """eps = 0: rate 0 with count 0 is 0 (0 log 0 = 0), derivative 1; rate 0 with count
    2 is +inf.  log_input: log-rate -inf with count 0 is 0, derivative e^-inf - 0 = 0.
    full: the Stirling term is 0 for t <= 1 (PyTorch), 2 log 2 - 2 + ½ log 4π at t = 2."""
    v, g = run(xp, poisson_nll, np.array([0.0, 0.0, 1.5]), np.array([0.0, 2.0, 0.0]),
               eps=0.0, reduction="none")  # fmt: skip
    np.testing.assert_array_equal(v, [0.0, math.inf, 1.5])
    np.testing.assert_array_equal(g[[0, 2]], [1.0, 1.0])
    assert g[1] == -math.inf
    v, g = run(xp, poisson_nll, np.array([-math.inf, 0.0]), np.array([0.0, 1.0]),
               log_input=True, reduction="none")  # fmt: skip
    np.testing.assert_array_equal(v, [0.0, 1.0])
    np.testing.assert_array_equal(g, [0.0, 0.0])
    t = np.array([0.0, 1.0, 2.0])
    v, _ = run(xp, poisson_nll, np.ones(3), t, full=True, eps=0.0, reduction="none")
    stirling = 2 * math.log(2) - 2 + 0.5 * math.log(4 * math.pi)
    np.testing.assert_allclose(v, [1.0, 1.0, 1 - 2 * 0 + stirling], rtol=1e-14)


def test_poisson_full_huge_counts(xp):
    """float32 rate = count = 3e38 with full=True: (λ - t) - t (log λ - log t) + ½ log 2πt
    = ½ log(2π 3e38) = 45.25; PyTorch's sum of λ - t log λ and t log t overflows to NaN."""
    import torch
    import torch.nn.functional as F

    p = np.array([3e38, 1e30], np.float32)
    v, g = run(xp, poisson_nll, p, p, dtype="float32", full=True, reduction="none")
    np.testing.assert_allclose(v, 0.5 * np.log(2 * np.pi * p.astype(np.float64)), rtol=1e-5)
    np.testing.assert_allclose(g, [0.0, 0.0], atol=1e-6)
    torch_v = F.poisson_nll_loss(torch.tensor(p), torch.tensor(p), full=True, reduction="none")
    assert not np.isfinite(torch_v.numpy()[0])


def test_keras_poisson_averages_the_last_axis(keras_losses):
    p, t = _arrays("poisson-keras")
    expected = np.asarray(keras_losses.poisson(t, p))
    got = poisson_nll(p, t, eps=1e-7, reduction="none").mean(axis=-1)
    assert_close(got, expected)


def test_poisson_rules():
    with pytest.raises(ValueError) as info:
        poisson_nll(np.ones((2, 2)), np.array([[1.0, -2.0], [0.0, 1.0]]))
    assert str(info.value) == "`target` must be non-negative; got -2.0 at position (0, 1)"
    with pytest.raises(ValueError) as info:
        poisson_nll(np.array([1.0, -0.5]), np.ones(2))
    assert str(info.value) == "`pred` must be non-negative; got -0.5 at position (1,)"
    # log-rates may be negative; the framework rules compute with negative counts
    assert np.isfinite(poisson_nll(np.array([-3.0, 2.0]), np.ones(2), log_input=True))
    with _config.framework_rules():
        assert np.isfinite(poisson_nll(np.ones(2), np.array([-1.0, 1.0])))


@pytest.mark.parametrize(
    ("option", "value", "error", "message"),
    [
        ("eps", -1e-8, ValueError, "`eps` must be a non-negative finite number; got -1e-08"),
        ("eps", math.inf, ValueError, "`eps` must be a non-negative finite number; got inf"),
        ("eps", "0", TypeError, "`eps` must be a non-negative finite number; got '0'"),
        ("full", 1, TypeError, "`full` must be a bool; got 1"),
        ("log_input", "yes", TypeError, "`log_input` must be a bool; got 'yes'"),
    ],
)
def test_poisson_option_errors(option, value, error, message):
    with pytest.raises(error) as info:
        poisson_nll(np.ones(2), np.ones(2), **{option: value})
    assert str(info.value) == message


# --------------------------------------------------------------------------- Gaussian


@pytest.mark.parametrize(
    ("pred_shape", "var_shape"),
    [
        ((2, 3, 4), (1, 3, 4)),
        ((2, 3, 4), (2, 3, 1)),
        ((2, 3, 4), (2, 3)),
        ((5,), ()),
        ((5,), (1,)),
        ((), ()),
    ],
)
def test_gaussian_var_shapes_pytorch_accepts(pred_shape, var_shape):
    """Every shape PyTorch 2.13 accepts gives PyTorch's numbers."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    p, t = (torch.tensor(rng.normal(size=pred_shape)) for _ in range(2))
    var = torch.tensor(rng.uniform(0.5, 2.0, size=var_shape))
    for reduction in ("none", "sum"):
        expected = F.gaussian_nll_loss(p, t, var, reduction=reduction)
        torch.testing.assert_close(gaussian_nll(p, t, var, reduction=reduction), expected)


@pytest.mark.parametrize(
    ("pred_shape", "var_shape"),
    [
        ((2, 3, 4), (2, 1, 1)),
        ((2, 3, 4), (3, 4)),
        ((2, 3, 4), (4,)),
        ((2, 3), (2, 3, 1)),
        ((2, 3), (3, 3)),
        ((), (1,)),
    ],
)
def test_gaussian_var_shapes_refused(pred_shape, var_shape):
    """No other broadcasting: (2, 1, 1) has two axes of 1, (3, 4) and (4,) drop leading
    axes (PyTorch refuses those too); a 0-d prediction takes a 0-d variance only."""
    p = np.zeros(pred_shape)
    with pytest.raises(ValueError) as info:
        gaussian_nll(p, p, np.ones(var_shape))
    if pred_shape == ():
        assert str(info.value) == "`var` must have the shape of `pred` (); got (1,)"
        return
    ones, fewer = (*pred_shape[:-1], 1), pred_shape[:-1]
    assert str(info.value) == (
        f"`var` must have the shape of `pred` {pred_shape}, that shape with one axis of "
        f"size 1 such as {ones}, or one axis fewer, {fewer} (PyTorch's rules; losskit "
        f"broadcasts no further); got {var_shape}"
    )


def test_gaussian_var_rules():
    """Negative variances are refused (as PyTorch); NaN by the core only."""
    with pytest.raises(ValueError) as info:
        gaussian_nll(np.zeros((2, 2)), np.zeros((2, 2)), np.array([1.0, -0.5]))
    assert str(info.value) == "`var` must be non-negative; got -0.5 at position (1,)"
    with pytest.raises(ValueError) as info:
        gaussian_nll(np.zeros(2), np.zeros(2), -1.0)
    assert str(info.value) == "`var` must be non-negative; got -1.0"
    with pytest.raises(ValueError, match=r"^`var` must be non-negative; got nan at position"):
        gaussian_nll(np.zeros(2), np.zeros(2), np.array([1.0, math.nan]))
    with _config.framework_rules():
        assert np.isnan(gaussian_nll(np.zeros(2), np.zeros(2), np.array([1.0, math.nan])))
        with pytest.raises(ValueError, match=r"^`var` must be non-negative; got -1\.0 at"):
            gaussian_nll(np.zeros(2), np.zeros(2), np.array([-1.0, 1.0]))
    for option, value, error, message in (
        ("eps", 0.0, ValueError, "`eps` must be a positive finite number; got 0.0"),
        ("eps", None, TypeError, "`eps` must be a positive finite number; got None"),
        ("full", "no", TypeError, "`full` must be a bool; got 'no'"),
    ):
        with pytest.raises(error) as info:
            gaussian_nll(np.zeros(2), np.zeros(2), np.ones(2), **{option: value})
        assert str(info.value) == message


def test_gaussian_var_derivative(autograd_xp):
    """d/dvar = ½ (1/v - (p - t)^2 / v^2) (PyTorch's where var >= eps); 0 where var < eps
    (the clamp's derivative), where PyTorch passes the unclamped formula through."""
    import torch
    import torch.nn.functional as F

    p, t = np.array([1.0, 2.0, 0.5, 1.0]), np.array([0.0, 0.5, 0.5, 3.0])
    var = np.array([0.5, 2.0, 1e-9, 1e-9])  # the last two below eps = 1e-6
    xp = autograd_xp
    _, g = xp.autograd(lambda v: gaussian_nll(xp.asarray(p), xp.asarray(t), v,
                                              reduction="sum"), xp.asarray(var))  # fmt: skip
    g = xp.to_numpy(g)
    vt = torch.tensor(var, requires_grad=True)
    F.gaussian_nll_loss(torch.tensor(p), torch.tensor(t), vt, reduction="sum").backward()
    np.testing.assert_allclose(g[:2], vt.grad.numpy()[:2], rtol=1e-12)
    np.testing.assert_allclose(g[:2], 0.5 * (1 / var[:2] - (p - t)[:2] ** 2 / var[:2] ** 2))
    np.testing.assert_array_equal(g[2:], [0.0, 0.0])
    assert vt.grad[3] != 0  # PyTorch's pass-through


def test_gaussian_huge_values(xp):
    """float32 p - t = 1e20 with var 1e30: (p - t)^2 = 1e40 overflows, the ratio 1e10 does
    not: ½ (log 1e30 + 1e10), derivative 1e20 / 1e30.  p = 3e38, t = -3e38, var = 3e38:
    p - t overflows, ½ (log 3e38 + 36e76 / 3e38) = 6e38 + 44.3 is beyond float32: inf,
    derivative 6e38 / 3e38 = 2."""
    v, g = run(xp, gaussian_nll, np.array([1e20]), np.array([0.0]), np.array([1e30]),
               dtype="float32")  # fmt: skip
    np.testing.assert_allclose(v, 0.5 * (math.log(1e30) + 1e10), rtol=1e-6)
    np.testing.assert_allclose(g, [1e-10], rtol=1e-6)
    v, g = run(xp, gaussian_nll, np.array([3e38]), np.array([-3e38]), np.array([3e38]),
               dtype="float32")  # fmt: skip
    assert v == math.inf
    np.testing.assert_allclose(g, [2.0], rtol=1e-6)


# --------------------------------------------------------------------------- KL


def test_kl_corners(xp):
    """A zero target against a -inf log-probability (a masked class) counts 0, as
    ``torch.xlogy``; PyTorch's kl_div and optax give NaN there.  With log_target a -inf
    log-target counts 0 (PyTorch: NaN).  A positive target against -inf is +inf."""
    import torch
    import torch.nn.functional as F

    with np.errstate(divide="ignore"):
        lp = np.log(np.array([[0.0, 0.5, 0.5], [0.25, 0.25, 0.5]]))
        t = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])
        lt = np.log(t)
    v, g = run(xp, kl_divergence, lp, t, reduction="none")
    np.testing.assert_allclose(v, [0.0, 0.5 * math.log(2)], rtol=1e-14)
    np.testing.assert_array_equal(g, -t)
    v2, g2 = run(xp, kl_divergence, lp, lt, log_target=True, reduction="none")
    np.testing.assert_allclose(v2, v, rtol=1e-14)
    np.testing.assert_array_equal(g2, -t)
    per = F.kl_div(torch.tensor(lp), torch.tensor(t), reduction="none").sum(-1)
    assert math.isnan(per[0]) and not math.isnan(per[1])
    assert np.isnan(optax_ref("kl_divergence", lp, t)[0][0])
    v, _ = run(xp, kl_divergence, lp, t[::-1].copy(), reduction="none")
    assert v[0] == math.inf


def test_kl_target_derivative(autograd_xp):
    """d/dt_c = log t_c + 1 - log q_c (PyTorch's autograd of kl_div where t_c > 0); at
    t_c = 0 the t log t part counts 0 (torch.xlogy's convention), leaving -log q_c;
    PyTorch's kl_div gives NaN there."""
    import torch
    import torch.nn.functional as F

    xp = autograd_xp
    lp = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]]))
    t = np.array([[0.3, 0.3, 0.4], [0.0, 0.5, 0.5]])
    _, g = xp.autograd(lambda tt: kl_divergence(xp.asarray(lp), tt, reduction="sum"),
                       xp.asarray(t))  # fmt: skip
    g = xp.to_numpy(g)
    tt = torch.tensor(t, requires_grad=True)
    F.kl_div(torch.tensor(lp), tt, reduction="sum").backward()
    np.testing.assert_allclose(g[0], tt.grad.numpy()[0], rtol=1e-12)
    np.testing.assert_allclose(g[1, 1:], tt.grad.numpy()[1, 1:], rtol=1e-12)
    assert g[1, 0] == pytest.approx(-lp[1, 0], rel=1e-14)
    assert math.isnan(tt.grad[1, 0])


def test_kl_keras_and_optax_map_onto_the_core(keras_losses):
    """Keras clips probabilities to [1e-7, 1] and takes no logs: its kl_divergence is
    the core's on log(clip(q)) and clip(t), zero targets included.  optax's
    generalized_kl_divergence (and the deprecated convex_kl_divergence) add
    sum(e^{log q} - t)."""
    lp, t = _arrays("kl")
    q = np.exp(lp)
    expected = np.asarray(keras_losses.kl_divergence(t, q))
    got = kl_divergence(np.log(np.clip(q, 1e-7, 1)), np.clip(t, 1e-7, 1), reduction="none")
    assert_close(got, expected)
    extra = np.sum(q - t, axis=-1)
    for name in ("generalized_kl_divergence", "convex_kl_divergence"):
        per, dper = optax_ref(name, lp, t)
        value, grad = kl_divergence(lp, t, reduction="none"), -t
        assert_close(value + extra, per)
        assert_close(grad + q, dper, kind="grad")


def test_kl_class_axis(xp):
    """(N, C, d) with axis=1: PyTorch's elementwise kl_div summed over dim 1."""
    import torch.nn.functional as F

    rng = np.random.default_rng(4)
    lp = _log_softmax(rng.normal(size=(3, 4, 2)), axis=1)
    t = softmax_np(rng.normal(size=(3, 4, 2)), axis=1)
    per, dper = torch_ref(F.kl_div, lp, t)
    for reduction in REDUCTIONS:
        v, g = run(xp, kl_divergence, lp, t, axis=1, reduction=reduction)
        exp_v, exp_g = reduce_ref(per.sum(axis=1), np.moveaxis(dper, 1, -1), reduction)
        assert_close(v, exp_v)
        assert_close(g, np.moveaxis(exp_g, -1, 1), kind="grad")


def test_kl_rules():
    lp = np.log(np.full((2, 2), 0.5))
    cases = [
        ({}, np.array([[0.5, 1.5], [0.5, 0.5]]),
         "`targets` must be in [0, 1]; got 1.5 at position (0, 1)"),
        ({"log_target": True}, np.array([[-1.0, -0.5], [0.2, -1.0]]),
         "`targets` must be log-probabilities (<= 0); got 0.2 at position (1, 0)"),
    ]  # fmt: skip
    for opts, t, message in cases:
        with pytest.raises(ValueError) as info:
            kl_divergence(lp, t, **opts)
        assert str(info.value) == message
        with _config.framework_rules():
            assert np.isfinite(kl_divergence(lp, t, **opts))
    with pytest.raises(ValueError) as info:
        kl_divergence(np.array([[-0.1, 2.0]]), np.array([[0.5, 0.5]]))
    assert str(info.value) == (
        "`log_probs` must be log-probabilities (<= 0); got 2.0 at position (0, 1)"
    )
    with pytest.raises(TypeError) as info:
        kl_divergence(lp, lp, log_target=1)
    assert str(info.value) == "`log_target` must be a bool; got 1"


# --------------------------------------------------------------------------- NLL


def test_nll_ignored_and_infinite(xp):
    """A -inf log-probability at the label is an infinite loss (PyTorch too); an
    all-ignored batch has mean 0 and a zero gradient (PyTorch: NaN)."""
    with np.errstate(divide="ignore"):
        lp = np.log(np.array([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]]))
    v, g = run(xp, negative_log_likelihood, lp, np.array([0, 2]), reduction="none")
    np.testing.assert_allclose(v, [math.inf, -math.log(0.5)])
    np.testing.assert_array_equal(g, [[-1, 0, 0], [0, 0, -1]])
    v, g = run(xp, negative_log_likelihood, lp[1:], np.array([-1]), ignore_index=-1)
    assert v == 0.0
    np.testing.assert_array_equal(g, np.zeros((1, 3)))


def test_nll_ignored_row_with_masked_class_zero(xp):
    """An ignored row whose class 0 is masked (-inf, e.g. a padding token) counts 0,
    as in PyTorch."""
    with np.errstate(divide="ignore"):
        lp = np.log(np.array([[0.0, 0.5, 0.5], [0.0, 0.2, 0.8]]))
    v, g = run(xp, negative_log_likelihood, lp, np.array([1, -100]), ignore_index=-100)
    assert v == pytest.approx(math.log(2))
    np.testing.assert_array_equal(g, [[0, -1, 0], [0, 0, 0]])


def test_nll_class_axis(xp):
    """(N, C, d) with axis=1, class weights and ignored elements: PyTorch's nll_loss."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(5)
    lp = _log_softmax(rng.normal(size=(3, 4, 2)), axis=1)
    y = np.array([[0, 3], [-100, 1], [2, 2]])
    w = np.array([1.0, 0.5, 2.0, 1.5])
    x = torch.tensor(lp, requires_grad=True)
    for reduction in REDUCTIONS:
        expected = F.nll_loss(x, torch.tensor(y), weight=torch.tensor(w), reduction=reduction)
        (eg,) = torch.autograd.grad(expected.sum(), x)
        v, g = run(xp, negative_log_likelihood, lp, y, axis=1, class_weight=w,
                   ignore_index=-100, reduction=reduction)  # fmt: skip
        assert_close(v, expected.detach().numpy())
        assert_close(g, eg.numpy(), kind="grad")


def test_nll_refuses_logits():
    with pytest.raises(ValueError) as info:
        negative_log_likelihood(np.array([[-1.0, 0.5], [2.0, 1.0]]), np.array([0, 1]))
    assert str(info.value) == (
        "`log_probs` must be log-probabilities (<= 0); got 0.5 at position (0, 1)"
    )
    with _config.framework_rules():  # PyTorch's nll_loss computes with anything
        assert float(negative_log_likelihood(np.array([[-1.0, 0.5]]), np.array([1]))) == -0.5


# --------------------------------------------------------------------------- every loss

HALF_CASES = ["poisson-log-full", "gaussian-last1-full", "kl-log_target", "nll-weight-ignore"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("case_id", HALF_CASES)
def test_half_precision(xp, case_id, dtype):
    """Half input: the float32 loss of the rounded input, the gradient in half."""
    xp.require(dtype)
    fn, args, opts = _case_call(case_id)
    rounded = [a if np.isscalar(a) or a.dtype.kind == "i" else round_to(a, dtype) for a in args]
    for reduction in ("none", "mean"):
        got_v, got_g = run(xp, fn, *rounded, dtype=dtype, reduction=reduction, **opts)
        exp_v, exp_g = run(xp, fn, *rounded, reduction=reduction, **opts)
        assert_close(got_v, exp_v, dtype)
        assert_close(got_g, exp_g, dtype, kind="grad")


@pytest.mark.parametrize("name", FNS)
def test_empty(xp, name):
    shape, truth = (0, 3), np.zeros((0, 3))
    extra = (np.zeros((0, 3)),) if name == "gaussian" else ()
    if name == "nll":
        truth = np.zeros(0, dtype=np.int64)
    for reduction in REDUCTIONS:
        v, g = run(xp, FNS[name], np.zeros(shape), truth, *extra, reduction=reduction)
        unreduced = (0,) if name in ("kl", "nll") else shape
        assert_close(v, np.zeros(unreduced) if reduction == "none" else 0.0)
        assert g.shape == shape


# --------------------------------------------------------------------------- autograd

SMOOTH_CASES = ["poisson-full", "poisson-log-full", "gaussian-middle1", "gaussian-fewer",
                "kl", "kl-log_target", "nll-weight-ignore"]  # fmt: skip


def _smooth(case_id: str) -> tuple[dict, np.ndarray | None]:
    """Floating arguments away from every kink and boundary (targets > 0, off t = 1),
    by name, and the labels of NLL."""
    rng = np.random.default_rng(9)
    name, _ = CASES[case_id]
    opts = _options(case_id)
    args = _arrays(case_id)
    sw = rng.uniform(0.5, 2.0, size=np.shape(args[0])[:1])
    if name == "poisson":
        t = rng.choice([0.3, 0.7, 1.6, 2.5, 4.2], size=np.shape(args[0]))
        return {"pred": args[0], "target": t, "sample_weight": sw}, None
    if name == "gaussian":
        return {"pred": args[0], "target": args[1], "var": args[2], "sample_weight": sw}, None
    if name == "kl":
        t = softmax_np(rng.normal(size=np.shape(args[0])))
        t = np.log(t) if opts.get("log_target") else t
        return {"pred": args[0], "target": t, "sample_weight": sw}, None
    cw = np.asarray(opts["class_weight"])
    return {"pred": args[0], "sample_weight": sw, "class_weight": cw}, args[1]


def _call(case_id: str, values: dict, labels, reduction: str):
    opts = {k: v for k, v in _options(case_id).items() if k != "class_weight"}
    v = dict(values)
    positional = [v.pop("pred"), labels if labels is not None else v.pop("target")]
    if "var" in v:
        positional.append(v.pop("var"))
    fn = FNS[CASES[case_id][0]]
    return fn(*positional, reduction=reduction, **v, **opts)


def _plain(case_id: str, ops, values: dict, labels, reduction: str):
    """The textbook formula of each case (ops: torch or jax.numpy), reduced as the core."""
    name, _ = CASES[case_id]
    opts = _options(case_id)
    v = values
    p, s = v["pred"], v["sample_weight"]
    if name == "poisson":
        t = v["target"]
        per = ops.exp(p) - t * p if opts.get("log_input") else p - t * ops.log(p + 1e-8)
        per = per + ops.where(t > 1, t * ops.log(t) - t + 0.5 * ops.log(2 * math.pi * t), 0 * t)
        counts = ops.ones_like(per)
    elif name == "gaussian":
        var = v["var"]
        var = var[..., None] if var.ndim < p.ndim else var
        per = 0.5 * (ops.log(var) + (p - v["target"]) ** 2 / var)
        counts = ops.ones_like(per)
    elif name == "kl":
        t = v["target"]
        per = (ops.exp(t) * (t - p) if opts else t * (ops.log(t) - p)).sum(-1)
        counts = ops.ones_like(per)
    else:
        keep = labels != -100
        safe = ops.where(keep, labels, 0 * labels)
        w = v["class_weight"][safe] * keep
        onehot = safe[:, None] == ops.arange(p.shape[-1])
        per, counts = -w * (p * onehot).sum(-1), w
    s = s.reshape((-1,) + (1,) * (per.ndim - 1))
    if reduction == "none":
        return s * per
    return (s * per).sum() / (s * counts).sum()


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("case_id", SMOOTH_CASES)
def test_torch_autograd_every_argument(case_id, reduction):
    """gradcheck and gradgradcheck of losskit for every floating argument, and its first
    derivatives equal those of the plain formula."""
    import torch

    values, labels = _smooth(case_id)
    names = list(values)
    args = [torch.tensor(values[n], requires_grad=True) for n in names]
    y = None if labels is None else torch.tensor(labels)

    def loss(*a):
        return _call(case_id, dict(zip(names, a, strict=True)), y, reduction)

    assert torch.autograd.gradcheck(loss, args)
    assert torch.autograd.gradgradcheck(loss, args)
    got = loss(*args)
    plain = _plain(case_id, torch, dict(zip(names, args, strict=True)), y, reduction)
    cot = torch.tensor(np.random.default_rng(2).normal(size=tuple(got.shape)))
    for g, e, n in zip(torch.autograd.grad(got, args, cot), torch.autograd.grad(plain, args, cot),
                       names, strict=True):  # fmt: skip
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-9, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("case_id", SMOOTH_CASES)
def test_jax_grad_every_argument(case_id):
    """jax.grad of losskit under jit equals jax.grad of the plain formula (eager jax.grad
    is in test_gaussian_var_derivative and test_kl_target_derivative)."""
    import jax
    import jax.numpy as jnp

    values, labels = _smooth(case_id)
    names = list(values)
    args = [jnp.asarray(values[n]) for n in names]
    y = None if labels is None else jnp.asarray(labels)

    def loss(*a):
        return _call(case_id, dict(zip(names, a, strict=True)), y, "mean")

    def plain(*a):
        return _plain(case_id, jnp, dict(zip(names, a, strict=True)), y, "mean")

    argnums = tuple(range(len(args)))
    expected = jax.jit(jax.grad(plain, argnums))(*args)
    got = jax.jit(jax.grad(loss, argnums))(*args)
    for g, e, n in zip(got, expected, names, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-9, atol=1e-12, err_msg=n)


# --------------------------------------------------------------------------- traced

# (case, argument, index, bad value): each value rule once
NAN_RULES = [
    ("poisson", "target", (1, 2), -1.0),
    ("poisson", "pred", (0, 1), -0.5),
    ("gaussian-fewer", "var", (1, 0), -2.0),
    ("kl", "target", (2, 1), 1.5),
    ("kl-log_target", "target", (2, 1), 0.5),
    ("kl", "pred", (3, 3), 0.25),
    ("nll", "pred", (4, 0), 0.5),
]


@pytest.mark.parametrize(("case_id", "arg", "index", "bad"), NAN_RULES)
def test_jit_nan_rule(case_id, arg, index, bad):
    """Under jax.jit a bad value cannot be read: the examples it enters are NaN in the
    value and in the gradient, every other one equals the eager result."""
    import jax
    import jax.numpy as jnp

    fn, args, opts = _case_call(case_id)
    names = ["pred", "target", "var"][: len(args)]
    good = dict(zip(names, args, strict=True))
    planted = {k: np.array(v, copy=True) for k, v in good.items()}
    planted[arg][index] = bad
    rowwise = CASES[case_id][0] in ("kl", "nll")

    def value(a):
        return fn(*(jnp.asarray(a[n]) for n in names), reduction="none", **opts)

    def grad(a):
        def total(p):
            rest = (jnp.asarray(a[n]) for n in names[1:])
            return fn(p, *rest, reduction="sum", **opts)

        return jax.grad(total)(jnp.asarray(a["pred"]))

    v, g = np.asarray(jax.jit(value)(planted)), np.asarray(jax.jit(grad)(planted))
    eager_v = fn(*good.values(), reduction="none", **opts)  # NumPy: the eager numbers
    eager_g = lk.value_and_grad(fn)(*good.values(), reduction="sum", **opts)[1]
    mask = np.zeros(eager_v.shape, bool)
    mask[index[:-1] if rowwise else index] = True  # a variance of (N, C) spans the last axis
    gmask = np.broadcast_to(mask[..., None], g.shape) if rowwise else mask
    assert np.isnan(v[mask]).all() and np.isnan(g[gmask]).all()
    np.testing.assert_allclose(v[~mask], eager_v[~mask], rtol=1e-12)
    np.testing.assert_allclose(g[~gmask], eager_g[~gmask], rtol=1e-12)


@pytest.mark.parametrize(
    ("case_id", "option"),
    [("poisson-full", None), ("gaussian-fewer", "eps"), ("kl-log_target", None),
     ("nll-weight-ignore", None)],
)  # fmt: skip
def test_torch_compile_equals_eager(case_id, option):
    """fullgraph, no graph break; a float option that changes between calls is traced
    symbolically by the recompile, and must not be formatted or read there."""
    import torch

    fn, args, opts = _case_call(case_id)
    targs = [torch.tensor(a) for a in args]
    if "class_weight" in opts:
        opts["class_weight"] = torch.tensor(opts["class_weight"], dtype=torch.float64)
    sw = torch.linspace(0.5, 2.0, targs[0].shape[0], dtype=torch.float64)

    def call(x, *rest, value=None):
        extra = {} if option is None else {option: value}
        return fn(x, *rest, sample_weight=sw, **opts, **extra)

    compiled = torch.compile(call, fullgraph=True, backend="aot_eager")
    for value in (1e-3, 0.25) if option else (None,):
        torch.testing.assert_close(compiled(*targs, value=value), call(*targs, value=value))
