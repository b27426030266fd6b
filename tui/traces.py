"""The Traces view: every trace saved this session, and the top ops of the selected one."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from engine.events import TraceSaved
from tui.format import nbytes


class TracesView(Horizontal):
    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.saved: list[TraceSaved] = []

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(id="traces-table", cursor_type="row")
        table.border_title = "Saved traces"
        yield table
        ops = Static("Select a trace to see its top ops.", id="top-ops")
        ops.border_title = "Top 15 ops by self time"
        yield ops

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("file", "kind", "stage", "steps", "size")

    def add(self, ev: TraceSaved) -> None:
        self.saved.append(ev)
        table = self.query_one(DataTable)
        table.add_row(
            Path(ev.path).name,
            ev.kind,
            ev.stage,
            str(ev.steps),
            nbytes(ev.size),
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
                t.append(f"{us / 1e3:9.3f} {calls:6d}  {name}\n")
        self.query_one("#top-ops", Static).update(t)
