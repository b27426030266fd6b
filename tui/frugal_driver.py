"""The terminal driver: Textual's own (Linux and macOS), writing only what changed on the
screen (tui/screen_diff.py), so that a slow SSH link carries a few KB/s, not tens."""

from __future__ import annotations

from textual.drivers.linux_driver import LinuxDriver

from infertop.tui.screen_diff import ScreenDiff


class FrugalDriver(LinuxDriver):
    """LinuxDriver whose writes go through a ScreenDiff. It forgets what the terminal shows
    whenever the terminal may have changed under it: a new application mode (start, or back
    from a suspend) and a new size."""

    diff: ScreenDiff | None = None

    def start_application_mode(self) -> None:
        self.diff = ScreenDiff()
        super().start_application_mode()  # type: ignore[no-untyped-call]

    def write(self, data: str) -> None:
        diff = self.diff
        if diff is not None:
            diff.resize(*self._get_terminal_size())
            data = diff.frame(data)
        if data:
            super().write(data)
