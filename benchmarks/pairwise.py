"""The batch-coupled pairwise losses, NT-Xent and Circle: losskit against optax, Keras and torch.

One process, one table: for each loss the forward time and the forward+backward
time (median of ``--repeats`` runs after a warm-up) of

- losskit on NumPy (``lk.ntxent`` / ``lk.value_and_grad(lk.ntxent)``: the analytic gradient),
- losskit on torch (the value, then ``.backward()``: torch autograd through the formula),
- losskit on JAX under ``jax.jit`` (``jax.value_and_grad``),
- the anchor framework: ``jax.jit`` of ``optax.ntxent`` (and of its ``jax.value_and_grad``);
  Keras 3's ``circle`` on the TensorFlow backend inside ``tf.function`` (a ``GradientTape``
  for the backward), the embeddings made unit length first (``tf.math.l2_normalize``)
  since Keras's circle does not normalise and the others do.  Keras picks its backend
  at import, so TensorFlow's backend is used here rather than JAX's in a second process;
- a torch reference: the formula written directly in torch (``F.normalize``, masked
  ``logsumexp``, ``softplus``), with autograd,

and the ratio of each time to the torch reference's.  Embeddings ``(N, D)`` float32,
labels ``arange(N) // 2`` (SimCLR's two views: one positive per anchor) for NT-Xent
and 64 classes for Circle.  Everything runs on the CPU with the libraries' default
thread counts.  Nothing is asserted.

    python benchmarks/pairwise.py                  # N = 4096, D = 256
    python benchmarks/pairwise.py --n 1024 --repeats 5
    python benchmarks/pairwise.py --threads 1 --clock cpu   # one thread each, CPU time
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported in main, after the thread settings
    import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

TEMPERATURE = 0.1
GAMMA, MARGIN = 80.0, 0.4
#: The largest (N, N, D) array optax's backward pass is allowed to build (its peak
#: memory is about four times that); larger and its fwd+bwd is not run.
OPTAX_BACKWARD_BYTES = 1.2e9


#: The clock: wall time, or the process's CPU time (``--clock cpu``), which a shared,
#: busy machine disturbs far less when every library runs one thread (``--threads 1``).
CLOCK = {"clock": time.perf_counter}


def timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    clock = CLOCK["clock"]
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


# --------------------------------------------------------------------------- torch references


def torch_ntxent(e: Any, y: Any, temperature: float) -> Any:
    """optax's NT-Xent (mean over positive pairs), written directly in torch."""
    import torch
    import torch.nn.functional as F

    u = F.normalize(e, dim=1)
    a = u @ u.T / temperature
    same = y[:, None] == y[None, :]
    eye = torch.eye(len(y), dtype=torch.bool)
    pos, neg = same & ~eye, ~same
    lse_neg = torch.logsumexp(a.masked_fill(~neg, -torch.inf), dim=1)
    pair = F.softplus(lse_neg[:, None] - a)
    return pair[pos].mean()


def torch_circle(e: Any, y: Any, gamma: float, margin: float) -> Any:
    """Sun et al.'s Circle loss per anchor (Keras's formula on unit vectors), mean, in torch."""
    import torch
    import torch.nn.functional as F

    u = F.normalize(e, dim=1)
    s = u @ u.T
    same = y[:, None] == y[None, :]
    eye = torch.eye(len(y), dtype=torch.bool)
    pos, neg = same & ~eye, ~same
    zp = -gamma * torch.clamp_min(1 + margin - s, 0) * (s - (1 - margin))
    zn = gamma * torch.clamp_min(s + margin, 0) * (s - margin)
    lp = torch.logsumexp(zp.masked_fill(~pos, -torch.inf), dim=1)
    ln = torch.logsumexp(zn.masked_fill(~neg, -torch.inf), dim=1)
    return F.softplus(lp + ln).mean()


# --------------------------------------------------------------------------- the rows


def rows_for(
    loss: str, e: np.ndarray, y: np.ndarray, repeats: int
) -> list[tuple[str, float, float]]:
    """``(implementation, forward s, forward+backward s)`` for ``loss``."""
    import jax
    import jax.numpy as jnp
    import torch

    import losskit as lk

    core = lk.ntxent if loss == "ntxent" else lk.circle
    opts = {"temperature": TEMPERATURE} if loss == "ntxent" else {"gamma": GAMMA, "margin": MARGIN}
    rows = []

    # losskit, NumPy, analytic gradient
    vg = lk.value_and_grad(core)
    rows.append(
        (
            "losskit NumPy (value_and_grad)",
            timed(lambda: core(e, y, **opts), repeats),
            timed(lambda: vg(e, y, **opts), repeats),
        )
    )

    # losskit, torch, autograd
    et, yt = torch.from_numpy(e), torch.from_numpy(y)

    def torch_fwd_bwd(fn: Callable[..., Any], *args: Any, **kw: Any) -> Callable[[], Any]:
        def run() -> Any:
            x = et.detach().requires_grad_(True)
            fn(x, *args, **kw).backward()
            return x.grad

        return run

    with torch.no_grad():
        fwd = timed(lambda: core(et, yt, **opts), repeats)
    rows.append(("losskit torch (autograd)", fwd, timed(torch_fwd_bwd(core, yt, **opts), repeats)))

    # losskit, JAX, jit
    ej, yj = jnp.asarray(e), jnp.asarray(y)
    f = jax.jit(lambda x: core(x, yj, **opts))
    g = jax.jit(jax.value_and_grad(lambda x: core(x, yj, **opts)))
    rows.append(
        (
            "losskit JAX (jax.jit)",
            timed(lambda: f(ej).block_until_ready(), repeats),
            timed(lambda: g(ej)[1].block_until_ready(), repeats),
        )
    )

    # the anchor framework
    if loss == "ntxent":
        import optax

        f = jax.jit(lambda x: optax.ntxent(x, yj, TEMPERATURE))
        g = jax.jit(jax.value_and_grad(lambda x: optax.ntxent(x, yj, TEMPERATURE)))
        # optax's cosine_similarity broadcasts to (N, N, D); XLA fuses that away in the
        # forward pass but its backward materialises it (several copies at once).
        broadcast = e.shape[0] ** 2 * e.shape[1] * e.itemsize
        both = math.nan
        if broadcast <= OPTAX_BACKWARD_BYTES:
            both = timed(lambda: g(ej)[1].block_until_ready(), repeats)
        rows.append(
            ("optax.ntxent (jax.jit)", timed(lambda: f(ej).block_until_ready(), repeats), both)
        )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import keras
            import tensorflow as tf

        ef, yf = tf.constant(e), tf.constant(y)

        @tf.function
        def kf(x: Any) -> Any:
            u = tf.math.l2_normalize(x, axis=1)
            return tf.reduce_mean(keras.losses.circle(yf, u, gamma=GAMMA, margin=MARGIN))

        @tf.function
        def kg(x: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = kf(x)
            return value, tape.gradient(value, x)

        rows.append(
            (
                "keras circle (TF, tf.function)",
                timed(lambda: kf(ef).numpy(), repeats),
                timed(lambda: kg(ef)[1].numpy(), repeats),
            )
        )

    # torch reference
    ref = torch_ntxent if loss == "ntxent" else torch_circle
    ref_opts = (TEMPERATURE,) if loss == "ntxent" else (GAMMA, MARGIN)
    with torch.no_grad():
        fwd = timed(lambda: ref(et, yt, *ref_opts), repeats)
    rows.append(
        ("torch reference (autograd)", fwd, timed(torch_fwd_bwd(ref, yt, *ref_opts), repeats))
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=0, help="threads for every library (0: their defaults)"
    )
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="cpu: the process's CPU time"
    )
    args = parser.parse_args()
    if args.clock == "cpu":
        CLOCK["clock"] = time.process_time
    if args.threads:
        # before the libraries start their pools: BLAS, XLA's Eigen, TensorFlow, torch
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
            if args.threads == 1
            else os.environ.get("XLA_FLAGS", "")
        )
        os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(
            args.threads
        )

    import jax
    import numpy as np

    jax.config.update("jax_platforms", "cpu")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    e = rng.normal(size=(args.n, args.d)).astype(np.float32)
    labels = {"ntxent": np.arange(args.n) // 2, "circle": rng.integers(0, 64, size=args.n)}
    print(
        f"N = {args.n}, D = {args.d}, float32, CPU ({os.cpu_count()} cores, torch "
        f"{torch.get_num_threads()} threads), {args.clock} clock, median of {args.repeats}"
    )
    header = (
        f"{'loss':7} {'implementation':34} {'fwd ms':>9} {'ratio':>6} "
        f"{'fwd+bwd ms':>11} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for loss, y in labels.items():
        rows = rows_for(loss, e, y.astype(np.int64), args.repeats)
        ref_fwd, ref_both = rows[-1][1], rows[-1][2]
        for name, fwd, both in rows:
            print(
                f"{loss:7} {name:34} {fwd * 1e3:9.1f} {fwd / ref_fwd:6.2f} "
                f"{both * 1e3:11.1f} {both / ref_both:6.2f}"
            )
    print("ratio: time / the torch reference's time (lower is faster)")
    if args.n**2 * args.d * 4 > OPTAX_BACKWARD_BYTES:
        gb = args.n**2 * args.d * 4 / 1e9
        print(
            f"nan: optax's backward materialises its (N, N, D) broadcast, {gb:.0f} GB "
            "per copy here; not run (try --n 1024)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
