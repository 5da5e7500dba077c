"""A JSON member that keeps what the independent checker needs: stints, what it sent, what was acknowledged.

``CheckedMember`` joins or resumes on any tracker or replica (over the plain ``websockets``
client), sends numbered messages with ids, resends the unacknowledged ones after a resume, and
records every room event it receives, without judging them: ``support.checker`` does that
against chat.log (``read_chat_log`` reads every segment, oldest first); ``judge`` runs it and records
the counts as a ``faults`` row.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL
from chat_tracker.records import LogEntry
from chat_tracker.storage.chatlog import parse_line
from support.campaign import record
from support.checker import KIND_OF_TYPE, Counts, MemberRecord, Seen, Stint, check
from support.timing import UNIT
from support.tracker import PASSWORD


def read_chat_log(data_dir: Path) -> list[LogEntry]:
    """Every chat.log entry, rotated segments first (oldest first, gzipped or not), then chat.log."""
    entries, torn = read_chat_log_counting_torn(data_dir)
    assert not torn, f"torn last line in {torn}"
    return entries


def read_chat_log_counting_torn(data_dir: Path) -> tuple[list[LogEntry], list[Path]]:
    """Every whole chat.log line's entry (as ``read_chat_log``), and the files whose last line is torn.

    For a test that records its figures before asserting them: the torn lines are counted, not raised.
    """
    segments = sorted(
        (p for p in data_dir.glob("chat.log.*") if p.name.split(".")[2].isdigit()),
        key=lambda p: int(p.name.split(".")[2]),
    )
    entries: list[LogEntry] = []
    torn: list[Path] = []
    for path in [*segments, data_dir / "chat.log"]:
        if path.exists():
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            whole, _, tail = data.rpartition(b"\n")
            if tail:
                torn.append(path)
            entries += [parse_line(line) for line in whole.decode("utf-8").splitlines()]
    return entries, torn


def judge(
    fault: str,
    injected: int,
    entries: list[LogEntry],
    torn: list[Path],
    members: list[CheckedMember],
    *,
    seed: int | None,
    **extras: Any,
) -> Counts:
    """The independent checker over ``members``: record a ``faults`` row of counted figures, then fail on a violation.

    The row holds the true counts even when the run fails: the check runs twice, counting, then strict.
    ``torn`` (from ``read_chat_log_counting_torn``) is counted as ``torn_left`` before it fails the test.
    """
    records = [member.record() for member in members]
    counts = check(entries, records, seed=seed, strict=False)
    record("faults", fault=fault, injected=injected, seed=seed, torn_left=len(torn), **counts.as_figures(), **extras)
    assert not torn, f"torn last line in {torn}"
    check(entries, records, seed=seed)
    return counts


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
class CheckedMember:
    """A JSON member that records every event, sends numbered messages with ids, and resumes anywhere."""

    name: str
    ws: ClientConnection | None = None
    url: str = ""
    token: str = ""
    epoch: str = ""
    join_seq: int = 0
    last_seq: int = 0
    stints: list[Stint] = field(default_factory=list)
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

    def record(self) -> MemberRecord:
        """What the checker needs of this member."""
        return MemberRecord(self.name, self.stints, dict(self.sent), dict(self.acked))

    def note(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in KIND_OF_TYPE:
            self.last_seq = max(self.last_seq, message["seq"])
            self.events.append(message)
            self.stints[-1].received.append(Seen.from_frame(message))
            if kind == "message" and message["name"] == self.name and "id" in message:
                self.acked.setdefault(message["id"], message["seq"])
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

    async def _hello(self, url: str) -> ClientConnection:
        ws = await connect_json(url)
        hello = await self._recv(ws)
        assert hello["type"] == "hello" and hello["authenticated"], hello
        return ws

    async def join(self, url: str) -> dict[str, Any]:
        """Join as ``name`` on ``url`` (a new stint); the welcome (or the error that refused it)."""
        ws = await self._hello(url)
        await ws.send(json.dumps({"type": "join", "name": self.name}))
        answer = await self._recv(ws)
        while answer["type"] not in ("welcome", "error"):
            answer = await self._recv(ws)
        if answer["type"] == "welcome":
            self.url, self.token, self.epoch = url, answer["token"], answer["epoch"]
            self.join_seq = self.last_seq = answer["seq"]
            self.stints.append(Stint(after=answer["seq"]))
            self._listen(ws)
        else:
            await ws.close()
        return answer

    async def resume(self, url: str) -> dict[str, Any]:
        """Resume on ``url`` (token, epoch, after = the last seq seen); the answer. Replayed events are noted."""
        ws = await self._hello(url)
        request = {"type": "resume", "token": self.token, "epoch": self.epoch, "after": self.last_seq}
        await ws.send(json.dumps(request))
        answer = await self._recv(ws)
        if answer["type"] != "resumed":
            await ws.close()
            return answer
        joined_again = answer["epoch"] != self.epoch
        self.url, self.token, self.epoch = url, answer["token"], answer["epoch"]
        if answer.get("gone"):  # the tracker names what it can no longer replay: owed no more
            first, last = answer["gone"]
            self.stints[-1].gaps.append((first, last))
        if joined_again:
            self._joined_again(answer["seq"])
        for _ in range(answer["replayed"]):
            self.note(await self._recv(ws))
        self.resumes += 1
        self._listen(ws)
        return answer

    def _joined_again(self, seq: int) -> None:
        """A token of an epoch the tracker lost (Redis restarted empty) is answered with a fresh join at ``seq``.

        The old stint is owed everything up to that join, which ``gone`` covers; a new stint
        starts after it (its join is this ``resumed``, as a welcome would be).
        """
        self.stints[-1].until = seq - 1
        self.stints.append(Stint(after=seq))
        self.join_seq = self.last_seq = seq

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

    def owe_until(self, seq: int) -> None:
        """Say this member is owed every event up to ``seq`` (a fence every member waited for)."""
        self.stints[-1].until = seq

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.wait_for(self.reader, UNIT)
