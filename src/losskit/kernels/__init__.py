"""Fused NumPy kernels (numba) for the softmax family.

Importing this package imports no numba: ``losskit.kernels.dispatch`` decides
whether an array takes a kernel (``use_kernel``) and forwards to the numba
modules, which are imported on the first call that needs one. The kernels
trust their inputs: the core validates, moves the class axis last and makes
the arrays C-contiguous before it calls them (see docs/INTERNALS.md).

Files, one idea each: ``_primitives`` (vectorisable exp, log, max as numba
intrinsics), ``_rowpass`` (one row: blocked online max and sum), ``_softmax``
(row-wise activations), ``_sparse`` and ``_dense`` (the cross-entropies, loss
and fused gradient), ``_tiled`` (the small-C loop shape), ``_threads``
(numba's threading layer: TBB, so that forked processes and concurrent calls
from several threads are safe; chosen before the first kernel runs), ``_ctc``
(CTC), ``_linear`` (a fused linear cross-entropy chunk's row pass),
``_omp_team`` and ``_linear_team`` (that row pass on the OpenMP threads of
torch's BLAS, which spin between its products).

The kernels are compiled on first use (seconds) and cached by numba
(``cache=True``, in ``__pycache__``). numba keys a cached function on its own
source file only: after editing ``_primitives.py``, ``_rowpass.py`` or
``_linear.py`` (whose row code ``_linear_team`` compiles in) in a checkout,
delete ``__pycache__/*.nbi`` and ``*.nbc`` here, or the kernels that use them
keep the old code. (An installed upgrade rewrites every file, which
invalidates the cache.)
"""
