"""Vocabulary-parallel cross-entropy: time and bytes communicated per token, losskit vs the others.

At ``--nproc`` gloo ranks (default 2; loopback), the classes split evenly across the
ranks, float32, for each shape it times fwd+bwd (median of ``--repeats`` after a
warm-up; a step's time is the slowest rank's) and counts the bytes each rank sends:

logits version, ``N x V`` (each rank holds its ``N x V/p`` columns of the logits):

- ``losskit``: :func:`losskit.distributed.vocab_parallel_cross_entropy`;
- ``gather logits``: all-gather the shards so every rank holds the full ``N x V``
  logits, ``F.cross_entropy`` on them, backward keeps the rank's columns of the
  gradient (no communication in backward);
- ``DTensor loss_parallel``: ``F.cross_entropy`` on a ``Shard(1)`` DTensor of the
  logits inside ``torch.distributed.tensor.parallel.loss_parallel()`` (PyTorch's own;
  it refuses ``label_smoothing``);

linear version, ``N x D x V`` (hidden states ``N x D`` replicated, each rank holds
``V/p`` rows of the output weight; the logits are computed on each rank):

- ``losskit``: :func:`losskit.distributed.vocab_parallel_linear_cross_entropy`
  (chunked over tokens, no logits held);
- ``gather logits``: the rank's ``N x V/p`` logits ``hidden @ weight_shard.T``, then as
  above, backward all-reduces the ``N x D`` gradient of the hidden states;
- ``DTensor loss_parallel``: ``F.linear`` of a ``Replicate`` DTensor of the hidden
  states and a ``Shard(0)`` DTensor of the weight (a ``Shard(1)`` DTensor of logits),
  then ``F.cross_entropy`` inside ``loss_parallel()``;
- ``single process``: :func:`losskit.linear_cross_entropy` on the full weight in one
  process using the threads of all ranks together (``--nproc x --threads``), run
  after the ranks have finished.

Bytes: every collective is intercepted by a ``TorchDispatchMode`` (the way
PyTorch's ``CommDebugMode`` sees ``torch.distributed`` calls and DTensor's functional
collectives alike) and charged what one rank sends under the ring algorithm: an
all-reduce of ``S`` bytes ``2 (p-1)/p S``, an all-gather of ``s`` bytes from each rank
``(p-1) s``, a reduce-scatter of ``S`` bytes ``(p-1)/p S``, a broadcast ``S``.  At 2
ranks that is the size of the tensor handed to an all-reduce and of each rank's
part of an all-gather.  Divided by ``N`` it is the bytes per token of one fwd+bwd.

Usage (hold the shared lock so that timings do not overlap)::

    flock /tmp/bench.lock losskit bench vocab-parallel                   # launches 2 ranks
    flock /tmp/bench.lock python benchmarks/vocab_parallel.py            # the same
    flock /tmp/bench.lock python benchmarks/vocab_parallel.py --shapes 4096x32000 2048x1024x32000
    torchrun --nproc-per-node 2 benchmarks/vocab_parallel.py --threads 1

The table is markdown (``--json``: the records); tests/test_bench_vocab_parallel.py
pins the collectives and bytes of a tiny run.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

DEFAULT_SHAPES = ["4096x32000", "2048x1024x32000", "512x2048x128256"]


# --------------------------------------------------------------------------- counting bytes
#: the data-moving collectives (not ``wait_tensor``, ``barrier``, ``_wrap_tensor_autograd``)
_COLLECTIVE = re.compile(
    r"^(allreduce|allgather|reducescatter|alltoall|broadcast|gather|scatter|reduce)"
)
_INPUT_NAMES = ("tensors", "input_tensors", "input_tensor", "input", "inputs")


def _tensors(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for item in x for t in _tensors(item)]
    return []


def _ring_factor(name: str, p: int) -> float:
    """Bytes one rank sends per byte of its input to the collective ``name`` (ring algorithm)."""
    name = name.replace("_", "")
    if "allreduce" in name:
        return 2 * (p - 1) / p
    if "allgather" in name:
        return p - 1
    if "reducescatter" in name or "alltoall" in name or name.startswith("reduce"):
        return (p - 1) / p
    return 1.0  # broadcast, gather, scatter: at most the tensor once


class CountCollectives(TorchDispatchMode):
    """Adds up the bytes each collective makes this rank send (see the module docstring)."""

    def __init__(self, world: int) -> None:
        super().__init__()
        self.world, self.bytes, self.calls = world, 0.0, 0
        self.log: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        from torch.distributed.tensor import DTensor

        if any(t is DTensor for t in types):
            return NotImplemented  # let DTensor lower itself to collectives first
        namespace = func.namespace
        if namespace in ("c10d", "_c10d_functional", "c10d_functional"):
            name = func._schema.name.split("::")[-1]
            if _COLLECTIVE.search(name.replace("_", "")):
                bound = dict(zip((a.name for a in func._schema.arguments), args, strict=False))
                bound.update(kwargs)
                key = next(k for k in _INPUT_NAMES if k in bound)
                inputs = _tensors(bound[key])
                nbytes = sum(t.numel() * t.element_size() for t in inputs)
                shapes = ", ".join(f"{str(t.dtype)[6:]}{list(t.shape)}" for t in inputs)
                self.log.append(f"{namespace}.{name}({shapes})")
                self.bytes += nbytes * _ring_factor(name, self.world)
                self.calls += 1
        return func(*args, **kwargs)


# --------------------------------------------------------------------------- the methods
class _GatherColumns(torch.autograd.Function):
    """Forward: all-gather the column shards into the full logits; backward: this rank's columns."""

    @staticmethod
    def forward(ctx: Any, shard: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(shard) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, shard.contiguous())
        ctx.cols = shard.shape[-1]
        return torch.cat(parts, dim=-1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        # every rank computed the same full loss, so its columns of the gradient are exact
        lo = dist.get_rank() * ctx.cols
        return grad[..., lo : lo + ctx.cols]


class _ReplicatedInput(torch.autograd.Function):
    """Identity forward; backward all-reduces the gradient (Megatron's copy-to-parallel-region)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


def logits_methods(n: int, v: int, world: int, rank: int) -> dict[str, Callable[[], None]]:
    import losskit.distributed as lkd

    g = torch.Generator().manual_seed(0)
    full = 4 * torch.randn(n, v, generator=g)
    labels = torch.randint(0, v, (n,), generator=g)
    cols = v // world
    shard = full[:, rank * cols : (rank + 1) * cols].clone().requires_grad_()
    del full

    def ours() -> None:
        shard.grad = None
        lkd.vocab_parallel_cross_entropy(shard, labels).backward()

    def gather() -> None:
        shard.grad = None
        F.cross_entropy(_GatherColumns.apply(shard), labels).backward()

    def dtensor() -> None:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor import DTensor, Shard
        from torch.distributed.tensor.parallel import loss_parallel

        mesh = init_device_mesh("cpu", (world,))
        shard.grad = None
        with loss_parallel():
            F.cross_entropy(DTensor.from_local(shard, mesh, [Shard(1)]), labels).backward()

    return {"losskit": ours, "gather logits": gather, "DTensor loss_parallel": dtensor}


def linear_inputs(n: int, d: int, v: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(n, d, generator=g)
    weight = torch.randn(v, d, generator=g) * d**-0.5
    labels = torch.randint(0, v, (n,), generator=g)
    return hidden, weight, labels


def linear_methods(n: int, d: int, v: int, world: int, rank: int) -> dict[str, Callable[[], None]]:
    import losskit.distributed as lkd

    hidden, weight, labels = linear_inputs(n, d, v)
    rows = v // world
    w_shard = weight[rank * rows : (rank + 1) * rows].clone().requires_grad_()
    del weight
    hidden.requires_grad_()

    def ours() -> None:
        hidden.grad = w_shard.grad = None
        lkd.vocab_parallel_linear_cross_entropy(hidden, w_shard, labels).backward()

    def gather() -> None:
        hidden.grad = w_shard.grad = None
        logits = _ReplicatedInput.apply(hidden) @ w_shard.T
        F.cross_entropy(_GatherColumns.apply(logits), labels).backward()

    def dtensor() -> None:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.tensor import DTensor, Replicate, Shard
        from torch.distributed.tensor.parallel import loss_parallel

        mesh = init_device_mesh("cpu", (world,))
        hidden.grad = w_shard.grad = None
        h = DTensor.from_local(hidden, mesh, [Replicate()])
        w = DTensor.from_local(w_shard, mesh, [Shard(0)])
        with loss_parallel():
            F.cross_entropy(F.linear(h, w), labels).backward()

    return {"losskit": ours, "gather logits": gather, "DTensor loss_parallel": dtensor}


def single_process(n: int, d: int, v: int, repeats: int) -> tuple[float, float]:
    """Median fwd+bwd seconds of ``lk.linear_cross_entropy`` on the full weight in one process,
    and its peak memory above the steady state (MB)."""
    import losskit as lk

    hidden, weight, labels = linear_inputs(n, d, v)
    hidden.requires_grad_()
    weight.requires_grad_()

    def step() -> None:
        hidden.grad = weight.grad = None
        lk.linear_cross_entropy(hidden, weight, labels).backward()

    step()
    runs = [peak_above_steady(step) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


# --------------------------------------------------------------------------- measuring
def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return math.nan


def peak_above_steady(fn: Callable[[], None]) -> tuple[float, float]:
    """Seconds of ``fn()`` and its peak resident memory (MB, Linux ``VmHWM``) above the memory
    held before it (inputs and the previous call's gradients: the steady state of training)."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS
        steady = _status_mb("VmRSS")
    except OSError:
        steady = math.nan
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start, _status_mb("VmHWM") - steady


def measure(fn: Callable[[], None], repeats: int, world: int) -> dict[str, Any]:
    """Bytes this rank sends in one call (a counted warm-up call), then the median time and
    the peak memory above the steady state of the calls, the slowest / largest rank's."""
    counter = CountCollectives(world)
    with counter:
        fn()
    times, peaks = [], []
    for _ in range(repeats):
        dist.barrier()
        seconds, peak = peak_above_steady(fn)
        both = torch.tensor([seconds, peak], dtype=torch.float64)
        dist.all_reduce(both, op=dist.ReduceOp.MAX)  # the slowest rank, the largest peak
        times.append(float(both[0]))
        peaks.append(float(both[1]))
    return {
        "seconds": statistics.median(times),
        "peak_mb": max(peaks),
        "bytes": counter.bytes,
        "calls": counter.calls,
        "collectives": counter.log,
    }


def parse_shape(text: str) -> tuple[int, ...]:
    dims = tuple(int(x) for x in text.lower().split("x"))
    if len(dims) not in (2, 3):
        raise SystemExit(f"--shapes: NxV (logits) or NxDxV (linear); got {text!r}")
    return dims


def run_rank(args: argparse.Namespace) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=600))
    rank, world = dist.get_rank(), dist.get_world_size()
    rows: list[dict[str, Any]] = []
    for text in args.shapes:
        dims = parse_shape(text)
        if dims[-1] % world:
            raise SystemExit(f"--shapes: V = {dims[-1]} must divide by the {world} ranks here")
        if len(dims) == 2:
            methods = logits_methods(dims[0], dims[1], world, rank)
        else:
            methods = linear_methods(dims[0], dims[1], dims[2], world, rank)
        for name, fn in methods.items():
            try:
                result = measure(fn, args.repeats, world)
            except Exception as exc:  # a method that fails is reported, not fatal
                result = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"}
            rows.append({"shape": text, "method": name, "n": dims[0], **result})
        del methods
    dist.barrier()
    dist.destroy_process_group()
    if rank != 0:
        return
    # ---- the single-process baseline for the linear shapes, with every rank's threads
    torch.set_num_threads(args.threads * world)
    for text in args.shapes:
        dims = parse_shape(text)
        if len(dims) == 3:
            seconds, peak = single_process(*dims, repeats=args.repeats)
            rows.append(
                {"shape": text, "method": "single process", "n": dims[0], "seconds": seconds}
                | {"peak_mb": peak, "bytes": 0.0, "calls": 0}
            )
    if args.json:
        print(json.dumps(rows))
    else:
        print(table(rows, world, args.threads))
    if args.trace:
        for r in rows:
            print(f"{r['shape']} {r['method']}: " + "; ".join(r.get("collectives", [])))


def table(rows: list[dict[str, Any]], world: int, threads: int) -> str:
    """The markdown table: one row per shape and method, times relative to losskit's."""
    out = [
        f"{world} gloo ranks x {threads} thread(s) (single process: {world * threads} threads), "
        "float32, fwd+bwd median; peak MB: the largest rank's peak resident memory above the "
        "steady state (inputs, gradients); bytes: what each rank sends (ring algorithm)",
        "",
        "| shape | method | fwd+bwd (s) | vs losskit | peak MB | collectives | bytes / token |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    ours = {r["shape"]: r.get("seconds") for r in rows if r["method"] == "losskit"}
    for r in rows:
        dims = r["shape"].replace("x", " x ")
        label = ("N x V = " if r["shape"].count("x") == 1 else "N x D x V = ") + dims
        if "error" in r:
            out.append(f"| {label} | {r['method']} | fails: {r['error']} | | | | |")
            continue
        ratio = r["seconds"] / ours[r["shape"]] if ours.get(r["shape"]) else float("nan")
        cells = [label, r["method"], f"{r['seconds']:.3f}", f"{ratio:.2f}x", f"{r['peak_mb']:.0f}"]
        cells.append(str(r["calls"]))
        cells.append(f"{r['bytes'] / r['n']:,.1f}")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, help="NxV or NxDxV")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="threads per rank")
    parser.add_argument("--nproc", type=int, default=2, help="ranks to launch outside torchrun")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--trace", action="store_true", help="list each method's collectives")
    args = parser.parse_args(argv)
    if "RANK" in os.environ:  # under torchrun
        run_rank(args)
        # without the interpreter's teardown: a rank that had destroyed its process group
        # still aborted now and then while Python finalised ("terminate called without an
        # active exception", C++ thread pools torn down under a finalising interpreter;
        # seen with examples/vocab_parallel.py); only the output needs flushing
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    rest = list(sys.argv[1:] if argv is None else argv)
    if "--nproc" in rest:  # torchrun would take it for its own --nproc-per-node
        del rest[rest.index("--nproc") : rest.index("--nproc") + 2]
    rest = [a for a in rest if not a.startswith("--nproc=")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(args.nproc)]
    # as a script: this file; imported (e.g. moved into the package for ``losskit bench``):
    # its module, which torchrun runs with -m
    spec = globals().get("__spec__")
    target = [__file__] if spec is None or spec.name == "__main__" else ["-m", spec.name]
    cmd += ["--master-port", str(free_port()), *target, *rest]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), GLOO_SOCKET_IFNAME="lo")
    # large buffers mmap'd and returned to the system when freed, so that VmHWM counts
    # each method's own temporaries rather than heap kept from the previous one
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(1 << 20))
    return subprocess.run(cmd, check=False, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
