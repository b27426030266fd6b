"""The live screen's keys: one table that the app binds, the footer shows, the help screen
lists and the README's key table is checked against (tests/tui/test_tui_keys.py)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    keys: str  # Textual key names, comma-separated
    action: str
    label: str  # in the footer ("" keeps it out of the footer)
    does: str  # what it does: the help screen and the README


# In footer order: at 80 columns the footer keeps the first few.
KEYS: tuple[Key, ...] = (
    # one key, two bindings: the footer shows the one that applies (InfertopApp.check_action)
    Key("space", "pause", "Pause", "pause the engine at the next step boundary"),
    Key("space", "resume", "Resume", "resume the engine (after an error: retry the step)"),
    Key("p", "profile", "Profile", "start a profiler capture (a dialog), or stop the one running"),
    Key("question_mark", "help", "Help", "show every key and what it does"),
    Key("q", "quit", "Quit", "quit: saves an active capture and the results first"),
    Key("plus,equals_sign", "batch(2)", "Batch×2", "double the selected tab's batch size"),
    Key("minus", "batch(0.5)", "Batch÷2", "halve the selected tab's batch size"),
    Key("left", "select_batch(-1)", "", "show the previous batch size's figures and charts"),
    Key("right", "select_batch(1)", "", "show the next batch size's figures and charts"),
    Key("r", "reset", "Reset", "reset the statistics and charts (run results stay for export)"),
    Key("e", "export", "Export", "export the results so far as JSONL (infertop bench's keys)"),
    Key("t", "toggle_view", "Traces", "switch between the charts and the saved traces"),
    Key("ctrl+c", "quit", "", "quit, as q"),
)

_DISPLAY = {
    "space": "space",
    "question_mark": "?",
    "plus,equals_sign": "+",
    "minus": "-",
    "left": "←",
    "right": "→",
    "ctrl+c": "ctrl+c",
}


def display(keys: str) -> str:
    return _DISPLAY.get(keys, keys)


def bindings() -> list[Binding]:
    return [
        Binding(
            k.keys,
            k.action,
            k.label or k.does,
            show=bool(k.label),
            key_display=display(k.keys),
            tooltip=k.does,
            priority=k.keys == "ctrl+c",
        )
        for k in KEYS
    ]


def help_rows(bound: list[Binding]) -> list[tuple[str, str]]:
    """(key, what it does) for each binding, in the order they are bound."""
    return [(b.key_display or b.key, b.tooltip or b.description) for b in bound]


def markdown_table(bound: list[Binding]) -> str:
    """The README's key table, from the same bindings."""
    rows = ["| key | action |", "| --- | --- |"]
    rows += [f"| `{k}` | {text} |" for k, text in help_rows(bound)]
    return "\n".join(rows)
