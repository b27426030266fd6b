"""The key bar at the bottom: Textual's Footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

Shown = tuple[tuple[str, str, str, bool, str], ...]


class KeyFooter(Footer):
    """Textual's Footer rebuilds all of its key widgets on every focus change, even when the
    keys it shows stay the same. The `t` view swap moves the focus twice, and that rebuild
    was half of its cost (about 75 ms of CPU here, bench/RESULTS.md). This footer compares
    what it would show and rebuilds only when that changed."""

    def __init__(self) -> None:
        super().__init__()
        self._shown: Shown | None = None

    def bindings_changed(self, screen: Screen[object]) -> None:
        # Footer.bindings_changed, less the rebuild when nothing shown changed
        self._bindings_ready = True
        if not screen.app.app_focus or not (self.is_attached and screen is self.screen):
            return
        shown = tuple(
            (b.key, b.description, b.action, enabled, tooltip)
            for _, b, enabled, tooltip in screen.active_bindings.values()
            if b.show
        )
        if shown != self._shown:
            self._shown = shown
            self.call_after_refresh(self.recompose)
