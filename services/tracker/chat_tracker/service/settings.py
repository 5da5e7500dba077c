"""The tracker's settings: one object, built from flags with environment fallbacks."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypedDict

from chat_protocol import Limits
from chat_tracker.core.addresses import TrustedProxies
from chat_tracker.core.hosts import DEFAULT as DEFAULT_HOSTS
from chat_tracker.core.hosts import AllowedHosts
from chat_tracker.core.origins import DEFAULT as DEFAULT_ORIGINS
from chat_tracker.core.origins import AllowedOrigins
from chat_tracker.errors import ConfigError
from chat_tracker.journal.redis_keys import DEFAULT_PREFIX

__all__ = [
    "ConfigError",
    "Settings",
    "bench_switches",
    "default_env",
    "env_flag",
    "resolve_admin_password",
    "resolve_password",
]


@dataclass(frozen=True)
class Settings:
    """Everything the tracker needs to run. Tests build it directly.

    The one place of every default: the CLI's flag table reads them from here (and
    the member limits from ``Limits``), so a default is never written twice.
    """

    password: str = field(repr=False)
    admin_password: str | None = field(default=None, repr=False)  # None: moderation is off (/admin answers 404)
    host: str = "0.0.0.0"
    port: int = 8000
    data_dir: Path = Path()
    exit_when_empty: bool = False
    limits: Limits = Limits()
    max_connections: int = 10_000
    # One address: 16 sockets (ergo's per-IP default) is room for a household or an office
    # behind one NAT, and 625 addresses are needed to fill the default 10,000.
    max_connections_per_address: int = 16
    # Strangers (no password yet): a tenth of the slots overall, half of an address's share.
    max_unauthenticated: int = 1_000
    max_unauthenticated_per_address: int = 8
    header_timeout: float = 10.0  # seconds for the request line and headers (HTTP and the WebSocket upgrade)
    trusted_proxies: TrustedProxies = TrustedProxies()  # frozen: one shared default is safe (ruff.toml)
    allowed_origins: AllowedOrigins = DEFAULT_ORIGINS  # browser pages that may open /ws (core/origins.py)
    allowed_hosts: AllowedHosts = DEFAULT_HOSTS  # Host headers answered (core/hosts.py: DNS rebinding); auto
    # The largest valid body, an /admin/announce of 2,000 characters each sent as a 12-byte JSON
    # escaped surrogate pair, is 24 KB: 64 KiB leaves room and is what uvicorn buffers anyway.
    max_body_bytes: int = 65_536
    body_timeout: float = 10.0  # seconds for a request's body once its headers are in (else 408)
    auth_timeout: float = 30.0
    join_timeout: float = 300.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    ws_deflate: bool = False
    # The longest a member's frames are held to be written together (core/coalescer.py): fewer write(2)
    # calls per delivery under spread-out traffic. All of it only while the tracker delivers 50,000 frames
    # a second or more; at most 30 ms from 15,000; otherwise at most 10 ms, and a quiet room's frames go out at once.
    coalesce_ms: float = 60.0
    shutdown_grace: float = 2.0  # seconds members get to receive their goodbye
    flood_tolerance: int = 20  # refused messages in a burst before a member is removed (close 4006)
    flood_forgiveness: float = 1.0  # refused messages forgiven per second
    history_size: int = 10_000  # events the journal keeps in memory for "events after seq S"
    registration: str = "open"  # who creates accounts: open (any member), admin (operators only), off
    # Rooms (core/rooms.py): the default room every member is in, and the bounds on the others.
    default_room: str = "#general"
    room_creation: str = "open"  # who makes rooms: open (any member, by entering a new one) or admin (operators)
    max_rooms_per_member: int = 50
    max_rooms: int = 10_000
    room_creations_per_hour: int = 10  # per member
    resume_grace: float = 60.0  # seconds a lost JSON member stays away (resumable) before it leaves
    # chat.log rotation and retention (storage/rotation.py); 0 / False: off, keep everything
    rotate_bytes: int = 0
    rotate_daily: bool = False
    keep_segments: int = 0
    keep_days: float = 0.0
    keep_bytes: int = 0
    compress: bool = False
    auth_base_delay: float = 0.5
    auth_free_failures: int = 3
    # Wrong passwords checked per minute from all addresses together (burst: a minute's worth; an
    # IPv6 /48 gets a quarter); past it new checks are refused (429, 4013), members and resumes go on.
    auth_guesses_per_minute: float = 60.0
    # Joins and resumes per address (an IPv6 /64) per minute, as a burst, then at that rate (over: 4014).
    joins_per_minute: float = 30.0
    log_level: str = "info"
    # Replicas (replicas/replica.py): the room lives in Redis; None is the single process on chat.log.
    redis_url: str | None = field(default=None, repr=False)  # may hold Redis's password
    redis_password: str | None = field(default=None, repr=False)  # from --redis-password-file (journal/redis_auth.py)
    redis_prefix: str = DEFAULT_PREFIX  # journal/redis_keys.py, where the keys are named
    redis_volatile: bool = False  # accept a Redis without appendfsync always (may lose the last second)
    bench_disable_log: bool = False  # benchmark-only: price durability (TRACKER_BENCH_DISABLE_LOG=1)
    tls_cert: Path | None = None  # with tls_key: serve https and wss (transport/tls.py); None: plain http and ws
    tls_key: Path | None = None

    def __post_init__(self) -> None:
        if not self.password:
            raise ConfigError("the server password must not be empty")
        if self.admin_password is not None and not self.admin_password:
            raise ConfigError("the admin password must not be empty")
        if self.admin_password == self.password:
            raise ConfigError("the admin password must differ from the room password")


# ``chat-tracker archive``'s own; its other flags are the tracker's, with the defaults above.
ARCHIVER_PORT = 8001  # beside the tracker's 8000
KEEP_IN_REDIS = 10_000  # archived events left in the stream, for replicas' resumes

PASSWORD_PROMPT = "Enter server password to be used for login... "


def resolve_password(env: Mapping[str, str], stdin: TextIO = sys.stdin) -> str:
    """TRACKER_PASSWORD_FILE, else TRACKER_PASSWORD, else a hidden prompt on a terminal."""
    path = env.get("TRACKER_PASSWORD_FILE")
    if path:
        try:
            password = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read TRACKER_PASSWORD_FILE {path}: {exc}") from None
        source = f"TRACKER_PASSWORD_FILE ({path})"
    elif "TRACKER_PASSWORD" in env:
        password, source = env["TRACKER_PASSWORD"], "TRACKER_PASSWORD"
    elif stdin.isatty():
        try:
            password = getpass.getpass(PASSWORD_PROMPT)
        except (EOFError, KeyboardInterrupt):
            raise ConfigError("no password given") from None
        source = "the prompt"
    else:
        raise ConfigError("no server password: set TRACKER_PASSWORD or TRACKER_PASSWORD_FILE, or start on a terminal")
    if not password:
        raise ConfigError(f"the server password from {source} is empty")
    return password


def resolve_admin_password(env: Mapping[str, str]) -> str | None:
    """TRACKER_ADMIN_PASSWORD_FILE, else TRACKER_ADMIN_PASSWORD, else None (moderation off)."""
    path = env.get("TRACKER_ADMIN_PASSWORD_FILE")
    if path:
        try:
            password = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read TRACKER_ADMIN_PASSWORD_FILE {path}: {exc}") from None
        if not password:
            raise ConfigError(f"the admin password from TRACKER_ADMIN_PASSWORD_FILE ({path}) is empty")
        return password
    if "TRACKER_ADMIN_PASSWORD" in env:
        if not env["TRACKER_ADMIN_PASSWORD"]:
            raise ConfigError("the admin password from TRACKER_ADMIN_PASSWORD is empty")
        return env["TRACKER_ADMIN_PASSWORD"]
    return None


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """True for 1/true/yes/on (any case)."""
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class BenchSwitches(TypedDict):
    """The benchmark-only Settings fields: environment variables, never flags (no operator should set them)."""

    bench_disable_log: bool


def bench_switches(env: Mapping[str, str]) -> BenchSwitches:
    """The benchmark-only switches from ``env`` (1/true/yes/on turns one on)."""
    return BenchSwitches(bench_disable_log=env_flag(env, "TRACKER_BENCH_DISABLE_LOG"))


def default_env() -> Mapping[str, str]:
    return os.environ
