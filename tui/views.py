"""The two views under the number panels (charts, saved traces), switched by `t` or a click."""

from __future__ import annotations

from textual.widgets import TabbedContent, TabPane


class Views(TabbedContent):
    """A TabbedContent that a focus inside a pane does not switch.

    Textual's TabbedContent makes a pane active when a widget inside it gets focus. The app
    focuses the trace list after it shows the Traces view, and that focus lands a few
    messages later. A second `t` in that gap went back to the charts, and then the late
    focus brought the Traces view back, so the key was lost. In this app only `t` and a
    click choose the view.
    """

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        event.prevent_default()  # skip TabbedContent's own handler
        event.stop()
