"""A Hugging Face causal language model's training loss without the logits.

``model(input_ids, labels=labels).loss`` builds the logits of every token over
the whole vocabulary (``batch x length x vocab`` floats: 1 GB at 2048 tokens
of a 128k vocabulary in float32, plus their gradient) only to reduce them to
one number.  :func:`causal_lm_loss` runs the model's decoder body, takes its
last hidden states, and hands them with the output embedding's weight to
:func:`losskit.linear_cross_entropy`, which never holds more than a chunk of
logits.  The number is the model's own (labels shifted by one, ``-100``
ignored, mean over the counted tokens or ``sum / num_items_in_batch``, the
config's final logit soft-capping and logit scales), and so are the gradients
of every parameter, tied embeddings included.

Examples
--------
>>> import torch
>>> from transformers import LlamaConfig, LlamaForCausalLM
>>> from losskit.integrations.transformers import causal_lm_loss
>>> _ = torch.manual_seed(0)
>>> config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
...                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
>>> model = LlamaForCausalLM(config)
>>> ids = torch.randint(0, 64, (2, 5))
>>> loss = causal_lm_loss(model, ids, labels=ids)
>>> bool(torch.isclose(loss, model(ids, labels=ids).loss))
True
"""

from __future__ import annotations

from typing import Any

import torch

from ..losses.large_vocab import linear_cross_entropy

__all__ = ["causal_lm_loss"]

#: transformers' label for a token that is not predicted.
IGNORE_INDEX = -100


def causal_lm_loss(
    model: Any,
    input_ids: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    attention_mask: torch.Tensor | None = None,
    shift_labels: torch.Tensor | None = None,
    num_items_in_batch: int | torch.Tensor | None = None,
    model_kwargs: dict[str, Any] | None = None,
    **loss_options: Any,
) -> torch.Tensor:
    """The training loss of a causal LM, as ``model(input_ids, labels=labels).loss``, fused.

    Parameters
    ----------
    model : a transformers ``...ForCausalLM`` (``base_model`` gives its decoder body and
        ``get_output_embeddings()`` its output layer; Llama, GPT-2, Gemma 2 and the like).
    input_ids : (batch, length) token ids.
    labels : (batch, length) the tokens to predict, ``-100`` where none is; shifted by
        one inside (position ``i`` predicts label ``i + 1``), as transformers does.
    attention_mask : passed to the decoder body (padding is excluded from the loss only
        through ``-100`` labels, as in transformers).
    shift_labels : already shifted labels, instead of ``labels`` (transformers' keyword).
    num_items_in_batch : if given, the loss is the sum over tokens divided by it
        (transformers' gradient-accumulation convention); else the mean over counted tokens.
    model_kwargs : further keyword arguments for the decoder body (``position_ids``, ...).
    **loss_options : options of :func:`losskit.linear_cross_entropy` (``z_loss``,
        ``label_smoothing``, ``chunk_size``, ...); ``softcap`` defaults to the config's
        ``final_logit_softcapping``.

    Returns
    -------
    The scalar loss (float32 for half-precision models), differentiable.
    """
    if (labels is None) == (shift_labels is None):
        msg = "give exactly one of `labels` and `shift_labels`"
        raise ValueError(msg)
    for reserved in ("ignore_index", "reduction"):
        if reserved in loss_options:
            msg = (
                f"`{reserved}` is fixed by transformers' causal LM loss "
                f"(ignore_index=-100; the mean, or the sum / num_items_in_batch); "
                f"got {reserved}={loss_options[reserved]!r}"
            )
            raise TypeError(msg)
    head = _output_layer(model)
    body = model.base_model
    outputs = body(input_ids=input_ids, attention_mask=attention_mask, **(model_kwargs or {}))
    hidden = outputs[0] if isinstance(outputs, tuple) else outputs.last_hidden_state
    if shift_labels is None:
        assert labels is not None
        # transformers: pad with -100 on the right, then drop the first label
        shift_labels = torch.nn.functional.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]
    hidden = hidden * _logit_scale(model.config)  # (s h) W^T = s (h W^T): scale the logits
    config_cap = getattr(model.config, "final_logit_softcapping", None)
    loss_options.setdefault("softcap", config_cap)
    reduction = "mean" if num_items_in_batch is None else "sum"
    loss = linear_cross_entropy(
        hidden.reshape(-1, hidden.shape[-1]),
        head.weight,
        shift_labels.reshape(-1).to(hidden.device),
        bias=getattr(head, "bias", None),
        ignore_index=IGNORE_INDEX,
        reduction=reduction,
        **loss_options,
    )
    if num_items_in_batch is not None:
        loss = loss / num_items_in_batch
    return loss


def _output_layer(model: Any) -> Any:
    """The output embedding (a linear layer with a ``(vocab, hidden)`` weight)."""
    get = getattr(model, "get_output_embeddings", None)
    head = get() if get is not None else None
    weight = getattr(head, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        name = type(model).__name__
        msg = (
            f"`model` must be a causal language model with a linear output embedding "
            f"(get_output_embeddings() with a (vocab, hidden) weight); got {name}"
        )
        raise TypeError(msg)
    return head


def _logit_scale(config: Any) -> float:
    """The factor transformers applies to the logits after the output layer.

    Cohere multiplies them by ``logit_scale``, Granite divides them by
    ``logits_scaling``; both are linear, so scaling the hidden states is exact.
    """
    scale = 1.0
    if isinstance(getattr(config, "logit_scale", None), int | float):
        scale *= float(config.logit_scale)
    if isinstance(getattr(config, "logits_scaling", None), int | float):
        scale /= float(config.logits_scaling)
    return scale
