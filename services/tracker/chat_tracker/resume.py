"""What makes a resume valid, and what survives the process: the room's epoch and the token key.

A member's ``welcome`` carries the room's **epoch** (chat.log's identity) and a
**token**: ``v1:<join seq>:<name>:<MAC>``, the HMAC-SHA256 of the epoch, the seq of
the member's own join and its name, under a key kept in the data dir. A ``resume``
brings back exactly that member (that name, joined at that seq) in that epoch, and
nothing else: a token from another epoch, for another join of the same name, or
with a MAC the key did not make is refused.

Both the key (``resume.key``, mode 0600) and the epoch (in ``room.json``,
``checkpoint.py``) live in the data dir, beside chat.log, so a tracker SIGKILLed
and restarted on the same data dir honours the tokens it gave out. The epoch is new
whenever chat.log is: a fresh data dir, or a chat.log that no longer reaches the
seq the room last saw (replaced or restored from an older copy), since seqs would
then be reused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from chat_protocol import name_key

from .private_files import make_path_private
from .segments import fsync_dir, replace_atomically

log = logging.getLogger("chat_tracker")

KEY_FILE = "resume.key"
TOKEN_VERSION = "v1"
_MAC_BYTES = 16  # 128 bits: forging one is out of reach; the token stays short


@dataclass(frozen=True)
class TokenClaim:
    """Who a valid token speaks for: the name and the seq of that member's own join."""

    name: str
    since_seq: int


class BadToken(Exception):
    """A token that is malformed or was not made by this tracker's key for this epoch."""


class ResumeTokens:
    """Issues and checks resume tokens for one epoch under one key."""

    def __init__(self, key: bytes, epoch: str) -> None:
        self._key = key
        self.epoch = epoch

    def issue(self, name: str, since_seq: int) -> str:
        return f"{TOKEN_VERSION}:{since_seq}:{name}:{self._mac(name, since_seq)}"

    def check(self, token: str) -> TokenClaim:
        """The claim of a token this key made for this epoch; raises BadToken otherwise."""
        parts = token.split(":")
        if len(parts) != 4 or parts[0] != TOKEN_VERSION or not parts[1].isdigit() or len(parts[1]) > 18:
            raise BadToken("the resume token is malformed")
        since_seq, name, mac = int(parts[1]), parts[2], parts[3]
        if not hmac.compare_digest(mac.encode("ascii", "replace"), self._mac(name, since_seq).encode("ascii")):
            raise BadToken("the resume token was not issued by this tracker")
        return TokenClaim(name, since_seq)

    def _mac(self, name: str, since_seq: int) -> str:
        # The name key, not the spelling: the token names a claim on a name as the room compares them.
        message = f"{self.epoch}\n{since_seq}\n{name_key(name)}\n{name}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_epoch() -> str:
    """A fresh epoch: random, so two data dirs never share one."""
    return secrets.token_hex(8)


def load_key(data_dir: Path) -> bytes:
    """The token key from ``resume.key``, made (32 random bytes, mode 0600) on first start."""
    path = data_dir / KEY_FILE
    try:
        make_path_private(path)
        key = path.read_bytes()
    except FileNotFoundError:
        key = b""
    if len(key) >= 32:
        return key
    key = secrets.token_bytes(32)
    replace_atomically(path, key, mode=0o600)
    fsync_dir(data_dir)
    log.info("Made a new resume key in %s", path)
    return key
