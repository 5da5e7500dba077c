"""The archiver's rooms and conversations against a real redis-server: their own chat.log, info, and give-back.

Each test writes to a room's stream the way the replicas do: ``ROOM_OPEN`` in the default room's
epoch, then the ``APPEND`` script (``append_call`` with ``Keys.of_room``), and registers the room in
the ``rooms`` hash (a conversation in the ``conversations`` set); the archiver runs as its own process.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx

import redis
from chat_tracker.core.events import Event, EventKind
from chat_tracker.core.places import RoomMeta
from chat_tracker.journal.redis_keys import Keys, seq_of
from chat_tracker.journal.redis_scripts import APPEND, ROOM_OPEN, append_call, event_request
from chat_tracker.replicas.room_archiver import LOG_DESCRIPTORS
from chat_tracker.storage.chatlog import parse_line
from chat_tracker.storage.room_files import read_room_infos
from support.archiver import StartArchiver, all_lines, wait_until
from support.redis_server import RedisServer
from support.timing import UNIT
from support.tracker import RunningTracker

KEYS = Keys()
REPLICA = 1
EPOCH = "epoch-1"
ROOM = "#dev"
PAIR = "@ann+bob"
KEEP = 3  # --keep-in-redis


class RoomWriter:
    """A replica's appends to one room or conversation, numbered as a replica numbers its batches."""

    def __init__(self, client: redis.Redis, keys: Keys, epoch: str = EPOCH) -> None:
        self.client, self.keys, self.epoch, self.number = client, keys, epoch, 0
        opened = client.eval(ROOM_OPEN, 4, keys.room, keys.events, keys.archived, keys.replicas, epoch, REPLICA, 1)
        self.opened_at = int(opened[0])

    def say(self, *texts: str, name: str = "ann") -> list[int]:
        """Messages from ``name``; their seqs."""
        self.number += 1
        batch = [event_request(Event(0, 0.0, EventKind.MESSAGE, name, text), REPLICA) for text in texts]
        names, args = append_call(self.keys, self.epoch, REPLICA, self.number, batch)
        seqs: list[int] = self.client.eval(APPEND, len(names), *names, *args)
        return seqs


def make_room(
    client: redis.Redis, name: str = ROOM, *, private: bool = False, owner: str = "ann", epoch: str = EPOCH
) -> RoomWriter:
    """A room in the registry, opened in the default room's epoch, as a replica makes one."""
    meta = {"name": name, "owner": owner, "created": 1_800_000_000.5, "private": private}
    client.hset(KEYS.rooms, name, json.dumps(meta))
    return RoomWriter(client, KEYS.of_room(name), epoch)


def make_conversation(client: redis.Redis, name: str = PAIR) -> RoomWriter:
    client.sadd(KEYS.conversations, name)
    return RoomWriter(client, KEYS.of_conversation(name))


def start_default_room(client: redis.Redis, epoch: str = EPOCH) -> None:
    client.hset(KEYS.room, mapping={"epoch": epoch, "seq": 0})


def lines(path: Path) -> list[tuple[int, str, str, str]]:
    """(seq, kind, name, text) of each line of the chat.log at ``path`` (none yet: empty)."""
    if not path.exists():
        return []
    entries = [parse_line(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(entry.seq, entry.kind, entry.name, entry.text) for entry in entries]


def said(seqs: list[int], texts: list[str], name: str = "ann") -> list[tuple[int, str, str, str]]:
    return [(seq, EventKind.MESSAGE.value, name, text) for seq, text in zip(seqs, texts, strict=True)]


def room_log(data_dir: Path, name: str = ROOM) -> Path:
    return data_dir / "rooms" / name.removeprefix("#") / "chat.log"


def conversation_log(data_dir: Path, name: str = PAIR) -> Path:
    return data_dir / "direct" / name.removeprefix("@") / "chat.log"


def archived(client: redis.Redis, keys: Keys) -> int:
    value = client.get(keys.archived)
    return int(value) if value is not None else -1


def metric(archiver: RunningTracker, name: str) -> float:
    text = httpx.get(f"{archiver.http_url}/metrics", timeout=UNIT).text
    values = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
    assert values, f"no {name} in /metrics"
    return float(values[0])


def test_room_and_conversation_logs(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """A room's and a conversation's events are their own chat.log's lines, in order; archived set, stream trimmed."""
    texts = [f"dev {n}" for n in range(10)]
    with redis_server.client() as client:
        start_default_room(client)
        room, pair = make_room(client), make_conversation(client)
        archiver = start_archiver(redis_server.url, "--keep-in-redis", str(KEEP))
        first = room.say(*texts[:5])
        second = room.say(*texts[5:])
        direct = pair.say("hi bob", "lunch?") + pair.say("sure", name="bob")
        wait_until(lambda: archived(client, room.keys) == second[-1], "the room archived")
        wait_until(lambda: archived(client, pair.keys) == direct[-1], "the conversation archived")
        assert lines(room_log(archiver.data_dir)) == said(first + second, texts)
        assert lines(conversation_log(archiver.data_dir)) == said(direct[:2], ["hi bob", "lunch?"]) + said(
            direct[2:], ["sure"], "bob"
        )
        wait_until(lambda: len(client.xrange(room.keys.events)) == KEEP, "the room's stream trimmed")
        assert [seq_of(entry[0])[0] for entry in client.xrange(room.keys.events)] == second[-KEEP:]
        assert (room_log(archiver.data_dir).stat().st_mode & 0o777) == 0o600
    assert archiver.stop(signal.SIGTERM) == 0


def test_a_rooms_log_rotates_as_chat_log(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """--rotate-bytes holds for every room's chat.log: segments beside it, every line once across them."""
    texts = [f"line {n:03} " + "x" * 60 for n in range(60)]
    with redis_server.client() as client:
        start_default_room(client)
        room = make_room(client)
        archiver = start_archiver(redis_server.url, "--rotate-bytes", "1000")
        seqs: list[int] = []
        # A third at a time, each archived before the next: one batch of all 60 lines would be a single write
        # to an empty chat.log (never rotated), so how many segments there are would depend on the timing.
        for start in range(0, len(texts), 20):
            seqs += [seq for text in texts[start : start + 20] for seq in room.say(text)]

            def caught_up(last: int = seqs[-1]) -> bool:
                return archived(client, room.keys) == last

            wait_until(caught_up, "the room archived")
        directory = room_log(archiver.data_dir).parent
        assert len(list(directory.glob("chat.log.*"))) > 1
        assert [parse_line(line).seq for line in all_lines(directory)] == seqs


def test_room_info_follows_the_registry(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """room-info.json (0600) holds the room's meta and invitations, and follows an invitation made later."""
    with redis_server.client() as client:
        start_default_room(client)
        make_room(client, "#ops", private=True, owner="bob")
        archiver = start_archiver(redis_server.url)
        info = archiver.data_dir / "rooms" / "ops" / "room-info.json"
        wait_until(info.exists, "room-info.json")
        assert (info.stat().st_mode & 0o777) == 0o600
        body = json.loads(info.read_text())
        assert body == {"name": "#ops", "owner": "bob", "created": 1_800_000_000.5, "private": True, "invited": []}
        client.sadd(KEYS.of_room("#ops").invited, "carol", "dave")
        wait_until(lambda: json.loads(info.read_text())["invited"] == ["carol", "dave"], "the invitations written")
        # What a single tracker opens at start on this data dir (service/rooms.py).
        kept = RoomMeta("#ops", "bob", 1_800_000_000.5, private=True, invited=frozenset({"carol", "dave"}))
        assert read_room_infos(archiver.data_dir) == [kept]


def test_a_redis_restart_is_a_pause(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """Redis killed and started again from its AOF: the room's log goes on where it was, nothing twice."""
    with redis_server.client() as client:
        start_default_room(client)
        room = make_room(client)
        archiver = start_archiver(redis_server.url)
        seqs = room.say("before")
        wait_until(lambda: archived(client, room.keys) == seqs[-1], "the room archived")
    redis_server.kill()
    archiver.wait_for_output("The rooms' archiver waits for Redis")
    redis_server.start()
    with redis_server.client() as client:
        room.client = client
        seqs += room.say("after 1", "after 2")
        wait_until(lambda: archived(client, room.keys) == seqs[-1], "the room archived after the restart")
    assert lines(room_log(archiver.data_dir)) == said(seqs, ["before", "after 1", "after 2"])
    archiver.wait_for_output("The rooms' archiver goes on")


def test_restart_resumes_without_duplicates(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """SIGKILLed and started again, the archiver goes on from each file's last seq: every seq once, in order."""
    with redis_server.client() as client:
        start_default_room(client)
        room, pair = make_room(client), make_conversation(client)
        archiver = start_archiver(redis_server.url)
        seqs = room.say("one", "two", "three")
        direct = pair.say("a", "b")
        wait_until(lambda: archived(client, room.keys) == seqs[-1], "the room archived")
        wait_until(lambda: archived(client, pair.keys) == direct[-1], "the conversation archived")
        archiver.stop(signal.SIGKILL)
        client.set(room.keys.archived, 0)  # Redis is never trusted for where to go on: the file is
        seqs += room.say("four", "five")
        direct += pair.say("c")
        again = start_archiver(redis_server.url, data_dir=archiver.data_dir)
        wait_until(lambda: archived(client, room.keys) == seqs[-1], "the room archived again")
        wait_until(lambda: archived(client, pair.keys) == direct[-1], "the conversation archived again")
        assert lines(room_log(again.data_dir)) == said(seqs, ["one", "two", "three", "four", "five"])
        assert lines(conversation_log(again.data_dir)) == said(direct, ["a", "b", "c"])


def registry_back(client: redis.Redis) -> bool:
    return bool(client.hexists(KEYS.rooms, "#ops")) and bool(client.sismember(KEYS.conversations, PAIR))


def test_flushed_redis_gets_the_rooms_back(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """FLUSHALL while the archiver runs: the rooms hash, invitations, conversations and archived come back,
    and a room opened again starts above its file."""
    with redis_server.client() as client:
        start_default_room(client)
        room, pair = make_room(client, "#ops", private=True), make_conversation(client)
        client.sadd(KEYS.of_room("#ops").invited, "carol")
        archiver = start_archiver(redis_server.url)
        seqs, direct = room.say("before 1", "before 2"), pair.say("hello")
        wait_until(lambda: archived(client, room.keys) == seqs[-1], "the room archived")
        wait_until(lambda: archived(client, pair.keys) == direct[-1], "the conversation archived")
        info = json.loads((archiver.data_dir / "rooms" / "ops" / "room-info.json").read_text())
        client.flushall()
        wait_until(lambda: registry_back(client), "the rooms hash and conversations set given back")
        wait_until(lambda: archived(client, room.keys) == seqs[-1], "the room's archived given back")
        assert archived(client, pair.keys) == direct[-1]
        meta = json.loads(client.hget(KEYS.rooms, "#ops"))
        assert meta == {key: info[key] for key in ("name", "owner", "created", "private")}
        assert client.smembers(KEYS.of_room("#ops").invited) == {b"carol"}
        start_default_room(client, "epoch-2")
        reopened = RoomWriter(client, room.keys, "epoch-2")
        assert reopened.opened_at == seqs[-1]
        seqs += reopened.say("after")
        wait_until(lambda: archived(client, room.keys) == seqs[-1], "the new epoch archived")
        assert lines(room_log(archiver.data_dir, "#ops")) == said(seqs, ["before 1", "before 2", "after"])
        assert metric(archiver, "chat_archive_room_refused_events_total") == 0


def test_a_new_epochs_reused_seqs_are_refused(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """Redis emptied while no archiver ran, and a room reopened at seq 0: its seqs the file holds are refused."""
    with redis_server.client() as client:
        start_default_room(client)
        room = make_room(client)
        archiver = start_archiver(redis_server.url)
        seqs = room.say("old 1", "old 2", "old 3")
        wait_until(lambda: archived(client, room.keys) == seqs[-1], "the room archived")
        archiver.stop(signal.SIGKILL)
        client.flushall()
        start_default_room(client, "epoch-2")
        reopened = make_room(client, epoch="epoch-2")
        assert reopened.opened_at == 0  # no archiver gave archived back
        reused = reopened.say("new 1", "new 2", "new 3", "new 4")
        again = start_archiver(redis_server.url, data_dir=archiver.data_dir)
        wait_until(lambda: archived(client, room.keys) == reused[-1], "the new epoch archived")
        assert lines(room_log(again.data_dir)) == said(seqs, ["old 1", "old 2", "old 3"]) + said(reused[3:], ["new 4"])
        assert metric(again, "chat_archive_room_refused_events_total") == len(seqs)


def open_descriptors(pid: int) -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


def test_many_rooms_few_descriptors(redis_server: RedisServer, start_archiver: StartArchiver) -> None:
    """A thousand rooms, each with its events, each its own chat.log; the archiver's open files stay bounded."""
    count = 1_000
    names = [f"#room-{n}" for n in range(count)]
    with redis_server.client() as client:
        start_default_room(client)
        archiver = start_archiver(redis_server.url)
        wait_until(lambda: metric(archiver, "chat_archive_rooms") == 0, "the archiver running")
        before = open_descriptors(archiver.process.pid)
        writers = [make_room(client, name) for name in names]
        last = [writer.say(f"hello {name}")[-1] for writer, name in zip(writers, names, strict=True)]
        wait_until(
            lambda: all(archived(client, w.keys) == s for w, s in zip(writers, last, strict=True)),
            "every room archived",
            timeout=6 * UNIT,
        )
        for name, seq in zip(names, last, strict=True):
            assert lines(room_log(archiver.data_dir, name)) == said([seq], [f"hello {name}"])
        # One more than the logs: the rooms' reads have a connection of their own, opened with the first room.
        assert open_descriptors(archiver.process.pid) <= before + LOG_DESCRIPTORS + 1
        assert metric(archiver, "chat_archive_rooms") == count
