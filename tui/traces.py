"""The Traces view: every trace saved this session, and the top ops of the selected one."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from infertop.engine.events import TraceSaved
from infertop.tui.format import nbytes

HINT = "↑/↓ select a trace · t back to the charts"
# the table's columns besides the file name, their padding and borders
OTHER_COLUMNS = 39


def elided(name: str, room: int) -> str:
    """`name` in `room` cells, cut in the middle: the end (time, unique suffix, extension) is
    what tells a session's traces apart, and an 80-column terminal cut all of them to the
    same prefix."""
    if len(name) <= room or room < 12:
        return name
    tail = room * 3 // 5
    return name[: room - tail - 1] + "…" + name[-tail:]


class TracesView(Vertical):
    """The table of saved files on top, as tall as its rows (short columns first, so the long
    file name is what a narrow terminal cuts); the selected trace's top ops below, scrolling
    when the terminal is short."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.saved: list[TraceSaved] = []

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(id="traces-table", cursor_type="row", zebra_stripes=True)
        table.border_title = "Saved traces"
        table.border_subtitle = HINT
        yield table
        with VerticalScroll(id="top-ops-box") as box:
            box.border_title = "Top 15 ops by self time"
            yield Static(
                Text("No trace saved yet: press p to capture one.", style="dim"), id="top-ops"
            )

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("kind", "stage", "steps", "size", "file")

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#traces-table", DataTable)

    def add(self, ev: TraceSaved) -> None:
        self.saved.append(ev)
        self.table.add_row(
            ev.kind,
            ev.stage,
            f"{ev.steps:,}",
            nbytes(ev.size),
            elided(Path(ev.path).name, self.app.size.width - OTHER_COLUMNS),
            key=str(len(self.saved) - 1),
        )
        if len(self.saved) == 1:
            self.show_ops(ev)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.show_ops(self.saved[int(event.row_key.value)])

    def show_ops(self, ev: TraceSaved) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"{ev.path}\n", style="dim")
        if not ev.top_ops:
            t.append("no op statistics for this file (timeline: open it in Perfetto)", style="dim")
        else:
            t.append(f"{'self ms':>9} {'calls':>6}  op\n", style="bold")
            for name, us, calls in ev.top_ops[:15]:
                t.append(f"{us / 1e3:9.3f} {calls:6,d}  {name}\n")
        self.query_one("#top-ops", Static).update(t)
