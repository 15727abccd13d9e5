"""Sparse softmax cross-entropy: losskit vs PyTorch, JAX+optax, NumPy and the bandwidth floor.

Usage: ``python benchmarks/cross_entropy.py [--threads 1,2] [--shapes 8192x1000] [--json]``
(the same as ``losskit bench``). The logic lives in ``losskit.benchmark``.
"""

from __future__ import annotations

import sys

from losskit.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
