"""The nemesis's load: members chatting with message ids on random replicas, resuming wherever they can.

Each ``NemesisMember`` (a ``CheckedMember``) says a numbered message every ``PACE_SECONDS``. When its
connection drops (its replica killed, a close code, a timeout) it resumes on a random usable replica
with its token and the last seq it saw, and resends every unacknowledged message of its stint (same
ids: the tracker logs a resend once). A resume the room answers with an error (grace over, a replica
that never knew the old epoch) makes it join again: a new stint, whose messages do not include the
old stint's unacknowledged ones (they may be logged; resending them from a new session would log
them twice). A resume into a new epoch (Redis lost the room) is such a join too, told as ``resumed``.

``settle`` and ``fence`` end a run: every member connected, what can be acknowledged acknowledged,
then a fence message that every member receives; each member is owed every event up to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from support.checked_member import CheckedMember
from support.checker import Stint
from support.nemesis import STEP_SECONDS, Fault, Schedule
from support.timing import UNIT

# At most this many messages unacknowledged at once: a resend stays well within the last 128 ids the
# tracker remembers per session (docs/protocol.md, "Resending is harmless").
WINDOW = 32
PACE_SECONDS = 0.05  # between two messages of one member: load, well under the rate limit
RETRY_SECONDS = 0.2  # between two attempts to come back: pacing, not synchronisation
POLL_SECONDS = 0.02
CONNECT_ERRORS = (OSError, ConnectionClosed, InvalidHandshake, TimeoutError)
RETRY_CODES = frozenset({"log_unavailable", "resume_beyond_end", "name_taken", "server_busy"})


@dataclass
class NemesisMember(CheckedMember):
    """A CheckedMember that knows a resume into a new epoch is a new stint, and what not to resend."""

    abandoned: set[str] = field(default_factory=set)  # unacknowledged in a stint that ended: never resent
    errors_seen: int = 0  # how many of ``errors`` ``resend_refused`` has looked at
    resent_at: float = 0.0  # when ``resend_refused`` last looked (monotonic)
    echoes_again: int = 0  # echoes of a message acknowledged already (answers to resends)
    resent: set[str] = field(default_factory=set)  # ids sent more than once
    answers: list[dict[str, Any]] = field(default_factory=list)  # every resume's answer, for a post-mortem

    def abandon(self) -> None:
        self.abandoned |= {msg_id for msg_id in self.sent if msg_id not in self.acked}

    def unacknowledged(self) -> list[str]:
        return [msg_id for msg_id in self.sent if msg_id not in self.acked and msg_id not in self.abandoned]

    async def join(self, url: str) -> dict[str, Any]:
        self.abandon()
        return await super().join(url)

    async def resume(self, url: str) -> dict[str, Any]:
        """Resume with token, epoch and the last seq seen; a new epoch's ``resumed`` starts a new stint."""
        ws = await self._hello(url)
        try:
            request = {"type": "resume", "token": self.token, "epoch": self.epoch, "after": self.last_seq}
            await ws.send(json.dumps(request))
            answer = await self._recv(ws)
            self.answers.append(
                {"url": url, "after": self.last_seq} | {k: v for k, v in answer.items() if k != "members"}
            )
            if answer["type"] != "resumed":
                await ws.close()
                return answer
            if answer["epoch"] != self.epoch:  # the room was lost: joined again under its name
                self.abandon()
                self.stints.append(Stint(after=answer["seq"]))
                self.join_seq = self.last_seq = answer["seq"]
            elif answer.get("gone"):
                first, last = answer["gone"]
                self.stints[-1].gaps.append((first, last))
            self.url, self.token, self.epoch = url, answer["token"], answer["epoch"]
            for _ in range(answer["replayed"]):
                self.note(await self._recv(ws))
        except BaseException:
            await ws.close()
            raise
        self.resumes += 1
        self._listen(ws)
        return answer

    def note(self, message: dict[str, Any]) -> None:
        """As CheckedMember's; and an own message replayed without its id acknowledges the first unacknowledged one
        of that text: a tracker restarted replays from chat.log, where ids are not kept (docs/protocol.md)."""
        msg_id = message.get("id", "")
        if message["type"] == "message" and msg_id in self.resent and self._answers_resend(msg_id, message["seq"]):
            self.echoes_again += 1  # a resend's answer: the first one's echo again (docs/protocol.md), not an event
            self.acked.setdefault(msg_id, message["seq"])
            return
        super().note(message)
        if message["type"] == "message" and message["name"] == self.name and "id" not in message:
            same = next((i for i in self.unacknowledged() if self.sent[i] == message["text"]), None)
            if same is not None:
                self.acked[same] = message["seq"]

    def _answers_resend(self, msg_id: str, seq: int) -> bool:
        """The first echo again, or one the member was told it could not be replayed (its seq in a ``gone``
        range): a replica answers a resend whose first copy another logged (docs/replicas.md) with that echo."""
        return self.acked.get(msg_id) == seq or any(first <= seq <= last for first, last in self.stints[-1].gaps)

    async def resend_refused(self) -> None:
        """Send again the messages refused since the last time (``log_unavailable``: Redis away for now).

        At most once per RETRY_SECONDS: a refused resend is refused again until Redis is back.
        """
        if time.monotonic() - self.resent_at < RETRY_SECONDS:
            return
        self.resent_at = time.monotonic()
        refused = [e.get("id") for e in self.errors[self.errors_seen :]]
        self.errors_seen = len(self.errors)
        for msg_id in dict.fromkeys(i for i in refused if isinstance(i, str) and i in self.unacknowledged()):
            await self._resend(msg_id)

    async def resend_unacknowledged(self) -> None:
        self.errors_seen = len(self.errors)  # what was refused is among what is resent now
        for msg_id in self.unacknowledged():
            await self._resend(msg_id)

    async def _resend(self, msg_id: str) -> None:
        self.resends += 1
        self.resent.add(msg_id)
        await self._send(msg_id)


Injector = Callable[[Fault], Awaitable[None]]


async def play(schedule: Schedule, inject: Injector, heal: Injector, load: Load) -> None:
    """Each step: heal what ends there, inject what starts there (an instant fault healed at once), let the load run."""
    for step in range(schedule.steps):
        for fault in schedule.healed_at(step):
            if fault.at < step:
                await heal(fault)
        for fault in schedule.injected_at(step):
            await inject(fault)
            if fault.heal_at == step:
                await heal(fault)
        load.raise_if_failed()
        await asyncio.sleep(STEP_SECONDS)  # pacing: the members chat between two steps; not synchronisation


def ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Seqs as (first, last) runs of consecutive ones, in the order given."""
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


def post_mortem(members: list[NemesisMember]) -> str:
    """What each member saw, stint by stint (received seqs as runs), and the resumes' answers, as JSON."""
    return json.dumps(
        {
            m.name: {
                "stints": [
                    {
                        "after": s.after,
                        "until": s.until,
                        "gaps": s.gaps,
                        "received": ranges([r.seq for r in s.received]),
                    }
                    for s in m.stints
                ],
                "answers": m.answers,
                "close_codes": m.close_codes,
            }
            for m in members
        },
        indent=1,
    )


async def until(condition: Callable[[], bool], what: str, timeout: float) -> float:
    """Wait (polling) until ``condition()``; how long it took. AssertionError at the deadline."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic() - started


@dataclass
class Load:
    """The members and their lives; ``hold`` pauses their talking (a wipe quiesces the room)."""

    members: list[NemesisMember]
    urls: Callable[[], list[str]]  # where a member may go now
    rng: random.Random
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # error code -> times a come-back was refused

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.life(member)) for member in self.members]

    def raise_if_failed(self) -> None:
        for task in self.tasks:
            if task.done():
                task.result()

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 4 * UNIT)

    async def life(self, member: NemesisMember) -> None:
        """Talk until ``stop``; come back whenever the connection is gone."""
        while not self.stop.is_set():
            if not member.connected:
                await self.come_back(member)
                continue
            if self.hold.is_set():
                await asyncio.sleep(PACE_SECONDS)  # pacing while the room is quiesced
                continue
            try:
                await member.resend_refused()
                if len(member.unacknowledged()) < WINDOW:
                    await member.say()
            except ConnectionClosed:
                await self.closed(member)
                continue
            await asyncio.sleep(PACE_SECONDS)  # pacing: the load's rate, not synchronisation

    @staticmethod
    async def closed(member: NemesisMember) -> None:
        if member.reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(member.reader), UNIT)

    async def come_back(self, member: NemesisMember) -> bool:
        """One attempt to resume (or join) on a random usable replica; whether the member is connected."""
        urls = self.urls()
        if not urls:
            await asyncio.sleep(RETRY_SECONDS)
            return False
        url = self.rng.choice(urls)
        try:
            answer = await (member.resume(url) if member.stints else member.join(url))
            if answer["type"] == "error" and answer.get("code") not in RETRY_CODES and member.stints:
                self._count(answer)
                answer = await member.join(url)  # the old session cannot come back: a new stint
            if answer["type"] == "error":
                self._count(answer)
                await asyncio.sleep(RETRY_SECONDS)
                return False
            await member.resend_unacknowledged()
        except CONNECT_ERRORS:
            await asyncio.sleep(RETRY_SECONDS)
            return False
        return member.connected

    def _count(self, answer: dict[str, Any]) -> None:
        code = str(answer.get("code"))
        self.refused[code] = self.refused.get(code, 0) + 1


async def reconnect_all(load: Load, timeout: float) -> None:
    """After the faults: every member connected again."""
    deadline = time.monotonic() + timeout
    for member in load.members:
        while not member.connected:
            if time.monotonic() > deadline:
                raise AssertionError(f"{member.name} could not come back: {member.errors[-3:]} {load.refused}")
            await load.come_back(member)


async def settle(load: Load, timeout: float) -> dict[str, list[str]]:
    """Resend until every message of every member's stint is acknowledged (Redis may refuse for a while).

    A replica cut off until the last step may learn only now that the stream was trimmed past it and
    close its members with 1012, as it must (their resume is told what is gone): they come back and
    resend. What is still unacknowledged at ``timeout``, by member: the test holds it against chat.log.
    """
    members = load.members
    deadline = time.monotonic() + timeout
    while any(member.unacknowledged() for member in members) and time.monotonic() < deadline:
        for member in members:
            try:
                await member.resend_unacknowledged()
            except ConnectionClosed:
                await load.closed(member)
        await reconnect_all(load, max(deadline - time.monotonic(), UNIT))
        with contextlib.suppress(AssertionError):
            await until(lambda: not any(m.unacknowledged() for m in members), "acknowledgements", UNIT)
    return {m.name: m.unacknowledged() for m in members if m.unacknowledged()}


async def fence(members: list[NemesisMember], text: str, timeout: float) -> int:
    """One member says ``text``; once every member received it, each is owed every event up to its seq."""
    speaker = members[0]
    msg_id = await speaker.say(text)
    await until(lambda: msg_id in speaker.acked, "the fence's echo", timeout)
    seq = speaker.acked[msg_id]
    for member in members:
        await until(lambda: member.last_seq >= seq, f"{member.name} to receive the fence", timeout)  # noqa: B023
        member.owe_until(seq)
    return seq
