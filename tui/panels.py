"""The text panels: header, prefill, decode, system, and the status line (progress, or the
error that stopped the engine). Each repaints only when what it shows changed."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

from infertop.engine.backend import MemoryStats
from infertop.engine.backends.server.metrics import ServerMetrics
from infertop.engine.config import human_count
from infertop.engine.events import EngineReady
from infertop.engine.stats import BatchStats, RunPosition
from infertop.engine.sysmon import SystemSample
from infertop.engine.text import plural
from infertop.tui.format import ms, nbytes, nbytes_of, pct, rate


class Panel(Widget):
    """Fixed-size text that repaints only when its content changed, and never asks for a
    layout pass (Static.update does, and on every tick that cost more than the rest)."""

    def __init__(self, title: str, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.border_title = title
        self._key: object = None
        self._content: RenderableType = ""

    def render(self) -> RenderableType:
        return self._content

    def show(self, key: object, render: Callable[[], RenderableType] | RenderableType) -> bool:
        """`key` summarises the content; `render()` builds it only when the key changed."""
        if key == self._key:
            return False
        self._key = key
        self._content = render() if callable(render) else render
        self.refresh()
        return True

    def show_grid(self, rows: list[tuple[str, str]]) -> bool:
        """Label/value rows, repainted when a shown digit or the panel's width changes."""
        room = self.content_size.width
        return self.show((tuple(rows), room), lambda: _grid(rows, room))

    @property
    def text(self) -> str:
        """What the panel shows, as plain text (for tests and logs)."""
        content = self._content
        return content.plain if isinstance(content, Text) else str(content)


def _grid(rows: list[tuple[str, str]], room: int = 0) -> Text:
    """Label/value rows; plain Text because a rich Table costs ~10x more to render. In a
    panel narrower than the rows (`room`), values align on what is left beside the labels:
    aligned on the widest, one long value pushed every other one out of a 60-column screen."""
    width = max(len(k) for k, _ in rows)
    vwidth = max(len(v) for _, v in rows)
    if room and width + 1 + vwidth > room:
        vwidth = max(room - width - 1, 0)
    t = Text(no_wrap=True, overflow="ellipsis", end="")
    for n, (k, v) in enumerate(rows):
        if n:
            t.append("\n")
        t.append(k.ljust(width + 1), style="dim")
        t.append(v.rjust(vwidth))
    return t


STATE_STYLES = {
    "running": "green",
    "paused": "yellow",
    "error": "red bold",
    "failed": "red bold",
}
STATE_LABELS = {"failed": "load failed"}


def header_text(
    ready: EngineReady | None, model: str, state: str, rec: str, compact: bool = False
) -> Text:
    """The header line; `compact` leaves out the parameter count and the backend's name
    beside the kernel, for an 80-column terminal (the kernel was cut to "[torch · o…")."""
    t = Text(no_wrap=True, overflow="ellipsis", end="")
    t.append(" infertop ", style="bold reverse")
    # state and REC first: they must stay visible in an 80-column terminal
    t.append(f" ● {STATE_LABELS.get(state, state)} ", style=STATE_STYLES.get(state, "cyan"))
    if rec:
        t.append(f" ● REC {rec} ", style="bold white on red")
    t.append(" │ ", style="dim")
    if ready and ready.device_kind == "server":
        t.append(f"{ready.model_name} ", style="bold")
        t.append(" │ ", style="dim")
        t.append(f"{ready.backend} ", style="bold")
        t.append(ready.device_name)
    elif ready:
        t.append(f"{ready.model_name} ", style="bold")
        t.append(ready.dtype if compact else f"{human_count(ready.param_count)} {ready.dtype}")
        t.append(" │ ", style="dim")
        t.append(f"{ready.device_name} ", style="bold")
        if compact and ready.kernel:
            t.append(f"[{ready.kernel}]")
        else:
            kernel = f" · {ready.kernel}" if ready.kernel else ""
            t.append(f"[{ready.backend}{kernel}]")
        if ready.device_kind != "cpu" and ready.threads:  # a CPU's name says it
            t.append(f" · {plural(ready.threads, 'CPU thread')}")
    else:
        t.append(model, style="bold")
    return t


class HeaderBar(Panel):
    def __init__(self, **kw: object) -> None:
        super().__init__("", **kw)

    def refresh_from(self, ready: EngineReady | None, model: str, state: str, rec: str) -> None:
        width = self.content_size.width

        def render() -> Text:
            full = header_text(ready, model, state, rec)
            if not width or full.cell_len <= width:
                return full
            return header_text(ready, model, state, rec, compact=True)

        self.show((ready, model, state, rec, width), render)


def _captured(bs: BatchStats) -> str:
    return f", {bs.captured_runs} captured" if bs.captured_runs else ""


class PrefillPanel(Panel):
    """Prefill latency of the selected batch size, in milliseconds (the title says so)."""

    def refresh_from(self, bs: BatchStats | None) -> None:
        if bs is None or not len(bs.prefill):
            waiting = "only captured runs so far" if bs and bs.captured_runs else "no prefill yet"
            self.show(waiting, Text(waiting, style="dim"))
            return
        w = bs.prefill
        p50, p90, p99 = w.percentiles(50, 90, 99)
        (tps,) = bs.prefill_tps.percentiles(50)
        rows = [
            ("last", ms(w.last)),
            ("mean", ms(w.mean())),
            ("p50", ms(p50)),
            ("p90", ms(p90)),
            ("p99", ms(p99)),
            ("tok/s", rate(tps)),
            # the prefills in these figures: the run in flight's is one of them once done
            ("prefills", f"{w.count:,}{_captured(bs)}"),
        ]
        self.show_grid(rows)


class DecodePanel(Panel):
    """Decode step latency of the selected batch size, in milliseconds."""

    def refresh_from(self, bs: BatchStats | None) -> None:
        if bs is None or not len(bs.decode):
            self.show(None, Text("no decode step yet", style="dim"))
            return
        w = bs.decode
        p50, p90, p99 = w.percentiles(50, 90, 99)
        rows = [
            ("last", ms(w.last)),
            ("p50", ms(p50)),
            ("p90", ms(p90)),
            ("p99", ms(p99)),
            ("tok/s", rate(bs.decode_throughput())),
            ("run total", ms(bs.total.last)),
            ("steps", f"{w.count:,}"),
        ]
        self.show_grid(rows)


class SystemPanel(Panel):
    def refresh_from(
        self, s: SystemSample | None, mem: MemoryStats | None, dropped: int, device_kind: str
    ) -> None:
        if s is None:
            return
        rows = [
            ("process CPU", pct(s.process_cpu)),
            ("process RSS", nbytes(s.process_rss)),
            ("system CPU", pct(s.system_cpu)),
            ("system mem", nbytes_of(s.system_mem_used, s.system_mem_total)),
        ]
        if mem is not None and device_kind != "cpu":
            rows += [
                ("dev alloc/res", nbytes_of(mem.allocated, mem.reserved)),
                ("dev peak", nbytes(mem.peak)),
            ]
        elif mem is not None:
            rows.append(("peak RSS", nbytes(mem.peak)))
        rows.append(("UI dropped", f"{dropped:,}"))
        self.show_grid(rows)


class ServerPanel(Panel):
    """The server's own numbers (its Prometheus /metrics since infertop attached) beside the
    client-side ones; and this process's CPU, to show the load generator is not the limit."""

    def refresh_from(self, m: ServerMetrics | None, why_none: str, s: SystemSample | None) -> None:
        client = [("client CPU", pct(s.process_cpu if s else None))]
        if m is None:
            rows = [("metrics", why_none), *client]
            self.show_grid(rows)
            return

        def q(name: str, *qs: float) -> str:
            h = m.histograms.get(name)
            return "/".join(ms(h.quantile(x) if h else None) for x in qs)

        def mean(name: str) -> str:
            h = m.histograms.get(name)
            return ms(h.mean if h else None)

        g = m.gauges
        rows = [
            ("TTFT p50/p99", q("ttft", 0.5, 0.99)),
            ("ITL p50/p99", q("itl", 0.5, 0.99)),
            ("e2e mean", mean("e2e")),  # exact (_sum/_count): quantiles are bucket-coarse
            ("queue mean", mean("queue")),
            ("run/wait", f"{g.get('running', 0):.0f}/{g.get('waiting', 0):.0f}"),
            ("KV cache", pct(g["kv_usage"] * 100 if "kv_usage" in g else None)),
            *client,
        ]
        if m.error:
            rows[-1] = ("scrape", m.error)
        self.show_grid(rows)


class StatusLine(Panel):
    """The current run and its place in the sweep, the load progress, or, while the engine is
    stopped by an error, that error and what to do (it stays until the engine runs again)."""

    def __init__(self, **kw: object) -> None:
        super().__init__("", **kw)

    def refresh_from(
        self,
        p: RunPosition,
        sweep: tuple[tuple[int, int, int], ...],
        state: str,
        load: tuple[str, int, int] | None,
        error: tuple[str, str] | None,
    ) -> None:
        def render() -> Text:
            t = Text(no_wrap=True, overflow="ellipsis", end="")
            if error is not None:
                message, hint = error
                t.append(f"✖ {message} ", style="bold red")
                t.append(f" {hint}", style="red")
                return t
            if load and state in ("loading", "warming up"):
                stage, done, total = load
                count = f" {_bar(done, total)} {done}/{total}" if total else "…"
                t.append(stage + count, style="cyan")
                return t
            if p.run_index < 0:
                t.append(state, style="dim")
                return t
            shape = (p.batch_size, p.input_len, p.output_len)
            pos = sweep.index(shape) + 1 if shape in sweep else 0
            t.append(f"run {p.run_index + 1} ", style="bold")
            t.append(f" bs {p.batch_size} in {p.input_len} out {p.output_len}  ")
            if not p.prefilled:
                t.append("prefill…", style="yellow")
            else:
                steps = max(p.output_len - 1, 1)
                t.append(f"decode {_bar(p.step, steps)} {p.step}/{steps}")
            where = f"   sweep {pos}/{len(sweep)}" if pos else "   (sweep changed)"
            t.append(where, style="dim")
            return t

        self.show((p.run_index, p.step, p.prefilled, sweep, state, load, error), render)


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)
