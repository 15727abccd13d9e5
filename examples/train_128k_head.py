"""Train a toy causal LM with a 128k-word vocabulary on CPU, with and without the logits.

Each path runs in a fresh child process (so that one's memory does not count in
the other's) and trains the same randomly initialised Llama-style model on the
same random tokens for a few AdamW steps:

- ``model``: transformers' own ``model(input_ids, labels=labels).loss``, which
  builds the ``tokens x 128256`` logits and their gradient;
- ``losskit``: :func:`losskit.integrations.transformers.causal_lm_loss`, the fused
  linear cross-entropy over chunks of tokens, never holding the logits.

It prints the loss per step of each path (they agree) and the peak resident memory
above the memory held after building the model and the batch (Linux
``VmHWM``, the high-water mark, reset before training).

Usage: ``python examples/train_128k_head.py [--steps 4] [--tokens 1024] [--hidden 64]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

VOCAB = 128256


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def child(path: str, steps: int, tokens: int, hidden: int) -> dict[str, object]:
    import torch
    import transformers

    from losskit.integrations.transformers import causal_lm_loss

    torch.manual_seed(0)
    torch.set_num_threads(2)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
    )
    model = transformers.LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = 4
    ids = torch.randint(0, VOCAB, (batch, tokens // batch))
    # one step first so that AdamW's state and the gradients exist in the steady state
    losses: list[float] = []

    def step() -> None:
        optimizer.zero_grad(set_to_none=False)
        if path == "model":
            loss = model(input_ids=ids, labels=ids).loss
        else:
            loss = causal_lm_loss(model, ids, ids)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))

    step()
    steady = _rss_mb("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return {
        "path": path,
        "losses": losses,
        "peak_above_steady_mb": _rss_mb("VmHWM") - steady,
        "seconds_per_step": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=1024, help="tokens per step (4 sequences)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--child", choices=["model", "losskit"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.tokens, args.hidden)))
        return 0
    rows = []
    for path in ("model", "losskit"):
        cmd = [sys.executable, __file__, "--child", path]
        cmd += ["--steps", str(args.steps), "--tokens", str(args.tokens)]
        cmd += ["--hidden", str(args.hidden)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"vocabulary {VOCAB}, {args.tokens} tokens per step, hidden size {args.hidden}")
    print(f"{'path':<9} {'peak MB above steady':>21} {'s/step':>7}  loss per step")
    for row in rows:
        losses = " ".join(f"{v:.4f}" for v in row["losses"])
        print(
            f"{row['path']:<9} {row['peak_above_steady_mb']:>21.0f} "
            f"{row['seconds_per_step']:>7.2f}  {losses}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
