"""Adapters to other people's training code.

:mod:`losskit.integrations.transformers`: a Hugging Face causal language
model's training loss through the fused linear cross-entropy, without the
logits.  Nothing here is imported by ``import losskit``; each module imports
its framework when it is imported.
"""
