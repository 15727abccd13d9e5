"""Fused NumPy kernels (numba) for the softmax family.

Importing this package imports no numba: ``losskit.kernels.dispatch`` decides
whether an array takes a kernel (``use_kernel``) and forwards to the numba
modules, which are imported on the first call that needs one. The kernels
trust their inputs: the core validates, moves the class axis last and makes
the arrays C-contiguous before it calls them (see docs/INTERNALS.md).
"""
