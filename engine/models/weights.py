"""Backend-neutral checkpoint handling: expected tensor names/shapes and safetensors discovery.

Only JSON and safetensors are ever read; pickle checkpoints are refused, never unpickled.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from engine.config import ModelConfig, config_from_hf_dict, load_config_json, preset
from engine.errors import UserError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Buffers some exporters write that the engine recomputes.
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def layer_shapes(cfg: ModelConfig, i: int) -> dict[str, tuple[int, ...]]:
    """Hugging Face names and shapes of decoder layer i."""
    h, d = cfg.hidden_size, cfg.head_dim
    q, kv = cfg.num_attention_heads * d, cfg.num_key_value_heads * d
    p = f"model.layers.{i}."
    shapes: dict[str, tuple[int, ...]] = {
        p + "input_layernorm.weight": (h,),
        p + "self_attn.q_proj.weight": (q, h),
        p + "self_attn.k_proj.weight": (kv, h),
        p + "self_attn.v_proj.weight": (kv, h),
        p + "self_attn.o_proj.weight": (h, q),
        p + "post_attention_layernorm.weight": (h,),
        p + "mlp.gate_proj.weight": (cfg.intermediate_size, h),
        p + "mlp.up_proj.weight": (cfg.intermediate_size, h),
        p + "mlp.down_proj.weight": (h, cfg.intermediate_size),
    }
    if cfg.attention_bias:
        shapes[p + "self_attn.q_proj.bias"] = (q,)
        shapes[p + "self_attn.k_proj.bias"] = (kv,)
        shapes[p + "self_attn.v_proj.bias"] = (kv,)
    if cfg.qk_norm:
        shapes[p + "self_attn.q_norm.weight"] = (d,)
        shapes[p + "self_attn.k_norm.weight"] = (d,)
    return shapes


def global_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes outside the decoder layers."""
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (cfg.vocab_size, cfg.hidden_size),
        "model.norm.weight": (cfg.hidden_size,),
    }
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (cfg.vocab_size, cfg.hidden_size)
    return shapes


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    shapes = global_shapes(cfg)
    for i in range(cfg.num_hidden_layers):
        shapes.update(layer_shapes(cfg, i))
    return shapes


@dataclass(frozen=True)
class Checkpoint:
    """A local Hugging Face directory: its config and where each tensor lives."""

    directory: Path
    config: ModelConfig
    files: dict[str, Path]  # tensor name -> safetensors file

    def file_of(self, name: str) -> Path:
        return self.files[name]


def open_checkpoint(directory: str | Path) -> Checkpoint:
    """Resolve a model directory, check every tensor's presence and shape from the headers."""
    root = Path(directory).expanduser()
    if not root.exists():
        raise UserError(f"{root}: no such model directory or preset; check the path")
    if not root.is_dir():
        raise UserError(f"{root}: not a directory; pass a Hugging Face model directory")
    config_path = root / "config.json"
    if not config_path.exists():
        raise UserError(f"{root}: no config.json; a model directory needs config.json")
    cfg = config_from_hf_dict(load_config_json(config_path), root.name, str(config_path))
    headers = _read_headers(root)
    files: dict[str, Path] = {}
    available = {name: (path, shape) for path, h in headers.items() for name, shape in h.items()}
    for name, shape in expected_shapes(cfg).items():
        if name not in available:
            where = ", ".join(sorted(p.name for p in headers)) or root.name
            raise UserError(
                f"{where}: tensor {name} is missing; the weights do not match config.json"
            )
        path, found = available[name]
        if tuple(found) != shape:
            raise UserError(
                f"{path.name}: tensor {name} has shape {list(found)}, config.json implies "
                f"{list(shape)}; fix config.json or the weights"
            )
        files[name] = path
    return Checkpoint(root, cfg, files)


def _read_headers(root: Path) -> dict[Path, dict[str, list[int]]]:
    index = root / "model.safetensors.index.json"
    if index.exists():
        try:
            weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as e:
            raise UserError(f"{index}: malformed index ({e}); fix or re-download it") from None
        paths = sorted({root / f for f in weight_map.values()})
    else:
        paths = sorted(root.glob("*.safetensors"))
    if not paths:
        pickles = sorted(p.name for p in root.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise UserError(
                f"{root / pickles[0]}: pickle checkpoints are refused (they can run code); "
                "convert the model to safetensors"
            )
        raise UserError(f"{root}: no *.safetensors files; add the model's weights")
    return {p: read_safetensors_header(p) for p in paths}


def read_safetensors_header(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape from a safetensors header, without reading the data."""
    try:
        with path.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(f.read(n))
    except FileNotFoundError:
        raise UserError(f"{path}: listed in the index but missing; re-download the model") from None
    except (struct.error, ValueError) as e:
        raise UserError(f"{path}: not a valid safetensors file ({e}); re-download it") from None
    return {
        name: list(meta["shape"])
        for name, meta in header.items()
        if name != "__metadata__" and not name.endswith(IGNORED_SUFFIXES)
    }


def resolve_model(spec: str) -> tuple[ModelConfig, Checkpoint | None]:
    """A preset name gives its config and no checkpoint; anything path-like is a local
    directory, opened (and its headers checked) once."""
    path = Path(spec).expanduser()
    if spec.startswith((".", "/", "~")) or path.exists() or "/" in spec:
        ckpt = open_checkpoint(path)
        return ckpt.config, ckpt
    return preset(spec), None
