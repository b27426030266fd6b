"""Command-line flags declared once, on the dataclass field each one fills (the pattern of
SGLang's BenchArgs.add_cli_args): `flag()` puts the flag in the field's metadata,
`add_cli_args` adds every flagged field of a dataclass to a parser, `from_cli_args` reads
them back. Also the argument types that turn bad values into one line naming the fix."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def flag(name: str, help: str, aliases: tuple[str, ...] = (), **argparse_kw: Any) -> dict[str, Any]:
    """Metadata for a dataclass field: its flag (and other names for it, such as SGLang's),
    help and argparse options. A callable `default` is called when the parser is built (e.g.
    to read an environment variable)."""
    return {"flag": name, "aliases": aliases, "help": help, **argparse_kw}


def add_cli_args(
    p: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type[Any],
    defaults: Mapping[str, object] | None = None,
) -> None:
    """Add a flag for each field of `cls` that declares one; `defaults` overrides the
    field's default for this parser (the live screen sweeps batch 1 and 8, bench batch 1)."""
    for f in dataclasses.fields(cls):
        if "flag" not in f.metadata:
            continue
        kw = dict(f.metadata)
        name = kw.pop("flag")
        aliases = kw.pop("aliases", ())
        if kw.get("action") not in ("store_true", "store_false"):  # those know their default
            default = kw.pop("default", f.default)
            if defaults and f.name in defaults:
                default = defaults[f.name]
            default = default() if callable(default) else default
            kw["default"] = list(default) if isinstance(default, tuple) else default
        p.add_argument(name, *aliases, dest=f.name, **kw)


def from_cli_args(cls: Callable[..., T], args: argparse.Namespace, **extra: Any) -> T:
    """`cls` built from the flagged fields' values in `args` (lists become tuples)."""
    values = {
        f.name: tuple(v) if isinstance(v := getattr(args, f.name), list) else v
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if "flag" in f.metadata
    }
    return cls(**values, **extra)


def int_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number; use e.g. 1, 8, 128"
        ) from None


def whole_number_in(low: int, high: int | None, fix: str) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (None: no limit); `fix` says
    the range in the error."""

    def parse(text: str) -> int:
        value = int_arg(text)
        if value < low or (high is not None and value > high):
            what = "is invalid" if high is None else "is out of range"
            raise argparse.ArgumentTypeError(f"{value} {what}; use {fix}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in some errors
    return parse


positive_int = whole_number_in(1, None, "1 or more")
non_negative_int = whole_number_in(0, None, "0 or more")
seed_arg = whole_number_in(0, 2**63 - 1, "0 to 2**63-1")
