"""The nemesis's cluster: replicas, an archiver on a small disk, a Redis, and one injector per fault kind.

``NemesisCluster`` runs a redis-server (AOF, ``appendfsync always``) listening on 127.0.0.1 and on
the host end of a veth; ``SLOTS`` replica slots, the last inside a network namespace at the other
end of that veth (so iptables there can cut it from Redis and only from Redis: its members still
reach it); an archiver whose data directory is a tmpfs of its own (so it can be filled to the last
byte and freed). ``inject(fault)`` and ``heal(fault)`` do what ``support.nemesis`` names; every one
of them blocks (a process start waits for its "Listening on"), so the test runs them in a thread.

Needs root (ip netns, iptables, mount), ``ip``, ``iptables`` and ``redis-server``: ``require`` fails in CI.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chat_tracker.journal.redis_keys import Keys
from support.archiver import launch_archiver
from support.disk import fill
from support.environment import require
from support.nemesis import (
    DISK_FULL,
    FREEZE_ARCHIVER,
    FREEZE_REPLICA,
    KILL_ARCHIVER,
    KILL_REPLICA,
    NETNS_SLOT,
    PARTITION_REPLICA,
    RESTART_REDIS,
    SLOTS,
    WIPE_REDIS,
    Fault,
)
from support.redis_server import RedisServer
from support.timing import UNIT
from support.tracker import CROWD_FROM_ONE_ADDRESS, PASSWORD, RunningTracker, launch_tracker, start_server, tracker_env

KEYS = Keys()
NS_HOST, NS_REPLICA = "10.232.0.1", "10.232.0.2"
RESUME_GRACE = "5"
REPLICA_FLAGS = ("--resume-grace", RESUME_GRACE, "--rate", "200", "--burst", "200")
ARCHIVE_DISK = "64m"  # the archiver's tmpfs: a whole run's chat.log, with room to spare until it is filled


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=UNIT)


def require_nemesis_tools() -> str:
    """The redis-server to run; the test fails in CI (skips elsewhere) without root or a tool."""
    require(os.geteuid() == 0, "the nemesis needs root (ip netns, iptables, mount)")
    for tool in ("ip", "iptables", "redis-server"):
        require(shutil.which(tool) is not None, f"the nemesis needs {tool}")
    executable = shutil.which("redis-server")
    assert executable is not None
    return executable


class BoundRedis(RedisServer):
    """A redis-server listening on 127.0.0.1 and on the host end of the namespace's veth."""

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [self.executable, "--port", str(self.port), "--bind", f"127.0.0.1 {NS_HOST}"]
        command += ["--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        command += ["--protected-mode", "no", "--logfile", str(self.directory / "redis.log")]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self._wait_ready()


@dataclass
class NsTracker(RunningTracker):
    """A replica inside the namespace, reached over the veth."""

    @property
    def url(self) -> str:
        return f"ws://{NS_REPLICA}:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://{NS_REPLICA}:{self.port}"


@dataclass
class Namespace:
    """A network namespace joined to this one by a veth: NS_HOST here, NS_REPLICA there."""

    name: str
    host_end: str
    ns_end: str
    cut_port: int | None = None

    @classmethod
    def create(cls, tag: str) -> Namespace:
        namespace = cls(f"nem{tag}", f"nmh{tag}", f"nmn{tag}")
        run("ip", "netns", "add", namespace.name)
        try:
            inside = ("ip", "netns", "exec", namespace.name)
            run("ip", "link", "add", namespace.host_end, "type", "veth", "peer", "name", namespace.ns_end)
            run("ip", "link", "set", namespace.ns_end, "netns", namespace.name)
            run("ip", "addr", "add", f"{NS_HOST}/24", "dev", namespace.host_end)
            run("ip", "link", "set", namespace.host_end, "up")
            run(*inside, "ip", "addr", "add", f"{NS_REPLICA}/24", "dev", namespace.ns_end)
            run(*inside, "ip", "link", "set", namespace.ns_end, "up")
            run(*inside, "ip", "link", "set", "lo", "up")
        except (subprocess.SubprocessError, OSError):
            namespace.delete()
            raise
        return namespace

    def cut(self, port: int, action: str) -> None:
        """Drop (``-A``) or let through again (``-D``) every packet to and from Redis's port: no RST, no FIN."""
        for chain, match in (("OUTPUT", "--dport"), ("INPUT", "--sport")):
            run(
                "ip", "netns", "exec", self.name, "iptables", action, chain, "-p", "tcp", match, str(port), "-j", "DROP"
            )
        self.cut_port = port if action == "-A" else None

    def delete(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_end], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)


def stable_port() -> int:
    """A free port below the ephemeral range: no outgoing connection takes it while Redis is down for a restart."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    for _attempt in range(100):
        port = rng.randrange(low // 2, low)
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.bind(("0.0.0.0", port))
            return port
    raise AssertionError("no free port below the ephemeral range")


def free_port_any() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        port: int = sock.getsockname()[1]
        return port


def healthz(url: str) -> dict[str, Any]:
    try:
        reply = httpx.get(f"{url}/healthz", timeout=UNIT / 5)
    except httpx.HTTPError:
        return {}
    body: dict[str, Any] = reply.json() if reply.status_code == 200 else {}
    return body


@dataclass
class Slot:
    """One replica's place: the replica running there now (None while killed), frozen or cut off."""

    index: int
    replica: RunningTracker | None = None
    frozen: bool = False
    cut: bool = False


@dataclass
class NemesisCluster:
    """Everything the faults act on, and the injectors."""

    root: Path
    redis: BoundRedis
    namespace: Namespace
    archive_dir: Path
    archiver_flags: tuple[str, ...]
    slots: list[Slot] = field(default_factory=list)
    archiver: RunningTracker | None = None
    archiver_frozen: bool = False
    filler: Path | None = None
    started: list[RunningTracker] = field(default_factory=list)  # every process, to kill at the end
    deferred: list[Slot] = field(default_factory=list)  # replicas to start again once Redis is back

    @classmethod
    def create(cls, root: Path, keep_in_redis: int) -> NemesisCluster:
        executable = require_nemesis_tools()
        namespace = Namespace.create(f"{os.getpid() % 100000}")
        redis_server = BoundRedis(executable, root / "redis", port=stable_port())
        cluster = cls(root, redis_server, namespace, root / "archive", ())
        cluster.archiver_flags = ("--keep-in-redis", str(keep_in_redis))
        try:
            cluster.archive_dir.mkdir(parents=True)
            run("mount", "-t", "tmpfs", "-o", f"size={ARCHIVE_DISK}", "tmpfs", str(cluster.archive_dir))
            cluster.redis.start()
            cluster.start_archiver()
            cluster.slots = [Slot(index) for index in range(SLOTS)]
            for slot in cluster.slots:
                cluster.start_replica(slot)
        except BaseException:
            cluster.close()
            raise
        return cluster

    # --- processes ------------------------------------------------------------------------------------

    def start_replica(self, slot: Slot) -> None:
        data_dir = self.root / f"replica{slot.index}"
        if slot.index == NETNS_SLOT:
            port = free_port_any()
            redis_url = f"redis://{NS_HOST}:{self.redis.port}/0"
            command = ["ip", "netns", "exec", self.namespace.name, sys.executable, "-m", "chat_tracker"]
            command += ["--host", NS_REPLICA, "--port", str(port), "--data-dir", str(data_dir)]
            command += ["--redis-url", redis_url, *REPLICA_FLAGS]
            env = tracker_env(PASSWORD, CROWD_FROM_ONE_ADDRESS)
            replica: RunningTracker = start_server(command, env, PASSWORD, data_dir, NsTracker)
        else:
            replica = launch_tracker(data_dir, "--redis-url", self.redis.url, *REPLICA_FLAGS)
        self.started.append(replica)
        slot.replica = replica

    def start_archiver(self) -> None:
        self.archiver = launch_archiver(self.redis.url, self.archive_dir, *self.archiver_flags)
        self.started.append(self.archiver)

    def usable_urls(self) -> list[str]:
        """Where a member may go: replicas running and not frozen (a balancer's health check drops a frozen one)."""
        return [s.replica.url for s in self.slots if s.replica is not None and not s.frozen]

    # --- faults ---------------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        slot = self.slots[fault.slot] if fault.slot is not None else None
        if fault.kind == KILL_REPLICA and slot is not None and slot.replica is not None:
            slot.replica.kill()
            slot.replica = None
        elif fault.kind == FREEZE_REPLICA and slot is not None and slot.replica is not None:
            os.kill(slot.replica.process.pid, signal.SIGSTOP)
            slot.frozen = True
        elif fault.kind == PARTITION_REPLICA and slot is not None:
            self.namespace.cut(self.redis.port, "-A")
            slot.cut = True
        elif fault.kind == KILL_ARCHIVER and self.archiver is not None:
            self.archiver.kill()
            self.archiver = None
        elif fault.kind == FREEZE_ARCHIVER and self.archiver is not None:
            os.kill(self.archiver.process.pid, signal.SIGSTOP)
            self.archiver_frozen = True
        elif fault.kind == DISK_FULL:
            self.filler = fill(self.archive_dir)
        elif fault.kind == RESTART_REDIS:
            self.redis.kill()
        elif fault.kind == WIPE_REDIS:
            self.redis.wipe()  # the caller quiesced the room first (see wipe_quiesced)

    def heal(self, fault: Fault) -> None:
        slot = self.slots[fault.slot] if fault.slot is not None else None
        if fault.kind == KILL_REPLICA and slot is not None and slot.replica is None:
            if self.redis.process is None:
                self.deferred.append(slot)  # a replica does not start without Redis: once it is back
            else:
                self.start_replica(slot)
        elif fault.kind == FREEZE_REPLICA and slot is not None and slot.replica is not None:
            os.kill(slot.replica.process.pid, signal.SIGCONT)
            slot.frozen = False
        elif fault.kind == PARTITION_REPLICA and slot is not None:
            self.namespace.cut(self.redis.port, "-D")
            slot.cut = False
        elif fault.kind == KILL_ARCHIVER and self.archiver is None:
            self.start_archiver()
        elif fault.kind == FREEZE_ARCHIVER and self.archiver is not None:
            os.kill(self.archiver.process.pid, signal.SIGCONT)
            self.archiver_frozen = False
        elif fault.kind == DISK_FULL and self.filler is not None:
            self.filler.unlink()
            self.filler = None
        elif fault.kind in (RESTART_REDIS, WIPE_REDIS):
            self.redis.start()
            while self.deferred:
                self.start_replica(self.deferred.pop())

    def running_replicas(self) -> list[RunningTracker]:
        return [s.replica for s in self.slots if s.replica is not None and not s.frozen]

    def freeze_all(self) -> list[RunningTracker]:
        """SIGSTOP every replica running: nothing but the archiver touches Redis until ``thaw``."""
        stopped = self.running_replicas()
        for replica in stopped:
            os.kill(replica.process.pid, signal.SIGSTOP)
        return stopped

    @staticmethod
    def thaw(replicas: list[RunningTracker]) -> None:
        for replica in replicas:
            os.kill(replica.process.pid, signal.SIGCONT)

    # --- the end --------------------------------------------------------------------------------------

    def room_seq(self) -> int | None:
        """The room's last seq in Redis; None while Redis holds no room (wiped, and no replica has opened it yet)."""
        with self.redis.client() as client:
            value = client.hget(KEYS.room, "seq")
        return int(value) if value is not None else None

    def archiver_caught_up(self) -> bool:
        """The archiver's /healthz says it wrote chat.log up to the room's last seq, or Redis holds no room yet.

        No room: a replica that saw Redis wiped waits for the archiver to give it chat.log's last seq before it
        opens the room; a second wipe meanwhile finds nothing in Redis the archiver has not written.
        """
        if self.archiver is None or self.archiver_frozen:
            return False
        archived = healthz(self.archiver.http_url).get("archived_seq")
        room = self.room_seq()
        return archived is not None and (room is None or archived == room)

    def healthy(self) -> bool:
        """Every replica and the archiver answer /healthz with log_writable (the faults are healed)."""
        servers = [s.replica for s in self.slots if s.replica is not None]
        if self.archiver is not None:
            servers.append(self.archiver)
        return all(healthz(server.http_url).get("log_writable") is True for server in servers)

    def close(self) -> None:
        """Thaw and end every process, put the link back, unmount the archiver's disk, remove the namespace.

        What each process printed, and chat.log, are left in ``root/evidence`` for a failure's post-mortem.
        """
        evidence = self.root / "evidence"
        evidence.mkdir(exist_ok=True)
        for number, server in enumerate(self.started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.process.pid, signal.SIGCONT)
            server.kill()
            name = "archiver" if server.data_dir == self.archive_dir else server.data_dir.name
            (evidence / f"{number:02d}-{name}.out").write_text("\n".join(server.output) + "\n")
        with contextlib.suppress(OSError):
            shutil.copytree(self.archive_dir, evidence / "archive", ignore=shutil.ignore_patterns("filler"))
        self.redis.kill()
        if self.namespace.cut_port is not None:
            with contextlib.suppress(subprocess.SubprocessError):
                self.namespace.cut(self.namespace.cut_port, "-D")
        self.namespace.delete()
        subprocess.run(["umount", "-l", str(self.archive_dir)], capture_output=True, check=False)


def wait_until(condition: Any, what: str, timeout: float) -> float:
    """Poll ``condition()`` (blocking: run it in a thread) until true; how long it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started
