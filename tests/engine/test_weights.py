"""Loading local Hugging Face directories: sharded == single file, and bad checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.errors import UserError
from infertop.engine.weights import open_checkpoint
from tests.conftest import save_hf_model


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_sharded_directory_loads_the_same_as_single_file(hf_models, tmp_path: Path) -> None:
    _, single = hf_models["qwen3"]
    sharded = tmp_path / "sharded"
    save_hf_model("qwen3", sharded, max_shard_size="40KB")
    assert (sharded / "model.safetensors.index.json").exists()
    assert len(list(sharded.glob("*.safetensors"))) > 2
    # one kernel and thread count for both: loads that time them may choose differently,
    # and two kernels' sums differ in their last bits
    a = TorchEngine.load(str(single), device="cpu", kernel="F.linear", threads=1)
    b = TorchEngine.load(str(sharded), device="cpu", kernel="F.linear", threads=1)
    prompts = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    for e in (a, b):
        e.prepare(2, 12)
    assert torch.equal(a.logits(prompts, 0, True), b.logits(prompts, 0, True))


def test_missing_tensor_names_file_and_tensor(hf_models, tmp_path: Path) -> None:
    d = copy_model(hf_models["llama"][1], tmp_path / "m")
    tensors = load_file(d / "model.safetensors")
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, d / "model.safetensors")
    with pytest.raises(UserError, match=r"model.safetensors: tensor model.layers.1.mlp.up_proj"):
        open_checkpoint(d)


def test_wrong_shape_is_one_line_naming_the_fix(hf_models, tmp_path: Path) -> None:
    d = copy_model(hf_models["llama"][1], tmp_path / "m")
    tensors = load_file(d / "model.safetensors")
    tensors["model.norm.weight"] = torch.ones(63)
    save_file(tensors, d / "model.safetensors")
    with pytest.raises(UserError) as e:
        open_checkpoint(d)
    msg = str(e.value)
    assert "\n" not in msg
    assert "model.norm.weight has shape [63]" in msg and "fix config.json" in msg


def test_pickle_checkpoint_is_refused_without_unpickling(tmp_path: Path, hf_models) -> None:
    d = tmp_path / "m"
    d.mkdir()
    shutil.copy(hf_models["llama"][1] / "config.json", d / "config.json")
    # A pickle that would create a file if it were ever loaded.
    marker = tmp_path / "pwned"
    payload = (
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    )  # pickle protocol 0: os.system("touch ...")
    (d / "pytorch_model.bin").write_bytes(payload)
    with pytest.raises(UserError, match="pickle checkpoints are refused"):
        TorchEngine.load(str(d), device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: (d / "config.json").unlink(), "no config.json"),
        (lambda d: (d / "config.json").write_text("{not json"), "malformed JSON"),
        (
            lambda d: (d / "config.json").write_text(json.dumps({"model_type": "gpt2"})),
            "model_type 'gpt2' is not supported",
        ),
        (lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 4), "not a valid safetensors"),
    ],
)
def test_bad_directories_are_user_errors(hf_models, tmp_path: Path, edit, message: str) -> None:
    d = copy_model(hf_models["llama"][1], tmp_path / "m")
    edit(d)
    with pytest.raises(UserError, match=message) as e:
        TorchEngine.load(str(d), device="cpu")
    assert "\n" not in str(e.value)


def test_missing_path_and_unknown_preset() -> None:
    with pytest.raises(UserError, match="no such model directory"):
        TorchEngine.load("./does/not/exist", device="cpu")
    with pytest.raises(UserError, match="infertop presets"):
        TorchEngine.load("no-such-preset", device="cpu")


def test_presets_have_the_real_models_parameter_counts() -> None:
    from infertop.engine.presets import PRESETS

    # Published sizes (embedding included): a shape typo moves these by far more than 1%.
    published = {
        "qwen2.5-0.5b": 494_032_768,
        "qwen3-0.6b": 596_049_920,
        "llama-3.2-1b": 1_235_814_400,
        "llama-3.1-8b": 8_030_261_248,
        "mistral-7b": 7_248_023_552,
        "smollm2-135m": 134_515_008,
    }
    for name, count in published.items():
        assert PRESETS[name].param_count() == count, name


def test_config_json_of_a_preset_round_trips_through_transformers(tmp_path: Path) -> None:
    import transformers

    from infertop.engine.config import config_from_hf_dict
    from infertop.engine.presets import PRESETS

    for name in ("qwen3-0.6b", "llama-3.2-1b", "qwen2.5-0.5b"):
        cfg = PRESETS[name]
        (tmp_path / "config.json").write_text(json.dumps(cfg.to_hf_dict()))
        hf = transformers.AutoConfig.from_pretrained(tmp_path)
        back = config_from_hf_dict(hf.to_dict(), name, "config.json")
        assert back == cfg, name


def test_presets_are_config_json_dicts_read_like_a_directory(tmp_path: Path) -> None:
    """A preset is its model's config.json fields, read like a directory's: checked against
    values from the real models' config.json (rope, norm eps, positions, head_dim, tying:
    what the parameter counts above do not see)."""
    from infertop.engine.config import DEFAULT_PRESET, config_from_hf_dict, load_config_json
    from infertop.engine.presets import HF_CONFIGS, PRESETS

    real = {  # rope_theta, rms_norm_eps, max_position_embeddings, head_dim, tied, rope type
        "smollm2-135m": (1e5, 1e-5, 8192, 64, True, None),
        "qwen2.5-0.5b": (1e6, 1e-6, 32768, 64, True, None),
        "qwen3-0.6b": (1e6, 1e-6, 40960, 128, True, None),
        "llama-3.2-1b": (5e5, 1e-5, 131072, 64, True, ("llama3", 32.0)),
        "llama-3.1-8b": (5e5, 1e-5, 131072, 128, False, ("llama3", 8.0)),
        "mistral-7b": (1e6, 1e-5, 32768, 128, False, None),
    }
    assert DEFAULT_PRESET in PRESETS and set(real) <= set(PRESETS)
    for name, fields in HF_CONFIGS.items():
        (tmp_path / "config.json").write_text(json.dumps(fields))
        cfg = config_from_hf_dict(load_config_json(tmp_path / "config.json"), name, "x")
        assert cfg == PRESETS[name], name
        if name in real:
            rope = cfg.rope_scaling and (cfg.rope_scaling["rope_type"], cfg.rope_scaling["factor"])
            got = (cfg.rope_theta, cfg.rms_norm_eps, cfg.max_position_embeddings, cfg.head_dim)
            assert (*got, cfg.tie_word_embeddings, rope or None) == real[name], name
