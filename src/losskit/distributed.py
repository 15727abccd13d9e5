"""Vocabulary-parallel cross-entropy over ``torch.distributed`` (tensor-parallel heads).

When a language model's output layer is split by vocabulary across the ranks of a
process group (Megatron-LM's tensor parallelism), rank ``r`` holds ``V_r`` of the
``V`` classes: its columns of the logits, or its rows of the output weight. The loss
over the whole vocabulary needs three numbers per token from all shards (the largest
logit, the sum of exponentials, the target's logit), which are a MAX and a SUM
all-reduce of O(N) numbers. The rest (the gradient of this shard's logits, weight
rows and class weights) is local, from O(N) per-token state: backward keeps no
softmax. The collectives, in the same order on every rank:

1. one SUM all-reduce of a few numbers per rank (shard sizes and starts, batch size,
   checksums of the arguments that must be replicated, the options, an error flag),
   so that a bad argument on any rank is an error on every rank instead of a hang;
2. a MAX all-reduce of each token's largest logit, then one SUM all-reduce of
   [sum of exponentials, target logit, class-weighted logit sum (label smoothing),
   target class weight (class weights given per shard)]; the linear version does
   these two per chunk of tokens (after one all-reduce of the target class weights
   when they are given per shard), so that no more than a chunk of logits exists;
3. (linear, backward) one SUM all-reduce of the gradient of ``hidden`` (N x D).

The loss comes from the all-reduced numbers by the same element-wise operations on
every rank and a token sum in a fixed order (NumPy's pairwise sum, not a threaded
one), so every rank returns the same loss bit for bit. The semantics are exactly
:func:`losskit.linear_cross_entropy`'s on the gathered vocabulary (class weights,
``ignore_index``, label smoothing with the global ``V``, z-loss, soft-capping, the
weighted mean, ``sample_weight``), and every floating input gets its derivative.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist

from ._backend import _torch_xp, compute_dtype
from ._validation import (
    check_floating,
    check_ignore_index,
    check_label_range,
    check_labels_dtype,
    check_numeric,
    check_reduction,
    check_weight_values,
)
from .losses.large_vocab import LinearCrossEntropyOutput, _check_options, chunk_rows

__all__ = ["vocab_parallel_cross_entropy", "vocab_parallel_linear_cross_entropy"]

#: What each rank contributes to the metadata all-reduce (one row of floats per rank).
_META = (
    "error", "size", "start", "n", "labels", "sample_weight", "hidden", "cw_len", "cw_sum",
    "eps", "z_loss", "softcap", "reduction", "ignore_index", "needs", "rows",
)  # fmt: skip
_K = {name: i for i, name in enumerate(_META)}
#: Options that must be equal on every rank (compared after the metadata exchange).
_SAME_EVERYWHERE = (
    ("n", "the batch (labels' shape)"),
    ("labels", "`labels`"),
    ("sample_weight", "`sample_weight`"),
    ("hidden", "`hidden`"),
    ("eps", "`label_smoothing`"),
    ("z_loss", "`z_loss`"),
    ("softcap", "`softcap`"),
    ("reduction", "`reduction`"),
    ("ignore_index", "`ignore_index`"),
    ("needs", "which inputs require gradients"),
)
_REDUCTION_CODE = {"mean": 1.0, "sum": 2.0, "none": 3.0}
#: Temporaries of the logits version's row passes are bounded to this many bytes.
_ROW_PASS_BYTES = 32 << 20


# --------------------------------------------------------------------------- local checks


class _Local(NamedTuple):
    """One rank's checked arguments, before the ranks have agreed on anything."""

    batch: tuple[int, ...]
    y: Any  # (N,) int64 global labels
    v_local: int
    vocab_start: int | None
    cw: Any  # class_weight as given (1-D) or None
    s: Any  # sample weights broadcast to (N,) in the compute dtype, or None
    ignore_index: int | None
    eps: float
    zl: float
    cap: float
    reduction: str
    cdt: Any  # compute dtype
    rows: int
    meta: Any  # this rank's row of the metadata (float64)


def _tensor(name: str, x: Any) -> None:
    if not isinstance(x, torch.Tensor):
        msg = f"`{name}` must be a torch.Tensor; got {type(x).__name__}"
        raise TypeError(msg)


_BITS = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def _checksum(x: Any) -> float:
    """An order-independent fingerprint of ``x``'s bits: integer sums, exact whatever the
    thread count, so equal arguments give equal numbers on every rank."""
    if x.numel() == 0:
        return 0.0
    flat = x.detach().reshape(x.shape[0], -1) if x.ndim > 1 else x.detach().reshape(-1, 1)
    if flat.is_floating_point():
        flat = flat.view(_BITS[flat.element_size()])
    rows = flat.sum(dim=1, dtype=torch.int64)
    weights = torch.arange(rows.shape[0], device=rows.device).remainder_(7919) + 1
    return float((rows * weights).sum()) + 0.5 * float(rows.sum())


def _check_local(
    x: Any,
    labels: Any,
    batch: tuple[int, ...],
    v_local: int,
    vocab_start: Any,
    options: dict[str, Any],
    needs: tuple[bool, ...],
    hidden: Any = None,
) -> _Local:
    """The checks one rank can make alone (raising TypeError/ValueError)."""
    xp = _torch_xp()
    _tensor("labels", labels)
    check_labels_dtype(xp, labels)
    if tuple(labels.shape) != batch:
        msg = (
            f"`labels` must have shape {batch} (the input's shape without its last axis); "
            f"got {tuple(labels.shape)}"
        )
        raise ValueError(msg)
    if vocab_start is not None and (
        isinstance(vocab_start, bool) or not isinstance(vocab_start, (int, np.integer))
    ):
        msg = f"`vocab_start` must be None or an int >= 0; got {vocab_start!r}"
        raise TypeError(msg)
    if vocab_start is not None and vocab_start < 0:
        msg = f"`vocab_start` must be None or an int >= 0; got {vocab_start!r}"
        raise ValueError(msg)
    reduction = check_reduction(options["reduction"])
    eps, zl, cap = _check_options(
        options["label_smoothing"], options["z_loss"], options["softcap"],
        options.get("chunk_size"), options.get("memory_budget"),
    )  # fmt: skip
    ignore_index = check_ignore_index(options["ignore_index"])
    cdt = compute_dtype(xp, x.dtype)
    n = math.prod(batch)
    cw = options["class_weight"]
    if cw is not None:
        _tensor("class_weight", cw)
        check_numeric(xp, "class_weight", cw)
        if cw.ndim != 1:
            msg = (
                "`class_weight` must be 1-D (this shard's or all classes' weights); got "
                f"shape {tuple(cw.shape)}"
            )
            raise ValueError(msg)
        check_weight_values(xp, "class_weight", cw)
    s = None
    sw = options["sample_weight"]
    if sw is not None:
        _tensor("sample_weight", sw)
        check_numeric(xp, "sample_weight", sw)
        sw_shape = tuple(sw.shape)
        if sw_shape != batch[: len(sw_shape)]:
            msg = (
                f"`sample_weight` must have the shape of `labels` {batch} or a leading "
                f"part of it; got {sw_shape}"
            )
            raise ValueError(msg)
        grown = sw.to(cdt).reshape(sw_shape + (1,) * (len(batch) - len(sw_shape)))
        s = grown.expand(batch).reshape(n)
    rows = 0
    if hidden is not None:
        rows = chunk_rows(
            n, v_local, torch.finfo(cdt).bits // 8, options["chunk_size"], options["memory_budget"]
        )
    meta = torch.zeros(len(_META), dtype=torch.float64)
    y = labels.reshape(n).to(torch.int64)
    values = {
        "size": v_local,
        "start": -1.0 if vocab_start is None else float(vocab_start),
        "n": n,
        "labels": _checksum(y),
        "sample_weight": -1.0 if sw is None else _checksum(sw) + len(sw.shape),
        "hidden": 0.0 if hidden is None else _checksum(hidden),
        "cw_len": -1.0 if cw is None else cw.shape[0],
        "cw_sum": 0.0 if cw is None else _total(cw),
        "eps": eps,
        "z_loss": zl,
        "softcap": cap,
        "reduction": _REDUCTION_CODE[reduction],
        # None as -2**70, which no int64 maps to (NaN would never compare equal across ranks)
        "ignore_index": -(2.0**70) if ignore_index is None else float(ignore_index),
        "needs": sum(2.0**i for i, need in enumerate(needs) if need),
        "rows": rows,
    }
    for name, value in values.items():
        meta[_K[name]] = value
    return _Local(
        batch, y, v_local, None if vocab_start is None else int(vocab_start), cw, s,
        ignore_index, eps, zl, cap, reduction, cdt, rows, meta,
    )  # fmt: skip


# --------------------------------------------------------------------------- agreement


class _Setup(NamedTuple):
    """What every rank knows after the metadata exchange (the per-token state is O(N))."""

    group: Any
    batch: tuple[int, ...]
    n: int
    vocab: int  # V, the whole vocabulary
    start: int  # this shard's first class
    v_local: int
    y: Any  # (N,) global labels, int64 (0 where not counted)
    counted: Any  # (N,) bool
    mine: Any  # (N,) bool: counted and the target lies in this shard
    y_local: Any  # (N,) int64: target - start where mine, else 0
    w_local: Any  # (V_r,) class weights of this shard in cdt, or None
    wy_local: Any  # (N,) target weight where mine (else 0), cdt, or None
    wy_known: Any  # (N,) every token's target weight when every rank holds them all, or None
    w_sum: float  # sum of all class weights (V without class weights)
    cw_whole: bool  # class_weight was given for all V classes
    base: Any  # (N,) counted * sample weight, cdt
    eps: float
    zl: float
    cap: float
    reduction: str
    cdt: Any
    rows: int


def _exchange(group: Any, device: Any, local: _Local | None, error: Exception | None) -> Any:
    """The metadata all-reduce; re-raise a local error, or refuse for another rank's."""
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    meta = torch.zeros((world, len(_META)), dtype=torch.float64, device=device)
    if local is None:
        meta[rank, _K["error"]] = 1.0
    else:
        meta[rank] = local.meta.to(device)
    dist.all_reduce(meta, group=group)
    meta = meta.cpu()
    if error is not None:
        raise error
    failed = [r for r in range(world) if meta[r, _K["error"]] != 0]
    if failed:
        msg = (
            f"vocabulary-parallel cross-entropy: the arguments on rank(s) {failed} of the "
            f"group were refused (see the error raised there); rank {rank} stops too, "
            "so that no rank waits in a collective"
        )
        raise RuntimeError(msg)
    return meta


def _agree(group: Any, local: _Local, meta: Any) -> _Setup:
    """Check what must hold across ranks (the same error on every rank) and build the setup."""
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    for slot, what in _SAME_EVERYWHERE:
        col = meta[:, _K[slot]]
        if not bool((col == col[0]).all()):
            differ = [r for r in range(world) if col[r] != col[0]]
            msg = (
                f"{what} must be the same on every rank of the group; rank(s) {differ} "
                "differ from rank 0"
            )
            raise ValueError(msg)
    sizes = [int(v) for v in meta[:, _K["size"]]]
    vocab = sum(sizes)
    if vocab == 0:
        msg = "the shards hold no class at all (every rank's vocabulary shard is empty)"
        raise ValueError(msg)
    starts_given = [float(v) for v in meta[:, _K["start"]]]
    given = [v >= 0 for v in starts_given]
    if any(given) and not all(given):
        msg = (
            "`vocab_start` must be given on every rank or on none; given on rank(s) "
            f"{[r for r in range(world) if given[r]]} only"
        )
        raise ValueError(msg)
    if all(given):
        starts = [int(v) for v in starts_given]
        edge = 0
        for r in sorted(range(world), key=lambda r: (starts[r], sizes[r])):
            if starts[r] != edge:
                msg = (
                    f"the shards must tile the vocabulary [0, {vocab}) without gap or "
                    f"overlap; got starts {starts} and sizes {sizes} (by rank)"
                )
                raise ValueError(msg)
            edge += sizes[r]
    else:
        starts = [sum(sizes[:r]) for r in range(world)]
    lengths = [int(v) for v in meta[:, _K["cw_len"]]]
    has_cw = lengths[0] >= 0
    if has_cw != all(length >= 0 for length in lengths):
        msg = "`class_weight` must be given on every rank or on none"
        raise ValueError(msg)
    for r in range(world) if has_cw else ():
        if lengths[r] not in (sizes[r], vocab):
            msg = (
                f"`class_weight` must hold this rank's shard ({sizes[r]} classes) or the "
                f"whole vocabulary ({vocab}); rank {r} passed {lengths[r]} weights"
            )
            raise ValueError(msg)
    whole = [has_cw and lengths[r] == vocab for r in range(world)]
    # the sum of all class weights: a whole vector's, else the shards' (in rank order)
    sums = [float(v) for v in meta[:, _K["cw_sum"]]]
    whole_ranks = [r for r in range(world) if whole[r] and sizes[r] != vocab]
    w_sum = float(vocab) if not has_cw else sums[whole_ranks[0]] if whole_ranks else sum(sums)
    xp = _torch_xp()
    check_label_range(xp, local.y, vocab, local.ignore_index)  # the same labels everywhere
    rows = int(meta[:, _K["rows"]].min()) if local.rows else 0
    return _build(group, local, vocab, starts[rank], whole[rank], all(whole), w_sum, rows)


def _build(
    group: Any,
    local: _Local,
    vocab: int,
    start: int,
    cw_whole: bool,
    all_whole: bool,
    w_sum: float,
    rows: int,
) -> _Setup:
    y, cdt, v_local = local.y, local.cdt, local.v_local
    n = y.shape[0]
    ign = local.ignore_index
    counted = (y != ign) if ign is not None else torch.ones(n, dtype=torch.bool, device=y.device)
    y = torch.where(counted, y, torch.zeros_like(y))
    mine = counted & (y >= start) & (y < start + v_local)
    y_local = torch.where(mine, y - start, torch.zeros_like(y))
    w_local = wy_local = wy_known = None
    if local.cw is not None:
        cw = local.cw.detach().to(cdt)
        w_local = cw[start : start + v_local] if cw_whole else cw
        wy_local = torch.where(mine, w_local[y_local] if v_local else 0.0, 0.0).to(cdt)
        if all_whole:
            wy_known = torch.where(counted, cw[y], 0.0).to(cdt)
    base = counted.to(cdt) if local.s is None else counted.to(cdt) * local.s.detach()
    return _Setup(
        group, local.batch, n, vocab, start, v_local, y, counted, mine, y_local, w_local,
        wy_local, wy_known, w_sum, cw_whole, base, local.eps, local.zl, local.cap,
        local.reduction, cdt, rows,
    )  # fmt: skip


def _setup(group: Any, device: Any, check_local: Any) -> _Setup:
    """Local checks (``check_local()`` -> :class:`_Local`), the metadata exchange, the
    cross-rank checks: the same outcome, result or error, on every rank."""
    local = error = None
    try:
        local = check_local()
    except Exception as exc:  # whatever it is, the other ranks must hear of it
        error = exc
    meta = _exchange(group, device, local, error)
    assert local is not None
    return _agree(group, local, meta)


# --------------------------------------------------------------------------- per-token math


def _capped(z: Any, cap: float) -> tuple[Any, Any]:
    """(soft-capped logits, tanh(z / cap) for the chain rule, or None)."""
    if not cap:
        return z, None
    t = torch.tanh(z / cap)
    return cap * t, t


def _total(x: Any) -> float:
    """Sum in float64 in an order that does not depend on the thread count (bit-equal ranks)."""
    if x.device.type == "cpu":
        return float(np.sum(x.detach().to(torch.float64).numpy()))
    return float(torch.sum(x.detach(), dtype=torch.float64))


class _Tokens(NamedTuple):
    """What a chunk's gradient needs of every token (a :class:`_Stats` has them too)."""

    m: Any
    ssum: Any
    lse: Any
    wy: Any


class _Stats(NamedTuple):
    """Every token's global numbers after the all-reduces, and the reduced parts."""

    m: Any  # (N,) the largest (soft-capped) logit over the whole vocabulary
    ssum: Any  # (N,) Σ exp(z' - m) over the whole vocabulary
    lse: Any  # (N,) m + log(ssum)
    zy: Any  # (N,) the target's logit
    wy: Any  # (N,) the target's class weight (ones without class weights)
    ce: Any  # (N,) cross-entropy part per token (0 where not counted)
    zr: Any  # (N,) z-loss part per token
    l_ce: float  # reduced cross-entropy part ("mean"/"sum")
    l_z: float
    d_ce: float  # the mean's denominators (1 for "sum"/"none")
    d_z: float


def _token_losses(st: _Setup, lse: Any, zy: Any, wz: Any, wy: Any) -> tuple[Any, Any]:
    ce = (1 - st.eps) * wy * (lse - zy)
    if st.eps:
        ce = ce + (st.eps / st.vocab) * (st.w_sum * lse - wz)
    ce = torch.where(st.counted, ce, 0.0)
    zr = torch.where(st.counted, st.zl * lse * lse, 0.0) if st.zl else torch.zeros_like(lse)
    return ce, zr


def _denominators(st: _Setup, wy: Any) -> tuple[float, float]:
    """The mean's denominators: Σ s w_y for the cross-entropy part, Σ s for the z-loss
    part (as :func:`losskit.linear_cross_entropy`); 1 for "sum" and "none"."""
    if st.reduction != "mean":
        return 1.0, 1.0
    d_z = _total(st.base)
    d_ce = _total(st.base * wy) if st.w_local is not None else d_z
    return d_ce, d_z


def _reduce(
    st: _Setup, m: Any, ssum: Any, lse: Any, zy: Any, wz: Any, wy: Any
) -> tuple[_Stats, Any, Any]:
    """The statistics, the value and the z-loss term (the same ops on every rank)."""
    ce, zr = _token_losses(st, lse, zy, wz, wy)
    d_ce, d_z = _denominators(st, wy)
    if st.reduction == "none":
        value = (st.base * (ce + zr)).reshape(st.batch)
        zterm = (st.base * zr).reshape(st.batch)
        return _Stats(m, ssum, lse, zy, wy, ce, zr, 0.0, 0.0, d_ce, d_z), value, zterm
    s_ce, s_z = _total(st.base * ce), _total(st.base * zr)
    l_ce = s_ce / d_ce if d_ce else 0.0
    l_z = s_z / d_z if d_z else 0.0
    value = torch.tensor(l_ce + l_z, dtype=st.cdt, device=lse.device)
    zterm = torch.tensor(l_z, dtype=st.cdt, device=lse.device)
    return _Stats(m, ssum, lse, zy, wy, ce, zr, l_ce, l_z, d_ce, d_z), value, zterm


def _coefficients(st: _Setup, d_ce: float, d_z: float, g: Any) -> tuple[Any, Any]:
    """d(g . value)/d(ce_i) and d(g . value)/d(zr_i): the per-token weights of the gradient."""
    if st.reduction == "none":
        g = g.reshape(st.n).to(st.cdt)
        c = g * st.base
        return c, c
    g = float(g)
    return st.base * (g / d_ce if d_ce else 0.0), st.base * (g / d_z if d_z else 0.0)


class _Grads:
    """The local gradient of a chunk's shard logits, and of the class weights (whose
    label-smoothing part needs the column sums Σ_i c_i z'_ik, accumulated chunk by chunk)."""

    def __init__(self, st: _Setup, want_cw: bool) -> None:
        self.st = st
        self.colsum = None
        if want_cw and st.eps:
            self.colsum = torch.zeros(st.v_local, dtype=st.cdt, device=st.y.device)

    def logit_grad(
        self, z: Any, t: Any, stats: Any, cc: Any, cz: Any, sl: slice, p: Any = None
    ) -> Any:
        """d/dz of the tokens ``sl`` (``z`` soft-capped, ``t`` its tanh or None; ``stats``
        with ``m``, ``ssum``, ``lse``, ``wy`` of at least those tokens, indexed by ``sl``;
        ``cc``, ``cz`` their coefficients; ``p`` their softmax if at hand), in the compute
        dtype. ``p`` and ``t`` are overwritten. The softmax is exp(z - m) / ssum, the
        forward's own operations, so that a recomputing backward gives the same bits."""
        st = self.st
        lse, wy = stats.lse[sl], stats.wy[sl]
        hard = (1 - st.eps) * wy
        coef = cc * (hard + st.eps * st.w_sum / st.vocab)
        if st.zl:
            coef = coef + cz * (2 * st.zl) * lse
        if p is None:
            p = torch.sub(z, stats.m[sl][:, None]).exp_().div_(stats.ssum[sl][:, None])
        g = p
        g.mul_(coef[:, None])
        if st.v_local:
            rows = torch.nonzero(st.mine[sl]).reshape(-1)
            g[rows, st.y_local[sl][rows]] -= (cc * hard)[rows]
        if st.eps:
            smooth = cc * (st.eps / st.vocab)
            if st.w_local is not None:
                g.addr_(smooth, st.w_local, alpha=-1)
            else:
                g.sub_(smooth[:, None])
        if self.colsum is not None:
            self.colsum += cc @ z
        if t is not None:
            g.mul_(t.square_().neg_().add_(1))  # d(c tanh(x / c))/dx = 1 - tanh²
        return g

    def class_weight(self, stats: _Stats, c_ce: Any, cw: Any) -> Any:
        """d/d class_weight: this shard's entries (zeros elsewhere when given whole: the
        ranks' gradients sum to the true one)."""
        st = self.st
        l_term = stats.l_ce if st.reduction == "mean" else 0.0
        nll = stats.lse - stats.zy
        per_token = torch.where(st.mine, c_ce * ((1 - st.eps) * nll - l_term), 0.0)
        gw = torch.zeros(st.v_local, dtype=st.cdt, device=nll.device)
        if st.v_local:
            gw.index_add_(0, st.y_local, per_token)
        if self.colsum is not None:
            gw += (st.eps / st.vocab) * (c_ce @ stats.lse - self.colsum)
        if st.cw_whole:
            full = torch.zeros(st.vocab, dtype=st.cdt, device=nll.device)
            full[st.start : st.start + st.v_local] = gw
            gw = full
        return gw.to(cw.dtype)


def _sample_weight_grad(st: _Setup, stats: _Stats, g: Any, sw: Any) -> Any:
    """d/d sample_weight (every rank has all of it), summed back to its own shape."""
    cnt = st.counted.to(st.cdt)
    if st.reduction == "none":
        per = g.reshape(st.n).to(st.cdt) * cnt * (stats.ce + stats.zr)
    elif st.reduction == "sum":
        per = float(g) * cnt * (stats.ce + stats.zr)
    else:
        per = torch.zeros_like(cnt)
        if stats.d_ce:
            per = per + (stats.ce - stats.l_ce * stats.wy) / stats.d_ce
        if stats.d_z:
            per = per + (stats.zr - stats.l_z) / stats.d_z
        per = float(g) * cnt * per
    per = per.reshape(st.batch)
    extra = tuple(range(sw.ndim, len(st.batch)))
    return (per.sum(dim=extra) if extra else per).to(sw.dtype)


def _sum_rows(st: _Setup) -> int:
    """Rows of the SUM all-reduce: Σ exp, the target logit, and Σ w z with label smoothing."""
    return 3 if st.eps else 2


def _local_sums(st: _Setup, z: Any, m: Any, sl: slice) -> tuple[Any, Any]:
    """This shard's part of the tokens ``sl``'s SUM, [Σ exp(z - m), target logit(, Σ w z)],
    and exp(z - m) (the softmax numerators, for a gradient from the same logits)."""
    pack = torch.zeros((_sum_rows(st), z.shape[0]), dtype=st.cdt, device=z.device)
    ex = torch.sub(z, m[:, None]).exp_()
    pack[0] = ex.sum(dim=-1)
    if st.v_local:
        zy = z.gather(1, st.y_local[sl][:, None])[:, 0]
        pack[1] = torch.where(st.mine[sl], zy, 0.0)
    if st.eps:
        pack[2] = z @ st.w_local if st.w_local is not None else z.sum(dim=-1)
    return pack, ex


def _row_max(st: _Setup, z: Any) -> Any:
    if st.v_local:
        return z.amax(dim=-1)
    return torch.full((z.shape[0],), -math.inf, dtype=st.cdt, device=z.device)


def _target_weights(st: _Setup) -> Any:
    """Every token's target class weight where this rank knows them all (ones without
    class weights; all of them when every rank holds the whole vector), else None: the
    shards' parts ride on an all-reduce that is made anyway."""
    if st.w_local is None:
        return torch.ones(st.n, dtype=st.cdt, device=st.y.device)
    return st.wy_known


# --------------------------------------------------------------------------- the logits version


def _logits_rows(st: _Setup) -> int:
    return max(1, _ROW_PASS_BYTES // max(1, st.v_local * 4))


def _logits_stats(x2: Any, st: _Setup) -> tuple[_Stats, Any, Any]:
    """A MAX all-reduce of the row maxima, one SUM all-reduce of the rest; the loss."""
    n, rows = st.n, _logits_rows(st)
    m = torch.full((n,), -math.inf, dtype=st.cdt, device=x2.device)
    if st.v_local:
        for i0 in range(0, n, rows):  # max(cap tanh(z / cap)) = cap tanh(max z / cap)
            m[i0 : i0 + rows] = x2[i0 : i0 + rows].amax(dim=-1).to(st.cdt)
        m = _capped(m, st.cap)[0]
    m, wy = _all_max(st, m)
    pack = torch.zeros((_sum_rows(st), n), dtype=st.cdt, device=x2.device)
    for i0 in range(0, n, rows):
        sl = slice(i0, i0 + rows)
        pack[:, sl] = _local_sums(st, _capped(x2[sl].to(st.cdt), st.cap)[0], m[sl], sl)[0]
    if n:
        dist.all_reduce(pack, group=st.group)
    lse = m + torch.log(pack[0])
    return _reduce(st, m, pack[0], lse, pack[1], pack[2] if st.eps else None, wy)


def _all_max(st: _Setup, m: Any, wy: Any = None) -> tuple[Any, Any]:
    """The MAX all-reduce of the row maxima ``m``; with class weights given per shard
    (``wy`` None and not known here), every token's target weight rides on it (weights
    are >= 0 and the shards without the target send 0). Returns (maxima, target weights)."""
    wy = _target_weights(st) if wy is None else wy
    if wy is None:
        both = torch.cat([m, st.wy_local])
        if both.numel():
            dist.all_reduce(both, op=dist.ReduceOp.MAX, group=st.group)
        return both[: m.shape[0]], both[m.shape[0] :]
    if m.numel():
        dist.all_reduce(m, op=dist.ReduceOp.MAX, group=st.group)
    return m, wy


class _LogitsFn(torch.autograd.Function):
    """Forward: two all-reduces; backward: local, from the saved shard and O(N) numbers."""

    @staticmethod
    def forward(ctx: Any, x2: Any, cw: Any, sw: Any, st: _Setup) -> Any:
        stats, value, zterm = _logits_stats(x2.detach(), st)
        ctx.save_for_backward(x2, cw, sw)
        ctx.st, ctx.stats = st, stats
        lse = stats.lse.reshape(st.batch)
        ctx.mark_non_differentiable(zterm, lse)
        return value, zterm, lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, gv: Any, _gz: Any, _gl: Any) -> Any:
        x2, cw, sw = ctx.saved_tensors
        st, stats = ctx.st, ctx.stats
        c_ce, c_z = _coefficients(st, stats.d_ce, stats.d_z, gv)
        want_x, want_cw, want_sw = ctx.needs_input_grad[:3]
        grads = _Grads(st, want_cw)
        dx = torch.empty_like(x2) if want_x else None
        rows = _logits_rows(st)
        for i0 in range(0, st.n, rows) if want_x or grads.colsum is not None else ():
            sl = slice(i0, i0 + rows)
            z, t = _capped(x2[sl].detach().to(st.cdt), st.cap)
            g = grads.logit_grad(z, t, stats, c_ce[sl], c_z[sl], sl)
            if dx is not None:
                dx[sl] = g
        dcw = grads.class_weight(stats, c_ce, cw) if want_cw else None
        dsw = _sample_weight_grad(st, stats, gv, sw) if want_sw else None
        return dx, dcw, dsw, None


# --------------------------------------------------------------------------- the linear version


class _LinearPass:
    """One pass over chunks of tokens, one chunk of logits at a time.

    Forward (no saved statistics): per chunk a MAX and a SUM all-reduce, and, when
    gradients are wanted ("mean"/"sum"), the chunk's gradients from the same logits
    (the coefficients are known before the first chunk: the denominators need only the
    target weights). Backward of "none" (statistics saved): the same without any
    collective. d(hidden) is this shard's part; the caller all-reduces it.
    """

    def __init__(self, *tensors: Any, st: _Setup) -> None:
        h2, w, b, cw, sw = tensors
        self.h2, self.w, self.b, self.cw, self.sw, self.st = h2, w, b, cw, sw, st

    def run(self, want: tuple[bool, ...], g: Any, stats: _Stats | None = None) -> Any:
        st, h2, w, dev = self.st, self.h2, self.w, self.h2.device
        forward = stats is None
        if stats is None:
            wy = _target_weights(st)  # None: learnt in the first chunk's MAX all-reduce
            m_all, s_all, lse, zy, wz = torch.empty((5, st.n), dtype=st.cdt, device=dev)
        else:
            wy = stats.wy
        want_h, want_w, want_b, want_cw, want_sw = want
        c_ce: Any = None
        c_z: Any = None
        grads = _Grads(st, want_cw)
        dh = torch.empty_like(h2) if want_h else None
        dw = torch.zeros(w.shape, dtype=st.cdt, device=dev) if want_w else None
        db = torch.zeros(w.shape[0], dtype=st.cdt, device=dev) if want_b else None
        per_chunk = want_h or want_w or want_b or grads.colsum is not None
        for i0 in range(0, st.n, st.rows):
            sl = slice(i0, min(i0 + st.rows, st.n))
            z = h2[sl] @ w.T
            if self.b is not None:
                z.add_(self.b)
            z, t = _capped(z.to(st.cdt), st.cap)
            p = None
            tokens: Any = stats
            if forward:
                m, wy = _all_max(st, _row_max(st, z), wy)  # the first chunk learns wy
                pack, p = _local_sums(st, z, m, sl)
                dist.all_reduce(pack, group=st.group)
                m_all[sl], s_all[sl], zy[sl] = m, pack[0], pack[1]
                lse[sl] = m + torch.log(pack[0])
                if st.eps:
                    wz[sl] = pack[2]
                p.div_(pack[0][:, None])  # exp(z - m) / Σ exp = the softmax over all shards
                tokens = _Tokens(m_all, s_all, lse, wy)
            if c_ce is None and any(want):
                c_ce, c_z = _coefficients(st, *_denominators(st, wy), g)
            if per_chunk:
                dz = grads.logit_grad(z, t, tokens, c_ce[sl], c_z[sl], sl, p)
                if dh is not None:
                    dh[sl] = dz.to(w.dtype) @ w
                if dw is not None:
                    dw.addmm_(dz.T, h2[sl].to(st.cdt))
                if db is not None:
                    db += dz.sum(dim=0)
        if wy is None:  # no chunk (an empty batch)
            wy = st.wy_local
        if c_ce is None and any(want):
            c_ce, c_z = _coefficients(st, *_denominators(st, wy), g)
        value = zterm = None
        if stats is None:
            stats, value, zterm = _reduce(st, m_all, s_all, lse, zy, wz, wy)
        dcw = grads.class_weight(stats, c_ce, self.cw) if want_cw else None
        dsw = _sample_weight_grad(st, stats, g, self.sw) if want_sw else None
        dw = None if dw is None else dw.to(w.dtype)
        db = None if db is None else db.to(w.dtype)
        return stats, value, zterm, [dh, dw, db, dcw, dsw]


class _LinearFn(torch.autograd.Function):
    """Forward: the loss, and for "mean"/"sum" its gradients (scaled in place by the
    upstream gradient in the first backward). "none", and any further backward (with
    ``retain_graph``), recompute the gradients from the saved inputs and O(N) numbers.
    Backward all-reduces d(hidden) once; every other gradient is local."""

    @staticmethod
    def forward(ctx: Any, h2: Any, w: Any, b: Any, cw: Any, sw: Any, st: _Setup, want: Any) -> Any:
        run = _LinearPass(*_detached(h2, w, b, cw, sw), st=st)
        now = want if st.reduction != "none" else (False,) * 5
        stats, value, zterm, grads = run.run(now, torch.ones((), dtype=st.cdt))
        ctx.st, ctx.stats, ctx.want = st, stats, want
        ctx.grads = grads if any(now) else None
        ctx.save_for_backward(h2, w, b, cw, sw)
        lse = stats.lse.reshape(st.batch)
        ctx.mark_non_differentiable(zterm, lse)
        return value, zterm, lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, gv: Any, _gz: Any, _gl: Any) -> Any:
        st = ctx.st
        saved = ctx.saved_tensors  # autograd refuses here once the graph is freed
        scale = 1.0
        if ctx.grads is not None:  # the first backward of "mean"/"sum": made in forward
            (dh, dw, db, dcw, dsw), ctx.grads = ctx.grads, None
            scale = float(gv)
            for t in (dw, db, dcw, dsw) if scale != 1.0 else ():
                if t is not None:
                    t.mul_(scale)
        else:
            run = _LinearPass(*_detached(*saved), st=st)
            dh, dw, db, dcw, dsw = run.run(ctx.want, gv, ctx.stats)[3]
        if dh is not None and st.n:
            dist.all_reduce(dh, group=st.group)  # the sum of every shard's part
            if scale != 1.0:
                dh.mul_(scale)
        return dh, dw, db, dcw, dsw, None, None


def _detached(*tensors: Any) -> list[Any]:
    return [None if t is None else t.detach() for t in tensors]


# --------------------------------------------------------------------------- entry points


def _dtensor_type() -> Any:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without DTensor
        return None
    return DTensor


def _unwrap(x: Any, name: str, shard_dim: int | None) -> tuple[Any, Any]:
    """(local tensor, mesh) of a DTensor sharded on ``shard_dim`` (or replicated when
    ``shard_dim`` is None) on a 1-D mesh; (x, None) for anything else."""
    dtensor = _dtensor_type()
    if dtensor is None or not isinstance(x, dtensor):
        return x, None
    mesh, placements = x.device_mesh, tuple(x.placements)
    if shard_dim is None:
        ok = mesh.ndim == 1 and placements[0].is_replicate()
        rule = "replicated"
    else:
        ok = mesh.ndim == 1 and placements[0].is_shard(shard_dim % x.ndim)
        rule = f"sharded on dim {shard_dim} (Shard({shard_dim}))"
    if not ok:
        msg = (
            f"`{name}` as a DTensor must be {rule} on a 1-D device mesh; got placements "
            f"{placements} on a {mesh.ndim}-D mesh"
        )
        raise ValueError(msg)
    return x.to_local(), mesh


def _group_of(group: Any, meshes: list[Any]) -> Any:
    if not (dist.is_available() and dist.is_initialized()):
        msg = (
            "vocabulary-parallel cross-entropy needs an initialised torch.distributed "
            "process group (torch.distributed.init_process_group, or run under torchrun); "
            "there is none"
        )
        raise RuntimeError(msg)
    mesh = next((m for m in meshes if m is not None), None)
    if mesh is not None:
        if any(m is not None and m != mesh for m in meshes):
            msg = "the DTensor arguments must live on the same device mesh"
            raise ValueError(msg)
        mesh_group = mesh.get_group()
        if group is not None and group != mesh_group:
            msg = "`group` must be None or the process group of the DTensors' mesh"
            raise ValueError(msg)
        group = mesh_group
    if group is None:
        group = dist.group.WORLD
    if not isinstance(group, dist.ProcessGroup):
        msg = (
            f"`group` must be None or a torch.distributed ProcessGroup; got {type(group).__name__}"
        )
        raise TypeError(msg)
    if dist.get_rank(group) < 0:
        msg = "this process is not a member of `group`"
        raise ValueError(msg)
    return group


def _wants(*tensors: Any) -> tuple[bool, ...]:
    on = torch.is_grad_enabled()
    return tuple(on and t is not None and t.requires_grad for t in tensors)


def _outputs(out: Any, mesh: Any, return_aux: bool) -> Any:
    value, zterm, lse = out
    if mesh is not None:
        from torch.distributed.tensor import DTensor, Replicate

        value, zterm, lse = (
            DTensor.from_local(t, mesh, [Replicate()], run_check=False) for t in (value, zterm, lse)
        )
    return LinearCrossEntropyOutput(value, zterm, lse) if return_aux else value


def _check_floating_tensor(name: str, x: Any) -> None:
    _tensor(name, x)
    check_floating(_torch_xp(), name, x)


def _mesh_of(x: Any) -> Any:
    dtensor = _dtensor_type()
    return x.device_mesh if dtensor is not None and isinstance(x, dtensor) else None


def _device_of(x: Any) -> Any:
    return x.device if isinstance(x, torch.Tensor) else torch.device("cpu")


def _vocab_parallel_cross_entropy(
    logits_shard: Any, labels: Any, group: Any, vocab_start: Any, options: dict[str, Any],
    return_aux: bool,
) -> Any:  # fmt: skip
    mesh = _mesh_of(logits_shard)
    group = _group_of(group, [mesh, _mesh_of(options["class_weight"])])
    got: dict[str, Any] = {}

    def check_local() -> _Local:  # everything that may fail on one rank only
        x = _unwrap(logits_shard, "logits_shard", -1)[0]
        y = _unwrap(labels, "labels", None)[0]
        cw = _unwrap(options["class_weight"], "class_weight", 0)[0]
        sw = _unwrap(options["sample_weight"], "sample_weight", None)[0]
        _check_floating_tensor("logits_shard", x)
        if x.ndim < 1:
            msg = "`logits_shard` must have a class axis (shape (..., V_r)); got a 0-d tensor"
            raise ValueError(msg)
        got.update(x=x, cw=cw, sw=sw)
        opts = {**options, "class_weight": cw, "sample_weight": sw}
        wants = _wants(x, cw, sw)
        return _check_local(x, y, tuple(x.shape[:-1]), x.shape[-1], vocab_start, opts, wants)

    st = _setup(group, _device_of(logits_shard), check_local)
    x2 = got["x"].reshape(st.n, st.v_local)
    return _outputs(_LogitsFn.apply(x2, got["cw"], got["sw"], st), mesh, return_aux)


def _vocab_parallel_linear_cross_entropy(
    hidden: Any, weight_shard: Any, labels: Any, bias_shard: Any, group: Any, vocab_start: Any,
    options: dict[str, Any], return_aux: bool,
) -> Any:  # fmt: skip
    mesh = _mesh_of(weight_shard)
    meshes = [mesh, _mesh_of(hidden), _mesh_of(bias_shard), _mesh_of(options["class_weight"])]
    group = _group_of(group, meshes)
    got: dict[str, Any] = {}

    def check_local() -> _Local:  # everything that may fail on one rank only
        h = _unwrap(hidden, "hidden", None)[0]
        w = _unwrap(weight_shard, "weight_shard", 0)[0]
        b = _unwrap(bias_shard, "bias_shard", 0)[0]
        y = _unwrap(labels, "labels", None)[0]
        cw = _unwrap(options["class_weight"], "class_weight", 0)[0]
        sw = _unwrap(options["sample_weight"], "sample_weight", None)[0]
        _check_floating_tensor("hidden", h)
        _check_floating_tensor("weight_shard", w)
        if h.ndim < 1:
            msg = "`hidden` must have a feature axis (shape (..., D)); got a 0-d tensor"
            raise ValueError(msg)
        d = h.shape[-1]
        if w.ndim != 2 or w.shape[1] != d:
            msg = (
                f"`weight_shard` must have shape (V_r, {d}) for `hidden` of shape "
                f"{tuple(h.shape)}; got {tuple(w.shape)}"
            )
            raise ValueError(msg)
        if b is not None:
            _check_floating_tensor("bias_shard", b)
            if tuple(b.shape) != (w.shape[0],):
                msg = f"`bias_shard` must have shape ({w.shape[0]},); got {tuple(b.shape)}"
                raise ValueError(msg)
        for name, t in (("weight_shard", w), ("bias_shard", b)):
            if t is not None and t.dtype != h.dtype:
                msg = f"`{name}` must have the dtype of `hidden` ({h.dtype}); got {t.dtype}"
                raise TypeError(msg)
        want = _wants(h, w, b, cw, sw)
        got.update(h=h, w=w, b=b, cw=cw, sw=sw, want=want)
        opts = {**options, "class_weight": cw, "sample_weight": sw}
        return _check_local(
            h, y, tuple(h.shape[:-1]), w.shape[0], vocab_start, opts, want,
            hidden=h.reshape(-1, d),
        )  # fmt: skip

    st = _setup(group, _device_of(hidden), check_local)
    h2 = got["h"].reshape(st.n, got["h"].shape[-1])
    args = (h2, got["w"], got["b"], got["cw"], got["sw"], st, got["want"])
    return _outputs(_LinearFn.apply(*args), mesh, return_aux)


_EAGER: dict[str, Any] = {}


def _eager(fn: Any) -> Any:
    """``fn`` outside any torch.compile graph (the collectives and the chunk loop are not
    for a compiler: a graph break), wrapped on first use: importing dynamo costs seconds."""
    if fn.__name__ not in _EAGER:
        _EAGER[fn.__name__] = torch.compiler.disable(fn)
    return _EAGER[fn.__name__]


def vocab_parallel_cross_entropy(
    logits_shard: Any,
    labels: Any,
    *,
    group: Any = None,
    vocab_start: int | None = None,
    class_weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: str = "mean",
    sample_weight: Any = None,
    return_aux: bool = False,
) -> Any:
    r"""Softmax cross-entropy over a vocabulary split across the ranks of a process group.

    Rank ``r`` passes its ``V_r`` columns of the logits (classes ``vocab_start`` to
    ``vocab_start + V_r``; by default the shards lie in rank order) and the full
    labels; every rank gets the loss over the whole vocabulary ``V = Σ V_r``, the
    same bit for bit. With ``z'`` the soft-capped logits (``c tanh(z / c)``),
    ``lse = logsumexp(z')`` over all shards and ``p = exp(z' - lse)``, each counted
    token contributes

    .. math::
        \ell = (1-\varepsilon)\, w_y (\mathrm{lse} - z'_y)
             + \frac{\varepsilon}{V} \sum_c w_c (\mathrm{lse} - z'_c)
             + \lambda\, \mathrm{lse}^2,

    exactly :func:`losskit.linear_cross_entropy`'s loss (and, without z-loss and
    soft cap, :func:`losskit.sparse_softmax_cross_entropy`'s and PyTorch's
    ``F.cross_entropy``'s) on the gathered logits; the shard's gradient is its
    columns of

    .. math::
        \frac{\partial \ell}{\partial z_c} = \Big((1-\varepsilon) w_y (p_c - [c = y])
            + \frac{\varepsilon}{V}(W p_c - w_c) + 2 \lambda\, \mathrm{lse}\, p_c\Big)
            \big(1 - (z'_c / c)^2\big).

    Forward makes three all-reduces: a few numbers per rank (shard sizes, checksums of
    the replicated arguments, the options, so that a bad argument on one rank raises on
    every rank instead of hanging the others), the row maxima (MAX, N numbers), and
    [sum of exponentials, target logit, class-weighted logit sum, target class weight]
    (SUM, at most 4N numbers, the last two only with label smoothing / class weights
    given per shard). Backward communicates nothing and keeps O(N) numbers besides the
    shard it differentiates.

    Parameters
    ----------
    logits_shard : torch.Tensor ``(..., V_r)``, real floating
        This rank's columns of the logits; a DTensor ``Shard(-1)`` on a 1-D mesh is
        taken as its local shard (and the result is a replicated DTensor).
    labels : integer torch.Tensor, ``logits_shard``'s shape without the last axis
        Global class ids in ``[0, V)`` (or ``ignore_index``), the same on every rank.
    group : ProcessGroup, optional
        The ranks that hold the shards (default: the world; a DTensor's mesh group).
    vocab_start : int, optional
        This shard's first class id (then on every rank; the shards must tile
        ``[0, V)``). Default: rank order, rank 0 holding the first classes.
    class_weight : torch.Tensor ``(V_r,)`` or ``(V,)``, optional
        This shard's class weights, or all of them (the same on every rank; its
        gradient on each rank is then that rank's classes' part).
    ignore_index : int, optional
    label_smoothing : float in [0, 1]
        Spread over the global ``V`` classes.
    z_loss : float >= 0
        Weight of ``lse²`` per counted token.
    softcap : float > 0, optional
        Soft cap ``c`` of the logits (Gemma 2).
    reduction : {"mean", "sum", "none"}
        ``"mean"`` divides the cross-entropy part by the counted tokens' summed
        ``sample_weight * class_weight[y]`` and the z-loss part by their summed
        ``sample_weight``; nothing counted gives 0.
    sample_weight : torch.Tensor, optional
        ``labels``' shape or a leading part of it, the same on every rank.
    return_aux : bool
        Return a :class:`losskit.LinearCrossEntropyOutput` ``(loss, z_loss, lse)``.

    Returns
    -------
    torch.Tensor
        The loss, identical on every rank (float32 for half-precision logits).

    Examples
    --------
    On each of 2 ranks (``torchrun --nproc-per-node 2``), rank ``r`` holding columns
    ``[0, 3)`` or ``[3, 5)`` of ``logits`` (N x 5)::

        shard = logits[:, :3] if rank == 0 else logits[:, 3:]
        loss = vocab_parallel_cross_entropy(shard, labels)  # == F.cross_entropy(logits, labels)
        loss.backward()                                      # shard.grad: its columns

    With no other rank, a group of one gives the single-process loss:

    >>> import os, tempfile, torch, torch.distributed as dist, losskit as lk
    >>> from losskit.distributed import vocab_parallel_cross_entropy
    >>> store = dist.FileStore(os.path.join(tempfile.mkdtemp(), "store"), 1)
    >>> dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    >>> labels = torch.tensor([0, 2])
    >>> loss = vocab_parallel_cross_entropy(logits, labels, label_smoothing=0.1)
    >>> reference = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    >>> bool(torch.allclose(loss, reference))
    True
    >>> dist.destroy_process_group()

    References
    ----------
    Shoeybi et al., "Megatron-LM: Training Multi-Billion Parameter Language Models
    Using Model Parallelism" (2019), section 3: the parallel cross-entropy.
    """
    options = dict(
        class_weight=class_weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
        z_loss=z_loss, softcap=softcap, reduction=reduction, sample_weight=sample_weight,
    )  # fmt: skip
    return _eager(_vocab_parallel_cross_entropy)(
        logits_shard, labels, group, vocab_start, options, return_aux
    )


def vocab_parallel_linear_cross_entropy(
    hidden: Any,
    weight_shard: Any,
    labels: Any,
    *,
    bias_shard: Any = None,
    group: Any = None,
    vocab_start: int | None = None,
    class_weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: str = "mean",
    sample_weight: Any = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    return_aux: bool = False,
) -> Any:
    r"""Fused linear cross-entropy with the output weight split by vocabulary across ranks.

    :func:`losskit.linear_cross_entropy` (``hidden @ weight.T + bias``, never more
    than a chunk of logits) when rank ``r`` holds rows ``vocab_start`` to
    ``vocab_start + V_r`` of the weight (and bias) and every rank the same
    ``hidden`` and labels: the result is the loss over the whole vocabulary, the
    same bit for bit on every rank, with the options and formulas of
    :func:`vocab_parallel_cross_entropy`. Per chunk of tokens (``chunk_size`` rows,
    default what 40 MiB of this shard's logits hold, the smallest over the ranks) the
    shard's logits are made once, two all-reduces (MAX, then SUM) give the chunk's
    global log-sum-exp, and for ``"mean"``/``"sum"`` the chunk's gradients follow
    from the same logits (three matrix products per chunk, as single-process). The
    backward all-reduces the gradient of ``hidden`` once (N x D): ``hidden`` gets
    the full gradient on every rank, ``weight_shard``/``bias_shard`` their own rows.
    ``"none"`` recomputes the logits in backward from O(N) saved numbers.

    Parameters
    ----------
    hidden : torch.Tensor ``(..., D)``, real floating, the same on every rank
        (a replicated DTensor is taken as its local tensor).
    weight_shard : torch.Tensor ``(V_r, D)``, ``hidden``'s dtype
        This rank's rows of the output weight (a DTensor ``Shard(0)`` on a 1-D mesh
        is taken as its local shard; the result is then a replicated DTensor).
    labels : integer torch.Tensor, ``hidden``'s shape without the last axis
    bias_shard : torch.Tensor ``(V_r,)``, optional
    group, vocab_start, class_weight, ignore_index, label_smoothing, z_loss, softcap
        As in :func:`vocab_parallel_cross_entropy`.
    reduction, sample_weight, return_aux
        As in :func:`vocab_parallel_cross_entropy`.
    chunk_size : int, optional
        Tokens per chunk (the same on every rank).
    memory_budget : int, optional
        Bytes one chunk's shard logits may take.

    Returns
    -------
    torch.Tensor
        The loss, identical on every rank (float32 for half-precision input).

    Examples
    --------
    >>> import os, tempfile, torch, torch.distributed as dist, losskit as lk
    >>> from losskit.distributed import vocab_parallel_linear_cross_entropy
    >>> store = dist.FileStore(os.path.join(tempfile.mkdtemp(), "store"), 1)
    >>> dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    >>> h = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    >>> w = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> loss = vocab_parallel_linear_cross_entropy(h, w, torch.tensor([0, 2]), reduction="sum")
    >>> round(float(loss), 5)  # = lk.linear_cross_entropy(h, w, labels, reduction="sum")
    3.16623
    >>> dist.destroy_process_group()

    References
    ----------
    Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models" (2024):
    the fused loss; Shoeybi et al., "Megatron-LM" (2019): the vocabulary-parallel head.
    """
    options = dict(
        class_weight=class_weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
        z_loss=z_loss, softcap=softcap, reduction=reduction, sample_weight=sample_weight,
        chunk_size=chunk_size, memory_budget=memory_budget,
    )  # fmt: skip
    return _eager(_vocab_parallel_linear_cross_entropy)(
        hidden, weight_shard, labels, bias_shard, group, vocab_start, options, return_aux
    )
