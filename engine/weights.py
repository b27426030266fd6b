"""Backend-neutral checkpoint handling: expected tensor names/shapes and safetensors discovery.

Only JSON and safetensors are ever read; pickle checkpoints are refused, never unpickled.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infertop.engine.config import ModelConfig, config_from_hf_dict, load_config_json
from infertop.engine.errors import UserError
from infertop.engine.presets import preset

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


def directory_config(root: Path) -> ModelConfig:
    """The model config of a Hugging Face directory (its config.json), checked."""
    if not root.exists():
        raise UserError(f"{root}: no such model directory or preset; check the path")
    if not root.is_dir():
        raise UserError(f"{root}: not a directory; pass a Hugging Face model directory")
    config_path = root / "config.json"
    if not config_path.exists():
        raise UserError(f"{root}: no config.json; a model directory needs config.json")
    return config_from_hf_dict(load_config_json(config_path), root.name, str(config_path))


def open_checkpoint(directory: str | Path) -> Checkpoint:
    """Resolve a model directory, check every tensor's presence and shape from the headers.
    Everything is checked before a byte of weights is read: the config's fields, each
    header (an object; every entry a known dtype, a shape, offsets inside the file), the
    index (shards inside the directory), and the layer count against the files."""
    root = Path(directory).expanduser()
    cfg = directory_config(root)
    config_path = root / "config.json"
    headers = _read_headers(root)
    available = {name: (path, shape) for path, h in headers.items() for name, shape in h.items()}
    _check_layer_count(cfg, available, config_path)
    files: dict[str, Path] = {}
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


def _check_layer_count(cfg: ModelConfig, available: Mapping[str, object], config: Path) -> None:
    """Compare the layer count with the files before any per-layer table is built (a config
    that claims a million layers must not make a million-layer table first)."""
    found = set()
    for name in available:
        if name.startswith("model.layers."):
            index = name.split(".")[2]
            if index.isdigit():
                found.add(int(index))
    if cfg.num_hidden_layers != len(found):
        raise UserError(
            f"{config}: num_hidden_layers is {cfg.num_hidden_layers:,} but the weights hold "
            f"{len(found):,} layers; fix config.json or the weights"
        )


def _read_headers(root: Path) -> dict[Path, dict[str, list[int]]]:
    index = root / "model.safetensors.index.json"
    if index.exists():
        paths = sorted(_shards(root, index))
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


def _shards(root: Path, index: Path) -> set[Path]:
    """The shard files an index names, each a file inside the model directory."""
    bad = f"{index}: malformed index"
    try:
        data = json.loads(index.read_bytes().decode("utf-8"))
    except IsADirectoryError:
        raise UserError(f"{index}: is a directory; it must be a file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{bad} ({e}); fix or re-download it") from None
    if not isinstance(data, dict) or not isinstance(data.get("weight_map"), dict):
        raise UserError(f"{bad}: it needs an object with a weight_map object; re-download it")
    shards = set()
    inside = root.resolve()
    for name, file in data["weight_map"].items():
        if not isinstance(file, str) or not file:
            raise UserError(f"{bad}: the file of {name} is {file!r}; re-download it")
        path = (root / file).resolve()
        if Path(file).is_absolute() or inside not in path.parents:
            raise UserError(
                f"{index}: shard {file!r} lies outside the model directory; refused "
                "(a model's index names files beside it)"
            )
        shards.add(root / file)
    return shards


# safetensors dtypes and their sizes in bytes
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
MAX_HEADER = 100_000_000


def read_safetensors_header(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape from a safetensors header, checked entry by entry against the
    file (a known dtype, a shape of whole numbers, data offsets that fit the tensor and lie
    inside the file), without reading the data."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise UserError(f"{path}: is a directory; a safetensors file is expected")
        with path.open("rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise ValueError("shorter than its header length")
            (n,) = struct.unpack("<Q", prefix)
            if n > MAX_HEADER or 8 + n > size:
                raise ValueError(f"header length {n:,} does not fit the file's {size:,} bytes")
            header = json.loads(f.read(n))
    except FileNotFoundError:
        raise UserError(f"{path}: listed in the index but missing; re-download the model") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a valid safetensors file ({e}); re-download it") from None
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}; check the file") from None
    if not isinstance(header, dict):
        raise UserError(f"{path}: the header is not a JSON object; re-download the model")
    data_size = size - 8 - n
    shapes = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        shape = _checked_entry(path, name, meta, data_size)
        if not name.endswith(IGNORED_SUFFIXES):
            shapes[name] = shape
    return shapes


def _checked_entry(path: Path, name: str, meta: object, data_size: int) -> list[int]:
    def bad(what: str) -> UserError:
        return UserError(f"{path}: tensor {name} {what}; the file is damaged, re-download it")

    if not isinstance(meta, dict):
        raise bad("has no description")
    dtype = meta.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise UserError(
            f"{path}: tensor {name} has dtype {dtype!r}, unknown to safetensors; re-save it "
            f"as one of {', '.join(sorted(DTYPE_BYTES))}"
        )
    shape = meta.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise bad(f"has no valid shape ({shape!r})")
    offsets = meta.get("data_offsets")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    ):
        raise bad(f"has no valid data_offsets ({offsets!r})")
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        raise bad(f"lies past the end of the file (bytes {begin:,}-{end:,} of {data_size:,})")
    need = math.prod(shape) * DTYPE_BYTES[dtype]
    if end - begin != need:
        raise bad(f"takes {end - begin:,} bytes where its shape needs {need:,}")
    return list(shape)


def resolve_model(spec: str, dummy: bool = False) -> tuple[ModelConfig, Checkpoint | None]:
    """A preset name gives its config and no checkpoint; anything path-like is a local
    directory, opened (and its headers checked) once. `dummy` (--load-format dummy, as in
    SGLang): only its config.json is read, and the weights are seeded random ones."""
    path = Path(spec).expanduser()
    if spec.startswith((".", "/", "~")) or path.exists() or "/" in spec:
        if dummy:
            return directory_config(path), None
        ckpt = open_checkpoint(path)
        return ckpt.config, ckpt
    return preset(spec), None
