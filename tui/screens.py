"""Modal screens: the key help."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("space", "pause / resume the engine (at the next step boundary)"),
    ("r", "reset the statistics and charts (run results are kept for export)"),
    ("+ / -", "double / halve the selected tab's batch size from the next run"),
    ("p", "start / stop a profiler capture"),
    ("e", "export the results so far as JSONL (the keys of infertop bench)"),
    ("← / →", "switch batch tab"),
    ("?", "this help"),
    ("q", "quit (stops the engine and saves any active capture first)"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column()
        for k, v in KEYS:
            t.add_row(k, v)
        with Vertical(id="help"):
            yield Static(t)
            yield Static("[dim]esc to close[/]")
