"""The reliability figures as Markdown, from the rows the tests counted (``support.campaign.record``).

A figure is a block of lines; each line is a list of parts. A plain ``str`` part is *counted*:
for a given form (CI or full) the same in every passing run (inputs tried, faults injected, lost,
duplicated, reordered, forged), so docs/reliability.md must hold it exactly. A ``Measured`` part
varies from run to run (latencies, RSS, durations, what a randomly timed kill let through, what a
fuzzer generated): it is printed in italics, and the docs check compares only where it stands.
Tables are rendered by support.figure_tables; support.figures_docs puts them into the docs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Measured:
    """A value that varies from run to run: compared by place only, printed in italics."""

    text: str


Part = str | Measured
Line = list[Part]


def maybe_measured(text: str, measured: bool) -> Part:
    """``text`` as a counted part, or as a measured one when what it counts varies run to run."""
    return Measured(text) if measured else text


@dataclass(frozen=True)
class Block:
    """One generated block: a Markdown table (``table``) or lines of prose."""

    lines: list[Line]
    table: bool = True

    def text(self) -> str:
        """The block as it stands in the docs."""
        return "\n".join(line_text(line, self.table) for line in self.lines)


def part_text(part: Part) -> str:
    return f"_{part.text}_" if isinstance(part, Measured) else part


def line_text(line: Line, table: bool) -> str:
    if table:
        return "| " + " | ".join(part_text(part) for part in line) + " |"
    return "".join(part_text(part) for part in line)


def load_rows(path: Path, since: float = 0.0) -> list[Row]:
    """The rows of a figures.jsonl written at or after ``since`` (a time.time() value)."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if float(row.get("at", 0.0)) >= since]


def number(value: Any) -> str:
    """1234 -> 1,234; 0.5 -> 0.5; anything else as it is."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
    return str(value)


def rows_of(rows: Iterable[Row], figure: str) -> list[Row]:
    return [row for row in rows if row.get("figure") == figure]


NOT_COUNTED = "not counted"


def total(rows: Iterable[Row], key: str) -> int | None:
    """The sum of ``key`` over the rows, or None when a row lacks it (then the figure is not counted)."""
    values = [row.get(key) for row in rows]
    if not values or any(not isinstance(value, int | float) for value in values):
        return None
    return int(sum(values))  # type: ignore[arg-type]


def counted(rows: Iterable[Row], key: str) -> str:
    """A counted sum as a cell: the number, or "not counted" when any row lacks it."""
    value = total(list(rows), key)
    return NOT_COUNTED if value is None else number(value)


UNITS = {"_seconds": "s", "_s": "s", "_ms": "ms", "_mib": "MiB"}


def pair(key: str, value: Any) -> str:
    """``dropped_after_s``, 1.98 -> "dropped after 1.98 s"."""
    for suffix, unit in UNITS.items():
        if key.endswith(suffix):
            return f"{key.removesuffix(suffix).replace('_', ' ')} {number(value)} {unit}"
    return f"{key.replace('_', ' ')} {number(value)}"


def details(row: Row, keys: Iterable[str]) -> str:
    """``key value`` pairs of a row (those present, in the given order) for a measured cell."""
    return ", ".join(pair(key, row[key]) for key in keys if key in row) or "-"


def extras(row: Row, known: Iterable[str]) -> str:
    """A row's keys other than ``known`` (and figure, at), as ``key value`` pairs."""
    skip = {"figure", "at", *known}
    return details(row, [key for key in row if key not in skip and not isinstance(row[key], dict | list)])
