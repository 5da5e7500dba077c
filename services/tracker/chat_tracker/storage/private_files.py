"""Files with member data are the tracker's alone: mode 0600.

chat.log and its segments (every message, every name), room.json (who is in, the bans
in force) and resume.key (which makes resume tokens) are read by the tracker and the
archiver only; an operator reads them as the tracker's user (``docker compose exec``).
A file an older version left readable by others is made 0600 when it is next opened.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_MODE = 0o600


def make_private(fd: int) -> None:
    """Give an open file ``PRIVATE_MODE`` if anyone else could read or write it."""
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, PRIVATE_MODE)


def make_path_private(path: Path) -> None:
    """``make_private`` by name; a file that is not there is left so."""
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(PRIVATE_MODE)
    except FileNotFoundError:
        pass
