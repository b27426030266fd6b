"""Built-in models: the exact shapes of real models as their Hugging Face `config.json`
fields, read by the same function that reads a model directory's config (so presets and
directories take one path). The weights are dummy (seeded), like SGLang's --load-format dummy.

A new preset is one entry here: the fields as they stand in the model's config.json.
"""

from __future__ import annotations

from typing import Any

from infertop.engine.config import DEFAULT_PRESET, ModelConfig, closest, config_from_hf_dict
from infertop.engine.errors import UserError

_LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}
_LLAMA3 = {"model_type": "llama", "vocab_size": 128256, "rms_norm_eps": 1e-5, "rope_theta": 5e5}
_MODEL_7B = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32}
_HEADS_32_8 = {"num_attention_heads": 32, "num_key_value_heads": 8}
_QWEN = {"vocab_size": 151936, "rope_theta": 1e6, "tie_word_embeddings": True}

HF_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {  # a 140K-parameter llama for tests and the UI's own overhead
        "model_type": "llama",
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "smollm2-135m": {
        "model_type": "llama",
        "vocab_size": 49152,
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
        "rope_theta": 1e5,
        "tie_word_embeddings": True,
    },
    "qwen2.5-0.5b": {
        **_QWEN,
        "model_type": "qwen2",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
    },
    "qwen3-0.6b": {
        **_QWEN,
        "model_type": "qwen3",
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "max_position_embeddings": 40960,
    },
    "llama-3.2-1b": {
        **_LLAMA3,
        **_HEADS_32_8,
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "max_position_embeddings": 131072,
        "rope_scaling": {**_LLAMA3_ROPE, "factor": 32.0},
        "tie_word_embeddings": True,
    },
    "llama-3.1-8b": {
        **_LLAMA3,
        **_MODEL_7B,
        **_HEADS_32_8,
        "max_position_embeddings": 131072,
        "rope_scaling": _LLAMA3_ROPE,
    },
    "mistral-7b": {
        **_MODEL_7B,
        **_HEADS_32_8,
        "model_type": "mistral",
        "vocab_size": 32768,
        "head_dim": 128,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-5,
        "rope_theta": 1e6,
    },
}

__all__ = ["DEFAULT_PRESET", "HF_CONFIGS", "PRESETS", "preset"]

PRESETS: dict[str, ModelConfig] = {
    name: config_from_hf_dict(d, name, f"preset {name}") for name, d in HF_CONFIGS.items()
}


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        guess = closest(name, PRESETS)
        hint = f"did you mean {guess}? " if guess else ""
        raise UserError(
            f"unknown preset {name!r}; {hint}run `infertop presets` for the list, "
            "or pass a local Hugging Face directory"
        ) from None
