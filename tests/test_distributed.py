"""losskit.distributed: vocabulary-parallel cross-entropy over torch.distributed (issue 12).

Two launches of gloo ranks on the loopback interface (world sizes 2 and 3,
uneven vocabulary shards 5/6 and 4/3/4 of V = 11), each running every case of
``_refs_distributed.cases_for`` in tests/_distributed_worker.py; the parent
compares each rank's loss and gradients with the single-process answer in
float64 (``_refs_distributed.reference``: PyTorch on the full logits, checked
here against ``F.cross_entropy`` and against losskit's own single-process
``sparse_softmax_cross_entropy`` / ``linear_cross_entropy``) to 1e-12, checks
that every rank's loss is the same bit for bit, that the errors are raised on
every rank without a hang, and gradcheck in float64 on the group.  A launch
that does not finish in ``LAUNCH_TIMEOUT`` seconds is killed and fails with
the ranks' stderr (the last case each rank started is its last line).

The worker also counts the collectives each call makes (by wrapping
torch.distributed's functions), checked against the issue: one metadata
all-reduce, a MAX and a SUM per chunk of tokens, and in backward nothing (logits)
or one all-reduce of d(hidden) (linear).

In-process tests use a world of one (a FileStore in tmp_path): the argument
errors raised before any collective, equality with the single-process
functions, torch.compile around the call.

"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _refs_distributed import (
    IGNORE,
    SHARDS,
    SUBGROUP,
    Case,
    D,
    V,
    cases_for,
    make_inputs,
    reference,
    split_of,
    used_inputs,
)

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
F = torch.nn.functional

import losskit as lk  # noqa: E402
import losskit.distributed as lkd  # noqa: E402

if not dist.is_available() or not dist.is_gloo_available():  # pragma: no cover
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

WORKER = Path(__file__).with_name("_distributed_worker.py")
WORLDS = (2, 3)
#: Seconds a launch of every case may take (the ranks' collectives time out after 60).
LAUNCH_TIMEOUT = 150

#: (rtol, atol relative to the largest reference entry) per dtype.
TOL = {
    "float64": (1e-12, 1e-12),
    "float32": (1e-5, 1e-6),
    "float16": (3e-3, 2e-3),
    "bfloat16": (2e-2, 1e-2),
}


# --------------------------------------------------------------------------- the launches


def _env() -> dict[str, str]:
    env = dict(os.environ)
    if Path("/sys/class/net/lo").exists():  # Linux: keep gloo on the loopback interface
        env["GLOO_SOCKET_IFNAME"] = "lo"
    # three ranks on a small machine: one thread each
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return env


def _launch(world: int, tmp: Path) -> dict[str, list[dict]] | str:
    """Run the worker on ``world`` ranks; {case id: [record of each rank]}, or why it failed."""
    init = tmp / "init"
    logs = [open(tmp / f"rank{r}.log", "wb") for r in range(world)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(r), str(world), str(init), str(tmp / f"rank{r}.pt")],
            stdout=logs[r],
            stderr=subprocess.STDOUT,
            env=_env(),
        )
        for r in range(world)
    ]
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    timed_out = False
    try:
        for p in procs:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs:
            f.close()

    def tails() -> str:
        out = []
        for r in range(world):
            text = (tmp / f"rank{r}.log").read_text(errors="replace")
            out.append(f"--- rank {r} (exit {procs[r].returncode}):\n{text[-3000:]}")
        return "\n".join(out)

    if timed_out:
        return f"world {world}: the ranks did not finish in {LAUNCH_TIMEOUT} s (a hang?)\n{tails()}"
    if any(p.returncode != 0 for p in procs):
        return f"world {world}: a rank failed\n{tails()}"
    per_rank = [torch.load(tmp / f"rank{r}.pt", weights_only=True) for r in range(world)]
    return {cid: [recs[cid] for recs in per_rank] for cid in per_rank[0]}


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """``get(world)``: the records of that world's launch (launched once, on first use)."""
    cache: dict[int, Any] = {}

    def get(world: int) -> dict[str, list[dict]]:
        if world not in cache:
            cache[world] = _launch(world, tmp_path_factory.mktemp(f"world{world}"))
        if isinstance(cache[world], str):
            pytest.fail(cache[world], pytrace=False)
        return cache[world]

    return get


def _records(launched: Any, world: int, case: Case) -> list[tuple[int, dict]]:
    """(rank, record) of every rank that took part in ``case``."""
    recs = launched(world)[case.id]
    return [(r, rec) for r, rec in enumerate(recs) if not rec.get("skipped")]


def _params(kind: str) -> list[Any]:
    out = []
    for w in WORLDS:
        for c in cases_for(w):
            k = "gradcheck" if c.gradcheck else c.expect
            if k == kind:
                out.append(pytest.param(w, c, id=f"w{w}-{c.id}"))
    return out


# --------------------------------------------------------------------------- comparisons

#: The reference of a case, computed once (cases repeat across tests and world sizes).
_reference = functools.lru_cache(maxsize=None)(reference)


def _close(got: Any, want: np.ndarray, dtype: str, what: str) -> None:
    rtol, atol = TOL[dtype]
    got = np.asarray(got.double() if hasattr(got, "double") else got, dtype=np.float64)
    scale = float(np.max(np.abs(want[np.isfinite(want)]), initial=1.0))
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=what)


def _same(a: Any, b: Any) -> bool:
    """Bit for bit, NaN where NaN."""
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a[~a.isnan()], b[~b.isnan()])


def _expected_grad(case: Case, name: str, full: np.ndarray, a: int, b: int) -> np.ndarray:
    """What rank holding classes [a, b) gets for input ``name`` (full: the whole gradient)."""
    split = split_of(case, name)
    if split == "vocab":
        return full[..., a:b]
    if split == "rows":
        return full[a:b]
    if split == "whole":  # this rank's contribution: the entries of its shard
        out = np.zeros_like(full)
        out[a:b] = full[a:b]
        return out
    return full


@pytest.mark.parametrize(("world", "case"), _params("ok"))
def test_every_rank_matches_the_single_process_float64_answer(launched, world, case):
    recs = _records(launched, world, case)
    assert len(recs) == (len(SUBGROUP) if case.group == "sub" else world)
    for r, rec in recs:
        assert "error" not in rec, f"rank {r} raised {rec['error']}\n{rec.get('traceback')}"
        assert rec["warnings"] == [], f"rank {r} warned: {rec['warnings']}"
    ref = _reference(case)
    for r, rec in recs:
        a, b = rec["bounds"]
        # half precision gives a float32 loss, as the single-process functions
        assert rec["dtype"] == ("torch.float32" if "16" in case.dtype else f"torch.{case.dtype}")
        _close(rec["loss"], ref["loss"], case.dtype, f"rank {r}: loss")
        assert rec["requires_grad"] == (case.grad != "none")
        for name in used_inputs(case):
            g = rec["grads"][name]
            if case.grad not in ("all", name):
                assert g is None, f"rank {r}: a gradient for {name}"
                continue
            assert g is not None, f"rank {r}: no gradient for {name}"
            want = _expected_grad(case, name, ref["grads"][name], a, b)
            _close(g, want, case.dtype, f"rank {r}: d {name}")
        if case.return_aux:
            _close(rec["z_loss"], ref["z_loss"], case.dtype, f"rank {r}: aux z_loss")
            _close(rec["lse"], ref["lse"], case.dtype, f"rank {r}: aux lse")
            assert not rec["lse_requires_grad"]
            assert rec["aux_type"] == "LinearCrossEntropyOutput"
        if case.layout == "dtensor":
            assert rec["result_kind"] == "replicated DTensor"
            # the shard's gradient is sharded as the shard (logits: its last dim)
            dim = len(case.shape) if case.fn == "logits" else 0
            assert rec["grad_kind"] == f"DTensor Shard({dim})"
    # the same loss (and aux outputs) on every rank, bit for bit
    for key in ("loss", "z_loss", "lse") if case.return_aux else ("loss",):
        values = [rec[key] for _, rec in recs]
        assert all(_same(x, values[0]) for x in values[1:]), key
    # and the same gradient of every replicated input
    for name in used_inputs(case) if case.grad == "all" else ():
        if split_of(case, name) == "full":
            gs = [rec["grads"][name] for _, rec in recs]
            assert all(_same(g, gs[0]) for g in gs[1:]), name


@pytest.mark.parametrize(("world", "case"), _params("gradcheck"))
def test_gradcheck_in_float64_on_the_process_group(launched, world, case):
    recs = _records(launched, world, case)
    assert len(recs) == world
    for r, rec in recs:
        assert "error" not in rec, f"rank {r} raised {rec['error']}\n{rec.get('traceback')}"
        assert rec["gradcheck"] is True, f"rank {r}: {rec['gradcheck']}"


@pytest.mark.parametrize(("world", "case"), _params("ok"))
def test_communication_is_what_the_issue_says(launched, world, case):
    """Forward: one all-reduce of metadata (O(world), not O(N)), then per chunk of
    tokens one MAX and one SUM, of a few numbers per token (1-2 and 1-4: what can be
    packed), nothing else; backward: nothing for the logits version, one all-reduce
    of d(hidden) (N x D) for the linear version.  (Counted by wrapping
    torch.distributed's collectives.)"""
    n = int(np.prod(case.shape))
    for r, rec in _records(launched, world, case):
        fwd, bwd = rec["comm"]["forward"], rec["comm"]["backward"]
        size = len(SUBGROUP) if case.group == "sub" else world
        meta = fwd[0]
        assert meta[:2] == ("all_reduce", "None") and meta[2] <= 32 * size, f"rank {r}: {meta}"
        rest = fwd[1:]
        pairs = [rest[i : i + 2] for i in range(0, len(rest), 2)]
        ok = len(rest) % 2 == 0 and all(
            p[0][:2] == ("all_reduce", "RedOpType.MAX") and p[1][:2] == ("all_reduce", "None")
            for p in pairs
        )
        assert ok, f"rank {r}: forward {fwd}"
        n_max, n_sum = sum(p[0][2] for p in pairs), sum(p[1][2] for p in pairs)
        assert n <= n_max <= 2 * n and n <= n_sum <= 4 * n, f"rank {r}: forward {fwd}"
        if case.fn == "linear" and "chunk_size" in case.options:
            assert len(pairs) == -(-n // case.options["chunk_size"]), f"rank {r}: {fwd}"
        elif "memory_budget" not in case.options:
            assert len(pairs) == min(n, 1), f"rank {r}: {fwd}"
        hidden_grad = case.fn == "linear" and n and case.grad == "all"
        want_bwd = [("all_reduce", "None", n * D)] * case.backwards if hidden_grad else []
        assert bwd == want_bwd, f"rank {r}: backward {bwd}"


#: The message every rank raises, per error case.
ALL_RANK_ERRORS = {
    "label_out_of_range": (
        ValueError,
        rf"`labels` must be in \[0, {V}\).*got {V} at position \(3,\)",
    ),
    "label_negative": (ValueError, r"`labels` must be in \[0, 11\).*got -3 at position \(2,\)"),
    "labels_differ": (ValueError, r"`labels` must be the same on every rank"),
    "labels_differ_by_a_swap": (ValueError, r"`labels` must be the same on every rank"),
    "smoothing_differs": (ValueError, r"`label_smoothing` must be the same on every rank"),
    "batch_differs": (ValueError, r"the batch \(labels' shape\) must be the same on every rank"),
    "sample_weight_differs": (ValueError, r"`sample_weight` must be the same on every rank"),
    "hidden_differs": (ValueError, r"`hidden` must be the same on every rank"),
    "hidden_grad_differs": (
        ValueError,
        r"which inputs require gradients must be the same on every rank",
    ),
    "overlapping_shards": (ValueError, r"the shards must tile the vocabulary \[0, 11\)"),
    # checked in the metadata exchange, so every rank can say which rank passed what
    "bad_class_weight_on_one_rank": (
        ValueError,
        r"`class_weight` must hold this rank's shard \(\d classes\) or the whole vocabulary "
        r"\(11\); rank [12] passed 3 weights",
    ),
}


@pytest.mark.parametrize(("world", "case"), _params("error_all"))
def test_the_same_error_on_every_rank_without_a_hang(launched, world, case):
    import re

    recs = _records(launched, world, case)
    assert len(recs) == world
    kind, pattern = ALL_RANK_ERRORS[case.name]
    errors = [rec.get("error") for _, rec in recs]
    for r, err in enumerate(errors):
        assert err is not None, f"rank {r} did not raise"
        assert err[0] == kind.__name__, f"rank {r}: {err}"
        assert re.search(pattern, err[1]), f"rank {r}: {err[1]!r} !~ {pattern!r}"
    assert all(e == errors[0] for e in errors), errors


#: (type, message) on the rank with the bad argument; the others raise RuntimeError.
LOCAL_ERRORS = {
    ("logits", "shape"): (ValueError, r"`labels` must have shape"),
    ("linear", "shape"): (ValueError, r"`weight_shard` must have shape"),
    ("logits", "int_dtype"): (TypeError, r"`logits_shard` must be a real floating"),
    ("linear", "int_dtype"): (TypeError, r"`weight_shard` must"),
    ("logits", "numpy"): (TypeError, r"`logits_shard` must be a torch\.Tensor; got ndarray"),
    ("linear", "numpy"): (TypeError, r"`weight_shard` must be a torch\.Tensor; got ndarray"),
}


@pytest.mark.parametrize(("world", "case"), _params("error_local"))
def test_a_local_error_raises_there_and_a_runtime_error_on_the_others(launched, world, case):
    import re

    recs = _records(launched, world, case)
    bad = world - 1
    kind, pattern = LOCAL_ERRORS[(case.fn, case.fault)]
    for r, rec in recs:
        err = rec.get("error")
        assert err is not None, f"rank {r} did not raise"
        if r == bad:
            assert err[0] == kind.__name__, f"rank {r}: {err}"
            assert re.search(pattern, err[1]), f"rank {r}: {err[1]!r} !~ {pattern!r}"
        else:
            assert err[0] == "RuntimeError", f"rank {r}: {err}"
            assert f"rank(s) [{bad}]" in err[1], f"rank {r}: {err[1]!r}"


# --------------------------------------------------------------------------- the reference itself


def _ref_cases() -> list[Any]:
    """Each float64 "ok" case of world 2 (the reference does not depend on the world)."""
    return [
        pytest.param(c, id=c.id)
        for c in cases_for(2)
        if c.expect == "ok" and c.dtype == "float64" and not c.gradcheck and c.backwards == 1
    ]


def _torch_inputs(case: Case) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    x = make_inputs(case)
    t = {k: torch.tensor(x[k]).requires_grad_(True) for k in used_inputs(case)}
    kw: dict[str, Any] = {
        k: v for k, v in case.options.items() if k not in ("class_weight", "sample_weight", "bias")
    }
    kw.pop("chunk_size", None)
    kw.pop("memory_budget", None)
    for k in ("class_weight", "sample_weight"):
        if k in t:
            kw[k] = t[k]
    return t, torch.tensor(x["labels"]), kw


@pytest.mark.parametrize("case", _ref_cases())
def test_the_reference_is_losskits_single_process_function(case):
    """reference == lk.linear_cross_entropy (hidden/weight, or logits with eye(V)), and
    lk.sparse_softmax_cross_entropy when there is no z-loss nor soft cap: values, aux
    outputs and every gradient."""
    ref = _reference(case)
    t, y, kw = _torch_inputs(case)
    kw["reduction"] = case.reduction
    if case.fn == "logits":
        eye = torch.eye(V, dtype=torch.float64)
        out = lk.linear_cross_entropy(t["logits"], eye, y, return_aux=True, **kw)
    else:
        out = lk.linear_cross_entropy(
            t["hidden"], t["weight"], y, bias=t.get("bias"), return_aux=True, **kw
        )
    up = torch.tensor(ref["upstream"])
    names = list(t)
    grads = torch.autograd.grad((out.loss * up).sum(), [t[k] for k in names], allow_unused=True)
    _close(out.loss.detach(), ref["loss"], "float64", "loss")
    want_z = ref["z_loss"]
    if not kw.get("z_loss"):
        # without a z-loss its term is 0 even for a NaN token (the reference's 0 * NaN)
        want_z = np.nan_to_num(np.asarray(want_z), nan=0.0)
    _close(out.z_loss.detach(), want_z, "float64", "z_loss")
    _close(out.lse, ref["lse"], "float64", "lse")
    for k, g in zip(names, grads, strict=True):
        _close(torch.zeros_like(t[k]) if g is None else g, ref["grads"][k], "float64", f"d {k}")
    if case.fn == "logits" and "z_loss" not in kw and "softcap" not in kw:
        t, y, kw = _torch_inputs(case)
        loss = lk.sparse_softmax_cross_entropy(t["logits"], y, reduction=case.reduction, **kw)
        grads = torch.autograd.grad((loss * up).sum(), list(t.values()))
        _close(loss.detach(), ref["loss"], "float64", "sparse: loss")
        for k, g in zip(t, grads, strict=True):
            _close(g, ref["grads"][k], "float64", f"sparse: d {k}")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", [{}, {"label_smoothing": 0.3, "class_weight": "whole"}])
def test_the_reference_is_torch_cross_entropy(reduction, opts):
    """Without z-loss, soft cap and sample weights: F.cross_entropy itself (ignore_index,
    weight, label_smoothing over the global V)."""
    case = Case("x", "logits", reduction, tuple({**opts, "ignore_index": IGNORE}.items()))
    ref = _reference(case)
    x = make_inputs(case)
    z = torch.tensor(x["logits"], requires_grad=True)
    w = torch.tensor(x["class_weight"]) if opts else None
    loss = F.cross_entropy(
        z,
        torch.tensor(x["labels"]),
        weight=w,
        ignore_index=IGNORE,
        label_smoothing=opts.get("label_smoothing", 0.0),
        reduction=reduction,
    )
    (g,) = torch.autograd.grad((loss * torch.tensor(ref["upstream"])).sum(), [z])
    _close(loss.detach(), ref["loss"], "float64", "loss")
    _close(g, ref["grads"]["logits"], "float64", "d logits")


def test_the_cases_cover_what_the_issue_asks():
    """Uneven shards, every option under each reduction for both functions, the corners."""
    for world in WORLDS:
        sizes = SHARDS[world]
        assert len(set(sizes)) > 1 and sum(sizes) == V
        cases = cases_for(world)
        names = {(c.fn, c.name, c.reduction) for c in cases}
        for fn in ("logits", "linear"):
            for opt in ("class_weight_shard", "class_weight_whole", "ignore", "smoothing"):
                for red in ("mean", "sum", "none"):
                    assert (fn, opt, red) in names
            for special in ("all_ignored", "targets_on_rank0", "label_out_of_range", "empty"):
                assert any(n[:2] == (fn, special) for n in names)
        low = make_inputs(next(c for c in cases if c.labels == "low"))["labels"]
        assert low.max() < sizes[0]  # the other ranks hold no target


# --------------------------------------------------------------------------- a world of one


@pytest.fixture(scope="module")
def group1(tmp_path_factory):
    """A gloo group of one process (this one), destroyed after the module's tests."""
    assert not dist.is_initialized(), "another test left a process group behind"
    old = os.environ.get("GLOO_SOCKET_IFNAME")
    if Path("/sys/class/net/lo").exists():
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    store = dist.FileStore(str(tmp_path_factory.mktemp("group1") / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        yield dist.group.WORLD
    finally:
        dist.destroy_process_group()
        if old is None:
            os.environ.pop("GLOO_SOCKET_IFNAME", None)
        else:
            os.environ["GLOO_SOCKET_IFNAME"] = old


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_world_of_one_equals_the_single_process_functions(group1, reduction):
    rng = np.random.default_rng(7)
    z = torch.tensor(rng.standard_normal((6, V)), requires_grad=True)
    h = torch.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    w = torch.tensor(rng.standard_normal((V, 3)), requires_grad=True)
    y = torch.tensor([0, 10, IGNORE, 3, 5, 5])
    cw = torch.tensor(rng.uniform(0.5, 2, V))
    kw = {
        "ignore_index": IGNORE,
        "label_smoothing": 0.1,
        "class_weight": cw,
        "reduction": reduction,
    }
    got = lkd.vocab_parallel_cross_entropy(z, y, **kw)
    want = lk.sparse_softmax_cross_entropy(z, y, **kw)
    (g_got,) = torch.autograd.grad(got.sum(), [z])
    (g_want,) = torch.autograd.grad(want.sum(), [z])
    _close(got.detach(), want.detach().numpy(), "float64", "logits: loss")
    _close(g_got, g_want.numpy(), "float64", "logits: d logits")
    kw.update(z_loss=1e-2, softcap=3.0)
    got = lkd.vocab_parallel_linear_cross_entropy(h, w, y, group=group1, **kw)
    want = lk.linear_cross_entropy(h, w, y, **kw)
    g_got = torch.autograd.grad(got.sum(), [h, w])
    g_want = torch.autograd.grad(want.sum(), [h, w])
    _close(got.detach(), want.detach().numpy(), "float64", "linear: loss")
    for a, b in zip(g_got, g_want, strict=True):
        _close(a, b.numpy(), "float64", "linear: grads")


def _args1() -> tuple[Any, Any, Any, Any]:
    z = torch.zeros(3, 5, dtype=torch.float64)
    return z, torch.tensor([0, 1, 4]), torch.zeros(3, 2), torch.zeros(5, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"reduction": "avg"}, ValueError, "`reduction` must be one of"),
        ({"label_smoothing": 2.0}, ValueError, r"`label_smoothing` must be a number in \[0, 1\]"),
        ({"z_loss": -1.0}, ValueError, "`z_loss` must be a finite number >= 0; got -1.0"),
        ({"softcap": 0.0}, ValueError, "`softcap` must be None or a finite number > 0; got 0.0"),
        ({"ignore_index": 1.5}, TypeError, "`ignore_index` must be an int or None"),
        ({"vocab_start": -1}, ValueError, "`vocab_start` must be None or an int >= 0; got -1"),
        ({"vocab_start": 1.0}, TypeError, "`vocab_start` must be None or an int >= 0; got 1.0"),
        ({"vocab_start": 2}, ValueError, r"must tile the vocabulary \[0, 5\).*got starts \[2\]"),
        ({"class_weight": torch.ones(4, dtype=torch.float64)}, ValueError, "`class_weight` must"),
        ({"sample_weight": torch.ones(2, dtype=torch.float64)}, ValueError, "`sample_weight` must"),
        ({"group": "world"}, TypeError, "`group` must be"),
    ],
)
def test_argument_errors_in_a_world_of_one(group1, kwargs, error, match):
    z, y, _, _ = _args1()
    with pytest.raises(error, match=match):
        lkd.vocab_parallel_cross_entropy(z, y, **kwargs)


def test_array_errors_in_a_world_of_one(group1):
    z, y, h, w = _args1()
    with pytest.raises(TypeError, match=r"`logits_shard` must be a torch\.Tensor; got ndarray"):
        lkd.vocab_parallel_cross_entropy(z.numpy(), y)
    with pytest.raises(TypeError, match="`labels` must be an integer"):
        lkd.vocab_parallel_cross_entropy(z, y.double())
    with pytest.raises(ValueError, match=r"`labels` must be in \[0, 5\); got 7 at position \(1,\)"):
        lkd.vocab_parallel_cross_entropy(z, torch.tensor([0, 7, 1]))
    with pytest.raises(ValueError, match="`chunk_size` must be None or a positive int; got 0"):
        lkd.vocab_parallel_linear_cross_entropy(h, w, y, chunk_size=0)
    with pytest.raises(ValueError, match=r"`weight_shard` must have shape"):
        lkd.vocab_parallel_linear_cross_entropy(h, torch.zeros(5, 3), y)
    with pytest.raises(ValueError, match=r"`bias_shard` must have shape \(5,\)"):
        lkd.vocab_parallel_linear_cross_entropy(h, w, y, bias_shard=torch.zeros(4))
    # the group still works after the errors
    loss = lkd.vocab_parallel_cross_entropy(z, y)
    assert float(loss) == pytest.approx(np.log(5), rel=1e-15)


# torch.compile resumes after the graph break (the collectives run eagerly); dynamo then
# reads .grad of the non-leaf loss while resuming, a UserWarning that
# filterwarnings=error turns into an InternalTorchDynamoError (a torch quirk: any
# torch.compiler.disable'd call followed by more traced code does it).
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
@pytest.mark.parametrize("fn", ["logits", "linear"])
def test_torch_compile_around_it_in_a_world_of_one(group1, fn):
    torch.manual_seed(0)
    head = torch.nn.Linear(6, V, bias=False).double()
    body = torch.nn.Linear(5, 6).double()
    x = torch.randn(9, 5, dtype=torch.float64)
    y = torch.randint(0, V, (9,))

    def step(x, y):
        if fn == "logits":
            loss = lkd.vocab_parallel_cross_entropy(head(body(x)), y, z_loss=1e-3)
        else:
            loss = lkd.vocab_parallel_linear_cross_entropy(
                body(x), head.weight, y, z_loss=1e-3, chunk_size=4
            )
        return 2.0 * loss

    torch._dynamo.reset()
    compiled = torch.compile(step, backend="eager")
    got = compiled(x, y)
    got.backward()
    g_compiled = (body.weight.grad.clone(), head.weight.grad.clone())
    body.zero_grad(), head.zero_grad()
    z = body(x) @ head.weight.T
    want = 2.0 * (F.cross_entropy(z, y) + 1e-3 * (torch.logsumexp(z, 1) ** 2).mean())
    want.backward()
    _close(got.detach(), want.detach().numpy(), "float64", "loss")
    _close(g_compiled[0], body.weight.grad.numpy(), "float64", "d body")
    _close(g_compiled[1], head.weight.grad.numpy(), "float64", "d head")
    # the call runs eagerly inside the compiled function: values can be read, so a bad
    # label raises (the NaN rule is for traces that cannot read them)
    y[1] = V + 2
    with pytest.raises(ValueError, match=rf"`labels` must be in \[0, {V}\); got {V + 2}"):
        compiled(x, y)
