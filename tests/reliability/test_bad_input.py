"""The bad-input campaign: hostile text, names, frames, protocol and passwords against one real tracker.

Each case must get its clear error or close code while the tracker stays up and two
bystanders keep chatting undisturbed; afterwards chat.log holds exactly one escaped
line per accepted message, nothing forged, and nobody got in without the password.
The counts go to the "bad inputs" figure of docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from chat_protocol import escape
from support.badinput import Allowed, BadInputs, admits, members_lines
from support.bots import Bot, connect_json, open_bot, open_plain
from support.campaign import RAW_CONTROLS, check_log_file, error_lines
from support.process import Process
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio

MAX = 200  # --max-message-chars for this campaign
HOSTILE_TEXTS = {
    "crlf": "line one\r\nline two",
    "lf forging a line": "hi\n4 2026-01-01T00:00:00.000Z msg root forged",
    "cr": "overwrite\rroot: hacked",
    "esc colour": "\x1b[31mred\x1b[0m",
    "esc title": "\x1b]0;pwned\x07",
    "esc clear": "\x1b[2J\x1b[H",
    "c1 csi": "\x9b31mred",
    "c1 nel": "a\x85b",
    "u2028": "a\u2028b",
    "u2029": "a\u2029b",
    "nul": "a\x00b",
    "del": "a\x7fb",
    "bell": "ding\x07",
    "backspace": "abc\x08\x08x",
    "tab": "a\tb",
    "backslash n": "not a newline: \\n",
    "bidi override": "abc\u202etxt.exe",
    "bidi isolate": "\u2066x\u2069",
    "emoji": "\U0001f600\U0001f680 4-byte",
    "zwj family": "\U0001f468\u200d\U0001f469",
    "combining": "e\u0301\u0301\u0301",
    "max length": "m" * MAX,
    "max emoji": "\U0001f600" * MAX,
    "json-looking": '{"type":"message","text":"x"}',
    "leading space": "  indented",
    "only escape": "\x1b",
}
REFUSED_TEXTS = {
    "max plus one": ("m" * (MAX + 1), "too_long"),
    "empty": ("", "empty"),
    "whitespace": (" \t ", "empty"),
    "newlines only": ("\n\r\n", "empty"),
    "lone surrogate": ("a\ud800b", "invalid_text"),
}
BAD_NAMES = {
    "empty": "",
    "space": "al pha",
    "cr": "alpha\r",
    "lf": "al\npha",
    "esc": "\x1b[31malpha",
    "nul": "al\x00pha",
    "c1": "al\x85pha",
    "bidi": "al\u202epha",
    "cyrillic a": "\u0430lpha",
    "fullwidth": "\uff41lpha",
    "emoji": "\U0001f600",
    "too long": "a" * 33,
    "leading dot": ".alpha",
    "leading dash": "-alpha",
    "star": "*alpha",
    "bang": "!alpha",
    "slash": "al/pha",
    "colon": "al:pha",
    "reserved admin": "admin",
    "reserved case": "ROOT",
    "reserved lookalike": "adm1n",
    "reserved sep": "s.y.s.t.e.m",
    "taken case": "WATCHER",
    "taken exact": "watcher",
    "taken 1 for l": "ta1ker",
    "taken sep": "wat-cher",
    "taken i for l": "TAIKER",
}
EXPECTED_NAME_CODES = {"name_invalid", "name_reserved", "name_taken"}
BAD_FRAMES_AFTER_JOIN = [
    "",
    "null",
    "1",
    '"text"',
    "[]",
    "{}",
    '{"type":1}',
    '{"type":null}',
    '{"type":"message"}',
    '{"type":"message","text":null}',
    '{"type":"message","text":["x"]}',
    '{"type":"message","text":{"a":1}}',
    '{"type":"MESSAGE","text":"x"}',
    '{"type":"dance"}',
    '{"type":"join","name":"again"}',
    '{"type":"auth","password":"x"}',
    "[" * 5000 + "]" * 5000,
    '{"type":"message","text":"x"',
    '{"type": "message", "text": 1e999}',
    '{"type":"who","type":"message"}',
    "\ufeff{}",
    "not json at all",
    "{" + '"a":1,' * 2000 + '"type":"dance"}',
]


async def answer(bot: Bot, tally: BadInputs | None = None) -> dict[str, Any]:
    """The next echo of ``bot``'s own message, or an error for it (skipping everyone else's events).

    A connection closed instead is counted in ``tally`` by its close code (1011 is a server error).
    """
    while True:
        try:
            message = await bot.recv(UNIT)
        except ConnectionClosed as closed:
            if tally is not None:
                tally.answered(close_code=closed.rcvd.code if closed.rcvd else None)
            raise
        if message["type"] == "error" or (message["type"] == "message" and message["name"] == bot.name):
            return message


async def frames_until_closed(ws: ClientConnection) -> tuple[list[str], int | None]:
    """Every frame until the connection closes (each within UNIT), and the close code received."""
    frames: list[str] = []
    try:
        while True:
            frames.append(str(await asyncio.wait_for(ws.recv(), UNIT)))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None


class Bystanders:
    """Two members who check, after every case, that the room still works for them."""

    def __init__(self, a: Bot, b: Bot) -> None:
        self.a, self.b = a, b
        self.probes = 0

    def logged(self) -> list[Allowed]:
        """What the bystanders may have put in chat.log: their joins and leaves, and their probes."""
        return [*members_lines([self.a.name, self.b.name])] + [
            ("msg", self.a.name, f"probe {n}") for n in range(1, self.probes + 1)
        ]

    async def check(self, tally: BadInputs | None = None) -> None:
        """A probe through the room; then, with a tally, whether the tracker is still up and error-free."""
        if tally is not None:
            tally.check_tracker()
        self.probes += 1
        text = f"probe {self.probes}"
        started = time.monotonic()
        await self.a.say(text)
        for bot in (self.a, self.b):
            while True:
                message = await bot.recv(UNIT)
                if message["type"] == "message" and message["text"] == text:
                    break
        assert time.monotonic() - started < UNIT / 5, "a bystander was delayed"


@pytest.fixture
async def room(start_tracker: Any) -> Any:
    tracker: RunningTracker = start_tracker("--max-message-chars", str(MAX), "--rate", "1000", "--burst", "1000")
    a = await open_bot(tracker.url, PASSWORD, "watcher")
    b = await open_bot(tracker.url, PASSWORD, "talker")
    await a.expect("joined")
    yield tracker, Bystanders(a, b)
    assert tracker.process.poll() is None, "the tracker died"
    assert error_lines(tracker.output) == [], error_lines(tracker.output)


async def test_hostile_message_text_is_one_escaped_line_each(room: Any) -> None:
    """Controls, separators, bidi, emoji, max length: one chat.log line each, escaped, exact; max+1 refused."""
    tracker, bystanders = room
    with BadInputs("message_text", tracker) as tally:
        sender = await open_bot(tracker.url, PASSWORD, "sender")
        plain = await open_plain(tracker.url, PASSWORD, "plainsender")
        await bystanders.check(tally)
        accepted: list[Allowed] = []
        for label, text in HOSTILE_TEXTS.items():
            await sender.say(text)
            tally.sent()
            echo = await answer(sender, tally)
            assert echo["text"] == text, label  # the JSON protocol keeps text verbatim
            accepted.append(("msg", "sender", text))
            await bystanders.check(tally)
        for label, (text, code) in REFUSED_TEXTS.items():
            await sender.say(text)
            tally.sent()
            error = await answer(sender, tally)
            assert error["code"] == code, label
            await bystanders.check(tally)
        plain_texts = [
            t for t in HOSTILE_TEXTS.values() if not t.endswith(("\r", "\n")) and t.strip() and "\x00" not in t
        ]
        for text in plain_texts:  # the plain dialect: one frame, one message (a trailing CR/LF would be stripped)
            await plain.send(text)
            tally.sent()
            accepted.append(("msg", "plainsender", text))
            await bystanders.check(tally)
        frames_seen_by_plain = []
        await sender.say("end of campaign")
        while (frame := await asyncio.wait_for(plain.recv(), UNIT)) != "sender: end of campaign":
            frames_seen_by_plain.append(frame)
        for frame in frames_seen_by_plain:
            assert RAW_CONTROLS.search(str(frame)) is None, f"raw control sent to a plain member: {frame!r}"
        entries = check_log_file(tracker.log_path)  # also: no raw control byte anywhere in the file
        allowed = [*accepted, ("msg", "sender", "end of campaign"), *members_lines(["sender", "plainsender"])]
        tally.compare_log(entries, [*allowed, *bystanders.logged()])
        logged = [(e.name, e.text) for e in entries if e.kind == "msg" and e.name in ("sender", "plainsender")]
        assert logged == [(name, text) for _, name, text in allowed[: len(accepted) + 1]]
        raw = tracker.log_path.read_text(encoding="utf-8").splitlines()
        for text in HOSTILE_TEXTS.values():
            assert sum(line.endswith(" msg sender " + escape(text)) for line in raw) == 1
        await sender.ws.close()
        await plain.close()
        tally.check_tracker()


async def test_chat_client_shows_no_escape_effects(room: Any) -> None:
    """The real chat-client, piped, prints every hostile message on one line with no raw control character."""
    tracker, bystanders = room
    env = {**os.environ, "TRACKER_PASSWORD": PASSWORD, "TERM": "xterm-256color"}
    with BadInputs("client_display", tracker) as tally:
        said: list[Allowed] = []
        client = Process(
            [sys.executable, "-m", "chat_client", "--username", "reader", tracker.url], stdin=True, env=env
        )
        try:
            await bystanders.a.expect("joined", 4 * UNIT)
            for text in [*HOSTILE_TEXTS.values(), "the end"]:
                await bystanders.b.say(text)
                if text in HOSTILE_TEXTS.values():  # "the end" only marks the end
                    tally.sent()
                await answer(bystanders.b, tally)
                said.append(("msg", bystanders.b.name, text))
            await asyncio.to_thread(client.out.wait_for, lambda line: line.endswith("talker: the end"), 4 * UNIT)
            client.close_stdin()  # the reader leaves
            status = await asyncio.to_thread(client.wait, 4 * UNIT)
            shown = await asyncio.to_thread(client.out.text, 4 * UNIT)
        finally:
            client.end()
        tally.check_tracker()
        tally.compare_log(check_log_file(tracker.log_path), [*said, *members_lines(["reader"]), *bystanders.logged()])
        assert status == 0, client.err.text(UNIT)
        assert RAW_CONTROLS.search(shown.replace("\n", "")) is None, "raw control in the client's output"
        lines = [line for line in shown.splitlines() if "talker: " in line]
        assert len(lines) == len(said), lines  # one line per message: no CR/LF/U+2028 split one


async def test_hostile_names_are_refused_and_the_connection_kept(room: Any) -> None:
    """Invalid, reserved and lookalike-taken names: each refused with its reason; a good name then works."""
    tracker, bystanders = room
    with BadInputs("names", tracker) as tally:
        ws = await connect_json(tracker.url, PASSWORD)
        await ws.recv()  # hello
        for label, name in BAD_NAMES.items():
            await ws.send(json.dumps({"type": "join", "name": name}))
            tally.sent()
            reply = json.loads(await asyncio.wait_for(ws.recv(), UNIT))
            tally.got_in(reply["type"] == "welcome")
            assert reply["type"] == "error" and reply["code"] in EXPECTED_NAME_CODES, (label, reply)
            await bystanders.check(tally)
        plain = await connect(tracker.url, open_timeout=UNIT)
        await plain.recv()
        await plain.send(PASSWORD)
        await plain.recv(), await plain.recv()
        for name in ("al\u202epha", "alpha\x1b[2J", "WATCHER", "admin"):
            await plain.send(name)
            tally.sent()
            refusal = str(await asyncio.wait_for(plain.recv(), UNIT))
            tally.got_in(refusal.startswith("Hi "))
            assert refusal.startswith("Name refused: ") and RAW_CONTROLS.search(refusal) is None, refusal
            assert await asyncio.wait_for(plain.recv(), UNIT) == "Enter your username..."
        await ws.send(json.dumps({"type": "join", "name": "newcomer"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), UNIT))["type"] == "welcome"
        await ws.close()
        await plain.close()
        tally.check_tracker()
        entries = check_log_file(tracker.log_path)
        tally.compare_log(entries, [*members_lines(["newcomer"]), *bystanders.logged()])
        assert {e.name for e in entries if e.kind == "join"} == {"watcher", "talker", "newcomer"}


@pytest.mark.parametrize("variants", [False, True], ids=["same name", "lookalikes"])
async def test_100_concurrent_claims_of_one_name_one_wins(room: Any, variants: bool) -> None:
    """100 connections claim one name (or its lookalikes) at the same moment: exactly one is welcomed."""
    tracker, bystanders = room
    spellings = (
        ["gamma", "GAMMA", "g-a-m-m-a", "Gamma", "ga.mma", "gam_ma", "GaMmA", "gamma."] if variants else ["gamma"]
    )
    with BadInputs("name_race", tracker) as tally:
        sockets = await asyncio.gather(*(connect_json(tracker.url, PASSWORD) for _ in range(100)))
        await asyncio.gather(*(ws.recv() for ws in sockets))
        claims = [spellings[i % len(spellings)].rstrip(".") for i in range(len(sockets))]
        await asyncio.gather(
            *(ws.send(json.dumps({"type": "join", "name": c})) for ws, c in zip(sockets, claims, strict=True))
        )
        tally.sent(len(claims))
        answers = [json.loads(a) for a in await asyncio.gather(*(ws.recv() for ws in sockets))]
        winners = [a["name"] for a in answers if a["type"] == "welcome"]
        for _ in winners[1:]:  # the first claim is anyone's; every further welcome let a lookalike in
            tally.got_in(True)
        tally.extra.update(welcomed=len(winners), spellings=len(spellings))
        await bystanders.check(tally)
        await asyncio.gather(*(ws.close() for ws in sockets))
        tally.compare_log(check_log_file(tracker.log_path), [*members_lines(winners[:1]), *bystanders.logged()])
        assert len(winners) == 1 and [a["type"] for a in answers].count("error") == 99, answers


async def test_bad_frames_and_protocol_messages(room: Any) -> None:
    """Junk JSON after joining: errors, and the member stays; oversize, binary, invalid UTF-8 close 1009/1003/1007."""
    tracker, bystanders = room
    with BadInputs("frames_protocol", tracker) as tally:
        member = await open_bot(tracker.url, PASSWORD, "junker")
        for frame in BAD_FRAMES_AFTER_JOIN:
            await member.send_raw(frame)
            tally.sent()
            reply = await answer(member, tally)
            assert reply["type"] == "error", (frame[:40], reply)
            await bystanders.check(tally)
        before_auth = [
            '{"type":"join","name":"mallory"}',
            '{"type":"message","text":"hi"}',
            "junk",
            "{}",
            '{"type":"who"}',
        ]
        for frame in before_auth:  # no password, anything but auth: 4008 and nothing joined
            async with connect(tracker.url, subprotocols=[Subprotocol("groupchat.v1")], open_timeout=UNIT) as ws:
                await ws.recv()
                await ws.send(frame)
                tally.sent()
                frames, code = await frames_until_closed(ws)
                tally.answered(close_code=code)
                tally.got_in(any(admits(f) for f in frames))
                assert code == 4008, (frame, code, frames)
            await bystanders.check(tally)
        closers: dict[int, str | bytes] = {1009: "z" * 70000, 1003: b"\x00binary", 1007: b"caf\xe9"}
        for code, payload in closers.items():
            victim = await open_bot(tracker.url, PASSWORD, f"closer{code}")
            await victim.ws.send(payload, text=True if code == 1007 else None)  # 1007: invalid UTF-8 as text
            tally.sent()
            closed_with = await victim.close_code()
            tally.answered(close_code=closed_with)
            assert closed_with == code
            left = await bystanders.a.expect("left")
            assert (left["name"], left["reason"]) == (f"closer{code}", "closed")
            await bystanders.check(tally)
        await member.ws.close()
        tally.check_tracker()
        names = ["junker", *(f"closer{code}" for code in closers)]
        tally.compare_log(check_log_file(tracker.log_path), [*members_lines(names), *bystanders.logged()])


async def test_invalid_utf8_leaves_no_traceback_in_the_tracker_log(tracker: RunningTracker) -> None:
    """Regression: invalid UTF-8, before the password or after joining, closes 1007 without an ERROR or traceback."""
    unauthenticated = await connect(tracker.url, open_timeout=UNIT)
    await unauthenticated.recv()
    await unauthenticated.send(b"\xff\xfe", text=True)
    member = await open_bot(tracker.url, PASSWORD, "alpha")
    await member.ws.send(b"caf\xe9", text=True)
    assert await member.close_code() == 1007
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(unauthenticated.recv(), UNIT)
    assert unauthenticated.protocol.close_rcvd is not None and unauthenticated.protocol.close_rcvd.code == 1007
    tracker.wait_for_output(r"alpha left \(closed\)")
    assert error_lines(tracker.output) == []
    assert sum("invalid UTF-8 (1007)" in line for line in tracker.output) == 2
