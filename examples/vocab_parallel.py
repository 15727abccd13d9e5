"""Train a toy language-model head whose output layer is split by vocabulary across processes.

Every process (rank) holds the same small model body, a word embedding and one
hidden layer (same seed, replicated), and its own rows of the output layer: the
vocabulary of ``--vocab`` words (32003 by default, not divisible by 2 or 3, so
the shards are uneven) is cut into one contiguous slice per rank.  The loss is
:func:`losskit.distributed.vocab_parallel_linear_cross_entropy`: each rank
multiplies the hidden states by its rows only, the ranks all-reduce a few
numbers per token (the max, the sum of exponentials, the target logit), and
backward all-reduces the gradient of the hidden states once, so that every
rank's body gets the full gradient and stays identical to the others'.  No rank
ever holds a full row of logits.

The corpus is the Zen of Python (``import this``), one word or punctuation mark
per token, each word given a fixed id in the large vocabulary (CRC-32 of the
word); the model predicts every token from the two before it.  Adam trains it
for ``--steps`` steps on the whole text and each rank prints its loss as it
goes.  At the end rank 0 trains the same model from the same initial weights in
one process with :func:`losskit.linear_cross_entropy` on the full output
weight and prints the largest difference in loss over the steps and in every
final weight: about 1e-15 in float64 (the default), about 1e-6 in float32.

Usage::

    torchrun --nproc-per-node 2 examples/vocab_parallel.py        # 1, 2, 3, ... processes
    python examples/vocab_parallel.py --nproc 3                    # launches torchrun itself
    python examples/vocab_parallel.py                              # one process
    torchrun --nproc-per-node 2 examples/vocab_parallel.py --dtype float32 --steps 60

Processes talk over gloo on the loopback interface (``GLOO_SOCKET_IFNAME=lo``
unless set), initialised from torchrun's environment (``env://``).
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import datetime
import io
import os
import re
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Callable

import torch
import torch.distributed as dist

import losskit as lk
import losskit.distributed as lkd

EMBED, HIDDEN, CONTEXT = 16, 64, 2


def corpus(vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The Zen of Python as (token, its ``CONTEXT`` predecessors) pairs of ids in ``[0, vocab)``."""
    with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the Zen
        import this
    text = codecs.decode(this.s, "rot13").lower()
    words = re.findall(r"[a-z]+|\n|[^\sa-z]", text)
    ids = torch.tensor([zlib.crc32(w.encode()) % vocab for w in words])
    context = torch.stack([ids[i : len(ids) - CONTEXT + i] for i in range(CONTEXT)], dim=1)
    return context, ids[CONTEXT:]


def init_params(vocab: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The whole model, built from one seed: the same numbers on every rank."""
    g = torch.Generator().manual_seed(0)

    def randn(*shape: int, scale: float) -> torch.Tensor:
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)

    return {
        "embed": randn(vocab, EMBED, scale=1.0),
        "w1": randn(HIDDEN, CONTEXT * EMBED, scale=(CONTEXT * EMBED) ** -0.5),
        "b1": torch.zeros(HIDDEN, dtype=dtype),
        "out_w": randn(vocab, HIDDEN, scale=0.02),
        "out_b": torch.zeros(vocab, dtype=dtype),
    }


def body(p: dict[str, torch.Tensor], context: torch.Tensor) -> torch.Tensor:
    """Hidden states ``(tokens, HIDDEN)``: embed the context words, one tanh layer."""
    x = p["embed"][context].flatten(1)
    return torch.tanh(x @ p["w1"].T + p["b1"])


def train(
    p: dict[str, torch.Tensor],
    loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    steps: int,
    lr: float,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Adam on every tensor of ``p`` (in place); the loss of each step."""
    params = [t.requires_grad_() for t in p.values()]
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        loss = loss_fn(p)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    return losses


def shard_bounds(vocab: int, world: int, rank: int) -> tuple[int, int]:
    """Rank ``rank``'s classes ``[lo, hi)``: contiguous, in rank order, the first ``vocab % world``
    ranks one class more (``torch.tensor_split``'s cut)."""
    sizes = [vocab // world + (r < vocab % world) for r in range(world)]
    return sum(sizes[:rank]), sum(sizes[: rank + 1])


def gather_rows(shard: torch.Tensor, vocab: int) -> torch.Tensor:
    """The full ``(vocab, ...)`` tensor from every rank's rows (uneven shards, padded for gloo)."""
    world = dist.get_world_size()
    rows = -(-vocab // world)
    padded = torch.zeros((rows, *shard.shape[1:]), dtype=shard.dtype)
    padded[: len(shard)] = shard
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    sizes = [b - a for a, b in (shard_bounds(vocab, world, r) for r in range(world))]
    return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)])


def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    rank, world = dist.get_rank(), dist.get_world_size()
    dtype = getattr(torch, args.dtype)
    context, labels = corpus(args.vocab)
    options = {"label_smoothing": args.label_smoothing, "z_loss": args.z_loss}
    every = max(1, args.steps // 6)
    start = time.perf_counter()

    # ---- vocabulary-parallel: the body replicated, the output layer's rows [lo, hi) here
    lo, hi = shard_bounds(args.vocab, world, rank)
    full = init_params(args.vocab, dtype)
    mine = {k: v for k, v in full.items() if not k.startswith("out_")}
    mine["out_w"], mine["out_b"] = full["out_w"][lo:hi].clone(), full["out_b"][lo:hi].clone()

    def parallel_loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return lkd.vocab_parallel_linear_cross_entropy(
            body(p, context), p["out_w"], labels, bias_shard=p["out_b"], **options
        )

    def report(step: int, loss: float) -> None:
        if step % every == 0 or step == args.steps - 1:
            for turn in range(world):  # in rank order (all ranks reach this line together)
                if turn == rank:
                    line = f"rank {rank}/{world} (classes {lo}-{hi - 1}): step {step + 1:3d} "
                    print(line + f"loss {loss:.6f}", flush=True)
                dist.barrier()

    losses = train(mine, parallel_loss, args.steps, args.lr, report)
    seconds = time.perf_counter() - start

    # ---- the same losses on every rank, bit for bit?
    mine_losses = torch.tensor(losses, dtype=torch.float64)
    every_rank = [torch.empty_like(mine_losses) for _ in range(world)]
    dist.all_gather(every_rank, mine_losses)
    same = all(torch.equal(r, mine_losses) for r in every_rank)
    final = {k: v.detach() for k, v in mine.items() if not k.startswith("out_")}
    final["out_w"] = gather_rows(mine["out_w"].detach(), args.vocab)
    final["out_b"] = gather_rows(mine["out_b"].detach(), args.vocab)

    if rank == 0:
        # ---- one process, the full output weight, the same initial weights and steps
        ref = init_params(args.vocab, dtype)

        def single_loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
            return lk.linear_cross_entropy(
                body(p, context), p["out_w"], labels, bias=p["out_b"], **options
            )

        ref_losses = train(ref, single_loss, args.steps, args.lr)
        dloss = max(abs(a - b) for a, b in zip(losses, ref_losses, strict=True))
        dweight = max(float((final[k] - ref[k].detach()).abs().max()) for k in ref)
        bounds = [shard_bounds(args.vocab, world, r) for r in range(world)]
        print(
            f"{world} process(es), vocabulary {args.vocab} (shards of "
            f"{', '.join(str(b - a) for a, b in bounds)} classes), {len(labels)} tokens, "
            f"{args.dtype}, {args.steps} steps in {seconds:.1f} s",
            flush=True,
        )
        print(f"loss {losses[0]:.6f} -> {losses[-1]:.6f}; every rank the same losses: {same}")
        print(f"single process: loss {ref_losses[0]:.6f} -> {ref_losses[-1]:.6f}")
        print(f"max |loss difference| over {args.steps} steps: {dloss:.3e}")
        print(f"max |final weight difference|: {dweight:.3e}", flush=True)
    # leave together: a rank that tears its gloo connections down while rank 0 is still
    # running the single-process comparison can abort at exit ("terminate called ...")
    dist.barrier()
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--vocab", type=int, default=32003)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--z-loss", type=float, default=0.0)
    parser.add_argument(
        "--nproc", type=int, help="outside torchrun: launch torchrun with this many processes"
    )
    args = parser.parse_args(argv)
    if "RANK" not in os.environ:  # not under torchrun
        if args.nproc and args.nproc > 1:  # torchrun runs this file again, without --nproc
            rest = list(sys.argv[1:] if argv is None else argv)
            if "--nproc" in rest:
                del rest[rest.index("--nproc") : rest.index("--nproc") + 2]
            rest = [a for a in rest if not a.startswith("--nproc=")]
            cmd = [sys.executable, "-m", "torch.distributed.run"]
            cmd += ["--nproc-per-node", str(args.nproc), "--master-port", str(free_port())]
            cmd += [__file__, *rest]
            return subprocess.run(cmd, check=False).returncode
        os.environ.update(
            MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0", WORLD_SIZE="1"
        )
    run(args)
    return 0


def _exit_now(code: int) -> None:
    """Leave without the interpreter's teardown. A rank that had destroyed its process
    group still aborted now and then while Python finalised ("terminate called without
    an active exception", about one CI run in ten, rank 1, after every line was printed):
    C++ thread pools (gloo's, numba's TBB workers) torn down under a finalising
    interpreter. Everything this script owns is released by then; only the output
    needs flushing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
