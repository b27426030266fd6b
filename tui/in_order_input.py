"""A text field that applies every key in the order it was typed.

Textual's `Input` inserts a printable key when the key reaches it, but applies its editing
keys (backspace, delete, the arrows, home, end, enter) through bindings, which the App runs
only after the key has bubbled back up to it. A key typed right after one of those reaches
the field first: while the engine kept the app busy, `backspace × 12` then `../x` in the
capture dialog's name field left `..` or nothing (the backspaces ran last). Here the field
runs its own bindings when their key reaches it, so the order is the typing order.

Once Enter has closed its screen (a `closing` attribute), the field takes no more keys: `p`
typed right after Enter in the capture dialog replaced its name, instead of stopping the
capture.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class InOrderInput(Input):
    async def _on_key(self, event: events.Key) -> None:
        if getattr(self.screen, "closing", False):
            event.prevent_default()  # not inserted here: a key typed after Enter bubbles to
            return  # the screen, which hands it to the app
        own = self._bindings.key_to_bindings.get(event.key)
        if own and not event.is_printable:
            event.stop()
            event.prevent_default()
            if own[0].action == "submit" and hasattr(self.screen, "closing"):
                self.screen.closing = True  # until it answers: the value stays as at Enter
            await self.run_action(own[0].action)
            return
        await super()._on_key(event)
