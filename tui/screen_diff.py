"""Only what changed on the screen goes to the terminal.

Textual repaints a widget by sending every cell of its region, and every run of one style as
`ESC[<style>m text ESC[0m`. Over a slow SSH link that is most of the bytes: a chart that
gained one point resends its blank cells, and each label resends its style. `ScreenDiff`
sits between Textual and the terminal. It keeps what the terminal shows (a character and a
style per cell), reads each frame Textual writes, and writes only the cells that differ,
with one style change per run of equal style and the shortest cursor move to the next
changed cell. The terminal ends each frame showing exactly what Textual's frame would have
made it show.

It understands what Textual's frames are made of: cursor moves (`ESC[row;colH`), style
changes (SGR), text and newlines. Any other sequence passes through in place; one that may
change the screen (a clear, the alternate screen) makes it forget what the terminal shows,
so the next frames are sent whole until it knows again. Text inside a hyperlink is written
as it is, and its cells are forgotten.
"""

from __future__ import annotations

import re

from rich.cells import cell_len, get_character_cell_size

# cursor move | style | other CSI | OSC | other escape | newline | carriage return | text
_TOKEN = re.compile(
    r"\x1b\[(\d*);(\d*)H"
    r"|\x1b\[([0-9;:]*)m"
    r"|(\x1b\[[0-?]*[ -/]*[@-~])"
    r"|(\x1b\][^\x07\x1b]*(?:\x07|\x1b\\))"
    r"|(\x1b.?)"
    r"|(\n)|(\r)"
    r"|([^\x1b\n\r]+)"
)
# private modes that do not touch the cells: synchronized output, cursor shown or hidden,
# mouse and focus reporting, bracketed paste
_HARMLESS_MODES = re.compile(r"\x1b\[\?(2026|25|1000|1002|1003|1004|1006|1015|2004|2048)[hl]")
_HARMLESS_OSC = re.compile(r"\x1b\][012];")  # window titles

WIDE_TAIL = ""  # the cell a double-width character also covers


def _after_sgr(style: str, params: str) -> str:
    """The SGR parameters in force after `params` is applied on top of `style`."""
    if params in ("", "0"):
        return ""
    if params.startswith("0;"):
        return params[2:]
    return f"{style};{params}" if style else params


def _sgr(style: str) -> str:
    return f"\x1b[0;{style}m" if style else "\x1b[0m"


class ScreenDiff:
    """Turns Textual's frames into the bytes that change the terminal's cells."""

    def __init__(self) -> None:
        # what the terminal shows, row by row: characters and styles (None: not known)
        self.rows: dict[int, tuple[list[str | None], list[str | None]]] = {}
        self.size: tuple[int, int] | None = None
        # the terminal's cursor and style after what was written (None: not known)
        self._at: tuple[int, int] | None = None
        self._style: str | None = None
        # Textual's cursor and style, as its writes leave them
        self.x = self.y = 0
        self.style = ""
        self.link = False  # inside a hyperlink: its cells are written, never skipped

    def forget(self) -> None:
        """Know nothing of the screen: the next frames are sent whole."""
        self.rows.clear()
        self._at = None
        self._style = None

    def resize(self, width: int, height: int) -> None:
        if (width, height) != self.size:
            self.size = (width, height)
            self.forget()

    def frame(self, data: str) -> str:
        """The bytes that make the terminal show what `data` would have made it show."""
        out: list[str] = []
        drawn = False  # a cursor move or text: the frame ends where Textual's cursor is
        for m in _TOKEN.finditer(data):
            row, col, params, csi, osc, esc, nl, cr, text = m.groups()
            if text is not None:
                self.x = self._text(out, text, self.x, self.y, self.style, raw=self.link)
                drawn = True
            elif params is not None:
                self.style = _after_sgr(self.style, params)
            elif row is not None:
                self.y, self.x = int(row or 1) - 1, int(col or 1) - 1
                drawn = True
            elif nl is not None:
                self.y += 1
            elif cr is not None:
                self.x = 0
            else:
                seq = csi or osc or esc or ""
                out.append(seq)
                if osc is not None and osc.startswith("\x1b]8;"):
                    self.link = osc not in ("\x1b]8;;\x1b\\", "\x1b]8;;\x07")
                elif not (_HARMLESS_MODES.fullmatch(seq) or _HARMLESS_OSC.match(seq)):
                    self.forget()
        if drawn:
            if self._style:
                out.append("\x1b[0m")  # whatever is written next starts from no style
                self._style = ""
            if self._at != (self.x, self.y):
                out.append(f"\x1b[{self.y + 1};{self.x + 1}H")  # where Textual left it
                self._at = (self.x, self.y)
        return "".join(out)

    def _row(self, y: int, upto: int) -> tuple[list[str | None], list[str | None]]:
        """Row y's characters and styles (None: not known), at least `upto` cells long."""
        chars, styles = self.rows.setdefault(y, ([], []))
        if len(chars) < upto:
            chars.extend([None] * (upto - len(chars)))
            styles.extend([None] * (upto - len(styles)))
        return chars, styles

    def _text(self, out: list[str], text: str, x: int, y: int, style: str, raw: bool) -> int:
        """Write the cells of `text` at (x, y) that differ from what the terminal shows;
        returns the column after it."""
        n = len(text)
        if raw or (not text.isascii() and cell_len(text) != n):
            return self._uneven(out, text, x, y, style, raw)
        chars, styles = self._row(y, x + n)
        if styles[x : x + n] == [style] * n and "".join(chars[x : x + n]) == text:  # type: ignore[arg-type]
            return x + n  # all as shown: the common case
        shown = zip(chars[x : x + n], styles[x : x + n], text, strict=True)
        changed = [c != t or s != style for c, s, t in shown]
        k = 0
        while k < n:
            if not changed[k]:
                k += 1
                continue
            j = k + 1  # the run goes on over gaps too short to be worth a move
            while j < n and any(changed[j : j + 4]):
                j += 1
            self._put(out, x + k, y, style, text[k:j], j - k)
            chars[x + k : x + j] = text[k:j]
            styles[x + k : x + j] = [style] * (j - k)
            k = j
        return x + n

    def _uneven(self, out: list[str], text: str, x: int, y: int, style: str, raw: bool) -> int:
        """Text with double- or zero-width characters, or in a hyperlink: written as it
        is, cell by cell for double-width ones, and whole when raw or zero-width."""
        widths = [get_character_cell_size(ch) for ch in text]
        end = x + sum(widths)
        chars, styles = self._row(y, end + 1)
        if raw or 0 in widths:
            self._put(out, x, y, style, text, end - x)
            chars[x:end] = [None] * (end - x)
            styles[x:end] = [None] * (end - x)
            return end
        for ch, w in zip(text, widths, strict=True):
            tail = w == 1 or (chars[x + 1] == WIDE_TAIL and styles[x + 1] == style)
            if chars[x] != ch or styles[x] != style or not tail:
                self._put(out, x, y, style, ch, w)
                chars[x], styles[x] = ch, style
                if w == 2:
                    chars[x + 1], styles[x + 1] = WIDE_TAIL, style
            x += w
        return x

    def _put(self, out: list[str], x: int, y: int, style: str, text: str, cells: int) -> None:
        """Write `text` (`cells` wide) at (x, y) in `style`."""
        self._move(out, x, y)
        self._set_style(out, style)
        out.append(text)
        self._at = (x + cells, y)

    def _move(self, out: list[str], x: int, y: int) -> None:
        """The shortest way to put the cursor at (x, y): none, a few cells rewritten as they
        are, a move forward, or a move to the cell."""
        at = self._at
        if at == (x, y):
            return
        if at is not None and at[1] == y and at[0] < x:
            gap = x - at[0]
            chars, styles = self.rows.get(y, ([], []))
            skipped = chars[at[0] : x]
            if (
                gap <= 3
                and len(skipped) == gap
                and all(c is not None and c.isascii() and c for c in skipped)
                and all(s == self._style for s in styles[at[0] : x])
            ):
                out.append("".join(skipped))  # type: ignore[arg-type]  # cheaper than a move
            else:
                out.append(f"\x1b[{gap}C")
        else:
            out.append(f"\x1b[{y + 1};{x + 1}H")
        self._at = (x, y)

    def _set_style(self, out: list[str], style: str) -> None:
        if self._style != style:
            out.append(_sgr(style))
            self._style = style
