"""Replicas on Redis under real faults (issue 15): real replica processes, a real archiver, a real redis-server.

Each test runs members (JSON dialect, over the plain ``websockets`` client) spread
over several ``chat-tracker --redis-url`` replicas, with ``chat-tracker archive``
writing chat.log, injects one fault, and then checks what the members saw against
chat.log: one order everywhere, every acknowledged message logged exactly once, no
seq used twice. Figures go to ``tests/reliability/results/figures.jsonl`` (see
docs/reliability.md, "Replicas on Redis").
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL
from chat_tracker.journal.redis_keys import Keys
from chat_tracker.records import LogEntry
from chat_tracker.storage.chatlog import parse_line
from support.archiver import StartArchiver
from support.campaign import record
from support.environment import require
from support.redis_server import POLL_SECONDS, RedisServer
from support.timing import UNIT
from support.tracker import CROWD_FROM_ONE_ADDRESS, PASSWORD, RunningTracker, start_server, tracker_env

pytestmark = pytest.mark.anyio

KEYS = Keys()
GRACE = "5"
REPLICA_FLAGS = ("--resume-grace", GRACE, "--rate", "200", "--burst", "200")
KIND = {"message": "msg", "joined": "join", "left": "leave"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- waiting ----------------------------------------------------------------------------------------------


async def until(condition: Callable[[], bool], what: str, timeout: float = 4 * UNIT) -> float:
    """Wait (polling) until ``condition()``; how long it took. AssertionError at the deadline."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic() - started


def healthz(url: str) -> dict[str, Any]:
    try:
        reply = httpx.get(f"{url}/healthz", timeout=UNIT / 5)
    except httpx.HTTPError:
        return {}
    body: dict[str, Any] = reply.json() if reply.status_code == 200 else {}
    return body


def stream_last_seq(server: RedisServer) -> int:
    with server.client() as client:
        value = client.hget(KEYS.room, "seq")
    return int(value) if value is not None else 0


async def archived_everything(server: RedisServer, archiver: RunningTracker, timeout: float = 4 * UNIT) -> int:
    """Wait until the archiver's /healthz ``archived_seq`` is the stream's last seq; that seq."""
    last = -1

    def caught_up() -> bool:
        nonlocal last
        last = stream_last_seq(server)
        return healthz(archiver.http_url).get("archived_seq") == last

    await until(caught_up, "the archiver to reach the stream's last seq", timeout)
    return last


def chat_log(data_dir: Path) -> list[LogEntry]:
    """Every chat.log entry, rotated segments first (oldest first), then chat.log."""
    segments = sorted(
        (p for p in data_dir.glob("chat.log.*") if p.name.split(".")[2].isdigit()),
        key=lambda p: int(p.name.split(".")[2]),
    )
    entries: list[LogEntry] = []
    for path in [*segments, data_dir / "chat.log"]:
        if path.exists():
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            assert not data or data.endswith(b"\n"), f"torn last line in {path}"
            entries += [parse_line(line) for line in data.decode("utf-8").splitlines()]
    return entries


# --- members ----------------------------------------------------------------------------------------------


async def connect_json(url: str) -> ClientConnection:
    return await connect(
        url,
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        additional_headers={"Authorization": f"Bearer {PASSWORD}"},
        open_timeout=2 * UNIT,
        close_timeout=UNIT / 5,
        ping_interval=None,
        max_size=None,
        compression=None,
    )


@dataclass
class Peer:
    """A JSON member that records every event, sends numbered messages with ids, and resumes anywhere."""

    name: str
    ws: ClientConnection | None = None
    url: str = ""
    token: str = ""
    epoch: str = ""
    join_seq: int = 0
    last_seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)
    sent: dict[str, str] = field(default_factory=dict)  # id -> text, in the order first sent
    acked: dict[str, int] = field(default_factory=dict)  # id -> the seq of its echo
    resends: int = 0
    resumes: int = 0
    close_codes: list[int | None] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=itertools.count)
    reader: asyncio.Task[None] | None = None

    def note(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in KIND:
            seq = message["seq"]
            assert seq > self.last_seq, f"{self.name}: seq {seq} after {self.last_seq} ({message})"
            self.last_seq = seq
            self.events.append(message)
            if kind == "message" and message["name"] == self.name and "id" in message:
                self.acked.setdefault(message["id"], seq)
        elif kind == "error":
            self.errors.append(message)
        else:
            self.other.append(message)

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                assert isinstance(frame, str)
                self.note(json.loads(frame))
        except ConnectionClosed:
            pass
        rcvd = ws.protocol.close_rcvd
        self.close_codes.append(rcvd.code if rcvd is not None else None)

    def _listen(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.reader = asyncio.get_running_loop().create_task(self._read(ws))

    @property
    def connected(self) -> bool:
        return self.reader is not None and not self.reader.done()

    async def _recv(self, ws: ClientConnection, timeout: float = 2 * UNIT) -> dict[str, Any]:
        frame = await asyncio.wait_for(ws.recv(), timeout)
        assert isinstance(frame, str)
        message: dict[str, Any] = json.loads(frame)
        return message

    async def join(self, url: str) -> dict[str, Any]:
        """Join as ``name`` on ``url``; the welcome (or the error that refused it)."""
        ws = await connect_json(url)
        hello = await self._recv(ws)
        assert hello["type"] == "hello" and hello["authenticated"], hello
        await ws.send(json.dumps({"type": "join", "name": self.name}))
        answer = await self._recv(ws)
        while answer["type"] not in ("welcome", "error"):
            answer = await self._recv(ws)
        if answer["type"] == "welcome":
            self.url, self.token, self.epoch = url, answer["token"], answer["epoch"]
            self.join_seq = self.last_seq = answer["seq"]
            self._listen(ws)
        else:
            await ws.close()
        return answer

    async def resume(self, url: str) -> dict[str, Any]:
        """Resume on ``url`` (token, epoch, after = the last seq seen); the answer. Replayed events are noted."""
        ws = await connect_json(url)
        hello = await self._recv(ws)
        assert hello["type"] == "hello" and hello["authenticated"], hello
        request = {"type": "resume", "token": self.token, "epoch": self.epoch, "after": self.last_seq}
        await ws.send(json.dumps(request))
        answer = await self._recv(ws)
        if answer["type"] != "resumed":
            await ws.close()
            return answer
        self.url, self.token, self.epoch = url, answer["token"], answer["epoch"]
        for _ in range(answer["replayed"]):
            self.note(await self._recv(ws))
        self.resumes += 1
        self._listen(ws)
        return answer

    async def say(self, text: str | None = None) -> str:
        """Send a new message with a new id (ConnectionClosed if the connection is gone); its id."""
        number = next(self.counter)
        msg_id = f"{self.name}-{number}"
        self.sent[msg_id] = text or f"{self.name} says {number}"
        await self._send(msg_id)
        return msg_id

    async def _send(self, msg_id: str) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps({"type": "message", "text": self.sent[msg_id], "id": msg_id}))

    async def resend_unacknowledged(self) -> None:
        """After a resume: send again, with the same id, every message whose echo never came."""
        for msg_id in [i for i in self.sent if i not in self.acked]:
            self.resends += 1
            await self._send(msg_id)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.wait_for(self.reader, UNIT)


def check_views(peers: list[Peer], entries: list[LogEntry], complete: bool = True) -> dict[str, int]:
    """Every event a peer saw is chat.log's event of that seq; no peer missed one between its join and its end."""
    by_seq = {entry.seq: entry for entry in entries}
    seqs = [entry.seq for entry in entries]
    assert seqs == sorted(set(seqs)), "a seq used twice in chat.log, or out of order"
    member_seqs = [e.seq for e in entries if e.kind in ("msg", "join", "leave")]
    seen = 0
    for peer in peers:
        for message in peer.events:
            entry = by_seq.get(message["seq"])
            assert entry is not None, f"{peer.name} saw seq {message['seq']}, not in chat.log"
            assert (entry.kind, entry.name) == (KIND[message["type"]], message["name"]), (entry, message)
            if message["type"] == "message":
                assert entry.text == message["text"], (entry, message)
        mine = [m["seq"] for m in peer.events]
        expected = [s for s in member_seqs if peer.join_seq < s <= peer.last_seq]
        assert mine == expected or not complete, f"{peer.name} missed {sorted(set(expected) - set(mine))[:20]}"
        seen += len(mine)
    return {"events_seen": seen}


def check_acknowledged(peers: list[Peer], entries: list[LogEntry]) -> dict[str, int]:
    """Every acknowledged message is in chat.log exactly once, at its echo's seq; no message is logged twice."""
    texts = [e.text for e in entries if e.kind == "msg"]
    twice = {t for t in texts if texts.count(t) > 1} if len(texts) != len(set(texts)) else set()
    assert not twice, f"logged twice: {sorted(twice)[:10]}"
    by_seq = {e.seq: e for e in entries}
    acked = 0
    for peer in peers:
        for msg_id, seq in peer.acked.items():
            entry = by_seq.get(seq)
            assert entry is not None and entry.text == peer.sent[msg_id], f"{msg_id} acknowledged at {seq}, lost"
            acked += 1
    return {"acknowledged": acked, "logged_messages": len(texts)}


# --- replicas ---------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """The replicas running now; members pick one to join or resume on."""

    start_tracker: Callable[..., RunningTracker]
    url: str
    live: list[RunningTracker] = field(default_factory=list)
    killed: int = 0

    def start(self, *flags: str) -> RunningTracker:
        replica = self.start_tracker("--redis-url", self.url, *REPLICA_FLAGS, *flags)
        self.live.append(replica)
        return replica

    def other(self, than: str) -> str:
        choices = [r.url for r in self.live if r.url != than and r.process.poll() is None]
        return random.choice(choices)

    def kill(self, replica: RunningTracker) -> None:
        self.live.remove(replica)
        replica.kill()
        self.killed += 1


def error_lines(output: list[str]) -> list[str]:
    return [line for line in output if " ERROR " in line or "Traceback" in line]


async def start_in_thread(cluster: Cluster) -> RunningTracker:
    return await asyncio.to_thread(cluster.start)


# --- 1. a replica SIGKILLed under load ---------------------------------------------------------------------

KILL_ROUNDS = 30 if os.environ.get("RELIABILITY_FULL", "") == "1" else 10


@pytest.mark.timeout(48 * UNIT)
async def test_replica_sigkilled_under_load_members_resume_elsewhere(
    redis_server: RedisServer, start_tracker: Any, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    """3 replicas, 9 members talking; each round one replica is SIGKILLed (and another started): its members resume
    on another, resend what was not echoed; one order everywhere, every acknowledged message once in chat.log."""
    archiver = start_archiver(redis_server.url, data_dir=tmp_path / "archive")
    cluster = Cluster(start_tracker, redis_server.url)
    for _ in range(3):
        await start_in_thread(cluster)
    peers = [Peer(f"m{index}") for index in range(9)]
    for index, peer in enumerate(peers):
        welcome = await peer.join(cluster.live[index % 3].url)
        assert welcome["type"] == "welcome", welcome
    stop = asyncio.Event()
    resume_times: list[float] = []

    async def life(peer: Peer) -> None:
        """Talk every 20 ms; when the connection dies, resume on another replica and resend."""
        while not stop.is_set():
            if not peer.connected:
                dropped = time.monotonic()
                for _attempt in range(10):
                    try:
                        answer = await peer.resume(cluster.other(peer.url))
                    except (OSError, ConnectionClosed, TimeoutError):
                        continue  # that replica was being killed: another
                    assert answer["type"] == "resumed", (peer.name, answer)
                    assert answer["recovered"] is True, answer
                    break
                else:
                    raise AssertionError(f"{peer.name} could not resume")
                resume_times.append(time.monotonic() - dropped)
                try:
                    await peer.resend_unacknowledged()
                except ConnectionClosed:
                    continue
            try:
                await peer.say()
            except ConnectionClosed:
                if peer.reader is not None:
                    await asyncio.wait_for(asyncio.shield(peer.reader), UNIT)
                continue
            await asyncio.sleep(0.02)  # pacing (well under the rate limit), not synchronisation

    lives = [asyncio.create_task(life(peer)) for peer in peers]
    try:
        for round_ in range(KILL_ROUNDS):
            wanted = sum(len(p.acked) for p in peers) + 30

            def traffic() -> bool:
                for task in lives:
                    if task.done():
                        task.result()  # a member failed: raise its error
                return sum(len(p.acked) for p in peers) >= wanted  # noqa: B023

            def state() -> list[tuple[object, ...]]:
                return [(p.name, p.url[-10:], len(p.sent), len(p.acked), p.connected, p.errors[-1:]) for p in peers]

            try:
                await until(traffic, f"traffic before kill {round_ + 1}")
            except AssertionError as error:
                raise AssertionError(f"{error}: {state()}") from None
            victim = cluster.live[round_ % len(cluster.live)]
            cluster.kill(victim)
            await start_in_thread(cluster)
        await until(lambda: sum(len(p.acked) for p in peers) >= sum(len(p.sent) for p in peers) - 9, "more traffic")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*lives, return_exceptions=True), 4 * UNIT)
    for task in lives:
        task.result()
    # Every message sent is echoed in the end (resends included), then all of chat.log is archived.
    await until(lambda: all(len(p.acked) == len(p.sent) for p in peers), "every message echoed")
    marker = peers[0]
    await marker.say("the end")
    for peer in peers:
        await until(lambda: any(e.get("text") == "the end" for e in peer.events), "the end")  # noqa: B023
    await archived_everything(redis_server, archiver)
    entries = chat_log(archiver.data_dir)
    views = check_views(peers, entries)
    acks = check_acknowledged(peers, entries)
    for peer in peers:
        assert peer.errors == [], (peer.name, peer.errors[:3])
    for replica in cluster.live:
        assert error_lines(replica.output) == [], error_lines(replica.output)
    record(
        "faults",
        fault="replica_sigkill",
        injected=cluster.killed,
        lost=0,
        torn_left=0,
        resumes=sum(p.resumes for p in peers),
        resends=sum(p.resends for p in peers),
        max_resume_s=round(max(resume_times), 3),
        **views,
        **acks,
    )
    print(f"replica SIGKILL: {cluster.killed} kills, {views} {acks}, resume max {max(resume_times):.3f} s")


async def test_a_replica_starting_while_members_chat_does_not_stop_the_others(
    redis_server: RedisServer, start_tracker: Any
) -> None:
    """A new replica's ``start`` event reaches replicas with members: they must go on delivering (the SIGKILL
    rounds start a replacement each round; this is the smallest form of that)."""
    cluster = Cluster(start_tracker, redis_server.url)
    first, second = cluster.start(), cluster.start()
    a, b = Peer("ann"), Peer("bob")
    assert (await a.join(first.url))["type"] == "welcome"
    assert (await b.join(second.url))["type"] == "welcome"
    await a.say("before")
    await until(lambda: any(e.get("text") == "before" for e in b.events), "bob to hear 'before'")
    before = stream_last_seq(redis_server)
    await start_in_thread(cluster)
    await until(lambda: stream_last_seq(redis_server) > before, "the new replica's start event in the stream")
    await a.say("after")
    await until(lambda: any(e.get("text") == "after" for e in b.events), "bob to hear 'after'", UNIT)
    await until(lambda: "ann-1" in a.acked, "ann's echo of 'after'", UNIT)


async def talkers(peers: list[Peer], stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """Each peer says a numbered message every 20 ms until ``stop`` (no resumes: its replica stays up)."""

    async def talk(peer: Peer) -> None:
        while not stop.is_set() and peer.connected:
            await peer.say()
            await asyncio.sleep(0.02)  # pacing (well under the rate limit), not synchronisation

    return [asyncio.create_task(talk(peer)) for peer in peers]


async def spread(cluster: Cluster, count: int) -> list[Peer]:
    peers = [Peer(f"p{index}") for index in range(count)]
    for index, peer in enumerate(peers):
        welcome = await peer.join(cluster.live[index % len(cluster.live)].url)
        assert welcome["type"] == "welcome", welcome
    return peers


async def settle(peers: list[Peer]) -> None:
    """Wait until every message sent has its echo (or was refused), and a last one reached everyone."""

    def done() -> bool:
        refused = {e.get("id") for p in peers for e in p.errors}
        return all(i in p.acked or i in refused for p in peers for i in p.sent)

    await until(done, "every message echoed or refused")
    marker = f"last word {random.random()}"
    for _attempt in range(20):  # a replica just back from a Redis outage may still refuse it: say it again
        marker_id = await peers[0].say(marker)
        await until(
            lambda: marker_id in peers[0].acked or any(e.get("id") == marker_id for e in peers[0].errors),  # noqa: B023
            "the last word's echo or refusal",
        )
        if marker_id in peers[0].acked:
            break
        peers[0].sent.pop(marker_id)
        peers[0].errors = [e for e in peers[0].errors if e.get("id") != marker_id]
        await asyncio.sleep(0.2)  # a pause before trying again, not synchronisation
    for peer in peers:
        await until(lambda: any(e.get("text") == marker for e in peer.events), "the last word")  # noqa: B023


# --- 2. the archiver SIGKILLed and restarted --------------------------------------------------------------


async def test_archiver_sigkilled_and_restarted_while_replicas_chat(
    redis_server: RedisServer, start_tracker: Any, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    """Three SIGKILLs of the archiver while 6 members chat on 2 replicas: chat.log is seq +1 with no gap or repeat."""
    data_dir = tmp_path / "archive"
    archiver = start_archiver(redis_server.url, data_dir=data_dir)
    cluster = Cluster(start_tracker, redis_server.url)
    cluster.start()
    cluster.start()
    peers = await spread(cluster, 6)
    stop = asyncio.Event()
    tasks = await talkers(peers, stop)
    kills = 0
    try:
        for _round in range(3):
            reached = healthz(archiver.http_url).get("archived_seq", 0)
            await until(lambda: healthz(archiver.http_url).get("archived_seq", 0) > reached + 50, "archiver progress")  # noqa: B023
            archiver.kill()
            kills += 1
            wanted = sum(len(p.acked) for p in peers) + 30
            await until(lambda: sum(len(p.acked) for p in peers) >= wanted, "chat while the archiver is down")  # noqa: B023
            archiver = await asyncio.to_thread(start_archiver, redis_server.url, data_dir=data_dir)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    await settle(peers)
    last = await archived_everything(redis_server, archiver)
    entries = chat_log(data_dir)
    assert [e.seq for e in entries] == list(range(1, last + 1)), "a gap or a repeat in chat.log"
    views = check_views(peers, entries)
    acks = check_acknowledged(peers, entries)
    assert all(p.errors == [] for p in peers)
    record("faults", fault="archiver_sigkill", injected=kills, lost=0, torn_left=0, lines=last, **views, **acks)


# --- 3. Redis stopped for 10 s ----------------------------------------------------------------------------

OUTAGE_SECONDS = 10.0


async def test_redis_stopped_10s_members_stay_refused_then_recover(
    redis_server: RedisServer, start_tracker: Any, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    """Redis stopped (SIGTERM) for 10 s: members stay connected, a message gets ``log_unavailable``; Redis back:
    the same replicas chat again across each other by themselves, /healthz is ok, nothing acknowledged lost."""
    archiver = start_archiver(redis_server.url, data_dir=tmp_path / "archive")
    cluster = Cluster(start_tracker, redis_server.url)
    first, second = cluster.start(), cluster.start()
    a, b = Peer("ann"), Peer("bob")
    assert (await a.join(first.url))["type"] == "welcome"
    assert (await b.join(second.url))["type"] == "welcome"
    for _ in range(5):
        await a.say()
        await b.say()
    await settle([a, b])
    acknowledged_before = len(a.acked) + len(b.acked)
    redis_server.stop()
    stopped = time.monotonic()
    noticed = await until(
        lambda: all(healthz(r.http_url).get("log_writable") is False for r in (first, second)),
        "both replicas' /healthz to say log_writable false",
        UNIT,
    )
    refused_id = await a.say("during the outage")
    await until(lambda: any(e.get("id") == refused_id for e in a.errors), "log_unavailable for the message", UNIT)
    (error,) = [e for e in a.errors if e.get("id") == refused_id]
    assert error["code"] == "log_unavailable", error
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))  # the fault itself lasts 10 s
    assert a.connected and b.connected, "a member was dropped during the outage"
    redis_server.start()
    back = await until(
        lambda: all(healthz(r.http_url).get("log_writable") is True for r in (first, second)),
        "both replicas writable again",
    )
    await until(lambda: all(healthz(r.http_url).get("status") == "ok" for r in (first, second)), "/healthz ok")
    await a.say("after the outage")
    await b.say("bob after the outage")
    await until(lambda: any(e.get("text") == "after the outage" for e in b.events), "bob to hear ann")
    await until(lambda: any(e.get("text") == "bob after the outage" for e in a.events), "ann to hear bob")
    assert a.connected and b.connected
    assert first.process.poll() is None and second.process.poll() is None
    a.errors = [e for e in a.errors if e.get("id") != refused_id]
    a.sent.pop(refused_id)
    await settle([a, b])
    await archived_everything(redis_server, archiver)
    entries = chat_log(archiver.data_dir)
    check_views([a, b], entries)
    acks = check_acknowledged([a, b], entries)
    assert not any(e.text == "during the outage" for e in entries)
    record(
        "faults",
        fault="redis_stopped_10s",
        injected=1,
        lost=0,
        torn_left=0,
        noticed_s=round(noticed, 2),
        writable_after_start_s=round(back, 2),
        acknowledged_before=acknowledged_before,
        **acks,
    )


# --- 4. Redis SIGKILLed and restarted from its AOF ---------------------------------------------------------


async def test_redis_sigkilled_restarts_from_aof_nothing_acknowledged_lost(
    redis_server: RedisServer, start_tracker: Any, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    """Redis SIGKILLed mid-traffic and started again from its AOF: every acknowledged message is in chat.log."""
    archiver = start_archiver(redis_server.url, data_dir=tmp_path / "archive")
    cluster = Cluster(start_tracker, redis_server.url)
    cluster.start()
    cluster.start()
    peers = await spread(cluster, 4)
    stop = asyncio.Event()
    tasks = await talkers(peers, stop)
    kills = 0
    try:
        for _round in range(3):
            wanted = sum(len(p.acked) for p in peers) + 40
            await until(lambda: sum(len(p.acked) for p in peers) >= wanted, "traffic before the kill")  # noqa: B023
            redis_server.kill()
            kills += 1
            redis_server.start()
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    await settle(peers)
    await archived_everything(redis_server, archiver)
    entries = chat_log(archiver.data_dir)
    assert [e.seq for e in entries] == list(range(1, entries[-1].seq + 1))
    views = check_views(peers, entries)
    acks = check_acknowledged(peers, entries)
    assert {e["code"] for p in peers for e in p.errors} <= {"log_unavailable"}
    refused = sum(len(p.errors) for p in peers)
    record("faults", fault="redis_sigkill_aof", injected=kills, lost=0, torn_left=0, refused=refused, **views, **acks)


# --- 5. Redis restarted empty ------------------------------------------------------------------------------


async def test_redis_restarted_empty_is_a_new_epoch(
    redis_server: RedisServer, start_tracker: Any, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    """Redis wiped: every replica logs "Redis lost the room", closes its members with 1012; a resume with the old
    token is answered ``resumed`` with ``recovered: false`` in the new epoch; newcomers join; no seq is reused."""
    archiver = start_archiver(redis_server.url, data_dir=tmp_path / "archive")
    cluster = Cluster(start_tracker, redis_server.url)
    first, second = cluster.start(), cluster.start()
    a, b = Peer("ann"), Peer("bob")
    assert (await a.join(first.url))["type"] == "welcome"
    assert (await b.join(second.url))["type"] == "welcome"
    for _ in range(10):
        await a.say()
        await b.say()
    await settle([a, b])
    old_last = await archived_everything(redis_server, archiver)
    old_epoch = a.epoch
    redis_server.wipe()
    redis_server.start()
    for replica in (first, second):
        await asyncio.to_thread(replica.wait_for_output, r"ERROR .*Redis lost the room", 2 * UNIT)
    await until(lambda: not a.connected and not b.connected, "both members closed")
    assert a.close_codes[-1] == 1012 and b.close_codes[-1] == 1012, (a.close_codes, b.close_codes)
    resumed = []
    for peer, replica in ((a, first), (b, second)):
        answer = await peer.resume(replica.url)
        # The product answers a token of the lost epoch with a fresh join told as ``resumed``, recovered: false.
        assert answer["type"] == "resumed" and answer["recovered"] is False, answer
        assert answer["epoch"] != old_epoch and answer["seq"] > old_last, (answer, old_last)
        resumed.append(answer)
    newcomer = Peer("cid")
    welcome = await newcomer.join(second.url)
    assert welcome["type"] == "welcome" and welcome["epoch"] == a.epoch != old_epoch, welcome
    assert welcome["seq"] > old_last, (welcome["seq"], old_last)
    for _ in range(5):
        await a.say()
        await b.say()
        await newcomer.say()
    await settle([a, b, newcomer])
    await archived_everything(redis_server, archiver)
    entries = chat_log(archiver.data_dir)
    seqs = [e.seq for e in entries]
    assert seqs == sorted(set(seqs)), "a seq reused in chat.log"
    assert all(e.seq > old_last for e in entries if e.text.startswith("cid"))
    check_views([newcomer], entries)
    check_views([a, b], entries, complete=False)
    acks = check_acknowledged([a, b, newcomer], entries)
    record("faults", fault="redis_wiped", injected=1, lost=0, torn_left=0, reused_seqs=0, **acks)


# --- 6. a replica partitioned from Redis (a network namespace) ---------------------------------------------

PARTITION_SECONDS = 8.0
NS_HOST, NS_REPLICA = "10.231.0.1", "10.231.0.2"


class BoundRedis(RedisServer):
    """A redis-server listening on 127.0.0.1 and on the host end of the test's veth."""

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [self.executable, "--port", str(self.port), "--bind", f"127.0.0.1 {NS_HOST}"]
        command += ["--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        command += ["--protected-mode", "no", "--logfile", str(self.directory / "redis.log")]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self._wait_ready()


@dataclass
class NsTracker(RunningTracker):
    """A replica running inside the test's network namespace, reached over the veth."""

    @property
    def url(self) -> str:
        return f"ws://{NS_REPLICA}:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://{NS_REPLICA}:{self.port}"


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=UNIT)


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace joined to this one by a veth: NS_HOST here, NS_REPLICA there."""
    require(os.geteuid() == 0, "needs root (ip netns, iptables)")
    require(shutil.which("ip") is not None and shutil.which("iptables") is not None, "needs ip and iptables")
    name = f"rf{os.getpid()}"
    host_end, ns_end = f"rfh{os.getpid() % 100000}", f"rfn{os.getpid() % 100000}"
    run("ip", "netns", "add", name)
    try:
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        run("ip", "link", "set", ns_end, "netns", name)
        run("ip", "addr", "add", f"{NS_HOST}/24", "dev", host_end)
        run("ip", "link", "set", host_end, "up")
        run("ip", "netns", "exec", name, "ip", "addr", "add", f"{NS_REPLICA}/24", "dev", ns_end)
        run("ip", "netns", "exec", name, "ip", "link", "set", ns_end, "up")
        run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        run("ip", "netns", "exec", name, "iptables", "-L", "-n")
        yield name
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def start_in_netns(namespace: str, redis_url: str, data_dir: Path) -> NsTracker:
    port = free_port_any()
    command = ["ip", "netns", "exec", namespace, sys.executable, "-m", "chat_tracker", "--host", NS_REPLICA]
    command += ["--port", str(port), "--data-dir", str(data_dir), "--redis-url", redis_url, *REPLICA_FLAGS]
    return start_server(command, tracker_env(PASSWORD, CROWD_FROM_ONE_ADDRESS), PASSWORD, data_dir, NsTracker)


def free_port_any() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        port: int = sock.getsockname()[1]
        return port


def partition(namespace: str, redis_port: int, action: str) -> None:
    """Drop (``-A``) or let through again (``-D``) every packet between the namespace and Redis: no RST, no FIN."""
    for chain, match in (("OUTPUT", "--dport"), ("INPUT", "--sport")):
        run(
            "ip",
            "netns",
            "exec",
            namespace,
            "iptables",
            action,
            chain,
            "-p",
            "tcp",
            match,
            str(redis_port),
            "-j",
            "DROP",
        )


@pytest.mark.timeout(36 * UNIT)
async def test_replica_partitioned_from_redis_notices_and_recovers(
    netns: str, tmp_path: Path, start_tracker: Any, start_archiver: StartArchiver
) -> None:
    """iptables drops the packets between one replica's namespace and Redis for 8 s: the replica notices (its
    /healthz, its log, ``log_unavailable``), and once the link is back its member gets every event the others
    logged meanwhile, in order, with no restart."""
    executable = shutil.which("redis-server")
    require(executable is not None, "redis-server is not installed")
    assert executable is not None
    server = BoundRedis(executable, tmp_path / "redis")
    server.start()
    inside: NsTracker | None = None
    try:
        archiver = start_archiver(server.url, data_dir=tmp_path / "archive")
        outside = start_tracker("--redis-url", server.url, *REPLICA_FLAGS)
        inside = start_in_netns(netns, f"redis://{NS_HOST}:{server.port}/0", tmp_path / "inside")
        p, q = Peer("pia"), Peer("quin")
        assert (await p.join(inside.url))["type"] == "welcome"
        assert (await q.join(outside.url))["type"] == "welcome"
        for _ in range(5):
            await p.say()
            await q.say()
        await settle([p, q])
        partition(netns, server.port, "-A")
        cut = time.monotonic()
        link_noticed: list[float] = []

        def watch_log() -> None:
            assert inside is not None
            inside.wait_for_output("Redis unreachable from the replica link", 3 * UNIT)
            link_noticed.append(time.monotonic() - cut)

        watcher = asyncio.create_task(asyncio.to_thread(watch_log))
        said_during = 0

        async def talk_meanwhile(deadline: float) -> None:
            nonlocal said_during
            while time.monotonic() < deadline:
                await q.say(f"quin during the cut {said_during}")
                said_during += 1
                await asyncio.sleep(0.2)  # pacing, not synchronisation

        talking = asyncio.create_task(talk_meanwhile(cut + PARTITION_SECONDS))
        assert inside is not None
        replica = inside
        noticed = await until(
            lambda: healthz(replica.http_url).get("log_writable") is False, "/healthz log_writable false", 3 * UNIT
        )
        refused_id = await p.say("pia during the cut")
        await until(lambda: any(e.get("id") == refused_id for e in p.errors), "an answer to the message", UNIT)
        assert [e["code"] for e in p.errors if e.get("id") == refused_id] == ["log_unavailable"]
        await talking  # the fault lasts PARTITION_SECONDS
        await watcher
        assert p.connected, "the partitioned replica dropped its member"
        partition(netns, server.port, "-D")
        healed = time.monotonic()
        back = await until(lambda: healthz(replica.http_url).get("log_writable") is True, "writable again", 4 * UNIT)
        last_during = f"quin during the cut {said_during - 1}"
        caught_up = await until(lambda: any(e.get("text") == last_during for e in p.events), "pia to catch up")
        caught_up = time.monotonic() - healed
        await p.say("pia after the cut")
        await until(lambda: any(e.get("text") == "pia after the cut" for e in q.events), "quin to hear pia")
        p.errors = [e for e in p.errors if e.get("id") != refused_id]
        p.sent.pop(refused_id)
        await settle([p, q])
        await archived_everything(server, archiver)
        entries = chat_log(archiver.data_dir)
        views = check_views([p, q], entries)
        acks = check_acknowledged([p, q], entries)
        during = [e["text"] for e in p.events if e.get("text", "").startswith("quin during the cut")]
        assert during == [f"quin during the cut {i}" for i in range(said_during)]
        assert p.connected and q.connected
        record(
            "faults",
            fault="replica_partitioned_netns",
            injected=1,
            lost=0,
            torn_left=0,
            refused_noticed_s=round(noticed, 2),
            link_noticed_s=round(link_noticed[0], 2),
            writable_after_heal_s=round(back, 2),
            caught_up_after_heal_s=round(caught_up, 2),
            missed_then_delivered=said_during,
            **views,
            **acks,
        )
        print(f"partition: refused after {noticed:.2f} s, link after {link_noticed[0]:.2f} s, back {back:.2f} s")
    finally:
        if inside is not None:
            inside.kill()
        server.kill()
