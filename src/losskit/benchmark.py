"""Sparse softmax cross-entropy speed: losskit against PyTorch, JAX and the bandwidth floor.

For each shape (float32 logits, int64 labels) and thread count, in one process,
this times the forward pass (the mean loss) and the forward plus backward pass
(the loss and the gradient of the logits) of:

- ``losskit``: ``sparse_softmax_cross_entropy`` / ``value_and_grad`` on NumPy,
  with the gradient buffer allocated per call or passed in (``grad_out=``);
- ``losskit (torch)``: the same call on torch tensors, with autograd's backward;
- ``torch``: ``F.cross_entropy`` and ``loss.backward()`` (same thread count);
- ``jax+optax``: ``jax.jit`` of ``optax.softmax_cross_entropy_with_integer_labels``
  (mean) and of its ``jax.value_and_grad``;
- ``numpy``: the textbook array expression (max, subtract, exp, sum, log, gather);
- the floors: reading the logits once (a parallel sum) and reading plus
  writing them once (a parallel copy into a preallocated array).

Each figure is the median of ``--repeats`` timed calls after warm-up. Each
row shows its ratio to PyTorch (``torch time / row time``: above 1 is faster
than PyTorch) and to the floor (``row time / floor time``: the read floor for
the forward pass, the read-plus-write floor for forward plus backward). JAX
fixes its thread count when it is imported, so with several ``--threads``
each count runs in a child process of its own.

Run ``python benchmarks/cross_entropy.py`` or ``losskit bench``; ``--help``
lists the options.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

DEFAULT_SHAPES = ((65536, 10), (8192, 1000), (4096, 32000), (1024, 128256))
FWD = "forward"
FWD_BWD = "forward+backward"


def _parse_shapes(text: str) -> list[tuple[int, int]]:
    shapes = []
    for part in text.split(","):
        n, _, c = part.strip().lower().partition("x")
        if not n.isdigit() or not c.isdigit() or int(c) < 1:
            msg = f"shapes are NxC separated by commas, e.g. 8192x1000; got {part!r}"
            raise argparse.ArgumentTypeError(msg)
        shapes.append((int(n), int(c)))
    return shapes


def _parse_threads(text: str) -> list[int]:
    try:
        threads = [int(t) for t in text.split(",")]
    except ValueError:
        threads = []
    if not threads or min(threads) < 1:
        msg = f"threads are positive integers separated by commas, e.g. 1,2; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return threads


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="losskit bench",
        description="Time sparse softmax cross-entropy (float32) in losskit, PyTorch, "
        "JAX+optax and NumPy against the memory-bandwidth floor.",
    )
    p.add_argument(
        "--shapes",
        type=_parse_shapes,
        default=list(DEFAULT_SHAPES),
        help="NxC shapes, comma separated (default: "
        + ",".join(f"{n}x{c}" for n, c in DEFAULT_SHAPES)
        + ")",
    )
    p.add_argument(
        "--threads",
        type=_parse_threads,
        default=[1, 2],
        help="thread counts, comma separated (default: 1,2)",
    )
    p.add_argument("--repeats", type=int, default=7, help="timed calls per figure (median)")
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    p.add_argument(
        "--only",
        default="",
        help="comma separated subset of: losskit,torch,jax,numpy,floor (default: all)",
    )
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    return p


# --------------------------------------------------------------------------- floors


def _floor_kernels() -> tuple[Callable[..., Any], Callable[..., Any]]:
    from numba import njit, prange

    @njit(parallel=True, fastmath=True, cache=True)
    def read_once(x):  # the logits read once: a parallel sum
        total = 0.0
        for i in prange(x.shape[0]):
            row = x[i]
            acc = row.dtype.type(0.0)
            for c in range(row.shape[0]):
                acc += row[c]
            total += acc
        return total

    @njit(parallel=True, cache=True)
    def read_write_once(x, out):  # read once, write once: a parallel copy
        for i in prange(x.shape[0]):
            row = x[i]
            orow = out[i]
            for c in range(row.shape[0]):
                orow[c] = row[c]

    return read_once, read_write_once


# --------------------------------------------------------------------------- timing


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: compile, allocate, fault pages in
    first = time.perf_counter()
    fn()
    once = time.perf_counter() - first
    n = repeats if once < 0.5 else max(3, repeats // 2)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _textbook_numpy(x: np.ndarray, y: np.ndarray, with_grad: bool) -> Any:
    rows = np.arange(x.shape[0])
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - x[rows, y])
    if not with_grad:
        return loss
    p = e / s  # d/dx = (softmax - onehot) / N
    p[rows, y] -= 1
    p /= x.shape[0]
    return loss, p


def _cases(
    x: np.ndarray, y: np.ndarray, only: set[str], threads: int
) -> list[tuple[str, str, Callable[[], Any]]]:
    """(pass, implementation, call) for everything installed and selected."""
    import losskit as lk

    cases: list[tuple[str, str, Callable[[], Any]]] = []
    if "floor" in only:
        read_once, read_write_once = _floor_kernels()
        buf = np.empty_like(x)
        cases.append((FWD, "floor: read once", lambda: read_once(x)))
        cases.append((FWD_BWD, "floor: read+write once", lambda: read_write_once(x, buf)))
    if "losskit" in only:
        vg = lk.value_and_grad(lk.sparse_softmax_cross_entropy)
        gbuf = np.empty_like(x)
        cases.append((FWD, "losskit", lambda: lk.sparse_softmax_cross_entropy(x, y)))
        cases.append((FWD_BWD, "losskit", lambda: vg(x, y)))
        cases.append((FWD_BWD, "losskit grad_out=", lambda: vg(x, y, grad_out=gbuf)))
    if "torch" in only:
        torch: Any = None
        try:
            import torch
            import torch.nn.functional as F
        except ImportError:
            torch = None
        if torch is not None:
            torch.set_num_threads(threads)
            xt = torch.from_numpy(x)
            yt = torch.from_numpy(y)
            xg = torch.from_numpy(x.copy()).requires_grad_(True)

            def torch_fwd() -> Any:
                with torch.no_grad():
                    return F.cross_entropy(xt, yt)

            def torch_fwd_bwd() -> Any:
                xg.grad = None
                loss = F.cross_entropy(xg, yt)
                loss.backward()
                return loss

            def lk_torch_fwd() -> Any:
                with torch.no_grad():
                    return lk.sparse_softmax_cross_entropy(xt, yt)

            def lk_torch_fwd_bwd() -> Any:
                xg.grad = None
                loss = lk.sparse_softmax_cross_entropy(xg, yt)
                loss.backward()
                return loss

            cases.append((FWD, "torch", torch_fwd))
            cases.append((FWD_BWD, "torch", torch_fwd_bwd))
            if "losskit" in only:
                cases.append((FWD, "losskit (torch)", lk_torch_fwd))
                cases.append((FWD_BWD, "losskit (torch)", lk_torch_fwd_bwd))
    if "jax" in only:
        jax: Any = None
        try:
            import jax
            import optax
        except ImportError:  # jax without optax too: no column rather than a NameError
            jax = None
        if jax is not None:
            xj = jax.device_put(x)
            yj = jax.device_put(y.astype(np.int32))

            def mean_loss(z: Any, labels: Any) -> Any:
                return optax.softmax_cross_entropy_with_integer_labels(z, labels).mean()

            fwd = jax.jit(mean_loss)
            fwd_bwd = jax.jit(jax.value_and_grad(mean_loss))
            cases.append((FWD, "jax+optax", lambda: fwd(xj, yj).block_until_ready()))
            cases.append((FWD_BWD, "jax+optax", lambda: jax.block_until_ready(fwd_bwd(xj, yj))))
    if "numpy" in only:
        cases.append((FWD, "numpy textbook", lambda: _textbook_numpy(x, y, False)))
        cases.append((FWD_BWD, "numpy textbook", lambda: _textbook_numpy(x, y, True)))
    return cases


def measure(
    shapes: Sequence[tuple[int, int]], threads: int, repeats: int, only: set[str]
) -> list[dict[str, Any]]:
    """Time every case at every shape with ``threads`` threads; one record per figure."""
    import numba

    from .kernels import dispatch

    dispatch.threading_layer()  # the kernels' layer (TBB), chosen before numba starts threads
    numba.set_num_threads(min(threads, int(numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    records: list[dict[str, Any]] = []
    for n, c in shapes:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, c), dtype=np.float32)
        y = rng.integers(0, c, n)
        timed = []
        for pass_, impl, call in _cases(x, y, only, threads):
            timed.append((pass_, impl, _median_ms(call, repeats)))
            gc.collect()
        for pass_ in (FWD, FWD_BWD):
            rows = [(impl, ms) for p, impl, ms in timed if p == pass_]
            ref = {impl: ms for impl, ms in rows}
            floor = next((ms for impl, ms in rows if impl.startswith("floor")), None)
            for impl, ms in rows:
                records.append(
                    {
                        "threads": threads,
                        "shape": [n, c],
                        "pass": pass_,
                        "impl": impl,
                        "ms": round(ms, 4),
                        "speedup_vs_torch": round(ref["torch"] / ms, 3) if "torch" in ref else None,
                        "x_floor": round(ms / floor, 3) if floor else None,
                    }
                )
        del x, y, timed
        gc.collect()
    return records


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["NUMBA_NUM_THREADS"] = str(max(threads, 1))
    env["OMP_NUM_THREADS"] = str(threads)
    flags = env.get("XLA_FLAGS", "")
    if threads == 1:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    env["XLA_FLAGS"] = flags.strip()
    return env


def _run_children(args: argparse.Namespace) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    shapes = ",".join(f"{n}x{c}" for n, c in args.shapes)
    for t in args.threads:
        cmd = [sys.executable, "-m", "losskit.benchmark", "--_child", "--threads", str(t)]
        cmd += ["--shapes", shapes, "--repeats", str(args.repeats), "--only", args.only]
        out = subprocess.run(cmd, env=_child_env(t), capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            msg = f"the benchmark at {t} thread(s) failed (exit {out.returncode})"
            raise RuntimeError(msg)
        records.extend(json.loads(out.stdout))
    return records


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """A plain-text table, one block per (threads, shape, pass)."""
    lines = [
        "median ms; vs torch = torch ms / row ms (above 1: faster than PyTorch); "
        "x floor = row ms / floor ms"
    ]
    head = f"{'implementation':<24}{'ms':>10}{'vs torch':>10}{'x floor':>9}"
    key = None
    for r in records:
        k = (r["threads"], tuple(r["shape"]), r["pass"])
        if k != key:
            key = k
            n, c = r["shape"]
            lines.append("")
            lines.append(f"{n} x {c} float32, {r['pass']}, {r['threads']} thread(s)")
            lines.append(head)
        vs = f"{r['speedup_vs_torch']:.2f}x" if r["speedup_vs_torch"] else "-"
        fl = f"{r['x_floor']:.2f}" if r["x_floor"] else "-"
        lines.append(f"{r['impl']:<24}{r['ms']:>10.3f}{vs:>10}{fl:>9}")
    return "\n".join(lines)


# The columns that need another framework, and the modules each needs.
_OPTIONAL = {"torch": ("torch",), "jax": ("jax", "optax")}


def _missing(only: set[str]) -> list[str]:
    """The selected frameworks that cannot be imported here (found without importing them)."""
    import importlib.util

    def absent(module: str) -> bool:
        if module in sys.modules:  # imported already, or blocked (None)
            return sys.modules[module] is None
        try:
            return importlib.util.find_spec(module) is None
        except (ImportError, ValueError):
            return True

    return [
        name for name, modules in _OPTIONAL.items() if name in only and any(map(absent, modules))
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``losskit bench`` and ``benchmarks/cross_entropy.py``."""
    args = _parser().parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()} or {
        "losskit",
        "torch",
        "jax",
        "numpy",
        "floor",
    }
    args.only = ",".join(sorted(only))
    missing = _missing(only)
    if missing and not args._child:  # say why those columns will be absent
        what = " and ".join("jax/optax" if m == "jax" else m for m in missing)
        verb, its = ("is", "its") if what in ("torch", "jax/optax") else ("are", "their")
        pip = " ".join("jax optax" if m == "jax" else m for m in missing)
        msg = f"{what} {verb} not installed, so {its} columns are left out (pip install {pip})"
        print(f"losskit bench: {msg}", file=sys.stderr)
    if args._child or len(args.threads) == 1:
        t = args.threads[0]
        if "jax" not in sys.modules and t == 1:
            os.environ.update({"XLA_FLAGS": _child_env(1)["XLA_FLAGS"]})
        records = measure(args.shapes, t, args.repeats, only)
    else:
        records = _run_children(args)
    if args.json or args._child:
        print(json.dumps(records, indent=None if args._child else 1))
    else:
        print(format_table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
