"""The file descriptor budget: every socket is one, and running out breaks accept() for everyone.

Linux starts most processes with a soft ``RLIMIT_NOFILE`` of 1024, far below the
default ``--max-connections``, while the hard limit is usually much higher. At
start the tracker raises its soft limit to the hard one, then checks that
``--max-connections`` fits with room to spare (chat.log, the listening socket, the
event loop, worker threads: ``RESERVED``). If it does not, starting would only
promise slots the process cannot open, so it refuses to start. The socket guard
keeps every socket, HTTP included, below the limit it got (``ceiling``).
"""

from __future__ import annotations

import resource

from chat_tracker.errors import ConfigError

RESERVED = 64  # descriptors kept for everything that is not a client socket
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


def socket_ceiling() -> int:
    """Raise the limit, and the most sockets the tracker may hold open at once under it."""
    return raise_soft_limit() - RESERVED
