"""``losskit explain ctc``: the CTC alignment lattice of a tiny example, in text and as a picture.

On a small example (by default 8 frames, 5 classes, blank 0 and the labels
2 1 3, "c a t" with a = 1, c = 2, t = 3) it prints the log-softmax of each
frame, the forward table alpha over frames x extended labels (blank, c,
blank, a, blank, t, blank), the loss read off its last column, the loss and
gradient :func:`losskit.ctc` gives (which must agree), the posterior
occupation of each lattice state as a shaded map, and the gradient checked
against finite differences of the loss. With ``--out FILE.png`` it draws the
alpha table and the posterior as heat maps with the allowed transitions
(stay, advance one state, skip a blank between different labels).

The tables are computed here in NumPy from the definition, independently of
the library's kernels, so agreeing with :func:`losskit.ctc` is a check.

Options (after ``losskit explain ctc``): ``--labels 2,1,3``, ``--frames 8``,
``--classes 5``, ``--blank 0``, ``--seed 0`` (the random logits), or the
logits themselves as ``--logits 'z00,z01,...;z10,...'`` (one row per frame),
``--out FILE.png``, ``--json``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

import numpy as np

from ._common import CliError, check_output_path, dump_json, fmt, option_pairs
from ._fd import H_TEXT, check_gradient

_SHADES = " .:-=+*#%@"  # posterior 0 .. 1 in ten steps
_DEFAULT_LABELS = (2, 1, 3)
_DEFAULT_NAMES = {0: "-", 1: "a", 2: "c", 3: "t"}
# The frames' favourite classes in the default example: "- c c a - t t -".
_DEFAULT_FAVOURITES = (0, 2, 2, 1, 0, 3, 3, 0)


def _int(text: str, flag: str, low: int) -> int:
    try:
        v = int(text)
    except ValueError:
        v = low - 1
    if v < low:
        raise CliError(f"{flag} must be an integer >= {low}; got {text!r}", 2)
    return v


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The example: logits (T, C) float64, labels, blank, output path, from the command line."""
    opts: dict[str, Any] = {"labels": None, "frames": 8, "classes": 5, "blank": 0, "seed": 0}
    out = None
    for key, value in option_pairs(list(getattr(args, "extra", None) or [])):
        name = key[2:].replace("-", "_")
        if name == "labels":
            opts["labels"] = value
        elif name in ("frames", "classes", "blank", "seed"):
            opts[name] = _int(
                value, key, 2 if name == "classes" else (1 if name == "frames" else 0)
            )
        elif name == "out":
            check_output_path("--out", value, ".png")
            out = value
        else:
            raise CliError(
                f"explain ctc takes --labels, --frames, --classes, --blank, "
                f"--seed, --logits, --out and --json; got {key}",
                2,
            )
    labels_text = opts["labels"] or getattr(args, "targets", None)
    logits_text = getattr(args, "logits", None)
    if logits_text:
        rows = [r for r in logits_text.split(";") if r.strip()]
        try:
            parsed = [[float(v) for v in r.split(",")] for r in rows]
        except ValueError:
            msg = f"--logits are rows of comma-separated numbers split by ';'; got {logits_text!r}"
            raise CliError(msg, 2) from None
        if not parsed or len({len(r) for r in parsed}) != 1 or len(parsed[0]) < 2:
            msg = (
                f"--logits must be T rows of C >= 2 numbers, every row as long; got {logits_text!r}"
            )
            raise CliError(msg, 2)
        x = np.array(parsed)
        if not np.isfinite(x).all():
            raise CliError(f"--logits must be finite; got {logits_text!r}", 2)
    else:
        T, C = opts["frames"], opts["classes"]
        x = np.random.default_rng(opts["seed"]).normal(0.0, 1.0, (T, C))
        if labels_text is None and (T, C) == (8, 5):
            x[np.arange(T), list(_DEFAULT_FAVOURITES)] += 2.0
    T, C = x.shape
    blank = opts["blank"]
    if blank >= C:
        raise CliError(f"--blank must be in [0, {C}); got {blank}", 2)
    if labels_text is None:
        labels = [c for c in _DEFAULT_LABELS if c < C and c != blank] if C > 1 else []
    else:
        try:
            labels = [int(v) for v in str(labels_text).split(",") if v.strip()]
        except ValueError:
            raise CliError(
                f"--labels are comma-separated class ids; got {labels_text!r}", 2
            ) from None
    for i, c in enumerate(labels):
        if not 0 <= c < C or c == blank:
            raise CliError(
                f"--labels must be in [0, {C}) and not the blank {blank}; got {c} at position {i}",
                2,
            )
    names = dict(_DEFAULT_NAMES) if (labels_text is None and blank == 0) else {blank: "-"}
    return {"x": x, "labels": labels, "blank": blank, "out": out, "names": names}


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def _lse(*terms: np.ndarray) -> np.ndarray:
    m = np.maximum.reduce(terms)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return safe + np.log(sum(np.exp(t - safe) for t in terms))


def lattice(x: np.ndarray, labels: list[int], blank: int) -> dict[str, Any]:
    """The CTC lattice of one example in float64: extended labels, lp, alpha, beta, loss,
    posterior occupation of each state, and which states may be skipped into."""
    T, _ = x.shape
    ext = [blank]
    for c in labels:
        ext += [c, blank]
    S = len(ext)
    lp = _log_softmax(x)[:, ext]
    skip = np.array([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(S)])
    alpha = np.full((T, S), -np.inf)
    beta = np.full((T, S), -np.inf)  # frame t's emission included
    alpha[0, : min(2, S)] = lp[0, : min(2, S)]
    for t in range(1, T):
        a = np.concatenate([[-np.inf, -np.inf], alpha[t - 1]])  # a[s + 2]: state s
        alpha[t] = lp[t] + _lse(a[2:], a[1:-1], np.where(skip, a[:-2], -np.inf))
    beta[T - 1, max(S - 2, 0) :] = lp[T - 1, max(S - 2, 0) :]
    skip_next = np.append(skip, [False, False])[2:]
    for t in range(T - 2, -1, -1):
        b = np.concatenate([beta[t + 1], [-np.inf, -np.inf]])
        beta[t] = lp[t] + _lse(b[:-2], b[1:-1], np.where(skip_next, b[2:], -np.inf))
    logz = float(_lse(alpha[T - 1, -1:], alpha[T - 1, -2:-1])[0]) if S > 1 else alpha[T - 1, 0]
    with np.errstate(invalid="ignore"):
        post = np.exp(alpha + beta - lp - logz) if np.isfinite(logz) else np.zeros((T, S))
    return {
        "ext": ext,
        "lp": lp,
        "alpha": alpha,
        "beta": beta,
        "loss": -logz,
        "post": post,
        "skip": skip,
    }


def _name(c: int, names: dict[int, str]) -> str:
    return names.get(c, str(c))


def _table(rows: list[str], values: np.ndarray, cell: str) -> list[str]:
    """Rows labelled on the left, one column per frame."""
    T = values.shape[1]
    lines = ["      " + "".join(f"{'t=' + str(t):>8}" for t in range(T))]
    for label, row in zip(rows, values, strict=True):
        lines.append(
            f"  {label:>3} "
            + "".join(cell.format(v) if np.isfinite(v) else f"{'-inf':>8}" for v in row)
        )
    return lines


def _shade(post: np.ndarray, rows: list[str]) -> list[str]:
    T = post.shape[1]
    lines = ["      " + "".join(f"{t % 10}" for t in range(T)) + "   (frame mod 10)"]
    for label, row in zip(rows, post, strict=True):
        idx = np.clip((row * (len(_SHADES) - 1)).round().astype(int), 0, len(_SHADES) - 1)
        lines.append(f"  {label:>3} " + "".join(_SHADES[i] for i in idx))
    return lines


def draw(lat: dict[str, Any], names: dict[int, str], path: str) -> None:
    """Heat maps of alpha (normalised per frame) and of the posterior, with the transitions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alpha, post, ext, skip = lat["alpha"], lat["post"], lat["ext"], lat["skip"]
    T, S = alpha.shape
    with np.errstate(invalid="ignore"):
        rel = alpha - np.max(np.where(np.isfinite(alpha), alpha, -np.inf), axis=1, keepdims=True)
    rel_t = np.ma.masked_invalid(rel.T)
    fig, axes = plt.subplots(1, 2, figsize=(2.0 + 1.2 * T, 1.0 + 0.55 * S), sharey=True)
    panels = (
        (axes[0], rel_t, "alpha[t, s] - max_s alpha[t, s] (log)", "viridis"),
        (axes[1], np.ma.masked_less_equal(post.T, 0.0), "posterior occupation", "magma"),
    )
    for ax, data, title, cmap in panels:
        im = ax.imshow(data, aspect="auto", origin="upper", cmap=cmap, interpolation="nearest")
        ax.set_facecolor("#d9d9d9")  # unreachable states
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(T))
        ax.set_xlabel("frame t")
        ax.set_yticks(range(S))
        ax.set_yticklabels([f"{s}: {_name(c, names)}" for s, c in enumerate(ext)])
        for t in range(T - 1):  # the allowed transitions out of reachable states
            for s in range(S):
                if not np.isfinite(alpha[t, s]):
                    continue
                for nxt in (s, s + 1, s + 2):
                    if nxt >= S or (nxt == s + 2 and not skip[nxt]):
                        continue
                    if np.isfinite(alpha[t + 1, nxt]) and np.isfinite(lat["beta"][t + 1, nxt]):
                        ax.plot([t, t + 1], [s, nxt], color="white", lw=0.6, alpha=0.7)
    axes[0].set_ylabel("extended label s")
    fig.suptitle(f"CTC lattice: loss = {lat['loss']:.6g}", fontsize=11)
    fig.savefig(path, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)


def explain_ctc(args: argparse.Namespace) -> int:
    """``losskit explain ctc [--labels 2,1,3] [--frames 8] [--classes 5] [--blank 0]
    [--logits ROWS] [--out FILE.png] [--json]``; 0 when the library, the lattice and
    finite differences agree, else 1 with the reason on stderr."""
    import losskit as lk

    ex = _options(args)
    x, labels, blank, names = ex["x"], ex["labels"], ex["blank"], ex["names"]
    T, C = x.shape
    lat = lattice(x, labels, blank)
    y = np.array([labels], dtype=np.int64).reshape(1, len(labels))

    fn = functools.partial(lk.ctc, blank=blank, reduction="sum")
    value, grad = lk.value_and_grad(fn)(x[None], y)
    value = float(value)
    grad = np.asarray(grad, dtype=np.float64).reshape(T, C)
    finite = np.isfinite(lat["loss"])
    same = bool(
        np.isclose(value, lat["loss"], rtol=1e-9, atol=0) if finite else value == lat["loss"]
    )
    fd = check_gradient(lambda v: float(fn(v[None], y)), x, grad)
    if ex["out"]:
        draw(lat, names, ex["out"])
    if getattr(args, "json", False):
        dump_json(
            {
                "loss": "ctc",
                "logits": x,
                "labels": labels,
                "blank": blank,
                "extended_labels": lat["ext"],
                "alpha": lat["alpha"],
                "posterior": lat["post"],
                "lattice_loss": lat["loss"],
                "value": value,
                "gradient": grad,
                "finite_differences": {
                    "gradient": [None if np.isnan(v) else float(v) for v in fd.estimate.ravel()],
                    "agrees": fd.agrees,
                },
                "agrees_with_library": same and fd.agrees,
                "png": ex["out"],
            }
        )
    else:
        _print(x, labels, blank, names, lat, value, grad, same, fd, ex["out"])
    if same and fd.agrees:
        return 0
    if not same:
        why = f"losskit.ctc gives {value:.9g}, the lattice {lat['loss']:.9g}"
    else:
        at = ", ".join(f"x[{i // C}, {i % C}]" for i in fd.differs)
        why = f"the library's gradient differs from finite differences of the loss at {at}"
    print(f"losskit explain: error: {why}", file=sys.stderr)
    return 1


def _print(
    x: np.ndarray,
    labels: list[int],
    blank: int,
    names: dict[int, str],
    lat: dict[str, Any],
    value: float,
    grad: np.ndarray,
    same: bool,
    fd: Any,
    out: str | None,
) -> None:
    T, C = x.shape
    ext = lat["ext"]
    rows = [_name(c, names) for c in ext]
    spelled = " ".join(_name(c, names) for c in labels) or "(nothing)"
    print(
        "ctc: connectionist temporal classification, the probability of the labels summed "
        "over every alignment"
    )
    print(f"  {T} frames, {C} classes, blank = {blank}; labels y = {labels} ({spelled})")
    print(
        f"  extended labels l' = blank, y_1, blank, ..., y_L, blank = {ext} "
        f"({' '.join(rows)}), S' = {len(ext)}"
    )
    print("  logits z (one row per frame):")
    for t in range(T):
        print(f"    t={t}: {fmt(x[t], 4)}")
    print(
        "  1. log-softmax of each frame, at the extended labels: "
        "lp[t, s] = z[t, l'_s] - logsumexp_c z[t, c]"
    )
    print("  2. forward table alpha[t, s] = lp[t, s] + log(e^alpha[t-1, s] + e^alpha[t-1, s-1]")
    print(
        "     + e^alpha[t-1, s-2] if l'_s is a label other than l'_(s-2)); "
        "alpha[0, s] = lp[0, s] for s < 2:"
    )
    for line in _table(rows, lat["alpha"].T, "{:>8.3f}"):
        print("    " + line)
    mark = "agrees" if same else "DIFFERS"
    print(f"  3. loss = -log(e^alpha[T-1, S'-1] + e^alpha[T-1, S'-2]) = {lat['loss']:.9g}")
    print(f"  losskit.ctc gives loss {value:.9g} ({mark})")
    print(
        "  posterior occupation e^(alpha + beta - lp) / p(y) of each state "
        f"(shade {_SHADES!r} = 0 .. 1):"
    )
    for line in _shade(lat["post"].T, rows):
        print("    " + line)
    print(
        "  gradient d loss / d z[t, c] = softmax(z[t])[c] - sum of the posterior of the "
        "states with l'_s = c:"
    )
    for t in range(T):
        print(f"    t={t}: {fmt(grad[t], 4)}")
    if fd.skipped:
        print(f"  finite differences: not taken ({fd.skipped})")
    else:
        err = float(np.nanmax(np.abs(fd.estimate - grad))) if fd.estimate.size else 0.0
        agree = "agree" if fd.agrees else "DIFFER"
        print(f"  central finite differences ({H_TEXT}) {agree}: largest difference {err:.2g}")
    if out:
        print(f"  picture of the lattice written to {out}")
