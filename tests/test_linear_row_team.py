"""The fused linear cross-entropy's row pass on an OpenMP team (torch's BLAS threads).

``kernels._linear_team`` runs ``_linear._row`` on every thread of a team, each
claiming rows with an atomic counter: the serial driver's code, so the
expected results are the serial driver's (itself checked against float64
PyTorch in ``test_linear_cross_entropy``), to within a few ulp: the two are
compiled apart, and LLVM may round a sum differently in each. Rows a team
skipped or computed twice would be off by far more (outputs start at -1; a
row's gradient computed twice is the gradient of its gradient). The team is
exercised twice: torch's own GNU OpenMP runtime (where torch has one: Linux
wheels), and Python threads calling the same ``cfunc`` (anywhere).
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap
import threading
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")
torch = pytest.importorskip("torch")

import losskit as lk  # noqa: E402
from losskit.kernels import _linear, _linear_team, _omp_team, dispatch  # noqa: E402
from losskit.losses import large_vocab  # noqa: E402

OPENMP_TORCH = sys.platform.startswith("linux") and (
    "parallel backend: OpenMP" in torch.__config__.parallel_info()
)


class PythonThreadsTeam:
    """A team of Python threads: ``fn(data)`` on each, through ctypes (which drops the GIL),
    all released at once by a barrier so that they compete for the rows."""

    def run(self, fn_address: int, data_address: int, threads: int) -> None:
        fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(fn_address)
        start = threading.Barrier(threads)

        def member() -> None:
            start.wait()
            fn(data_address)

        workers = [threading.Thread(target=member, daemon=True) for _ in range(threads - 1)]
        for t in workers:
            t.start()
        member()
        for t in workers:
            t.join()


@pytest.fixture
def two_torch_threads():
    """torch on two threads (the team is used only then), whatever the environment set."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def assert_close_to_serial(got: np.ndarray, expected: np.ndarray, dtype: Any) -> None:
    """Equal up to a few ulp of the logits' ``dtype`` at the array's scale (NaN where NaN):
    the float64 losses of float32 logits carry float32 sums."""
    tiny = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    finite = np.isfinite(expected)
    scale = np.abs(expected[finite]).max() if finite.any() else 1.0
    np.testing.assert_allclose(got, expected, rtol=tiny, atol=tiny * 0.1 * scale)


def teams() -> list:
    found = [pytest.param(PythonThreadsTeam(), id="python-threads")]
    if OPENMP_TORCH:
        found.append(pytest.param("torch", id="torch-openmp"))
    return found


def test_the_atomic_add_counts_every_add_from_concurrent_threads():
    """Eight threads, 20000 adds each, one counter: a plain read-add-write loses some."""
    from numba import carray, cfunc, types

    @cfunc(types.void(types.voidptr))
    def add_many(data):
        counter = carray(_linear_team._pointer(data, np.int64), 1)
        for _ in range(20000):
            _linear_team._fetch_add(counter, 0, 1)

    counter = np.zeros(1, np.int64)
    PythonThreadsTeam().run(add_many.address, counter.ctypes.data, 8)
    assert counter[0] == 8 * 20000


def test_torch_openmp_runtime_is_found_where_torch_runs_on_openmp():
    torch.ones(2) @ torch.ones(2)  # torch (and its OpenMP runtime) loaded
    if OPENMP_TORCH:
        assert _omp_team.torch_team() is not None
    else:
        assert _omp_team.torch_team() is None


def test_no_libgomp_in_a_directory_gives_none(tmp_path):
    assert _omp_team._loaded_libgomp(str(tmp_path)) is None


OPTIONS = {
    "plain": {},
    "bias": {"has_bias": True},
    "softcap": {"cap": 3.0},
    "smoothing": {"e": 0.1},
    "z_loss": {"zl": 1e-2},
    "no_grad": {"do_grad": False},
    "all": {"has_bias": True, "cap": 30.0, "e": 0.2, "zl": 1e-3},
}


@pytest.mark.parametrize("threads", [2, 7])
@pytest.mark.parametrize("team", teams())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIONS))
def test_team_rows_equal_the_serial_driver(team, dtype, name, threads):
    dispatch.threading_layer()
    if team == "torch":
        team = _omp_team.torch_team()
    opts = OPTIONS[name]
    rng = np.random.default_rng(7)
    n, c = 203, 3001  # rows not a multiple of a claim (21 rows here), nor of a block
    z0 = (rng.standard_normal((n, c)) * 8.0).astype(dtype)
    z0[5] = np.nan  # a NaN row: NaN loss, lse and gradient, as the serial driver
    z0[6, 17] = 1e4  # one huge logit
    has_bias = opts.get("has_bias", False)
    bias = rng.standard_normal(c).astype(dtype) if has_bias else np.zeros(1, dtype)
    y = rng.integers(0, c, n)
    counted = rng.random(n) > 0.2  # ignored rows: loss 0, gradient 0, lse kept
    w = rng.uniform(0.5, 2.0, c).astype(dtype)
    a_ce, a_z = rng.random(n), rng.random(n)
    e, cap, zl = opts.get("e", 0.0), opts.get("cap", 0.0), opts.get("zl", 0.0)
    do_grad = opts.get("do_grad", True)
    cut = _linear.cut_for(dtype)
    results = []
    for driver in ("serial", "team"):
        z = z0.copy()
        ce, lse, zy = np.full(n, -1.0), np.full(n, -1.0), np.full(n, -1.0)
        args = (z, bias, has_bias, y, counted, w, e, cap, zl, a_ce, a_z, do_grad, ce, lse, zy)
        if driver == "serial":
            _linear.lce_rows_serial(*args, False, np.zeros(1), cut)
        else:
            _linear_team.lce_rows_on_team(team, threads, *args, cut)
        results.append((z, ce, lse, zy))
    for serial, on_team in zip(*results, strict=True):
        assert_close_to_serial(on_team, serial, dtype)
    z, ce, lse, _ = results[1]
    assert np.isnan(ce[5]) == bool(counted[5]) and np.isnan(lse[5])
    assert (ce[~counted] == 0).all() and np.isfinite(lse[~counted & (np.arange(n) != 5)]).all()
    if do_grad:
        assert (z[~counted] == 0).all()


def test_team_rows_with_an_empty_chunk_do_nothing():
    class NoCalls:
        def run(self, *args):
            raise AssertionError("an empty chunk started the team")

    z = np.empty((0, 5), np.float32)
    out = np.empty(0)
    _linear_team.lce_rows_on_team(
        NoCalls(), 2, z, np.zeros(1, np.float32), False, np.empty(0, np.int64),
        np.empty(0, bool), np.ones(5, np.float32), 0.0, 0.0, 0.0, out, out, True, out, out, out,
        _linear.cut_for(np.float32),
    )  # fmt: skip


def _spy(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = _linear_team.lce_rows_on_team

    def counted(team, threads, z, *args):
        calls.append(z.shape[0])
        return real(team, threads, z, *args)

    monkeypatch.setattr(_linear_team, "lce_rows_on_team", counted)
    return calls


def _torch_loss(h, w, y, **opts):
    th = torch.tensor(h, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    loss = lk.linear_cross_entropy(th, tw, torch.from_numpy(y), **opts)
    loss.backward()
    return loss.detach(), th.grad, tw.grad


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"label_smoothing": 0.1, "z_loss": 1e-4, "softcap": 20.0, "ignore_index": -100},
    ],
    ids=["plain", "options"],
)
@pytest.mark.parametrize("team", teams())
def test_torch_loss_runs_its_row_pass_on_the_team(team, opts, monkeypatch, two_torch_threads):
    """Chunks of 192 x 700 logits (at ``_ROW_TEAM_MIN`` here) go to the team, and the
    loss and gradients equal those of the serial row pass."""
    if team != "torch":
        monkeypatch.setattr(large_vocab, "_row_team", lambda: team)
    monkeypatch.setattr(large_vocab, "_ROW_TEAM_MIN", 192 * 700)
    rng = np.random.default_rng(3)
    n, d, v = 450, 16, 700  # chunks of 192, 192, 66 rows: the last stays serial
    h = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal((v, d)).astype(np.float32)
    y = rng.integers(0, v, n)
    y[::7] = -100 if "ignore_index" in opts else y[::7]
    calls = _spy(monkeypatch)
    on_team = _torch_loss(h, w, y, chunk_size=192, **opts)
    assert calls == [192, 192]
    monkeypatch.setattr(large_vocab, "_row_team", lambda: None)
    serial = _torch_loss(h, w, y, chunk_size=192, **opts)
    assert calls == [192, 192]
    for a, b in zip(on_team, serial, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-9)


def test_class_weight_column_sums_and_numpy_and_one_thread_stay_serial(
    monkeypatch, two_torch_threads
):
    monkeypatch.setattr(large_vocab, "_row_team", PythonThreadsTeam)
    monkeypatch.setattr(large_vocab, "_ROW_TEAM_MIN", 1)
    calls = _spy(monkeypatch)
    rng = np.random.default_rng(4)
    h = rng.standard_normal((40, 8))
    w = rng.standard_normal((30, 8))
    y = rng.integers(0, 30, 40)
    cw = rng.uniform(0.5, 2.0, 30)
    # class weights needing their derivative, with smoothing: the threads would race on
    # the column sums
    tcw = torch.tensor(cw, requires_grad=True)
    th = torch.tensor(h, requires_grad=True)
    loss = lk.linear_cross_entropy(
        th, torch.tensor(w), torch.from_numpy(y), class_weight=tcw, label_smoothing=0.1
    )
    loss.backward()
    assert calls == []
    lk.value_and_grad(lk.linear_cross_entropy)(h, w, y)  # NumPy arrays: OpenBLAS, no team
    assert calls == []
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        _torch_loss(h, w, y)
    finally:
        torch.set_num_threads(threads)
    assert calls == []
    _torch_loss(h, w, y)
    assert calls == [40]


FORK_CHILD = """
import os, signal, sys
import numpy as np
import torch
import losskit as lk
from losskit.kernels import _omp_team

torch.set_num_threads(2)
rng = np.random.default_rng(0)
h = torch.tensor(rng.standard_normal((600, 64)), dtype=torch.float32)
w = torch.tensor(rng.standard_normal((2000, 64)), dtype=torch.float32)
y = torch.from_numpy(rng.integers(0, 2000, 600))
before = lk.linear_cross_entropy(h, w, y).item()
assert _omp_team.torch_team() is not None
pid = os.fork()
if pid == 0:
    signal.alarm(200)  # a hung child dies instead of outliving the test
    # GNU OpenMP's threads are gone here: no team (a parallel region would hang);
    # one torch thread, as DataLoader workers set, and the loss is the same
    torch.set_num_threads(1)
    ok = _omp_team.torch_team() is None
    ok = ok and abs(lk.linear_cross_entropy(h, w, y).item() - before) <= 1e-6 * abs(before)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not OPENMP_TORCH, reason="torch without GNU OpenMP has no team to fork")
def test_a_forked_child_does_not_use_the_parents_team():
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FORK_CHILD)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.skipif(not OPENMP_TORCH, reason="torch without GNU OpenMP has no team")
def test_concurrent_python_threads_each_get_their_own_team(monkeypatch, two_torch_threads):
    """GNU OpenMP gives every calling thread a team of its own (as for torch's products):
    three threads computing the loss at once get the one-thread answer."""
    rng = np.random.default_rng(5)
    h = torch.tensor(rng.standard_normal((500, 32)), dtype=torch.float32)
    w = torch.tensor(rng.standard_normal((900, 32)), dtype=torch.float32)
    y = torch.from_numpy(rng.integers(0, 900, 500))
    monkeypatch.setattr(large_vocab, "_row_team", lambda: None)
    expected = lk.linear_cross_entropy(h, w, y, chunk_size=128)
    monkeypatch.undo()
    monkeypatch.setattr(large_vocab, "_ROW_TEAM_MIN", 1)
    calls = _spy(monkeypatch)
    got: list = []

    def work() -> None:
        for _ in range(5):
            got.append(lk.linear_cross_entropy(h, w, y, chunk_size=128))

    workers = [threading.Thread(target=work, daemon=True) for _ in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in workers)
    assert len(got) == 15
    for g in got:
        torch.testing.assert_close(g, expected, rtol=1e-6, atol=0.0)
    assert len(calls) == 15 * 4  # every chunk of every call on a team
