"""Fused linear cross-entropy speed and memory: losskit against PyTorch and the product floor.

For each shape N x D x V (float32 hidden states ``(N, D)``, weight ``(V, D)``,
int64 labels), fwd+bwd of the mean loss, i.e. the loss and the gradients of
``hidden`` and ``weight``:

- ``losskit numpy``: ``value_and_grad(linear_cross_entropy)`` on NumPy arrays;
- ``losskit torch``: ``linear_cross_entropy`` on torch tensors, ``loss.backward()``;
- ``torch naive``: ``F.cross_entropy(h @ W.T, y)``, ``loss.backward()``;
- ``torch chunked``: PyTorch's ``F.linear_cross_entropy(h, W, y,
  options=nn.LinearCrossEntropyOptions())``, ``loss.backward()``;
- ``floor``: the three matrix products any fwd+bwd must do (``h Wᵀ``, ``G W``,
  ``Gᵀ h``) timed alone into preallocated outputs, for each library with its
  own BLAS (NumPy: OpenBLAS; torch: MKL/oneDNN), each in two forms: full size
  (one N x V matrix) and in the chunks and product forms the fused loss uses
  (``large_vocab``'s default rows for that library; for NumPy from
  ``large_vocab._FUSED_MIN_V`` classes, ``h W_bᵀ`` and ``E_b W_b`` per
  vocabulary block, as its fused chunk). A library's floor is its
  faster form; each method is compared with the floor of the BLAS it runs on
  (the NumPy path against NumPy's, the torch methods against torch's), since
  a NumPy path cannot beat another library's BLAS, and with torch's floor.
  The forms are timed interleaved, so a busy moment hits each alike.

Every method runs in a fresh child process with the thread count set before
any library loads (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS``, ``NUMBA_NUM_THREADS`` and ``torch.set_num_threads``).
The child builds the inputs, warms up on a small shape (libraries, JIT), then
measures memory on the first full-size call: the peak resident set
(``VmHWM`` from ``/proc/self/status``, reset through ``/proc/self/clear_refs``
just before the call) minus the resident set just before it, i.e. the peak
above the steady state (inputs loaded). The table shows that peak and the
peak less the returned gradients (``N D + V D`` floats), the figure the
memory targets speak of. Times are the best of ``--repeats`` further calls (on a
shared machine other processes only ever add time).

Run ``python benchmarks/linear_cross_entropy.py`` or ``losskit bench linear``;
``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_SHAPES = ((4096, 1024, 32000), (2048, 2048, 128256), (8192, 256, 32000))
METHODS = ("floor", "losskit numpy", "losskit torch", "torch naive", "torch chunked")
_MiB = 1 << 20


def _parse_shapes(text: str) -> list[tuple[int, int, int]]:
    shapes = []
    for part in text.split(","):
        dims = part.strip().lower().split("x")
        if len(dims) != 3 or not all(d.isdigit() and int(d) > 0 for d in dims):
            msg = f"shapes are NxDxV separated by commas, e.g. 4096x1024x32000; got {part!r}"
            raise argparse.ArgumentTypeError(msg)
        shapes.append((int(dims[0]), int(dims[1]), int(dims[2])))
    return shapes


def _parse_methods(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    for m in names:
        if m not in METHODS:
            msg = f"methods are among {', '.join(METHODS)}; got {m!r}"
            raise argparse.ArgumentTypeError(msg)
    return names


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- the child


def _inputs(n: int, d: int, v: int, seed: int = 0) -> tuple[Any, Any, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n, d), dtype=np.float32)
    w = rng.standard_normal((v, d), dtype=np.float32)
    w *= np.float32(1.0 / np.sqrt(d))
    y = rng.integers(0, v, n)
    return h, w, y


def _method(name: str, n: int, d: int, v: int) -> tuple[Callable[[], Any], Callable[[], None]]:
    """(one fwd+bwd call returning what it keeps alive, cleanup) on fresh inputs."""

    h, w, y = _inputs(n, d, v)
    if name == "losskit numpy":
        import losskit as lk

        vg = lk.value_and_grad(lk.linear_cross_entropy)
        return (lambda: vg(h, w, y)), (lambda: None)
    import torch

    th = torch.from_numpy(h).requires_grad_()
    tw = torch.from_numpy(w).requires_grad_()
    ty = torch.from_numpy(y)

    def clear() -> None:
        th.grad = None
        tw.grad = None

    if name == "floor":
        return (lambda: _floors(h, w, th, tw)), (lambda: None)
    if name == "losskit torch":
        import losskit as lk

        def run() -> Any:
            clear()
            lk.linear_cross_entropy(th, tw, ty).backward()
            return th.grad, tw.grad

        return run, clear
    if name == "torch naive":

        def run() -> Any:
            clear()
            torch.nn.functional.cross_entropy(th @ tw.T, ty).backward()
            return th.grad, tw.grad

        return run, clear
    if name == "torch chunked":
        options = torch.nn.LinearCrossEntropyOptions()

        def run() -> Any:
            clear()
            torch.nn.functional.linear_cross_entropy(th, tw, ty, options=options).backward()
            return th.grad, tw.grad

        return run, clear
    raise ValueError(name)


def _floors(h: Any, w: Any, th: Any, tw: Any) -> dict[str, Callable[[], None]]:
    """The three products, by NumPy and by torch, full size and in the loss's chunks."""
    import numpy as np
    import torch

    from .losses import large_vocab as lv

    n, d = h.shape
    v = w.shape[0]
    z = np.empty((n, v), dtype=np.float32)
    dh = np.empty((n, d), dtype=np.float32)
    dw = np.zeros((v, d), dtype=np.float32)
    zt, dht, dwt = torch.from_numpy(z), torch.from_numpy(dh), torch.from_numpy(dw)
    hd, wd = th.detach(), tw.detach()
    rows_np = lv.chunk_rows(n, v, 4, None, None, default_bytes=lv.NUMPY_CHUNK_BYTES)
    rows_torch = lv.chunk_rows(n, v, 4, None, None)

    def numpy_full() -> None:
        np.matmul(h, w.T, out=z)
        np.matmul(z, w, out=dh)
        np.matmul(z.T, h, out=dw)

    def torch_full() -> None:
        torch.matmul(hd, wd.T, out=zt)
        torch.matmul(zt, wd, out=dht)
        torch.matmul(zt.T, hd, out=dwt)

    def chunked(products: Any, rows: int) -> Callable[[], None]:
        buf = z[:rows]  # a chunk of logits (the full-size buffer's first rows)
        if products.fused_ok and v >= lv._FUSED_MIN_V:
            return fused(products, rows, buf)

        def run() -> None:
            for i0 in range(0, n, rows):
                i1 = min(n, i0 + rows)
                zc = buf[: i1 - i0]
                products.logits(i0, i1, zc)
                products.d_hidden(zc, dh[i0:i1])
                products.d_weight(zc, i0, i1, dw, i0 == 0)

        return run

    def fused(products: Any, rows: int, buf: Any) -> Callable[[], None]:
        """The loss's fused chunk (``large_vocab._fused_chunks``), its products alone:
        per vocabulary block ``Z_b = H W_bᵀ`` and ``acc += E_b W_b``, then ``Gᵀ H``."""
        step = products.fused_block
        e = np.zeros((rows, step), dtype=np.float32)  # stands for exp(Z_b - m)
        acc = np.empty((rows, d), dtype=np.float32)

        def run() -> None:
            for i0 in range(0, n, rows):
                i1 = min(n, i0 + rows)
                zc = buf[: i1 - i0]
                for v0 in range(0, v, step):
                    v1 = min(v, v0 + step)
                    products.logits_block(i0, i1, v0, v1, zc)
                    eb = e.reshape(-1)[: (i1 - i0) * (v1 - v0)].reshape(i1 - i0, v1 - v0)
                    products.acc_block(eb, v0, v1, acc[: i1 - i0], v0 == 0)
                products.d_weight(zc, i0, i1, dw, i0 == 0)

        return run

    return {
        "numpy_full_s": numpy_full,
        "numpy_chunked_s": chunked(lv._NumpyProducts(h, w, rows_np), rows_np),
        "torch_full_s": torch_full,
        "torch_chunked_s": chunked(lv._TorchProducts(hd, wd), rows_torch),
    }


def _child(name: str, n: int, d: int, v: int, repeats: int, threads: int, memory: bool) -> dict:
    import numpy as np

    if name != "losskit numpy" or "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
    # warm-up on a small shape: libraries load, numba compiles (or loads its cache)
    small, _ = _method(name, 256, min(d, 64), min(v, 4096))
    first = small()
    if name == "floor":
        for fn in first.values():
            fn()
    del first, small
    run, cleanup = _method(name, n, d, v)
    out: dict[str, Any] = {"method": name, "shape": [n, d, v], "threads": threads}
    if name == "floor":
        forms = run()
        per_form: dict[str, list[float]] = {k: [] for k in forms}
        for fn in forms.values():
            fn()
        for _ in range(repeats):  # interleaved: a busy moment hits every form alike
            for k, fn in forms.items():
                per_form[k].append(_timed(fn))
        out.update({k: min(t) for k, t in per_form.items()})
        out["numpy_s"] = min(out["numpy_full_s"], out["numpy_chunked_s"])
        out["torch_s"] = min(out["torch_full_s"], out["torch_chunked_s"])
        out["seconds"] = min(out["numpy_s"], out["torch_s"])
        return out
    if memory:
        gc.collect()
        base = _status_kib("VmRSS")
        if not _reset_peak():
            base = _status_kib("VmHWM")
        t0 = time.perf_counter()
        kept = run()
        out["first_s"] = time.perf_counter() - t0
        out["peak_mib"] = (_status_kib("VmHWM") - base) / 1024
        del kept
        cleanup()
        gc.collect()
    else:
        run()  # warm-up at full size
        cleanup()
    times = []
    for _ in range(repeats):
        times.append(_timed(run))
        cleanup()
    out["seconds"] = min(times)
    out["all_s"] = times
    out["grads_mib"] = (n * d + v * d) * np.dtype(np.float32).itemsize / _MiB
    return out


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    kept = fn()
    t = time.perf_counter() - t0
    del kept
    return t


def _spawn(name: str, shape: tuple[int, int, int], args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(args.threads)
    cmd = [sys.executable, "-m", "losskit.benchmark_linear", "--child", name]
    cmd += ["--shapes", "x".join(map(str, shape)), "--repeats", str(args.repeats)]
    cmd += ["--threads", str(args.threads)] + ([] if args.memory else ["--no-memory"])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"method": name, "shape": list(shape), "error": " | ".join(tail)}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- the table


def _fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _seconds(rows: dict[str, dict], name: str) -> float | None:
    r = rows.get(name)
    return None if r is None or "error" in r else r.get("seconds")


def table(results: Sequence[dict]) -> str:
    """The results as a Markdown table, one row per shape and method.

    ``/ floor``: the time over the floor of the method's own BLAS (NumPy's for the
    NumPy path, torch's for the torch methods); ``/ torch floor``: over torch's
    floor, for every method (the fastest products on this machine).
    """
    lines = [
        "| N x D x V | method | fwd+bwd (s) | / own floor | / torch floor | vs torch naive "
        "| vs torch chunked | peak above steady (MB) | less gradients (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_shape: dict[tuple[int, ...], dict[str, dict]] = {}
    for r in results:
        by_shape.setdefault(tuple(r["shape"]), {})[r["method"]] = r
    for shape, rows in by_shape.items():
        naive, chunked = (_seconds(rows, m) for m in ("torch naive", "torch chunked"))
        fl = rows.get("floor")
        floors = {} if fl is None or "error" in fl else fl
        for name in METHODS:
            if name not in rows:
                continue
            r = rows[name]
            label = "x".join(map(str, shape))
            if "error" in r:
                lines.append(f"| {label} | {name} | error: {r['error'][:60]} | | | | | | |")
                continue
            t = r["seconds"]
            if name == "floor":
                for lib in ("numpy", "torch"):
                    detail = ", ".join(
                        f"{form} {r[f'{lib}_{form}_s']:.2f}"
                        for form in ("full", "chunked")
                        if f"{lib}_{form}_s" in r
                    )
                    ratio = f"{r[f'{lib}_s'] / r['torch_s']:.2f}"
                    lines.append(
                        f"| {label} | {lib} floor ({detail}) | {r[f'{lib}_s']:.2f} "
                        f"| 1.00 | {ratio} | | | | |"
                    )
                continue
            own = floors.get("numpy_s" if name == "losskit numpy" else "torch_s")
            tfl = floors.get("torch_s")
            ratio = f"{t / own:.2f}" if own else "-"
            ratio_t = f"{t / tfl:.2f}" if tfl else "-"
            vs_naive = f"{naive / t:.2f}x" if naive else "-"
            vs_chunk = f"{chunked / t:.2f}x" if chunked else "-"
            peak = r.get("peak_mib")
            mem = "-" if peak is None else f"{peak * _MiB / 1e6:.0f}"
            less = "-" if peak is None else f"{(peak - r['grads_mib']) * _MiB / 1e6:.0f}"
            lines.append(
                f"| {label} | {name} | {t:.2f} | {ratio} | {ratio_t} | {vs_naive} | {vs_chunk} "
                f"| {mem} | {less} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="losskit bench linear",
        description="Fused linear cross-entropy fwd+bwd time and peak memory (float32).",
    )
    parser.add_argument(
        "--shapes",
        type=_parse_shapes,
        default=list(DEFAULT_SHAPES),
        help="NxDxV,... (default: 4096x1024x32000,2048x2048x128256,8192x256x32000)",
    )
    parser.add_argument("--methods", type=_parse_methods, default=list(METHODS))
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per method")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip the memory measurement"
    )
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be at least 1")
    if args.child:
        n, d, v = args.shapes[0]
        out = _child(args.child, n, d, v, args.repeats, args.threads, args.memory)
        print(json.dumps(out))
        return 0
    results = []
    for shape in args.shapes:
        for name in args.methods:
            r = _spawn(name, shape, args)
            results.append(r)
            if "error" in r:
                print(f"{'x'.join(map(str, shape))} {name}: {r['error']}", file=sys.stderr)
            else:
                print(f"{'x'.join(map(str, shape))} {name}: {r['seconds']:.3f} s", file=sys.stderr)
    print(json.dumps(results, indent=1) if args.json else table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
