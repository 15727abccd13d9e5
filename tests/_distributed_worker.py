"""One gloo rank of the vocabulary-parallel tests (issue 12).

Run by tests/test_distributed.py as a subprocess (pytest's test modules are not
importable in a ``multiprocessing`` spawn child)::

    python tests/_distributed_worker.py RANK WORLD INIT_FILE OUT_FILE

The rank joins a gloo group through ``file://INIT_FILE`` (loopback, 60 s
collective timeout), runs every case of ``_refs_distributed.cases_for(WORLD)``
in order on its shard of the full inputs, and ``torch.save``s one record per
case to ``OUT_FILE``: the loss, the ``return_aux`` outputs, the gradient of
each input it passed, the shard bounds it held, the warnings, or the exception
(type and message) it caught.  A rank that raises goes on with the next case:
that later cases still run (and agree) is what proves no rank was left waiting
in a collective.  Progress goes to stderr, so that a hang names its case.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from datetime import timedelta
from typing import Any


class _ToShard:
    """Megatron's "copy to the tensor-parallel region", built lazily (torch is imported in main).

    Forward: this rank's slice ``[a, b)`` of a replicated full tensor along
    ``dim``; backward: the slice's gradient placed into a full-size zero tensor
    and all-reduced (SUM), so that every rank gets the full gradient of the
    replicated input and gradcheck can perturb it on every rank alike.
    """

    fn: Any = None

    @classmethod
    def apply(cls, full: Any, a: int, b: int, dim: int, group: Any) -> Any:
        if cls.fn is None:
            import torch
            import torch.distributed as dist

            class Fn(torch.autograd.Function):
                @staticmethod
                def forward(ctx: Any, full: Any, a: int, b: int, dim: int, group: Any) -> Any:
                    ctx.meta = (full.shape, a, b, dim, group)
                    return full.narrow(dim, a, b - a).clone()

                @staticmethod
                def backward(ctx: Any, g: Any) -> Any:
                    shape, a, b, dim, group = ctx.meta
                    out = g.new_zeros(shape)
                    out.narrow(dim, a, b - a).copy_(g)
                    dist.all_reduce(out, group=group)
                    return out, None, None, None, None

            cls.fn = Fn
        return cls.fn.apply(full, a, b, dim, group)


#: The collectives of the running phase: (name, reduce op, numel) per call; None: off.
COMM: dict[str, Any] = {"log": None}
COLLECTIVES = (
    "all_reduce", "all_gather", "all_gather_into_tensor", "broadcast", "reduce",
    "reduce_scatter_tensor", "all_to_all_single", "barrier", "send", "recv", "gather",
    "scatter", "all_gather_object", "broadcast_object_list",
)  # fmt: skip


def _count_collectives() -> None:
    """Wrap torch.distributed's collectives so that a case can log the calls it makes."""
    import torch.distributed as dist

    def wrap(name: str, fn: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if COMM["log"] is not None:
                t = args[0] if args and hasattr(args[0], "numel") else None
                op = kwargs.get("op", args[1] if len(args) > 1 and name == "all_reduce" else None)
                COMM["log"].append((name, str(op), -1 if t is None else int(t.numel())))
            return fn(*args, **kwargs)

        return counted

    for name in COLLECTIVES:
        if hasattr(dist, name):
            setattr(dist, name, wrap(name, getattr(dist, name)))


def run_case(case: Any, rank: int, world: int, groups: dict[str, Any], mesh: Any) -> dict:
    import numpy as np
    import torch

    import losskit.distributed as lkd
    from _refs_distributed import GRAD_NAMES, make_inputs, shard_bounds, used_inputs

    group = groups[case.group]
    if case.group == "sub":
        import torch.distributed as dist

        if group is None or rank not in dist.get_process_group_ranks(group):
            return {"skipped": True}
        grank = dist.get_rank(group)
    else:
        grank = rank
    gworld = world if case.group == "world" else len(groups["sub_ranks"])
    bnds = shard_bounds(case, gworld)
    a, b = bnds[grank]
    x = make_inputs(case)
    o = case.options
    dt = getattr(torch, case.dtype)
    last = gworld - 1
    if case.labels in ("differ", "swap") and grank == last:
        flat = x["labels"].reshape(-1)  # a view: the last rank's labels differ
        if case.labels == "differ":
            flat[0] = (flat[0] + 1) % x["logits"].shape[-1]
        else:  # two different labels of the first row swapped: the same multiset per row
            j = int(np.flatnonzero(flat[: case.shape[-1]] != flat[0])[0])
            flat[[0, j]] = flat[[j, 0]]

    full = {k: torch.tensor(x[k]).to(dt) for k in GRAD_NAMES}
    labels = torch.tensor(x["labels"])
    if case.fault == "batch" and grank == last:  # one token fewer on the last rank
        x = {k: (v[:-1] if k in ("logits", "hidden", "sample_weight") else v) for k, v in x.items()}
        full = {
            k: (v[:-1] if k in ("logits", "hidden", "sample_weight") else v)
            for k, v in full.items()
        }
        labels = labels[:-1]
    used = used_inputs(case)

    def local_leaves() -> dict[str, Any]:
        """This rank's arguments as leaves (its shard of the split ones), requiring grad
        as the case says."""
        t: dict[str, Any] = {}
        for k in used:
            v = full[k]
            if k == "logits":
                v = v[..., a:b]
            elif k in ("weight", "bias") or (k == "class_weight" and o[k] == "shard"):
                v = v[a:b]
            v = v.clone()
            if not case.contiguous and v.ndim == 2:  # the same values, column-major
                v = v.mT.contiguous().mT
            t[k] = v.requires_grad_(case.grad == "all" or k == case.grad)
        return t

    def call(t: dict[str, Any]) -> Any:
        kw: dict[str, Any] = {
            k: v for k, v in o.items() if k not in ("class_weight", "sample_weight", "bias")
        }
        kw["reduction"] = case.reduction
        if case.group == "sub":
            kw["group"] = group
        if "class_weight" in t:
            kw["class_weight"] = t["class_weight"]
        if "sample_weight" in t:
            kw["sample_weight"] = t["sample_weight"]
        if case.fault == "smoothing_differs" and grank == last:
            kw["label_smoothing"] = kw.get("label_smoothing", 0.0) + 0.1
        if case.layout in ("explicit", "reversed", "empty_shard"):
            kw["vocab_start"] = a
        elif case.layout == "overlap":
            kw["vocab_start"] = 0
        if case.return_aux:
            kw["return_aux"] = True
        if case.fn == "logits":
            return lkd.vocab_parallel_cross_entropy(t["logits"], labels, **kw)
        if "bias" in t:
            kw["bias_shard"] = t["bias"]
        return lkd.vocab_parallel_linear_cross_entropy(t["hidden"], t["weight"], labels, **kw)

    rec: dict[str, Any] = {"bounds": (a, b), "group_rank": grank}
    if case.gradcheck:
        rec["gradcheck"] = _gradcheck(case, full, call, a, b, group)
        return rec

    t = local_leaves()
    if case.fault in FAULTS and grank == last:
        t = _fault(case, t)
    if case.layout == "dtensor":
        t = _to_dtensor(case, t, full, mesh)
    COMM["log"] = forward = []
    try:
        out = call(t)
    finally:
        COMM["log"] = None
    if case.return_aux:
        rec["aux_type"] = type(out).__name__
        loss, zterm, lse = out
        rec["z_loss"] = _local(zterm).detach().clone()
        rec["lse"] = _local(lse).detach().clone()
        rec["lse_requires_grad"] = bool(lse.requires_grad)
    else:
        loss = out
    if case.layout == "dtensor":
        rec["result_kind"] = _placements(loss)
    rec["loss"] = _local(loss).detach().clone()
    rec["dtype"] = str(_local(loss).dtype)
    if case.reduction == "none":
        up = torch.tensor(x["upstream"]).to(_local(loss).dtype)
    else:
        up = torch.tensor(0.75, dtype=_local(loss).dtype)
    rec["requires_grad"] = bool(loss.requires_grad)
    rec["comm"] = {"forward": forward, "backward": []}
    if loss.requires_grad:
        if case.layout == "dtensor":
            from torch.distributed.tensor import Replicate, distribute_tensor

            up = distribute_tensor(up, mesh, [Replicate()])
        COMM["log"] = backward = []
        try:
            for i in range(case.backwards):  # the gradients accumulate
                loss.backward(up, retain_graph=i + 1 < case.backwards)
        finally:
            COMM["log"] = None
        rec["comm"]["backward"] = backward
    rec["grads"] = {
        k: None if v.grad is None else _local(v.grad).detach().clone() for k, v in t.items()
    }
    if case.layout == "dtensor":
        g = t["logits" if case.fn == "logits" else "weight"].grad
        rec["grad_kind"] = None if g is None else _placements(g)
    return rec


def _local(t: Any) -> Any:
    return t.to_local() if hasattr(t, "to_local") else t


def _placements(t: Any) -> str:
    """ "replicated DTensor", or what ``t`` is instead."""
    from torch.distributed.tensor import Replicate, Shard

    if not hasattr(t, "placements"):
        return type(t).__name__
    if all(isinstance(p, Replicate) for p in t.placements):
        return "replicated DTensor"
    return "DTensor " + ", ".join(
        f"Shard({p.dim})" if isinstance(p, Shard) else str(p) for p in t.placements
    )


def _to_dtensor(case: Any, t: dict[str, Any], full: dict[str, Any], mesh: Any) -> dict[str, Any]:
    """The vocabulary-split argument as a DTensor (logits Shard(-1), weight Shard(0)).

    ``distribute_tensor`` splits as ``torch.chunk`` (6/5, 4/4/3): the bounds the
    case was sliced with (``dtensor_sizes``); the local shard is checked to be it.
    """
    import torch
    from torch.distributed.tensor import Shard, distribute_tensor

    out = dict(t)
    name, dim = ("logits", -1) if case.fn == "logits" else ("weight", 0)
    dt = distribute_tensor(full[name], mesh, [Shard(dim)])
    if not torch.equal(dt.to_local(), t[name].detach()):
        raise AssertionError("DTensor's local shard is not the slice the case expects")
    out[name] = dt.requires_grad_(True)
    return out


FAULTS = {
    # class_weight of neither this shard's length nor V
    "class_weight_len": lambda t, torch: {**t, "class_weight": t["class_weight"][:3]},
    # logits: one row fewer than the labels; linear: a weight of the wrong width
    "shape": lambda t, torch: (
        {**t, "logits": t["logits"][:-1]}
        if "logits" in t
        else {**t, "weight": torch.cat([t["weight"], t["weight"][:, :1]], 1)}
    ),
    "int_dtype": lambda t, torch: (
        {**t, "logits": t["logits"].detach().long()}
        if "logits" in t
        else {**t, "weight": t["weight"].detach().long()}
    ),
    # not a tensor at all
    "numpy": lambda t, torch: (
        {**t, "logits": t["logits"].detach().numpy()}
        if "logits" in t
        else {**t, "weight": t["weight"].detach().numpy()}
    ),
    # replicated arguments that are not the same on every rank
    "hidden_differs": lambda t, torch: {**t, "hidden": t["hidden"] + 1e-3},
    "sample_weight_differs": lambda t, torch: {**t, "sample_weight": t["sample_weight"] * 1.5},
    # hidden requires grad on the other ranks only (their backward would all-reduce alone)
    "hidden_no_grad": lambda t, torch: {**t, "hidden": t["hidden"].detach().clone()},
}


def _fault(case: Any, t: dict[str, Any]) -> dict[str, Any]:
    import torch

    out = FAULTS[case.fault](t, torch)
    return {
        k: v
        if not isinstance(v, torch.Tensor) or v is t.get(k) or not v.requires_grad
        else v.detach().requires_grad_(v.is_floating_point())
        for k, v in out.items()
    }


def _gradcheck(case: Any, full: dict[str, Any], call: Any, a: int, b: int, group: Any) -> Any:
    """torch.autograd.gradcheck of the loss w.r.t. the replicated full inputs.

    Split inputs are sliced inside the function by ``_ToShard`` (whose backward
    all-reduces), a whole class-weight vector passes through it unsliced (each
    rank's gradient holds its own shard's part); hidden and sample weights are
    replicated and get the full gradient from the loss itself.  Every rank
    perturbs the same element at the same time.
    """
    import torch

    o = case.options
    names = case.gradcheck
    inputs = tuple(full[k].clone().requires_grad_(True) for k in names)
    rest = {k: full[k] for k in ("logits", "hidden", "weight", "bias", "class_weight",
                                 "sample_weight")}  # fmt: skip

    def f(*args: Any) -> Any:
        t = dict(rest)
        t.update(zip(names, args, strict=True))
        local: dict[str, Any] = {}
        for k in _used(case):
            v = t[k]
            if k == "logits":
                v = _ToShard.apply(v, a, b, v.ndim - 1, group)
            elif k in ("weight", "bias"):
                v = _ToShard.apply(v, a, b, 0, group)
            elif k == "class_weight":
                lo, hi = (a, b) if o[k] == "shard" else (0, v.shape[0])
                v = _ToShard.apply(v, lo, hi, 0, group)
            local[k] = v
        return call(local)

    # fast mode draws its random projections from torch's generator: the same seed
    # on every rank, so that every rank perturbs the same direction
    torch.manual_seed(case.seed)
    fast = case.gradcheck_mode == "fast"
    try:
        ok = torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-8, rtol=1e-6, fast_mode=fast)
        return bool(ok)
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def _used(case: Any) -> tuple[str, ...]:
    from _refs_distributed import used_inputs

    return used_inputs(case)


def main(argv: list[str]) -> int:
    rank, world = int(argv[1]), int(argv[2])
    init_file, out_file = argv[3], argv[4]
    only = argv[5].split(",") if len(argv) > 5 and argv[5] else None

    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    _count_collectives()
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),
    )
    import losskit.distributed as lkd  # (imported before the first case's clock)
    from _refs_distributed import SUBGROUP, cases_for

    groups: dict[str, Any] = {"world": None, "sub_ranks": SUBGROUP}
    # new_group is collective: every rank calls it, in the same order
    groups["sub"] = dist.new_group(list(SUBGROUP)) if world == 3 else None
    mesh = None
    try:
        from torch.distributed.device_mesh import init_device_mesh

        mesh = init_device_mesh("cpu", (world,))
    except Exception as e:  # recorded by the DTensor cases
        print(f"rank {rank}: no device mesh: {e!r}", file=sys.stderr)

    results: dict[str, Any] = {}
    for case in cases_for(world):
        if only is not None and case.id not in only:
            continue
        print(f"rank {rank}: {case.id}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            saved = lkd._ROW_PASS_BYTES
            if case.row_pass_bytes is not None:  # the logits version's row passes: few rows
                lkd._ROW_PASS_BYTES = case.row_pass_bytes
            try:
                rec = run_case(case, rank, world, groups, mesh)
            except Exception as e:
                rec = {
                    "error": (type(e).__name__, str(e)),
                    "traceback": traceback.format_exc(),
                }
            finally:
                lkd._ROW_PASS_BYTES = saved
        rec["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
        rec["seconds"] = time.perf_counter() - start
        results[case.id] = rec
    torch.save(results, out_file)
    dist.barrier()
    dist.destroy_process_group()
    print(f"rank {rank}: done", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main(sys.argv))
