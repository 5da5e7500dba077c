"""The benchmark harness still runs end to end (``python -m bench --smoke``); no speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("tracker", "ceiling", "typical")


@pytest.mark.timeout(150)
def test_smoke_run_writes_a_table_for_all_three_servers(tmp_path: Path) -> None:
    """The smoke run completes and writes results.md and results.json with rows for every server."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--results", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=140, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (tmp_path / "results.md").read_text()
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    for server in SERVERS:
        assert f"| {server} |" in table
        assert {row["workload"] for row in rows if row["server"] == server} >= {"fanout-fixed", "idle", "slow"}
    assert any(row["workload"] == "log" for row in rows)
