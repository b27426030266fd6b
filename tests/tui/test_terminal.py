"""The real app in a real terminal (tmux), as a new user drives it: the default sweep (batch
sizes 1 and 8), every key the help lists, at 80x24 and 160x48. Nothing may crash, every key
must show its effect, and quitting restores the terminal and says where the results went."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.binding import Binding

from infertop.tui.app import InfertopApp
from infertop.tui.keys import help_rows

pytestmark = pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux for a terminal")

# tmux key names for the keys the help shows
TMUX_KEYS = {"space": "Space", "←": "Left", "→": "Right", "ctrl+c": "C-c"}


class Terminal:
    def __init__(self, name: str, width: int, height: int, command: str) -> None:
        self.name = name
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height)]
            + ["sh", "-c", command],
            check=True,
        )

    def screen(self, joined: bool = False) -> str:
        """What the pane shows; `joined`: lines the terminal wrapped are joined again."""
        flags = ["-p", "-J"] if joined else ["-p"]
        done = subprocess.run(
            ["tmux", "capture-pane", *flags, "-t", self.name], capture_output=True, text=True
        )
        return done.stdout

    def press(self, key: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, TMUX_KEYS.get(key, key)], check=True)

    def wait(self, pred: Callable[[str], object], what: str, timeout: float = 60) -> str:
        end = time.monotonic() + timeout
        while True:
            text = self.screen()
            assert "Traceback" not in text, text
            if pred(text):
                return text
            assert time.monotonic() < end, f"timed out waiting for {what}:\n{text}"
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def header(text: str) -> str:
    return text.splitlines()[0] if text else ""


@pytest.mark.parametrize(
    ("width", "height", "last_key", "flags"),
    [(80, 24, "ctrl+c", ""), (160, 48, "q", ""), (80, 24, "q", " --low-bandwidth")],
)
def test_every_key_in_the_help_in_a_real_terminal(
    tmp_path: Path, width: int, height: int, last_key: str, flags: str
) -> None:
    """Drawn by tui/frugal_driver.py (only the cells that changed), as a user's terminal
    gets it; and once with --low-bandwidth (charts every 5 s, numbers once a second)."""
    rows = help_rows([b for b in InfertopApp.BINDINGS if isinstance(b, Binding)])
    keys = list(dict.fromkeys(k for k, _ in rows))  # space has two rows: pause, resume
    status = tmp_path / "status"
    command = (
        f"{sys.executable} -m infertop --model tiny{flags} --trace-dir {tmp_path / 'traces'}; "
        f"echo $? > {status}; sleep 30"
    )
    term = Terminal(f"infertop-keys-{width}-{time.monotonic_ns()}", width, height, command)
    pressed: list[str] = []
    try:
        term.wait(lambda s: "● running" in header(s), "the engine running")
        term.wait(lambda s: re.search(r"run total\s+[0-9]", s), "a completed run")
        for key in keys:
            if key in ("q", "ctrl+c"):
                continue  # one of them ends the session, below
            pressed.append(key)
            term.press(key)
            if key == "space":
                term.wait(lambda s: "● paused" in header(s), "paused")
                term.press("space")
                term.wait(lambda s: "● running" in header(s), "running again")
            elif key == "p":
                term.wait(lambda s: "Start a capture" in s, "the capture dialog")
                term.press("Enter")
                term.wait(lambda s: "REC" in header(s), "REC")
                term.press("p")
                term.wait(lambda s: "REC" not in header(s), "the capture saved")
            elif key == "?":
                term.wait(lambda s: "show every key" in s, "the help")
                term.press("Escape")
                term.wait(lambda s: "show every key" not in s, "the help closed")
            elif key == "+":
                term.wait(lambda s: "bs 2" in s.splitlines()[1], "bs 2 in the tabs")
            elif key == "-":
                term.wait(lambda s: "bs 2" not in s.splitlines()[1], "bs 1 again")
            elif key == "←":  # from bs 1 (after + and -) round to the last tab, bs 8
                term.wait(lambda s: "· bs 8" in s and "· bs 1" not in s, "bs 8's charts")
            elif key == "→":
                term.wait(lambda s: "· bs 1" in s and "· bs 8" not in s, "bs 1's charts")
            elif key == "r":
                term.wait(lambda s: "reset" in s or "no decode step yet" in s, "the reset")
            elif key == "e":
                # the toast lives 5 s from its first paint; with the suite's other worker
                # busy beside it, one CI run missed it once: the file it names also counts
                term.wait(
                    lambda s: (
                        "results →" in s
                        or "no completed run" in s
                        or any((tmp_path / "traces").glob("infertop-results-*.jsonl"))
                    ),
                    "the export",
                )
            elif key == "t":
                term.wait(lambda s: "Saved traces" in s, "the Traces view")
                term.press("t")
                term.wait(lambda s: "Saved traces" not in s, "the charts again")
        term.press(last_key)
        deadline = time.monotonic() + 30
        while not status.exists():
            assert time.monotonic() < deadline, term.screen()
            time.sleep(0.1)
        time.sleep(0.2)
        final = term.screen(joined=True)
    finally:
        term.close()
    assert status.read_text().strip() == "0"
    assert set(pressed) | {"q", "ctrl+c"} == set(keys)
    assert "Traceback" not in final
    # saved on the way out, or (no run finished since `e`) the export named again
    said = re.search(r"infertop: (?:[\d,]+ results? saved|results exported) to (\S+\.jsonl)", final)
    assert said, final
    assert Path(said[1]).read_text().count("\n") >= 1
