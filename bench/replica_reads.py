"""Which rooms a replica reads (issue 27): Redis bytes read per replica against the rooms it serves.

Two replicas on one Redis with its archiver (``bench.replicas.ReplicaSet``). ``Reads.rooms`` rooms of
``Reads.size`` members: the members of the first half of them are all served by replica 0, those of
the second half by replica 1; ``Reads.mixed`` more rooms have members on both. Every member is also
in the default room, as always. Each room then hears ``Reads.messages`` messages of ``Reads.payload``
bytes, and every member receives every message of its room (counted: nothing lost).

Afterwards each replica's ``/metrics`` says how many streams besides the default room's it reads
(``chat_redis_streams``) and how many bytes of their events it has read
(``chat_redis_read_bytes_total``); Redis says how many bytes of events each room's stream holds.
A replica that reads only the rooms its members are in reads as many bytes as its rooms' streams
hold (its own and the mixed ones) and none of the other replica's rooms. The default room's stream,
which every replica reads (every member is in it), is not in these counts.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

import redis
from chat_protocol import SUBPROTOCOL
from chat_tracker.journal.redis_keys import Keys

from .replicas import ReplicaSet
from .servers import PASSWORD
from .workloads import Plan, Row

ROOM_PREFIX = "#read"
DELIVERY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Reads:
    """The layout: rooms per replica half, their size, the mixed rooms, the messages each room hears."""

    rooms: int = 40
    size: int = 4
    mixed: int = 4
    messages: int = 50
    payload: int = 200


SMOKE = Reads(rooms=4, size=2, mixed=2, messages=5)


def layout(reads: Reads) -> dict[str, list[int]]:
    """Room -> the replica serving each of its members (0 or 1)."""
    rooms = {f"{ROOM_PREFIX}{i}": [0 if i < reads.rooms // 2 else 1] * reads.size for i in range(reads.rooms)}
    for i in range(reads.mixed):
        rooms[f"{ROOM_PREFIX}m{i}"] = [k % 2 for k in range(reads.size)]
    return rooms


def measure(plan: Plan, log: Any, reads: Reads) -> list[Row]:
    data, logs = plan.results / "data" / "replica-reads", plan.results / "logs"
    replica_set = ReplicaSet(2, "reads", data, logs, core=None)
    try:
        replica_set.wait_ready()
        rows = asyncio.run(_chat(replica_set, reads))
    finally:
        replica_set.terminate()
        replica_set.stop()
    for row in rows:
        log(f"  replica {row['replica']}: {describe(row)}")
    return rows


async def _connect(port: int, name: str) -> ClientConnection:
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws",
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        additional_headers={"Authorization": f"Bearer {PASSWORD}"},
        ping_interval=None,
        max_size=None,
        compression=None,
        close_timeout=1,
    )
    await ws.recv()  # hello
    await ws.send(json.dumps({"type": "join", "name": name}))
    while json.loads(await ws.recv())["type"] != "welcome":
        pass
    return ws


async def _enter(ws: ClientConnection, room: str) -> None:
    await ws.send(json.dumps({"type": "join", "room": room}))
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "entered":
            return
        if frame["type"] == "error":
            raise RuntimeError(f"entering {room}: {frame}")


async def _chat(replica_set: ReplicaSet, reads: Reads) -> list[Row]:
    """Everyone joins and enters; each room's first member says its messages; every member hears them all;
    then (all still connected, so no leave is on its way) the counts."""
    members: dict[str, list[ClientConnection]] = {}
    for room, serving in layout(reads).items():
        label = room.removeprefix("#")
        members[room] = [await _connect(replica_set.ports[r], f"{label}x{k}") for k, r in enumerate(serving)]
        for ws in members[room]:
            await _enter(ws, room)
    payload = "x" * reads.payload
    loop = asyncio.get_running_loop()
    heard = [loop.create_task(_hear(ws, room, reads.messages)) for room, all_ in members.items() for ws in all_]
    for room, (speaker, *_) in members.items():
        for n in range(reads.messages):
            await speaker.send(json.dumps({"type": "message", "room": room, "text": f"{n} {payload}"}))
    rows = _rows(replica_set, reads, sum(await asyncio.gather(*heard)))
    await asyncio.gather(*(ws.close() for all_ in members.values() for ws in all_))
    return rows


async def _hear(ws: ClientConnection, room: str, expected: int) -> int:
    """The messages of ``room`` this member receives, up to ``expected`` (its own come back as echoes)."""
    got = 0
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while got < expected:
        frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        got += frame["type"] == "message" and frame.get("room") == room
    return got


def _stream_bytes(replica_set: ReplicaSet, reads: Reads) -> dict[str, int]:
    """Room -> the bytes of the events its stream holds (the ``e`` fields, as a replica counts what it reads)."""
    client = redis.Redis.from_url(replica_set.url)
    try:
        found: dict[str, int] = {}
        for room in layout(reads):
            entries: Any = client.xrange(Keys().of_room(room).events)
            found[room] = sum(len(fields.get(b"e", b"")) for _id, fields in entries)
        return found
    finally:
        client.close()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise RuntimeError(f"/metrics has no {name}")


def _rows(replica_set: ReplicaSet, reads: Reads, delivered: int) -> list[Row]:
    rooms = layout(reads)
    sizes = _stream_bytes(replica_set, reads)
    total = sum(sizes.values())
    rows = []
    for replica, port in enumerate(replica_set.ports):
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        served = [room for room, serving in rooms.items() if replica in serving]
        rows.append(
            {
                "workload": "replica-reads",
                "server": "replicas",
                "replica": replica,
                "rooms_in_all": len(rooms),
                "rooms_served": len(served),
                "streams_read": int(_metric(metrics, "chat_redis_streams")),
                "bytes_read": int(_metric(metrics, "chat_redis_read_bytes_total")),
                "bytes_of_rooms_served": sum(sizes[room] for room in served),
                "bytes_of_all_rooms": total,
                "delivered": delivered,
                "expected": reads.messages * sum(len(serving) for serving in rooms.values()),
            }
        )
    return rows


def describe(row: Row) -> str:
    return (
        f"serves {row['rooms_served']} of {row['rooms_in_all']} rooms, reads {row['streams_read']} streams, "
        f"{row['bytes_read']:,} bytes read; its rooms' streams hold {row['bytes_of_rooms_served']:,}, "
        f"all rooms' {row['bytes_of_all_rooms']:,}; {row['delivered']:,} of {row['expected']:,} delivered"
    )


def lines(rows: list[Row]) -> list[str]:
    found = [row for row in rows if row.get("workload") == "replica-reads"]
    if not found:
        return []
    out = [
        "## Which rooms a replica reads",
        "",
        "Two replicas; each room's members on one replica, or (mixed) on both. Bytes: the events' bodies.",
        "",
        "| replica | rooms served | streams read | bytes read | bytes of its rooms | bytes of all rooms | delivered |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in found:
        out.append(
            f"| {r['replica']} | {r['rooms_served']} of {r['rooms_in_all']} | {r['streams_read']} "
            f"| {r['bytes_read']:,} | {r['bytes_of_rooms_served']:,} | {r['bytes_of_all_rooms']:,} "
            f"| {r['delivered']:,} of {r['expected']:,} |"
        )
    return [*out, ""]
