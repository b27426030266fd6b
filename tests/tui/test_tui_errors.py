"""What the live screen does when something fails: bad input is refused before the screen
opens (one line, status 2); a load that fails stays on screen with what to do and keys that
cannot apply say so; a capture that cannot start says why and clears; a crash of the app
restores the terminal, prints one line, logs the traceback and exits non-zero."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import infertop.engine.session as session_module
from infertop.engine.config import RunConfig
from infertop.engine.session import Session
from infertop.tui.app import InfertopApp
from infertop.tui.panels import HeaderBar, StatusLine
from tests.helpers import HeldInCapture, fail_decode_on, until


def infertop(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infertop", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "fix"),
    [
        (["--model", "tiny", "--input-len", "100000"], "use shorter lengths"),
        pytest.param(
            ["--device", "cuda", "--model", "tiny"],
            "use --device cpu",
            marks=pytest.mark.skipif(
                __import__("torch").cuda.is_available(), reason="this machine has a GPU"
            ),
        ),
        (["--model", "smollm2-135"], "did you mean smollm2-135m?"),
        (["--model", "Qwen2.5-0.5B"], "did you mean qwen2.5-0.5b?"),
        (["--model", "llama3.1-8b"], "did you mean llama-3.1-8b?"),
        (["--model", "tiny", "--threads", "0"], "use 1 or more"),
        (["--model", "tiny", "--backend", "mlx", "--compile"], "drop --compile"),
    ],
)
def test_what_can_be_checked_before_loading_is_refused_before_the_screen(
    tmp_path: Path, args: list[str], fix: str
) -> None:
    done = infertop(*args, "--trace-dir", str(tmp_path / "t"))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("infertop: error:") and fix in line
    assert "\x1b[" not in done.stdout  # no screen was drawn


def test_a_trace_dir_that_is_a_file_and_a_bad_result_file_are_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    done = infertop("--model", "tiny", "--trace-dir", str(a_file))
    assert done.returncode == 2 and "is a file; pass a directory" in done.stderr
    done = infertop("--model", "tiny", "--trace-dir", str(tmp_path), "--result-filename", "/")
    assert done.returncode == 2 and "is a directory; pass a file name" in done.stderr


async def test_a_failed_load_stays_on_screen_and_keys_say_why_they_cannot_apply(
    tmp_path: Path,
) -> None:
    cfg = RunConfig(model=str(tmp_path / "no-such-dir"), trace_dir=str(tmp_path))
    session = Session(cfg)
    app = InfertopApp(session, refresh_hz=10)

    def refusals() -> int:
        return sum("the engine is not running" in str(n.message) for n in app._notifications)

    async with app.run_test(size=(120, 40)) as pilot:
        status = app.query_one(StatusLine)
        await until(pilot, lambda: "no such model directory" in status.text)
        assert app.state == "failed" and "q quits" in status.text
        assert "resume" not in status.text and "batch size" not in status.text
        for n, key in enumerate(("space", "p", "plus"), start=1):
            await pilot.press(key)
            await until(pilot, lambda n=n: refusals() == n)  # each key says why it cannot
            header = app.query_one(HeaderBar).text
            assert "load failed" in header
            assert not any(w in header for w in ("loading", "resuming", "pausing", "REC"))
            assert app.capture == "" and app.screen is app.screen_stack[0]
        assert "no such model directory" in status.text  # a line that stays, not a toast
        await pilot.press("q")
    assert app.return_code == 2  # bad input, as from the command line
    (farewell,) = app.farewell
    assert farewell.startswith("infertop: error: ") and "no such model directory" in farewell
    assert "the model did not load" in (tmp_path / "infertop.log").read_text()


async def test_an_engine_thread_that_dies_is_shown_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception Session.run does not catch (here: from building the ready event) ends
    the worker; the screen says the engine died instead of showing its last state."""

    def broken_ready_event(engine: object) -> object:
        raise RuntimeError("ready event exploded")

    cfg = RunConfig(model="tiny", batch_sizes=(1,), trace_dir=str(tmp_path), warmup=False)
    session = Session(cfg)
    app = InfertopApp(session, refresh_hz=10)
    monkeypatch.setattr(session_module, "ready_event", broken_ready_event)
    async with app.run_test(size=(120, 40)) as pilot:
        status = app.query_one(StatusLine)
        await until(pilot, lambda: "engine thread died" in status.text)
        assert app.state == "failed" and "ready event exploded" in status.text
        await pilot.press("space")
        await until(pilot, lambda: any("not running" in n.message for n in app._notifications))
        assert "resuming" not in app.query_one(HeaderBar).text
        await pilot.press("q")
    assert app.return_code == 1
    assert "ready event exploded" in (tmp_path / "infertop.log").read_text()


async def test_a_capture_that_cannot_start_clears_and_says_why(tmp_path: Path) -> None:
    blocker = tmp_path / "traces"
    blocker.write_text("a file where the trace dir should be")
    cfg = RunConfig(
        model="tiny",
        batch_sizes=(1,),
        input_lens=(8,),
        output_lens=(16,),
        trace_dir=str(blocker),
        warmup=False,
    )
    queue = HeldInCapture()  # the capture that starts waits until the test saw it record
    session = Session(cfg, queue)
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.state == "running")
        await pilot.press("p", "enter")
        await until(
            pilot, lambda: any("capture not started" in n.message for n in app._notifications)
        )
        await until(pilot, lambda: "REC" not in app.query_one(HeaderBar).text)
        assert app.capture == ""
        await pilot.press("p")  # opens the dialog again: nothing is stuck
        await until(pilot, lambda: app.screen.__class__.__name__ == "ProfileDialog")
        blocker.unlink()
        await pilot.press("enter")  # the defaults: all stages, until p or the cap
        await until(pilot, lambda: "REC" in app.query_one(HeaderBar).text)
        queue.release.set()
        await until(pilot, lambda: any(t.kind == "torch" for t in app.query_one("#traces").saved))
        await pilot.press("q")


async def test_a_runtime_error_shows_what_stopped_the_engine_until_it_runs_again(
    tmp_path: Path,
) -> None:

    from infertop.engine.backends.torch.engine import TorchEngine

    engine = TorchEngine.load("tiny", device="cpu")
    fail = fail_decode_on(engine)
    cfg = RunConfig(
        model="tiny", input_lens=(8,), output_lens=(16,), trace_dir=str(tmp_path), warmup=False
    )
    session = Session(cfg, engine=engine)
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: session.steps_done > 5)
        fail.set()
        line = app.query_one(StatusLine)
        await until(pilot, lambda: "RuntimeError: boom in decode" in line.text)
        assert app.state == "error" and "space retries" in line.text
        assert str(tmp_path / "infertop.log") in line.text
        await pilot.press("p")  # no capture while stopped by an error
        assert app.screen is app.screen_stack[0] and app.capture == ""
        fail.clear()
        await pilot.press("space")
        await until(pilot, lambda: app.state == "running")
        await until(pilot, lambda: "boom" not in line.text)
        await pilot.press("q")


def test_a_crash_of_the_app_prints_one_line_logs_and_exits_non_zero(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from infertop.tui.launch import run_app
    from tests.replay import DATA, FixedSampler, ReplaySession, from_json

    session = ReplaySession(from_json(DATA.read_text()))
    session.cfg = session.cfg.with_changes(trace_dir=str(tmp_path))
    app = InfertopApp(session, refresh_hz=20, sampler=FixedSampler(), start_worker=False)

    def broken_drain() -> None:
        raise ValueError("a bug in the app")

    app.drain = broken_drain  # type: ignore[method-assign]
    code = run_app(app, tmp_path / "infertop.log", headless=True)
    assert code == 1
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [
        f"infertop crashed: ValueError: a bug in the app (traceback in {tmp_path}/infertop.log)"
    ]
    log = (tmp_path / "infertop.log").read_text()
    assert "Traceback (most recent call last)" in log and "broken_drain" in log


def test_help_shows_the_live_screens_flags_with_defaults_and_the_subcommands() -> None:
    done = infertop("--help")
    assert done.returncode == 0
    out = done.stdout
    assert "--batch-size N [N ...]" in out and "(default: 1 8)" in out
    assert "infertop bench" in out and "infertop presets" in out
    for text in (out, infertop("bench", "--help").stdout):
        options = re.split(r"\n  (?=-)", text.split("options:", 1)[1])[1:]
        for option in options:
            if not option.startswith("-h,"):
                assert "default" in option, option


def test_typos_point_to_the_right_help() -> None:
    done = infertop("bench", "--batch-sizes", "1")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "unrecognized arguments: --batch-sizes" in line and "infertop bench --help" in line
    done = infertop("bnech")
    assert done.returncode == 2 and "did you mean `infertop bench`?" in done.stderr


def test_the_readme_usage_lines_show_the_real_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `[--flag VALUE]` of the README's usage: VALUE, or its first alternative, is the
    default; an all-capitals placeholder (N, FILE) stands for a flag without one."""
    from infertop.tui.launch import build_parser

    monkeypatch.delenv("INFERTOP_TRACE_DIR", raising=False)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    usage = readme.split("```text\ninfertop [", 1)[1].split("```", 1)[0]
    parser = build_parser()
    defaults = {
        # a --no-x switch stores False into x: off unless given, like any other switch;
        # a flag's first name is the one shown (--model, not its alias --model-path)
        a.option_strings[0]: (
            not a.default if a.option_strings[0].startswith("--no-") else a.default
        )
        for a in parser._actions
        if a.option_strings
    }
    shown = dict(re.findall(r"\[(--[a-z-]+)(?: ([^\]]+))?\]", "[" + usage))
    assert set(shown) == set(defaults) - {"-h"}  # every flag is in the usage
    for flag, value in shown.items():
        default = defaults[flag]
        if not value:
            assert default is False, flag  # a switch, off by default
        elif value.isupper():
            assert default is None, flag
        else:
            first = value.split("|")[0]
            text = " ".join(map(str, default)) if isinstance(default, list) else str(default)
            assert first == text.removesuffix(".0"), (flag, value, default)


def test_screenshot_svgs_are_converted_as_a_terminal_draws_them() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "screenshots"))
    from svg_to_png import fixed_svg

    svg = (
        '<svg width="10"><text class="t" x="10.0" y="5" textLength="24.4" '
        'clip-path="url(#c)">&#160;tiny</text><text class="t" x="34.4" y="5" '
        'textLength="36.6" clip-path="url(#c)">⠤⣀⡀</text></svg>'
    )
    fixed = fixed_svg(svg)
    assert fixed.startswith('<svg xml:space="preserve" ')  # leading blanks are kept
    assert fixed.count("<text") == 4  # the braille run is placed glyph by glyph
    assert 'x="46.6"' in fixed and 'x="58.8"' in fixed


def test_without_a_terminal_the_live_screen_refuses_and_points_to_bench(tmp_path: Path) -> None:
    """`infertop </dev/null` opened a screen nobody could quit but with a signal."""
    done = infertop("--model", "tiny", "--trace-dir", str(tmp_path))  # stdin: /dev/null
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "needs a terminal" in line and "stdin is not one" in line and "infertop bench" in line
