"""REFERENCES, NOT PRODUCT CODE: native servers the benchmark runs beside the tracker.

Three anchors outside Python, each started with the bench password, on 127.0.0.1 and
a free port, in the foreground, pinned to the server core by ``bench.servers``:

- ``ngircd``: Debian's ngIRCd (C, one epoll loop), one channel ``#bench``; its config is
  written into the server's data dir at run time. The generator speaks IRC to it
  (``bench.peer_clients.IrcClient``).
- ``redis``: redis-server pub/sub on channel ``bench``, configured on the command line.
  The generator speaks RESP to it (``bench.peer_clients.RespClient``).
- ``nodews``: ``bench/node/server.js``, Node.js with the ``ws`` package, the plain-text
  dialogue of ``bench.ref_ceiling``; the generator's usual WebSocket client works unchanged.

None of them is a dependency of the product: ``ws`` is installed by npm at run time into
a cache directory outside the repository (``~/.cache/groupchat-bench/node``).
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

NATIVE = ("ngircd", "redis", "nodews")
# How the load generator talks to each kind (``bench.loadgen.Worker.connect``).
PROTOCOLS = {"ngircd": "irc", "redis": "resp", "nodews": "ws"}
# What each prints once it accepts connections.
READY_LINES = {"ngircd": "Now listening on", "redis": "Ready to accept connections", "nodews": "Listening on"}
# ngIRCd listens with a backlog of 10 (compiled in): a SYN beyond it is dropped and retried by
# the kernel 1 s later, so the harness keeps fewer handshakes in flight than that (Bench.join).
LISTEN_BACKLOGS = {"ngircd": 10}
# Redis delivers a PUBLISH to every subscriber, the publisher's own subscription too.
ECHOES_OWN = frozenset({"redis"})
# The executable each kind needs, looked up on PATH, then in the Debian location.
TOOLS = {"ngircd": ("ngircd", "/usr/sbin/ngircd"), "redis": ("redis-server", "/usr/bin/redis-server")}
NODE_TOOLS = ("node", "npm")
NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "groupchat-bench" / "node"
CHANNEL = "#bench"
MAX_NICK_LENGTH = 30  # ngIRCd's ceiling is 31 (CLIENT_NICK_LEN 32); the default 9 would do, but leaves no room
MAX_CLIENTS = 19_000  # redis: under the 20,000 descriptors the machine grants, minus its own reserve of 32


@dataclass
class Launch:
    """A native server's command line and the environment it adds."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


def tool(name: str, fallback: str | None = None) -> str | None:
    """The path of executable ``name``: on PATH, else at ``fallback`` when that exists."""
    found = shutil.which(name)
    if found is None and fallback is not None and os.access(fallback, os.X_OK):
        found = fallback
    return found


def missing(kind: str) -> list[str]:
    """The tools ``kind`` needs that this machine lacks (empty for Python servers)."""
    if kind == "nodews":
        return [name for name in NODE_TOOLS if tool(name) is None]
    if kind in TOOLS:
        name, fallback = TOOLS[kind]
        return [] if tool(name, fallback) else [name]
    return []


def require(kinds: tuple[str, ...] | list[str]) -> None:
    """Fail before anything starts when a listed native server's tool is missing."""
    problems = [f"{kind} needs {', '.join(tools)}" for kind in kinds if (tools := missing(kind))]
    if problems:
        raise RuntimeError(
            "native reference server(s) cannot start: "
            + "; ".join(problems)
            + " (install them, or leave those servers out of --servers)"
        )


def launch(kind: str, port: int, data_dir: Path, password: str, ping_interval: float, ping_timeout: float) -> Launch:
    """How to start native server ``kind``; writes what it needs into ``data_dir``."""
    require([kind])
    data_dir.mkdir(parents=True, exist_ok=True)
    if kind == "ngircd":
        return _ngircd(port, data_dir, password, ping_interval, ping_timeout)
    if kind == "redis":
        return _redis(port, data_dir, password)
    if kind == "nodews":
        return _nodews(port, password, ping_interval, ping_timeout)
    raise ValueError(f"not a native server: {kind}")


# --- ngIRCd -----------------------------------------------------------------------------


def ngircd_config(port: int, password: str, ping_interval: float, ping_timeout: float) -> str:
    """An ngircd.conf with every limit it lets us lift lifted (see ``ngircd.conf(5)``).

    What cannot be configured in ngIRCd 26.1 (compiled in): at most 3 commands of one
    client are handled per pass of its main loop, a client whose unsent output reaches
    32 KiB is disconnected ("Write buffer space exhausted"), and the listen backlog is 10.
    MaxPenaltyTime = 0 turns every penalty under 10 s into none: the flood throttles
    (over 256 bytes/s read, or more than 3 commands waiting) add 1 s each, which would
    otherwise stall a publisher for seconds; only the 10 s penalty after a wrong password
    stays.
    """
    lines = [
        "[Global]",
        "Name = bench.invalid",  # must contain a dot; never resolved
        "Info = bench reference",
        "AdminInfo1 = bench",
        "AdminInfo2 = bench",
        "AdminEMail = bench@bench.invalid",
        "Listen = 127.0.0.1",
        f"Ports = {port}",
        f"Password = {password}",  # a PASS is required, as the tracker requires its password
        'MotdPhrase = "bench"',
        "[Limits]",
        "MaxConnections = 0",  # 0: unlimited
        "MaxConnectionsIP = 0",  # every member comes from 127.0.0.1
        "MaxJoins = 0",
        f"MaxNickLength = {MAX_NICK_LENGTH}",
        "MaxPenaltyTime = 0",
        "MaxListSize = 0",
        # ngIRCd pings a client after PingTimeout s without data from it, and drops it
        # PongTimeout s later: the nearest match of the other servers' ping interval/timeout.
        f"PingTimeout = {max(1, round(ping_interval))}",
        f"PongTimeout = {max(1, round(ping_timeout))}",
        "[Options]",
        "DNS = no",
        "Ident = no",
        "PAM = no",
        "RequireAuthPing = no",
        "[Channel]",
        f"Name = {CHANNEL}",  # pre-defined, so it exists before the first JOIN and never vanishes
        "Topic = bench",
    ]
    return "\n".join(lines) + "\n"


def _ngircd(port: int, data_dir: Path, password: str, ping_interval: float, ping_timeout: float) -> Launch:
    conf = data_dir / "ngircd.conf"
    conf.write_text(ngircd_config(port, password, ping_interval, ping_timeout))
    conf.chmod(0o644)  # started as root, ngIRCd drops to nobody; keep the file readable for it
    binary = tool(*TOOLS["ngircd"])
    assert binary is not None  # require() checked
    return Launch([binary, "--nodaemon", "--config", str(conf)])


# --- Redis ------------------------------------------------------------------------------


def _redis(port: int, data_dir: Path, password: str) -> Launch:
    binary = tool(*TOOLS["redis"])
    assert binary is not None
    options = {
        "port": str(port),
        "bind": "127.0.0.1",
        "dir": str(data_dir),
        "save": "",  # no snapshots, no append-only file: pub/sub only
        "appendonly": "no",
        "requirepass": password,
        "maxclients": str(MAX_CLIENTS),
        "client-output-buffer-limit": "pubsub 0 0 0",  # never drop a slow subscriber (like the references)
        "daemonize": "no",
        "logfile": "",  # the console, which bench.servers writes to the server's .out file
        "protected-mode": "no",  # bound to loopback, with a password
        "timeout": "0",
    }
    return Launch([binary, *(part for key, value in options.items() for part in (f"--{key}", value))])


# --- Node.js + ws -----------------------------------------------------------------------


SYSTEM_CERTIFICATES = Path("/etc/ssl/certs/ca-certificates.crt")


def _with_system_certificates(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with Node.js trusting the system's certificates too (Debian's bundle), as pip and apt do.

    Node ships its own list of authorities and ignores the system's: behind a proxy whose
    authority only the system trusts, npm would fail with SELF_SIGNED_CERT_IN_CHAIN.
    """
    full = dict(env)
    if "NODE_EXTRA_CA_CERTS" not in full and SYSTEM_CERTIFICATES.exists():
        full["NODE_EXTRA_CA_CERTS"] = str(SYSTEM_CERTIFICATES)
    return full


def node_modules(cache: Path = NODE_CACHE) -> Path:
    """``ws`` installed by npm into ``cache`` (once, and again when package.json changes)."""
    manifest = NODE_DIR / "package.json"
    installed = cache / "package.json"
    modules = cache / "node_modules"
    if (modules / "ws" / "package.json").exists() and installed.exists() and filecmp.cmp(manifest, installed):
        return modules
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(manifest, installed)
    npm = tool("npm")
    assert npm is not None
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--omit=dev", "--prefix", str(cache)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=_with_system_certificates(os.environ),
    )
    if done.returncode != 0 or not (modules / "ws").is_dir():
        installed.unlink(missing_ok=True)  # try again next time
        raise RuntimeError(f"npm install of ws into {cache} failed: {(done.stdout + done.stderr)[-1500:]}")
    return modules


def _nodews(port: int, password: str, ping_interval: float, ping_timeout: float) -> Launch:
    node = tool("node")
    assert node is not None
    modules = node_modules()
    command = [
        node,
        str(NODE_DIR / "server.js"),
        "--port",
        str(port),
        "--password",
        password,
        "--ping-interval",
        f"{ping_interval:g}",
        "--ping-timeout",
        f"{ping_timeout:g}",
    ]
    return Launch(command, {"NODE_PATH": str(modules)})
