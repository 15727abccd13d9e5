"""examples/vocab_parallel.py, run as the README says: 2 gloo processes under torchrun.

The example trains a toy language-model head with its output weight split by
vocabulary (32003 classes: uneven shards) and, at the end, the same training in one
process with ``losskit.linear_cross_entropy`` on the full weight; it prints the
largest loss and weight differences.  In float64 both runs do the same arithmetic
up to the order of a few sums, so the differences are rounding (~1e-15); a wrong
gradient, a wrong shard offset or a rank whose body drifted would show as O(1).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "vocab_parallel.py"
TIMEOUT_S = 120  # a deadlock fails the test instead of hanging CI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str]) -> str:
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # torchrun and its workers in one process group
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish in {TIMEOUT_S} s:\n{out[-4000:]}")
    assert proc.returncode == 0, out[-4000:]
    return out


def test_example_two_ranks_agrees_with_one_process():
    steps = 5
    out = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-port",
            str(_free_port()),
            str(EXAMPLE),
            "--steps",
            str(steps),
        ]
    )
    # each rank printed its own shard and losses: step 1 and the last step at least
    per_rank: dict[int, dict[int, float]] = {0: {}, 1: {}}
    shards = {}
    for rank, lo, hi, step, loss in re.findall(
        r"rank (\d)/2 \(classes (\d+)-(\d+)\): step +(\d+) loss ([0-9.]+)", out
    ):
        per_rank[int(rank)][int(step)] = float(loss)
        shards[int(rank)] = (int(lo), int(hi))
    assert shards == {0: (0, 16001), 1: (16002, 32002)}, out  # 32003 = 16002 + 16001
    assert set(per_rank[0]) >= {1, steps} and per_rank[0] == per_rank[1], out
    # the loss starts at log(V) (weights 0.02 * N(0, 1), zero bias) and falls
    assert abs(per_rank[0][1] - 10.3735) < 0.05, out  # log(32003) = 10.37359
    assert per_rank[0][steps] < per_rank[0][1] - 1.0, out

    assert "every rank the same losses: True" in out, out
    m = re.search(r"max \|loss difference\| over (\d+) steps: ([0-9.e+-]+)", out)
    assert m is not None and int(m[1]) == steps, out
    assert float(m[2]) < 1e-10, out
    m = re.search(r"max \|final weight difference\|: ([0-9.e+-]+)", out)
    assert m is not None and float(m[1]) < 1e-10, out
    m = re.search(r"single process: loss ([0-9.]+) -> ([0-9.]+)", out)
    assert m is not None and abs(float(m[2]) - per_rank[0][steps]) < 1e-6, out
