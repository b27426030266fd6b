"""Modal screens: the key help (generated from the app's bindings) and the capture dialog."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from infertop.engine.errors import UserError
from infertop.engine.events import EngineReady
from infertop.engine.profiling.request import MAX_STEPS, STAGES, CaptureRequest, stage_named
from infertop.tui.in_order_input import InOrderInput
from infertop.tui.keys import help_rows


class HelpScreen(ModalScreen[None]):
    """Every key of the app with what it does, from the same bindings the footer shows."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close"),
    ]

    def __init__(self, bound: list[Binding]) -> None:
        super().__init__()
        self.rows = help_rows(bound)

    def compose(self) -> ComposeResult:
        width = max(len(k) for k, _ in self.rows)
        t = Text(end="")
        for n, (key, what) in enumerate(self.rows):
            if n:
                t.append("\n")
            t.append(key.ljust(width + 2), style="bold cyan")
            t.append(what)
        with VerticalScroll(id="help") as box:
            box.border_title = "Keys"
            box.border_subtitle = "esc, ? or q closes"
            yield Static(t, id="help-keys")


ACTIVITIES = ("cpu", "device", "timeline")  # the dialog's boxes, in order
TIMELINE = "infertop step timeline (Perfetto)"
# What the "cpu", "device" and "timeline" activities record on each kind of device; None: not
# offered. With --server the server's own profiler records, and infertop writes no timeline.
ACTIVITY_LABELS: dict[str, tuple[str | None, str | None, str | None]] = {
    "cpu": ("CPU ops (torch profiler)", None, TIMELINE),
    "cuda": ("CPU ops (torch profiler)", "CUDA kernels", TIMELINE),
    "npu": ("CPU ops", "NPU ops (torch_npu profiler)", TIMELINE),
    "metal": (None, "Metal GPU capture (.gputrace)", TIMELINE),
    "sglang server": ("server CPU ops (SGLang's torch profiler)", "server GPU kernels", None),
    "vllm server": ("server trace (vLLM's --profiler-config says what)", None, None),
}


def capture_kind(ready: EngineReady | None) -> str:
    """The ACTIVITY_LABELS key for the engine (or the server) that was loaded."""
    if ready is None:
        return "cpu"
    return f"{ready.server_kind} server" if ready.server_kind else ready.device_kind


class ProfileDialog(ModalScreen[CaptureRequest | None]):
    """Name, stage, step window and activities of a capture, all settable with keys alone:
    Tab moves between fields, Enter opens the stage list or ticks a box, and Enter in a text
    field or on the Start button starts the capture; Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, name: str, device_kind: str, max_steps: int | None = None) -> None:
        super().__init__()
        self.default_name = name
        self.labels = dict(
            zip(ACTIVITIES, ACTIVITY_LABELS.get(device_kind, ACTIVITY_LABELS["cpu"]), strict=True)
        )
        self.max_steps = max_steps
        self.closing = False  # started: a key typed after Enter goes to the app

    def compose(self) -> ComposeResult:
        cap = f"at most {self.max_steps}" if self.max_steps else "capped"
        with Vertical(id="profile-dialog") as box:
            box.border_title = "Start a capture"
            box.border_subtitle = "Tab: next field · Esc: cancel"
            with Horizontal(classes="field"):
                yield Label("name", classes="field-label")
                yield InOrderInput(self.default_name, id="profile-name", compact=True)
            with Horizontal(classes="field"):
                yield Label("stage", classes="field-label")
                yield Select(
                    [(s, s) for s in STAGES],
                    value="all",
                    allow_blank=False,
                    id="profile-stage",
                    compact=True,
                )
            with Horizontal(classes="field"):
                yield Label("steps", classes="field-label")
                yield InOrderInput(
                    "", placeholder="e.g. 5", id="profile-steps", type="integer", compact=True
                )
            yield Static(
                f"blank: until p is pressed again ({cap} steps).\n"
                "Either way it ends when the batch size or lengths change.",
                classes="hint",
            )
            yield Label("record", classes="field-label")
            for activity, label in self.labels.items():
                if label:
                    yield Checkbox(label, True, id=f"act-{activity}", compact=True)
            yield Static("", id="profile-error")
            with Horizontal(id="profile-buttons"):
                yield Button("Start capture", id="profile-start", variant="primary", compact=True)
                yield Static("Enter in a text field starts it too", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#profile-name", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.start()

    def on_key(self, event: events.Key) -> None:
        """A key typed after the capture started (before the dialog is gone) is the main
        screen's: `Enter p` in one burst stops the capture it started."""
        if self.closing:
            event.stop()
            self.app.post_message(events.Key(event.key, event.character))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.start()

    def start(self) -> None:
        steps_text = self.query_one("#profile-steps", Input).value.strip()
        activities = tuple(
            a for a in ACTIVITIES for box in self.query(f"#act-{a}").results(Checkbox) if box.value
        )
        try:
            if not activities:
                raise UserError("tick at least one thing to record")
            if steps_text and not steps_text.isdigit():
                raise UserError(f"steps: a whole number from 1 to {MAX_STEPS}, or blank")
            request = CaptureRequest(
                name=self.query_one("#profile-name", Input).value.strip() or self.default_name,
                stage=stage_named(str(self.query_one("#profile-stage", Select).value)),
                steps=int(steps_text) if steps_text else None,
                activities=activities,
            )
        except UserError as e:
            self.closing = False  # the dialog stays: keys typed since are the fields' again
            self.query_one("#profile-error", Static).update(Text(str(e), style="red"))
            return
        self.closing = True
        self.dismiss(request)
