"""The repeat check CI runs (.ci/no_repeats.py): it finds a block repeated with other names,
leaves data tables and declarations alone, and finds nothing in engine/ or tui/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("no_repeats", ROOT / ".ci" / "no_repeats.py")
assert spec and spec.loader
no_repeats = importlib.util.module_from_spec(spec)
spec.loader.exec_module(no_repeats)

BODY = """
def {name}(values, limit):
    total = 0
    for v in values:
        if v > limit:
            total += v * {k}
        else:
            total -= 1
    return total
"""


def tree(tmp_path: Path, engine: str, tui: str) -> Path:
    for folder, text in (("engine", engine), ("tui", tui)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "m.py").write_text(text)
    return tmp_path


def test_a_block_repeated_with_other_names_is_found(tmp_path: Path) -> None:
    root = tree(tmp_path, BODY.format(name="first", k=2), BODY.format(name="second", k=3))
    (found,) = no_repeats.repeats(root)
    assert "engine/m.py:" in found and "tui/m.py:" in found


def test_five_lines_alike_are_not_a_repeat(tmp_path: Path) -> None:
    short = BODY.replace("        else:\n            total -= 1\n", "").replace(
        "    total = 0\n", ""
    )
    assert (
        no_repeats.repeats(tree(tmp_path, short.format(name="a", k=1), short.format(name="b", k=2)))
        == []
    )


def test_data_rows_and_declarations_are_not_repeats(tmp_path: Path) -> None:
    table = (
        "ROWS = (\n" + "".join(f'    Row("k{n}", "action {n}", {n}),\n' for n in range(8)) + ")\n"
    )
    fields = "class A:\n" + "".join(f"    f{n}: int\n" for n in range(8))
    assert (
        no_repeats.repeats(tree(tmp_path, table + fields, table + fields.replace("A", "B"))) == []
    )


def test_engine_and_tui_repeat_nothing() -> None:
    assert no_repeats.repeats(ROOT) == []
