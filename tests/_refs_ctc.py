"""CTC by brute force: every path of T classes, kept if it collapses to the label.

Independent of any recursion: ``p(y | x) = sum over paths pi with B(pi) = y of
prod_t softmax(x_t)[pi_t]``, where ``B`` merges runs of equal classes and then
drops blanks (Graves et al. 2006, eq. 2-3).  The derivative follows from the
same enumeration, ``d(-log p)/d x[t, c] = softmax(x_t)[c] - P(pi_t = c | y)``,
and is also checked here against torch autograd of the enumerated sum.  Only
for tiny cases (C**T paths), in float64.
"""

from __future__ import annotations

import itertools

import numpy as np


def collapse(path, blank):
    out, prev = [], None
    for c in path:
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return tuple(out)


def brute_force(logits, label, blank=0):
    """``(nll, d nll / d logits)`` of one example: ``logits`` (T, C) float64, ``label`` a tuple.

    nll is inf (and the gradient None) when no path collapses to ``label``.
    """
    x = np.asarray(logits, dtype=np.float64)
    steps, num_classes = x.shape
    m = x.max(axis=1, keepdims=True)
    logp = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    target = tuple(int(c) for c in label)
    total = 0.0
    occupation = np.zeros_like(x)
    for path in itertools.product(range(num_classes), repeat=steps):
        if collapse(path, blank) != target:
            continue
        p = np.exp(sum(logp[t, c] for t, c in enumerate(path)))
        total += p
        for t, c in enumerate(path):
            occupation[t, c] += p
    if total == 0.0:
        return np.inf, None
    grad = np.exp(logp) - occupation / total
    return -np.log(total), grad


def brute_force_batch(logits, labels, logit_lengths, label_lengths, blank=0):
    """Per-example ``nll`` (N,) and ``d nll_n / d logits`` (N, T, C) (0 after each length,
    NaN on the frames of infeasible examples, as PyTorch's gradient)."""
    x = np.asarray(logits, dtype=np.float64)
    nll = np.zeros(x.shape[0])
    grad = np.zeros_like(x)
    for n in range(x.shape[0]):
        t, s = int(logit_lengths[n]), int(label_lengths[n])
        value, g = brute_force(x[n, :t], tuple(labels[n][:s]), blank)
        nll[n] = value
        if g is None:
            grad[n, :t] = np.nan
        else:
            grad[n, :t] = g
    return nll, grad


def brute_force_torch(logits, label, blank=0):
    """``-log p`` of one example by enumeration in torch, for autograd's gradient."""
    import torch

    x = torch.as_tensor(np.asarray(logits, dtype=np.float64)).requires_grad_(True)
    logp = torch.log_softmax(x, dim=1)
    steps, num_classes = x.shape
    target = tuple(int(c) for c in label)
    terms = [
        sum(logp[t, c] for t, c in enumerate(path))
        for path in itertools.product(range(num_classes), repeat=steps)
        if collapse(path, blank) == target
    ]
    nll = -torch.logsumexp(torch.stack(terms), dim=0)
    (g,) = torch.autograd.grad(nll, x)
    return float(nll.detach()), g.numpy()
