"""CTC: losskit vs PyTorch, JAX+optax and the bandwidth floor, fwd and fwd+bwd.

Usage: ``python benchmarks/ctc.py [--threads 1,2] [--shapes 500x16x1000x100] [--json]``
(the same as ``losskit bench ctc``). The logic lives in ``losskit.benchmark_ctc``.
"""

from __future__ import annotations

import sys

from losskit.benchmark_ctc import main

if __name__ == "__main__":
    sys.exit(main())
