"""Replicas on Redis under real faults (issue 15): real replica processes, a real archiver, a real redis-server.

Each test runs members (``CheckedMember``: JSON dialect, over the plain ``websockets``
client) spread over several ``chat-tracker --redis-url`` replicas, with ``chat-tracker
archive`` writing chat.log, injects one fault, and then hands what every member sent,
had acknowledged and received to the independent checker (``support.checker``) with
chat.log: every acknowledged message logged exactly once, each member's events exactly
chat.log's from its join to the last fence, in order, or announced gone. Its counts go to
``tests/reliability/results/figures.jsonl`` (see docs/reliability.md, "Replicas on Redis").
RELIABILITY_SEED seeds the choice of replicas members resume on (a failure names it).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from chat_tracker.journal.redis_keys import Keys
from chat_tracker.records import LogEntry
from support.archiver import StartArchiver
from support.checked_member import CheckedMember, judge, read_chat_log_counting_torn
from support.checker import Stint
from support.environment import require
from support.redis_server import POLL_SECONDS, RedisServer
from support.timing import UNIT
from support.tracker import CROWD_FROM_ONE_ADDRESS, PASSWORD, RunningTracker, start_server, tracker_env

pytestmark = pytest.mark.anyio

KEYS = Keys()
GRACE = "5"
REPLICA_FLAGS = ("--resume-grace", GRACE, "--rate", "200", "--burst", "200")
SEED = int(os.environ.get("RELIABILITY_SEED", "24"))


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


def log_gaps(entries: list[LogEntry]) -> int:
    """Seqs chat.log skips between its first and last line (every seq is logged: a missing one is a gap)."""
    seqs = {entry.seq for entry in entries}
    return (max(seqs) - min(seqs) + 1 - len(seqs)) if seqs else 0


# --- replicas ---------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """The replicas running now; members pick one to join or resume on."""

    start_tracker: Callable[..., RunningTracker]
    url: str
    live: list[RunningTracker] = field(default_factory=list)
    killed: int = 0
    chooser: random.Random = field(default_factory=lambda: random.Random(SEED))  # the same seed, the same choices

    def start(self, *flags: str) -> RunningTracker:
        replica = self.start_tracker("--redis-url", self.url, *REPLICA_FLAGS, *flags)
        self.live.append(replica)
        return replica

    def other(self, than: str) -> str:
        choices = [r.url for r in self.live if r.url != than and r.process.poll() is None]
        return self.chooser.choice(choices)

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
    peers = [CheckedMember(f"m{index}") for index in range(9)]
    for index, peer in enumerate(peers):
        welcome = await peer.join(cluster.live[index % 3].url)
        assert welcome["type"] == "welcome", welcome
    stop = asyncio.Event()
    resume_times: list[float] = []

    async def life(peer: CheckedMember) -> None:
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
    await settle(peers)
    await archived_everything(redis_server, archiver)
    entries, torn = read_chat_log_counting_torn(archiver.data_dir)
    counts = judge(
        "replica_sigkill",
        cluster.killed,
        entries,
        torn,
        peers,
        seed=SEED,
        resumes=sum(p.resumes for p in peers),
        resends=sum(p.resends for p in peers),
        refused=sum(len(p.errors) for p in peers),
        max_resume_s=round(max(resume_times), 3),
    )
    for peer in peers:
        assert peer.errors == [], (peer.name, peer.errors[:3])
    for replica in cluster.live:
        assert error_lines(replica.output) == [], error_lines(replica.output)
    print(f"replica SIGKILL: {cluster.killed} kills, {counts}, resume max {max(resume_times):.3f} s")


async def test_a_replica_starting_while_members_chat_does_not_stop_the_others(
    redis_server: RedisServer, start_tracker: Any
) -> None:
    """A new replica's ``start`` event reaches replicas with members: they must go on delivering (the SIGKILL
    rounds start a replacement each round; this is the smallest form of that)."""
    cluster = Cluster(start_tracker, redis_server.url)
    first, second = cluster.start(), cluster.start()
    a, b = CheckedMember("ann"), CheckedMember("bob")
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


async def talkers(peers: list[CheckedMember], stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """Each peer says a numbered message every 20 ms until ``stop`` (no resumes: its replica stays up)."""

    async def talk(peer: CheckedMember) -> None:
        while not stop.is_set() and peer.connected:
            await peer.say()
            await asyncio.sleep(0.02)  # pacing (well under the rate limit), not synchronisation

    return [asyncio.create_task(talk(peer)) for peer in peers]


async def spread(cluster: Cluster, count: int) -> list[CheckedMember]:
    peers = [CheckedMember(f"p{index}") for index in range(count)]
    for index, peer in enumerate(peers):
        welcome = await peer.join(cluster.live[index % len(cluster.live)].url)
        assert welcome["type"] == "welcome", welcome
    return peers


async def settle(peers: list[CheckedMember]) -> int:
    """Wait until every message sent has its echo (or was refused), and a last one reached everyone: a fence.

    Every peer is owed every event up to that last word (``owe_until``); its seq.
    """

    def done() -> bool:
        refused = {e.get("id") for p in peers for e in p.errors}
        return all(i in p.acked or i in refused for p in peers for i in p.sent)

    await until(done, "every message echoed or refused")
    speaker = peers[0]
    for _attempt in range(20):  # a replica just back from a Redis outage may still refuse it: say it again
        marker = f"last word {len(speaker.sent)}"  # its own text: a fence is never taken for an earlier one
        marker_id = await speaker.say(marker)
        await until(
            lambda: marker_id in speaker.acked or any(e.get("id") == marker_id for e in speaker.errors),  # noqa: B023
            "the last word's echo or refusal",
        )
        if marker_id in speaker.acked:
            break
        speaker.sent.pop(marker_id)
        speaker.errors = [e for e in speaker.errors if e.get("id") != marker_id]
        await asyncio.sleep(0.2)  # a pause before trying again, not synchronisation
    assert marker_id in speaker.acked, "the last word was refused every time"
    fence = speaker.acked[marker_id]
    for peer in peers:
        await until(lambda: peer.last_seq >= fence, "the last word")  # noqa: B023
        peer.owe_until(fence)
    return fence


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
    entries, torn = read_chat_log_counting_torn(data_dir)
    gaps = log_gaps(entries)
    judge("archiver_sigkill", kills, entries, torn, peers, seed=SEED, lines=len(entries), log_gaps=gaps)
    assert gaps == 0 and [e.seq for e in entries] == list(range(1, last + 1)), "a gap or a repeat in chat.log"
    assert all(p.errors == [] for p in peers)


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
    a, b = CheckedMember("ann"), CheckedMember("bob")
    assert (await a.join(first.url))["type"] == "welcome"
    assert (await b.join(second.url))["type"] == "welcome"
    for _ in range(5):
        await a.say()
        await b.say()
    await settle([a, b])
    acknowledged_before = len(a.acked) + len(b.acked)
    outages = 0
    redis_server.stop()
    outages += 1
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
    await settle([a, b])  # the refused message stays sent, unacknowledged: the checker sees it is not logged twice
    await archived_everything(redis_server, archiver)
    entries, torn = read_chat_log_counting_torn(archiver.data_dir)
    judge(
        "redis_stopped_10s",
        outages,
        entries,
        torn,
        [a, b],
        seed=SEED,
        refused=len(a.errors) + len(b.errors),
        noticed_s=round(noticed, 2),
        writable_after_start_s=round(back, 2),
        acknowledged_before=acknowledged_before,
    )
    assert not any(e.text == "during the outage" for e in entries)
    assert [e["id"] for e in a.errors + b.errors] == [refused_id], "only the message said during the outage refused"


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
    entries, torn = read_chat_log_counting_torn(archiver.data_dir)
    gaps = log_gaps(entries)
    refused = sum(len(p.errors) for p in peers)
    judge("redis_sigkill_aof", kills, entries, torn, peers, seed=SEED, refused=refused, log_gaps=gaps)
    assert gaps == 0 and [e.seq for e in entries] == list(range(1, entries[-1].seq + 1))
    assert {e["code"] for p in peers for e in p.errors} <= {"log_unavailable"}


# --- 5. Redis restarted empty ------------------------------------------------------------------------------


async def test_redis_restarted_empty_is_a_new_epoch(
    redis_server: RedisServer, start_tracker: Any, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    """Redis wiped: every replica logs "Redis lost the room", closes its members with 1012; a resume with the old
    token is answered ``resumed`` with ``recovered: false`` in the new epoch; newcomers join; no seq is reused."""
    archiver = start_archiver(redis_server.url, data_dir=tmp_path / "archive")
    cluster = Cluster(start_tracker, redis_server.url)
    first, second = cluster.start(), cluster.start()
    a, b = CheckedMember("ann"), CheckedMember("bob")
    assert (await a.join(first.url))["type"] == "welcome"
    assert (await b.join(second.url))["type"] == "welcome"
    for _ in range(10):
        await a.say()
        await b.say()
    await settle([a, b])
    # Everything archived before the wipe, on purpose: what Redis held that the archiver had not yet written is
    # lost with Redis, the one copy (the archiver logs an ERROR naming the seqs it will never write). Members who
    # received those events, and senders whose messages were acknowledged, are not told (their gone range starts
    # after what they saw), and a new epoch created by a replica that had read less may give those seqs to other
    # events. Redis is the durable store (appendfsync always): this test measures how members are taken into the
    # new epoch, which loses nothing, under the full check.
    old_last = await archived_everything(redis_server, archiver)
    old_epoch = a.epoch
    wipes = 0
    redis_server.wipe()
    wipes += 1
    redis_server.start()
    for replica in (first, second):
        await asyncio.to_thread(replica.wait_for_output, r"ERROR .*Redis lost the room", 2 * UNIT)
    await until(lambda: not a.connected and not b.connected, "both members closed")
    assert a.close_codes[-1] == 1012 and b.close_codes[-1] == 1012, (a.close_codes, b.close_codes)
    for peer, replica in ((a, first), (b, second)):
        after = peer.last_seq
        answer = await peer.resume(replica.url)
        # A token of the lost epoch is answered with a fresh join told as ``resumed``, recovered: false, and
        # ``gone`` the exact range between what the member last saw and that join: CheckedMember starts a new
        # stint after the join, and the old one is owed nothing that range does not announce.
        assert answer["type"] == "resumed" and answer["recovered"] is False, answer
        assert answer["epoch"] != old_epoch and answer["seq"] > old_last, (answer, old_last)
        assert answer.get("gone") == ([after + 1, answer["seq"] - 1] if answer["seq"] - 1 > after else None), answer
    newcomer = CheckedMember("cid")
    welcome = await newcomer.join(second.url)
    assert welcome["type"] == "welcome" and welcome["epoch"] == a.epoch != old_epoch, welcome
    assert welcome["seq"] > old_last, (welcome["seq"], old_last)
    for _ in range(5):
        await a.say()
        await b.say()
        await newcomer.say()
    await settle([a, b, newcomer])
    await archived_everything(redis_server, archiver)
    entries, torn = read_chat_log_counting_torn(archiver.data_dir)
    new_epoch = [*a.stints[1:], *b.stints[1:], *newcomer.stints]  # the stints begun after the wipe
    reused = reused_seqs(entries, new_epoch, old_last)
    judge("redis_wiped", wipes, entries, torn, [a, b, newcomer], seed=SEED, reused_seqs=reused)
    assert reused == 0, "a seq of the lost epoch used again"
    assert all(e.seq > old_last for e in entries if e.text.startswith("cid"))
    assert [len(peer.stints) for peer in (a, b, newcomer)] == [2, 2, 1], "one stint per epoch"


def reused_seqs(entries: list[LogEntry], new_stints: list[Stint], old_last: int) -> int:
    """Seqs used twice: repeated in chat.log, or given in the new epoch (a join, an event) at or below its floor."""
    repeated = sum(count - 1 for count in Counter(entry.seq for entry in entries).values())
    given = [seq for stint in new_stints for seq in (stint.after, *(seen.seq for seen in stint.received))]
    return repeated + sum(1 for seq in given if seq <= old_last)


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
        p, q = CheckedMember("pia"), CheckedMember("quin")
        assert (await p.join(inside.url))["type"] == "welcome"
        assert (await q.join(outside.url))["type"] == "welcome"
        for _ in range(5):
            await p.say()
            await q.say()
        await settle([p, q])
        partitions = 0
        partition(netns, server.port, "-A")
        partitions += 1
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
        await settle([p, q])  # the refused message stays sent, unacknowledged: the checker sees it is not logged
        await archived_everything(server, archiver)
        entries, torn = read_chat_log_counting_torn(archiver.data_dir)
        during = [e["text"] for e in p.events if e.get("text", "").startswith("quin during the cut")]
        judge(
            "replica_partitioned_netns",
            partitions,
            entries,
            torn,
            [p, q],
            seed=SEED,
            refused=len(p.errors) + len(q.errors),
            refused_noticed_s=round(noticed, 2),
            link_noticed_s=round(link_noticed[0], 2),
            writable_after_heal_s=round(back, 2),
            caught_up_after_heal_s=round(caught_up, 2),
            missed_then_delivered=len(during),
        )
        assert during == [f"quin during the cut {i}" for i in range(said_during)]
        assert [e["id"] for e in p.errors + q.errors] == [refused_id], "only the message said during the cut refused"
        assert p.connected and q.connected
        print(f"partition: refused after {noticed:.2f} s, link after {link_noticed[0]:.2f} s, back {back:.2f} s")
    finally:
        if inside is not None:
            inside.kill()
        server.kill()
