"""The many-rooms workload (``python -m bench --workloads rooms``, issue 27) runs end to end in its
smoke form against the tracker and ngIRCd side by side; no speed is asserted. ngIRCd is a native
reference: off CI a machine without it skips, in CI (where ``.ci/run`` installs it) it fails."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench.native import missing
from bench.rooms import SMOKE, Shape, layout
from support.benchrun import run_bench
from support.environment import require
from support.timing import UNIT

SERVERS = ("tracker", "ngircd")


@pytest.mark.timeout(12 * UNIT)
def test_every_message_reaches_its_small_room_alone_on_both_servers(tmp_path: Path) -> None:
    """Both servers join every member to the common room and its small room, and deliver each
    message to exactly the K - 1 other members of the room it was sent to: the deliveries counted
    equal published x (K - 1), none lost, none to the common room; CPU, RSS per member and
    latencies are reported for each."""
    tools = missing("ngircd")
    require(not tools, f"ngircd needs {', '.join(tools)} (.ci/run installs it)")
    run_bench(
        "--smoke", "--workloads", "rooms", "--servers", ",".join(SERVERS), "--results", str(tmp_path), timeout=10 * UNIT
    )
    rows = [row for row in json.loads((tmp_path / "results.json").read_text())["rows"] if row["workload"] == "rooms"]
    assert sorted(row["server"] for row in rows) == sorted(SERVERS)
    slots = SMOKE.rooms * SMOKE.size
    for row in rows:
        assert row["joined"] == SMOKE.members and row["entered"] == slots, row
        assert row["published"] > 0, row
        assert row["received"] == row["expected"] == row["published"] * (SMOKE.size - 1), row
        assert row["lost"] == 0, row
        assert row["cpu_us_per_delivery"] > 0 and row["rss_per_member"] is not None, row
        assert row["p50_ms"] is not None and row["p99_ms"] is not None, row
    table = (tmp_path / "results.md").read_text()
    assert "## Many rooms" in table
    for server in SERVERS:
        assert f"| {server} |" in table


def test_layout_fills_every_room_with_distinct_members_and_wraps_round_the_members() -> None:
    """R x K places over N members: each room has K different members; with more places than
    members every member is in the same number of rooms, with fewer the first R x K are in one."""
    crowded = Shape(members=10, rooms=4, size=5)
    places = layout(crowded)
    rooms: Counter[str] = Counter(room for entered in places.values() for room in entered)
    assert sorted(rooms.values()) == [crowded.size] * crowded.rooms
    each = crowded.rooms * crowded.size // crowded.members
    assert all(len(set(entered)) == len(entered) == each for entered in places.values())
    sparse = Shape(members=30, rooms=4, size=5)
    places = layout(sparse)
    assert sorted(places) == list(range(sparse.rooms * sparse.size))
    assert all(len(entered) == 1 for entered in places.values())
