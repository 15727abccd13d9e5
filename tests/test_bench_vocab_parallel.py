"""``losskit bench vocab-parallel``: the benchmark runs 2 gloo ranks under torchrun and
counts every collective; its record pins what each method sends.

Bytes at 2 ranks (ring): an all-reduce of S bytes sends S, an all-gather of s bytes a
rank sends s. losskit's logits version: the metadata all-reduce (float64 2 x 16), the
MAX of the N row maxima and the SUM of 2 rows of N (float32); the linear version adds
the all-reduce of d(hidden) (N x D float32). Gathering the logits sends each rank's
N x V/2 columns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

N, V, D = 64, 100, 16


def test_bench_vocab_parallel_counts_the_collectives_of_each_method():
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    argv = ["bench", "vocab-parallel", "--shapes", f"{N}x{V}", f"{N}x{D}x{V}"]
    proc = subprocess.run(
        [sys.executable, "-m", "losskit", *argv, "--repeats", "1", "--json"],
        capture_output=True, text=True, env=env, timeout=150, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = json.loads(proc.stdout.strip().splitlines()[-1])
    got = {(r["shape"], r["method"]): r for r in records}
    meta = 8 * 2 * 16
    logits = got[f"{N}x{V}", "losskit"]
    assert logits["calls"] == 3
    assert logits["bytes"] == meta + 4 * N + 4 * 2 * N
    assert got[f"{N}x{V}", "gather logits"]["bytes"] == 4 * N * V // 2
    linear = got[f"{N}x{D}x{V}", "losskit"]
    assert linear["calls"] == 4
    assert linear["bytes"] == meta + 4 * N + 4 * 2 * N + 4 * N * D
    assert {m for s, m in got if s == f"{N}x{D}x{V}"} >= {"gather logits", "single process"}
