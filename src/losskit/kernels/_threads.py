"""numba's threading layer for the kernels: safe in forked children and across threads.

numba picks its threading layer once, when the first parallel kernel runs.
Left to itself it takes TBB if it loads, else OpenMP, else its own
``workqueue``; the three differ in what a library may rely on:

==========  ====================================  =====================================
layer       fork (multiprocessing, DataLoader)    calls from several threads at once
==========  ====================================  =====================================
tbb         safe                                  safe
omp (GNU)   the forked child dies, the pool hangs  safe
workqueue   safe                                  aborts the process
==========  ====================================  =====================================

So the kernels ask for TBB. ``pip install tbb`` (a dependency on x86-64)
puts ``libtbb.so.12`` in ``<prefix>/lib``, which a virtual environment's
dynamic loader does not search (numba's own check then fails: "No threading
layer could be loaded"); ``_load_tbb`` loads it by its path from the
package's file list, after which numba finds it by name. Without a usable
TBB the choice is numba's own ``forksafe`` rule: OpenMP where it is not GNU's
(macOS, Windows), else ``workqueue``, and under ``workqueue`` every kernel
call holds one process-wide lock (``serial``), so concurrent calls wait for
each other instead of aborting.

Speed, measured on the shared 2-core Xeon with ``losskit bench``'s cases at 2
threads, TBB and GNU OpenMP in alternating processes (median of the per-run
ratios TBB / OpenMP): 0.98-1.02 at 65536 x 10, 0.84-0.99 at 8192 x 1000
(20 runs each), 0.97-1.02 at 4096 x 32000 and 1024 x 128256 (6 runs). An
empty parallel call costs about 2 us under either (workqueue: 22 us). With
other processes busy on the cores, OpenMP calls stalled for 5-20 ms where TBB
took well under 1 ms.

A user who chose a layer (``NUMBA_THREADING_LAYER``, its priority, or
``numba.config``) keeps it. So does a process where parallel numba code ran
before the first kernel call: the layer is fixed by then.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import sys
import threading
from typing import Any

# numba's own default (numba.core.config); anything else was the user's choice.
_NUMBA_DEFAULT_PRIORITY = ["tbb", "omp", "workqueue"]
# TBB 2021.6 (interface 12060) is the oldest numba's TBB layer accepts.
_MIN_TBB_INTERFACE = 12060

_layer: str | None = None
_init_lock = threading.Lock()
# Held around every kernel call when the layer is workqueue (see ``serial``).
_call_lock = threading.Lock()


def _reset_after_fork() -> None:
    # A thread of the parent may have held the lock at fork(); the child has only
    # the forking thread, so a lock inherited held would never be released.
    global _call_lock
    _call_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _tbb_soname() -> str:
    """The file name numba's TBB layer links against (numba/np/ufunc/parallel.py)."""
    if sys.platform.startswith("win"):
        return "tbb12.dll"
    if sys.platform == "darwin":
        return "libtbb.12.dylib"
    return "libtbb.so.12"


def open_library(path: str) -> Any:
    """``ctypes.CDLL(path)`` (a name or a path), or None where it does not load."""
    try:
        return ctypes.CDLL(path)
    except OSError:
        return None


def _load_tbb() -> bool:
    """Load a TBB that numba's layer accepts; True if one is loaded now.

    First by name (conda, a system TBB, or ``LD_LIBRARY_PATH``), then by the
    path the ``tbb`` wheel installed it at. Once loaded, numba's ``tbbpool``
    resolves the same name to it (the loader matches loaded libraries by name).
    """
    name = _tbb_soname()
    lib = open_library(name)
    if lib is None:
        from importlib import metadata

        try:
            files = metadata.distribution("tbb").files or []
        except metadata.PackageNotFoundError:
            files = []
        for f in files:
            if f.name == name:
                lib = open_library(str(f.locate()))
                if lib is not None:
                    break
    if lib is None:
        return False
    try:
        version = lib.TBB_runtime_interface_version
    except AttributeError:
        return False
    version.argtypes = []
    version.restype = ctypes.c_int
    # An older TBB would make numba warn and fall back; do not ask for it then.
    return int(version()) >= _MIN_TBB_INTERFACE


def _can_import(module: str) -> bool:
    """Whether numba's extension ``module`` loads (it fails where its library is missing)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _numba_config() -> Any:
    """numba's configuration module (its settings are set at run time: typed Any)."""
    return importlib.import_module("numba.core.config")


def _choose() -> str | None:
    """The layer to ask numba for, or None to leave numba's configuration alone."""
    from numba.np.ufunc import parallel

    config = _numba_config()
    if getattr(parallel, "_is_initialized", False):
        return None  # threads already run: the layer is fixed
    # Loaded whatever the choice: a user's NUMBA_THREADING_LAYER=tbb needs it as much.
    have_tbb = _load_tbb()
    if "NUMBA_THREADING_LAYER" in os.environ or config.THREADING_LAYER != "default":
        return None  # NUMBA_THREADING_LAYER or numba.config.THREADING_LAYER: the user's
    priority = list(config.THREADING_LAYER_PRIORITY)
    if "NUMBA_THREADING_LAYER_PRIORITY" in os.environ or priority != _NUMBA_DEFAULT_PRIORITY:
        return None  # the user ordered the layers
    if have_tbb and _can_import("numba.np.ufunc.tbbpool"):
        return "tbb"
    if not sys.platform.startswith("linux") and _can_import("numba.np.ufunc.omppool"):
        return "omp"  # Intel's or LLVM's OpenMP: fork-safe (numba's "forksafe" rule)
    return "workqueue"  # fork-safe; concurrent calls are serialised by ``serial``


def ensure() -> str:
    """Choose the threading layer (once, before any kernel runs) and start numba's threads.

    Returns the layer numba runs: ``"tbb"``, ``"omp"`` or ``"workqueue"``.
    """
    global _layer
    if _layer is not None:
        return _layer
    with _init_lock:
        if _layer is None:
            import numba

            choice = _choose()
            if choice is not None:
                _numba_config().THREADING_LAYER = choice
            numba.get_num_threads()  # launches the threads with that layer
            _layer = str(numba.threading_layer())
    return _layer


_NO_LOCK = contextlib.nullcontext()


def serial() -> contextlib.AbstractContextManager[Any]:
    """A context to run one kernel call in: the process-wide kernel lock under
    workqueue (which aborts on concurrent use), nothing under TBB or OpenMP."""
    return _call_lock if ensure() == "workqueue" else _NO_LOCK
