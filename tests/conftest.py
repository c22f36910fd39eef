"""Shared fixtures. Everything runs offline: no test may reach a model hub."""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def smol():
    """The real offline default model (SmolLM2-135M-Instruct) on CPU, loaded once."""
    import explorer

    return explorer.load_model(device="cpu")


@pytest.fixture(scope="session")
def tiny_tokenizer(smol):
    return smol.tokenizer


def _save_tiny(config, tokenizer, path: Path) -> Path:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    """Checkpoint folders of tiny random-weight models of three other architectures."""
    from transformers import GPT2Config, GPTNeoXConfig, Gemma3TextConfig

    v = len(tiny_tokenizer)
    configs = {
        "gpt2": GPT2Config(vocab_size=v, n_positions=64, n_embd=32, n_layer=3, n_head=2),
        "gpt_neox": GPTNeoXConfig(vocab_size=v, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=64),
        "gemma3": Gemma3TextConfig(vocab_size=v, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                                   num_key_value_heads=1, head_dim=16, intermediate_size=64,
                                   max_position_embeddings=64, final_logit_softcapping=30.0,
                                   sliding_window=8, layer_types=["sliding_attention"] * 3 + ["full_attention"]),
    }
    root = tmp_path_factory.mktemp("tiny")
    return {k: _save_tiny(c, tiny_tokenizer, root / k) for k, c in configs.items()}
