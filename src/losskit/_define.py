"""What a loss definition leaves out: the shell every elementwise loss shares.

A loss is written as one short function of arrays already validated and cast
to the compute dtype, returning its unreduced value and its derivative with
respect to the prediction (a thunk, so the forward pass never computes it):

    @elementwise_loss(checks=(("target", check_target_interval),))
    def binary_thing(xp, pred, target, *, margin=1.0):
        '''Docstring with the formula.'''
        value = ...
        return value, lambda: ...   # d value / d pred

:func:`elementwise_loss` turns it into the public loss
``binary_thing(pred, target, *, margin=1.0, reduction="mean", sample_weight=None)``
and records the implementation that :func:`losskit.value_and_grad` calls.  The
shell does what every loss needs once (the Keras ``LossFunctionWrapper`` and
scikit-learn ``_loss`` idea): the namespace and conversion of the arguments,
dtype and shape checks, the loss's value checks (raising eagerly, NaN under a
trace), the compute dtype for half precision, the reduction with
``sample_weight``, ``grad_out``.  torch autograd and ``jax.grad``
differentiate the value formula itself, so every argument gets its derivative.

:func:`rowwise_loss` and :func:`sparse_loss` do the same for a loss of one
value per example over a class axis; :func:`multi_array_loss` for a loss of
several arrays (``cosine_embedding(x1, x2, targets)``,
``triplet_margin(anchor, positive, negative)``), optionally over a feature axis.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ._arrays import class_back, class_last, safe_labels
from ._backend import Array, cast, compute_dtype, namespace, quiet_numpy, shape_of
from ._gradient import IMPL_ATTRIBUTE, deliver
from ._reduce import Reduction, plan
from ._validation import (
    Invalid,
    _is_int,
    check_class_axis,
    check_class_weight,
    check_floating,
    check_grad_out,
    check_ignore_index,
    check_label_range,
    check_labels_dtype,
    check_labels_shape,
    check_numeric,
    check_paired,
    check_reduction,
    check_same_shape,
    check_weight_values,
)

# (argument name, check) pairs; a check is ``check(xp, name, array) -> traced mask | None``.
ValueCheck = tuple[str, Callable[[Any, str, Array], Array | None]]
Body = Callable[..., tuple[Array, Any]]

_KEYWORD = inspect.Parameter.KEYWORD_ONLY
_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD


def _public_signature(
    body: Body, pred: str, truth: str, shell_options: Sequence[tuple[str, Any]] = ()
) -> inspect.Signature:
    """``(pred, truth, *, <shell's options>, <body's options>, reduction, sample_weight)``."""
    options = list(inspect.signature(body).parameters.values())[3:]
    return inspect.Signature(
        [
            inspect.Parameter(pred, _POSITIONAL),
            inspect.Parameter(truth, _POSITIONAL),
            *(inspect.Parameter(name, _KEYWORD, default=value) for name, value in shell_options),
            *options,
            inspect.Parameter("reduction", _KEYWORD, default="mean"),
            inspect.Parameter("sample_weight", _KEYWORD, default=None),
        ]
    )


def _publish(body: Body, signature: inspect.Signature, impl: Callable[..., Any]) -> Any:
    """The public function: ``body``'s name and docstring, ``signature``, value of ``impl``."""

    @functools.wraps(body)
    def public(*args: Any, **kwargs: Any) -> Array:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return impl(*bound.args, **bound.kwargs)[0]

    del public.__wrapped__  # the public signature is ours, not the body's
    public.__signature__ = signature  # type: ignore[attr-defined]
    setattr(public, IMPL_ATTRIBUTE, impl)
    return public


def _evaluate(
    xp: Any,
    body: Body,
    args: tuple[Array, ...],
    options: dict[str, Any],
    red: Reduction,
    with_grad: bool,
    class_axis: int | None,
    scale: Array | None = None,
    counted: Array | None = None,
) -> tuple[Array, Array | None]:
    """Run the body, reduce its value and, if asked, scale its derivative.

    ``class_axis`` is where the derivative's last (class) axis goes back to in
    the user's layout (None: elementwise).  ``scale`` multiplies the body's
    value and derivative per example (class weights); examples not
    ``counted`` (ignored) are 0 in both, by a ``where``: their placeholder
    label may point at a masked class, whose loss is inf, and 0 * inf is NaN.
    """
    # A bad value's gradient must be NaN even where the body clips the prediction.
    red.invalid.watch(args[0], class_axis=class_axis is not None)
    with quiet_numpy(xp):
        value, derivative = body(xp, *args, **options)
        if counted is not None:
            value = xp.where(counted, value, xp.zeros_like(value))
        if scale is not None:
            value = value * scale
        result = red.apply(value)
        if not with_grad:
            return result, None
        d = derivative() if callable(derivative) else derivative
        per_row = (lambda a: a) if class_axis is None else (lambda a: a[..., None])
        if counted is not None:
            d = xp.where(per_row(counted), d, xp.zeros_like(d))
        if scale is not None:
            d = d * per_row(scale)
        grad = red.grad(d, class_axis=class_axis is not None)
    return result, grad if class_axis is None else class_back(xp, grad, class_axis)


def _paired_impl(
    body: Body, pred: str, truth: str, checks: Sequence[ValueCheck], per_example: bool
) -> Callable[..., tuple[Array, Array | None]]:
    """The implementation behind a loss whose truth has the prediction's shape.

    ``per_example``: one value per example over a class ``axis`` (moved last
    for the body; a bad value anywhere in an example marks the example);
    otherwise one value per element.
    """

    def impl(
        p: Array,
        t: Array,
        /,
        *,
        reduction: str,
        sample_weight: Array | None,
        axis: int = -1,
        with_grad: bool = False,
        grad_out: Any = None,
        **options: Any,
    ) -> tuple[Array, Array | None]:
        xp, p, t, sample_weight = namespace(p, t, sample_weight, names=(truth, "sample_weight"))
        reduction = check_paired(xp, pred, p, truth, t, reduction, grad_out)
        shape = shape_of(p)
        if per_example:
            axis = check_class_axis(pred, p, axis)
            shape = shape[:axis] + shape[axis + 1 :]
        invalid = Invalid(xp, shape)
        for name, check in checks:
            bad = check(xp, name, p if name == pred else t)
            invalid.add(bad if bad is None or not per_example else xp.any(bad, axis=axis))
        dtype = compute_dtype(xp, p.dtype)
        red = plan(xp, reduction, shape, dtype, sample_weight=sample_weight, invalid=invalid)
        x, y = (class_last(xp, p, axis), class_last(xp, t, axis)) if per_example else (p, t)
        args = (cast(xp, x, dtype), cast(xp, y, dtype))
        class_axis = axis if per_example else None
        value, grad = _evaluate(xp, body, args, options, red, with_grad, class_axis)
        return value, None if grad is None else deliver(xp, grad, p, grad_out)

    return impl


def elementwise_loss(
    *, pred: str = "pred", truth: str = "target", checks: Sequence[ValueCheck] = ()
) -> Callable[[Body], Callable[..., Array]]:
    """Make a public loss of ``body(xp, pred, truth, **options) -> (value, d value / d pred)``.

    The truth has the prediction's shape (losskit never broadcasts) and the
    loss one value per element under ``reduction="none"``.  ``checks`` name
    the value rules of the arguments (``pred`` or ``truth``).  The derivative
    may be an array or a zero-argument function computing it.
    """

    def decorate(body: Body) -> Callable[..., Array]:
        impl = _paired_impl(body, pred, truth, checks, per_example=False)
        return _publish(body, _public_signature(body, pred, truth), impl)

    return decorate


def rowwise_loss(
    *, pred: str = "logits", truth: str = "targets", checks: Sequence[ValueCheck] = ()
) -> Callable[[Body], Callable[..., Array]]:
    """A loss of one value per example, the truth a distribution (or scores) over classes.

    ``body(xp, pred, truth, **options) -> (loss per row, d loss / d pred)``
    sees the class axis last; the public function takes ``axis=-1`` and
    moves it.  A check's bad mask (over classes) marks the whole example.
    """

    def decorate(body: Body) -> Callable[..., Array]:
        impl = _paired_impl(body, pred, truth, checks, per_example=True)
        return _publish(body, _public_signature(body, pred, truth, (("axis", -1),)), impl)

    return decorate


def sparse_loss(
    *,
    pred: str = "logits",
    checks: Sequence[ValueCheck] = (),
    class_weight: bool = False,
    ignore_index: bool = False,
) -> Callable[[Body], Callable[..., Array]]:
    """A loss of one value per example against integer class ``labels``.

    ``body(xp, pred, labels, **options) -> (loss per row, d loss / d pred)``
    sees the class axis last and labels in ``[0, C)`` (out-of-range labels in
    a trace are replaced by 0 and their example made NaN).  With
    ``class_weight`` the public function takes ``class_weight=None``: each
    example's loss and derivative are multiplied by its label's weight and
    ``"mean"`` divides by their sum; with ``ignore_index`` it takes
    ``ignore_index=None``: those examples count nowhere.
    """
    shell: list[tuple[str, Any]] = [("axis", -1)]
    shell += [("class_weight", None)] if class_weight else []
    shell += [("ignore_index", None)] if ignore_index else []

    def decorate(body: Body) -> Callable[..., Array]:
        def impl(
            p: Array,
            labels: Array,
            /,
            *,
            axis: int,
            reduction: str,
            sample_weight: Array | None,
            class_weight: Array | None = None,
            ignore_index: int | None = None,
            with_grad: bool = False,
            grad_out: Any = None,
            **options: Any,
        ) -> tuple[Array, Array | None]:
            xp, p, labels, class_weight, sample_weight = namespace(
                p,
                labels,
                class_weight,
                sample_weight,
                names=("labels", "class_weight", "sample_weight"),
            )
            reduction = check_reduction(reduction)
            check_floating(xp, pred, p)
            check_labels_dtype(xp, labels)
            axis = check_class_axis(pred, p, axis)
            check_labels_shape(labels, pred, p, axis)
            ignore_index = check_ignore_index(ignore_index)
            check_grad_out(xp, grad_out, p)
            num_classes = p.shape[axis]
            shape = shape_of(labels)
            invalid = Invalid(xp, shape)
            if class_weight is not None:
                check_class_weight(xp, class_weight, num_classes)
                invalid.add_anywhere(check_weight_values(xp, "class_weight", class_weight))
            out_of_range = check_label_range(xp, labels, num_classes, ignore_index)
            invalid.add(out_of_range)
            for name, check in checks:
                bad = check(xp, name, p)
                invalid.add(None if bad is None else xp.any(bad, axis=axis))
            dtype = compute_dtype(xp, p.dtype)
            counted = None if ignore_index is None else labels != ignore_index
            safe = safe_labels(xp, labels, counted, out_of_range)
            scale = None
            if class_weight is not None:
                cw = cast(xp, class_weight, dtype)
                scale = xp.reshape(xp.take(cw, xp.reshape(safe, (-1,))), shape)
            if counted is not None:
                mask = cast(xp, counted, dtype)
                scale = mask if scale is None else scale * mask
            red = plan(
                xp,
                reduction,
                shape,
                dtype,
                sample_weight=sample_weight,
                counts=scale,
                invalid=invalid,
            )
            args = (cast(xp, class_last(xp, p, axis), dtype), safe)
            value, grad = _evaluate(xp, body, args, options, red, with_grad, axis, scale, counted)
            return value, None if grad is None else deliver(xp, grad, p, grad_out)

        return _publish(body, _public_signature(body, pred, "labels", shell), impl)

    return decorate


# --------------------------------------------------------------------------- several arrays


def _check_feature_axis(name: str, x: Array, axis: int) -> int:
    """Normalise ``axis`` against ``x``'s dimensions; the feature axis must exist."""
    ndim = len(x.shape)
    if ndim == 0:
        msg = f"`{name}` must have a feature axis (at least 1 dimension); got a 0-d array"
        raise ValueError(msg)
    msg = f"`axis` must be an int in [{-ndim}, {ndim}) for {ndim}-d `{name}`; got {axis!r}"
    if not _is_int(axis):
        raise TypeError(msg)
    if not -ndim <= axis < ndim:
        raise ValueError(msg)
    return int(axis) % ndim


def _check_per_example_shape(name: str, t: Array, first: str, x: Array, axis: int | None) -> None:
    """A truth array has the unreduced shape: ``x``'s, without its feature ``axis`` if any."""
    shape = shape_of(x)
    if axis is None:
        check_same_shape(name, t, first, x)
        return
    expected = shape[:axis] + shape[axis + 1 :]
    if shape_of(t) != expected:
        msg = (
            f"`{name}` must have the shape of `{first}` {shape} without its feature axis "
            f"{axis}, that is {expected}; got {shape_of(t)}"
        )
        raise ValueError(msg)


def multi_array_loss(
    *,
    inputs: Sequence[str],
    truth: Sequence[str] = (),
    checks: Sequence[ValueCheck] = (),
    feature_axis: bool = False,
) -> Callable[[Body], Callable[..., Array]]:
    """A loss of several arrays: ``body(xp, *inputs, *truth, **options) -> (value, d / d first)``.

    For the pairwise losses, ``cosine_embedding(x1, x2, targets)`` or
    ``triplet_margin(anchor, positive, negative)``.  ``inputs`` name the
    floating arrays, all of the first one's shape; ``truth`` the numeric ones
    (targets: float, int or bool), of the unreduced shape.  With
    ``feature_axis`` the public function takes ``axis=-1``: the inputs'
    feature axis, moved last for the body, which returns one value per
    example (the inputs' shape without that axis, the truth's shape);
    otherwise every array has the inputs' shape and the body returns one
    value per element.  The body sees every array cast to the compute dtype
    (float32 for half precision) and returns its unreduced value and its
    derivative with respect to the first input (an array or a thunk), of the
    first input's layout (feature axis last).

    ``checks`` are ``(name, check)`` pairs for any of the arrays (a bad
    feature of an input marks its example), with the NaN rule.  The public
    signature is ``(*inputs, *truth, *, [axis=-1,] <body's options>,
    reduction="mean", sample_weight=None)`` and ``value_and_grad`` gives the
    gradient with respect to the first input; torch autograd and ``jax.grad``
    differentiate the body's value formula for every floating array.
    """
    names = (*inputs, *truth)
    first = inputs[0]

    def decorate(body: Body) -> Callable[..., Array]:
        def impl(
            *arrays: Array,
            reduction: str,
            sample_weight: Array | None,
            axis: int = -1,
            with_grad: bool = False,
            grad_out: Any = None,
            **options: Any,
        ) -> tuple[Array, Array | None]:
            xp, *converted = namespace(*arrays, sample_weight, names=(*names[1:], "sample_weight"))
            sample_weight = converted.pop()
            by_name = dict(zip(names, converted, strict=True))
            x = by_name[first]
            reduction = check_reduction(reduction)
            for name in inputs:
                check_floating(xp, name, by_name[name])
            for name in truth:
                check_numeric(xp, name, by_name[name])
            for name in inputs[1:]:
                check_same_shape(name, by_name[name], first, x)
            ax = _check_feature_axis(first, x, axis) if feature_axis else None
            for name in truth:
                _check_per_example_shape(name, by_name[name], first, x, ax)
            check_grad_out(xp, grad_out, x)
            shape = shape_of(x) if ax is None else shape_of(x)[:ax] + shape_of(x)[ax + 1 :]
            invalid = Invalid(xp, shape)
            for name, check in checks:
                bad = check(xp, name, by_name[name])
                if bad is not None and ax is not None and name in inputs:
                    bad = xp.any(bad, axis=ax)
                invalid.add(bad)
            dtype = compute_dtype(xp, x.dtype)
            red = plan(xp, reduction, shape, dtype, sample_weight=sample_weight, invalid=invalid)
            args = tuple(
                cast(xp, class_last(xp, by_name[n], ax) if ax is not None else by_name[n], dtype)
                if n in inputs
                else cast(xp, by_name[n], dtype)
                for n in names
            )
            value, grad = _evaluate(xp, body, args, options, red, with_grad, ax)
            return value, None if grad is None else deliver(xp, grad, x, grad_out)

        options = list(inspect.signature(body).parameters.values())[1 + len(names) :]
        signature = inspect.Signature(
            [
                *(inspect.Parameter(n, _POSITIONAL) for n in names),
                *([inspect.Parameter("axis", _KEYWORD, default=-1)] if feature_axis else []),
                *options,
                inspect.Parameter("reduction", _KEYWORD, default="mean"),
                inspect.Parameter("sample_weight", _KEYWORD, default=None),
            ]
        )
        return _publish(body, signature, impl)

    return decorate
