"""CTC speed: losskit against PyTorch, JAX+optax and the bandwidth floor.

For each shape T x N x C with label length S (float32 logits, int64 labels of
length S in every example, every frame used), at each thread count, in one
process, this times the forward pass (the summed loss) and the forward plus
backward pass (the loss and the gradient of the logits) of:

- ``losskit``: :func:`losskit.ctc` (``reduction="sum"``) and its
  ``value_and_grad`` on NumPy (batch first, N x T x C), where the core has it;
- ``losskit (torch)``: the same call on torch tensors, autograd's backward;
- ``losskit kernel``: the fused kernel itself
  (``losskit.kernels._ctc.ctc_loss_and_grad``), the gradient into a buffer
  passed in;
- ``torch``: ``F.ctc_loss(x.log_softmax(-1), ...)`` on time-first T x N x C
  logits (PyTorch's layout), ``reduction="sum"``, and ``loss.backward()``;
- ``jax+optax``: ``jax.jit`` of ``optax.ctc_loss(...).sum()`` (batch first,
  its layout) and of its ``jax.value_and_grad``;
- the floors: reading the logits once (a parallel sum) and reading plus
  writing them once (a parallel copy into a preallocated array).

The methods are interleaved: after two warm-up calls each, every round times
one call of every method, and each figure is the median over ``--repeats``
rounds, so a change of load on a shared machine touches them all alike; each
round starts one method later than the one before, so that no method always
follows the same other one (PyTorch's OpenMP workers keep spinning for a while
after its call and slow whichever runs next).
Each row shows ``vs torch`` (torch time / row time: above 1 is faster than
PyTorch), ``vs jax`` (the same against jax+optax) and ``x floor`` (row time /
floor time: the read floor for the forward pass, the read-plus-write floor for
forward plus backward). JAX fixes its thread count when it is imported, so
with several ``--threads`` each count runs in a child process of its own.
The load average (``os.getloadavg``) before and after is printed with each
block.

Run ``python benchmarks/ctc.py`` or ``losskit bench ctc``; ``--help`` lists
the options.
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

# (T, N, C, S): the three shapes of issue 10 and a long sequence, 40 s of speech at
# 10 ms frames with a 1000-token vocabulary and 400 labels (characters and subwords).
DEFAULT_SHAPES = (
    (200, 32, 32, 50),
    (500, 16, 1000, 100),
    (1000, 8, 5000, 200),
    (4000, 4, 1000, 400),
)
FWD = "forward"
FWD_BWD = "forward+backward"
ALL = ("losskit", "kernel", "torch", "jax", "floor")


def _parse_shapes(text: str) -> list[tuple[int, int, int, int]]:
    shapes = []
    for part in text.split(","):
        dims = part.strip().lower().split("x")
        if len(dims) != 4 or not all(d.isdigit() and int(d) > 0 for d in dims):
            msg = f"shapes are TxNxCxS separated by commas, e.g. 500x16x1000x100; got {part!r}"
            raise argparse.ArgumentTypeError(msg)
        T, N, C, S = (int(d) for d in dims)
        if C < 2 or 2 * S + 1 > 2 * T + 1 or S > T:
            msg = f"a shape needs C >= 2 and S <= T (every label must fit); got {part!r}"
            raise argparse.ArgumentTypeError(msg)
        shapes.append((T, N, C, S))
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
        prog="losskit bench ctc",
        description="Time CTC (float32) in losskit, PyTorch and JAX+optax against the "
        "memory-bandwidth floor.",
    )
    p.add_argument(
        "--shapes",
        type=_parse_shapes,
        default=list(DEFAULT_SHAPES),
        help="TxNxCxS shapes (frames, batch, classes, label length), comma separated "
        "(default: " + ",".join("x".join(map(str, s)) for s in DEFAULT_SHAPES) + ")",
    )
    p.add_argument(
        "--threads",
        type=_parse_threads,
        default=[1, 2],
        help="thread counts, comma separated (default: 1,2)",
    )
    p.add_argument("--repeats", type=int, default=7, help="timed rounds per figure (median)")
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    p.add_argument(
        "--only",
        default="",
        help="comma separated subset of: " + ",".join(ALL) + " (default: all)",
    )
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    return p


def _inputs(T: int, N: int, C: int, S: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, T, C) float32 and labels (N, S) int64 in [1, C): blank is 0."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, C), dtype=np.float32)
    labels = rng.integers(1, C, (N, S))
    return x, labels


def _cases(
    x: np.ndarray, labels: np.ndarray, only: set[str], threads: int
) -> list[tuple[str, str, Callable[[], Any]]]:
    """(pass, implementation, call) for everything installed and selected."""
    import losskit as lk

    N, T, C = x.shape
    S = labels.shape[1]
    tl = np.full(N, T, dtype=np.int64)
    ll = np.full(N, S, dtype=np.int64)
    cases: list[tuple[str, str, Callable[[], Any]]] = []
    if "floor" in only:
        from .benchmark import _floor_kernels

        read_once, read_write_once = _floor_kernels()
        flat = x.reshape(N * T, C)
        buf = np.empty_like(flat)
        cases.append((FWD, "floor: read once", lambda: read_once(flat)))
        cases.append((FWD_BWD, "floor: read+write once", lambda: read_write_once(flat, buf)))
    core = getattr(lk, "ctc", None)
    if "losskit" in only and core is not None:
        vg = lk.value_and_grad(core)
        cases.append((FWD, "losskit", lambda: core(x, labels, reduction="sum")))
        cases.append((FWD_BWD, "losskit", lambda: vg(x, labels, reduction="sum")))
    if "kernel" in only:
        from .kernels._ctc import ctc_loss_and_grad

        gbuf = np.empty_like(x)
        ones = np.ones(N)

        def kernel_fwd() -> Any:
            return ctc_loss_and_grad(x, labels, tl, ll, 0)[0].sum()

        def kernel_fwd_bwd() -> Any:
            nll, g = ctc_loss_and_grad(x, labels, tl, ll, 0, grad_scale=ones, grad_out=gbuf)
            return nll.sum(), g

        cases.append((FWD, "losskit kernel", kernel_fwd))
        cases.append((FWD_BWD, "losskit kernel grad_out=", kernel_fwd_bwd))
    if "torch" in only:
        torch: Any = None
        try:
            import torch
            import torch.nn.functional as F
        except ImportError:
            torch = None
        if torch is not None:
            torch.set_num_threads(threads)
            xt = torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2)))  # T x N x C
            xg = xt.clone().requires_grad_(True)
            yt = torch.from_numpy(labels)
            tlt = torch.from_numpy(tl)
            llt = torch.from_numpy(ll)

            def torch_fwd() -> Any:
                with torch.no_grad():
                    return F.ctc_loss(xt.log_softmax(-1), yt, tlt, llt, reduction="sum")

            def torch_fwd_bwd() -> Any:
                xg.grad = None
                loss = F.ctc_loss(xg.log_softmax(-1), yt, tlt, llt, reduction="sum")
                loss.backward()
                return loss

            cases.append((FWD, "torch", torch_fwd))
            cases.append((FWD_BWD, "torch", torch_fwd_bwd))
            if "losskit" in only and core is not None:
                xb = torch.from_numpy(x)  # losskit's layout: N x T x C
                xbg = xb.clone().requires_grad_(True)

                def lk_torch_fwd() -> Any:
                    with torch.no_grad():
                        return core(xb, yt, reduction="sum")

                def lk_torch_fwd_bwd() -> Any:
                    xbg.grad = None
                    loss = core(xbg, yt, reduction="sum")
                    loss.backward()
                    return loss

                cases.append((FWD, "losskit (torch)", lk_torch_fwd))
                cases.append((FWD_BWD, "losskit (torch)", lk_torch_fwd_bwd))
    if "jax" in only:
        jax: Any = None
        try:
            import jax
            import optax
        except ImportError:
            jax = None
        if jax is not None:
            xj = jax.device_put(x)
            yj = jax.device_put(labels.astype(np.int32))
            pad_x = jax.device_put(np.zeros((N, T), np.float32))
            pad_y = jax.device_put(np.zeros((N, S), np.float32))

            def total(z: Any) -> Any:
                return optax.ctc_loss(z, pad_x, yj, pad_y).sum()

            fwd = jax.jit(total)
            fwd_bwd = jax.jit(jax.value_and_grad(total))
            cases.append((FWD, "jax+optax", lambda: fwd(xj).block_until_ready()))
            cases.append((FWD_BWD, "jax+optax", lambda: jax.block_until_ready(fwd_bwd(xj))))
    return cases


def _interleaved_ms(calls: Sequence[Callable[[], Any]], repeats: int) -> list[float]:
    """Median ms of each call: two warm-up calls each, then ``repeats`` rounds of every
    method (fewer rounds, at least 3, where one round takes over 10 s), each round in a
    fresh random order (seeded), a method called twice in a row and its second call timed.

    The untimed call absorbs what the method before left behind: PyTorch's OpenMP
    workers keep spinning for 1-3 ms after a parallel op and took a core from whatever
    ran next (the kernel right after a torch op took 2.2 ms instead of 1.15 at
    200 x 32 x 32, 2 threads). A pause instead let every pool fall asleep, and each
    timed call paid for waking it (the kernel at 2 threads ran as slowly as at one).
    """
    for fn in calls:
        fn()
        fn()
    times: list[list[float]] = [[] for _ in calls]
    order = np.random.default_rng(0)
    for r in range(max(repeats, 1)):
        start = time.perf_counter()
        for k in order.permutation(len(calls)):
            calls[k]()
            t0 = time.perf_counter()
            calls[k]()
            times[k].append(time.perf_counter() - t0)
        if r >= 2 and time.perf_counter() - start > 20.0:
            break
    return [1e3 * statistics.median(ts) for ts in times]


def measure(
    shapes: Sequence[tuple[int, int, int, int]], threads: int, repeats: int, only: set[str]
) -> list[dict[str, Any]]:
    """Time every case at every shape with ``threads`` threads; one record per figure."""
    import numba

    from .kernels import dispatch

    dispatch.threading_layer()  # the kernels' layer (TBB), chosen before numba starts threads
    numba.set_num_threads(min(threads, int(numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    records: list[dict[str, Any]] = []
    for T, N, C, S in shapes:
        x, labels = _inputs(T, N, C, S)
        cases = _cases(x, labels, only, threads)
        load_before = os.getloadavg()[0]
        ms = _interleaved_ms([call for _, _, call in cases], repeats)
        load_after = os.getloadavg()[0]
        timed = [(p, impl, t) for (p, impl, _), t in zip(cases, ms, strict=True)]
        del cases
        gc.collect()
        for pass_ in (FWD, FWD_BWD):
            rows = [(impl, t) for p, impl, t in timed if p == pass_]
            ref = dict(rows)
            floor = next((t for impl, t in rows if impl.startswith("floor")), None)
            for impl, t in rows:
                records.append(
                    {
                        "threads": threads,
                        "shape": [T, N, C, S],
                        "pass": pass_,
                        "impl": impl,
                        "ms": round(t, 4),
                        "speedup_vs_torch": round(ref["torch"] / t, 3) if "torch" in ref else None,
                        "speedup_vs_jax": (
                            round(ref["jax+optax"] / t, 3) if "jax+optax" in ref else None
                        ),
                        "x_floor": round(t / floor, 3) if floor else None,
                        "load": [round(load_before, 2), round(load_after, 2)],
                    }
                )
        del x, labels, timed
        gc.collect()
    return records


def _child_env(threads: int) -> dict[str, str]:
    from .benchmark import _child_env as env

    return env(threads)


def _run_children(args: argparse.Namespace) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    shapes = ",".join("x".join(map(str, s)) for s in args.shapes)
    for t in args.threads:
        cmd = [sys.executable, "-m", "losskit.benchmark_ctc", "--_child", "--threads", str(t)]
        cmd += ["--shapes", shapes, "--repeats", str(args.repeats), "--only", args.only]
        out = subprocess.run(cmd, env=_child_env(t), capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            msg = f"the CTC benchmark at {t} thread(s) failed (exit {out.returncode})"
            raise RuntimeError(msg)
        records.extend(json.loads(out.stdout))
    return records


def _ratio(v: float | None) -> str:
    return f"{v:.2f}x" if v else "-"


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """A plain-text table, one block per (threads, shape, pass)."""
    lines = [
        "median ms; vs torch = torch ms / row ms, vs jax = jax+optax ms / row ms (above 1: "
        "faster); x floor = row ms / floor ms"
    ]
    head = f"{'implementation':<26}{'ms':>10}{'vs torch':>10}{'vs jax':>9}{'x floor':>9}"
    key = None
    for r in records:
        k = (r["threads"], tuple(r["shape"]), r["pass"])
        if k != key:
            key = k
            T, N, C, S = r["shape"]
            lines.append("")
            lines.append(
                f"T {T} x N {N} x C {C}, S = {S}, float32, {r['pass']}, {r['threads']} "
                f"thread(s) (load {r['load'][0]:.1f} -> {r['load'][1]:.1f})"
            )
            lines.append(head)
        fl = f"{r['x_floor']:.2f}" if r["x_floor"] else "-"
        lines.append(
            f"{r['impl']:<26}{r['ms']:>10.3f}{_ratio(r['speedup_vs_torch']):>10}"
            f"{_ratio(r['speedup_vs_jax']):>9}{fl:>9}"
        )
    return "\n".join(lines)


def _pick(rows: dict[str, float], *names: str) -> float | None:
    """The first of ``names`` that has a figure in ``rows``."""
    return next((rows[n] for n in names if n in rows), None)


def _pair(a: float | None, b: float | None, fmt: str = "{:.1f}") -> str:
    return " / ".join(fmt.format(v) if v is not None else "-" for v in (a, b))


def _over(ref: float | None, mine: float | None) -> float | None:
    return ref / mine if ref is not None and mine else None


def markdown_summary(records: Sequence[dict[str, Any]]) -> str:
    """One markdown row per (shape, threads): fwd / fwd+bwd ms of losskit's public paths
    (``value_and_grad(lk.ctc)`` on NumPy, ``lk.ctc`` on torch tensors with autograd), the
    kernel alone, torch and jax+optax, and the ratios of each losskit path to torch and
    jax (torch ms / losskit ms: above 1 is faster)."""
    table: dict[tuple[Any, ...], dict[str, dict[str, float]]] = {}
    for r in records:
        key = (tuple(r["shape"]), r["threads"])
        table.setdefault(key, {}).setdefault(r["pass"], {})[r["impl"]] = r["ms"]
    whos = ("losskit", "losskit (torch)", "kernel")
    out = [
        "| T x N x C, S | threads | losskit NumPy | losskit torch | kernel | torch | "
        "jax.jit optax | NumPy vs torch | NumPy vs jax | torch path vs torch | "
        "torch path vs jax | kernel vs torch | kernel vs jax |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (shape, threads), passes in table.items():
        f, b = passes.get(FWD, {}), passes.get(FWD_BWD, {})
        mine = {
            "losskit": (f.get("losskit"), b.get("losskit")),
            "losskit (torch)": (f.get("losskit (torch)"), b.get("losskit (torch)")),
            "kernel": (f.get("losskit kernel"), b.get("losskit kernel grad_out=")),
        }
        T, N, C, S = shape
        cells = [f"{T} x {N} x {C}, S = {S}", str(threads)]
        cells += [_pair(*mine[who]) for who in whos]
        cells += [_pair(f.get("torch"), b.get("torch"))]
        cells += [_pair(f.get("jax+optax"), b.get("jax+optax"))]
        for who in whos:
            mf, mb = mine[who]
            for ref in ("torch", "jax+optax"):
                cells.append(_pair(_over(f.get(ref), mf), _over(b.get(ref), mb), "{:.1f}x"))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


_OPTIONAL = {"torch": ("torch",), "jax": ("jax", "optax")}


def _missing(only: set[str]) -> list[str]:
    import importlib.util

    def absent(module: str) -> bool:
        if module in sys.modules:
            return sys.modules[module] is None
        try:
            return importlib.util.find_spec(module) is None
        except (ImportError, ValueError):
            return True

    return [
        name for name, modules in _OPTIONAL.items() if name in only and any(map(absent, modules))
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``losskit bench ctc`` and ``benchmarks/ctc.py``."""
    args = _parser().parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()} or set(ALL)
    unknown = only - set(ALL)
    if unknown:
        msg = f"--only takes {', '.join(ALL)}; got {', '.join(sorted(unknown))}"
        print(f"losskit bench ctc: {msg}", file=sys.stderr)
        return 2
    args.only = ",".join(sorted(only))
    missing = _missing(only)
    if missing and not args._child:
        what = " and ".join("jax/optax" if m == "jax" else m for m in missing)
        print(f"losskit bench ctc: {what} not installed, its columns are left out", file=sys.stderr)
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
        print()
        print(markdown_summary(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
