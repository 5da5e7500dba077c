"""What of a resume survives the process: the token key (``resume.key``, ``resume.key.previous``) and ``resume.counts``.

The token itself (what it says, how it is checked) is ``core/tokens.py``; this module
keeps its key and the per-membership resume counts on disk, mode 0600, written
atomically or one ``write`` per line, so they survive a SIGKILL.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from chat_tracker.core.tokens import is_count
from chat_tracker.storage.private_files import make_path_private
from chat_tracker.storage.segments import fsync_dir, replace_atomically

log = logging.getLogger("chat_tracker")

KEY_FILE = "resume.key"
PREVIOUS_KEY_FILE = "resume.key.previous"
COUNTS_FILE = "resume.counts"
_KEY_BYTES = 32


def load_key(data_dir: Path) -> bytes:
    """The token key from ``resume.key``, made (32 random bytes, mode 0600) on first start."""
    key = _read_key(data_dir / KEY_FILE)
    if key is not None:
        return key
    return _new_key(data_dir)


def load_previous_key(data_dir: Path) -> bytes | None:
    """The key ``rotate-key`` replaced, still accepted for one grace after the next start; None if there is none."""
    return _read_key(data_dir / PREVIOUS_KEY_FILE)


def drop_previous_key(data_dir: Path) -> None:
    """The previous key's grace is over: remove ``resume.key.previous`` (gone already is fine)."""
    (data_dir / PREVIOUS_KEY_FILE).unlink(missing_ok=True)


def rotate_key(data_dir: Path) -> None:
    """Keep the current key as ``resume.key.previous``, make a new ``resume.key`` (the tracker reads both at start)."""
    current = _read_key(data_dir / KEY_FILE)
    if current is not None:
        replace_atomically(data_dir / PREVIOUS_KEY_FILE, current, mode=0o600)
    _new_key(data_dir)


def _read_key(path: Path) -> bytes | None:
    try:
        make_path_private(path)
        key = path.read_bytes()
    except FileNotFoundError:
        return None
    return key if len(key) >= _KEY_BYTES else None


def _new_key(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    key = secrets.token_bytes(_KEY_BYTES)
    replace_atomically(path, key, mode=0o600)
    fsync_dir(data_dir)
    log.info("Made a new resume key in %s", path)
    return key


class ResumeCounts:
    """``resume.counts``: how many times each membership of this epoch has resumed, one appended line per resume.

    A line is ``<epoch> <join seq> <resumes>``; the last line of a join wins. Each
    is written (one ``write``, no buffering in this process) before the ``resumed``
    carrying the new token is sent, so it survives a SIGKILL. The file is rewritten
    with only the members still in the room at every start, so it stays as small as
    the room.
    """

    def __init__(self, data_dir: Path, epoch: str) -> None:
        self.path = data_dir / COUNTS_FILE
        self.epoch = epoch
        self._fd: int | None = None

    def read(self) -> dict[int, int]:
        """Join seq -> resume count, for this epoch (lines of other epochs, or torn ones, are ignored)."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return {}
        counts: dict[int, int] = {}
        for line in text.splitlines():
            fields = line.split(" ")
            if len(fields) == 3 and fields[0] == self.epoch and all(is_count(f) for f in fields[1:]):
                counts[int(fields[1])] = int(fields[2])
        return counts

    def rewrite(self, counts: Sequence[tuple[int, int]]) -> None:
        """Keep only ``counts`` (the members in the room now), then append from there."""
        body = "".join(f"{self.epoch} {since} {resumes}\n" for since, resumes in counts if resumes > 0)
        self.close()
        replace_atomically(self.path, body.encode("ascii"), mode=0o600)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)

    def record(self, since_seq: int, resumes: int) -> None:
        """Note the member joined at ``since_seq`` has resumed ``resumes`` times (before its new token goes out)."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.write(self._fd, f"{self.epoch} {since_seq} {resumes}\n".encode("ascii"))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
