"""Likelihood losses: Poisson and Gaussian negative log-likelihoods, KL divergence, NLL.

Each is one definition through a shell of :mod:`losskit._define`.  Two
things the shells do not do are added here, each once:

- a loss whose value rules depend on a flag (``log_input``, ``log_target``)
  is published from one definition per flag value, each with its own checks
  (:func:`_by_flag`), so the rules still name the user's argument and
  position and still follow the NaN rule under a trace;
- :func:`gaussian_nll` takes a third array, ``var``, with PyTorch's shape
  rules for it (:func:`_gaussian_nll`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _config
from .._arrays import gather_last, is_label, ratio, xlogy_safe
from .._backend import Array, cast, compute_dtype, is_dtype, namespace, shape_of
from .._define import (
    Body,
    _evaluate,
    _public_signature,
    _publish,
    elementwise_loss,
    rowwise_loss,
    sparse_loss,
)
from .._gradient import IMPL_ATTRIBUTE, deliver
from .._reduce import plan
from .._validation import (
    Invalid,
    _is_real,
    check_non_negative,
    check_numeric,
    check_paired,
    check_real,
    check_target_interval,
    check_values,
)

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# --------------------------------------------------------------------------- options and rules


def check_flag(name: str, value: Any) -> bool:
    """A bool option (``full``, ``log_input``, ``log_target``)."""
    if not isinstance(value, (bool, np.bool_)):
        msg = f"`{name}` must be a bool; got {value!r}"
        raise TypeError(msg)
    return bool(value)


def _positive(xp: Any, x: Array) -> Array:
    return ~(x <= 0)  # NaN is refused too


def check_log_probs(xp: Any, name: str, x: Array) -> Array | None:
    """Log-probabilities are <= 0 (a core rule: it catches logits passed as log-probabilities)."""
    if not _config.core_rules():
        return None
    return check_values(xp, name, x, _positive, "log-probabilities (<= 0)")


def by_flag(
    flag: str, shells: dict[bool, Callable[[Body], Any]]
) -> Callable[[Body], Callable[..., Array]]:
    """A public loss whose value rules depend on the bool option ``flag``.

    ``shells[value]`` is the shell (with its ``checks``) that applies when
    ``flag`` is ``value``; the public function checks the flag and hands the
    call to that shell's implementation.
    """

    def decorate(body: Body) -> Callable[..., Array]:
        publics = {value: shell(body) for value, shell in shells.items()}
        impls = {value: getattr(public, IMPL_ATTRIBUTE) for value, public in publics.items()}

        def impl(*args: Any, **kwargs: Any) -> tuple[Array, Array | None]:
            value = check_flag(flag, kwargs[flag])
            return impls[value](*args, **{**kwargs, flag: value})

        return _publish(body, inspect.signature(publics[False]), impl)

    return decorate


# --------------------------------------------------------------------------- Poisson


@by_flag(
    "log_input",
    {
        False: elementwise_loss(
            checks=(("pred", check_non_negative), ("target", check_non_negative))
        ),
        True: elementwise_loss(checks=(("target", check_non_negative),)),
    },
)
def poisson_nll(
    xp: Any,
    pred: Array,
    target: Array,
    *,
    log_input: bool = False,
    full: bool = False,
    eps: float = 1e-8,
) -> tuple[Array, Any]:
    r"""Poisson negative log-likelihood of counts ``target`` under rates ``pred``.

    .. math::
        \ell = \lambda - t \log \lambda \ [+\ t \log t - t + \tfrac12 \log(2 \pi t)
        \text{ for } t > 1], \qquad
        \frac{\partial \ell}{\partial p} =
        \begin{cases} e^{p} - t & \text{log\_input } (\lambda = e^{p}) \\
        1 - t / (p + \epsilon) & \text{otherwise } (\log \lambda = \log(p + \epsilon))
        \end{cases}

    PyTorch's ``poisson_nll_loss``/``PoissonNLLLoss`` (``full`` adds the
    Stirling approximation of ``log t!``, for ``t > 1`` only, as PyTorch).
    Keras's ``poisson``/``Poisson`` is ``log_input=False, eps=1e-7`` averaged
    over the last axis.  ``t log λ`` is 0 where ``t = 0`` and ``λ = 0``
    (``torch.xlogy``'s convention).  With ``full`` the loss is formed as
    ``(λ - t) + t (log t - log λ) + ½ log(2πt)``, so it stays finite for counts
    whose ``t log t`` alone overflows.  Core rules: targets are non-negative,
    and so are the rates when ``log_input`` is False.

    Parameters
    ----------
    pred : array, real floating
        Predicted rates ``λ >= 0`` (log-rates with ``log_input``).
    target : array, the shape of ``pred``
        Observed counts ``>= 0``.
    log_input : bool
        ``pred`` holds ``log λ``: the loss is ``e^pred - t pred``.
    full : bool
        Add Stirling's approximation of ``log t!`` (for ``t > 1``).
    eps : float > 0
        Added to ``λ`` inside the log (``log_input=False`` only).
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.likelihood import poisson_nll
    >>> rate, count = np.array([2.0, 1.0]), np.array([2.0, 0.0])
    >>> poisson_nll(rate, count, eps=0.0, reduction="none").round(6)  # 2 - 2 log 2, 1
    array([0.613706, 1.      ])
    >>> poisson_nll(np.log(rate), count, log_input=True, reduction="none").round(6)
    array([0.613706, 1.      ])

    References
    ----------
    PyTorch, ``torch.nn.PoissonNLLLoss``; P. McCullagh and J. A. Nelder,
    *Generalized Linear Models*, 2nd ed., 1989, ch. 6.
    """
    full = check_flag("full", full)
    # 0 is exact for Poisson: 0 log 0 = 0
    eps = check_real("eps", eps, "a non-negative finite number", lambda v: 0 <= v < math.inf)
    t = target
    if log_input:
        rate = xp.exp(pred)
        # t * log λ is 0 where t = 0 and log λ = -inf (a masked rate)
        log_rate = xp.where((t == 0) & (pred == -math.inf), xp.zeros_like(pred), pred)
    else:
        rate = pred
        log_rate = xp.log(xlogy_safe(xp, t, pred + eps))  # log 1 = 0 where t = 0 = p + eps
    if full:
        # ((λ - t) - t (log λ - log t)) + ½ log(2πt) where t > 1: λ - t first, so
        # the result stays finite when t log t alone overflows.  Elsewhere t is
        # replaced by 1 (log 1 = 0) or 0, so no side of a where sees inf * 0.
        big = t > 1
        zero = xp.zeros_like(t)
        log_t = xp.log(xp.where(big, t, xp.ones_like(t)))
        value = (rate - xp.where(big, t, zero)) - t * (log_rate - log_t)
        value = value + xp.where(big, _HALF_LOG_2PI + log_t / 2, zero)
    else:
        value = rate - t * log_rate
    if log_input:
        return value, lambda: rate - t  # d/dx (e^x - t x) = e^x - t
    return value, lambda: 1 - ratio(xp, t, pred + eps)  # d/dp = 1 - t / (p + eps)


# --------------------------------------------------------------------------- Gaussian


def _var_shape_message(pred_shape: tuple[int, ...], var_shape: tuple[int, ...]) -> str:
    if not pred_shape:
        return f"`var` must have the shape of `pred` (); got {var_shape}"
    ones = (*pred_shape[:-1], 1)
    return (
        f"`var` must have the shape of `pred` {pred_shape}, that shape with one axis of "
        f"size 1 such as {ones}, or one axis fewer, {pred_shape[:-1]} (PyTorch's rules; "
        f"losskit broadcasts no further); got {var_shape}"
    )


def _var_needs_axis(xp: Any, var: Array, pred: Array) -> bool:
    """Check ``var``'s dtype and shape against ``pred``; whether it needs a trailing axis.

    PyTorch 2.13's ``gaussian_nll_loss``: the prediction's shape; the same
    number of axes with exactly one different axis, of size 1 in ``var``
    (``(N, 1)`` or ``(N, 1, H, W)`` for ``(N, C, H, W)``); or the
    prediction's shape without its last axis, which gets a trailing axis of 1.
    """
    check_numeric(xp, "var", var)
    ps, vs = shape_of(pred), shape_of(var)
    if vs == ps:
        return False
    if ps and vs == ps[:-1]:
        return True
    differ = [i for i in range(len(ps)) if len(vs) == len(ps) and vs[i] != ps[i]]
    if len(differ) == 1 and vs[differ[0]] == 1:
        return False
    raise ValueError(_var_shape_message(ps, vs))


def check_var(xp: Any, name: str, var: Array) -> Array | None:
    """Variances are >= 0 (PyTorch's rule too); NaN is refused only by the core."""
    if is_dtype(xp, var.dtype, ("unsigned integer", "bool")):
        return None
    core = _config.core_rules()

    def bad_of(xp: Any, v: Array) -> Array:
        return ~(v >= 0) if core else v < 0

    return check_values(xp, name, var, bad_of, "non-negative")


def _with_var(body: Body) -> Callable[..., Array]:
    """``elementwise_loss``'s shell for ``body(xp, pred, target, var, **options)``.

    ``var`` is a third array with :func:`_var_needs_axis`'s shapes, or a Python
    number (a variance for every element, as in PyTorch).
    """

    def impl(
        pred: Array,
        target: Array,
        var: Array | float,
        *,
        reduction: str,
        sample_weight: Array | None,
        with_grad: bool = False,
        grad_out: Any = None,
        **options: Any,
    ) -> tuple[Array, Array | None]:
        scalar = _is_real(var)
        xp, p, t, v, sample_weight = namespace(
            pred, target, var, sample_weight, names=("target", "var", "sample_weight")
        )
        reduction = check_paired(xp, "pred", p, "target", t, reduction, grad_out)
        expand = False if scalar else _var_needs_axis(xp, v, p)
        shape = shape_of(p)
        invalid = Invalid(xp, shape)
        bad = check_var(xp, "var", v)  # positions in the user's var
        if expand:
            v = xp.expand_dims(v, axis=-1)
            bad = None if bad is None else xp.expand_dims(bad, axis=-1)
        invalid.add(bad)
        dtype = compute_dtype(xp, p.dtype)
        red = plan(xp, reduction, shape, dtype, sample_weight=sample_weight, invalid=invalid)
        args = (cast(xp, p, dtype), cast(xp, t, dtype), cast(xp, v, dtype))
        value, grad = _evaluate(xp, body, args, options, red, with_grad, None)
        return value, None if grad is None else deliver(xp, grad, p, grad_out)

    return _publish(body, _public_signature(body, "pred", "target"), impl)


@_with_var
def gaussian_nll(
    xp: Any, pred: Array, target: Array, var: Array, *, full: bool = False, eps: float = 1e-6
) -> tuple[Array, Any]:
    r"""Gaussian negative log-likelihood of ``target`` under means ``pred`` and variances ``var``.

    .. math::
        \ell = \tfrac12 \left(\log \tilde v + \frac{(p - t)^2}{\tilde v}\right)
        \ [+\ \tfrac12 \log 2\pi \text{ if full}],
        \quad \tilde v = \max(v, \epsilon), \qquad
        \frac{\partial \ell}{\partial p} = \frac{p - t}{\tilde v}, \quad
        \frac{\partial \ell}{\partial v} = \tfrac12 \left(\frac{1}{\tilde v}
        - \frac{(p - t)^2}{\tilde v^2}\right) \ (0 \text{ where } v < \epsilon)

    PyTorch's ``gaussian_nll_loss``/``GaussianNLLLoss`` (heteroscedastic
    regression: the model predicts a mean and a variance per output).  ``var``
    follows PyTorch 2.13's shape rules and no others: the prediction's shape,
    that shape with one axis of size 1 (one variance shared along it), the
    shape without its last axis, or a Python number.  Variances must be
    non-negative; ``eps`` a positive number.  The derivative in ``var`` is
    that of the value computed (0 where ``var`` was raised to ``eps``), where
    PyTorch clamps outside autograd and passes the unclamped derivative
    through.  ``(p - t)^2 / v`` is formed as ``2 h (h / v)`` with the half gap
    ``h = p/2 - t/2``: finite wherever the ratio is.

    Parameters
    ----------
    pred : array, real floating
        Predicted means.
    target : array, the shape of ``pred``
        Observed values.
    var : array or float
        Predicted variances ``>= 0``: ``pred``'s shape, that shape with one
        axis of size 1, the shape without its last axis, or a number.
    full : bool
        Add the constant ``½ log 2π``.
    eps : float > 0
        Variances below it are raised to it.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per element; ``"mean"``: their mean (weighted by
        ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.likelihood import gaussian_nll
    >>> mean, target, var = np.array([1.0, 3.0]), np.array([0.0, 1.0]), np.array([1.0, 4.0])
    >>> gaussian_nll(mean, target, var, reduction="none").round(6)  # ½(0 + 1), ½(log 4 + 1)
    array([0.5     , 1.193147])

    References
    ----------
    D. A. Nix and A. S. Weigend, "Estimating the mean and variance of the
    target probability distribution", ICNN 1994; PyTorch, ``torch.nn.GaussianNLLLoss``.
    """
    full = check_flag("full", full)
    eps = check_real("eps", eps, "a positive finite number", lambda v: 0 < v < math.inf)
    # max(var, eps), derivative 1 in var where var >= eps, 0 below (a where, not
    # xp.clip: array-api-compat's clip reads the bound, which torch.compile may trace)
    v = xp.where(var < eps, xp.full_like(var, eps), var)
    h = pred / 2 - target / 2  # (p - t) / 2, never overflowing
    r = h / v
    value = xp.log(v) / 2 + 2 * h * r  # ½ log v + ½ (p - t)^2 / v, no (p - t)^2 formed
    if full:
        value = value + _HALF_LOG_2PI
    return value, lambda: 2 * r  # d/dp = (p - t) / max(var, eps)


# --------------------------------------------------------------------------- KL divergence


def check_log_targets(xp: Any, name: str, x: Array) -> Array | None:
    """Log-probability targets are <= 0 (a core rule, as targets in [0, 1])."""
    if not _config.core_rules():
        return None
    return check_values(xp, name, x, _positive, "log-probabilities (<= 0)")


_KL_PRED = ("log_probs", check_log_probs)


@by_flag(
    "log_target",
    {
        False: rowwise_loss(
            pred="log_probs", truth="targets", checks=(_KL_PRED, ("targets", check_target_interval))
        ),
        True: rowwise_loss(
            pred="log_probs", truth="targets", checks=(_KL_PRED, ("targets", check_log_targets))
        ),
    },
)
def kl_divergence(
    xp: Any, log_probs: Array, targets: Array, *, log_target: bool = False
) -> tuple[Array, Any]:
    r"""Kullback-Leibler divergence ``KL(targets || predictions)`` per example.

    .. math::
        \ell = \sum_c t_c (\log t_c - \log q_c), \qquad
        \frac{\partial \ell}{\partial \log q_c} = -t_c

    with ``log_probs`` the predicted log-probabilities ``log q`` and a term 0
    where ``t_c = 0`` (``torch.xlogy``'s convention, also where ``log q_c =
    -inf``).  With ``log_target`` the targets are log-probabilities ``s``:
    ``ℓ = Σ e^{s_c} (s_c - log q_c)``, ``∂ℓ/∂log q_c = -e^{s_c}``.

    One value per example (the class axis ``axis`` summed), so ``"mean"`` is
    PyTorch's ``kl_div(reduction="batchmean")`` for 2-d input; PyTorch's
    ``"mean"`` divides the sum by every element (``sum / (N C)``), and its
    ``"none"`` keeps the classes.  optax's ``kl_divergence`` and
    ``kl_divergence_with_log_targets`` are ``reduction="none"``; its
    ``generalized_kl_divergence`` (``convex_kl_divergence``) adds
    ``Σ (e^{log q} - t)``.  Keras's ``kl_divergence``/``KLDivergence`` takes
    probabilities and clips both to ``[1e-7, 1]``: it is this loss of
    ``log(clip(q))`` and ``clip(t)``.  Core rules: ``log_probs <= 0`` and
    targets in [0, 1] (log-targets ``<= 0``).

    Parameters
    ----------
    log_probs : array, real floating
        Predicted log-probabilities ``log q <= 0`` (``log_softmax`` output).
    targets : array, the shape of ``log_probs``
        The target distribution (log-probabilities with ``log_target``).
    axis : int
        The class axis.
    log_target : bool
        ``targets`` are log-probabilities.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.likelihood import kl_divergence
    >>> t, q = np.array([[0.5, 0.5, 0.0]]), np.array([[0.25, 0.5, 0.25]])
    >>> kl_divergence(np.log(q), t, reduction="none").round(6)  # ½ log 2
    array([0.346574])

    References
    ----------
    S. Kullback and R. A. Leibler, "On Information and Sufficiency", Ann. Math.
    Statist. 22(1), 1951.
    """
    lp, t = log_probs, targets
    zero = xp.zeros_like(lp)
    if log_target:
        q_t = xp.exp(t)
        # e^s (s - log q) is 0 where s = -inf (a target probability of 0)
        terms = q_t * xp.where(t == -math.inf, zero, t - lp)
        return xp.sum(terms, axis=-1), lambda: -q_t  # d/d log q_c = -e^{s_c}
    # t log t and t log q are 0 where t = 0, also against log q = -inf (a mask)
    lp = xp.where((t == 0) & (lp == -math.inf), zero, lp)
    terms = t * (xp.log(xlogy_safe(xp, t, t)) - lp)
    return xp.sum(terms, axis=-1), lambda: -t  # d/d log q_c = -t_c


# --------------------------------------------------------------------------- NLL


@sparse_loss(
    pred="log_probs", checks=(("log_probs", check_log_probs),), class_weight=True, ignore_index=True
)
def negative_log_likelihood(xp: Any, log_probs: Array, labels: Array) -> tuple[Array, Any]:
    r"""Negative log-likelihood of integer ``labels`` under log-probabilities.

    .. math:: \ell = -w_y \log q_y, \qquad \frac{\partial \ell}{\partial \log q_c} = -w_y [c = y]

    PyTorch's ``nll_loss``/``NLLLoss``: with ``class_weight`` ``w`` each
    example counts ``w_y`` and ``"mean"`` divides by their sum (PyTorch's
    weighted mean); examples labelled ``ignore_index`` count nowhere (an
    all-ignored batch has mean 0, where PyTorch gives NaN).  ``log_probs``
    are log-probabilities (``log_softmax`` output): a positive value is
    refused (a core rule), which catches logits passed by mistake.

    Parameters
    ----------
    log_probs : array, real floating
        Log-probabilities ``<= 0`` (``log_softmax`` output).
    labels : integer array, the shape of ``log_probs`` without ``axis``
        Class ids in ``[0, C)`` (or ``ignore_index``).
    axis : int
        The class axis.
    class_weight : array (C,), optional
        Per-class weight; ``"mean"`` divides by the counted labels' weights.
    ignore_index : int, optional
        A label that counts nowhere.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np
    >>> from losskit.losses.likelihood import negative_log_likelihood as nll
    >>> log_q = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    >>> nll(log_q, np.array([0, 1]), reduction="none").round(6)  # -log .5, -log .8
    array([0.693147, 0.223144])

    References
    ----------
    PyTorch, ``torch.nn.NLLLoss``; C. M. Bishop, *Pattern Recognition and
    Machine Learning*, 2006, sec. 4.3.4.
    """
    num_classes = log_probs.shape[-1]
    onehot = is_label(xp, labels, num_classes)
    # d/d log q_c = -[c = y]
    return -gather_last(xp, log_probs, labels), lambda: -cast(xp, onehot, log_probs.dtype)
