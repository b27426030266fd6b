"""Leaving on a signal (SIGTERM, SIGHUP, SIGQUIT) with everything saved, within 5 seconds,
whatever state the terminal is in.

When the terminal goes away (a dropped SSH link, a killed tmux pane) its pty can stay open
with nobody reading: Textual's writer thread blocks on it, its bounded queue fills, and the
next repaint blocks the event loop, so a handler that runs on the loop never runs (the app
hung in 8 of 9 tries). So the handlers here are plain signal handlers, which Python runs in
the main thread even while it waits on that queue; they hand the work to a thread that saves
the capture and the results, asks the app to exit, and if the app cannot (the loop is
stuck) restores the terminal directly, without blocking, and ends the process.
"""

from __future__ import annotations

import os
import signal
import termios
import threading
import time
from collections.abc import Callable
from typing import Protocol

SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
SAVE_WITHIN = 3.5  # seconds for the engine to stop and save an active capture
EXIT_WITHIN = 1.2  # then seconds for the app to leave by itself
# leave the alternate screen, show the cursor, stop mouse and focus reporting, paste mode
RESTORE = "\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?2004l\x1b[?1004l\x1b[?1049l\x1b[?25h"


class Leavable(Protocol):
    """What the app offers (tui.app.InfertopApp)."""

    farewell: list[str]

    def prepare_to_leave(self, timeout: float) -> int:
        """Stop the engine (saving a capture), keep the results; the exit status."""
        ...

    def leave(self, status: int) -> None:
        """Exit the app; called from another thread."""
        ...

    def terminal_attrs(self) -> list[object] | None: ...


def install(app: Leavable) -> Callable[[], None]:
    """Handle the signals for `app`; returns a function that puts the old handlers back."""
    started = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if started.is_set():
            return
        started.set()
        threading.Thread(target=_leave, args=(app, signum), daemon=True, name="leave").start()

    old = {sig: signal.signal(sig, handler) for sig in SIGNALS}

    def restore() -> None:
        for sig, previous in old.items():
            signal.signal(sig, previous)

    return restore


def _leave(app: Leavable, signum: int) -> None:
    status = app.prepare_to_leave(SAVE_WITHIN)
    if signum != signal.SIGHUP:  # a terminal may still be there: let Textual restore it
        app.leave(status)
        time.sleep(EXIT_WITHIN)  # the process normally ends in this time
    restore_terminal(app.terminal_attrs())
    _say(app.farewell)
    os._exit(status)


def restore_terminal(attrs: list[object] | None) -> None:
    """Put the terminal back without ever blocking: the escape sequences and the saved line
    settings; nothing happens where the terminal is gone."""
    _to_tty(RESTORE, attrs)


def _say(lines: list[str]) -> None:
    _to_tty("".join(f"{line}\r\n" for line in lines))


def _to_tty(text: str, attrs: list[object] | None = None) -> None:
    """A non-blocking write to the controlling terminal (and its line settings, if given)."""
    try:
        fd = os.open("/dev/tty", os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.write(fd, text.encode())
        if attrs is not None:
            termios.tcsetattr(fd, termios.TCSANOW, attrs)  # type: ignore[arg-type]
    except (OSError, termios.error):
        pass
    finally:
        os.close(fd)
