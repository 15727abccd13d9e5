"""Cross-entropy over classes: softmax on logits, categorical on probabilities; dense and sparse.

Every public loss here is a thin shell over a private implementation that
returns ``(value, gradient)``; :func:`losskit.value_and_grad` calls the
implementation with ``with_grad=True``.  An implementation reads: get the
namespace, validate once, move the class axis last, plan the reduction, pick
the fused kernel or the portable path, compute, reduce.
"""

from __future__ import annotations

from typing import Any

from .. import _dispatch, _torch_native
from .._arrays import (
    check_probs,
    class_back,
    class_last,
    clipped,
    gather_last,
    is_label,
    pass_through,
    per_example,
    ratio,
    safe_labels,
    xlogy_safe,
)
from .._backend import Array, cast, compute_dtype, namespace, quiet_numpy, shape_of
from .._config import core_rules
from .._gradient import deliver, differentiable
from .._reduce import Reduction, plan
from .._validation import (
    Invalid,
    check_class_axis,
    check_class_weight,
    check_floating,
    check_fraction,
    check_grad_out,
    check_ignore_index,
    check_label_range,
    check_labels_dtype,
    check_labels_shape,
    check_paired,
    check_reduction,
    check_target_interval,
    check_weight_values,
    warn_if_probabilities,
    warn_if_unnormalized,
)
from ..activations import NegLogSoftmax

Result = tuple[Array, Array | None]


# --------------------------------------------------------------------------- softmax, dense


def _softmax_cross_entropy(
    logits: Array,
    targets: Array,
    *,
    axis: int,
    label_smoothing: float,
    reduction: str,
    sample_weight: Array | None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    xp, logits, targets, sample_weight = namespace(
        logits, targets, sample_weight, names=("targets", "sample_weight")
    )
    reduction = check_paired(xp, "logits", logits, "targets", targets, reduction, grad_out)
    axis = check_class_axis("logits", logits, axis)
    eps = check_fraction("label_smoothing", label_smoothing)
    dtype = compute_dtype(xp, logits.dtype)
    x = class_last(xp, logits, axis)
    warn_if_probabilities(xp, x, "softmax_cross_entropy", "categorical_cross_entropy")
    invalid = Invalid(xp, shape_of(x)[:-1])
    kernels = _dispatch.kernels_for(xp, x)
    if kernels is None:  # the fused kernel checks the targets in the pass that reads them
        invalid.add(per_example(xp, check_target_interval(xp, "targets", targets), axis))
    t = cast(xp, class_last(xp, targets, axis), dtype)
    num_classes = x.shape[-1]
    red = plan(xp, reduction, shape_of(x)[:-1], dtype, sample_weight=sample_weight, invalid=invalid)

    if kernels is not None:
        try:
            return _dense_kernel(xp, kernels, x, t, eps, red, axis, logits, with_grad, grad_out)
        except kernels.TargetOutOfRange as bad:
            check_target_interval(xp, "targets", targets)  # the message, with the position
            raise ValueError(f"`targets` must be in [0, 1]; got {bad.value!r}") from None

    with quiet_numpy(xp):
        x = cast(xp, x, dtype)
        if eps:
            t = (1 - eps) * t + eps / num_classes
        nls = NegLogSoftmax(xp, x)
        value = red.apply(nls.weighted_sum(t))
        if not with_grad:
            return value, None
        # d loss / d z = sum(t) softmax(z) - t   (sum(t) = 1 for distributions)
        dz = xp.sum(t, axis=-1, keepdims=True) * nls.softmax() - t
        grad = class_back(xp, red.grad(dz, class_axis=True), axis)
    return value, deliver(xp, grad, logits, grad_out)


def _dense_kernel(
    xp: Any,
    kernels: Any,
    x: Array,
    t: Array,
    eps: float,
    red: Reduction,
    axis: int,
    logits: Array,
    with_grad: bool,
    grad_out: Any,
) -> Result:
    x2, t2 = _dispatch.as_rows(x), _dispatch.as_rows(t)
    coef, g2, direct = _kernel_grad_args(red, x, with_grad, grad_out, axis)
    losses = kernels.dense_xent_rows(x2, t2, eps, coef, g2, check_targets=core_rules())
    return _kernel_result(xp, losses, red, x, g2, direct, axis, logits, grad_out)


def _kernel_grad_args(
    red: Reduction, x: Array, with_grad: bool, grad_out: Any, axis: int
) -> tuple[Any, Any, bool]:
    """The row coefficients, the ``(N, C)`` buffer the kernel writes the gradient
    into, and whether that buffer is the caller's ``grad_out`` itself.

    The caller's ``grad_out`` is written directly when its class axis is last
    and it is C-contiguous (the common case, including in-place into the
    logits); otherwise the kernel writes a fresh buffer.
    """
    if not with_grad:
        return None, None, False
    import numpy as np

    coef = _dispatch.row_coef(red.coef, shape_of(x)[:-1], x.dtype)
    n, c = coef.shape[0], x.shape[-1]
    if grad_out is not None and axis == grad_out.ndim - 1 and grad_out.flags.c_contiguous:
        return coef, grad_out.reshape(n, c), True
    return coef, np.empty((n, c), dtype=x.dtype), False


def _kernel_result(
    xp: Any,
    losses: Array,
    red: Reduction,
    x: Array,
    g2: Any,
    direct: bool,
    axis: int,
    logits: Array,
    grad_out: Any,
) -> Result:
    value = red.apply(xp.reshape(losses, shape_of(x)[:-1]))
    if g2 is None:
        return value, None
    if direct:
        return value, grad_out
    grad = class_back(xp, xp.reshape(g2, shape_of(x)), axis)
    return value, deliver(xp, grad, logits, grad_out)


@differentiable(_softmax_cross_entropy)
def softmax_cross_entropy(
    logits: Array,
    targets: Array,
    *,
    axis: int = -1,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Cross-entropy between target distributions and the softmax of logits.

    .. math::
        \ell = -\sum_c t_c \log \mathrm{softmax}(z)_c, \qquad
        \frac{\partial \ell}{\partial z_c} = \Big(\sum_k t_k\Big)\,\mathrm{softmax}(z)_c - t_c

    With label smoothing ε the targets become ``(1-ε) t + ε/C``.  The loss of a
    class whose target is 0 is 0 whatever its logit, so logits of any finite
    magnitude give a finite loss whenever the true loss is representable, and
    always a finite gradient.  Replaces ``tf.nn.softmax_cross_entropy_with_logits``
    and ``optax.softmax_cross_entropy``.

    Parameters
    ----------
    logits : array, real floating
        Unnormalised scores, any real values.
    targets : array, the shape of ``logits``
        A distribution over classes along ``axis`` (one-hot or soft).
    axis : int
        The class axis.
    label_smoothing : float in [0, 1]
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns one loss per example (the class axis removed);
        ``"mean"`` averages them (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        The batch shape (a leading part of the unreduced loss's shape) or the
        full unreduced shape; ``"mean"`` becomes the weighted mean.

    Returns
    -------
    The loss, of the logits' kind and device; float32 for half-precision input.

    Examples
    --------
    The example of TensorFlow's documentation for
    ``tf.nn.softmax_cross_entropy_with_logits``:

    >>> import numpy as np, losskit as lk
    >>> logits = np.array([[4.0, 2.0, 1.0], [0.0, 5.0, 1.0]], dtype=np.float32)
    >>> targets = np.array([[1.0, 0.0, 0.0], [0.0, 0.8, 0.2]], dtype=np.float32)
    >>> lk.softmax_cross_entropy(logits, targets, reduction="none").round(6)
    array([0.169846, 0.824745], dtype=float32)

    References
    ----------
    Goodfellow, Bengio, Courville, *Deep Learning* (2016), section 6.2.2.3.
    Szegedy et al., "Rethinking the Inception Architecture" (2016): label smoothing.
    """
    return _softmax_cross_entropy(
        logits,
        targets,
        axis=axis,
        label_smoothing=label_smoothing,
        reduction=reduction,
        sample_weight=sample_weight,
    )[0]


# --------------------------------------------------------------------------- softmax, sparse


def _sparse_softmax_cross_entropy(
    logits: Array,
    labels: Array,
    *,
    axis: int,
    class_weight: Array | None,
    ignore_index: int | None,
    label_smoothing: float,
    reduction: str,
    sample_weight: Array | None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    xp, logits, labels, class_weight, sample_weight = namespace(
        logits,
        labels,
        class_weight,
        sample_weight,
        names=("labels", "class_weight", "sample_weight"),
    )
    reduction = check_reduction(reduction)
    check_floating(xp, "logits", logits)
    check_labels_dtype(xp, labels)
    axis = check_class_axis("logits", logits, axis)
    check_labels_shape(labels, "logits", logits, axis)
    eps = check_fraction("label_smoothing", label_smoothing)
    ignore_index = check_ignore_index(ignore_index)
    check_grad_out(xp, grad_out, logits)
    num_classes = logits.shape[axis]
    invalid = Invalid(xp, shape_of(labels))
    if class_weight is not None:
        check_class_weight(xp, class_weight, num_classes)
        invalid.add_anywhere(check_weight_values(xp, "class_weight", class_weight))
    out_of_range = check_label_range(xp, labels, num_classes, ignore_index)
    invalid.add(out_of_range)
    x = class_last(xp, logits, axis)
    warn_if_probabilities(xp, x, "sparse_softmax_cross_entropy", "sparse_categorical_cross_entropy")
    dtype = compute_dtype(xp, logits.dtype)
    cw = None if class_weight is None else cast(xp, class_weight, dtype)

    # What each example counts for in the mean: 0 if ignored, else its class weight.
    counted = None if ignore_index is None else labels != ignore_index
    safe = safe_labels(xp, labels, counted, out_of_range)
    w_label = None if cw is None else xp.reshape(xp.take(cw, xp.reshape(safe, (-1,))), safe.shape)
    counts = w_label
    if counted is not None:
        mask = cast(xp, counted, dtype)
        counts = mask if w_label is None else w_label * mask
    red = plan(
        xp,
        reduction,
        shape_of(labels),
        dtype,
        sample_weight=sample_weight,
        counts=counts,
        invalid=invalid,
    )

    kernels = _dispatch.kernels_for(xp, x)
    if kernels is not None:
        import numpy as np

        x2 = _dispatch.as_rows(x)
        labels1 = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)
        cw1 = None if cw is None else np.ascontiguousarray(cw, dtype=x.dtype)
        coef, g2, direct = _kernel_grad_args(red, x, with_grad, grad_out, axis)
        losses = kernels.sparse_xent_rows(x2, labels1, cw1, ignore_index, eps, coef, g2)
        return _kernel_result(xp, losses, red, x, g2, direct, axis, logits, grad_out)

    if (
        not with_grad
        and eps == 0
        and cw is None
        and invalid.mask is None
        and _torch_native.applies(xp)
    ):
        x = cast(xp, x, dtype)
        if red.takes_sum:
            total = _torch_native.sparse_cross_entropy(x, labels, ignore_index, "sum")
            return red.of_sum(total), None
        loss = _torch_native.sparse_cross_entropy(x, labels, ignore_index, "none")
        return red.apply(loss), None

    with quiet_numpy(xp):
        x = cast(xp, x, dtype)
        nls = NegLogSoftmax(xp, x)
        # PyTorch's F.cross_entropy(weight=w, label_smoothing=ε):
        # (1-ε) w_y (-log p_y) + ε/C sum_c w_c (-log p_c)
        a_label = (1 - eps) * (xp.ones_like(nls.log_norm[..., 0]) if w_label is None else w_label)
        loss = nls.at(safe, a_label, gather_last)
        if eps:
            a_smooth = eps / num_classes if cw is None else (eps / num_classes) * cw
            loss = loss + nls.weighted_sum(a_smooth * xp.ones_like(x))
        if counted is not None:
            loss = xp.where(counted, loss, xp.zeros_like(loss))
        value = red.apply(loss)
        if not with_grad:
            return value, None
        # d/dz = (1-ε) w_y (softmax(z) - onehot(y)) + ε/C (sum(w) softmax(z) - w)
        p = nls.softmax()
        dz = xp.where(is_label(xp, safe, num_classes), p - 1, p)
        if w_label is not None:
            dz = w_label[..., None] * dz
        if eps:
            spread = num_classes * p - 1 if cw is None else xp.sum(cw) * p - cw
            dz = (1 - eps) * dz + (eps / num_classes) * spread
        if counted is not None:
            dz = dz * mask[..., None]
        grad = class_back(xp, red.grad(dz, class_axis=True), axis)
    return value, deliver(xp, grad, logits, grad_out)


@differentiable(_sparse_softmax_cross_entropy)
def sparse_softmax_cross_entropy(
    logits: Array,
    labels: Array,
    *,
    axis: int = -1,
    class_weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Cross-entropy of integer class labels under the softmax of logits.

    .. math::
        \ell = -\log \mathrm{softmax}(z)_y = \mathrm{logsumexp}(z) - z_y, \qquad
        \frac{\partial \ell}{\partial z} = \mathrm{softmax}(z) - \mathrm{onehot}(y)

    With class weights ``w`` and label smoothing ε it is PyTorch's
    ``F.cross_entropy(weight=w, label_smoothing=ε)`` exactly:
    ``(1-ε) w_y (-log p_y) + ε/C Σ_c w_c (-log p_c)``, and ``"mean"`` divides by
    the summed weight ``Σ w_y`` of the counted labels (times ``sample_weight``
    when given).  Examples labelled ``ignore_index`` count nowhere: not in the
    value, the gradient or the mean's denominator; a batch with nothing
    counted has loss 0 and gradient 0, never NaN.  A label outside ``[0, C)``
    that is not ``ignore_index`` raises ``ValueError``.

    Parameters
    ----------
    logits : array, real floating, ``(..., C, ...)`` with the classes on ``axis``
    labels : integer array, the logits' shape without the class axis
        (``(N, C, d1, d2)`` logits with ``axis=1`` take ``(N, d1, d2)`` labels).
    axis : int
    class_weight : array ``(C,)``, optional
    ignore_index : int, optional
    label_smoothing : float in [0, 1]
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the weighted per-example losses, 0 for ignored ones.
    sample_weight : array, optional
        The batch shape (a leading part of the labels' shape) or the labels' shape.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> logits = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]], dtype=np.float32)
    >>> labels = np.array([2, 1])
    >>> # logsumexp(z) - z_y: 6 + log(1 + e^-4 + e^-5.5) - 6 and 3 + log(1 + e^-2.9 + e^-3) - 0
    >>> lk.sparse_softmax_cross_entropy(logits, labels, reduction="none").round(6)
    array([0.022155, 3.099674], dtype=float32)
    >>> loss, grad = lk.value_and_grad(lk.sparse_softmax_cross_entropy)(logits, labels)
    >>> grad.sum(axis=-1).round(6)  # softmax - onehot: each row sums to 0
    array([0., 0.], dtype=float32)

    References
    ----------
    PyTorch ``torch.nn.functional.cross_entropy``; TensorFlow
    ``tf.nn.sparse_softmax_cross_entropy_with_logits``.
    """
    return _sparse_softmax_cross_entropy(
        logits,
        labels,
        axis=axis,
        class_weight=class_weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction=reduction,
        sample_weight=sample_weight,
    )[0]


def _categorical_cross_entropy(
    probs: Array,
    targets: Array,
    *,
    axis: int,
    eps: float,
    reduction: str,
    sample_weight: Array | None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    xp, probs, targets, sample_weight = namespace(
        probs, targets, sample_weight, names=("targets", "sample_weight")
    )
    reduction = check_paired(xp, "probs", probs, "targets", targets, reduction, grad_out)
    axis = check_class_axis("probs", probs, axis)
    eps, bad_probs = check_probs(xp, probs, eps)
    invalid = Invalid(xp, shape_of(probs)[:axis] + shape_of(probs)[axis + 1 :])
    invalid.add(per_example(xp, bad_probs, axis))
    invalid.add(per_example(xp, check_target_interval(xp, "targets", targets), axis))
    dtype = compute_dtype(xp, probs.dtype)
    p = cast(xp, class_last(xp, probs, axis), dtype)
    warn_if_unnormalized(xp, p, "categorical_cross_entropy", probs.dtype)
    t = cast(xp, class_last(xp, targets, axis), dtype)
    red = plan(xp, reduction, shape_of(p)[:-1], dtype, sample_weight=sample_weight, invalid=invalid)
    invalid.watch(p, class_axis=True)  # p is clipped on its way to the loss
    with quiet_numpy(xp):
        pc, inside = clipped(xp, p, eps)
        loss = -xp.sum(t * xp.log(xlogy_safe(xp, t, pc)), axis=-1)
        value = red.apply(loss)
        if not with_grad:
            return value, None
        # d loss / d p_c = -t_c / p_c  (0 where p_c was clipped)
        dp = pass_through(xp, -ratio(xp, t, pc), inside)
        grad = class_back(xp, red.grad(dp, class_axis=True), axis)
    return value, deliver(xp, grad, probs, grad_out)


@differentiable(_categorical_cross_entropy)
def categorical_cross_entropy(
    probs: Array,
    targets: Array,
    *,
    axis: int = -1,
    eps: float = 1e-7,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Cross-entropy of target distributions under predicted probabilities.

    .. math::
        \ell = -\sum_c t_c \log \tilde p_c, \quad \tilde p = \mathrm{clip}(p, \epsilon, 1-\epsilon),
        \qquad \frac{\partial \ell}{\partial p_c} = -t_c / \tilde p_c \ \text{(0 where clipped)}

    ``probs`` must lie in [0, 1] (``ValueError`` otherwise).  Rows that do not
    sum to 1 within a tolerance fit for the dtype (about 1e-3 for float32) give
    :class:`UnnormalizedProbabilitiesWarning`; they are not renormalised (Keras
    renormalises silently; ``losskit.compat.tf`` does as Keras does).  With
    ``eps=0`` a zero probability of a class with positive target gives an
    infinite loss, which is the true value.  For logits use
    :func:`softmax_cross_entropy`, which is exact and stable.

    Parameters
    ----------
    probs : array, real floating
        Predicted probabilities in [0, 1], rows summing to 1 along ``axis``.
    targets : array, the shape of ``probs``
        A distribution over classes along ``axis`` (one-hot or soft).
    axis : int
        The class axis.
    eps : float in [0, 0.5)
        The probabilities are clipped to ``[eps, 1 - eps]``.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> probs = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    >>> targets = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> lk.categorical_cross_entropy(probs, targets, reduction="none").round(6)  # -log .95, -log .1
    array([0.051293, 2.302585])
    """
    return _categorical_cross_entropy(
        probs, targets, axis=axis, eps=eps, reduction=reduction, sample_weight=sample_weight
    )[0]


def _sparse_categorical_cross_entropy(
    probs: Array,
    labels: Array,
    *,
    axis: int,
    eps: float,
    reduction: str,
    sample_weight: Array | None,
    with_grad: bool = False,
    grad_out: Any = None,
) -> Result:
    xp, probs, labels, sample_weight = namespace(
        probs, labels, sample_weight, names=("labels", "sample_weight")
    )
    reduction = check_reduction(reduction)
    check_floating(xp, "probs", probs)
    check_labels_dtype(xp, labels)
    axis = check_class_axis("probs", probs, axis)
    check_labels_shape(labels, "probs", probs, axis)
    eps, bad_probs = check_probs(xp, probs, eps)
    check_grad_out(xp, grad_out, probs)
    num_classes = probs.shape[axis]
    out_of_range = check_label_range(xp, labels, num_classes, None)
    invalid = Invalid(xp, shape_of(labels))
    invalid.add(per_example(xp, bad_probs, axis))
    invalid.add(out_of_range)
    labels = safe_labels(xp, labels, None, out_of_range)
    dtype = compute_dtype(xp, probs.dtype)
    p = cast(xp, class_last(xp, probs, axis), dtype)
    warn_if_unnormalized(xp, p, "sparse_categorical_cross_entropy", probs.dtype)
    red = plan(xp, reduction, shape_of(labels), dtype, sample_weight=sample_weight, invalid=invalid)
    invalid.watch(p, class_axis=True)  # p is clipped on its way to the loss
    with quiet_numpy(xp):
        py = gather_last(xp, p, labels)
        pc, inside = clipped(xp, py, eps)
        value = red.apply(-xp.log(pc))
        if not with_grad:
            return value, None
        # d loss / d p = -onehot(y) / p_y  (0 where p_y was clipped)
        dpy = pass_through(xp, -ratio(xp, xp.ones_like(pc), pc), inside)
        dp = xp.where(is_label(xp, labels, num_classes), dpy[..., None], xp.zeros_like(p))
        grad = class_back(xp, red.grad(dp, class_axis=True), axis)
    return value, deliver(xp, grad, probs, grad_out)


@differentiable(_sparse_categorical_cross_entropy)
def sparse_categorical_cross_entropy(
    probs: Array,
    labels: Array,
    *,
    axis: int = -1,
    eps: float = 1e-7,
    reduction: str = "mean",
    sample_weight: Array | None = None,
) -> Array:
    r"""Cross-entropy of integer class labels under predicted probabilities.

    .. math::
        \ell = -\log \mathrm{clip}(p_y, \epsilon, 1-\epsilon), \qquad
        \frac{\partial \ell}{\partial p_c} = -[c = y] / \tilde p_y \ \text{(0 where clipped)}

    ``probs`` must lie in [0, 1]; rows not summing to 1 give
    :class:`UnnormalizedProbabilitiesWarning`.  Labels must be in ``[0, C)``.

    Parameters
    ----------
    probs : array, real floating
        Predicted probabilities in [0, 1], rows summing to 1 along ``axis``.
    labels : integer array, the shape of ``probs`` without ``axis``
        Class ids in ``[0, C)``.
    axis : int
        The class axis.
    eps : float in [0, 0.5)
        The probabilities are clipped to ``[eps, 1 - eps]``.
    reduction : {"mean", "sum", "none"}
        ``"none"``: one loss per example (the class axis removed); ``"mean"``:
        their mean (weighted by ``sample_weight`` if given).
    sample_weight : array, optional
        A leading part of the unreduced loss's shape, or all of it.

    Examples
    --------
    >>> import numpy as np, losskit as lk
    >>> probs = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    >>> lk.sparse_categorical_cross_entropy(probs, np.array([1, 2]), reduction="none").round(6)
    array([0.051293, 2.302585])
    """
    return _sparse_categorical_cross_entropy(
        probs, labels, axis=axis, eps=eps, reduction=reduction, sample_weight=sample_weight
    )[0]
