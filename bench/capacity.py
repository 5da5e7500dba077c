"""The capacity workload (issue 27), by the method of hashrocket/websocket-shootout's round 2.

How many members can a server hold in one room while its broadcasts still reach everyone fast?
For each server in turn (``python -m bench --workloads capacity --servers tracker,ngircd,nodews``):

- 4 broadcasters join (``Ladder.broadcasters``), then idle members, up to each N of the ladder
  (``--capacity-steps``, default 100, 250, 500, 1,000, 2,000, 4,000, 6,000, ..., 14,000; the
  members accumulate from step to step in one server process, as websocket-shootout's clients do);
- at each N, a step: the 4 broadcasters send 100 broadcasts in all (``--capacity-broadcasts``,
  25 each) of 200 bytes, closed-loop: each broadcaster sends one, waits until every other member
  (the N idle ones and the 3 other broadcasters) received it, then sends the next; so 4 are in
  flight at any time, as websocket-shootout's ``--concurrent 4``. A broadcast's time is from its
  send to its receipt by the last member (``bench.broadcasts`` measures it at the receivers;
  websocket-shootout took the server's answer to the sender for it, which ours do not send);
- the step passes when at least 95 % of its broadcasts reached everyone within 500 ms; a broadcast
  not everywhere after ``Ladder.give_up`` (5 s) counts as not reaching everyone, and the
  broadcaster goes on;
- the capacity is the largest N that passed. The ladder stops at the first failure, at its end,
  or at the time bound (``--capacity-seconds``, default 900 s per server, joining included: no step
  starts after it, and joining is cut off there); the summary row says which.

Every step reports the server's CPU share and the generator processes' (each share of a core, and
all of them as a share of their cores): the broadcasts are closed-loop, so a generator that fell
behind would lengthen the times it measures; ``generator_limited`` marks a step where one was
above 85 % of its core, or all of them together above 85 % of their cores.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from .generators import BUSY_SHARE, Generators
from .workloads import Bench, Plan, Row, running

MS = 1_000_000  # ns


@dataclass(frozen=True)
class Ladder:
    """The capacity workload's steps and pass rule (``python -m bench --capacity-steps ...``)."""

    steps: tuple[int, ...] = (100, 250, 500, 1_000, 2_000, 4_000, 6_000, 8_000, 10_000, 12_000, 14_000)
    broadcasters: int = 4  # websocket-shootout round 2: --concurrent 4
    broadcasts: int = 100  # per step, all broadcasters together (its --sample-size 100)
    size: int = 200  # bytes of each broadcast's text (its --payload-padding 200)
    limit_ms: float = 500.0  # a broadcast passes when it reached everyone within this ...
    share: float = 0.95  # ... and a step passes when this share of its broadcasts did (its 95th percentile)
    give_up: float = 5.0  # s after which a broadcast that has not reached everyone is counted as not reaching
    seconds: float = 900.0  # per server, joining included: no step starts after this


SMOKE = Ladder(steps=(8, 16), broadcasts=20, seconds=60.0, give_up=2.0)


def measure(plan: Plan, gens: Generators, log: Any, ladder: Ladder) -> list[Row]:
    """Every server in turn, one server process each: the steps, then the capacity row."""
    rows: list[Row] = []
    ports = [answer["port"] for answer in gens.call_all({"cmd": "capacity_arm"})]
    for kind in plan.servers:
        log(f" capacity: {kind}")
        rows += _server(plan, gens, kind, ladder, ports, log)
    return rows


def _server(plan: Plan, gens: Generators, kind: str, ladder: Ladder, ports: list[int], log: Any) -> list[Row]:
    steps: list[Row] = []
    stop = "ladder end"
    queue = max(1024, 4 * (max(ladder.steps) + ladder.broadcasters))  # the join storm must not overflow an outbox
    with running(plan, kind, "capacity", queue_size=queue) as server:
        bench = Bench(plan, gens, server)
        started = time.monotonic()
        joining = 0.0
        try:
            for n in sorted(ladder.steps):
                left = ladder.seconds - (time.monotonic() - started)
                want = n + ladder.broadcasters
                if left <= 0:
                    stop = "time bound"
                    break
                if want > bench.members:
                    joined = bench.join(want - bench.members, left, first=bench.members)
                    joining += joined["connect_seconds"]
                    if joined["failed"]:
                        log(f"  {kind} N={n}: {joined['failed']} did not join: {joined['connect_errors']}")
                if bench.members < want:
                    stop = "time bound" if time.monotonic() - started >= ladder.seconds else "join failed"
                    break
                row = _step(bench, ladder, n, ports)
                row["join_seconds_total"] = joining
                steps.append(row)
                log(f"  {kind} N={n}: {describe(row)}")
                if not row["passed"]:
                    stop = "failed"
                    break
        finally:
            server.stop()  # before the members go: thousands of leaves would each be announced
            bench.leave_all()
    best = max((row for row in steps if row["passed"]), key=lambda row: row["members"], default=None)
    summary: Row = {
        "workload": "capacity-max",
        "server": kind,
        "server_label": plan.label(kind),
        "capacity": best["members"] if best else 0,
        "stop": stop,
        "failed_at": steps[-1]["members"] if stop == "failed" else None,
        "largest_tried": steps[-1]["members"] if steps else None,
        "seconds": time.monotonic() - started,
        "join_seconds": joining,
        "best": best,
    }
    log(f"  {kind} capacity: N = {summary['capacity']} ({stop})")
    return [*steps, summary]


def _step(bench: Bench, ladder: Ladder, n: int, ports: list[int]) -> Row:
    """One step at N listeners: the broadcasts, their times, the server's and generators' CPU."""
    bench.settle(timeout=30)
    server, gens = bench.server, bench.gens
    counts = [len(mine) for mine in bench.names]
    broadcasters = [bench.name(i) for i in range(ladder.broadcasters)]
    each = math.ceil(ladder.broadcasts / len(broadcasters))
    gens.call_all({"cmd": "window_start", "prefix": bench.prefix})
    cpu0, wall0 = server.cpu_seconds(), time.monotonic()
    start_ns = time.monotonic_ns() + 200 * MS  # every process is counting before the first broadcast
    commands = [
        {
            "cmd": "capacity_run",
            "me": index,
            "counts": counts,
            "peers": ports,
            "echoes_own": server.echoes_own,
            "broadcasters": [name for name in broadcasters if name in mine],
            "each": each,
            "size": ladder.size,
            "give_up": ladder.give_up,
            "start_ns": start_ns,
        }
        for index, mine in enumerate(bench.names)
    ]
    answers = gens.call(commands, timeout=each * ladder.give_up + 60)
    cpu, wall = server.cpu_seconds() - cpu0, time.monotonic() - wall0
    ends = gens.call_all({"cmd": "window_end"})
    gens.call_all({"cmd": "capacity_end"})
    times = [t for answer in answers for t in answer["times_ns"]]
    return _row(bench, ladder, n, times, ends, cpu, wall, sum(a["errors"] for a in answers))


def _row(
    bench: Bench, ladder: Ladder, n: int, times: list[int | None], ends: list[Row], cpu: float, wall: float, errors: int
) -> Row:
    reached = sorted(t / MS for t in times if t is not None)
    within = sum(1 for t in reached if t <= ladder.limit_ms)
    shares = [a["cpu_seconds"] / a["wall_seconds"] for a in ends if a["wall_seconds"] > 0]
    share = within / len(times) if times else 0.0
    generators = sum(shares) / bench.gens.core_count  # the processes may share a core: their sum counts too
    return {
        "workload": "capacity",
        "server": bench.server.kind,
        "server_label": bench.plan.label(bench.server.kind),
        "members": n,  # the idle listeners; the broadcasters come on top
        "broadcasters": ladder.broadcasters,
        "connections": bench.members,
        "broadcasts": len(times),
        "reached_everyone": len(reached),
        "within_limit": within,
        "within_share": share,
        "passed": bool(times) and share >= ladder.share,
        "limit_ms": ladder.limit_ms,
        "p50_ms": _quantile(times, 0.50),
        "p95_ms": _quantile(times, 0.95),
        "max_ms": reached[-1] if len(reached) == len(times) and reached else None,
        "deliveries": sum(a["messages"] for a in ends),
        "errors": errors + sum(a["errors"] for a in ends),
        "seconds": wall,
        "server_cpu_s": cpu,
        "server_cpu_share": cpu / wall if wall else 0.0,
        "server_rss": bench.server.rss_bytes(),
        "generator_cpu_share": generators,
        "generator_max_share": max(shares, default=0.0),
        "generator_limited": generators > BUSY_SHARE or max(shares, default=0.0) > BUSY_SHARE,
    }


def _quantile(times: list[int | None], q: float) -> float | None:
    """The ``q`` quantile of the broadcasts' times in ms, a broadcast that never reached everyone
    counting as the slowest; None when that quantile is one of those."""
    if not times:
        return None
    ranked = sorted(times, key=lambda t: math.inf if t is None else t)
    value = ranked[min(len(ranked) - 1, math.ceil(q * len(ranked)) - 1)]
    return None if value is None else value / MS


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def describe(row: Row) -> str:
    return (
        f"{row['within_limit']} of {row['broadcasts']} broadcasts reached all {row['connections'] - 1} others "
        f"within {row['limit_ms']:g} ms ({row['reached_everyone']} at all), p50 {_ms(row['p50_ms'])} ms "
        f"p95 {_ms(row['p95_ms'])} ms max {_ms(row['max_ms'])} ms, server {row['server_cpu_share']:.0%} "
        f"gen {row['generator_cpu_share']:.0%} (max process {row['generator_max_share']:.0%})"
        + (" [generator-limited]" if row["generator_limited"] else "")
        + (f", {row['errors']} errors" if row["errors"] else "")
        + (" ok" if row["passed"] else " FAIL")
    )


def lines(rows: list[Row]) -> list[str]:
    """The results.md section: each server's capacity, then every step."""
    summaries = [row for row in rows if row.get("workload") == "capacity-max"]
    steps = [row for row in rows if row.get("workload") == "capacity"]
    if not summaries:
        return []
    out = [
        "## Capacity (websocket-shootout method)",
        "",
        (
            "Each server in turn, members accumulating: at each N, 4 broadcasters send 100 broadcasts of 200 "
            "bytes, closed-loop (each sends its next once its previous reached every other member), and a "
            "broadcast's time runs from its send to its receipt by the last member. A step passes when "
            "95 % of its broadcasts reached everyone within 500 ms; the capacity is the largest N that passed."
        ),
        "",
        "| server | capacity N | stopped | largest tried | s (joining) |",
        "|---|---:|---|---:|---:|",
    ]
    for r in summaries:
        tried = "-" if r["largest_tried"] is None else f"{r['largest_tried']:,}"
        out.append(
            f"| {r['server_label']} | {r['capacity']:,} | {r['stop']} | {tried} "
            f"| {r['seconds']:.0f} ({r['join_seconds']:.0f}) |"
        )
    out += [
        "",
        "| server | N | within 500 ms | p50 ms | p95 ms | max ms | server CPU | gen CPU (max process) | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in steps:
        out.append(
            f"| {r['server_label']} | {r['members']:,} | {r['within_limit']} of {r['broadcasts']} "
            f"| {_ms(r['p50_ms'])} | {_ms(r['p95_ms'])} | {_ms(r['max_ms'])} | {r['server_cpu_share']:.0%} "
            f"| {r['generator_cpu_share']:.0%} ({r['generator_max_share']:.0%}) "
            f"| {'pass' if r['passed'] else 'FAIL'}{' [gen-limited]' if r['generator_limited'] else ''} |"
        )
    return [*out, ""]
