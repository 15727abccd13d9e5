"""Vocabulary-parallel cross-entropy: losskit vs gathered logits and DTensor's loss_parallel.

Usage: ``python benchmarks/vocab_parallel.py [--shapes 4096x32000 512x2048x128256] [--nproc 2]``
(the same as ``losskit bench vocab-parallel``). The logic lives in
``losskit.benchmark_vocab_parallel``.
"""

from __future__ import annotations

import sys

from losskit.benchmark_vocab_parallel import main

if __name__ == "__main__":
    sys.exit(main())
