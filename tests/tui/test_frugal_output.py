"""What the live screen sends its terminal (issue 17): only the cells that changed, the same
picture as Textual's own frames, a byte count that a regression would blow, NO_COLOR.

The frames are the real app's on the recorded event stream (tests/data/tiny_events.json)
released a few events per refresh; a real VT emulator (pyte) shows what a terminal makes of
them. The app in a real terminal is tests/tui/test_terminal.py (tmux); the figures over 20 s
of a real engine are bench/ssh_bytes.py's."""

from __future__ import annotations

import re

import pytest

from infertop.tui.charts import Chart
from infertop.tui.screen_diff import ScreenDiff
from tests.tui.terminal_bytes import cells, recorded_frames, screen_of

SIZES = [(80, 24), (160, 48)]
# the stream's 171 events, the same per second of its clock: 12 a second
DEFAULT = {"refreshes": 42, "per_refresh": 4, "hz": 3.0}
LOW = {"refreshes": 14, "per_refresh": 12, "hz": 1.0, "low_bandwidth": True}
# bytes sent after the first second at 160x48, measured at 22,612 and 9,592 (Textual's own
# frames: 213,680 and 51,944), with room for small changes; a change that doubles them fails
BUDGET = {"default": 34_000, "low": 14_500}


def sent(frames: list[list[str]], size: tuple[int, int], after: int) -> tuple[str, int]:
    """What a ScreenDiff sends for these frames, and its bytes from refresh `after` on."""
    diff = ScreenDiff()
    diff.resize(*size)
    out, count = [], 0
    for k, frame in enumerate(frames):
        for data in frame:
            o = diff.frame(data)
            out.append(o)
            count += len(o.encode()) if k >= after else 0
    return "".join(out), count


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_terminal_shows_what_textual_drew_at_every_refresh(size) -> None:
    """Two emulated terminals, one fed Textual's frames and one what ScreenDiff makes of
    them, hold the same characters and renditions after every refresh; at a tenth of the
    bytes or so (at most a quarter)."""
    frames = await recorded_frames(size, DEFAULT["refreshes"], DEFAULT["per_refresh"])
    theirs, theirs_feed = screen_of(*size)
    ours, ours_feed = screen_of(*size)
    diff = ScreenDiff()
    diff.resize(*size)
    raw = small = 0
    for k, frame in enumerate(frames):
        for data in frame:
            out = diff.frame(data)
            theirs_feed.feed(data)
            ours_feed.feed(out)
            raw, small = raw + len(data.encode()), small + len(out.encode())
        assert cells(ours) == cells(theirs), f"refresh {k}: the screens differ"
    assert any("Decode step" in line for line in ours.display)  # a real picture, not blank
    assert small < raw / 4, f"{small:,} bytes sent for Textual's {raw:,}"


async def test_bytes_sent_on_the_recorded_stream_stay_in_budget() -> None:
    """160x48: the default settings and --low-bandwidth, each on the whole stream at 12
    events a second; low bandwidth sends at most 0.6 of the default's bytes (0.42 measured)."""
    size = (160, 48)
    default = await recorded_frames(size, **DEFAULT)  # type: ignore[arg-type]
    low = await recorded_frames(size, **LOW)  # type: ignore[arg-type]
    _, default_bytes = sent(default, size, after=3)
    _, low_bytes = sent(low, size, after=1)
    assert default_bytes <= BUDGET["default"], f"{default_bytes:,} bytes"
    assert low_bytes <= BUDGET["low"], f"{low_bytes:,} bytes"
    assert low_bytes <= 0.6 * default_bytes


SGR = re.compile(r"\x1b\[([0-9;]*)m")


def colour_codes(data: str) -> list[str]:
    """The colour parameters of every SGR in `data` (30-49 and 90-107, with 38/48's
    arguments), 39 and 49 (default colours) left out."""
    found = []
    for m in SGR.finditer(data):
        params = [p for p in m.group(1).split(";") if p]
        k = 0
        while k < len(params):
            p = int(params[k])
            if p in (38, 48):
                found.append(";".join(params[k : k + 5 if params[k + 1] == "2" else k + 3]))
                k += 5 if params[k + 1] == "2" else 3
                continue
            if (30 <= p <= 47 or 90 <= p <= 107) and p not in (39, 49):
                found.append(str(p))
            k += 1
    return found


async def test_no_color_sends_no_colour_and_shows_captured_steps_in_reverse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NO_COLOR=1: not one colour code reaches the terminal, and the steps run under the
    profiler (in batch size 4's history, after → selects it) are told apart in reverse
    video instead of red."""
    monkeypatch.setenv("NO_COLOR", "1")
    size = (120, 40)
    frames = await recorded_frames(size, 45, keys=("right",))
    data, _ = sent(frames, size, after=0)
    assert colour_codes(data) == []
    screen, feed = screen_of(*size)
    feed.feed(data)
    history = next(y for y, line in enumerate(screen.display) if "Decode step latency" in line)
    reversed_braille = [
        c.data
        for y in range(history, history + 12)
        for c in screen.buffer[y].values()
        if c.reverse and 0x2800 <= ord(c.data[:1] or " ") <= 0x28FF
    ]
    assert reversed_braille, "no captured step shown in reverse"
    assert "bs 4" in screen.display[history]


def test_an_unchanged_frame_sends_no_text_and_a_clear_sends_it_again() -> None:
    frame = "\x1b[1;1H\x1b[1;36mhello\x1b[0m \x1b[2;3H⠁⠃漢字\x1b[0m"
    diff = ScreenDiff()
    diff.resize(20, 4)
    first = diff.frame(frame)
    assert "hello" in first and "漢字" in first
    again = diff.frame(frame)
    assert "hello" not in again and "⠁" not in again and "漢" not in again
    diff.frame("\x1b[2J")  # a sequence that may change the screen: forget what it shows
    assert "hello" in diff.frame(frame)
    diff.resize(30, 4)  # so does a new size
    assert "hello" in diff.frame(frame)


def test_each_frame_ends_with_no_style_and_the_cursor_where_textual_left_it() -> None:
    """What is written after a frame (the shell, once the app quits) starts unstyled."""
    diff = ScreenDiff()
    diff.resize(20, 4)
    out = diff.frame("\x1b[1;1H\x1b[1;36mab\x1b[0m\x1b[1;36mcd\x1b[3;5H")
    assert out.endswith("\x1b[0m\x1b[3;5H")
    assert out.count("\x1b[0;1;36m") == 1  # one style change for the run "abcd"
    screen, feed = screen_of(20, 4)
    feed.feed(out)
    assert screen.display[0].startswith("abcd")
    assert (screen.cursor.x, screen.cursor.y) == (4, 2)


@pytest.mark.parametrize(
    "second",
    [
        "\x1b[1;1H\x1b[32mxbcdefgh\x1b[0m",  # one cell's character
        "\x1b[1;1Habc\x1b[31mdefgh\x1b[0m",  # a style mid-run
        "\x1b[1;3H漢\x1b[1;7H字字",  # double-width over single-width cells
        "\x1b[1;1Ha\u0301bc",  # a combining accent
        "\x1b[2;1H\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",  # a hyperlink
        "\x1b[1;2H\x1b[7m \x1b[0m\x1b[1;8H\x1b[4m  \x1b[0m",  # reverse and underlined blanks
    ],
)
def test_what_changed_is_drawn_as_textual_would(second: str) -> None:
    first = "\x1b[1;1H\x1b[32mabcdefgh\x1b[0m\x1b[2;1Hline two"
    theirs, theirs_feed = screen_of(12, 3)
    ours, ours_feed = screen_of(12, 3)
    diff = ScreenDiff()
    diff.resize(12, 3)
    for data in (first, second, first):
        theirs_feed.feed(data)
        ours_feed.feed(diff.frame(data))
        assert cells(ours) == cells(theirs)


async def test_the_low_bandwidth_charts_wait_5_s(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import replay_app, until

    app = replay_app()
    app.low_bandwidth = True
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.query(Chart))  # mounted: not one pause (it failed once)
        assert {c.min_interval for c in app.query(Chart)} == {5.0}


@pytest.mark.parametrize(
    ("argv", "hz"),
    [([], 3.0), (["--low-bandwidth"], 1.0), (["--low-bandwidth", "--refresh", "2"], 2.0)],
)
def test_low_bandwidth_refreshes_once_a_second_unless_told(argv: list[str], hz: float) -> None:
    from infertop.tui.launch import build_parser, refresh_hz

    assert refresh_hz(build_parser().parse_args(argv)) == hz
