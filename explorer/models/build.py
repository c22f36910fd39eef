"""Small causal language models built from scratch (random weights) for a task's own tokenizer:
the base model of the Coconut trainer (:mod:`explorer.thoughts.train`) and of the byte entropy
model (:mod:`explorer.patches.train`)."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import InputError

ARCHS = ("gpt2", "llama")


def build_base_model(tokenizer: Any, *, n_layer: int = 4, n_embd: int = 256, n_head: int = 4,
                     n_positions: int = 512, seed: int = 0, arch: str = "gpt2") -> torch.nn.Module:
    """A small causal LM built from scratch for ``tokenizer`` (dropout 0, tied embeddings):
    ``"gpt2"`` (learned absolute positions, as in the Coconut papers) or ``"llama"`` (rotary
    positions, RMSNorm, SwiGLU: the default model's family)."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    special = {"bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    torch.manual_seed(seed)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=n_embd, intermediate_size=4 * n_embd,
                                             num_hidden_layers=n_layer, num_attention_heads=n_head,
                                             max_position_embeddings=n_positions, tie_word_embeddings=True, **special))
    elif arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd,
                                           n_layer=n_layer, n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                                           attn_pdrop=0.0, **special))
    else:
        raise InputError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}.")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model
