"""A stateful model of joins, leaves and messages, driven over real WebSockets against a real tracker.

``tests/core/test_room_model.py`` checks the Room alone; this machine checks the whole
tracker process. Hypothesis picks steps: JSON and plain-text members join (with valid
names, lookalikes of names online, invalid and reserved names), say things (hostile text
included: CR/LF, ESC, NUL, U+2028, emoji, exactly the limit and one more), and leave in
the three ways a connection can end: ``leave`` / ``exit``, a close frame, a TCP reset.
After every step:

- ``GET /members`` lists exactly the model's online names, in join order;
- chat.log (the file, and ``GET /log``) holds exactly the model's events since the
  example began: kind, name, text (unescaped), seq +1 each;
- every online member has received exactly the model's events since its own join, in
  seq order (JSON: the seqs of chat.log; plain text: the documented lines).

Members are sans-I/O ``websockets`` clients on plain blocking sockets: one thread, no
event loop, so Hypothesis's synchronous machine drives them directly, and a reset is
a real RST. One tracker serves every example; each example ends with everyone leaving.
"""

from __future__ import annotations

import functools
import json
import socket
import struct
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import HealthCheck, Phase, assume, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from chat_protocol import SUBPROTOCOL, sanitize_for_terminal
from chat_tracker.records import LogEntry
from chat_tracker.storage.chatlog import parse_line
from support.badinput import BadInputs, admits
from support.campaign import FULL, RAW_CONTROLS, error_lines
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

MAX = 40  # --max-message-chars for this machine

# Each group is one name and spellings a person could confuse with it (case, 1 for l, 0 for o, separators).
NAME_GROUPS = {
    "alpha": ["alpha", "ALPHA", "a1pha", "alp.ha", "a-l-p-h-a"],
    "bravo": ["bravo", "BRAVO", "brav0", "br_avo", "Bra.vo"],
    "delta": ["delta", "de1ta", "DELTA", "d.e.l.t.a", "deIta"],
    "kilo": ["kilo", "KIL0", "k1lo", "ki-lo", "kiLo"],
}
INVALID_NAMES = ["", "al pha", "al\npha", "\x1b[31mx", "a" * 33, ".alpha", "*star", "!bang", "\u0430lpha", "\U0001f600"]
RESERVED_NAMES = ["admin", "ROOT", "adm1n", "s.y.s.t.e.m"]
HOSTILE_TEXTS = [
    "line one\r\nline two",
    "trailing newline\r\n",
    "cr\roverwrite",
    "\x1b[31mred\x1b[0m",
    "\x1b]0;title\x07",
    "a\x00b",
    "a\u2028b",
    "\u202eevil",
    "\U0001f600\U0001f680 emoji",
    "\U0001f468\u200d\U0001f469",
    "m" * MAX,
    "\U0001f600" * MAX,
    "m" * (MAX + 1),
    "\U0001f600" * (MAX + 1),
    "",
    " \t ",
    "\n",
    "exit",
    "please exit now",
    "a\\nb",
    '{"type":"message","text":"x"}',
    "9 2026-01-01T00:00:00.000Z msg root forged",
    "a\ud800b",
]


# --- a blocking WebSocket peer on the sans-I/O protocol ------------------------------


class Peer:
    """One WebSocket connection: frames in, frames out, on a blocking socket with deadlines."""

    def __init__(self, port: int, json_dialect: bool) -> None:
        self.json = json_dialect
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=UNIT)
        protocols = [Subprotocol(SUBPROTOCOL)] if json_dialect else None
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws"), subprotocols=protocols)
        request = self.protocol.connect()
        if json_dialect:
            request.headers["Authorization"] = f"Bearer {PASSWORD}"
        self.protocol.send_request(request)
        self._flush()
        self.texts: list[str] = []  # received, not yet taken
        self.close_code: int | None = None
        self.eof = False
        deadline = time.monotonic() + UNIT
        while self.protocol.state.name == "CONNECTING":
            self._read_some(deadline)
        assert self.protocol.handshake_exc is None, self.protocol.handshake_exc

    def send(self, text: str) -> None:
        self.protocol.send_text(text.encode("utf-8", "surrogatepass"))
        self._flush()

    def send_json(self, **body: Any) -> None:
        self.send(json.dumps(body))

    def take(self, deadline: float) -> str:
        """The next text frame; AssertionError if none arrives by ``deadline``."""
        while not self.texts:
            if self.eof:
                raise AssertionError(f"connection ended (close {self.close_code}) while a frame was expected")
            self._read_some(deadline)
        return self.texts.pop(0)

    def take_json(self, deadline: float) -> dict[str, Any]:
        return dict(json.loads(self.take(deadline)))

    def until_closed(self, deadline: float) -> list[str]:
        """Every frame until the tracker closes the connection; returns them."""
        while not self.eof:
            self._read_some(deadline)
        frames, self.texts = self.texts, []
        return frames

    def close_frame(self) -> None:
        """Leave politely at the WebSocket level: a close frame, as a browser tab closing sends."""
        self.protocol.send_close(1000)
        self._flush()

    def reset(self) -> None:
        """Vanish: a TCP reset, no close frame."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.eof = True

    def _read_some(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no frame in time; still unread: {self.texts!r}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"no frame in time; still unread: {self.texts!r}") from None
        except ConnectionResetError:
            data = b""
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
            self.eof = True
        for event in self.protocol.events_received():
            if not isinstance(event, Frame):
                continue
            opcode = event.opcode
            if opcode is Opcode.TEXT:
                assert event.fin, "the tracker fragments no frame"
                self.texts.append(bytes(event.data).decode("utf-8"))
            elif opcode is Opcode.CLOSE and self.protocol.close_rcvd is not None:
                self.close_code = self.protocol.close_rcvd.code
        self._flush()  # pongs, and the echo of a close frame

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                try:
                    self.sock.sendall(data)
                except OSError:
                    self.eof = True
            elif not self.eof:
                self.sock.shutdown(socket.SHUT_WR)

    def dispose(self) -> None:
        self.sock.close()


# --- the model -----------------------------------------------------------------------


@dataclass
class Expected:
    """One thing a member must receive: a logged event (by index in the model log) or an error for it alone."""

    event: int | None = None
    error: str | None = None  # the error code (JSON); plain-text members get a "! " line


@dataclass
class Member:
    name: str
    group: str
    peer: Peer
    join_index: int  # its own join in the model log
    expected: list[Expected] = field(default_factory=list)
    checked: int = 0  # how many of ``expected`` were already received and compared


def whole_lines(path: Path) -> list[LogEntry]:
    """chat.log's complete lines, parsed strictly (no raw control, seq +1 each).

    A reader can catch the tracker mid-``write(2)``: a batch that crosses a page boundary
    becomes visible one page at a time. A last line without its newline is still being
    written, so it is left for the next poll.
    """
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1].decode("utf-8")
    entries = []
    for line in complete.splitlines():
        assert RAW_CONTROLS.search(line) is None, f"raw control in chat.log: {line!r}"
        entries.append(parse_line(line))
    assert [e.seq for e in entries] == list(range(entries[0].seq, entries[0].seq + len(entries))), "seq gap"
    return entries


def http_get(tracker: RunningTracker, path: str, tally: BadInputs) -> Any:
    headers = {"Authorization": f"Bearer {PASSWORD}"}
    response = httpx.get(tracker.http_url + path, headers=headers, timeout=UNIT, trust_env=False)
    tally.answered(status=response.status_code)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def recorded(step: Callable[..., None]) -> Callable[..., None]:
    """Keep the first real failure of a step or invariant, as it happened.

    Hypothesis replays a failing example to report it, but against the same tracker: the
    replay meets the state the failure left (a leave still in flight, a name still held)
    and can fail earlier or elsewhere, which it reports as ``FlakyStrategyDefinition`` and
    hides the original assertion. The test raises this one instead.
    """

    @functools.wraps(step)
    def run(self: TrackerModel, *args: Any, **kwargs: Any) -> None:
        try:
            step(self, *args, **kwargs)
        except HypothesisException:
            raise  # assume() and the like: not a failure
        except Exception:
            type(self).failures.append(traceback.format_exc())
            raise

    return run


class TrackerModel(RuleBasedStateMachine):
    """Who is online, what chat.log holds and what each member has seen, predicted from the protocol."""

    tracker: RunningTracker  # set by the test before the machine runs
    tally: BadInputs  # the run's bad-input figures, set by the test too
    log_lines_after_teardown = 0  # how long chat.log will be once the last example's leaves are written
    counts: ClassVar[dict[str, int]] = {}
    failures: ClassVar[list[str]] = []  # tracebacks, first first (see ``recorded``)

    def __init__(self) -> None:
        super().__init__()
        self._fence()
        entries = whole_lines(self.tracker.log_path)
        self.base, self.base_seq = len(entries), entries[-1].seq
        self.log: list[tuple[str, str, str]] = []  # (kind, name, text) of this example's logged events
        self.online: list[Member] = []  # in join order
        self.count("examples")

    @recorded
    def _fence(self) -> None:
        """Wait for the previous example's last leaves to reach chat.log; fail if they do not within UNIT."""
        want = self.log_lines_after_teardown
        deadline = time.monotonic() + UNIT
        while (have := len(whole_lines(self.tracker.log_path))) < want:
            assert time.monotonic() < deadline, f"chat.log has {have} lines, the previous example's leaves make {want}"
            time.sleep(0.01)  # polling a file: there is no event to wait on

    @classmethod
    def count(cls, what: str, n: int = 1) -> None:
        cls.counts[what] = cls.counts.get(what, 0) + n

    def _taken(self, group: str) -> bool:
        return any(m.group == group for m in self.online)

    # --- rules -----------------------------------------------------------------

    @rule(
        group=st.sampled_from(sorted(NAME_GROUPS)),
        spelling=st.integers(0, 4),
        json_dialect=st.booleans(),
        bad_first=st.lists(st.one_of(st.sampled_from(INVALID_NAMES), st.sampled_from(RESERVED_NAMES)), max_size=2),
    )
    @recorded
    def join(self, group: str, spelling: int, json_dialect: bool, bad_first: list[str]) -> None:
        """Connect, try refused names first (kept on the same connection), then a name from ``group``."""
        self.count("steps")
        name = NAME_GROUPS[group][spelling]
        peer = Peer(self.tracker.port, json_dialect)
        deadline = time.monotonic() + UNIT
        if not json_dialect:
            assert peer.take(deadline) == "Enter server password..."
            peer.send(PASSWORD)
            assert [peer.take(deadline), peer.take(deadline)] == ["Welcome to our server...", "Enter your username..."]
        else:
            assert peer.take_json(deadline) == {"type": "hello", "version": 1, "authenticated": True}
        for bad in bad_first:
            self._refused(peer, bad, "name_reserved" if bad in RESERVED_NAMES else "name_invalid")
        if self._taken(group):
            self._refused(peer, name, "name_taken")
            peer.close_frame()
            peer.until_closed(time.monotonic() + UNIT)
            self.tally.answered(close_code=peer.close_code)
            peer.dispose()
            return
        self._claim(peer, name)
        self.count("inputs")
        self._check_welcome(peer, name)
        self.log.append(("join", name, ""))
        member = Member(name, group, peer, len(self.log) - 1)
        for other in self.online:
            other.expected.append(Expected(event=member.join_index))
        self.online.append(member)
        self.count("joins")

    def _claim(self, peer: Peer, name: str) -> None:
        peer.send_json(type="join", name=name) if peer.json else peer.send(name)

    def _refused(self, peer: Peer, name: str, code: str) -> None:
        self._claim(peer, name)
        self.count("inputs")
        deadline = time.monotonic() + UNIT
        if peer.json:
            answer = peer.take_json(deadline)
            self.tally.got_in(answer["type"] == "welcome")
            assert (answer["type"], answer["code"]) == ("error", code), (name, answer)
        else:
            refusal = peer.take(deadline)
            self.tally.got_in(admits(refusal))
            assert refusal.startswith("Name refused: "), name
            assert peer.take(deadline) == "Enter your username..."
        self.count("names_refused")

    def _check_welcome(self, peer: Peer, name: str) -> None:
        members = [m.name for m in self.online] + [name]
        deadline = time.monotonic() + UNIT
        if peer.json:
            welcome = peer.take_json(deadline)
            assert (welcome["type"], welcome["name"], welcome["members"]) == ("welcome", name, members), welcome
            peer.welcome_seq = welcome["seq"]  # type: ignore[attr-defined]
        else:
            lines = [peer.take(deadline) for _ in range(4)]
            assert lines[0] == f"Hi {name}, You have been added to the server.", lines
            assert lines[1] == f"Online now ({len(members)}): {', '.join(members)}", lines

    @precondition(lambda self: self.online)
    @rule(index=st.integers(0, 20), text=st.sampled_from(HOSTILE_TEXTS))
    @recorded
    def say_hostile(self, index: int, text: str) -> None:
        """A member sends one of the hostile texts (a rule of its own, so they come up often)."""
        self.say(index, text)

    @precondition(lambda self: self.online)
    @rule(index=st.integers(0, 20), text=st.text(max_size=MAX + 2))
    @recorded
    def say(self, index: int, text: str) -> None:
        """A member sends ``text``: logged and delivered to all (JSON senders get the echo), or refused to it alone."""
        member = self.online[index % len(self.online)]
        if not member.peer.json:
            assume("\ud800" not in text and text.rstrip("\r\n") != "exit")  # plain frames are UTF-8; exit leaves
            member.peer.send(text)
            text = text.rstrip("\r\n")  # the plain dialect strips a trailing CR/LF
        else:
            member.peer.send_json(type="message", text=text)
        self.count("steps")
        self.count("inputs")
        refusal = self._refusal(text)
        if refusal is not None:
            member.expected.append(Expected(error=refusal))
            self.count("messages_refused")
            return
        self.log.append(("msg", member.name, text))
        for other in self.online:
            if other is not member or member.peer.json:
                other.expected.append(Expected(event=len(self.log) - 1))
        self.count("messages")

    @staticmethod
    def _refusal(text: str) -> str | None:
        if not text.strip():
            return "empty"
        if len(text) > MAX:
            return "too_long"
        if any("\ud800" <= char <= "\udfff" for char in text):
            return "invalid_text"
        return None

    @precondition(lambda self: self.online)
    @rule(index=st.integers(0, 20), how=st.sampled_from(["leave", "close", "reset"]))
    @recorded
    def leave(self, index: int, how: str) -> None:
        """A member leaves: ``leave`` / ``exit`` (answered with bye and 1000), a close frame, or a reset."""
        self.count("steps")
        self._leave(index, how)

    def _leave(self, index: int, how: str) -> None:
        member = self.online.pop(index % len(self.online))
        self._receive(member)  # everything up to now, before it goes
        # In the model first: if the exchange below fails, the tracker has still logged this leave.
        self.log.append(("leave", member.name, {"leave": "exit", "close": "closed", "reset": "lost"}[how]))
        for other in self.online:
            other.expected.append(Expected(event=len(self.log) - 1))
        self.count("inputs")
        if how == "leave":
            self._leave_politely(member)
        elif how == "close":
            member.peer.close_frame()
            assert member.peer.until_closed(time.monotonic() + UNIT) == []
            self.tally.answered(close_code=member.peer.close_code)
            member.peer.dispose()
        else:
            member.peer.reset()
        self.count(f"leaves_{how}")

    def _leave_politely(self, member: Member) -> None:
        peer = member.peer
        peer.send_json(type="leave") if peer.json else peer.send("exit")
        frames = peer.until_closed(time.monotonic() + UNIT)
        self.tally.answered(close_code=peer.close_code)
        bye = {"type": "bye", "reason": "left", "message": f"Bye, {member.name}."}
        assert frames == ([json.dumps(bye, separators=(",", ":"))] if peer.json else [f"Bye, {member.name}."]), frames
        assert peer.close_code == 1000
        peer.dispose()

    # --- invariants --------------------------------------------------------------

    @invariant()
    @recorded
    def tracker_up(self) -> None:
        self.tally.check_tracker()
        assert self.tally.crashes == 0, "the tracker died or logged an error: " + "\n".join(
            error_lines(self.tracker.output)
        )

    @invariant()
    @recorded
    def members_match(self) -> None:
        expected = [m.name for m in self.online]
        got = self._poll(
            lambda: [m["name"] for m in http_get(self.tracker, "/members", self.tally)["members"]], expected
        )
        assert got == expected, f"/members says {got}, the model {expected}"

    @invariant()
    @recorded
    def log_matches(self) -> None:
        """chat.log and /log hold exactly this example's events since it began, seq +1 each."""
        got = self._poll(self._logged_since_base, self.log)
        if got != self.log:  # counted before failing: lines the model (every accepted input) does not explain
            self.tally.compare_log(whole_lines(self.tracker.log_path)[self.base :], self.log)
        assert got == self.log, f"chat.log since the example began:\n{got}\nthe model:\n{self.log}"
        if self.log:
            events = http_get(self.tracker, f"/log?lines={min(len(self.log), 1000)}", self.tally)["events"]
            assert [(e["kind"], e["name"], e["text"]) for e in events] == self.log[-1000:]
            assert [e["seq"] for e in events] == self._seqs()[-1000:]

    @invariant()
    @recorded
    def inboxes_match(self) -> None:
        for member in self.online:
            self._receive(member)

    def _logged_since_base(self) -> list[tuple[str, str, str]]:
        entries = whole_lines(self.tracker.log_path)[self.base :]
        assert [e.seq for e in entries] == list(range(self.base_seq + 1, self.base_seq + 1 + len(entries)))
        return [(e.kind, e.name, e.text) for e in entries]

    def _seqs(self) -> list[int]:
        return list(range(self.base_seq + 1, self.base_seq + 1 + len(self.log)))

    @staticmethod
    def _poll(read: Any, expected: Any) -> Any:
        """Read until the answer equals ``expected`` or the deadline passes; return the last answer."""
        deadline = time.monotonic() + UNIT
        while (got := read()) != expected and time.monotonic() < deadline:
            time.sleep(0.005)  # polling a REST answer or a file: there is no event to wait on
        return got

    def _receive(self, member: Member) -> None:
        """Read what ``member`` should have received since the last check and compare, in order."""
        deadline = time.monotonic() + UNIT
        seqs = self._seqs()
        for expected in member.expected[member.checked :]:
            try:
                frame = member.peer.take(deadline)
            except AssertionError as missing:
                want = self.log[expected.event] if expected.event is not None else ("error", expected.error)
                raise AssertionError(f"{member.name} never received {want!r}: {missing}") from None
            if member.peer.json:
                self._compare_json(json.loads(frame), expected, seqs)
            else:
                self._compare_plain(frame, expected)
            member.checked += 1
            self.count("deliveries_checked")

    def _compare_json(self, got: dict[str, Any], expected: Expected, seqs: list[int]) -> None:
        if expected.error is not None:
            assert (got["type"], got["code"]) == ("error", expected.error), got
            return
        assert expected.event is not None
        kind, name, text = self.log[expected.event]
        want: dict[str, Any] = {
            "join": {"type": "joined"},
            "msg": {"type": "message", "text": text},
            "leave": {"type": "left", "reason": text},
        }[kind]
        want.update(name=name, seq=seqs[expected.event])
        assert {k: got.get(k) for k in want} == want, (got, want)

    def _compare_plain(self, got: str, expected: Expected) -> None:
        if expected.error is not None:
            assert got.startswith("! "), (got, expected.error)
            return
        assert expected.event is not None
        kind, name, text = self.log[expected.event]
        suffix = {"lost": " (connection lost)"}.get(text, "")
        want = {
            "join": f"* {name} joined the chat",
            "msg": f"{name}: {sanitize_for_terminal(text)}",
            "leave": f"* {name} left the chat{suffix}",
        }[kind]
        assert got == want

    # --- the end of an example ---------------------------------------------------

    @recorded
    def teardown(self) -> None:
        """Everyone leaves politely, one at a time, so the next example starts with an empty room.

        Each leaver first receives the leaves before its own (as in the ``leave`` rule), then
        exactly its bye and close 1000: a failure fails the example. Only after a failure are
        the members still in reset, so that the room is empty all the same.
        """
        try:
            while self.online:
                self._leave(0, "leave")
        finally:
            stranded = list(self.online)
            self.online.clear()
            for member in stranded:
                member.peer.reset()
            type(self).log_lines_after_teardown = self.base + len(self.log) + len(stranded)


# The CI form does not shrink: every failing try waits out a frame deadline, so shrinking
# would outlast pytest's timeout; the failing example's steps are printed as found. The full
# form shrinks, with time for it. Both are derandomized (no example database either): the same
# steps every run, so the counts recorded (steps, inputs, deliveries) are the same every run and
# docs/reliability.md can print them, checked exactly; a failure replays as it is.
CI_SETTINGS = settings(
    max_examples=10,
    stateful_step_count=15,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
FULL_SETTINGS = settings(CI_SETTINGS, max_examples=60, stateful_step_count=40, phases=list(Phase))


@pytest.mark.reliability
@pytest.mark.long
@pytest.mark.timeout((360 if FULL else 24) * UNIT)
def test_stateful_model_over_real_websockets(start_tracker: Any) -> None:
    """Any joins, messages and leaves over real sockets keep /members, chat.log and every inbox equal to the model."""
    tracker = start_tracker("--max-message-chars", str(MAX), "--rate", "1000", "--burst", "1000")
    with BadInputs("stateful_ws", tracker) as tally:
        TrackerModel.tracker, TrackerModel.tally = tracker, tally
        TrackerModel.counts = {}
        TrackerModel.log_lines_after_teardown = 0
        TrackerModel.failures = []
        try:
            run_state_machine_as_test(TrackerModel, settings=FULL_SETTINGS if FULL else CI_SETTINGS)
        except Exception as error:
            if not TrackerModel.failures:
                raise
            raise AssertionError(
                "the first failure, as it happened (what Hypothesis reports is its replay):\n"
                + TrackerModel.failures[0]
                + "\ntracker output:\n"
                + "\n".join(tracker.output[-80:])
            ) from error
        finally:
            counts = TrackerModel.counts
            tally.sent(counts.get("inputs", 0))
            tally.extra.update(counts)
        tally.check_tracker()
