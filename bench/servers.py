"""The servers under test, started as subprocesses pinned to the server core, and
what /proc says about them.

- ``tracker``: ``python -m chat_tracker``, the product, with the benchmark's limits
  lifted (rate, burst, connections) and chat.log in ``data_dir``.
- ``baseline``: the same tracker built from another commit (``--baseline REF``, see
  ``bench.baseline``), started the same way from that commit's source tree.
- ``ceiling``: ``bench.ref_ceiling``, a reference (bare websockets + broadcast()).
- ``typical``: ``bench.ref_typical``, a reference (FastAPI docs' ConnectionManager).
- ``ngircd``, ``redis``, ``nodews``: native references (ngIRCd, Redis pub/sub, Node.js + ws),
  started by ``bench.native``; the generator speaks each one's protocol (``Server.protocol``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import native
from .baseline import BOOTSTRAP, IMPORTED_FROM, PACKAGES

PASSWORD = "benchpass"
SERVERS = ("tracker", "baseline", "ceiling", "typical", *native.NATIVE)
TRACKERS = ("tracker", "baseline")  # the product, from the work tree and from --baseline's commit
# Every member of the load generator connects from 127.0.0.1: lift the per-address limits. Through
# the environment, not flags, so that a --baseline commit from before those limits starts too.
CROWD_FROM_ONE_ADDRESS = {
    "TRACKER_MAX_CONNECTIONS_PER_ADDRESS": "100000",
    "TRACKER_MAX_UNAUTHENTICATED_PER_ADDRESS": "100000",
    "TRACKER_MAX_UNAUTHENTICATED": "100000",  # thousands join at once, each a stranger for a moment
    "TRACKER_JOINS_PER_MINUTE": "100000000",  # and they all join (and resume) from that one address
}
# The many-rooms workload (bench.rooms) makes thousands of rooms, each by the member who enters it
# first, and may put a member in many: lift the rooms' limits too (the product's defaults are 10,000
# rooms, 50 per member, 10 made per member per hour). Environment again, for the same reason.
MANY_ROOMS = {
    "TRACKER_MAX_ROOMS": "1000000",
    "TRACKER_MAX_ROOMS_PER_MEMBER": "100000",
    "TRACKER_ROOM_CREATIONS_PER_HOUR": "100000000",
}
PORT_RETRIES = 5  # starts of one server when another process took its port first
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nobody listens on now, and one this process has not handed out before.

    The kernel may give the same free port to two binds in a row once the first socket is closed, and
    two servers started together (the price of chat.log starts two) would then race for it.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def pinned(command: list[str], cores: str | None) -> list[str]:
    """``command`` under ``taskset -c cores`` when taskset exists and cores are given."""
    if cores is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", cores, *command]


@dataclass
class ServerOptions:
    """How to start one server for one workload."""

    kind: str
    data_dir: Path
    log_dir: Path
    core: str | None = "0"
    queue_size: int = 1024
    disable_log: bool = False
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    extra_env: dict[str, str] = field(default_factory=dict)
    source: Path | None = None  # baseline only: the source tree whose services/ it imports
    head: tuple[str, ...] | None = None  # tracker only: run by ``python <head> <flags>``, not ``-m chat_tracker``
    extra_args: tuple[str, ...] = ()  # trackers only: more flags after the benchmark's own (bench.security)
    crowd: bool = True  # lift the per-address and rooms' limits (CROWD_FROM_ONE_ADDRESS, MANY_ROOMS); security: off


class Server:
    """A running server process."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.kind = options.kind
        self.port = free_port()
        self.path = "/ws"
        self.protocol = native.PROTOCOLS.get(self.kind, "ws")  # what the generator's members speak
        # Deliveries per published message: every other member, or (Redis) every member.
        self.echoes_own = self.kind in native.ECHOES_OWN
        self.ready_line = native.READY_LINES.get(self.kind, "Listening on")
        self.listen_backlog = native.LISTEN_BACKLOGS.get(self.kind)  # when small, joins are paced to it
        options.log_dir.mkdir(parents=True, exist_ok=True)
        self._launch()

    def _launch(self) -> None:
        """Start the process on ``self.port``; its output goes to a file named by kind and port."""
        options = self.options
        self.output_path = options.log_dir / f"{options.kind}-{self.port}.out"
        crowd = {**CROWD_FROM_ONE_ADDRESS, **MANY_ROOMS} if options.crowd else {}
        env = {**os.environ, "TRACKER_PASSWORD": PASSWORD, **crowd, **options.extra_env}
        if options.disable_log:
            env["TRACKER_BENCH_DISABLE_LOG"] = "1"
        else:
            env.pop("TRACKER_BENCH_DISABLE_LOG", None)
        if options.kind == "baseline":
            if options.source is None:
                raise RuntimeError("the baseline server needs a source tree (python -m bench --baseline REF)")
            paths = [str(options.source / package) for package in PACKAGES]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [*paths, env.get("PYTHONPATH")]))
        if options.kind in native.NATIVE:
            launch = self._native()
            command = launch.command
            env.update(launch.env)
        else:
            command = self._command()
        with self.output_path.open("wb") as output:
            self.process = subprocess.Popen(
                pinned(command, options.core),
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.pid = self.process.pid

    def _command(self) -> list[str]:
        o = self.options
        pings = ["--ping-interval", f"{o.ping_interval:g}", "--ping-timeout", f"{o.ping_timeout:g}"]
        if o.kind in TRACKERS:
            o.data_dir.mkdir(parents=True, exist_ok=True)
            # the baseline: the same command, importing chat_tracker from its own tree
            head = ["-m", "chat_tracker"] if o.kind == "tracker" else ["-c", BOOTSTRAP, str(o.source)]
            if o.head is not None:
                head = list(o.head)
            return [
                sys.executable,
                *head,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(o.data_dir),
                "--rate",
                "1000000",
                "--burst",
                "1000000",
                "--max-connections",
                "15000",  # fits a hard RLIMIT_NOFILE of 20,000 with the tracker's reserve of 64
                "--queue-size",
                str(o.queue_size),
                *pings,
                *o.extra_args,
            ]
        module = {"ceiling": "bench.ref_ceiling", "typical": "bench.ref_typical"}[o.kind]
        return [sys.executable, "-m", module, "--port", str(self.port), "--password", PASSWORD, *pings]

    def _native(self) -> native.Launch:
        o = self.options
        return native.launch(o.kind, self.port, o.data_dir, PASSWORD, o.ping_interval, o.ping_timeout)

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until the port accepts connections and the server has said it is ready (``ready_line``).

        ``free_port`` closes the port it found before the server binds it, so another process (any
        outgoing connection takes ports from the same range) can take it meanwhile: a server that
        exits because its port is taken is started again on another one, a few times.
        """
        deadline = time.monotonic() + timeout
        relaunches = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None and relaunches < PORT_RETRIES and _port_taken(self.output()):
                relaunches += 1
                self.port = free_port()
                self._launch()
                continue
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}: {self.output()[-2000:]}")
            if self.ready_line in self.output() and _accepts(self.port):
                if self.kind == "baseline" and f"{IMPORTED_FROM}{self.options.source}/" not in self.output():
                    raise RuntimeError(f"baseline did not import {self.options.source}: {self.output()[-2000:]}")
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} not ready in {timeout} s: {self.output()[-2000:]}")

    def output(self) -> str:
        try:
            return self.output_path.read_text(errors="replace")
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return memory(self.pid)[0]

    def hwm_bytes(self) -> int:
        return memory(self.pid)[1]

    def write_syscalls(self) -> int | None:
        """The process's write syscalls so far (``syscw`` of /proc/PID/io), None if unreadable."""
        return write_syscalls(self.pid)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode


def _port_taken(output: str) -> bool:
    """Whether a server's output says it could not bind its port (uvicorn, ngircd, redis, node)."""
    lowered = output.lower()
    return "address already in use" in lowered or "eaddrinuse" in lowered


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def process_cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` in seconds: nanoseconds from schedstat, else ticks."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in bytes."""
    values = {"VmRSS": 0, "VmHWM": 0}
    with Path(f"/proc/{pid}/status").open() as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def write_syscalls(pid: int) -> int | None:
    """``syscw`` of /proc/PID/io: write(2)/writev(2)-type calls of every thread of ``pid``.

    What libuv (uvloop: the tracker and the references) and the C floor loop send with.
    send(2)/sendto(2)/sendmsg(2) are not counted by Linux here, so a server that sends with
    those shows too few writes; file writes (chat.log) are counted with the socket writes.
    None when the file cannot be read (another user's process, no task I/O accounting).
    """
    try:
        with Path(f"/proc/{pid}/io").open() as io:
            for line in io:
                if line.startswith("syscw:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
