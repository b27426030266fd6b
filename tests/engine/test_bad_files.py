"""Damaged model directories and odd arguments: each is one line naming the file (or flag)
and the fix, exit status 2, never a traceback; and a systematic fuzz of a valid directory's
config and header, where every case either loads or is that one line."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.cli import main as cli_main
from infertop.engine.config import ModelConfig
from infertop.engine.errors import UserError
from infertop.engine.weights import expected_shapes
from tests.helpers import infertop_bench

CFG = ModelConfig(
    model_type="llama",
    vocab_size=64,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=256,
    name="fuzz",
)


def make_model(directory: Path) -> Path:
    """A valid two-layer Llama directory: config.json and one safetensors file."""
    directory.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    tensors = {n: torch.randn(s, generator=gen) for n, s in expected_shapes(CFG).items()}
    save_file(tensors, directory / "model.safetensors")
    (directory / "config.json").write_text(json.dumps(CFG.to_hf_dict()))
    return directory


def read_file(path: Path) -> tuple[object, bytes]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def write_file(path: Path, header: object | bytes, body: bytes) -> None:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


def bench(model: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return infertop_bench(
        "--model", str(model), "--batch-size", "1", "--input-len", "4", "--output-len", "2",
        "--no-warmup", *extra,
    )  # fmt: skip


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def loads_or_says_why(model: Path) -> str | None:
    """None when the directory loads; else the one-line reason (any other outcome fails)."""
    try:
        TorchEngine.load(str(model), device="cpu")
    except UserError as e:
        text = str(e)
        assert text and "\n" not in text, repr(text)
        return text
    return None


# -- the cases the issue found, through the real command line -----------------------------


def header_mutation(fn: Callable[[dict], object]) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        header, body = read_file(d / "model.safetensors")
        write_file(d / "model.safetensors", fn(header), body)  # type: ignore[arg-type]

    return mutate


def entry(name: str, **change: object) -> Callable[[dict], dict]:
    def fn(header: dict) -> dict:
        meta = dict(header[name])
        for k, v in change.items():
            if v is None:
                meta.pop(k)
            else:
                meta[k] = v
        return {**header, name: meta}

    return fn


def config_change(**change: object) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        cfg = json.loads((d / "config.json").read_text())
        cfg.update(change)
        (d / "config.json").write_text(json.dumps(cfg))

    return mutate


def write_text(name: str, text: str | bytes) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        (d / name).unlink(missing_ok=True)
        if isinstance(text, bytes):
            (d / name).write_bytes(text)
        else:
            (d / name).write_text(text)

    return mutate


def make_dir(name: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        (d / name).unlink()
        (d / name).mkdir()

    return mutate


def index(weight_map: object, whole: object = None) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        data = whole if whole is not None else {"weight_map": weight_map}
        (d / "model.safetensors.index.json").write_text(json.dumps(data))

    return mutate


def truncate(d: Path) -> None:
    path = d / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])


Q = "model.layers.0.self_attn.q_proj.weight"
CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "header is a list": (header_mutation(lambda h: []), "not a JSON object"),
    "header is a string": (header_mutation(lambda h: "abc"), "not a JSON object"),
    "entry without shape": (header_mutation(entry(Q, shape=None)), "no valid shape"),
    "offsets past the end": (
        header_mutation(entry(Q, data_offsets=[0, 10**9])),
        "past the end of the file",
    ),
    "truncated file": (truncate, "past the end of the file"),
    "unknown dtype": (header_mutation(entry(Q, dtype="WEIRD")), "dtype 'WEIRD'"),
    "config is a list": (write_text("config.json", "[]"), "not a JSON object"),
    "config not UTF-8": (write_text("config.json", b"\xff\xfe{}"), "not UTF-8"),
    "config is a directory": (make_dir("config.json"), "is a directory"),
    "safetensors is a directory": (make_dir("model.safetensors"), "is a directory"),
    "index is a list": (index(None, whole=[1, 2]), "malformed index"),
    "weight_map is a list": (index([1, 2]), "malformed index"),
    "weight_map value not a string": (index({Q: 7}), "malformed index"),
    "zero heads": (config_change(num_attention_heads=0), "num_attention_heads is 0"),
    "odd head_dim": (config_change(head_dim=7), "head_dim is 7"),
    "rope_scaling a string": (config_change(rope_scaling="abc"), "rope_scaling is 'abc'"),
    "llama3 without factor": (
        config_change(rope_scaling={"rope_type": "llama3", "low_freq_factor": 1}),
        "'rope_scaling.factor'",
    ),
    "linear without factor": (
        config_change(rope_scaling={"rope_type": "linear"}),
        "'rope_scaling.factor'",
    ),
    "vocab_size 1e400": (write_text("config.json", ""), "vocab_size is inf"),
    "shard outside (..)": (index({Q: "../elsewhere.safetensors"}), "outside the model directory"),
    "shard absolute": (index({Q: "/etc/hosts"}), "outside the model directory"),
    "a million layers": (config_change(num_hidden_layers=1_000_000), "the weights hold 2 layers"),
}


def _vocab_inf(d: Path) -> None:
    text = json.dumps(CFG.to_hf_dict()).replace('"vocab_size": 64', '"vocab_size": 1e400')
    (d / "config.json").write_text(text)


CASES["vocab_size 1e400"] = (_vocab_inf, "vocab_size is inf")


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_directory_is_one_line_and_exit_2(tmp_path: Path, case: str, capsys) -> None:
    mutate, expected = CASES[case]
    model = make_model(tmp_path / "m")
    mutate(model)
    code = cli_main(["bench", "--model", str(model), "--trace-dir", str(tmp_path / "t")])
    assert code == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("infertop bench: error: ") and expected in line, line


def test_the_command_line_says_the_same_and_loads_nothing(tmp_path: Path) -> None:
    """Two cases through a real process: exit 2, one line on stderr, no traceback."""
    model = make_model(tmp_path / "m")
    header_mutation(entry(Q, dtype="WEIRD"))(model)
    done = bench(model, "--trace-dir", str(tmp_path / "t"))
    assert done.returncode == 2 and "dtype 'WEIRD'" in one_line(done.stderr)
    done = bench(make_model(tmp_path / "ok"), "--seed", "1e23")
    assert done.returncode == 2 and "--seed" in one_line(done.stderr)


@pytest.mark.parametrize("seed", ["1e23", str(10**23), "-1"])
def test_a_seed_out_of_range_is_one_line(seed: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli_main(["bench", "--model", "tiny", "--seed", seed])
    assert exit_.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert "--seed" in line and "infertop bench --help" in line


def test_a_million_layers_fail_before_any_per_layer_table(tmp_path: Path) -> None:
    """The count is compared with the files first: no per-layer table of a million layers
    (that grew memory to 1.87 GB before failing)."""
    model = make_model(tmp_path / "m")
    config_change(num_hidden_layers=1_000_000)(model)
    tracemalloc.start()
    try:
        reason = loads_or_says_why(model)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reason and "num_hidden_layers is 1,000,000 but the weights hold 2 layers" in reason
    assert peak < 20 << 20, f"{peak / 2**20:.0f} MiB allocated on the way"


# -- the fuzz -------------------------------------------------------------------------------

BAD_VALUES: list[object] = [None, 0, -1, 1.5, "abc", [], {}, True, math.inf, 10**12, 3.0]
CONFIG_KEYS = [
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_theta",
    "tie_word_embeddings",
    "sliding_window",
    "model_type",
    "hidden_act",
    "rope_scaling",
]
HEADER_CHANGES: list[tuple[str, dict[str, object]]] = [
    (field, {field: value})
    for field in ("dtype", "shape", "data_offsets")
    for value in (None, "x", 3, [], [1], [-1, 4], [0, 1, 2], {"a": 1}, [True, False])
]


def fuzz_cases() -> list[tuple[str, Callable[[Path], None]]]:
    cases: list[tuple[str, Callable[[Path], None]]] = []
    for key in CONFIG_KEYS:
        cases.append((f"config drop {key}", _drop(key)))
        for value in BAD_VALUES:
            cases.append((f"config {key}={value!r}", config_change(**{key: value})))
    for name, change in HEADER_CHANGES:
        cases.append((f"header {name} {change}", header_mutation(entry(Q, **change))))
    return cases


def _drop(key: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        cfg = json.loads((d / "config.json").read_text())
        cfg.pop(key, None)
        (d / "config.json").write_text(json.dumps(cfg))

    return mutate


def test_fuzz_every_mutation_loads_or_is_one_line(tmp_path: Path) -> None:
    cases = fuzz_cases()
    assert len(cases) >= 40
    template = make_model(tmp_path / "template")
    outcomes: dict[str, int] = {"loaded": 0, "refused": 0}
    for n, (name, mutate) in enumerate(cases):
        model = tmp_path / f"case{n}"
        model.mkdir()
        for f in template.iterdir():
            (model / f.name).write_bytes(f.read_bytes())
        mutate(model)
        try:
            reason = loads_or_says_why(model)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
        except Exception as e:  # anything but the one-line error is a defect
            raise AssertionError(f"{name}: {type(e).__name__}: {e}") from e
        outcomes["refused" if reason else "loaded"] += 1
    assert outcomes["refused"] > 150 and outcomes["loaded"] > 5, outcomes
