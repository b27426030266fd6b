"""The live screen's server sweep in a process of its own.

In the screen's process the load generator held the GIL whenever streams were in flight, so
keys waited on it, and the screen's renders in turn held back the timestamps it takes. Here
the child runs an ordinary Session on the server; its events come back in batches every
BATCH_SECONDS (one pickle per batch, not per token) and commands go to it as they are sent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from infertop.engine.backends.server.probe import ServerInfo
from infertop.engine.channel import EventQueue
from infertop.engine.commands import Command, Stop
from infertop.engine.config import RunConfig
from infertop.engine.events import Event

BATCH_SECONDS = 0.02
MODULE = "infertop.engine.backends.server.process"
# Where the CPUs are short (a 2-core client beside a server streaming flat out), the keys
# win over the load: with +10, `t` under 256 instant streams took 0.61x the time at p90 of
# the worker-thread design, and +0 was no better than it (bench/RESULTS.md). A client with
# a core to spare, the usual case, never sees the difference.
LOAD_NICENESS = 10


@dataclass
class Batch:
    """What the child has to say since its last batch."""

    events: list[Event] = field(default_factory=list)
    capture_steps: int = 0  # steps captured so far by the active capture
    done: bool = False  # its session has finished: nothing follows


class ServerProcess:
    """The parent's handle: start it, send commands, receive batches (None once it is gone).

    A plain subprocess with two pipes, not multiprocessing: its spawn starts a resource
    tracker that hands on sys.stderr's descriptor, which Textual has replaced by one that has
    none. The child's stderr is the parent's descriptor 2 (infertop.log under the screen)."""

    def __init__(self, cfg: RunConfig, info: ServerInfo) -> None:
        batches_r, batches_w = os.pipe()
        commands_r, commands_w = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", MODULE, str(commands_r), str(batches_w)],
            pass_fds=(commands_r, batches_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        os.close(commands_r)
        os.close(batches_w)
        self._batches = Connection(batches_r, writable=False)
        self._commands = Connection(commands_w, readable=False)
        self._lock = threading.Lock()
        self.send(Start(cfg, info))

    def send(self, cmd: Command | Start) -> None:
        with self._lock:  # the UI thread and the worker both send
            try:
                self._commands.send(cmd)
            except OSError:
                pass  # the child is gone: recv says so

    def recv(self) -> Batch | None:
        try:
            batch: Batch = self._batches.recv()
        except (EOFError, OSError):
            return None
        return batch

    def exit_code(self, timeout: float = 5.0) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@dataclass
class Start:
    """The child's first message: what to drive."""

    cfg: RunConfig
    info: ServerInfo


def child_main(commands: Connection, batches: Connection) -> None:
    """The child: a Session on the server, fed the parent's commands, its events batched."""
    from infertop.engine.session import Session  # here: the session module imports this one

    # Ctrl-C and a hang-up are the parent's to handle; it then stops us (or its exit closes
    # the pipe, which stops us too)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.nice(LOAD_NICENESS)
    start: Start = commands.recv()
    events = EventQueue(max_samples=1 << 30)  # the parent's own queue does the dropping
    session = Session(start.cfg, events, server=start.info)

    def read_commands() -> None:
        while True:
            try:
                cmd = commands.recv()
            except (EOFError, OSError):  # the parent is gone
                session.send(Stop())
                return
            session.send(cmd)

    def send_batches() -> None:
        while not session.finished.wait(BATCH_SECONDS):
            try:
                batches.send(Batch(events.drain(), session.capture_steps()))
            except OSError:  # the parent is gone
                session.send(Stop())
                return

    threading.Thread(target=read_commands, daemon=True, name="commands").start()
    sender = threading.Thread(target=send_batches, name="batches")
    sender.start()
    try:
        session.run()
    finally:
        session.finished.set()
        sender.join()
        try:
            batches.send(Batch(events.drain(), session.capture_steps(), done=True))
        except OSError:
            pass


if __name__ == "__main__":
    # pickles must name this module by its import path, not __main__
    from infertop.engine.backends.server import process

    process.child_main(
        Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    )
