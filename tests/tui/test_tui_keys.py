"""Keys and dialogs of the live screen, on the recorded event stream: the help lists every
binding (and agrees with the footer and the README), the capture dialog is driven with keys
alone, and the Traces view takes the arrows."""

from __future__ import annotations

import re
from pathlib import Path

from textual import events
from textual.binding import Binding
from textual.widgets import Checkbox, DataTable, Input, Static, TabbedContent

from infertop.engine.commands import StartProfile, StopProfile
from infertop.engine.events import ProfileStopped, TraceSaved
from infertop.engine.profiling.request import CaptureRequest
from infertop.tui.app import InfertopApp
from infertop.tui.keys import help_rows, markdown_table
from infertop.tui.screens import HelpScreen, ProfileDialog
from infertop.tui.traces import TracesView
from tests.helpers import replay_app, until

ROOT = Path(__file__).resolve().parents[2]


def bound(app: InfertopApp) -> list[Binding]:
    return [b for b in app.BINDINGS if isinstance(b, Binding)]


async def test_help_lists_every_key_of_the_app_with_what_it_does() -> None:
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.drain()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = str(app.screen.query_one("#help-keys", Static).render())
        rows = help_rows(bound(app))
        assert len(rows) >= 10
        for key, does in rows:
            assert re.search(rf"^{re.escape(key)}\s+{re.escape(does)}$", shown, re.M), key
        help_box = app.screen.query_one("#help")
        assert help_box.region.width > 60 and help_box.region.height >= len(rows) + 2
        # every key the footer shows is in the help, with the same key
        footer = {k.key_display for k in app.query("FooterKey").results()}
        assert footer <= {k for k, _ in rows}
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


def test_readme_key_table_is_the_apps_bindings() -> None:
    readme = (ROOT / "README.md").read_text()
    table = markdown_table([b for b in InfertopApp.BINDINGS if isinstance(b, Binding)])
    assert table in readme, (
        "regenerate with: python -c 'from infertop.tui.keys import *; ...' (README)"
    )


def test_help_snapshot(snap_compare) -> None:
    app = replay_app()

    async def opened(pilot) -> None:
        app.drain()
        await pilot.pause()
        app.clear_notifications()
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=opened)


async def test_the_capture_dialog_is_driven_with_keys_alone() -> None:
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.drain()
        await pilot.press("p")
        assert isinstance(app.screen, ProfileDialog)
        await pilot.press("ctrl+a", "ctrl+k", *"mycap")  # the name field has the focus
        await pilot.press("tab", "enter", "down", "down", "enter")  # stage: all -> decode
        await pilot.press("tab", *"5")  # steps
        await pilot.press("tab", "tab", "space")  # CPU ops stays, the timeline is unticked
        await pilot.press("tab", "enter")  # the Start button
        await pilot.pause()
        assert not isinstance(app.screen, ProfileDialog)
    (sent,) = [c for c in app.session.sent if isinstance(c, StartProfile)]
    assert sent.request == CaptureRequest(
        name="mycap", stage="decode", steps=5, activities=("cpu",)
    )
    assert app.capture == "requested"  # armed only once the engine answers


async def test_p_before_the_engine_takes_the_capture_stops_it() -> None:
    """p while the header said "REC requested" was dropped ("waiting for the engine"), and
    the capture ran to its cap (75 steps on tiny, in the real app). The engine takes
    commands in order, so the stop is sent after the start."""
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.drain()
        await pilot.press("p", "enter")  # Enter in the name field starts the capture
        await until(pilot, lambda: app.capture == "requested")
        await pilot.press("p")
        await pilot.pause()
        kinds = [type(c) for c in app.session.sent]
        assert kinds[-2:] == [StartProfile, StopProfile], kinds
        # `p Enter p` in one burst, as a terminal delivers it: the second p went into the
        # name field before the dialog answered Enter (a trace named "p", never stopped)
        app.session.events.put(ProfileStopped("cancelled before it started", 0))
        app.drain()
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ProfileDialog))
        for key, char in (("enter", "\r"), ("p", "p")):
            app.post_message(events.Key(key, char))
        await until(pilot, lambda: len(app.session.sent) == len(kinds) + 2)
        start, stop = app.session.sent[-2:]
        assert isinstance(start, StartProfile) and start.request.name == "infertop"
        assert isinstance(stop, StopProfile)


async def test_at_80_columns_the_trace_list_keeps_the_end_of_each_name() -> None:
    """The file column was cut at its end: at 80 columns every trace of a session read the
    same prefix (`infertop-all-bs1-in128-out32-20261123-1314`). The middle goes instead."""
    app = replay_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.drain()
        await pilot.press("t")
        view = app.query_one(TracesView)
        stem = "/tmp/t/infertop-all-bs1-in128-out32-20261123-131442-a635f1"
        kinds = {"torch": ".pt.trace.json.gz", "ops": ".ops.txt", "timeline": ".timeline.trace"}
        for kind, ext in kinds.items():
            view.add(TraceSaved(stem + ext, kind, "all", 23, 9_800, ()))
        await pilot.pause()
        table = view.table
        shown = [str(table.get_row_at(table.row_count - 3 + n)[4]) for n in range(3)]
        assert all(name.endswith(ext) for name, ext in zip(shown, kinds.values(), strict=True))
        assert "131442-a635f1.ops.txt" in shown[1]  # time and unique suffix
        widths = sum(c.get_render_width(table) for c in table.columns.values())
        assert widths <= table.content_size.width, (widths, table.content_size.width)


async def test_enter_in_a_text_field_starts_and_a_bad_value_keeps_the_dialog_open() -> None:
    app = replay_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.drain()
        await pilot.press("p", "tab", "tab", "0", "enter")  # steps 0 is out of range
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ProfileDialog)
        error = dialog.query_one("#profile-error", Static)
        assert "use 1 to 500" in str(error.render())
        # the dialog and its error line fit an 80x24 terminal
        box = dialog.query_one("#profile-dialog")
        assert box.region.bottom <= 24 and box.region.right <= 80
        assert error.region.height >= 1 and box.region.contains_region(error.region)
        hint = dialog.query_one(".hint", Static)
        hint_lines = str(hint.render()).splitlines()
        assert hint.region.height >= len(hint_lines) == 2  # the steps hint is not cut
        assert all(len(line) <= hint.region.width for line in hint_lines)
        await pilot.press("backspace", "3", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, ProfileDialog)
    (sent,) = [c for c in app.session.sent if isinstance(c, StartProfile)]
    assert sent.request.steps == 3 and sent.request.stage == "all"


async def test_the_capture_name_takes_a_burst_of_keys_in_the_order_typed() -> None:
    """Keys typed fast reach the app together (tmux send-keys; a quick typist on a busy
    app). Textual's Input applied backspace and the arrows after the characters typed after
    them: `end, backspace × 12, ../x` left an empty name in the real app."""
    app = replay_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.drain()
        await pilot.press("p")
        name = app.screen.query_one("#profile-name", Input)
        assert name.has_focus and name.value == app.cfg.run_name
        typed = [("full_stop", "."), ("full_stop", "."), ("slash", "/"), ("x", "x")]
        burst = [("end", None), *[("backspace", "\x7f")] * 12, *typed]
        burst += [("left", None), ("y", "y"), ("enter", "\r")]
        for key, char in burst:  # queued at once, as a terminal's read delivers them
            app.post_message(events.Key(key, char))
        await pilot.pause(0.3)
    (sent,) = [c for c in app.session.sent if isinstance(c, StartProfile)]
    assert sent.request.name == "../yx"


async def test_capture_dialog_names_what_each_activity_records_on_this_device() -> None:
    app = replay_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.drain()
        await pilot.press("p")
        labels = [str(box.label) for box in app.screen.query(Checkbox).results()]
        assert labels == ["CPU ops (torch profiler)", "infertop step timeline (Perfetto)"]
        assert app.screen.query_one("#profile-name", Input).has_focus


def test_capture_dialog_snapshot(snap_compare) -> None:
    app = replay_app()

    async def opened(pilot) -> None:
        app.drain()
        await pilot.pause()
        app.clear_notifications()
        await pilot.press("p")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=opened)


async def test_traces_view_takes_the_arrows_and_shows_its_columns_whole() -> None:
    app = replay_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.drain()
        await pilot.press("t")
        await pilot.pause()
        table = app.query_one("#traces-table", DataTable)
        assert table.has_focus and table.row_count == 3
        header = [str(c.label) for c in table.columns.values()]
        assert header == ["kind", "stage", "steps", "size", "file"]
        # the short columns come first and are never clipped, even at 80 columns
        assert sum(c.get_render_width(table) for c in list(table.columns.values())[:4]) < 78
        ops = app.query_one("#top-ops", Static)
        first = str(ops.render())
        assert "trace.json.gz" in first.splitlines()[0]
        await pilot.press("down")
        assert table.cursor_row == 1 and "ops.txt" in str(ops.render()).splitlines()[0]
        assert app.selected_batch == 1  # the arrows did not go to the batch tabs
        assert "↑/↓ select a trace" in str(table.border_subtitle)
        assert table.region.height >= 6  # at 80x24 the list takes the number panels' rows
        await pilot.press("t")
        assert app.query_one("#batches").has_focus


async def test_two_quick_presses_of_t_come_back_to_the_charts() -> None:
    """Both keys arrive before the trace list has taken focus (a user's double tap, or any
    tap on a loaded machine): the second must not be undone by that late focus."""
    app = replay_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.drain()
        await pilot.pause()
        app.post_message(events.Key("t", "t"))
        app.post_message(events.Key("t", "t"))
        for _ in range(5):
            await pilot.pause()
        assert app.query_one("#views", TabbedContent).active == "tab-charts"
        assert app.query_one("#batches").has_focus
        await pilot.click("#views Tab#--content-tab-tab-traces")  # a click still switches
        await pilot.pause()
        assert app.query_one("#views", TabbedContent).active == "tab-traces"


def test_traces_view_snapshot(snap_compare) -> None:
    app = replay_app()

    async def opened(pilot) -> None:
        app.drain()
        await pilot.pause()
        app.clear_notifications()
        await pilot.press("t")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=opened)
