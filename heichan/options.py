"""Command-line options generated from a dataclass, so every option is defined once.

A field's metadata gives its help text (`help`) and allowed values (`choices`); the default comes
from the field. Used by `heichan train` (TrainConfig) and `heichan batch` (BatchConfig).
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from typing import Any


def option(default: Any, help: str, choices: tuple | None = None) -> Any:
    """A dataclass field with its command-line help (use as `name: type = option(...)`)."""
    from dataclasses import field

    return field(default=default, metadata={"help": help, "choices": choices})


def add_options(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One `--flag` per field of the dataclass `cls` (fields without a default are positional)."""
    for f in fields(cls):
        if f.name in skip:
            continue
        help_text, choices = f.metadata.get("help", ""), f.metadata.get("choices")
        if f.default is MISSING:
            parser.add_argument(f.name, help=help_text)
            continue
        flag = "--" + f.name.replace("_", "-")
        shown = f" (default: {f.default})" if f.default not in (None, "", False) else ""
        if f.type in ("bool", bool, "bool | None"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text + shown)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(flag, type=kind, default=f.default, choices=choices, help=help_text + shown)
