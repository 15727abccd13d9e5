"""The OpenMP threads of torch's BLAS, to run a kernel between two of its products.

On CPU torch's matrix products run on GNU OpenMP threads (MKL's GNU-threaded
build, or oneDNN's OpenMP build). After every parallel region those threads
spin, waiting for more work, for a few milliseconds (measured on the 2-core
Xeon: 3-4 ms after a 316 x 1024 x 32000 product) before they sleep. A numba
kernel that runs right after a product on numba's own threads (TBB) shares the
other core with a spinning thread and runs no faster than one thread: the row
pass of a 316 x 32000 chunk of the fused linear cross-entropy took 9.2 ms on two
TBB threads against 9.1 ms on one, and 4.5 ms when handed to the spinning
threads themselves through ``GOMP_parallel``, which is what this module does.

``torch_team()`` gives that runtime when it can be used safely, else None (the
caller then runs its kernel on one thread):

- Linux only, torch's parallel backend OpenMP, and a ``libgomp`` from torch's
  own ``lib`` directory already loaded in this process (this module never
  loads a second OpenMP runtime);
- not in a forked child (of a process that had imported losskit): GNU
  OpenMP's threads do not survive ``fork``, and a parallel region in the
  child would hang if the parent had started them (torch's own products hang
  there too unless the child sets one thread, as DataLoader workers do; this
  module must not add a hang where torch has none, e.g. where the child's
  products are small enough to run on one thread).

The function run on the team is a numba ``cfunc`` taking one ``void *``
(``GOMP_parallel(fn, data, threads, 0)`` calls ``fn(data)`` on every thread of
the team, the calling thread included, and returns when all have returned).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import Any

from ._threads import open_library

_lock = threading.Lock()
_team: OmpTeam | None = None
_looked = False
_forked = False


def _after_fork_in_child() -> None:
    # The parent's OpenMP threads are not in the child. (The module is imported with
    # losskit, so this runs in every child forked after ``import losskit``.)
    global _forked, _lock
    _forked = True
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class OmpTeam:
    """``GOMP_parallel`` of one loaded GNU OpenMP runtime."""

    def __init__(self, parallel: Any) -> None:
        self._parallel = parallel

    def run(self, fn_address: int, data_address: int, threads: int) -> None:
        """``fn(data)`` on ``threads`` threads (the caller's included); returns when all are done.

        ctypes releases the GIL for the call: the function must not touch Python objects.
        """
        self._parallel(fn_address, data_address, threads, 0)


def _loaded_libgomp(lib_dir: str) -> str | None:
    """The path of a ``libgomp*`` in ``lib_dir`` that this process has mapped, else None."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if os.path.basename(path).startswith("libgomp") and (
                    os.path.dirname(os.path.realpath(path)) == os.path.realpath(lib_dir)
                ):
                    return path
    except OSError:
        return None
    return None


def _find() -> OmpTeam | None:
    if not sys.platform.startswith("linux"):
        return None
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if torch.__file__ is None or "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    path = _loaded_libgomp(os.path.join(os.path.dirname(torch.__file__), "lib"))
    if path is None:
        return None
    lib = open_library(path)  # already loaded: the same handle, no second runtime
    parallel = getattr(lib, "GOMP_parallel", None)  # GCC >= 4.9
    if parallel is None:
        return None
    parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    parallel.restype = None
    return OmpTeam(parallel)


def torch_team() -> OmpTeam | None:
    """torch's OpenMP runtime where a kernel may run on its threads (see the module), else None."""
    global _team, _looked
    if _forked:
        return None
    if not _looked:
        with _lock:
            if not _looked:
                _team = _find()
                _looked = True
    return _team
