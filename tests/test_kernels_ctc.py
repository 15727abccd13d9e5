"""The fused CTC kernel (``losskit.kernels._ctc.ctc_loss_and_grad``) against independent references.

References, both float64 and written here from the definition (Graves et al. 2006):

- ``brute_force``: every path of C^T classes, collapsed (repeats merged, blanks
  dropped), its probability summed where it spells the labels; the gradient is
  softmax minus the probability-weighted class occupation of those paths.
- ``forward_backward``: the textbook log-space alpha and beta recursions in
  NumPy, vectorised over the extended labels, frame by frame.

and PyTorch's ``F.ctc_loss`` with autograd through ``log_softmax`` where torch
is installed. The kernel trusts its inputs (the core validates them), so
nothing here is bad input; the cases are the ones the lattice has edges at.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("numba")

from losskit.kernels import _ctc as ctc_kernel
from losskit.kernels._ctc import ctc_loss_and_grad, last_paths, tilt

TOL = {  # (loss rtol, gradient atol): a float32 gradient is rounded to float32
    np.float32: (1e-5, 2e-6),
    np.float64: (1e-12, 1e-12),
}


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def brute_force(x: np.ndarray, lab: list[int], blank: int) -> tuple[float, np.ndarray]:
    """-log p(lab | x) and its gradient by enumerating every path (float64, tiny T and C)."""
    T, C = x.shape
    lsm = log_softmax(x.astype(np.float64))
    total = 0.0
    occ = np.zeros((T, C))
    for path in itertools.product(range(C), repeat=T):
        spelled = [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]
        if spelled == list(lab):
            pr = np.exp(sum(lsm[t, c] for t, c in enumerate(path)))
            total += pr
            occ[np.arange(T), list(path)] += pr
    if total == 0.0:
        return np.inf, np.zeros((T, C))
    return -np.log(total), np.exp(lsm) - occ / total


def _lse(*terms: np.ndarray) -> np.ndarray:
    m = np.maximum.reduce(terms)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return safe + np.log(sum(np.exp(t - safe) for t in terms))


def forward_backward(x: np.ndarray, lab: list[int], blank: int) -> tuple[float, np.ndarray]:
    """-log p(lab | x) and its gradient by the log-space recursions (float64), any T >= 1."""
    T, C = x.shape
    lsm = log_softmax(x.astype(np.float64))
    ext = [blank]
    for c in lab:
        ext += [c, blank]
    S = len(ext)
    lp = lsm[:, ext]
    skip = np.array([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(S)])
    alpha = np.full((T, S), -np.inf)
    beta = np.full((T, S), -np.inf)  # includes frame t's emission
    alpha[0, : min(2, S)] = lp[0, : min(2, S)]
    for t in range(1, T):
        a = np.concatenate([[-np.inf, -np.inf], alpha[t - 1]])  # a[s + 2]: state s
        alpha[t] = lp[t] + _lse(a[2:], a[1:-1], np.where(skip, a[:-2], -np.inf))
    beta[T - 1, max(S - 2, 0) :] = lp[T - 1, max(S - 2, 0) :]
    skip_next = np.append(skip, [False, False])[2:]  # s -> s + 2 allowed
    for t in range(T - 2, -1, -1):
        b = np.concatenate([beta[t + 1], [-np.inf, -np.inf]])  # b[s]: state s
        beta[t] = lp[t] + _lse(b[:-2], b[1:-1], np.where(skip_next, b[2:], -np.inf))
    logz = _lse(alpha[T - 1, -1:], alpha[T - 1, -2:-1])[0] if S > 1 else alpha[T - 1, 0]
    if logz == -np.inf:
        return np.inf, np.zeros((T, C))
    post = np.exp(alpha + beta - lp - logz)
    occ = np.zeros((T, C))
    for s, c in enumerate(ext):
        occ[:, c] += post[:, s]
    return -logz, np.exp(lsm) - occ


def batch(
    cases: list[tuple[np.ndarray, list[int]]], dtype, *, pad_t: int = 0, pad_s: int = 0, seed=0
):
    """Pad (x_n (T_n, C), labels_n) into the kernel's arrays; padding holds junk that must
    not be read: NaN logits past the frames, valid but wrong class ids past the labels."""
    rng = np.random.default_rng(seed)
    C = cases[0][0].shape[1]
    T = max(x.shape[0] for x, _ in cases) + pad_t
    S = max([len(lab) for _, lab in cases] + [1]) + pad_s
    x = np.full((len(cases), T, C), np.nan, dtype=dtype)
    labels = rng.integers(0, C, (len(cases), S)).astype(np.int64)
    for n, (xn, lab) in enumerate(cases):
        x[n, : xn.shape[0]] = xn
        labels[n, : len(lab)] = lab
    tl = np.array([xn.shape[0] for xn, _ in cases], dtype=np.int64)
    ll = np.array([len(lab) for _, lab in cases], dtype=np.int64)
    return x, labels, tl, ll


def reference(cases, blank, dtype, shape, ref=forward_backward):
    """Per-example nll and the gradient of sum(nll), (N, T, C) ``shape`` (padded)."""
    g = np.zeros(shape)
    nll = np.empty(len(cases))
    for n, (xn, lab) in enumerate(cases):
        if xn.shape[0] == 0:
            nll[n] = 0.0 if len(lab) == 0 else np.inf
            continue
        nll[n], g[n, : xn.shape[0]] = ref(xn.astype(dtype).astype(np.float64), lab, blank)
    return nll, g


def random_labels(rng, L: int, C: int, blank: int, repeat: float = 0.0) -> list[int]:
    ids = [c for c in range(C) if c != blank]
    lab: list[int] = []
    for _ in range(L):
        if lab and rng.random() < repeat:
            lab.append(lab[-1])
        else:
            lab.append(int(rng.choice(ids)))
    return lab


def check(cases, blank, dtype, *, ref=forward_backward, scale=None, ref_atol=0.0, **pad):
    x, labels, tl, ll = batch(cases, dtype, **pad)
    gs = np.ones(len(cases)) if scale is None else np.asarray(scale, dtype=np.float64)
    nll, g = ctc_loss_and_grad(x, labels, tl, ll, blank, grad_scale=gs)
    nll_fwd, none = ctc_loss_and_grad(x, labels, tl, ll, blank)
    want, dwant = reference(cases, blank, dtype, x.shape, ref)
    rtol, atol = TOL[dtype]
    # The float64 reference's log-softmax rounds at the logits' scale (2.2e-16 |x| per
    # term, a few terms per posterior): at |x| = 1e4 its gradient is good to about 1e-11.
    xmax = max(float(np.abs(xn).max(initial=0.0)) for xn, _ in cases)
    atol = max(atol, ref_atol, 4e-15 * xmax)
    assert none is None
    assert nll.dtype == np.float64 and g.dtype == dtype and g.shape == x.shape
    np.testing.assert_allclose(nll, want, rtol=rtol, atol=0)
    np.testing.assert_array_equal(nll_fwd, nll)  # the forward pass alone: the same numbers
    np.testing.assert_allclose(g, gs[:, None, None] * dwant, rtol=rtol, atol=atol)
    for n, (xn, _) in enumerate(cases):  # frames past the example's: exactly 0
        assert not g[n, xn.shape[0] :].any()
    return nll, g


# --------------------------------------------------------------------------- tiny: every path


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiny_cases_equal_the_sum_over_every_path(dtype):
    rng = np.random.default_rng(1)
    cases, blanks = [], []
    for T, C, blank, lab in [
        (1, 2, 0, [1]),
        (3, 3, 0, [1, 2]),
        (4, 3, 2, [1, 1]),  # repeated label: needs a blank between its copies
        (5, 4, 1, [0, 3, 0]),
        (5, 3, 0, [2, 2, 1]),
        (4, 4, 3, []),  # no labels: every frame blank
        (3, 3, 1, [0, 0]),  # 2 labels + 1 repeat = 3 frames: exactly one path
        (4, 2, 1, [0, 0, 0]),  # needs 5 frames: infeasible
    ]:
        x = rng.normal(0.0, 2.0, (T, C))
        nll, g = check([(x, lab)], blank, dtype, ref=brute_force)
        cases.append((nll, g))
        blanks.append(blank)
    assert cases[-1][0][0] == np.inf and not cases[-1][1].any()
    assert np.isfinite(cases[-2][0][0])


def test_tiny_batch_with_padding_and_different_lengths():
    rng = np.random.default_rng(2)
    cases = [
        (rng.normal(size=(4, 3)), [1, 2]),
        (rng.normal(size=(2, 3)), [2]),
        (rng.normal(size=(5, 3)), [1, 1]),
        (rng.normal(size=(1, 3)), []),
    ]
    check(cases, 0, np.float64, ref=brute_force, pad_t=3, pad_s=2)


def test_uniform_logits_count_the_alignments():
    # x = 0: every path has probability C^-T, so p = (number of alignments) / C^T.
    # "a b" in 4 frames over {blank, a, b}: the alignments are the strings of
    # the form blank* a+ blank* b+ blank* of length 4: C(6, 4) = 15 (by stars and bars:
    # 4 letters into 5 groups, two of them at least 1: C(4 - 2 + 4, 4) = 15).
    nll, g = ctc_loss_and_grad(
        np.zeros((1, 4, 3)),
        np.array([[1, 2]]),
        np.array([4]),
        np.array([2]),
        0,
        grad_scale=np.ones(1),
    )
    assert nll[0] == pytest.approx(np.log(3**4 / 15), rel=1e-14)
    np.testing.assert_allclose(g.sum(axis=-1), 0.0, atol=1e-15)  # softmax and posterior sum to 1


# --------------------------------------------------------------------------- medium: recursions


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("blank", [0, 7, 19])
def test_medium_batch_against_the_log_space_recursions(dtype, blank):
    rng = np.random.default_rng(blank)
    C = 20
    cases = []
    for T, L, rep in [(40, 10, 0.0), (33, 12, 0.4), (50, 0, 0.0), (25, 12, 0.5), (8, 9, 0.0)]:
        cases.append((rng.normal(0.0, 3.0, (T, C)), random_labels(rng, L, C, blank, rep)))
    nll, g = check(cases, blank, dtype, scale=[1.0, 0.5, 2.0, 0.0, 1.0], pad_t=5, pad_s=3)
    assert np.isinf(nll[4]) and np.isfinite(nll[:4]).all()  # 9 labels cannot fit in 8 frames
    assert not g[3].any() and not g[4].any()  # grad_scale 0, and infeasible: exactly 0


def test_against_torch_ctc_loss():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    N, T, C, S, blank = 6, 60, 12, 15, 4
    x = rng.normal(0.0, 2.0, (N, T, C))
    tl = rng.integers(40, T + 1, N)
    ll = rng.integers(0, S + 1, N)
    labels = np.stack([random_labels(rng, S, C, blank, 0.3) for _ in range(N)]).astype(np.int64)
    scale = rng.uniform(0.5, 2.0, N)
    nll, g = ctc_loss_and_grad(x, labels, tl, ll, blank, grad_scale=scale)
    xt = torch.tensor(x, requires_grad=True)
    lp = torch.log_softmax(xt, dim=-1).transpose(0, 1)
    want = torch.nn.functional.ctc_loss(
        lp, torch.tensor(labels), torch.tensor(tl), torch.tensor(ll), blank, reduction="none"
    )
    (want * torch.tensor(scale)).sum().backward()
    np.testing.assert_allclose(nll, want.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- edges


def test_zero_frames_and_zero_labels():
    # No frames: the empty label sequence has probability 1, any other 0.
    x = np.zeros((3, 4, 5), dtype=np.float32)
    labels = np.ones((3, 2), dtype=np.int64)
    tl = np.array([0, 0, 4])
    ll = np.array([0, 2, 0])
    g_out = np.full_like(x, 7.0)
    nll, g = ctc_loss_and_grad(x, labels, tl, ll, 0, grad_scale=np.ones(3), grad_out=g_out)
    assert g is g_out
    np.testing.assert_array_equal(nll[:2], [0.0, np.inf])
    assert nll[2] == pytest.approx(4 * np.log(5), rel=1e-6)  # blank in every frame: 5^-4
    assert not g[:2].any()
    np.testing.assert_allclose(g[2, :, 0], 0.2 - 1.0, rtol=1e-6)  # softmax 1/5, posterior 1
    np.testing.assert_allclose(g[2, :, 1:], 0.2, rtol=1e-6)


def test_grad_scale_scales_and_grad_out_is_written():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 30, 9)).astype(np.float32)
    labels = rng.integers(1, 9, (3, 6)).astype(np.int64)
    tl = np.array([30, 21, 25])
    ll = np.array([6, 4, 5])
    nll1, g1 = ctc_loss_and_grad(x, labels, tl, ll, 0, grad_scale=np.ones(3))
    out = np.empty_like(x)
    nll2, g2 = ctc_loss_and_grad(
        x, labels, tl, ll, 0, grad_scale=np.array([2.5, 0.0, -1.0]), grad_out=out
    )
    assert g2 is out
    np.testing.assert_array_equal(nll1, nll2)
    np.testing.assert_allclose(g2[0], 2.5 * g1[0], rtol=1e-6, atol=1e-7)
    assert not g2[1].any()
    np.testing.assert_allclose(g2[2], -g1[2], rtol=1e-6, atol=1e-7)


def test_the_logits_are_not_written():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 12, 6))
    keep = x.copy()
    ctc_loss_and_grad(
        x,
        np.array([[1, 2], [3, 3]]),
        np.array([12, 10]),
        np.array([2, 2]),
        0,
        grad_scale=np.ones(2),
    )
    np.testing.assert_array_equal(x, keep)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extreme_logits_stay_finite_and_exact(dtype):
    # Logits of +-1e4: the best alignment is forced and the rest is e^-1e4 smaller; a
    # linear-space recursion underflows to 0 (an infeasible-looking inf), log space does not.
    rng = np.random.default_rng(6)
    T, C = 12, 5
    cases = []
    for _ in range(3):
        x = rng.choice([-1e4, 0.0, 1e4], size=(T, C)) + rng.normal(size=(T, C))
        cases.append((x, random_labels(rng, 4, C, 0, 0.3)))
    # Frame 0 favours the blank by 2e4 but a 1-frame-per-label path is the only way.
    x = np.full((3, C), -1e4)
    x[0, 0] = 1e4
    x[1, 1] = 0.0
    x[2, 2] = 0.0
    cases.append((x, [1, 2, 3]))
    nll, _ = check(cases, 0, dtype)
    assert np.isfinite(nll).all() and nll[-1] > 1e4


def test_minus_inf_logits_of_an_unused_class_change_nothing():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1, 20, 6))
    labels = np.array([[1, 2, 2, 3]])
    args = (labels, np.array([20]), np.array([4]), 0)
    nll, g = ctc_loss_and_grad(x[:, :, :5], *args, grad_scale=np.ones(1))
    wide = x.copy()
    wide[:, :, 5] = -np.inf
    nll_w, g_w = ctc_loss_and_grad(wide, *args, grad_scale=np.ones(1))
    np.testing.assert_allclose(nll_w, nll, rtol=1e-14)
    np.testing.assert_allclose(g_w[..., :5], g, atol=1e-15)
    assert not g_w[..., 5].any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_4000_frame_sequence_keeps_its_precision(dtype):
    # Long sequences are where float32 log-sum-exp accumulation drifts; the kernel
    # accumulates in float64 and stores frame-normalised tables.
    rng = np.random.default_rng(8)
    C = 12
    cases = [
        (rng.normal(0.0, 2.0, (4000, C)), random_labels(rng, 300, C, 0, 0.2)),
        (rng.normal(0.0, 2.0, (3000, C)), random_labels(rng, 50, C, 0, 0.0)),
    ]
    # The textbook reference itself rounds its log-probabilities (about -1e4 here) at
    # 2e-12 per step, over 4000 steps: its posteriors are good to about 1e-10.
    nll, _ = check(cases, 0, dtype, ref_atol=1e-9)
    assert (nll > 1000).all()


# --------------------------------------------------------------------------- scaled or extended


def test_random_batches_take_the_scaled_recursions():
    # Logits like a network's (the benchmark's shapes, smaller): the plain float64
    # recursions scaled per frame hold, and give the log-space recursions' numbers.
    rng = np.random.default_rng(12)
    C = 40
    cases = [(rng.normal(size=(120, C)), random_labels(rng, 30, C, 0, 0.1)) for _ in range(4)]
    check(cases, 0, np.float64)
    assert last_paths().tolist() == [0, 0, 0, 0]
    check(cases, 0, np.float32)
    assert last_paths().tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_where_underflow_could_matter_the_extended_range_runs(dtype, wide):
    # Every frame favours the blank by d over the two labels: the states that have
    # emitted all 10 labels (those the paths must end in) carry about e^-10d of the
    # frame's alpha, and the overlap of alpha and beta shrinks likewise. At d = 20 all of
    # it is a normal float64 (the scaled recursions, path 0); at d = 66 alpha stays above
    # 2^-1000 but the overlaps fall below 2^-900 (the loss is the scaled one, the
    # gradient the extended range's, path 2); at d = 80 and 700 states underflow
    # (path 1: both from the extended range). Every one equals the log-space recursions.
    # wide: 9 more classes at -1e4 (probability 0), so that C > L + 1 and the kernel's
    # table is per label, not per class (a short row's softmax, read through an index).
    T, C, lab = 30, 3, [1, 2] * 5
    cases, paths = [], []
    for d, path in [(20.0, 0), (66.0, 2), (80.0, 1), (700.0, 1)]:
        x = np.zeros((T, C + 9 if wide else C))
        x[:, 1:C] = -d
        x[:, C:] = -1e4
        cases.append((x, lab))
        paths.append(path)
    # The kernel keeps its scratch between calls: fill the table with other numbers first,
    # so that an entry read from the wrong place of a short row's table (beyond its C
    # classes) cannot come out right by reading fresh zeros, which the extended range
    # would recompute from the logits.
    rng = np.random.default_rng(17)
    other = [(rng.normal(size=(T, C + 9)), lab[::-1]) for _ in cases]
    ctc_loss_and_grad(*batch(other, dtype), 0, grad_scale=np.ones(4))
    nll, _ = check(cases, 0, dtype)
    assert last_paths().tolist() == [0, 0, 1, 1]  # the forward-only call of ``check``
    nll_again, _ = ctc_loss_and_grad(*batch(cases, dtype), 0, grad_scale=np.ones(4))
    assert last_paths().tolist() == paths
    np.testing.assert_array_equal(nll_again, nll)
    # p is about C(30, 10) e^-10d: the alignments that spend one frame on each label (the
    # labels alternate, so no blank is needed between them; more label frames cost e^-d)
    d = np.array([20.0, 66.0, 80.0, 700.0])
    np.testing.assert_allclose(nll, 10 * d - math.log(math.comb(30, 10)), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_states_underflow_where_the_bound_holds_the_scaled_recursions_stand(dtype):
    # 500 frames, 100 labels, logits of spread 2: the first and last lattice states fall
    # far below 2^-1022 of the frame's total, but alpha and beta overlap enough for the
    # bound: loss and gradient are the scaled recursions' (path 0), with or without a
    # gradient (the forward-only call runs beta to check the bound), and equal the
    # log-space recursions.
    rng = np.random.default_rng(14)
    cases = [(rng.normal(0.0, 2.0, (500, 8)), random_labels(rng, 100, 8, 0, 0.0))]
    # the log-space reference rounds its log-probabilities (about -900) at 1e-13 a step
    nll, _ = check(cases, 0, dtype, ref_atol=1e-11)
    assert last_paths().tolist() == [0]  # the forward-only call
    nll_again, _ = ctc_loss_and_grad(*batch(cases, dtype), 0, grad_scale=np.ones(1))
    assert last_paths().tolist() == [0]
    np.testing.assert_array_equal(nll_again, nll)


def test_long_sequences_of_uninformative_logits_stay_in_plain_float64():
    # Logits like an untrained network's over 2000 frames and 150 labels (rate 0.15 states
    # a frame): without the tilt alpha's mass ran ahead of the paths that end in time and
    # its overlap with beta fell below 2^-900 (the benchmark's T = 4000 took the extended
    # range); tilted, the scaled recursions hold and give the log-space numbers.
    rng = np.random.default_rng(15)
    C = 30
    cases = [(rng.normal(size=(2000, C)), random_labels(rng, 150, C, 0, 0.0)) for _ in range(2)]
    check(cases, 0, np.float64, ref_atol=1e-10)
    assert last_paths().tolist() == [0, 0]
    ctc_loss_and_grad(*batch(cases, np.float64), 0, grad_scale=np.ones(2))
    assert last_paths().tolist() == [0, 0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alpha_kept_every_16th_frame_gives_the_same_numbers(monkeypatch, dtype):
    # Past CHECKPOINT_BYTES of alpha table the backward pass recomputes alpha from every
    # 16th frame: the same loss (bit for bit) and gradient (to rounding) as the full table,
    # frame counts not a multiple of 16, examples shorter than the batch's frames, a
    # label-free example and one that cannot fit included.
    rng = np.random.default_rng(16)
    C = 9
    cases = [
        (rng.normal(size=(T, C)), random_labels(rng, L, C, 0, 0.2))
        for T, L in [(77, 20), (33, 5), (16, 3), (1, 0), (40, 0), (4, 5)]
    ]
    x, labels, tl, ll = batch(cases, dtype)
    nll_full, g_full = ctc_loss_and_grad(x, labels, tl, ll, 0, grad_scale=np.ones(len(cases)))
    monkeypatch.setattr(ctc_kernel, "CHECKPOINT_BYTES", 0)
    nll, g = ctc_loss_and_grad(x, labels, tl, ll, 0, grad_scale=np.ones(len(cases)))
    np.testing.assert_array_equal(nll, nll_full)
    assert np.isinf(nll[-1]) and np.isfinite(nll[:-1]).all()
    scale = np.abs(g_full).max()
    np.testing.assert_allclose(g, g_full, rtol=0, atol=scale * TOL[dtype][1])
    check(cases, 0, dtype)  # and both against the log-space reference


@pytest.mark.parametrize(("frames", "states", "lam"), [(1, 3, 1.0), (5, 1, 1.0), (11, 9, 1.0)])
def test_the_tilt_is_one_where_alignments_are_few(frames, states, lam):
    assert tilt(frames, states) == lam  # rate (S' - 1) / (T - 1) >= 0.8, or one state


def test_the_tilt_moves_alpha_at_the_paths_rate():
    # alpha's drift under the tilt, 2 lam (1 + lam) / (2 + 2 lam + lam^2), is the rate
    for frames, states in [(4000, 801), (200, 101), (100000, 3)]:
        lam = tilt(frames, states)
        rate = (states - 1) / (frames - 1)
        assert 2 * lam * (1 + lam) / (2 + 2 * lam + lam**2) == pytest.approx(rate, rel=1e-12)


def test_a_nan_or_inf_logit_gives_a_nan_loss_and_gradient_for_its_example():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(3, 10, 5))
    x[0, 4, 3] = np.nan
    x[1, 7, 0] = np.inf
    labels = np.array([[1, 2], [1, 2], [1, 2]])
    tl, ll = np.array([10, 10, 10]), np.array([2, 2, 2])
    nll, g = ctc_loss_and_grad(x, labels, tl, ll, 0, grad_scale=np.ones(3))
    assert np.isnan(nll[:2]).all() and np.isnan(g[:2]).all()
    nll2, g2 = ctc_loss_and_grad(x[2:], labels[2:], tl[2:], ll[2:], 0, grad_scale=np.ones(1))
    np.testing.assert_array_equal(nll[2:], nll2)  # the other example is untouched
    np.testing.assert_array_equal(g[2:], g2)


# --------------------------------------------------------------------------- threads, fork

SCRIPT = """
import threading, multiprocessing as mp
import numpy as np
from losskit.kernels._ctc import ctc_loss_and_grad

def work(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 40, 30)).astype(np.float32)
    labels = rng.integers(1, 30, (3, 8)).astype(np.int64)
    tl = np.array([40, 35, 30]); ll = np.array([8, 6, 7])
    nll, g = ctc_loss_and_grad(x, labels, tl, ll, 0, grad_scale=np.ones(3))
    return nll.tolist(), float(np.abs(g).sum())

if __name__ == "__main__":
    want = [work(s) for s in range(4)]
    with mp.get_context("fork").Pool(2) as pool:
        forked = pool.map(work, range(4), chunksize=1)
    got = {}
    def run(s):
        for _ in range(5):
            got[s] = work(s)
    threads = [threading.Thread(target=run, args=(s,)) for s in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    print("fork", forked == want)
    print("threads", [got[s] for s in range(4)] == want)
"""


def test_forked_children_and_concurrent_threads_get_the_same_numbers(tmp_path):
    script = tmp_path / "ctc_threads.py"
    script.write_text(textwrap.dedent(SCRIPT))
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=240,  # compilation on a loaded machine, then a hang would fail here
        env={**os.environ, "NUMBA_NUM_THREADS": "2"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["fork", "True", "threads", "True"]


def test_one_region_and_three_passes_give_the_same_numbers():
    # A batch of at least two examples per thread runs each example's passes in one
    # parallel region; a smaller one splits the frames over the threads. Same arithmetic.
    numba = pytest.importorskip("numba")
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 50, 40)).astype(np.float32)
    labels = rng.integers(1, 40, (3, 12)).astype(np.int64)
    args = (x, labels, np.array([50, 44, 31]), np.array([12, 0, 9]), 0)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)  # 3 >= 2 x 1: one region
        one = ctc_loss_and_grad(*args, grad_scale=np.ones(3))
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = ctc_loss_and_grad(*args, grad_scale=np.ones(3))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@pytest.mark.parametrize("classes", [6, 40])  # short rows (C <= L + 1), per-label rows
def test_examples_sharing_a_threads_tables_give_each_examples_own_numbers(classes):
    # The alpha table, frame sums and emissions are one example's per thread, written
    # over by the next example on the thread: a batch at 2 threads (one region, both
    # threads at once), longest example first so that shorter ones land on tables that
    # hold more, gives each example what it gives alone, bit for bit.
    numba = pytest.importorskip("numba")
    rng = np.random.default_rng(21)
    sizes = [(60, 12), (9, 3), (44, 11), (30, 0), (52, 7), (17, 8), (60, 5), (25, 12)]
    cases = [
        (rng.normal(size=(T, classes)), random_labels(rng, L, classes, 0, 0.2)) for T, L in sizes
    ]
    x, labels, tl, ll = batch(cases, np.float64)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        nll, g = ctc_loss_and_grad(x, labels, tl, ll, 0, grad_scale=np.ones(len(cases)))
        numba.set_num_threads(1)
        for n in range(len(cases)):
            one = ctc_loss_and_grad(
                x[n : n + 1],
                labels[n : n + 1],
                tl[n : n + 1],
                ll[n : n + 1],
                0,
                grad_scale=np.ones(1),
            )
            np.testing.assert_array_equal(nll[n : n + 1], one[0])
            np.testing.assert_array_equal(g[n : n + 1], one[1])
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logits_of_1e30_give_a_finite_loss_and_gradient(dtype):
    # At this scale a path's log-probability is known to 1e14 (float64 rounding), so the
    # posteriors are not; the loss is known to its relative precision and stays exact.
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(3):
        x = rng.choice([-1e30, 0.0, 3e29], size=(10, 4)) + rng.normal(size=(10, 4))
        cases.append((x, random_labels(rng, 3, 4, 0, 0.3)))
    x, labels, tl, ll = batch(cases, dtype)
    nll, g = ctc_loss_and_grad(x, labels, tl, ll, 0, grad_scale=np.ones(3))
    want, _ = reference(cases, 0, dtype, x.shape)
    np.testing.assert_allclose(nll, want, rtol=1e-6)
    # finite, and bounded: softmax 1 plus at most 7 states' posteriors, each kept <= 2
    assert np.isfinite(g).all() and np.abs(g).max() <= 1 + 7 * 2


def test_an_empty_batch_and_labels_padded_to_nothing():
    nll, g = ctc_loss_and_grad(
        np.zeros((0, 5, 3), np.float32),
        np.zeros((0, 2), np.int64),
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        0,
        grad_scale=np.ones(0),
    )
    assert nll.shape == (0,) and g.shape == (0, 5, 3)
    # S = 0: only blanks, uniform over 3 classes: 3^T.
    nll, g = ctc_loss_and_grad(
        np.zeros((2, 3, 3)),
        np.ones((2, 0), np.int64),
        np.array([3, 2]),
        np.array([0, 0]),
        0,
        grad_scale=np.ones(2),
    )
    np.testing.assert_allclose(nll, [3 * np.log(3), 2 * np.log(3)], rtol=1e-15)
    np.testing.assert_allclose(g[0, :, 0], 1 / 3 - 1, rtol=1e-15)
    assert not g[1, 2].any()
    nll, _ = ctc_loss_and_grad(
        np.zeros((1, 0, 3)), np.ones((1, 1), np.int64), np.array([0]), np.array([0]), 0
    )
    assert nll[0] == 0.0 and not np.signbit(nll[0])  # log 1, not -0.0


def test_the_benchmark_runs_and_reports_every_pass(capsys):
    from losskit import benchmark_ctc

    argv = [
        "--threads",
        "1",
        "--shapes",
        "20x3x6x4",
        "--repeats",
        "1",
        "--only",
        "kernel",
        "--json",
    ]
    assert benchmark_ctc.main(argv) == 0
    records = json.loads(capsys.readouterr().out)
    assert {(r["pass"], r["impl"]) for r in records} == {
        ("forward", "losskit kernel"),
        ("forward+backward", "losskit kernel grad_out="),
    }
    assert all(r["shape"] == [20, 3, 6, 4] and r["ms"] > 0 for r in records)
    with pytest.raises(SystemExit):
        benchmark_ctc.main(["--shapes", "20x3x6"])
    assert "shapes are TxNxCxS" in capsys.readouterr().err
