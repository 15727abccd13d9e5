"""The kernels' threads: a forked process and concurrent Python threads both work.

Each case runs in a fresh interpreter, because numba fixes its threading layer
once per process, and because the failures being guarded against are a hang
(a fork pool whose children died under GNU OpenMP) or an abort (numba's
workqueue layer used from two threads at once): a timeout turns the hang into
a failure, a separate process keeps the abort from taking pytest with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

pytest.importorskip("numba")

TIMEOUT = 240  # seconds: first-call compilation on a loaded 2-core machine, then a hang

# Work for parent, children and threads: every kernel family, both loop shapes
# (C = 12 is tiled, C = 300 row-wise), compared with a NumPy float64 reference.
WORK = """
import numpy as np
from losskit.kernels import dispatch

def reference(x, y, t):
    m = x.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]
    p = np.exp(x - lse[:, None])
    onehot = np.eye(x.shape[1])[y]
    return lse, p, lse - x[np.arange(len(y)), y], p - onehot, (t * (lse[:, None] - x)).sum(1)

def work(seed):
    rng = np.random.default_rng(seed)
    for c in (12, 300):
        x = rng.standard_normal((700, c))
        y = rng.integers(0, c, 700)
        t = rng.dirichlet(np.ones(c), 700)
        lse, p, sparse, dsparse, dense = reference(x, y, t)
        g = np.empty_like(x)
        out = np.empty_like(x)
        ok = (
            np.allclose(dispatch.logsumexp_rows(x), lse)
            and np.allclose(dispatch.softmax_rows(x, out), p)
            and np.allclose(dispatch.log_softmax_rows(x, out), np.log(p))
            and np.allclose(dispatch.sparse_xent_rows(x, y, None, None, 0.0, None, g), sparse)
            and np.allclose(g, dsparse)
            and np.allclose(dispatch.dense_xent_rows(x, t, 0.0, None, None), dense)
        )
        if not ok:
            return f"wrong numbers at seed {seed}, C = {c}"
    return "ok"
"""


def run_script(tmp_path: Path, main: str, prelude: str = "", env: dict | None = None) -> list[str]:
    """Run WORK, ``prelude`` and ``main`` (under ``if __name__ == "__main__":``) in a fresh
    interpreter in its own process group; return its stdout lines.

    On timeout the whole group is killed (the script's pool children too) and the test fails.
    """
    script = tmp_path / "script.py"
    main = textwrap.indent(textwrap.dedent(main).strip(), "    ")
    script.write_text(f"{WORK}\n{prelude}\nif __name__ == '__main__':\n{main}\n")
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"hung for {TIMEOUT} s; stdout: {out!r}; stderr: {err[-2000:]!r}")
    assert proc.returncode == 0, f"exit {proc.returncode}; stderr: {err[-2000:]}"
    return out.splitlines()


FORK_POOL = """
    import multiprocessing as mp
    print(work(0))  # the parent runs the kernels before it forks
    with mp.get_context("fork").Pool(2) as pool:
        print(*pool.map(work, range(1, 5)))  # the children run them too
    print(work(5))  # and the parent still can afterwards
    print(dispatch.threading_layer())
"""
FORKED = ["ok", "ok ok ok ok", "ok"]

THREADS = """
    import threading
    start = threading.Barrier(4)
    results = []
    def run(seed):
        start.wait()  # all four enter the kernels together
        results.extend(work(seed + 100 * i) for i in range(8))
    threads = [threading.Thread(target=run, args=(s,)) for s in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print(len(results), set(results))
    print(dispatch.threading_layer())
"""
THREADED = ["32 {'ok'}"]

# What ``_threads`` falls back to on Linux without a usable TBB.
NO_TBB = "from losskit.kernels import _threads\n_threads._load_tbb = lambda: False\n"

FORK = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")


@FORK
def test_fork_pool_after_a_kernel_call_completes(tmp_path):
    assert run_script(tmp_path, FORK_POOL)[:3] == FORKED


@FORK
def test_torch_dataloader_fork_workers_after_a_kernel_call(tmp_path):
    pytest.importorskip("torch")
    main = """
        import torch
        from torch.utils.data import DataLoader
        print(work(0))
        loader = DataLoader(range(1, 5), batch_size=None, num_workers=2,
                            multiprocessing_context="fork", collate_fn=work)
        print(*loader)
    """
    assert run_script(tmp_path, main) == ["ok", "ok ok ok ok"]


def test_threads_calling_kernels_at_once_get_right_answers(tmp_path):
    assert run_script(tmp_path, THREADS)[:1] == THREADED


def test_tbb_is_the_layer_where_the_tbb_package_is_installed(tmp_path):
    try:
        metadata.distribution("tbb")
    except metadata.PackageNotFoundError:
        pytest.skip("the tbb package is not installed on this platform")
    assert run_script(tmp_path, "print(dispatch.threading_layer())") == ["tbb"]


@FORK
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux fallback")
def test_without_tbb_workqueue_is_fork_safe(tmp_path):
    assert run_script(tmp_path, FORK_POOL, NO_TBB) == [*FORKED, "workqueue"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux fallback")
def test_without_tbb_workqueue_calls_from_threads_wait_for_each_other(tmp_path):
    assert run_script(tmp_path, THREADS, NO_TBB) == [*THREADED, "workqueue"]


def test_a_layer_the_user_chose_is_kept_and_workqueue_is_still_serialised(tmp_path):
    env = {"NUMBA_THREADING_LAYER": "workqueue"}
    assert run_script(tmp_path, THREADS, env=env) == [*THREADED, "workqueue"]
