"""The benchmark harness still runs end to end (``python -m bench --smoke``); no speed is asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from support.benchrun import run_bench
from support.timing import UNIT

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("tracker", "ceiling", "typical")


@pytest.mark.timeout(30 * UNIT)
def test_smoke_run_writes_a_table_for_all_three_servers(tmp_path: Path) -> None:
    """The smoke run completes and writes results.md and results.json with rows for every server."""
    run_bench("--smoke", "--results", str(tmp_path), timeout=28 * UNIT)
    table = (tmp_path / "results.md").read_text()
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    for server in SERVERS:
        assert f"| {server} |" in table
        assert {row["workload"] for row in rows if row["server"] == server} >= {"fanout-fixed", "idle", "slow"}
    assert any(row["workload"] == "log" for row in rows)
    fixed = [row for row in rows if row["workload"] == "fanout-fixed"]
    assert {row["arrivals"] for row in fixed} == {"lockstep", "even", "poisson"}
    assert all(row["arrivals"] for row in rows if row["workload"] in ("fanout-step", "slow", "log"))
    for row in fixed:
        if row["server"] == "tracker":
            assert row["deliveries_per_write"] > 0, row
            assert row["server_writes"] > 0, row
            assert row["generator_cpu_us_per_delivery"] > 0, row
    assert "## Arrival patterns side by side" in table
    storm = [row for row in rows if row["workload"] == "joins"]
    assert [row["server"] for row in storm] == ["tracker"]  # the references announce no joins
    assert storm[0]["notices"] == storm[0]["expected_notices"] > 0, storm
    assert storm[0]["dropped"] == 0
    assert "## Join storm" in table
    assert {row["frames_per_write"] for row in rows if row["workload"] == "floor"} == {1, 2, 4, 16}
    assert "## The physical floor" in table
    if shutil.which("redis-server"):  # the replicas on Redis, side by side with the single process
        replicas = [row for row in rows if row["workload"] == "replicas"]
        assert sorted(row["replicas"] for row in replicas) == [0, 1, 2], replicas
        for row in replicas:
            assert row["windows_lost"] == 0 and row["integrity"]["ok"], row
            assert not row.get("dead"), row
            assert row["cpu_us_per_delivery"] > 0 and row["cpu_us_per_message"] > 0, row
            if row["replicas"]:
                assert row["redis_cpu_us_per_message"] > 0 and row["archiver_cpu_s"] > 0, row
        assert "## Replicas on Redis" in table


@pytest.mark.timeout(12 * UNIT)
def test_floor_prints_the_cost_of_one_small_write() -> None:
    """``python -m bench --floor`` measures and prints the CPU of one small loopback write, per frames per write."""
    done = run_bench("--floor", timeout=10 * UNIT)
    assert "## The physical floor" in done.stdout
    lines = [line for line in done.stdout.splitlines() if line.startswith(("| 1 |", "| 16 |"))]
    assert len(lines) == 2, done.stdout
    for line in lines:
        assert float(line.split("|")[3].split()[0]) > 0  # CPU us per write (median), then (min-max)


@pytest.mark.timeout(30 * UNIT)
def test_smoke_run_with_a_baseline_commit_shows_both_trackers(tmp_path: Path) -> None:
    """``--baseline HEAD`` runs a second tracker from HEAD's source tree, extracted to a temporary
    directory, beside the work tree's: both rows and the ratio section appear, the baseline
    imported its own copy of chat_tracker, and the copy is gone afterwards."""
    short = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    done = run_bench(
        "--smoke",
        "--servers",
        "tracker,baseline",
        "--baseline",
        "HEAD",
        "--workloads",
        "fanout,log",
        "--results",
        str(tmp_path),
        timeout=28 * UNIT,
    )
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
