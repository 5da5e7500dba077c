"""The file descriptor budget: every socket is one, and running out breaks accept() for everyone.

Linux starts most processes with a soft ``RLIMIT_NOFILE`` of 1024, far below the
default ``--max-connections``, while the hard limit is usually much higher. At
start the tracker raises its soft limit to the hard one, then checks that
``--max-connections`` fits with room to spare (chat.log, the listening socket, the
event loop, worker threads: ``RESERVED``). If it does not, starting would only
promise slots the process cannot open, so it refuses to start. The socket guard
keeps every socket, HTTP included, below the limit it got (``ceiling``).

Rooms besides the default one and conversations each have a chat.log, but only the ones
written most recently hold a descriptor (``storage/log_pool.py``): ``LOG_DESCRIPTORS`` of
``RESERVED`` always, and more when the limit leaves descriptors to spare (``share``).
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from chat_tracker.errors import ConfigError
from chat_tracker.service.rooms import LOG_DESCRIPTORS

RESERVED = 64  # descriptors kept for everything that is not a client socket
ROOM_LOGS_MOST = 1024  # the rooms' chat.log files open at once at most (at least: LOG_DESCRIPTORS, part of RESERVED)
_NR_OPEN_FALLBACK = 1_048_576  # Linux's default fs.nr_open, used when the hard limit is unlimited


def raise_soft_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (as far as the kernel allows); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _NR_OPEN_FALLBACK if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # the kernel's nr_open is lower: keep what we have, the check below decides
    return _NR_OPEN_FALLBACK if soft == resource.RLIM_INFINITY else soft


def check_fits(max_connections: int, limit: int) -> None:
    """ConfigError unless ``max_connections`` sockets and the reserve fit in ``limit`` descriptors."""
    needed = max_connections + RESERVED
    if needed > limit:
        raise ConfigError(
            f"--max-connections {max_connections} needs {needed} file descriptors but RLIMIT_NOFILE allows "
            f"{limit}; lower --max-connections to {max(limit - RESERVED, 0)} or raise the limit "
            "(ulimit -Hn, LimitNOFILE= in systemd, docker run --ulimit nofile=N:N)"
        )


@dataclass(frozen=True)
class DescriptorShare:
    """How the limit is shared out: the most sockets open at once, and the rooms' chat.log files open at once."""

    sockets: int
    room_logs: int


def share(max_connections: int) -> DescriptorShare:
    """Raise the limit, check that ``max_connections`` fits, and share the limit out.

    Half of what the limit leaves beyond ``max_connections`` and ``RESERVED`` (up to
    ``ROOM_LOGS_MOST``) keeps more rooms' chat.log files open: writing in a room whose file
    was closed costs an ``open`` and a ``close`` (3 % of the tracker's CPU with messages
    spread over 200 rooms, in ``python -m bench --profile --workloads rooms``). The other
    half stays with the sockets beyond the members' (HTTP requests, half-open connections).
    """
    limit = raise_soft_limit()
    check_fits(max_connections, limit)
    return shared_out(limit, max_connections)


def shared_out(limit: int, max_connections: int) -> DescriptorShare:
    """``share``'s arithmetic, for a ``limit`` that ``max_connections`` fits in."""
    extra = max(0, min((limit - RESERVED - max_connections) // 2, ROOM_LOGS_MOST - LOG_DESCRIPTORS))
    return DescriptorShare(sockets=limit - RESERVED - extra, room_logs=LOG_DESCRIPTORS + extra)
