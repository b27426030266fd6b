"""Fail when a block of 6 or more lines repeats inside engine/ or tui/: the same lines, or
the same shape with other names, strings and numbers.

Lines are compared as token shapes (a name is N, a string S, a number 0; keywords and
operators stay). Left out, because repeating their shape is what they are for: imports,
decorators, docstrings, class lines and annotated declarations (`name: type`; the fields of
a dataclass, say), and data rows inside a
literal or call (lines of only names, strings, numbers and punctuation, such as a key
table's rows).

python .ci/no_repeats.py [ROOT]      exit 1 and a line per repeat, or exit 0
"""

from __future__ import annotations

import io
import keyword
import sys
import tokenize
from collections import defaultdict
from pathlib import Path

WINDOW = 6
DIRS = ("engine", "tui")
DATA = set("SN0,()[]{}:-.") | {"None", "True", "False"}
# Python 3.12 splits f-strings into tokens; 3.11 gives one STRING
FSTRING_START = getattr(tokenize, "FSTRING_START", -1)
FSTRING_PARTS = {getattr(tokenize, n, -1) for n in ("FSTRING_MIDDLE", "FSTRING_END")}


def shapes(source: str) -> list[tuple[int, str]]:
    """(line number, shape) of each line that counts."""
    lines: dict[int, list[str]] = defaultdict(list)
    depth, statement_start, skip_statement = 0, True, False
    first_of_line: dict[int, int] = {}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    prev_type = tokenize.NEWLINE
    for tok in tokens:
        kind, text, (row, _), _, _ = tok
        if kind in (tokenize.NEWLINE, tokenize.NL):
            if kind == tokenize.NEWLINE:
                statement_start, skip_statement = True, False
            prev_type = kind
            continue
        if kind in (tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        if statement_start:
            statement_start = False
            docstring = kind == tokenize.STRING and prev_type in (
                tokenize.NEWLINE,
                tokenize.INDENT,
                tokenize.DEDENT,
                tokenize.NL,
            )
            skip_statement = text in ("import", "from", "@") or docstring
        prev_type = kind
        if skip_statement:
            continue
        first_of_line.setdefault(row, depth)
        if kind == tokenize.NAME:
            word = text if keyword.iskeyword(text) or text in DATA else "N"
        elif kind in (tokenize.STRING, FSTRING_START):
            word = "S"
        elif kind in FSTRING_PARTS:
            continue
        elif kind == tokenize.NUMBER:
            word = "0"
        else:
            word = text
        if text in "([{" and kind == tokenize.OP:
            depth += 1
        elif text in ")]}" and kind == tokenize.OP:
            depth -= 1
        lines[row].append(word)
    kept = []
    for row in sorted(lines):
        words = lines[row]
        shape = " ".join(words)
        if first_of_line[row] == 0 and (words[0] == "class" or words[:2] == ["N", ":"]):
            continue  # a class or an annotated declaration
        if first_of_line[row] > 0 and set(words) <= DATA:
            continue  # a data row
        kept.append((row, shape))
    return kept


def repeats(root: Path) -> list[str]:
    seen: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for folder in DIRS:
        for path in sorted((root / folder).rglob("*.py")):
            kept = shapes(path.read_text())
            name = str(path.relative_to(root))
            for k in range(len(kept) - WINDOW + 1):
                window = "\n".join(shape for _, shape in kept[k : k + WINDOW])
                seen[window].append((name, kept[k][0]))
    runs: dict[tuple[object, ...], tuple[tuple[str, int], ...]] = {}
    for places in seen.values():
        distinct = [places[0]]
        for place in places[1:]:  # overlapping windows of one run count once
            last = distinct[-1]
            if place[0] != last[0] or place[1] - last[1] >= WINDOW:
                distinct.append(place)
        if len(distinct) > 1:
            # consecutive windows of one repeated run share files and line offsets: keep the first
            key = (*(f for f, _ in distinct), *(n - distinct[0][1] for _, n in distinct))
            if key not in runs or distinct[0][1] < runs[key][0][1]:
                runs[key] = tuple(distinct)
    return sorted(" ~ ".join(f"{f}:{n}" for f, n in places) for places in runs.values())


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    found = repeats(root)
    for line in found:
        print(f"repeated block of {WINDOW}+ lines: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
