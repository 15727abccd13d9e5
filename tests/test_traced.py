"""Where values cannot be read: inside ``jax.jit``, ``torch.compile`` and on ``meta`` (issue 7).

The rule under test:

- Eager code (NumPy, eager torch, concrete JAX arrays) refuses a bad value with a
  ``ValueError`` naming the argument, the value and its position: a label outside
  ``[0, C)`` that is not ``ignore_index``; a probability outside [0, 1] or NaN; a
  binary, sigmoid or soft target outside [0, 1] or NaN; a negative, NaN or infinite
  ``class_weight``, ``sample_weight`` or ``pos_weight``.
- Where values cannot be read (inside ``jax.jit`` and ``jax.grad`` of a jitted
  function, inside ``torch.compile`` with any backend, on torch's ``meta`` device)
  nothing raises and nothing syncs; every unreduced loss a bad value affects is NaN
  (so ``"mean"`` and ``"sum"`` are NaN), the gradient of every affected example holds
  NaN (``jax.grad``, torch autograd, ``losskit.value_and_grad``; for an elementwise
  loss the element's gradient is NaN, for the softmax family the example's row holds
  at least one NaN), and every unaffected loss under ``reduction="none"``, and its
  gradient, equals the eager one.  Never a plausible number: before issue 7 a label
  of -1 under ``jax.jit`` silently meant the last class.
- ``torch.compile(..., fullgraph=True)`` works for every loss and option and plain
  ``torch.compile`` does not break the graph; compiled and jitted values and
  gradients equal eager ones (here: the float64 PyTorch references of conftest).
- On ``meta`` every loss and activation returns a ``meta`` result of the right shape
  and dtype, and ``.backward()`` and ``losskit.value_and_grad`` work.
- The warnings for suspicious but valid input (logits that look like probabilities,
  probability rows not summing to 1) are skipped where values cannot be read.

Compiling is slow on the 2-core machine, so one compiled or jitted function per good
case (all three reductions at once) serves that case and every bad value planted in
it (``tests/_traced_cases.py``); most torch tests use the ``aot_eager`` backend
(dynamo's tracing and AOTAutograd, no code generation) and one uses inductor.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from typing import Any

import numpy as np
import pytest

import losskit as lk
from _traced_cases import (
    BAD,
    CASES,
    CCE,
    LOSS_NAMES,
    REDUCTIONS,
    RICHEST,
    SCCE,
    SCE,
    SIG_POS_FLOAT,
    SSCE,
    SSCE_OPTS,
    Bad,
    Case,
)
from conftest import REFS, assert_close, round_to

# Dynamo warns (once per process) when it traces through an lru_cache-wrapped helper
# of array_api_compat; whether losskit causes that warning at all is the subject of
# test_compile_gives_no_warning, so the rest of the file does not depend on the order
# in which the tests run.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Dynamo detected a call to a `functools.lru_cache`-wrapped function:UserWarning"
    ),
    # inductor's first import defines a torch.jit.ScriptModule (torch.utils.mkldnn)
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
]

ids = functools.partial(pytest.mark.parametrize, ids=lambda c: c.id)

_PROBS = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2], [0.3, 0.3, 0.4]])
# valid but suspicious input: eager code warns; where values cannot be read, nothing
_WARNING_CASES = (
    (SCE, _PROBS, lk.ProbabilitiesAsLogitsWarning),
    (SSCE, _PROBS, lk.ProbabilitiesAsLogitsWarning),
    (CCE, _PROBS * 0.9, lk.UnnormalizedProbabilitiesWarning),
    (SCCE, _PROBS * 0.9, lk.UnnormalizedProbabilitiesWarning),
)


@functools.cache
def expected(case: Case, reduction: str) -> tuple[np.ndarray, np.ndarray]:
    """The good case's (value, d sum(value)/dx) from the float64 PyTorch references."""
    return REFS[case.loss](case.x, case.truth, reduction=reduction, **case.options())


def check_equal(case: Case, values: dict, grads: dict, **tol: Any) -> None:
    for r in REDUCTIONS:
        ev, eg = expected(case, r)
        if tol:
            np.testing.assert_allclose(values[r], ev, err_msg=f"{case.id} {r}", **tol)
            np.testing.assert_allclose(grads[r], eg, err_msg=f"{case.id} {r} grad", **tol)
        else:
            assert_close(values[r], ev, err_msg=f"{case.id} {r}")
            assert_close(grads[r], eg, kind="grad", err_msg=f"{case.id} {r} grad")


def check_nan_rule(bad: Bad, values: dict, grads: dict) -> None:
    """The spec's rule for a bad value that could not be read; see the module docstring."""
    case, hit = bad.case, bad.affected
    none = values["none"]
    assert none.shape == case.unreduced_shape
    assert np.isnan(none[hit]).all(), f"affected losses must be NaN; got {none[hit]} in {none}"
    for r in ("sum", "mean"):
        assert np.isnan(values[r]), f"reduction={r!r} must be NaN; got {values[r]}"
    for r, g in grads.items():
        assert g.shape == case.x.shape
        # an example's gradient is its slice along the class axis (one element for the
        # elementwise losses); autograd may leave 0 where the loss does not depend on
        # an element (a class not gathered, a target of 0), but never all finite
        nan = np.isnan(g) if case.axis is None else np.isnan(g).any(axis=case.axis)
        assert nan[hit].all(), (
            f"reduction={r!r}: the gradient of each affected example must hold NaN; got\n{g}"
        )
    if bad.strict:  # the others are exactly what they would be without the bad value
        ev, eg = expected(case, "none")
        ghit = case.grad_mask(hit)
        assert_close(none[~hit], ev[~hit], err_msg="unaffected losses")
        assert_close(grads["none"][~ghit], eg[~ghit], kind="grad", err_msg="unaffected gradient")


# --------------------------------------------------------------------------- eager


def _value_pattern(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "-inf" if value < 0 else r"(?<!-)inf"
    if float(value).is_integer():
        return rf"(?<![\d.]){int(value)}(\.0*)?(?!\d)"
    return re.escape(repr(float(value)))


@ids("bad", BAD)
def test_eager_refuses_the_bad_value(xp, bad):
    """NumPy (portable and fused kernels), eager torch, concrete JAX, array-api-strict."""
    x, truth, arrays = bad.planted()
    case = bad.case
    with pytest.raises(ValueError) as err:
        getattr(lk, case.loss)(
            xp.asarray(x),
            xp.asarray(truth),
            **case.options({k: xp.asarray(v) for k, v in arrays.items()}),
        )
    msg = str(err.value)
    # the argument, what arrived and where (DESIGN: "`labels` must be in [0, 3) ...;
    # got 5 at position (1,)")
    assert f"`{bad.name}`" in msg, msg
    assert re.search(rf"got .*{_value_pattern(bad.value)}", msg, re.IGNORECASE), msg
    if bad.index:
        assert str(bad.index) in msg, msg


@ids("case", CASES)
def test_eager_accepts_zero_weights_and_edge_values(xp, case):
    """Weights of 0 (and -0.0), targets and probabilities of exactly 0 and 1 are valid."""
    x, truth = case.x.copy(), case.truth.copy()
    arrays = {k: v.copy() for k, v in case.arrays.items()}
    for k in ("sample_weight", "class_weight"):
        if k in arrays:
            arrays[k].flat[-1] = -0.0
    if case.loss in ("binary_cross_entropy", "sigmoid_cross_entropy"):
        truth.flat[:2] = [0.0, 1.0]
    if case.loss == "binary_cross_entropy":
        x.flat[:2] = [0.0, 1.0]  # clipped to [eps, 1-eps]; with the targets above: finite
    v = getattr(lk, case.loss)(
        xp.asarray(x),
        xp.asarray(truth),
        reduction="none",
        **case.options({k: xp.asarray(a) for k, a in arrays.items()}),
    )
    assert not np.isnan(xp.to_numpy(v)).any()


def test_eager_integer_targets_outside_0_1():
    """The issue's `losskit explain bce --label 2`: integer targets are read as numbers."""
    with pytest.raises(ValueError, match=r"`targets`.*got 2"):
        lk.binary_cross_entropy(np.array([0.8, 0.3]), np.array([1, 2]))
    with pytest.raises(ValueError, match=r"`targets`.*got -1"):
        lk.sigmoid_cross_entropy(np.array([0.8, 0.3]), np.array([-1, 0]))


def test_issue_examples_eager():
    with pytest.raises(ValueError, match=r"`targets`.*-1"):
        lk.binary_cross_entropy([0.3], [-1.0])
    logits = np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])
    with pytest.raises(ValueError, match=r"`class_weight`.*-1.*\(2,\)"):
        lk.sparse_softmax_cross_entropy(logits, [0, 2], class_weight=[1.0, 1.0, -1.0])
    with pytest.raises(ValueError, match=r"`sample_weight`.*-1.*\(1,\)"):
        lk.sparse_softmax_cross_entropy(logits, [0, 2], sample_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match=r"`class_weight`.*inf"):
        lk.sparse_softmax_cross_entropy(logits, [0, 2], class_weight=[1.0, math.inf, 1.0])
    with pytest.raises(ValueError, match=r"`pos_weight`.*-1"):
        lk.sigmoid_cross_entropy(np.zeros(2), np.ones(2), pos_weight=-1.0)


# --------------------------------------------------------------------------- jax.jit


@functools.cache
def _jax_traced(case: Case) -> Any:
    """One jitted function per case: every reduction's value, its ``jax.grad``, and
    ``losskit.value_and_grad``, all traced at once (one compilation, not nine)."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    fn = getattr(lk, case.loss)
    vg = lk.value_and_grad(fn)

    def everything(x, truth, *ws):
        opts = case.options(dict(zip(case.keys, ws, strict=True)))

        def total(z, r):
            return jnp.sum(fn(z, truth, reduction=r, **opts))

        values = {r: fn(x, truth, reduction=r, **opts) for r in REDUCTIONS}
        grads = {r: jax.grad(functools.partial(total, r=r))(x) for r in REDUCTIONS}
        analytic = {r: vg(x, truth, reduction=r, **opts) for r in REDUCTIONS}
        return values, grads, analytic

    return jax.jit(everything)


def _jax_run(case, x, truth, arrays, *, dtype="float64") -> tuple[Any, Any, Any]:
    """``(values, grads, analytic)`` of the jitted case, as returned (JAX arrays)."""
    jnp = pytest.importorskip("jax.numpy")

    dt = getattr(jnp, dtype)
    opt_dt = jnp.float32 if dtype in ("float16", "bfloat16") else dt
    args = (
        jnp.asarray(x, dtype=dt),
        jnp.asarray(truth) if truth.dtype.kind == "i" else jnp.asarray(truth, dtype=dt),
        *(jnp.asarray(arrays[k], dtype=opt_dt) for k in case.keys),
    )
    return _jax_traced(case)(*args)


def _f64(tree: dict) -> dict:
    return {r: np.asarray(v, dtype=np.float64) for r, v in tree.items()}


def _jax_both(case, x, truth, arrays) -> list[tuple[dict, dict]]:
    """(values, grads) by jax.grad and by losskit.value_and_grad, as float64 NumPy."""
    values, grads, analytic = _jax_run(case, x, truth, arrays)
    return [
        (_f64(values), _f64(grads)),
        (
            _f64({r: v for r, (v, _) in analytic.items()}),
            _f64({r: g for r, (_, g) in analytic.items()}),
        ),
    ]


@ids("case", CASES)
def test_jit_equals_eager(case):
    for values, grads in _jax_both(case, case.x, case.truth, case.arrays):
        check_equal(case, values, grads)


@ids("bad", BAD)
def test_jit_bad_value_is_nan(bad):
    """jax.grad and losskit.value_and_grad inside jit; the truth and weights traced too."""
    for values, grads in _jax_both(bad.case, *bad.planted()):
        check_nan_rule(bad, values, grads)


def test_jit_half_precision():
    """bfloat16 logits under jit: a float32 loss and a bfloat16 gradient, as eager."""
    pytest.importorskip("jax")
    case = SSCE_OPTS
    values, grads, analytic = _jax_run(case, case.x, case.truth, case.arrays, dtype="bfloat16")
    rounded = round_to(case.x, "bfloat16")
    for r in REDUCTIONS:
        ev, eg = REFS[case.loss](rounded, case.truth, reduction=r, **case.options())
        v, g = analytic[r]
        assert values[r].dtype == v.dtype == "float32"
        assert grads[r].dtype == g.dtype == "bfloat16"
        for value, grad in ((values[r], grads[r]), (v, g)):
            assert_close(np.asarray(value, np.float64), ev, "bfloat16")
            assert_close(np.asarray(grad, np.float64), eg, "bfloat16", kind="grad")


def test_issue_example_jit():
    """`jax.jit(lk.sparse_softmax_cross_entropy)(x, jnp.array([-1, 0]))` returned 1.51;
    jax.grad of the jitted loss itself."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x = jnp.asarray([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])
    labels = jnp.asarray([-1, 0])
    assert np.isnan(float(jax.jit(lk.sparse_softmax_cross_entropy)(x, labels)))
    g = np.asarray(jax.grad(jax.jit(lk.sparse_softmax_cross_entropy))(x, labels))
    assert np.isnan(g[0]).all() and g.shape == (2, 3), g
    none = jax.jit(functools.partial(lk.sparse_softmax_cross_entropy, reduction="none"))
    out = np.asarray(none(x, labels))
    assert np.isnan(out[0]) and np.isfinite(out[1]), out
    # a probability of 1.5 "returns a plausible number" today
    p, t = jnp.asarray([0.3, 1.5]), jnp.asarray([1.0, 0.0])
    bce = jax.jit(functools.partial(lk.binary_cross_entropy, reduction="none"))
    out = np.asarray(bce(p, t))
    assert np.isfinite(out[0]) and np.isnan(out[1]), out
    g = np.asarray(jax.grad(jax.jit(lk.binary_cross_entropy))(p, t))
    assert np.isnan(g[1]), g


def test_jit_skips_value_warnings():
    """Probability-like logits and unnormalised rows warn eagerly, are silent under jit."""
    pytest.importorskip("jax")
    for case, x, warning in _WARNING_CASES:
        with pytest.warns(warning):
            eager = getattr(lk, case.loss)(x, case.truth, reduction="none", **case.options())
        values, _, _ = _jax_run(case, x, case.truth, case.arrays)  # a warning raises here
        assert_close(np.asarray(values["none"]), eager, err_msg=case.id)


def test_never_a_plausible_number_in_other_jax_transforms():
    """vmap, jax.grad without jit, a Python pos_weight under jit: ValueError or NaN."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    x = jnp.asarray(np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]]))
    attempts = {
        "vmap label": lambda: jax.vmap(lk.sparse_softmax_cross_entropy)(x, jnp.asarray([-1, 0])),
        "grad probs": lambda: jax.grad(
            lambda q: lk.binary_cross_entropy(q, jnp.asarray([1.0, 0.0]))
        )(jnp.asarray([1.5, 0.2])),
        "jit float pos_weight": lambda: jax.jit(
            lambda z: lk.sigmoid_cross_entropy(z, jnp.ones(3), pos_weight=-1.0)
        )(x[0]),
    }
    for what, attempt in attempts.items():
        try:
            out = np.asarray(attempt())
        except ValueError:
            continue
        assert np.isnan(out).any(), f"{what}: a plausible number {out}"


# --------------------------------------------------------------------------- torch.compile

_COMPILED: dict[tuple, Any] = {}


@pytest.fixture(scope="module")
def torch():
    """torch, with room for one compiled graph per case on the shared wrapper code."""
    module = pytest.importorskip("torch")
    dynamo = pytest.importorskip("torch._dynamo")
    # Every case's wrapper shares one code object, where dynamo keeps at most
    # recompile_limit (8) graphs; past it a call would silently run eagerly.
    with dynamo.config.patch(recompile_limit=512, accumulated_recompile_limit=4096):
        yield module
    _COMPILED.clear()
    dynamo.reset()


def _compiled(torch, case: Case, backend: str, analytic: bool) -> Any:
    """One compiled function per case and backend: the three reductions' values (for
    autograd) and losskit.value_and_grad of each (on a detached copy of ``x``).

    Each reduction takes its own copy of ``x``: AOTAutograd runs one joint backward
    with zero cotangents for the outputs not asked for, and ``0 * NaN`` from the mean
    of a bad batch would otherwise leak into the gradient of ``reduction="none"``.
    """
    key = (case.id, backend, analytic)
    if key not in _COMPILED:
        fn = getattr(lk, case.loss)
        keys, static = case.keys, case.static

        def run(x_none, x_sum, x_mean, x_plain, truth, *ws):
            opts = {**static, **dict(zip(keys, ws, strict=True))}
            xs = (x_none, x_sum, x_mean)
            values = tuple(
                fn(x, truth, reduction=r, **opts) for x, r in zip(xs, REDUCTIONS, strict=True)
            )
            if not analytic:
                return values, ()
            vg = lk.value_and_grad(fn)
            return values, tuple(vg(x_plain, truth, reduction=r, **opts) for r in REDUCTIONS)

        _COMPILED[key] = torch.compile(run, fullgraph=True, dynamic=False, backend=backend)
    return _COMPILED[key]


def _torch_run(torch, case, x, truth, arrays, *, backend="aot_eager", analytic=True, dtype=None):
    """``[(values, grads) by autograd, (values, grads) by value_and_grad]`` as returned
    (without the second when not ``analytic``)."""
    dtype = dtype or torch.float64
    opt_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    xs = [torch.tensor(x, dtype=dtype, requires_grad=True) for _ in REDUCTIONS]
    tt = torch.tensor(truth) if truth.dtype.kind == "i" else torch.tensor(truth, dtype=dtype)
    ws = [torch.tensor(arrays[k], dtype=opt_dtype) for k in case.keys]
    plain = torch.tensor(x, dtype=dtype)
    values, by_vg = _compiled(torch, case, backend, analytic)(*xs, plain, tt, *ws)
    grads = [
        torch.autograd.grad(v.sum(), x, retain_graph=True)[0]
        for v, x in zip(values, xs, strict=True)
    ]
    pairs = [
        (dict(zip(REDUCTIONS, values, strict=True)), dict(zip(REDUCTIONS, grads, strict=True)))
    ]
    if analytic:
        pairs.append(
            (
                {r: v for r, (v, _) in zip(REDUCTIONS, by_vg, strict=True)},
                {r: g for r, (_, g) in zip(REDUCTIONS, by_vg, strict=True)},
            )
        )
    return pairs


def _torch_f64(pairs: list) -> list[tuple[dict, dict]]:
    def f64(tree):
        return {r: t.detach().double().numpy() for r, t in tree.items()}

    return [(f64(values), f64(grads)) for values, grads in pairs]


@ids("case", CASES)
def test_compile_equals_eager(torch, case):
    """fullgraph=True (no graph break, no data-dependent guard): values, autograd
    through the compiled function, and value_and_grad compiled."""
    for values, grads in _torch_f64(_torch_run(torch, case, case.x, case.truth, case.arrays)):
        check_equal(case, values, grads)


@ids("bad", BAD)
def test_compile_bad_value_is_nan(torch, bad):
    """A bad value inside a compiled graph: NaN, not an exception, not a number."""
    for values, grads in _torch_f64(_torch_run(torch, bad.case, *bad.planted())):
        check_nan_rule(bad, values, grads)


def test_compile_half_precision(torch):
    """bfloat16 logits compiled: a float32 loss and a bfloat16 gradient, as eager."""
    case = SSCE_OPTS
    pairs = _torch_run(torch, case, case.x, case.truth, case.arrays, dtype=torch.bfloat16)
    rounded = round_to(case.x, "bfloat16")
    for values, grads in pairs:
        for r in REDUCTIONS:
            assert values[r].dtype == torch.float32 and grads[r].dtype == torch.bfloat16, r
    for values, grads in _torch_f64(pairs):
        for r in REDUCTIONS:
            ev, eg = REFS[case.loss](rounded, case.truth, reduction=r, **case.options())
            assert_close(values[r], ev, "bfloat16")
            assert_close(grads[r], eg, "bfloat16", kind="grad")


def test_compile_skips_value_warnings(torch):
    for case, x, warning in _WARNING_CASES:
        with pytest.warns(warning):
            eager = getattr(lk, case.loss)(x, case.truth, reduction="none", **case.options())
        (values, _), _ = _torch_f64(_torch_run(torch, case, x, case.truth, case.arrays))
        assert_close(values["none"], eager, err_msg=case.id)


def test_compile_python_pos_weight_never_plausible(torch):
    """A Python float can be read: refused (or NaN), never a number, even when compiled."""
    case = SIG_POS_FLOAT

    def loss(x, t):
        return lk.sigmoid_cross_entropy(x, t, pos_weight=-1.0, reduction="none")

    compiled = torch.compile(loss, fullgraph=True, backend="eager")
    try:
        out = compiled(torch.tensor(case.x), torch.tensor(case.truth))
    except ValueError:
        return
    except Exception as err:  # with fullgraph=True dynamo reports what the code raised
        assert "ValueError" in str(err) and "pos_weight" in str(err), err
        return
    assert torch.isnan(out).all(), out


def test_compile_batch_size_changes_without_graph_break(torch):
    """Plain torch.compile over batches of different sizes (a smaller last batch):
    dynamo may recompile for the new shape but never breaks the graph."""
    from torch._dynamo.utils import counters

    case = SSCE_OPTS
    counters.clear()
    compiled = torch.compile(
        functools.partial(lk.sparse_softmax_cross_entropy, **case.static), backend="aot_eager"
    )
    for n in (4, 3, 2):
        arrays = {k: v[:n] if k == "sample_weight" else v for k, v in case.arrays.items()}
        x = torch.tensor(case.x[:n], requires_grad=True)
        opts = {k: torch.tensor(v) for k, v in arrays.items()}
        value = compiled(x, torch.tensor(case.truth[:n]), **opts)
        (g,) = torch.autograd.grad(value, x)
        ev, eg = REFS[case.loss](case.x[:n], case.truth[:n], **case.options(arrays))
        assert_close(value.detach().numpy(), ev)
        assert_close(g.numpy(), eg, kind="grad")
    assert not counters["graph_break"], dict(counters["graph_break"])


def test_inductor_equals_eager_and_bad_labels_are_nan(torch):
    """Inductor generates code: values and gradients equal eager, and out-of-range
    labels never reach a gather that inductor bounds-checks (NaN, not a crash).

    One case only (class weights, ignore_index, smoothing, sample weights: every
    gather), autograd only: a cold inductor compile costs 15-45 s on this machine.
    """
    case = SSCE_OPTS
    ((values, grads),) = _torch_f64(
        _torch_run(torch, case, case.x, case.truth, case.arrays, backend="inductor", analytic=False)
    )
    check_equal(case, values, grads, rtol=1e-9, atol=1e-12)  # sums may be reordered
    for bad in BAD:
        if bad.case is case and bad.arg == "truth":
            x, truth, arrays = bad.planted()
            pairs = _torch_run(torch, case, x, truth, arrays, backend="inductor", analytic=False)
            for values, grads in _torch_f64(pairs):
                check_nan_rule(bad, values, grads)


def test_compile_gives_no_warning(torch):
    """Compiling a loss shows the user nothing (dynamo's lru_cache warning included)."""
    from torch._dynamo.utils import warn_once_cache

    warn_once_cache.clear()  # dynamo warns each message once per process
    case = SSCE_OPTS
    ws = [torch.tensor(case.arrays[k]) for k in case.keys]

    def loss(x, y, class_weight, sample_weight):
        return lk.sparse_softmax_cross_entropy(
            x, y, class_weight=class_weight, sample_weight=sample_weight, **case.static
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = torch.compile(loss, fullgraph=True, backend="eager")
        compiled(torch.tensor(case.x), torch.tensor(case.truth), *ws)
    assert [str(w.message) for w in caught] == []


# --------------------------------------------------------------------------- meta


def _meta(torch, shape, dtype, requires_grad=False):
    return torch.empty(shape, dtype=dtype, device="meta", requires_grad=requires_grad)


def _check_meta_loss(torch, case: Case, dtype) -> None:
    fn = getattr(lk, case.loss)
    loss_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    truth_dtype = torch.int64 if case.truth.dtype.kind == "i" else dtype
    x = _meta(torch, case.x.shape, dtype, requires_grad=True)
    truth = _meta(torch, case.truth.shape, truth_dtype)
    opts = case.options({k: _meta(torch, v.shape, loss_dtype) for k, v in case.arrays.items()})
    for r in REDUCTIONS:
        v = fn(x, truth, reduction=r, **opts)
        shape = case.unreduced_shape if r == "none" else ()
        assert (v.device.type, v.dtype, tuple(v.shape)) == ("meta", loss_dtype, shape), r
        v.sum().backward()
        assert (x.grad.device.type, x.grad.dtype, x.grad.shape) == ("meta", dtype, x.shape)
        x.grad = None
        v, g = lk.value_and_grad(fn)(x.detach(), truth, reduction=r, **opts)
        assert (v.device.type, v.dtype, tuple(v.shape)) == ("meta", loss_dtype, shape), r
        assert (g.device.type, g.dtype, g.shape) == ("meta", dtype, x.shape), r


@ids("case", CASES)
def test_meta_every_case(torch, case):
    _check_meta_loss(torch, case, torch.float32)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_meta_dtypes(torch, name, dtype):
    case = next(c for c in CASES if c.loss == name)
    _check_meta_loss(torch, case, getattr(torch, dtype))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_meta_activations(torch, dtype):
    dtype = getattr(torch, dtype)
    x = _meta(torch, (4, 3, 2), dtype, requires_grad=True)
    calls = {
        "softmax": (lk.softmax(x), (4, 3, 2)),
        "softmax axis=1": (lk.softmax(x, axis=1), (4, 3, 2)),
        "log_softmax axis=0": (lk.log_softmax(x, axis=0), (4, 3, 2)),
        "logsumexp": (lk.logsumexp(x), (4, 3)),
        "logsumexp axis=1 keepdims": (lk.logsumexp(x, axis=1, keepdims=True), (4, 1, 2)),
        "sigmoid": (lk.sigmoid(x), (4, 3, 2)),
        "log_sigmoid": (lk.log_sigmoid(x), (4, 3, 2)),
    }
    for what, (out, shape) in calls.items():
        assert (out.device.type, out.dtype, tuple(out.shape)) == ("meta", dtype, shape), what
        out.sum().backward()
        assert (x.grad.device.type, x.grad.dtype, x.grad.shape) == ("meta", dtype, x.shape)
        x.grad = None


# --------------------------------------------------------------------------- graph breaks
# last in the file: explain() resets dynamo, which drops the compiled graphs above


@ids("case", RICHEST)
def test_plain_compile_of_the_loss_has_no_graph_break(torch, case):
    """torch.compile(loss) itself, without fullgraph, with its richest options: one graph
    (every reduction compiles with fullgraph=True above)."""
    fn = getattr(lk, case.loss)
    x = torch.tensor(case.x, requires_grad=True)
    opts = case.options({k: torch.tensor(v) for k, v in case.arrays.items()})
    explained = torch._dynamo.explain(fn)(x, torch.tensor(case.truth), **opts)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_plain_compile_of_the_activations_has_no_graph_break(torch):
    def activations(x):
        return (
            lk.softmax(x, axis=0),
            lk.log_softmax(x),
            lk.logsumexp(x, axis=1, keepdims=True),
            lk.sigmoid(x),
            lk.log_sigmoid(x),
        )

    explained = torch._dynamo.explain(activations)(torch.randn(4, 3))
    assert explained.graph_break_count == 0, explained.break_reasons


def test_torch_func_vmap_and_grad(torch):
    """torch.func wraps tensors whose values cannot be branched on: vmap and grad
    follow the NaN rule instead of failing on data-dependent control flow."""
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, size=(3, 4))
    t = rng.uniform(0.0, 1.0, size=(3, 4))
    batched = torch.func.vmap(lambda a, b: lk.binary_cross_entropy(a, b))
    got = batched(torch.tensor(p), torch.tensor(t)).numpy()
    expected = [float(lk.binary_cross_entropy(p[i], t[i])) for i in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    t[1, 2] = 1.5  # a target outside [0, 1] in the second batch member only
    got = batched(torch.tensor(p), torch.tensor(t)).numpy()
    assert np.isnan(got[1]) and np.isfinite(got[[0, 2]]).all()
    g = torch.func.grad(lambda a, b: lk.binary_cross_entropy(a, b))(
        torch.tensor(p[1]), torch.tensor(t[1])
    )
    assert np.isnan(g.numpy()[2])
