"""The capacity workload (``python -m bench --workloads capacity``, issue 27) runs end to end in its
smoke form against the tracker, ngIRCd and Node.js ``ws``; no speed is asserted beyond what a few
members must manage. ngIRCd and Node are native references: off CI a machine without them skips,
in CI (where ``.ci/run`` installs them) it fails."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench.broadcasts import TAIL, Receipts, message
from bench.capacity import SMOKE, Ladder, _quantile
from bench.native import missing, node_modules
from support.benchrun import run_bench
from support.environment import require
from support.timing import UNIT

SERVERS = ("tracker", "ngircd", "nodews")


@pytest.mark.timeout(12 * UNIT)
def test_every_server_climbs_the_smoke_ladder_and_reports_its_capacity(tmp_path: Path) -> None:
    """Each server holds every step of the tiny ladder: every broadcast reached all the other members
    well within the limit, so its capacity is the ladder's top; the steps report the times, the server's
    CPU and the generators' CPU, and results.md has the section."""
    for kind in ("ngircd", "nodews"):
        tools = missing(kind)
        require(not tools, f"{kind} needs {', '.join(tools)} (.ci/run installs it)")
    try:
        node_modules()  # ws from the npm registry on first use, then from the cache
    except RuntimeError as exc:
        require(False, f"nodews needs ws, which npm could not install: {exc} (.ci/run installs it)")
    run_bench(
        "--smoke",
        "--workloads",
        "capacity",
        "--servers",
        ",".join(SERVERS),
        "--results",
        str(tmp_path),
        timeout=10 * UNIT,
    )
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    summaries = {row["server"]: row for row in rows if row["workload"] == "capacity-max"}
    assert sorted(summaries) == sorted(SERVERS)
    for kind, summary in summaries.items():
        assert summary["capacity"] == max(SMOKE.steps) and summary["stop"] == "ladder end", summary
        steps = [row for row in rows if row["workload"] == "capacity" and row["server"] == kind]
        assert [row["members"] for row in steps] == sorted(SMOKE.steps)
        for row in steps:
            assert row["connections"] == row["members"] + SMOKE.broadcasters, row
            assert row["broadcasts"] == row["reached_everyone"] == row["within_limit"] == SMOKE.broadcasts, row
            # every broadcast went to every member but its sender
            assert row["deliveries"] >= row["broadcasts"] * (row["connections"] - 1), row
            assert row["passed"] and row["errors"] == 0, row
            assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["max_ms"] < SMOKE.limit_ms, row
            assert row["server_cpu_s"] > 0 and row["generator_cpu_share"] > 0, row
    table = (tmp_path / "results.md").read_text()
    assert "## Capacity (websocket-shootout method)" in table
    for kind in SERVERS:
        assert f"| {kind} | {max(SMOKE.steps)} | ladder end |" in table


def test_a_broadcast_is_done_once_every_process_reported_its_members() -> None:
    """The owner of a broadcast waits for its own members and for every other process that has members
    to reach; the time is that of the latest receipt anywhere. A broadcast's text has its size and ends
    with its id and stamp, which the receivers read from the end."""
    text = message(7, 123, Ladder().size)
    assert len(text) == Ladder().size and text[-TAIL:] == b"%010d%019d" % (7, 123)

    async def scenario() -> tuple[bool, int]:
        receipts = Receipts()
        receipts.configure(me=0, counts=[3, 2], echoes_own=False, peers=[1, 2])
        pending = receipts.start(receipts.take())
        ident = receipts.me * 10**8 + receipts.sequence
        tail = b"%010d%019d" % (ident, pending.sent_ns)
        receipts.receipt(tail, pending.sent_ns + 5)
        receipts.receipt(tail, pending.sent_ns + 9)  # both members here but the sender: this process is done
        early = pending.done.done()
        receipts.report(ident, 1, pending.sent_ns + 7)  # the other process's last member, earlier
        return early, await pending.done - pending.sent_ns

    early, took = asyncio.run(scenario())
    assert not early
    assert took == 9


def test_a_broadcast_that_never_reached_everyone_counts_as_the_slowest() -> None:
    """Quantiles rank a broadcast that timed out above every one that arrived."""
    ms = 1_000_000
    times: list[int | None] = [1 * ms, 2 * ms, None, 3 * ms]
    assert _quantile(times, 0.5) == 2.0
    assert _quantile(times, 0.95) is None
    assert _quantile([5 * ms] * 19 + [None], 0.95) == 5.0
