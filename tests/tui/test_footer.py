"""The key bar is rebuilt only when the keys it shows change (tui/footer.py)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Button

from infertop.tui.footer import KeyFooter
from tests.helpers import replay_app


class CountingFooter(KeyFooter):
    def __init__(self) -> None:
        super().__init__()
        self.rebuilds = 0

    async def recompose(self) -> None:
        self.rebuilds += 1
        await super().recompose()


class Extra(Button):
    BINDINGS = [Binding("x", "press", "Extra key")]


class TwoWidgets(App[None]):
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Button("a", id="a")
        yield Button("b", id="b")
        yield Extra("c", id="c")
        yield CountingFooter()


def shown_keys(app: App[object]) -> list[str]:
    return [str(k.key) for k in app.query("FooterKey")]


async def test_focus_that_leaves_the_keys_alone_does_not_rebuild_the_footer() -> None:
    app = TwoWidgets()
    async with app.run_test() as pilot:
        footer = app.query_one(CountingFooter)
        await pilot.pause()
        before = footer.rebuilds
        assert shown_keys(app) == ["q"]
        for target in ("#b", "#a", "#b"):
            app.query_one(target).focus()
            await pilot.pause()
        assert footer.rebuilds == before
        app.query_one("#c", Extra).focus()  # a widget whose own key is shown
        await pilot.pause()
        assert footer.rebuilds == before + 1
        assert shown_keys(app) == ["x", "q"]
        app.query_one("#a").focus()
        await pilot.pause()
        assert shown_keys(app) == ["q"]


async def test_the_view_swap_keeps_the_footer_and_its_keys() -> None:
    app = replay_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        footer = app.query_one(KeyFooter)
        keys = shown_keys(app)
        first = list(footer.children)
        assert "t" in keys and "p" in keys
        for _ in range(4):  # the focus moves to the trace list and back each time
            await pilot.press("t")
            await pilot.pause()
        assert list(footer.children) == first  # the same widgets: not rebuilt
        assert shown_keys(app) == keys
