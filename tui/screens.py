"""Modal screens: the key help and the capture dialog."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, Select, Static

from engine.errors import UserError
from engine.profiling.request import STAGES, CaptureRequest

KEYS = [
    ("space", "pause / resume the engine (at the next step boundary)"),
    ("r", "reset the statistics and charts (run results are kept for export)"),
    ("+ / -", "double / halve the selected tab's batch size from the next run"),
    ("p", "start / stop a profiler capture"),
    ("e", "export the results so far as JSONL (the keys of infertop bench)"),
    ("t", "switch between the charts and the saved traces"),
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


class ProfileDialog(ModalScreen[CaptureRequest | None]):
    """Name, stage, step window and activities of a capture; Enter starts, Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "start", "Start", priority=True),
    ]

    def __init__(self, name: str, device_label: str) -> None:
        super().__init__()
        self.default_name = name
        self.device_label = device_label

    def compose(self) -> ComposeResult:
        with Vertical(id="profile-dialog"):
            yield Static("[b]Start a capture[/b]  (Enter start, Esc cancel)")
            yield Label("name")
            yield Input(self.default_name, id="profile-name")
            yield Label("stage")
            yield Select(
                [(s, s) for s in STAGES], value="all", allow_blank=False, id="profile-stage"
            )
            yield Label("steps (blank: until p again; capped to keep the save short)")
            yield Input("", placeholder="e.g. 5", id="profile-steps", type="integer")
            yield Checkbox("CPU ops", True, id="act-cpu")
            yield Checkbox(f"device ({self.device_label})", True, id="act-device")
            yield Checkbox("infertop step timeline", True, id="act-timeline")
            yield Static("", id="profile-error")

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_start(self) -> None:
        steps_text = self.query_one("#profile-steps", Input).value.strip()
        activities = tuple(
            a for a in ("cpu", "device", "timeline") if self.query_one(f"#act-{a}", Checkbox).value
        )
        try:
            request = CaptureRequest(
                name=self.query_one("#profile-name", Input).value or self.default_name,
                stage=str(self.query_one("#profile-stage", Select).value),
                steps=int(steps_text) if steps_text else None,
                activities=activities,
            )
            if not activities:
                raise UserError("tick at least one activity")
        except (UserError, ValueError) as e:
            self.query_one("#profile-error", Static).update(f"[red]{e}[/]")
            return
        self.dismiss(request)
