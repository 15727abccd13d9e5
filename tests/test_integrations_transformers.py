"""causal_lm_loss against the model's own ``model(input_ids, labels=labels).loss`` path.

Tiny randomly initialised Llama, GPT-2 and Gemma 2 models (no downloads): the fused
loss and every parameter's gradient must equal what transformers computes through
the full logits (float32, so a float32 tolerance).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from losskit.integrations.transformers import causal_lm_loss  # noqa: E402

VOCAB = 97  # not a multiple of anything a chunk might be


def _llama(tied: bool) -> object:
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=tied,
    )
    return transformers.LlamaForCausalLM(config)


def _gpt2() -> object:
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=16, n_layer=2, n_head=2, n_positions=32
    )
    return transformers.GPT2LMHeadModel(config)


def _gemma2() -> object:
    config = transformers.Gemma2Config(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        final_logit_softcapping=3.0,  # small, so that the cap bends these logits
        attn_implementation="eager",
    )
    return transformers.Gemma2ForCausalLM(config)


MODELS = {
    "llama-untied": lambda: _llama(tied=False),
    "llama-tied": lambda: _llama(tied=True),
    "gpt2": _gpt2,
    "gemma2": _gemma2,
}


def _batch(padded: bool) -> tuple[object, object, object]:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (3, 7), generator=gen)
    mask = torch.ones_like(ids)
    labels = ids.clone()
    if padded:  # right padding on two rows: masked for attention, -100 for the loss
        mask[0, 5:] = 0
        mask[2, 3:] = 0
        labels[mask == 0] = -100
    return ids, mask, labels


def _grads(model: object) -> dict[str, object]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("name", list(MODELS))
def test_loss_and_gradients_equal_the_models_own(name, padded):
    torch.manual_seed(0)
    model = MODELS[name]()
    model.train(False)  # no dropout, so both passes see the same network
    ids, mask, labels = _batch(padded)

    expected = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    expected.backward()
    expected_grads = _grads(model)
    model.zero_grad(set_to_none=True)

    loss = causal_lm_loss(model, ids, labels, attention_mask=mask, chunk_size=5)
    loss.backward()
    grads = _grads(model)

    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    assert grads.keys() == expected_grads.keys()
    for key, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[key], rtol=1e-4, atol=1e-6, msg=key)


def test_tied_embedding_gets_both_contributions():
    torch.manual_seed(0)
    model = _llama(tied=True)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    ids, _, labels = _batch(False)
    causal_lm_loss(model, ids, labels).backward()
    fused = model.get_input_embeddings().weight.grad.clone()
    model.zero_grad(set_to_none=True)
    model(input_ids=ids, labels=labels).loss.backward()
    torch.testing.assert_close(
        fused, model.get_input_embeddings().weight.grad, rtol=1e-4, atol=1e-6
    )


def test_num_items_in_batch_and_shift_labels():
    torch.manual_seed(0)
    model = _llama(tied=False)
    ids, mask, labels = _batch(True)
    expected = model(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=40).loss
    loss = causal_lm_loss(model, ids, labels, attention_mask=mask, num_items_in_batch=40)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    shifted = torch.nn.functional.pad(labels, (0, 1), value=-100)[:, 1:]
    loss = causal_lm_loss(model, ids, shift_labels=shifted, attention_mask=mask)
    expected = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_all_ignored_batch_is_zero():
    # transformers' mean over no token is NaN; the fused loss keeps losskit's 0 (nothing
    # counted contributes nothing), so a fully padded micro-batch does not poison training
    model = _llama(tied=False)
    ids, _, _ = _batch(False)
    labels = torch.full_like(ids, -100)
    loss = causal_lm_loss(model, ids, labels)
    assert float(loss.detach()) == 0.0


def test_errors():
    model = _llama(tied=False)
    ids, _, labels = _batch(False)
    with pytest.raises(ValueError, match="give exactly one of `labels` and `shift_labels`"):
        causal_lm_loss(model, ids)
    with pytest.raises(TypeError, match=r"`ignore_index` is fixed by transformers"):
        causal_lm_loss(model, ids, labels, ignore_index=0)
    with pytest.raises(TypeError, match="`model` must be a causal language model"):
        causal_lm_loss(torch.nn.Linear(2, 2), ids, labels)
