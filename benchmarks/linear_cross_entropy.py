"""Fused linear cross-entropy: losskit vs PyTorch (naive and 2.13's chunked) and the product floor.

Usage: ``python benchmarks/linear_cross_entropy.py [--shapes 4096x1024x32000] [--threads 2]
[--repeats 3] [--no-memory] [--json]`` (the same as ``losskit bench linear``). The logic
lives in ``losskit.benchmark_linear``.
"""

from __future__ import annotations

import sys

from losskit.benchmark_linear import main

if __name__ == "__main__":
    sys.exit(main())
