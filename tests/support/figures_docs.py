"""The generated blocks of docs/reliability.md and README.md: render, compare, rewrite.

A block stands between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->`` (the CI form, which
every full CI run checks) or ``<!-- figures-full:NAME -->`` (the long forms, RELIABILITY_FULL=1).
Its text is exactly what ``scripts/reliability`` prints for NAME. Counted cells must be equal; a
measured cell (in italics) only has to stand in its place, in italics.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path

from support import figure_resume_load as more
from support import figure_tables as tables
from support.figures import Block, Measured, Part, Row

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "reliability.md", ROOT / "README.md")
FIX = "scripts/reliability --write-docs"

BLOCKS: dict[str, Callable[[list[Row]], Block]] = {
    "summary": tables.summary,
    "bad-inputs": tables.bad_inputs,
    "bad-inputs-measured": tables.bad_inputs_measured,
    "faults": tables.faults,
    "faults-measured": lambda rows: tables.faults_measured(rows, replicas=False),
    "nemesis": tables.nemesis_kinds,
    "rotation": more.rotation,
    "load": more.load,
    "connection-abuse": more.connection_abuse,
    "resume": more.resume,
    "resume-measured": more.resume_measured,
    "resume-together": more.resume_together,
    "replicas": tables.replicas,
    "replicas-measured": lambda rows: tables.faults_measured(rows, replicas=True),
}
MARKERS = re.compile(r"<!-- (figures(?:-full)?):([a-z-]+) -->\n(.*?)<!-- /\1:\2 -->", re.DOTALL)


def prefix(full: bool) -> str:
    return "figures-full" if full else "figures"


def render(rows: list[Row]) -> dict[str, Block]:
    return {name: build(rows) for name, build in BLOCKS.items()}


def printed(rows: list[Row], full: bool) -> str:
    """What ``scripts/reliability`` prints: every block, under its marker name."""
    return "\n\n".join(f"{marker(prefix(full), name)}\n{block.text()}" for name, block in render(rows).items())


def marker(kind: str, name: str) -> str:
    return f"<!-- {kind}:{name} -->"


def part_pattern(part: Part, table: bool) -> str:
    if isinstance(part, Measured):
        return r"_[^|\n]+_" if table else r"_[^\n]+?_"
    return re.escape(part)


def pattern(block: Block) -> re.Pattern[str]:
    """The block's text with each measured part free (but in italics, in its place)."""
    lines = []
    for line in block.lines:
        parts = [part_pattern(part, block.table) for part in line]
        lines.append(r"\| " + r" \| ".join(parts) + r" \|" if block.table else "".join(parts))
    return re.compile("\n".join(lines))


def doc_blocks(text: str, kind: str) -> list[tuple[str, str]]:
    """(name, content) of every block of this kind in a document, content without its last newline."""
    return [(m.group(2), m.group(3).rstrip("\n")) for m in MARKERS.finditer(text) if m.group(1) == kind]


def compare_one(path: Path, name: str, content: str, block: Block | None) -> str | None:
    """None when the block in the docs stands for ``block``; else why not, with a diff."""
    if block is None:
        return f"{path.name}: block {name!r} is no figure that scripts/reliability prints"
    if pattern(block).fullmatch(content):
        return None
    diff = difflib.unified_diff(
        content.splitlines(), block.text().splitlines(), f"{path.name} ({name})", "this run", lineterm=""
    )
    return "\n".join(diff)


def differences(rows: list[Row], full: bool, docs: dict[Path, str]) -> list[str]:
    """Every block of the docs that this run's rows do not give (and, for the CI form, every figure missing)."""
    rendered, seen, problems = render(rows), set(), []
    for path, text in docs.items():
        for name, content in doc_blocks(text, prefix(full)):
            seen.add(name)
            problem = compare_one(path, name, content, rendered.get(name))
            if problem is not None:
                problems.append(problem)
    if not full:
        missing = sorted(set(rendered) - seen)
        problems += [f"no {marker(prefix(full), name)} block in the docs" for name in missing]
    return problems


def rewritten(text: str, rows: list[Row], full: bool) -> str:
    """The document with every block of this form replaced by this run's figures."""
    rendered = render(rows)

    def replace(match: re.Match[str]) -> str:
        if match.group(1) != prefix(full) or match.group(2) not in rendered:
            return match.group(0)
        kind, name = match.group(1), match.group(2)
        return f"{marker(kind, name)}\n{rendered[name].text()}\n<!-- /{kind}:{name} -->"

    return MARKERS.sub(replace, text)


def read_docs(paths: tuple[Path, ...] = DOCS) -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in paths}


def write_docs(rows: list[Row], full: bool) -> list[Path]:
    """Rewrite the docs' blocks of this form; the files that changed."""
    changed = []
    for path, text in read_docs().items():
        new = rewritten(text, rows, full)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed
