"""The many-rooms workload (issue 27): a big quiet default room and many small busy ones.

N members (``Shape.members``) all join the common room: the tracker's default room, ngIRCd's
``#bench``. Then R rooms (``Shape.rooms``) of K members each (``Shape.size``) are filled: slot
``s`` of the R x K slots is member ``s % N`` in room ``#r<s // K>``, so with R x K <= N (the
issue's 10,000 members, 2,000 rooms of 5) each member is in one small room at most, and with
more slots than members some are in several. A member enters its rooms in order and speaks in
the last: the tracker's plain-text dialect writes to the room of the last ``/join``, the IRC
client sends its PRIVMSG to the channel it JOINed last.

Measured, per server, all servers running at once and their windows interleaved as in the
fan-out workload: a Poisson stream of ``Shape.rate`` messages/s in all, each sent by a member
drawn at random among those in a small room, to the room it speaks in; every message is due to
that room's K - 1 other members (neither server echoes a member's own line; fewer when one of
them did not join in time, see ``audiences``). From it:

- CPU per delivery: the server's CPU seconds over the window / the deliveries counted;
- memory per member: the server's RSS once everyone joined and entered, minus its RSS before
  the first join, over N;
- delivery latency p50/p99 (publisher's send to member's receipt), and lost deliveries
  (expected minus counted once the window drained).

Only servers with rooms take part: the tracker (and ``--baseline``'s), and ngIRCd.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from .generators import Generators
from .servers import TRACKERS
from .workloads import Bench, Plan, Row, _spread, _writes, extra_note, median_row, running_all

SERVERS_WITH_ROOMS = (*TRACKERS, "ngircd")
ROOM_PREFIX = "#r"
ENTERING_AT_ONCE = 50  # members entering their rooms at once, per generator


@dataclass(frozen=True)
class Shape:
    """The many-rooms layout and its traffic (``python -m bench --rooms-members ... --rooms-rate ...``)."""

    members: int = 10_000
    rooms: int = 2_000
    size: int = 5
    rate: float = 2_000.0  # messages/s over all the small rooms, Poisson
    seconds: float = 2.0  # each measured window
    repeats: int = 3  # windows per server; the median CPU per delivery is kept
    join_timeout: float = 900.0  # cap on joining the common room, and again on entering the small ones
    # After a window, how long its deliveries may still come in: a server that fell behind (ngIRCd at
    # thousands of members) is still working through them; what has not come by then counts as lost.
    drain: float = 15.0


SMOKE = Shape(members=20, rooms=4, size=5, rate=40.0, seconds=1.0, repeats=1, join_timeout=60.0, drain=5.0)


def layout(shape: Shape) -> dict[int, list[str]]:
    """Member index -> the small rooms it enters, in order (slot ``s``: member ``s % N``, room ``s // K``)."""
    if shape.size > shape.members:
        raise ValueError(f"rooms of {shape.size} need at least as many members, not {shape.members}")
    rooms: dict[int, list[str]] = {}
    for slot in range(shape.rooms * shape.size):
        rooms.setdefault(slot % shape.members, []).append(f"{ROOM_PREFIX}{slot // shape.size}")
    return rooms


def measure(plan: Plan, gens: Generators, log: Any, shape: Shape) -> list[Row]:
    """Every server with rooms, side by side: joined, entered, then ``repeats`` windows each, interleaved."""
    kinds = [kind for kind in plan.servers if kind in SERVERS_WITH_ROOMS]
    for kind in plan.servers:
        if kind not in SERVERS_WITH_ROOMS:
            log(f"  {kind} rooms: skipped (no rooms)")
    if not kinds:
        return []
    rows: list[Row] = []
    queue = max(1024, 4 * shape.members)  # the common room's join storm must not overflow an outbox
    specs = [(kind, "rooms", {"queue_size": queue}) for kind in kinds]
    with ExitStack() as stack:
        servers = stack.enter_context(running_all(plan, specs))
        benches = [Bench(plan, gens, server) for server in servers]
        for bench in benches:
            bench.neighbours = [other.server for other in benches if other is not bench]
            stack.callback(bench.leave_all)
            bench.joined = fill(bench, shape)
            log(f"  {bench.server.kind} rooms: {_describe_fill(bench.joined)}")
        windows: dict[int, list[Row]] = {index: [] for index in range(len(benches))}
        for bench in benches:  # the first traffic after joining costs more (buffers, TCP windows): not counted
            window(bench, shape, min(shape.seconds, plan.warmup_seconds), "warm-up")
        order = list(enumerate(benches))
        for repeat in range(shape.repeats):
            for index, bench in order if repeat % 2 == 0 else order[::-1]:
                windows[index].append(window(bench, shape, shape.seconds, "rooms"))
        for index, bench in enumerate(benches):
            row = {**median_row(windows[index]), "workload": "rooms", **bench.joined}
            rows.append(row)
            log(f"  {bench.server.kind} rooms: {describe(row)}")
    return rows


def fill(bench: Bench, shape: Shape) -> Row:
    """Join N members to the common room, then each into its small rooms; RSS before and after."""
    bench.settle(timeout=5)
    rss0, cpu0 = bench.server.rss_bytes(), bench.server.cpu_seconds()
    joined = bench.join(shape.members, shape.join_timeout)
    cpu1 = bench.server.cpu_seconds()
    rooms = layout(shape)
    commands = [
        {
            "cmd": "enter",
            "rooms": {name: rooms[index] for name in mine if (index := int(name[len(bench.prefix) :])) in rooms},
            "concurrency": ENTERING_AT_ONCE,
            "timeout": shape.join_timeout,
        }
        for mine in bench.names
    ]
    answers = bench.gens.call(commands, timeout=shape.join_timeout + 30)
    errors: dict[str, int] = {}
    for answer in answers:
        for reason, count in answer["errors"].items():
            errors[reason] = errors.get(reason, 0) + count
    bench.settle(timeout=60)
    rss1, cpu2 = bench.server.rss_bytes(), bench.server.cpu_seconds()
    return {
        **joined,
        "room_count": shape.rooms,
        "room_size": shape.size,
        "room_slots": shape.rooms * shape.size,
        "entered": sum(a["entered"] for a in answers),
        "enter_seconds": max(a["seconds"] for a in answers),
        "enter_errors": errors,
        "join_cpu_s": cpu1 - cpu0,  # the server's CPU while the members joined the common room
        "enter_cpu_s": cpu2 - cpu1,  # ... and while they entered their small rooms (and it settled)
        "rss_before_join": rss0,
        "rss_after_join": rss1,
        "rss_per_member": (rss1 - rss0) / joined["joined"] if joined["joined"] else None,
    }


def _describe_fill(row: Row) -> str:
    per = row["rss_per_member"]
    return (
        f"{row['joined']} joined in {row['connect_seconds']:.1f} s (server CPU {row['join_cpu_s']:.1f} s), "
        f"{row['entered']} of {row['room_slots']} room places entered in {row['enter_seconds']:.1f} s "
        f"(server CPU {row['enter_cpu_s']:.1f} s), RSS/member "
        + ("-" if per is None else f"{per / 1024:.1f} KiB")
        + (
            f", errors {row['connect_errors']} {row['enter_errors']}"
            if row["connect_errors"] or row["enter_errors"]
            else ""
        )
    )


def audiences(bench: Bench, shape: Shape) -> dict[str, int]:
    """Each joined member in a small room -> how many others hear what it says: the members of the room
    it speaks in (its last) who joined, less itself. K - 1 when everyone joined; fewer in a room one
    of whose members did not (a join cut off by ``join_timeout``), so that is not counted as lost."""
    rooms = layout(shape)
    present = [int(name[len(bench.prefix) :]) for mine in bench.names for name in mine]
    heard: Counter[str] = Counter(room for index in present for room in rooms.get(index, ()))
    return {bench.name(index): heard[rooms[index][-1]] - 1 for index in present if index in rooms}


def window(bench: Bench, shape: Shape, seconds: float, label: str) -> Row:
    """One Poisson window at ``shape.rate`` over the small rooms; the counts, CPU and latency of it."""
    bench.settle()
    server = bench.server
    audience = audiences(bench, shape)
    senders = [[name for name in mine if name in audience] for mine in bench.names]
    everyone = sum(len(mine) for mine in senders)
    bench.gens.call_all({"cmd": "window_start", "prefix": bench.prefix})
    cpu0, rss0, samples = server.cpu_seconds(), server.rss_bytes(), [server.rss_bytes()]
    writes0 = server.write_syscalls()
    wall0 = time.monotonic()
    start_ns = time.monotonic_ns() + 100_000_000
    bench.windows_run += 1
    commands = [
        {
            "cmd": "publish",
            "names": mine,
            "rate": shape.rate * len(mine) / everyone if everyone else 0.0,
            "seconds": seconds,
            "start_ns": start_ns,
            "size": 48,
            "arrivals": "poisson",
            "pick": "random",
            "seed": bench.plan.seed * 1_000_003 + bench.windows_run * 1009 + index,
        }
        for index, mine in enumerate(senders)
    ]
    sent = bench.gens.call(commands, timeout=seconds + 60, tick=lambda: samples.append(server.rss_bytes()))
    published = sum(sum(a["published"].values()) for a in sent)
    expected = sum(count * audience[name] for answer in sent for name, count in answer["published"].items())
    bench._drain(expected, shape.drain)
    ends = bench.gens.call_all({"cmd": "window_end"})
    wall = time.monotonic() - wall0
    cpu = server.cpu_seconds() - cpu0
    writes1 = server.write_syscalls()
    samples.append(server.rss_bytes())
    row = bench._row(label, shape.rate, seconds, published, expected, ends, cpu, wall, rss0, samples, sent)
    row.update(arrivals="poisson", headline=True, **_spread(sent))
    row.update(_writes(row["received"], writes0, writes1, cpu))
    return row


def describe(row: Row) -> str:
    cpu = row.get("cpu_us_per_delivery")
    per = row.get("rss_per_member")
    return (
        f"{row['members']} members, {row['room_count']} rooms of {row['room_size']}, {row['rate']:g} msg/s: "
        f"{row['received']} of {row['expected']} deliveries, lost {row['lost']}{extra_note(row)}, "
        f"p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms, "
        + (f"CPU {cpu:.2f} us/delivery" if cpu else "no deliveries")
        + (f", RSS/member {per / 1024:.1f} KiB" if per is not None else "")
        + f", server {row['server_cpu_share']:.0%} gen {row['generator_cpu_share']:.0%}"
        + (" [generator-limited]" if row.get("generator_limited") else "")
    )


def lines(rows: list[Row]) -> list[str]:
    """The results.md section: every server's figures side by side."""
    found = [row for row in rows if row.get("workload") == "rooms"]
    if not found:
        return []
    first = found[0]
    out = [
        "## Many rooms",
        "",
        (
            f"{first['members']:,} members in the common room (the tracker's default room, ngIRCd's #bench), "
            f"{first['room_count']:,} rooms of {first['room_size']}, {first['rate']:g} msg/s Poisson over the "
            f"small rooms, median of {first['repeats']} windows of {first['seconds']:g} s. `RSS/member`: RSS once "
            "all joined and entered, minus before the first join, over N."
        ),
        "",
        (
            "| server | joined | entered | CPU us/delivery | per write | p50 ms | p99 ms | deliveries | lost "
            "| RSS/member KiB | gen CPU |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in found:
        per = r.get("rss_per_member")
        cpu = r.get("cpu_us_per_delivery")
        write = r.get("deliveries_per_write")
        out.append(
            f"| {r['server_label']} | {r['joined']:,} | {r['entered']:,} of {r['room_slots']:,} "
            f"| {'-' if cpu is None else f'{cpu:.2f}'} | {'-' if write is None else f'{write:.2f}'} "
            f"| {r['p50_ms']} | {r['p99_ms']} | {r['received']:,} of {r['expected']:,} | {r['lost']:,} "
            f"| {'-' if per is None else f'{per / 1024:.1f}'} | {r['generator_cpu_share']:.0%} |"
        )
    return [*out, ""]
