"""A real redis-server for tests, and stream entries written in the replicas' format.

``RedisServer`` runs ``redis-server`` on a free loopback port in its own directory,
with the durability the tracker requires (AOF, ``appendfsync always``, no RDB), and
can be stopped, killed, started again from its AOF, or wiped. Every start waits for
a PING, with a deadline. ``add_events`` writes room events as the replicas' Lua
script does (``<seq>-0``, fields ``t`` and ``e``; the ``room`` hash's epoch and seq),
so the archiver is tested without a replica.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from chat_tracker.core.events import Event, EventKind
from chat_tracker.journal.redis_keys import DEFAULT_PREFIX, Keys, body_of
from support.environment import require
from support.timing import UNIT

POLL_SECONDS = 0.02  # how often a deadline loop looks again
BIND_FAILED = "Address already in use"  # in redis-server's log when its port was taken


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """One redis-server process (or none, between a stop and a start) over one directory."""

    executable: str
    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    appendfsync: str = "always"  # "everysec": a Redis that may lose the last second (--redis-volatile)
    requirepass: str | None = None  # a Redis that asks for a password, as the scale profile's does
    unixsocket: Path | None = None  # a Redis that also listens there

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=UNIT, password=self.requirepass)

    def start(self) -> None:
        """Start (again, from the directory's AOF if there is one) and wait until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        command += ["--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "", "--daemonize", "no"]
        command += ["--logfile", str(self.directory / "redis.log")]
        if self.requirepass is not None:
            command += ["--requirepass", self.requirepass]
        if self.unixsocket is not None:
            command += ["--unixsocket", str(self.unixsocket), "--unixsocketperm", "700"]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self._wait_ready()

    def first_start(self, attempts: int = 3) -> None:
        """``start`` on a free port: another process may bind the port between ``free_port`` and Redis's own
        bind (a client's ephemeral port, another test's server), and then a new port is tried."""
        for attempt in range(attempts):
            try:
                self.start()
                return
            except AssertionError as error:
                if BIND_FAILED not in str(error) or attempt == attempts - 1:
                    raise
                self.port = free_port()

    def _wait_ready(self, timeout: float = 2 * UNIT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.process.returncode}: {self._log()}")
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except (redis.ConnectionError, redis.BusyLoadingError):
                pass
            time.sleep(POLL_SECONDS)
        raise AssertionError(f"redis-server did not answer PING within {timeout} s: {self._log()}")

    def _log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        """SIGTERM (Redis fsyncs its AOF and exits) and wait."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: what ``appendfsync always`` acknowledged survives."""
        self._end(signal.SIGKILL)

    def _end(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=2 * UNIT)
        self.process = None

    def wipe(self) -> None:
        """Stop and delete every file: the next start is an empty Redis."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def event(seq: int, text: str | None = None, kind: EventKind = EventKind.MESSAGE, name: str = "ann") -> Event:
    """A room event as a replica would append it (a message unless told otherwise)."""
    return Event(seq=seq, time=1_800_000_000.0 + seq / 1000, kind=kind, name=name, text=text or f"message {seq}")


def add_events(
    url: str,
    events: Iterable[Event],
    *,
    epoch: str = "epoch-1",
    prefix: str = DEFAULT_PREFIX,
    password: str | None = None,
) -> None:
    """XADD each event as ``<seq>-0`` with its ``t``/``e`` fields, then the room's epoch and last seq."""
    keys = Keys(prefix)
    with redis.Redis.from_url(url, password=password) as client:
        pipe = client.pipeline(transaction=True)
        last = None
        for item in events:
            pipe.xadd(keys.events, {"t": repr(item.time), "e": body_of(item)}, id=f"{item.seq}-0")
            last = item.seq
        if last is not None:
            pipe.hset(keys.room, mapping={"epoch": epoch, "seq": last})
        pipe.execute()


def add_control(url: str, seq: int, sub: int, *, prefix: str = DEFAULT_PREFIX) -> None:
    """A control entry ``<seq>-<sub>`` (a member moved to another replica): never a chat.log line."""
    with redis.Redis.from_url(url) as client:
        client.xadd(Keys(prefix).events, {"t": "0", "e": '{"c":"owner","o":1,"r":2}'}, id=f"{seq}-{sub}")


def running_redis(
    directory: Path, requirepass: str | None = None, unixsocket: Path | None = None
) -> Iterator[RedisServer]:
    """A started redis-server over ``directory``, killed when the fixture that yields from it ends.

    Without redis-server: a failure in CI (``.ci/run`` installs it), a skip elsewhere.
    """
    executable = shutil.which("redis-server")
    require(executable is not None, "redis-server is not installed (.ci/run installs it)")
    assert executable is not None
    server = RedisServer(executable, directory, requirepass=requirepass, unixsocket=unixsocket)
    server.first_start()
    yield server
    server.kill()
