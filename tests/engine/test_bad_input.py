"""Bad input: one line naming the fix, exit 2 from the CLI, and the TUI stays up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infertop.engine.config import RunConfig
from infertop.engine.errors import UserError
from tests.helpers import infertop_bench

bench = infertop_bench


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--device", "cuda"], "install a CUDA build of torch or use --device cpu"),
        (["--device", "npu"], "pip install infertop[npu]"),
        (["--backend", "metal"], "invalid choice"),
        (["--profile", "--profile-steps", "900"], "use 1 to 500"),
        (["--profile", "--profile-stage", "middle"], "invalid choice"),
    ],
)
def test_device_and_profile_errors_are_one_line_exit_2(args: list[str], needle: str) -> None:
    p = bench("--model", "tiny", *args)
    assert p.returncode == 2, p.stderr
    errors = [line for line in p.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and needle in errors[0], p.stderr
    assert "Traceback" not in p.stderr


def test_mlx_backend_without_mlx_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from infertop.engine import loader

    monkeypatch.setattr(loader, "mlx_installed", lambda: False)
    with pytest.raises(UserError, match=r"pip install 'infertop\[mlx\]'"):
        loader.load_engine(RunConfig(model="tiny", backend="mlx"))


def test_a_batch_that_does_not_fit_is_skipped_and_the_next_run_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infertop.engine.backends.torch.engine import TorchEngine
    from infertop.engine.events import RunDone, RunSkipped
    from infertop.engine.runner import Runner

    engine = TorchEngine.load("tiny", device="cpu")
    real = engine.prepare

    def prepare(batch_size: int, max_len: int) -> None:
        if batch_size == 64:  # what torch raises when an allocation fails
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate")
        real(batch_size, max_len)

    monkeypatch.setattr(engine, "prepare", prepare)
    events = []
    cfg = RunConfig(
        model="tiny", batch_sizes=(1, 64, 2), input_lens=(4,), output_lens=(3,), warmup=False
    )
    Runner(engine, cfg, events.append).run()
    skipped = [e for e in events if isinstance(e, RunSkipped)]
    assert [e.batch_size for e in skipped] == [64]
    assert "lower the batch size" in skipped[0].reason
    assert [e.result.batch_size for e in events if isinstance(e, RunDone)] == [1, 2]


def test_nothing_listens_on_a_network_port(tmp_path: Path) -> None:
    import psutil

    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infertop",
            "bench",
            "--model",
            "tiny",
            "--output-len",
            "2000",
            "--input-len",
            "8",
            "--no-warmup",
            "--trace-dir",
            str(tmp_path),
            "--batch-size",
            *[str(b) for b in range(1, 40)],
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc = psutil.Process(p.pid)
        import time

        time.sleep(2)
        assert p.poll() is None
        listening = [c for c in proc.net_connections(kind="all") if c.status == "LISTEN"]
        assert listening == []
    finally:
        p.kill()
        p.wait()
