"""A recorded engine event stream replayed into the app, for deterministic snapshots.

`python -m tests.replay` re-records tests/data/tiny_events.json from a real run of `tiny`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from infertop.engine import events as ev_mod
from infertop.engine.backend import MemoryStats
from infertop.engine.channel import EventQueue
from infertop.engine.commands import Command, Stop
from infertop.engine.config import RunConfig
from infertop.engine.sysmon import SystemSample

DATA = Path(__file__).parent / "data" / "tiny_events.json"
CONFIG = RunConfig(model="tiny", batch_sizes=(1, 4), input_lens=(32,), output_lens=(24,))


def to_json(events: list[ev_mod.Event]) -> str:
    return json.dumps([ev_mod.event_dict(e) for e in events], indent=0)


def from_json(text: str) -> list[ev_mod.Event]:
    out: list[ev_mod.Event] = []
    for d in json.loads(text):
        cls = getattr(ev_mod, d.pop("type"))
        if "top_ops" in d:
            d["top_ops"] = tuple(tuple(op) for op in d["top_ops"])
        if "result" in d:
            r = d["result"]
            r["decode_latencies"] = tuple(r["decode_latencies"])
            d["result"] = ev_mod.RunResult(**r)
        out.append(cls(**d))
    return out


class ReplaySession:
    """Feeds recorded events to the app instead of running an engine."""

    def __init__(self, events: list[ev_mod.Event], cfg: RunConfig = CONFIG) -> None:
        self.cfg = cfg
        self.events = EventQueue()
        self.sent: list[Command] = []
        for e in events:
            self.events.put(e)

    def run(self) -> None:
        """Nothing to run: the events are already queued."""

    def send(self, cmd: Command) -> None:
        self.sent.append(cmd)

    def stop(self, timeout: float = 2.0) -> bool:
        self.send(Stop())
        return True

    def server_metrics(self) -> None:
        return None

    def capture_steps(self) -> int:
        return 0

    def memory(self) -> MemoryStats:
        return MemoryStats(allocated=300 << 20, reserved=300 << 20, peak=310 << 20)


class FixedSampler:
    def sample(self) -> SystemSample:
        return SystemSample(180.0, 300 << 20, 97.0, 6 << 30, 24 << 30, 9)


def record() -> None:
    """Six runs alternating batch 1 and 4, with a 6-step decode capture in the fourth (so
    the stream holds profiled steps and the traces it saved, under ./traces)."""
    import tempfile

    from infertop.engine.backend import ready_event
    from infertop.engine.backends.torch.engine import TorchEngine
    from infertop.engine.commands import StartProfile
    from infertop.engine.events import StateChanged
    from infertop.engine.profiling.request import CaptureRequest
    from infertop.engine.runner import Runner

    engine = TorchEngine.load("tiny", device="cpu")
    events: list[ev_mod.Event] = [StateChanged("loading"), ready_event(engine)]
    capture = CaptureRequest(name="replay", stage="decode", start_step=3 * 23 + 4, steps=6)
    cfg = dataclasses.replace(
        CONFIG,
        batch_sizes=CONFIG.batch_sizes * 3,
        warmup=True,
        trace_dir=tempfile.mkdtemp(),
    )
    runner = Runner(engine, cfg, events.append)
    runner.send(StartProfile(capture))  # as `p` arms it
    runner.run()
    events = [e for e in events if not isinstance(e, ev_mod.LoadProgress)]
    events = [
        dataclasses.replace(e, path=f"traces/{Path(e.path).name}")
        if isinstance(e, ev_mod.TraceSaved)
        else e
        for e in events
    ]
    events[-1] = StateChanged("running")  # freeze the screen mid-session
    DATA.write_text(to_json(events))


if __name__ == "__main__":
    record()
