"""The reliability campaign's bookkeeping: figures, chat.log checks, the tracker's error lines, root tools.

Figures: each test adds what it tried to ``tests/reliability/results/figures.jsonl`` (one JSON
object per line, gitignored; RELIABILITY_RESULTS names another directory); tests/reliability/report.py
sums them into the tables of docs/reliability.md. RELIABILITY_FULL=1 asks for the long forms.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from chat_tracker.storage.chatlog import LogFormatError, parse_line
from support.environment import require

FULL = os.environ.get("RELIABILITY_FULL", "") == "1"
RESULTS = Path(os.environ.get("RELIABILITY_RESULTS", Path(__file__).resolve().parents[1] / "reliability" / "results"))
FIGURES = RESULTS / "figures.jsonl"

# Raw control bytes that must never reach chat.log: C0 (except the newline ending
# each line), DEL, C1 (as UTF-8), U+2028/2029, bidi overrides.
RAW_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def require_root_tool(tool: str) -> None:
    require(os.geteuid() == 0, "needs root (mount, unshare, iptables)")
    require(shutil.which(tool) is not None, f"{tool} is not installed")


def record(figure: str, **counts: Any) -> None:
    """Add one test's counts to the figures file (summed by report.py)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with FIGURES.open("a", encoding="utf-8") as file:
        file.write(json.dumps({"figure": figure, "at": time.time(), **counts}) + "\n")


def check_log_file(path: Path) -> list[Any]:
    """Parse chat.log strictly: whole lines, no raw controls, seq +1 each line. Returns the entries."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"torn last line in {path}: {data[-80:]!r}"
    text = data.decode("utf-8")  # raises on a torn multi-byte character
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        assert RAW_CONTROLS.search(line) is None, f"raw control in line {number}: {line!r}"
        try:
            entries.append(parse_line(line))
        except LogFormatError as error:
            raise AssertionError(f"line {number} of {path} does not parse: {error}") from None
    seqs = [entry.seq for entry in entries]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True, "sequence gap or repeat"
    return entries


def error_lines(output: list[str]) -> list[str]:
    """Tracker log lines at ERROR or worse, and tracebacks."""
    return [line for line in output if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]
