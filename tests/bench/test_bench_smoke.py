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
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (tmp_path / "results.md").read_text()
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    for server in SERVERS:
        assert f"| {server} |" in table
        assert {row["workload"] for row in rows if row["server"] == server} >= {"fanout-fixed", "idle", "slow"}
    assert any(row["workload"] == "log" for row in rows)


@pytest.mark.timeout(150)
def test_smoke_run_with_a_baseline_commit_shows_both_trackers(tmp_path: Path) -> None:
    """``--baseline HEAD`` runs a second tracker from HEAD's source tree, extracted to a temporary
    directory, beside the work tree's: both rows and the ratio section appear, the baseline
    imported its own copy of chat_tracker, and the copy is gone afterwards."""
    short = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--servers",
            "tracker,baseline",
            "--baseline",
            "HEAD",
            "--workloads",
            "fanout,log",
            "--results",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    label = f"tracker@{short}"
    table = (tmp_path / "results.md").read_text()
    assert "| tracker |" in table
    assert f"| {label} |" in table
    assert f"## Against {label}" in table
    assert f"## Against {label}" in done.stdout  # the ratios are printed too
    result = json.loads((tmp_path / "results.json").read_text())
    for server in ("tracker", "baseline"):
        workloads = {row["workload"] for row in result["rows"] if row["server"] == server}
        assert workloads >= {"fanout-fixed", "fanout-max", "log"}, (server, workloads)
    assert result["baseline"][0]["cpu_ratio"] is not None
    tree = Path(result["plan"]["baseline_tree"])
    assert not tree.exists()
    outputs = [path.read_text() for path in (tmp_path / "logs").glob("baseline-*.out")]
    assert outputs
    for output in outputs:
        first = output.splitlines()[0]
        assert first == f"bench baseline: chat_tracker from {tree}/services/tracker/chat_tracker/__init__.py"
