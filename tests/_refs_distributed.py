"""The cases of the vocabulary-parallel tests (issue 12) and their float64 reference.

Shared by tests/test_distributed.py (the parent, which computes the
references) and tests/_distributed_worker.py (each gloo rank, which runs the
cases on its shard).  Every input is drawn from the case's seed, so that each
rank builds the same full tensors and slices its own shard, and the parent
rebuilds them to compute the single-process answer.

The reference is written here from the specification, on top of PyTorch in
float64 (``log_softmax``, ``logsumexp``, ``tanh``, autograd), never on top of
losskit: with ``z = logits`` (or ``hidden @ weight.T + bias``), the soft cap
``z' = c tanh(z / c)``, ``log p = log_softmax(z')``, class weights ``w``, label
smoothing ε and z-loss λ, a counted token contributes

    (1-ε) w_y (-log p_y) + ε/V Σ_c w_c (-log p_c) + λ logsumexp(z')²

(PyTorch's ``F.cross_entropy(weight=w, label_smoothing=ε)`` plus PaLM's
z-loss); ``"mean"`` divides the cross-entropy by ``Σ s w_y`` and the z-loss by
``Σ s`` over the counted tokens (``s``: sample weights), nothing counted gives
0.  The test module checks this formula against ``F.cross_entropy`` itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np

V = 11  # classes: never a multiple of the world size
D = 4  # hidden size
IGNORE = -100
#: Uneven shard sizes per world size (rank order).
SHARDS = {1: (V,), 2: (5, 6), 3: (4, 3, 4)}
#: The ranks of the subgroup case (world 3): rank 1 stays out.
SUBGROUP = (0, 2)
#: Float inputs a rank may differentiate, in the order the worker records them.
GRAD_NAMES = ("logits", "hidden", "weight", "bias", "class_weight", "sample_weight")


@dataclasses.dataclass(frozen=True)
class Case:
    """One call of a vocabulary-parallel function, run on every rank."""

    name: str
    fn: str  # "logits" (vocab_parallel_cross_entropy) | "linear" (..._linear_cross_entropy)
    reduction: str = "mean"
    opts: tuple[tuple[str, Any], ...] = ()  # see OPTION_SETS
    shape: tuple[int, ...] = (7,)  # the labels' shape
    labels: str = "auto"  # auto | random | low | all_ignored | out_of_range | negative | differ
    dtype: str = "float64"
    scale: float = 1.0  # logits (or hidden) scale
    seed: int = 0
    layout: str = "rank_order"  # rank_order | explicit | reversed | overlap | dtensor
    fault: str | None = None  # a local problem on the last rank (see worker.FAULTS)
    return_aux: bool = False
    expect: str = "ok"  # ok | error_all (same error everywhere) | error_local (on the last rank)
    group: str = "world"  # world | sub (the ranks SUBGROUP of world 3)
    gradcheck: tuple[str, ...] = ()  # gradcheck w.r.t. these inputs instead of one backward
    gradcheck_mode: str = "fast"  # fast (random projections) | full (element by element)
    grad: str = "all"  # which inputs require grad: all | none | one input's name
    contiguous: bool = True  # False: every 2-d input (logits, hidden, weight) column-major
    backwards: int = 1  # backward passes through the same graph (retain_graph)
    row_pass_bytes: int | None = None  # the logits version's row-pass bound (private knob)
    nonfinite: float | None = None  # put in token 1's logits (last class) or hidden (1st dim)
    labels_dtype: str = "int64"

    @property
    def id(self) -> str:
        return f"{self.fn}-{self.name}-{self.reduction}"

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.opts)


# The option sets of the "every option" grid. class_weight: "shard" (each rank its
# (V_r,) slice) or "whole" (the (V,) vector on every rank); sample_weight: "full"
# (labels' shape) or "leading" (labels' first axis, for 2-d labels).
OPTION_SETS: dict[str, dict[str, Any]] = {
    "plain": {},
    "class_weight_shard": {"class_weight": "shard"},
    "class_weight_whole": {"class_weight": "whole"},
    "ignore": {"ignore_index": IGNORE},
    "smoothing": {"label_smoothing": 0.2},
    "smoothing_weighted_ignore": {
        "label_smoothing": 0.3,
        "class_weight": "shard",
        "ignore_index": IGNORE,
    },
    "z_loss": {"z_loss": 1e-2},
    "softcap": {"softcap": 1.5},
    "sample_weight": {"sample_weight": "full"},
    "all": {
        "class_weight": "whole",
        "ignore_index": IGNORE,
        "label_smoothing": 0.1,
        "z_loss": 1e-2,
        "softcap": 2.0,
        "sample_weight": "full",
    },
}
LINEAR_OPTION_SETS: dict[str, dict[str, Any]] = {
    "bias": {"bias": True},
    "chunked": {"chunk_size": 3},
    "all_bias_chunked": {
        **OPTION_SETS["all"],
        "class_weight": "shard",
        "bias": True,
        "chunk_size": 2,
    },
}
REDUCTIONS = ("mean", "sum", "none")


def _case(name: str, fn: str, reduction: str = "mean", **kw: Any) -> Case:
    opts = kw.pop("opts", {})
    return Case(name, fn, reduction, tuple(sorted(opts.items())), **kw)


def cases_for(world: int) -> list[Case]:
    """Every case one launch of ``world`` ranks runs, in order (the same on every rank)."""
    out: list[Case] = []
    for fn in ("logits", "linear"):
        sets = dict(OPTION_SETS, **(LINEAR_OPTION_SETS if fn == "linear" else {}))
        for name, opts in sets.items():
            for red in REDUCTIONS:
                out.append(_case(name, fn, red, opts=opts, seed=len(out)))
        ig = {"ignore_index": IGNORE}
        out += [
            _case("aux_all", fn, "mean", opts=OPTION_SETS["all"], return_aux=True, seed=1),
            _case("aux_none", fn, "none", opts={"z_loss": 1e-3}, return_aux=True, seed=2),
            _case("all_ignored", fn, "mean", opts={**ig, "z_loss": 1e-2}, labels="all_ignored"),
            _case(
                "all_ignored", fn, "sum", opts={**ig, "class_weight": "shard"}, labels="all_ignored"
            ),
            _case("all_ignored", fn, "none", opts=ig, labels="all_ignored"),
            # every target in rank 0's shard: the other ranks hold none of them
            _case("targets_on_rank0", fn, "mean", opts={"class_weight": "shard"}, labels="low"),
            _case("targets_on_rank0", fn, "none", opts={"label_smoothing": 0.2}, labels="low"),
            _case("labels_2d", fn, "mean", shape=(2, 4), opts={"sample_weight": "leading"}),
            _case("labels_2d", fn, "none", shape=(2, 4), opts={"sample_weight": "full", **ig}),
            _case("empty", fn, "mean", shape=(0,), opts={"z_loss": 1e-2}),
            _case("empty", fn, "none", shape=(0,)),
            _case("large_1e4", fn, "mean", scale=1e4, opts={"z_loss": 1e-4}, seed=3),
            _case("large_1e4_softcap", fn, "sum", scale=1e4, opts={"softcap": 30.0}, seed=4),
            _case("float32", fn, "mean", dtype="float32", opts=OPTION_SETS["all"], seed=5),
            _case("explicit_vocab_start", fn, "mean", layout="explicit", opts={"z_loss": 1e-2}),
            _case("reversed_shards", fn, "mean", layout="reversed", opts=OPTION_SETS["all"]),
            _case("reversed_shards", fn, "none", layout="reversed", opts={"class_weight": "shard"}),
            _case("empty_shard", fn, "mean", layout="empty_shard", opts=OPTION_SETS["all"]),
            _case("empty_shard", fn, "none", layout="empty_shard", opts={"class_weight": "shard"}),
            _case("dtensor", fn, "mean", layout="dtensor", opts={"label_smoothing": 0.1}),
            _case("dtensor", fn, "none", layout="dtensor", opts={"class_weight": "whole"}),
        ]
        if world == 3:
            out.append(_case("subgroup", fn, "mean", group="sub", opts=OPTION_SETS["all"]))
        out += [
            _case("no_grad", fn, "mean", grad="none", opts=OPTION_SETS["all"]),
            _case("non_contiguous", fn, "mean", contiguous=False, opts=OPTION_SETS["all"]),
            _case("backward_twice", fn, "sum", backwards=2, opts=OPTION_SETS["all"]),
            _case("int32_labels", fn, "mean", labels_dtype="int32", opts=OPTION_SETS["all"]),
            # a NaN or inf makes its token's loss NaN (as the single-process functions)
            _case("nan", fn, "none", nonfinite=math.nan, opts={"label_smoothing": 0.1}),
            _case("inf", fn, "none", nonfinite=math.inf, opts={"z_loss": 1e-2}),
            _case("nan", fn, "mean", nonfinite=math.nan),
            *(
                [
                    # row passes of 2 rows (3 on the narrowest shard): 7 tokens in 3-4 passes
                    _case("row_passes", fn, red, row_pass_bytes=2 * 6 * 4, opts=OPTION_SETS["all"])
                    for red in ("mean", "none")
                ]
                if fn == "logits"
                else []
            ),
            # class ids on both sides of every shard boundary
            _case("boundary_labels", fn, "sum", labels="edges", opts={"label_smoothing": 0.1}),
            # an ignore_index inside the vocabulary: class 3 counts nowhere
            _case("ignore_index_in_vocab", fn, "mean", labels="edges", opts={"ignore_index": 3}),
        ]
    out += [
        # only the weight requires grad: backward communicates nothing
        _case("weight_only", "linear", red, grad="weight", opts={"class_weight": "whole"})
        for red in ("mean", "none")
    ]
    out += [
        _case("float16", "logits", "mean", dtype="float16", opts={"label_smoothing": 0.1}),
        _case("bfloat16", "logits", "sum", dtype="bfloat16", opts={"z_loss": 1e-2}),
        _case("bfloat16", "linear", "mean", dtype="bfloat16", opts={"label_smoothing": 0.1}),
        _case("float16", "linear", "none", dtype="float16", opts={"class_weight": "shard"}),
        _case(
            "large_1e4_float32",
            "logits",
            "mean",
            dtype="float32",
            scale=1e4,
            seed=8,
            opts={"z_loss": 1e-4, "class_weight": "whole"},
        ),
        # A memory budget of 16 rows of the widest shard: the narrower shards would
        # take more rows per chunk, so a per-shard chunking would disagree on the
        # number of chunks (and of collectives) between ranks.
        _case(
            "memory_budget_uneven",
            "linear",
            "mean",
            shape=(38,),
            opts={"memory_budget": 16 * max(SHARDS[world]) * 8, "z_loss": 1e-3},
        ),
    ]
    # errors: each rank records its exception and goes on with the next case
    for fn in ("logits", "linear"):
        out += [
            _case("label_out_of_range", fn, labels="out_of_range", expect="error_all"),
            _case(
                "label_negative",
                fn,
                labels="negative",
                opts={"ignore_index": IGNORE},
                expect="error_all",
            ),
            _case("labels_differ", fn, labels="differ", expect="error_all"),
            _case("labels_differ_by_a_swap", fn, labels="swap", shape=(2, 4), expect="error_all"),
            _case("overlapping_shards", fn, layout="overlap", expect="error_all"),
            _case(
                "bad_class_weight_on_one_rank",
                fn,
                fault="class_weight_len",
                opts={"class_weight": "shard"},
                expect="error_all",
            ),
            _case("bad_shape_on_one_rank", fn, fault="shape", expect="error_local"),
            _case("numpy_on_one_rank", fn, fault="numpy", expect="error_local"),
            _case("smoothing_differs", fn, fault="smoothing_differs", expect="error_all"),
            _case("batch_differs", fn, fault="batch", expect="error_all"),
            _case(
                "sample_weight_differs",
                fn,
                fault="sample_weight_differs",
                opts={"sample_weight": "full"},
                expect="error_all",
            ),
            _case("bad_dtype_on_one_rank", fn, fault="int_dtype", expect="error_local"),
            *(
                [
                    _case("hidden_differs", fn, fault="hidden_differs", expect="error_all"),
                    _case("hidden_grad_differs", fn, fault="hidden_no_grad", expect="error_all"),
                ]
                if fn == "linear"
                else []
            ),
            # the group still works after the errors: nothing was left half-done
            _case("after_errors", fn, "mean", opts=OPTION_SETS["all"], seed=6),
        ]
    # gradcheck in float64 on the group, every floating input: by random projections
    # (fast mode: a few calls) under each reduction, element by element for two cases
    gc_logits = ("logits", "class_weight", "sample_weight")
    gc_linear = ("hidden", "weight", "bias", "class_weight", "sample_weight")
    all_logits = {**OPTION_SETS["all"], "class_weight": "shard"}
    all_linear = LINEAR_OPTION_SETS["all_bias_chunked"]
    for red in REDUCTIONS:
        out += [
            _case("gradcheck", "logits", red, shape=(5,), gradcheck=gc_logits, opts=all_logits),
            _case("gradcheck", "linear", red, shape=(5,), gradcheck=gc_linear, opts=all_linear),
        ]
    gc_lin_nb = ("hidden", "weight", "class_weight", "sample_weight")
    whole = {"class_weight": "whole", "label_smoothing": 0.2, "sample_weight": "full"}
    out += [
        _case("gradcheck_whole_class_weight", "logits", "mean", gradcheck=gc_logits, opts=whole),
        _case("gradcheck_whole_class_weight", "linear", "sum", gradcheck=gc_lin_nb, opts=whole),
    ]
    if world == 2:
        out += [
            _case(
                "gradcheck_elementwise",
                fn,
                "mean",
                shape=(3,),
                gradcheck=gc,
                opts=o,
                gradcheck_mode="full",
            )
            for fn, gc, o in (("logits", gc_logits, all_logits), ("linear", gc_linear, all_linear))
        ]
    ids = [c.id for c in out]
    assert len(set(ids)) == len(ids), "case ids must be unique"
    return out


# --------------------------------------------------------------------------- inputs


def bounds(sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """[(a, b)] of consecutive shards of these sizes."""
    return list(itertools.pairwise([0, *np.cumsum(sizes).tolist()]))


def dtensor_sizes(world: int) -> tuple[int, ...]:
    """The shard sizes of DTensor's Shard placement (``torch.chunk``: 6/5, 4/4/3)."""
    q = math.ceil(V / world)
    return tuple(max(0, min(q, V - r * q)) for r in range(world))


def shard_bounds(case: Case, world: int) -> list[tuple[int, int]]:
    """Each rank's (first class, end) in the group's rank order."""
    if case.layout == "dtensor":
        return bounds(dtensor_sizes(world))
    if case.group == "sub":
        return bounds(SHARDS[len(SUBGROUP)])
    sizes = SHARDS[world]
    if case.layout == "empty_shard":  # the middle (or first) rank holds no class
        sizes = (5, 0, 6) if world == 3 else (0, V)
    if case.layout == "reversed":  # rank r holds the r-th shard from the end
        rev = bounds(sizes[::-1])
        return rev[::-1]
    return bounds(sizes)


def make_inputs(case: Case) -> dict[str, np.ndarray]:
    """The full float64 / int64 inputs of ``case`` (the same on every rank)."""
    rng = np.random.default_rng(1000 + case.seed)
    shape = case.shape
    labels = rng.integers(0, V, shape)
    x = {
        "logits": rng.standard_normal((*shape, V)) * case.scale,
        "hidden": rng.standard_normal((*shape, D)) * case.scale,
        "weight": rng.standard_normal((V, D)),
        "bias": rng.standard_normal(V),
        "class_weight": rng.uniform(0.2, 2.0, V),
        "sample_weight": rng.uniform(0.2, 2.0, shape),
        "upstream": rng.standard_normal(shape),
        "low": rng.integers(0, min(SHARDS[2][0], SHARDS[3][0]), shape),
    }
    flat = labels.reshape(-1)
    kind = case.labels
    if kind == "auto":
        kind = "ignored" if case.options.get("ignore_index") == IGNORE else "random"
    if kind == "ignored":
        flat[[1, 5] if flat.size > 5 else [1]] = IGNORE
    elif kind == "all_ignored":
        flat[:] = IGNORE
    elif kind == "edges":
        flat[:] = np.resize([0, 3, 4, 5, 6, 7, 10], flat.size)
    elif kind == "low":
        flat[:] = x["low"].reshape(-1)
    elif kind == "out_of_range":
        flat[3] = V
    elif kind == "negative":
        flat[2] = -3
    if case.nonfinite is not None:
        x["logits"].reshape(-1, V)[1, V - 1] = case.nonfinite
        x["hidden"].reshape(-1, D)[1, 0] = case.nonfinite
    if case.options.get("sample_weight") == "leading":
        x["sample_weight"] = x["sample_weight"].reshape(shape[0], -1)[:, 0].copy()
    if case.fn == "linear" and case.scale != 1.0:
        # logits of the scale asked for: unit hidden rows times a scaled weight would
        # do the same; here hidden carries the scale and the weight rows are unit
        x["weight"] /= np.linalg.norm(x["weight"], axis=1, keepdims=True)
    x["labels"] = labels.astype(case.labels_dtype)
    return x


# --------------------------------------------------------------------------- reference


def reference(case: Case) -> dict[str, Any]:
    """The single-process answer in float64 from the full tensors (torch autograd).

    Returns ``loss``, ``z_loss`` (the z-loss term reduced as the loss), ``lse``
    (every token's log-sum-exp of the capped logits) and ``grads``: the full
    gradient of ``sum(loss * upstream)`` (upstream: the case's random weights for
    "none", 1 otherwise) w.r.t. each floating input the case uses, times the
    case's number of backward passes (they accumulate).  Inputs of a
    half or single precision case are rounded to that dtype first.
    """
    import torch

    x = make_inputs(case)
    o = case.options
    dt = getattr(torch, case.dtype)

    def leaf(a: np.ndarray) -> Any:
        return torch.tensor(a).to(dt).double().requires_grad_(True)

    t = {k: leaf(x[k]) for k in GRAD_NAMES}
    y = torch.tensor(x["labels"]).long()
    if case.fn == "logits":
        z = t["logits"]
    else:
        z = t["hidden"] @ t["weight"].T
        if o.get("bias"):
            z = z + t["bias"]
    if o.get("softcap") is not None:
        c = o["softcap"]
        z = c * torch.tanh(z / c)
    logp = torch.log_softmax(z, dim=-1)
    lse = torch.logsumexp(z, dim=-1)
    ig = o.get("ignore_index")
    counted = torch.ones_like(lse) if ig is None else (y != ig).double()
    y0 = torch.where(y == (IGNORE if ig is None else ig), 0, y)
    w = t["class_weight"] if "class_weight" in o else torch.ones(V, dtype=torch.float64)
    wy = w[y0] * counted
    nll = -logp.gather(-1, y0.unsqueeze(-1)).squeeze(-1)
    eps = o.get("label_smoothing", 0.0)
    smooth = -(logp * w).sum(-1) / V * counted
    ce = (1 - eps) * wy * nll + eps * smooth
    zr = o.get("z_loss", 0.0) * lse**2 * counted
    s = torch.ones_like(lse)
    if "sample_weight" in o:
        s = t["sample_weight"]
        while s.ndim < lse.ndim:
            s = s.unsqueeze(-1)
        s = s.expand_as(lse)
    if case.reduction == "none":
        loss, zterm = s * (ce + zr), s * zr
    elif case.reduction == "sum":
        loss, zterm = (s * (ce + zr)).sum(), (s * zr).sum()
    else:
        d1, d2 = (s * wy).sum(), (s * counted).sum()
        zero = torch.zeros((), dtype=torch.float64)
        zterm = (s * zr).sum() / d2 if d2 > 0 else zero
        loss = ((s * ce).sum() / d1 if d1 > 0 else zero) + zterm
    up = torch.tensor(x["upstream"]) if case.reduction == "none" else torch.tensor(0.75)
    used = used_inputs(case)
    if loss.requires_grad:
        grads = torch.autograd.grad((loss * up).sum(), [t[k] for k in used], allow_unused=True)
    else:  # an empty batch
        grads = (None,) * len(used)
    out_grads = {
        k: (torch.zeros_like(t[k]) if g is None else g * case.backwards).numpy()
        for k, g in zip(used, grads, strict=True)
    }
    return {
        "loss": loss.detach().numpy(),
        "z_loss": zterm.detach().numpy(),
        "lse": lse.detach().numpy(),
        "grads": out_grads,
        "upstream": up.numpy(),
    }


def used_inputs(case: Case) -> tuple[str, ...]:
    """The floating inputs ``case`` passes (and differentiates), in GRAD_NAMES order."""
    o = case.options
    names = ["logits"] if case.fn == "logits" else ["hidden", "weight"]
    if case.fn == "linear" and o.get("bias"):
        names.append("bias")
    if "class_weight" in o:
        names.append("class_weight")
    if "sample_weight" in o:
        names.append("sample_weight")
    return tuple(names)


#: How a gradient is split: "vocab" on the last axis (logits), "rows" on the
#: first (weight, bias, per-shard class weights), "full" (replicated inputs).
def split_of(case: Case, name: str) -> str:
    if name == "logits":
        return "vocab"
    if name in ("weight", "bias"):
        return "rows"
    if name == "class_weight":
        return "rows" if case.options["class_weight"] == "shard" else "whole"
    return "full"
