"""``python -m bench --workloads security``: the attacks of issue 22, each against every tracker of the run.

    python -m bench --workloads security --baseline 8412c10       # before (tracker@8412c10) and after (this tree)
    python -m bench --workloads security --servers tracker --smoke # toy sizes, this tree only (tests/bench)

Each attack starts a fresh tracker (``bench.servers``, with the tracker's own per-address limits:
the benchmark's crowd lifting is off) for every tracker kind in turn, the baseline first, runs
against it from this process on loopback only (client sockets bound to 127.x.y.z to play many
addresses), and records what it cost the tracker (VmRSS before, peak and after, sampled every
5 ms, with VmHWM when it grew) and what the attacker got (statuses, close codes, times). Every
step has a timeout; whatever either version answers (a refusal, a 429, a close) is a result,
not an error. Results: bench/results/security.md (the table, also printed) and security.json.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import json
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from .servers import PASSWORD, Server, ServerOptions, memory
from .workloads import Plan

ADMIN_PASSWORD = "bench-admin-password-long"
ONE_ADDRESS = 12  # requests in flight from one address: under the tracker's default of 16 open sockets
MB = 1024 * 1024
SUBPROTOCOL = "groupchat.v1"
Result = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """How big each attack is; the defaults are the issue's, ``SMOKE`` proves the harness in seconds."""

    body_mb: int = 300
    body_off_mb: int = 100
    slow_body_cap: float = 25.0  # seconds a slow body is kept trickling at most
    wrong_passwords: int = 20_000
    settle_seconds: float = 20.0
    ws_wrong: int = 300
    resume_events: int = 200_000
    gz_lines: int = 300_000
    guess_addresses: int = 3_000
    one_address_guesses: int = 8
    origins: int = 300
    join_cycles: int = 400
    who_members: int = 1_000
    step_timeout: float = 10.0  # any one request or frame
    attack_timeout: float = 240.0  # one attack against one tracker, whatever happens


SMOKE = Sizes(
    body_mb=4,
    body_off_mb=2,
    slow_body_cap=2.0,
    wrong_passwords=100,
    settle_seconds=0.5,
    ws_wrong=10,
    resume_events=2_000,
    gz_lines=3_000,
    guess_addresses=30,
    one_address_guesses=2,
    origins=10,
    join_cycles=10,
    who_members=20,
    step_timeout=2.0,
    attack_timeout=40.0,
)


# --- what the tracker costs ---------------------------------------------------------------------


class Watch:
    """VmRSS before, sampled peak (VmHWM too when it grew) and after, of one process, in MB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before, self.hwm_before = memory(pid)
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, memory(self.pid)[0])

    def finish(self) -> Result:
        self._stop.set()
        self._thread.join(timeout=2)
        try:
            after, hwm = memory(self.pid)
        except OSError:
            after, hwm = 0, 0
        peak = max(self.peak, hwm if hwm > self.hwm_before else 0)
        return {"rss_before_mb": _mb(self.before), "rss_peak_mb": _mb(peak), "rss_after_mb": _mb(after)}


def _mb(value: int) -> float:
    return round(value / MB, 1)


def _rss(cost: Result) -> str:
    return f"RSS {cost['rss_before_mb']:.0f} -> {cost['rss_peak_mb']:.0f} -> {cost['rss_after_mb']:.0f} MB"


# --- a tiny HTTP/1.1 client: raw, so bodies stream, sources vary and nothing is retried ----------


@dataclass
class Answer:
    status: int | None  # None: no status line (closed, reset, timed out)
    seconds: float
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    outcome: str = "answered"  # or "closed", "reset", "timeout"


def _head(method: str, path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    if not any(k.lower() == "host" for k in headers):
        return ("\r\n".join(lines) + "\r\n\r\n").encode()
    lines.pop(1)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_answer(reader: asyncio.StreamReader, started: float, timeout: float) -> Answer:
    try:
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        if not status_line:
            return Answer(None, time.monotonic() - started, outcome="closed")
        seconds = time.monotonic() - started
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in head.decode("latin-1").split("\r\n") if ":" in line)
        }
        body = await _read_body(reader, headers, timeout)
        return Answer(int(status_line.split()[1]), seconds, body, headers)
    except TimeoutError:
        return Answer(None, time.monotonic() - started, outcome="timeout")
    except (ConnectionError, asyncio.IncompleteReadError, IndexError, ValueError):
        return Answer(None, time.monotonic() - started, outcome="reset")


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], timeout: float) -> bytes:
    length = headers.get("content-length")
    if length is not None:
        return await asyncio.wait_for(reader.readexactly(min(int(length), 8 * MB)), timeout)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return await asyncio.wait_for(reader.read(8 * MB), timeout)
    return b""


async def request(
    port: int,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    src: str = "127.0.0.1",
    timeout: float = 10.0,
) -> Answer:
    """One request on a fresh connection from ``src``; whatever happens is an Answer, never an exception."""
    started = time.monotonic()
    wanted = {"Connection": "close", **(headers or {})}
    if body:
        wanted["Content-Length"] = str(len(body))
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=_bind(src)), timeout
        )
    except (OSError, TimeoutError) as exc:
        return Answer(None, time.monotonic() - started, outcome=f"connect: {type(exc).__name__}")
    try:
        writer.write(_head(method, path, port, wanted) + body)
        return await _read_answer(reader, started, timeout)
    finally:
        writer.close()


def _auth(password: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {password}"}


def _upgrade(origin: str | None = None, host: str | None = None, password: str | None = None) -> dict[str, str]:
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    if origin is not None:
        headers["Origin"] = origin
    if host is not None:
        headers["Host"] = host
    if password is not None:  # the JSON dialect: a plain-text client gives its password in a frame
        headers.update(_auth(password))
        headers["Sec-WebSocket-Protocol"] = SUBPROTOCOL
    return headers


def _bind(src: str) -> tuple[str, int] | None:
    """Bind a client socket only off 127.0.0.1: an explicitly bound port in TIME_WAIT on 127.0.0.1
    would keep the next tracker from listening on it."""
    return None if src == "127.0.0.1" else (src, 0)


def address(index: int, network: int = 1) -> str:
    """The index-th address of 127.<network>.0.0/16 (client sockets bind to it: loopback accepts any 127/8)."""
    return f"127.{network}.{index // 250 % 250}.{index % 250 + 1}"


# --- WebSocket members -----------------------------------------------------------------------------


async def connect(port: int, src: str = "127.0.0.1", timeout: float = 10.0) -> ClientConnection:
    return await websockets.connect(
        f"ws://127.0.0.1:{port}/ws",
        subprotocols=[websockets.Subprotocol(SUBPROTOCOL)],
        additional_headers=_auth(PASSWORD),
        open_timeout=timeout,
        close_timeout=1,
        max_size=None,
        compression=None,
        ping_interval=None,
        local_addr=_bind(src),
    )


async def frame(ws: ClientConnection, timeout: float) -> Result:
    """The next JSON frame; ``{"type": "closed", "code": C}`` once closed, ``{"type": "timeout"}``."""
    try:
        raw = await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed as closed:
        return {"type": "closed", "code": closed.rcvd.code if closed.rcvd else None}
    except TimeoutError:
        return {"type": "timeout"}
    return dict(json.loads(raw))


async def until(ws: ClientConnection, types: set[str], timeout: float) -> Result:
    """Frames until one of ``types``, an error, a close or the timeout; the last one read."""
    deadline = time.monotonic() + timeout
    while True:
        got = await frame(ws, max(0.01, deadline - time.monotonic()))
        if got["type"] in types | {"error", "closed", "timeout"}:
            return got
        if time.monotonic() >= deadline:
            return {"type": "timeout"}


async def join(port: int, name: str, src: str = "127.0.0.1", timeout: float = 10.0) -> tuple[ClientConnection, Result]:
    ws = await connect(port, src, timeout)
    hello = await until(ws, {"hello"}, timeout)
    if hello["type"] != "hello":
        return ws, hello
    await ws.send(json.dumps({"type": "join", "name": name}))
    return ws, await until(ws, {"welcome"}, timeout)


def drop(ws: ClientConnection) -> None:
    """End the connection without a close frame, as a lost network does."""
    ws.transport.abort()


def _what(frame_: Result) -> str:
    """A frame as the table shows it: the type, an error's code, a close's code."""
    if frame_["type"] == "error":
        return f"error {frame_.get('code')}"
    if frame_["type"] == "closed":
        return f"close {frame_.get('code')}"
    return str(frame_["type"])


# --- the attacks ------------------------------------------------------------------------------------


@dataclass
class Target:
    """One running tracker under attack; ``restart`` stops it, runs a step on its data dir, starts it again."""

    options: ServerOptions
    sizes: Sizes
    server: Server = field(init=False)

    def __post_init__(self) -> None:
        self.server = start(self.options)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def data_dir(self) -> Path:
        return self.options.data_dir

    def watch(self) -> Watch:
        return Watch(self.server.pid)

    def restart(self, between: Callable[[], object]) -> None:
        self.server.stop()
        between()
        self.server = start(self.options)


def start(options: ServerOptions, attempts: int = 3) -> Server:
    """A ready tracker; a port taken between choosing and binding it (it happens) is chosen again."""
    for attempt in range(attempts):
        server = Server(options)
        try:
            server.wait_ready(timeout=180.0)  # a tracker scans a long chat.log at start
            return server
        except RuntimeError:
            server.stop()
            if "address already in use" not in server.output() or attempt == attempts - 1:
                raise
    raise RuntimeError("unreachable")


async def body_flood(t: Target, path: str, megabytes: int) -> Result:
    """A ``megabytes`` JSON body with no credentials, streamed; answered when, and for how much."""
    cost = t.watch()
    reader, writer = await asyncio.open_connection("127.0.0.1", t.port)
    started = time.monotonic()
    total = megabytes * MB
    head = {"Content-Type": "application/json", "Content-Length": str(total), "Connection": "close"}
    writer.write(_head("POST", path, t.port, head))
    sent = 0

    async def send() -> None:
        nonlocal sent
        chunk = b'{"name":"' + b"a" * (64 * 1024 - 9)
        with contextlib.suppress(ConnectionError, OSError):
            while sent < total:
                writer.write(chunk[: total - sent])
                await writer.drain()
                sent += min(len(chunk), total - sent)

    sender = asyncio.create_task(send())
    answer = await _read_answer(reader, started, t.sizes.attack_timeout / 2)
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sender
    writer.close()
    await asyncio.sleep(1.0)
    return {
        "status": answer.status,
        "outcome": answer.outcome,
        "seconds": round(answer.seconds, 2),
        "sent_mb": round(sent / MB, 1),
        **cost.finish(),
    }


async def slow_body(t: Target) -> Result:
    """Headers at once, then one body byte a second: how long the socket stays open (capped)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", t.port)
    started = time.monotonic()
    # A kick's size: the trickle, not a body limit, is what the tracker must notice
    head = {"Content-Type": "application/json", "Content-Length": "2000", "Connection": "close"}
    writer.write(_head("POST", "/admin/kick", t.port, head) + b"{")
    reading = asyncio.create_task(_read_answer(reader, started, t.sizes.slow_body_cap + 5))
    with contextlib.suppress(ConnectionError, OSError):
        while not reading.done() and time.monotonic() - started < t.sizes.slow_body_cap:
            await asyncio.sleep(1.0)
            writer.write(b" ")
            await writer.drain()
    open_ = not reading.done()
    reading.cancel()
    answer = await reading if reading.done() and not reading.cancelled() else None
    writer.close()
    seconds = round(time.monotonic() - started, 1)
    return {"still_open": open_, "seconds": seconds, "status": answer.status if answer else None}


async def attack_bodies(t: Target) -> Result:
    return {"body": await body_flood(t, "/admin/kick", t.sizes.body_mb), "slow": await slow_body(t)}


async def attack_body_moderation_off(t: Target) -> Result:
    return await body_flood(t, "/admin/kick", t.sizes.body_off_mb)


async def abandon(port: int, headers: dict[str, str], path: str = "/members", wait_for_status: bool = False) -> bool:
    """Open, send one request, close without reading (or once the status line is in: a handshake is
    then accepted, and its password checked): the guess an attacker never waits for."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    except (OSError, TimeoutError):
        return False
    writer.write(_head("GET", path, port, headers))
    with contextlib.suppress(ConnectionError, OSError, TimeoutError):
        await writer.drain()
        if wait_for_status:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            with contextlib.suppress(TimeoutError):  # the tracker's first frame: its verdict, if it gives one soon
                await asyncio.wait_for(reader.read(1), 0.2)
    writer.close()
    return True


async def bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def attack_wrong_passwords(t: Target) -> Result:
    """Many wrong-password GET /members, abandoned; RSS then and later; the right password afterwards."""
    s = t.sizes
    cost = t.watch()
    started = time.monotonic()
    wrong = _auth("not-the-password")
    sent = await bounded([lambda: abandon(t.port, wrong) for _ in range(s.wrong_passwords)], 100)
    send_seconds = round(time.monotonic() - started, 1)
    rss_sent = _mb(memory(t.server.pid)[0])
    await asyncio.sleep(s.settle_seconds)
    result = {**cost.finish(), "sent": sum(sent), "send_seconds": send_seconds, "rss_sent_mb": rss_sent}
    same = await request(t.port, "/members", headers=_auth(PASSWORD), timeout=s.step_timeout)
    other = await request(t.port, "/members", headers=_auth(PASSWORD), src="127.0.0.2", timeout=s.step_timeout)
    result["same"] = _answer(same)
    result["other"] = _answer(other)
    return result


def _answer(answer: Answer) -> Result:
    return {
        "status": answer.status,
        "outcome": answer.outcome,
        "seconds": round(answer.seconds, 2),
        "retry_after": answer.headers.get("retry-after"),
    }


async def attack_ws_wrong_passwords(t: Target) -> Result:
    """Wrong-password /ws handshakes, each closed on its 101 (as many open at once as one address may
    hold), then the right one from the same address."""
    wrong = _upgrade(password="not-the-password")
    await bounded(
        [lambda: abandon(t.port, wrong, "/ws", wait_for_status=True) for _ in range(t.sizes.ws_wrong)], ONE_ADDRESS
    )
    started = time.monotonic()
    try:
        ws = await connect(t.port, timeout=t.sizes.step_timeout)
        got = await until(ws, {"hello"}, t.sizes.step_timeout)
        await ws.close()
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        got = {"type": "refused", "code": str(exc)[:60]}
    authenticated = got.get("authenticated")
    return {"right": _what(got), "authenticated": authenticated, "seconds": round(time.monotonic() - started, 2)}


def filler_lines(first_seq: int, count: int, text_chars: int = 420) -> Iterator[bytes]:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    text = ("x" * text_chars).encode()
    for seq in range(first_seq, first_seq + count):
        yield b"%d %s msg filler %s\n" % (seq, ts.encode(), text)


def append_events(chat_log: Path, count: int) -> int:
    """``count`` message lines after chat.log's last seq, written directly; the new last seq."""
    last = 0
    with chat_log.open("rb") as log:
        for line in log:
            if line.strip():
                last = int(line.split(b" ", 1)[0])
    with chat_log.open("ab") as log:
        batch: list[bytes] = []
        for line in filler_lines(last + 1, count):
            batch.append(line)
            if len(batch) >= 10_000:
                log.write(b"".join(batch))
                batch.clear()
        log.write(b"".join(batch))
    return last + count


async def resume(port: int, token: str, epoch: str, after: int, timeout: float) -> Result:
    """One resume: the ``resumed`` frame (or the refusal), then the replay read to its end."""
    started = time.monotonic()
    try:
        ws = await connect(port, timeout=timeout)
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        return {"answer": f"refused {str(exc)[:40]}", "seconds": round(time.monotonic() - started, 2)}
    await until(ws, {"hello"}, timeout)
    await ws.send(json.dumps({"type": "resume", "token": token, "epoch": epoch, "after": after}))
    got = await until(ws, {"resumed"}, timeout)
    answered = round(time.monotonic() - started, 2)
    replayed, ended = 0, "complete"
    if got["type"] == "resumed":
        deadline = time.monotonic() + timeout
        for _ in range(int(got.get("replayed") or 0)):
            event = await frame(ws, max(0.01, deadline - time.monotonic()))
            if event["type"] in ("closed", "timeout", "error"):
                ended = _what(event)  # replaced by a parallel resume, or the replay stalled
                break
            replayed += 1
    drop(ws)  # a lost connection: the session stays away, as the resumes left it
    return {
        "answer": _what(got),
        "seconds": answered,
        "replayed": got.get("replayed"),
        "read": replayed,
        "replay_ended": ended,
        "gone": got.get("gone"),
        "token": got.get("token"),
        "all_seconds": round(time.monotonic() - started, 2),
    }


async def attack_resume(t: Target) -> Result:
    """A member who joined at seq 2 resumes after ``resume_events`` events: 1, then 4 at once."""
    s = t.sizes
    ws, welcome = await join(t.port, "victim", timeout=s.step_timeout)
    if welcome["type"] != "welcome":
        return {"error": f"join: {_what(welcome)}"}
    drop(ws)  # the member is away: lost, not left (the client cannot answer a close while the tracker restarts)
    await asyncio.sleep(
        0.3
    )  # not a synchronisation: lets the tracker see the loss before SIGTERM, so it waits for no close
    t.restart(lambda: append_events(t.data_dir / "chat.log", s.resume_events))
    token, epoch, after = str(welcome["token"]), str(welcome["epoch"]), int(welcome["seq"])
    cost = t.watch()
    one = await resume(t.port, token, epoch, after, s.step_timeout * 6)
    result: Result = {"joined_at": after, "one": one, "one_cost": cost.finish()}
    token = str(one.get("token") or token)  # a rotating tracker's latest token
    cost = t.watch()
    four = await asyncio.gather(*(resume(t.port, token, epoch, after, s.step_timeout * 6) for _ in range(4)))
    result["four"] = [r["answer"] for r in four]
    result["four_cost"] = cost.finish()
    return result


async def log_page(t: Target, after: int, rounds: int = 5) -> Result:
    times, statuses = [], []
    for _ in range(rounds):
        answer = await request(
            t.port, f"/log?after={after}&limit=1", headers=_auth(PASSWORD), timeout=t.sizes.step_timeout * 3
        )
        times.append(answer.seconds)
        statuses.append(answer.status)
    return {"median_seconds": round(statistics.median(times), 4), "statuses": sorted(set(map(str, statuses)))}


def write_log(data_dir: Path, lines: int) -> None:
    """A chat.log of a start line and ``lines - 1`` messages, before the tracker starts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    with (data_dir / "chat.log").open("wb") as log:
        log.write(f"1 {ts} start - tracker bench\n".encode())
        batch: list[bytes] = []
        for line in filler_lines(2, lines - 1, 60):
            batch.append(line)
            if len(batch) >= 10_000:
                log.write(b"".join(batch))
                batch.clear()
        log.write(b"".join(batch))


async def attack_log_plain(t: Target) -> Result:
    return await log_page(t, t.sizes.gz_lines - 10)


async def attack_log_gz(t: Target) -> Result:
    """The tracker rotates and gzips the written chat.log itself (one join is due to rotate), then pages."""
    ws, welcome = await join(t.port, "rotator", timeout=t.sizes.step_timeout)
    await ws.close()
    deadline = time.monotonic() + t.sizes.step_timeout * 6
    while time.monotonic() < deadline:
        segments = sorted(p.name for p in t.data_dir.glob("chat.log.*"))
        if segments and all(name.endswith(".gz") for name in segments):
            break
        await asyncio.sleep(0.1)
    result = await log_page(t, t.sizes.gz_lines - 10)
    result["segments"] = sorted(p.name for p in t.data_dir.glob("chat.log.*"))[:3]
    result["join"] = _what(welcome)
    return result


async def guess(port: int, src: str, timeout: float) -> Answer:
    return await request(port, "/members", headers=_auth("wrong-guess"), src=src, timeout=timeout)


async def attack_guesses(t: Target) -> Result:
    """8 wrong guesses from one address one after another; then one from each of many addresses at once."""
    s = t.sizes
    started = time.monotonic()
    first = [await guess(t.port, "127.0.0.3", s.step_timeout) for _ in range(s.one_address_guesses)]
    one_address = round(time.monotonic() - started, 1)
    started = time.monotonic()
    jobs = [functools.partial(guess, t.port, address(i, 4), s.step_timeout) for i in range(s.guess_addresses)]
    answers: list[Answer] = await bounded(jobs, 100)
    statuses = Counter(str(a.status if a.status is not None else a.outcome) for a in answers)
    return {
        "one_address_seconds": one_address,
        "one_address": s.one_address_guesses,
        "one_address_statuses": dict(Counter(str(a.status if a.status is not None else a.outcome) for a in first)),
        "many_seconds": round(time.monotonic() - started, 1),
        "statuses": dict(statuses),
        "delayed": sum(1 for a in answers if a.seconds > 0.5),
    }


async def attack_token_reuse(t: Target) -> Result:
    """A resume with the welcome's token takes the session over; then the same (old) token again."""
    s = t.sizes
    owner, welcome = await join(t.port, "owner", timeout=s.step_timeout)
    if welcome["type"] != "welcome":
        return {"error": f"join: {_what(welcome)}"}
    token, epoch, after = str(welcome["token"]), str(welcome["epoch"]), int(welcome["seq"])
    thief = await connect(t.port, "127.0.0.5", s.step_timeout)
    await until(thief, {"hello"}, s.step_timeout)
    await thief.send(json.dumps({"type": "resume", "token": token, "epoch": epoch, "after": after}))
    first = await until(thief, {"resumed"}, s.step_timeout)
    owner_got = await until(owner, set(), 2.0)
    again = await resume(t.port, token, epoch, after, s.step_timeout)
    rotated = first.get("token") not in (None, token)
    await thief.close()
    await owner.close()
    return {"first": _what(first), "owner": _what(owner_got), "old_again": again["answer"], "rotated": rotated}


async def attack_rebinding(t: Target) -> Result:
    """A page of evil.example (DNS rebound to the tracker) opens /ws, and loads /."""
    host = f"evil.example:{t.port}"
    origin = f"http://{host}"
    ws = await request(t.port, "/ws", headers=_upgrade(origin, host), timeout=t.sizes.step_timeout)
    page = await request(t.port, "/", headers={"Host": host}, timeout=t.sizes.step_timeout)
    return {"ws": ws.status, "page": page.status}


async def attack_docs(t: Target) -> Result:
    docs = await request(t.port, "/docs", timeout=t.sizes.step_timeout)
    text = docs.body.decode(errors="replace")
    third_party = sorted(set(re.findall(r"""(?:src|href)=["'](https?://[^/"']+)""", text)))
    schema = await request(t.port, "/openapi.json", timeout=t.sizes.step_timeout)
    admin_paths = 0
    if schema.status == 200:
        with contextlib.suppress(ValueError):
            admin_paths = sum(1 for p in json.loads(schema.body).get("paths", {}) if p.startswith("/admin"))
    return {"docs": docs.status, "third_party": third_party, "schema": schema.status, "admin_paths": admin_paths}


def warnings(t: Target) -> int:
    return sum(1 for line in t.server.output().splitlines() if "WARNING" in line)


async def attack_origins(t: Target) -> Result:
    """Refused-Origin handshakes from one address: the WARNING lines they write."""
    before = warnings(t)
    started = time.monotonic()
    headers = _upgrade("http://attacker.example")
    answers: list[Answer] = await bounded(
        [lambda: request(t.port, "/ws", headers=headers, timeout=t.sizes.step_timeout) for _ in range(t.sizes.origins)],
        ONE_ADDRESS,
    )
    seconds = round(time.monotonic() - started, 2)
    await asyncio.sleep(0.5)
    statuses = Counter(str(a.status if a.status is not None else a.outcome) for a in answers)
    return {"warnings": warnings(t) - before, "seconds": seconds, "statuses": dict(statuses)}


async def cycle(port: int, name: str, timeout: float) -> str:
    """One join and leave; what it got (``bye``, or the refusal)."""
    try:
        ws, welcome = await join(port, name, "127.0.0.6", timeout)
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        return f"refused {type(exc).__name__}"
    if welcome["type"] != "welcome":
        await ws.close()
        return _what(welcome)
    await ws.send(json.dumps({"type": "leave"}))
    got = await until(ws, {"bye"}, timeout)
    await ws.close()
    return _what(got)


def log_lines(t: Target) -> int:
    with (t.data_dir / "chat.log").open("rb") as log:
        return sum(1 for _ in log)


async def count_frames(ws: ClientConnection, counter: list[int]) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for _ in ws:
            counter[0] += 1


async def attack_churn(t: Target) -> Result:
    """Join+leave cycles from one address, watched by a member elsewhere; then one ``who`` of many."""
    s = t.sizes
    watcher, _welcome = await join(t.port, "watcher", "127.0.0.7", s.step_timeout)
    frames = [0]
    counting = asyncio.create_task(count_frames(watcher, frames))
    lines = log_lines(t)
    started = time.monotonic()
    got = await bounded(
        [functools.partial(cycle, t.port, f"cycler{i}", s.step_timeout) for i in range(s.join_cycles)], 10
    )
    seconds = round(time.monotonic() - started, 2)
    await asyncio.sleep(1.0)
    result: Result = {"seconds": seconds, "answers": dict(Counter(got)), "log_lines": log_lines(t) - lines}
    result["watcher_frames"] = frames[0]
    counting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await counting
    result["who"] = await who_cost(t, watcher)
    await watcher.close()
    return result


async def who_cost(t: Target, watcher: ClientConnection) -> Result:
    """``who_members`` members from their own addresses; the watcher's ``who``: bytes and round trip."""
    s = t.sizes
    members: list[ClientConnection] = []
    drains: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        with contextlib.suppress(OSError, TimeoutError, asyncio.TimeoutError, websockets.WebSocketException):
            ws, _welcome = await join(t.port, f"m{i}", address(i, 8), s.step_timeout * 3)
            members.append(ws)
            drains.append(asyncio.create_task(count_frames(ws, [0])))

    await bounded([functools.partial(one, i) for i in range(s.who_members)], 20)
    times, size = [], 0
    for _ in range(3):
        started = time.monotonic()
        await watcher.send(json.dumps({"type": "who"}))
        while True:
            try:
                raw = await asyncio.wait_for(watcher.recv(), s.step_timeout)
            except (TimeoutError, websockets.ConnectionClosed):
                return {"members": len(members), "error": "no answer to who"}
            if '"type":"members"' in str(raw)[:40]:
                break
        times.append(time.monotonic() - started)
        size = len(raw)
    for task in drains:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in members), return_exceptions=True)
    return {"members": len(members), "bytes": size, "ms": round(statistics.median(times) * 1000, 1)}


async def attack_room_json(t: Target) -> Result:
    """13: a member in the room, a restart (room.json written at shutdown): the file's mode."""
    ws, welcome = await join(t.port, "keeper", timeout=t.sizes.step_timeout)
    drop(ws)
    await asyncio.sleep(0.3)  # as in attack_resume: the restart then waits for no close handshake
    t.restart(lambda: None)
    path = t.data_dir / "room.json"
    return {"join": _what(welcome), "mode": f"{path.stat().st_mode & 0o777:04o}" if path.exists() else None}


async def attack_ban_shown(t: Target) -> Result:
    """An address ban: is the banned address in /log (what every member sees)?"""
    banned = "127.9.9.9"
    answer = await request(
        t.port,
        "/admin/ban",
        method="POST",
        headers={**_auth(ADMIN_PASSWORD), "Content-Type": "application/json"},
        body=json.dumps({"address": banned}).encode(),
        timeout=t.sizes.step_timeout,
    )
    log = await request(t.port, "/log?lines=5", headers=_auth(PASSWORD), timeout=t.sizes.step_timeout)
    return {"ban": answer.status, "in_log": banned in log.body.decode(errors="replace")}


def tls_flags(plan: Plan, kind: str) -> Result:
    """12: does ``chat-tracker --help`` offer --tls-cert/--tls-key (the tracker serving https and wss)?"""
    import subprocess
    import sys

    from .baseline import BOOTSTRAP, PACKAGES

    env = dict(os.environ)
    head = ["-m", "chat_tracker"]
    if kind == "baseline" and plan.baseline_tree is not None:
        head = ["-c", BOOTSTRAP, str(plan.baseline_tree)]
        paths = [str(plan.baseline_tree / package) for package in PACKAGES]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [*paths, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, *head, "--help"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    return {"tls": "--tls-cert" in done.stdout and "--tls-key" in done.stdout}


# --- the table ----------------------------------------------------------------------------------------


def _status(answer: Result) -> str:
    status = answer.get("status")
    text = str(status) if status is not None else str(answer.get("outcome"))
    if answer.get("retry_after"):
        text += f" (Retry-After {answer['retry_after']})"
    return text


def describe_body(r: Result) -> str:
    body, slow = r["body"], r["slow"]
    opened = "still open" if slow["still_open"] else f"closed ({slow['status'] or 'no answer'})"
    return (
        f"{_status(body)} after {body['seconds']} s ({body['sent_mb']} MB written); {_rss(body)}; "
        f"slow body: {opened} after {slow['seconds']} s"
    )


def describe_body_off(r: Result) -> str:
    return f"{_status(r)} after {r['seconds']} s ({r['sent_mb']} MB written); {_rss(r)}"


def describe_wrong(r: Result) -> str:
    return (
        f"sent in {r['send_seconds']} s; RSS {r['rss_before_mb']:.0f} -> {r['rss_sent_mb']:.0f}, "
        f"{r['rss_after_mb']:.0f} MB after the wait; right password same address: {_status(r['same'])} "
        f"in {r['same']['seconds']} s, other address: {_status(r['other'])} in {r['other']['seconds']} s; "
        f"{r.get('stop_lines', '?')} log lines at stop"
    )


def describe_ws_wrong(r: Result) -> str:
    return f"next right handshake, same address: {r['right']} (authenticated {r['authenticated']}) in {r['seconds']} s"


def describe_resume(r: Result) -> str:
    one, four = r["one"], [str(answer) for answer in r["four"]]
    gone = f" gone={one['gone']}" if one.get("gone") else ""
    costs = f"peak RSS {r['one_cost']['rss_before_mb']:.0f} -> {r['one_cost']['rss_peak_mb']:.0f} MB"
    answers = ", ".join(f"{n}x {a}" for a, n in Counter(four).items())
    return (
        f"1 resume: {one['answer']} replayed={one.get('replayed')}{gone} in {one['seconds']} s, {costs}; "
        f"4 at once ({answers}): peak RSS {r['four_cost']['rss_before_mb']:.0f} -> "
        f"{r['four_cost']['rss_peak_mb']:.0f} MB"
    )


def describe_log(r: Result) -> str:
    gz, plain = r["gz"]["median_seconds"], r["plain"]["median_seconds"]
    ratio = f" ({gz / plain:.1f}x)" if plain else ""
    return f"in .gz: {gz:.3f} s; in chat.log: {plain:.3f} s{ratio} (median of 5, statuses {r['gz']['statuses']})"


def describe_guesses(r: Result) -> str:
    one = _counts(r["one_address_statuses"])
    return (
        f"{r.get('one_address', 8)} from one address: {r['one_address_seconds']} s ({one}); "
        f"many addresses: {r['many_seconds']} s, {_counts(r['statuses'])}, {r['delayed']} delayed > 0.5 s"
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n}x {what}" for what, n in sorted(counts.items()))


def describe_token(r: Result) -> str:
    return (
        f"welcome's token from elsewhere: {r['first']} (owner: {r['owner']}); the same token again: "
        f"{r['old_again']}; token rotated: {'yes' if r['rotated'] else 'no'}"
    )


def describe_rebinding(r: Result) -> str:
    return f"/ws handshake: {r['ws']}; page /: {r['page']}"


def describe_docs(r: Result) -> str:
    third = ", ".join(r["third_party"]) or "none"
    return (
        f"/docs {r['docs']}, third-party origins: {third}; /openapi.json {r['schema']}: {r['admin_paths']} /admin paths"
    )


def describe_origins(r: Result) -> str:
    statuses = ", ".join(f"{n}x {s}" for s, n in sorted(r["statuses"].items()))
    return f"{r['warnings']} WARNING lines in {r['seconds']} s ({statuses})"


def describe_churn(r: Result) -> str:
    answers = ", ".join(f"{n}x {a}" for a, n in sorted(r["answers"].items()))
    who = r["who"]
    who_text = (
        f"`who` of {who['members']} members: {who['bytes'] / 1024:.0f} KiB, {who['ms']} ms round trip"
        if "bytes" in who
        else f"`who`: {who.get('error')}"
    )
    return (
        f"{r['seconds']} s ({answers}); {r['log_lines']} chat.log lines, {r['watcher_frames']} frames "
        f"on a watcher; {who_text}"
    )


def describe_checks(r: Result) -> str:
    return (
        f"room.json mode {r['room'].get('mode')}; address ban {r['ban']['ban']}, banned address in "
        f"/log: {'yes' if r['ban']['in_log'] else 'no'}"
    )


def describe_tls(r: Result) -> str:
    return "--tls-cert/--tls-key offered" if r["tls"] else "no TLS flags"


@dataclass(frozen=True)
class Stage:
    """One tracker process of an attack: its flags and environment, what is written before it starts."""

    key: str
    run: Callable[[Target], Awaitable[Result]]
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Path, Sizes], None] | None = None


@dataclass(frozen=True)
class Attack:
    number: str
    title: str
    size: Callable[[Sizes], str]
    describe: Callable[[Result], str]
    stages: tuple[Stage, ...]
    check: Callable[[Plan, str], Result] | None = None  # instead of stages: a look at the program, no server


MODERATION = {"TRACKER_ADMIN_PASSWORD": ADMIN_PASSWORD}
LONG_GRACE = {"TRACKER_RESUME_GRACE": "600"}
# The last --history-size events are served from memory: a small ring makes /log read the file
SMALL_RING = ("--history-size", "1")


def _written_log(data_dir: Path, sizes: Sizes) -> None:
    write_log(data_dir, sizes.gz_lines)


ATTACKS = (
    Attack(
        "1",
        "unauthenticated JSON body to /admin/kick (moderation on); a slow body",
        lambda s: f"{s.body_mb} MB; 1 byte/s for up to {s.slow_body_cap:g} s",
        describe_body,
        (Stage("body", attack_bodies, env=MODERATION),),
    ),
    Attack(
        "1",
        "the same with moderation off",
        lambda s: f"{s.body_off_mb} MB",
        describe_body_off,
        (Stage("body", attack_body_moderation_off),),
    ),
    Attack(
        "2",
        "wrong-password GET /members, sent and abandoned",
        lambda s: f"{s.wrong_passwords:,}; RSS again {s.settle_seconds:g} s later",
        describe_wrong,
        (Stage("wrong", attack_wrong_passwords),),
    ),
    Attack(
        "2",
        "wrong-password /ws handshakes (JSON dialect), each closed on its 101",
        lambda s: f"{s.ws_wrong:,}",
        describe_ws_wrong,
        (Stage("ws", attack_ws_wrong_passwords),),
    ),
    Attack(
        "3",
        "resume of a member who joined at seq 2",
        lambda s: f"{s.resume_events:,} events after it (about {s.resume_events * 440 // MB} MB)",
        describe_resume,
        (Stage("resume", attack_resume, env=LONG_GRACE),),
    ),
    Attack(
        "4",
        "/log?after=N-10&limit=1 inside a .gz segment (--compress) vs plain chat.log (--history-size 1)",
        lambda s: f"{s.gz_lines:,} lines",
        describe_log,
        (
            Stage("gz", attack_log_gz, ("--compress", "--rotate-bytes", "64K", *SMALL_RING), prepare=_written_log),
            Stage("plain", attack_log_plain, SMALL_RING, prepare=_written_log),
        ),
    ),
    Attack(
        "5",
        "wrong guesses, one address; then one from each of many addresses",
        lambda s: f"{s.one_address_guesses}; {s.guess_addresses:,} addresses",
        describe_guesses,
        (Stage("guesses", attack_guesses),),
    ),
    Attack("6", "token reuse after a resume", lambda s: "1", describe_token, (Stage("token", attack_token_reuse),)),
    Attack(
        "7",
        "DNS rebinding: Host and Origin evil.example:PORT",
        lambda s: "1",
        describe_rebinding,
        (Stage("rebinding", attack_rebinding),),
    ),
    Attack(
        "8",
        "/docs and /openapi.json (moderation on)",
        lambda s: "1",
        describe_docs,
        (Stage("docs", attack_docs, env=MODERATION),),
    ),
    Attack(
        "9",
        "refused-Origin handshakes from one address",
        lambda s: f"{s.origins:,}",
        describe_origins,
        (Stage("origins", attack_origins),),
    ),
    Attack(
        "10",
        "join+leave cycles from one address; one `who`",
        lambda s: f"{s.join_cycles:,} cycles; `who` of {s.who_members:,}",
        describe_churn,
        (Stage("churn", attack_churn),),
    ),
    Attack("12", "TLS served by the tracker itself", lambda s: "-", describe_tls, (), check=tls_flags),
    Attack(
        "13",
        "room.json's mode; an address ban in /log",
        lambda s: "1",
        describe_checks,
        (Stage("room", attack_room_json, env=LONG_GRACE), Stage("ban", attack_ban_shown, env=MODERATION)),
    ),
)


# --- the run ------------------------------------------------------------------------------------------

NOTE = (
    "11 (Redis's bind, protected-mode and password in the scale profile) is configuration of the "
    "Compose file, not of a tracker process: not measured here."
)


def measure(plan: Plan, log: Callable[[str], None], sizes: Sizes, numbers: tuple[str, ...] = ()) -> list[Result]:
    """Every attack (or those numbered ``numbers``) against every tracker kind of the plan, the baseline first."""
    kinds = [kind for kind in ("baseline", "tracker") if kind in plan.servers]
    unknown = set(numbers) - {attack.number for attack in ATTACKS}
    if unknown:
        raise ValueError(f"--attacks: no attack numbered {', '.join(sorted(unknown))}")
    root = Path(tempfile.mkdtemp(prefix="chat-bench-security-"))
    rows: list[Result] = []
    try:
        for attack in (a for a in ATTACKS if not numbers or a.number in numbers):
            for kind in kinds:
                log(f" security {attack.number} ({attack.title}): {plan.label(kind)}")
                result = run_attack(plan, attack, kind, root, sizes)
                rows.append(_row(plan, attack, kind, sizes, result))
                log(f"   {rows[-1]['summary']}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


def _row(plan: Plan, attack: Attack, kind: str, sizes: Sizes, result: Result) -> Result:
    try:
        summary = f"error: {result['error']}" if "error" in result else attack.describe(result)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        summary = f"incomplete ({type(exc).__name__} {exc}): {json.dumps(result)[:300]}"
    return {
        "workload": "security",
        "server": kind,
        "label": plan.label(kind),
        "attack": attack.number,
        "title": attack.title,
        "size": attack.size(sizes),
        "result": result,
        "summary": summary,
    }


def run_attack(plan: Plan, attack: Attack, kind: str, root: Path, sizes: Sizes) -> Result:
    if attack.check is not None:
        try:
            return attack.check(plan, kind)
        except (OSError, ValueError) as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
    result: Result = {}
    for stage in attack.stages:
        result[stage.key] = run_stage(plan, stage, kind, root, sizes)
        if "error" in result[stage.key]:
            return {"error": f"{stage.key}: {result[stage.key]['error']}", **result}
    return result[attack.stages[0].key] if len(attack.stages) == 1 else result


def run_stage(plan: Plan, stage: Stage, kind: str, root: Path, sizes: Sizes) -> Result:
    """One fresh tracker, the stage's attack under the attack timeout, the tracker stopped and its dir removed."""
    data_dir = root / f"{kind}-{stage.key}"
    shutil.rmtree(data_dir, ignore_errors=True)
    if stage.prepare is not None:
        stage.prepare(data_dir, sizes)
    options = ServerOptions(
        kind=kind,
        data_dir=data_dir,
        log_dir=plan.results / "logs",
        extra_args=stage.args,
        extra_env=stage.env,
        source=plan.baseline_tree,
        crowd=False,
    )
    try:
        target = Target(options, sizes)
    except (RuntimeError, OSError) as exc:
        return {"error": f"start: {exc}"[:300]}
    try:
        result = asyncio.run(asyncio.wait_for(stage.run(target), sizes.attack_timeout))
    except TimeoutError:
        result = {"error": f"not done in {sizes.attack_timeout:g} s"}
    except (OSError, RuntimeError, ValueError, KeyError, websockets.WebSocketException) as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        lines = len(target.server.output().splitlines())
        target.server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    result["stop_lines"] = len(target.server.output().splitlines()) - lines
    return result


def table(plan: Plan, rows: list[Result], command: str) -> str:
    kinds = [kind for kind in ("baseline", "tracker") if any(r["server"] == kind for r in rows)]
    names = {"baseline": f"before ({plan.label('baseline')})", "tracker": "after (tracker, this tree)"}
    out = [
        "## Security: the attacks of issue 22, before and after",
        "",
        f"`{command}`, every tracker fresh per attack, loopback only; RSS is VmRSS before -> peak -> after.",
        "",
        "| # | attack | size | " + " | ".join(names[k] for k in kinds) + " |",
        "|---|---|---|" + "---|" * len(kinds),
    ]
    seen: list[tuple[str, str]] = []
    for row in rows:
        if (row["attack"], row["title"]) in seen:
            continue
        seen.append((row["attack"], row["title"]))
        cells = [_cell(rows, row, kind) for kind in kinds]
        out.append(f"| {row['attack']} | {row['title']} | {row['size']} | " + " | ".join(cells) + " |")
    out += ["", NOTE, ""]
    return "\n".join(out)


def _cell(rows: list[Result], like: Result, kind: str) -> str:
    for row in rows:
        if row["server"] == kind and (row["attack"], row["title"]) == (like["attack"], like["title"]):
            return " ".join(str(row["summary"]).replace("|", "/").split())
    return "-"


def write(plan: Plan, rows: list[Result], command: str, sizes: Sizes) -> Path:
    """security.md (also printed) and security.json in the results directory."""
    plan.results.mkdir(parents=True, exist_ok=True)
    text = table(plan, rows, command)
    path = plan.results / "security.md"
    path.write_text(text)
    (plan.results / "security.json").write_text(
        json.dumps({"command": command, "rows": rows, "sizes": dataclasses.asdict(sizes)}, indent=1, default=str)
    )
    print(text, flush=True)
    return path
