"""Which rooms a replica reads (``python -m bench --workloads replica-reads``, issue 27), in its smoke form: each
of two replicas reads the streams of the rooms its members are in, and no other room's bytes. redis-server is
needed: off CI a machine without it skips, in CI (where ``.ci/run`` installs it) it fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.replica_reads import SMOKE, layout
from support.benchrun import run_bench
from support.environment import require
from support.timing import UNIT


@pytest.mark.timeout(12 * UNIT)
def test_each_replica_reads_the_bytes_of_its_rooms_and_none_of_the_others(tmp_path: Path) -> None:
    require(shutil.which("redis-server") is not None, "redis-server is needed (.ci/run installs it)")
    run_bench("--smoke", "--workloads", "replica-reads", "--results", str(tmp_path), timeout=10 * UNIT)
    rows = [r for r in json.loads((tmp_path / "results.json").read_text())["rows"] if r["workload"] == "replica-reads"]
    assert [row["replica"] for row in rows] == [0, 1]
    rooms = layout(SMOKE)
    for row in rows:
        served = sum(1 for serving in rooms.values() if row["replica"] in serving)
        assert row["delivered"] == row["expected"] > 0, row
        assert row["rooms_served"] == served and row["streams_read"] == served, row
        # What it read is what its rooms' streams hold since it opened each (the first events of a room opened
        # by the other replica came before): never more, and nothing of the rooms it does not serve.
        assert 0 < row["bytes_read"] <= row["bytes_of_rooms_served"] < row["bytes_of_all_rooms"], row
    assert "## Which rooms a replica reads" in (tmp_path / "results.md").read_text()
