"""Memory of the NumPy fast path, measured with tracemalloc (deterministic, unlike time).

NumPy reports its array allocations to tracemalloc, so the traced peak of a
call is what it allocated on top of its inputs. With logits of N x C:

- a loss allocates O(N) (per-row losses, coefficients), never an N x C temporary;
- ``value_and_grad`` allocates exactly one N x C array, the gradient, or none
  when the caller passes ``grad_out=`` (a separate buffer or the logits
  themselves);
- ``softmax`` / ``log_softmax`` allocate their N x C result and nothing more.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import losskit as lk
from losskit.kernels import dispatch

pytest.importorskip("numba")

N, C = 2048, 1024


def traced_peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes allocated at the peak of ``fn()``, above what was allocated before it."""
    fn()  # compile and warm up outside the trace
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base, result


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def data(request):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C)).astype(request.param)
    y = rng.integers(0, C, N)
    assert dispatch.use_kernel(x)
    return x, y


def one_array(x: np.ndarray) -> int:
    return x.size * x.itemsize


SMALL = 64 * N + 65536  # O(N): a handful of length-N float64 arrays and bookkeeping

SPARSE_OPTIONS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"label_smoothing": 0.1, "ignore_index": 3, "class_weight": "w"},
    {"sample_weight": "s"},
]


def options(kw: dict[str, Any], x: np.ndarray) -> dict[str, Any]:
    kw = dict(kw)
    if kw.get("class_weight") == "w":
        kw["class_weight"] = np.linspace(0.5, 2.0, C).astype(x.dtype)
    if kw.get("sample_weight") == "s":
        kw["sample_weight"] = np.linspace(0.0, 1.0, N).astype(x.dtype)
    return kw


@pytest.mark.parametrize("kw", SPARSE_OPTIONS)
def test_sparse_loss_allocates_o_n(data, kw):
    x, y = data
    kw = options(kw, x)
    peak, _ = traced_peak(lambda: lk.sparse_softmax_cross_entropy(x, y, **kw))
    assert peak < SMALL


@pytest.mark.parametrize("kw", SPARSE_OPTIONS)
def test_sparse_value_and_grad_allocates_exactly_the_gradient(data, kw):
    x, y = data
    kw = options(kw, x)
    vg = lk.value_and_grad(lk.sparse_softmax_cross_entropy)
    peak, (_, grad) = traced_peak(lambda: vg(x, y, **kw))
    assert grad.shape == x.shape and grad.dtype == x.dtype
    assert one_array(x) <= peak < one_array(x) + SMALL


@pytest.mark.parametrize("kw", SPARSE_OPTIONS)
def test_sparse_value_and_grad_into_grad_out_allocates_o_n(data, kw):
    x, y = data
    kw = options(kw, x)
    vg = lk.value_and_grad(lk.sparse_softmax_cross_entropy)
    buf = np.empty_like(x)
    peak, (_, grad) = traced_peak(lambda: vg(x, y, grad_out=buf, **kw))
    assert grad is buf
    assert peak < SMALL


def test_sparse_value_and_grad_in_place_allocates_o_n(data):
    x, y = data
    expected = lk.value_and_grad(lk.sparse_softmax_cross_entropy)(x, y)[1]
    vg = lk.value_and_grad(lk.sparse_softmax_cross_entropy)
    z = x.copy()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        _, grad = vg(z, y, grad_out=z)  # the logits become their gradient
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert grad is z
    assert peak < SMALL
    tol = 1e-6 if x.dtype == np.float32 else 1e-14
    np.testing.assert_allclose(z, expected, rtol=tol * 10, atol=tol / N)


def test_dense_loss_and_gradient_memory(data):
    x, _ = data
    t = np.full_like(x, 1.0 / C)
    peak, _ = traced_peak(lambda: lk.softmax_cross_entropy(x, t))
    assert peak < SMALL
    vg = lk.value_and_grad(lk.softmax_cross_entropy)
    peak, _ = traced_peak(lambda: vg(x, t))
    assert one_array(x) <= peak < one_array(x) + SMALL
    buf = np.empty_like(x)
    peak, _ = traced_peak(lambda: vg(x, t, grad_out=buf))
    assert peak < SMALL


def test_activations_allocate_only_their_result(data):
    x, _ = data
    peak, _ = traced_peak(lambda: lk.logsumexp(x, axis=-1))
    assert peak < SMALL
    for fn in (lk.softmax, lk.log_softmax):
        peak, out = traced_peak(lambda fn=fn: fn(x))
        assert out.shape == x.shape
        assert one_array(x) <= peak < one_array(x) + SMALL
