"""What makes a resume valid: the room's epoch and the single-use token.

The key and the resume counts are kept on disk by ``storage/resume_keys.py``.


A member's ``welcome`` carries the room's **epoch** (chat.log's identity) and a
**token**: ``v2:<join seq>:<resumes>:<name>:<MAC>``, the HMAC-SHA256 of the epoch,
the seq of the member's own join, how many times that membership has resumed so
far, and its name, under a key kept in the data dir. A ``resume`` brings back
exactly that member (that name, joined at that seq) in that epoch, and only with
its *latest* token: every ``resumed`` carries the next one (``resumes`` + 1), and
the one it replaces is refused from then on. A token is thus single-use: a copy
taken off the wire, a log or a disk is worth nothing once its owner has resumed.

Why a count and not a random nonce: the count of a join is all the state a token
needs (no secret to keep per member), and ``resumes`` = 0 is implied by the join
itself, so a welcome writes nothing. Each resume writes one short line to
``resume.counts`` (mode 0600) before its ``resumed`` is sent (``ResumeCounts``),
so a tracker SIGKILLed and restarted honours exactly the latest token of each
member, as ``resume.key`` and the epoch in ``room.json`` already make it honour
the key and the epoch. Replicas keep the counts in Redis instead (``journal/redis_keys.py``).

Both the key (``resume.key``, mode 0600) and the epoch (in ``room.json``,
``storage/checkpoint.py``) live in the data dir, beside chat.log. The epoch is new
whenever chat.log is: a fresh data dir, or a chat.log that no longer reaches the
seq the room last saw (replaced or restored from an older copy), since seqs would
then be reused.

The key rotates with ``chat-tracker rotate-key``: the old key is kept as
``resume.key.previous`` and still accepted for one resume grace after the next
start (members away then come back), and every token issued is made under the new
key. A ``v1`` token (before counts) is read as a count of 0, so members in their
grace across the upgrade resume once and get a ``v2`` one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from chat_protocol import name_key
from chat_tracker.errors import BadToken

TOKEN_VERSION = "v2"
_OLD_VERSION = "v1"  # before counts: read as a count of 0
_MAC_BYTES = 16  # 128 bits: forging one is out of reach; the token stays short


@dataclass(frozen=True)
class TokenClaim:
    """Who a valid token speaks for: the name, the seq of that member's own join, and its resume count."""

    name: str
    since_seq: int
    resumes: int = 0


class ResumeTokens:
    """Issues and checks resume tokens for one epoch under one key (and, for a while, the previous one)."""

    def __init__(self, key: bytes, epoch: str, previous: bytes | None = None) -> None:
        self._key = key
        self.epoch = epoch
        self._previous = previous

    def issue(self, name: str, since_seq: int, resumes: int = 0) -> str:
        """The token of the ``resumes``-th resume of the member joined at ``since_seq`` (always the current key)."""
        return f"{TOKEN_VERSION}:{since_seq}:{resumes}:{name}:{self._mac(self._key, name, since_seq, resumes)}"

    def check(self, token: str) -> TokenClaim:
        """The claim of a token this key (or the previous one) made for this epoch; raises BadToken otherwise."""
        claim, mac = _parse(token)
        for key in self._keys():
            expected = self._mac(key, claim.name, claim.since_seq, claim.resumes, old=token.startswith("v1:"))
            if hmac.compare_digest(mac.encode("ascii", "replace"), expected.encode("ascii")):
                return claim
        raise BadToken("the resume token was not issued by this tracker")

    def rotated(self, key: bytes) -> ResumeTokens:
        """The same epoch under ``key``, this one's key accepted as the previous one."""
        return ResumeTokens(key, self.epoch, self._key)

    @property
    def has_previous(self) -> bool:
        return self._previous is not None

    def forget_previous(self) -> None:
        """The previous key's grace is over: only the current key's tokens are accepted from now on."""
        self._previous = None

    def _keys(self) -> Iterable[bytes]:
        yield self._key
        if self._previous is not None:
            yield self._previous

    def _mac(self, key: bytes, name: str, since_seq: int, resumes: int, *, old: bool = False) -> str:
        # The name key, not the spelling: the token names a claim on a name as the room compares them.
        fields = [self.epoch, str(since_seq)] + ([] if old else [str(resumes)]) + [name_key(name), name]
        digest = hmac.new(key, "\n".join(fields).encode(), hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _parse(token: str) -> tuple[TokenClaim, str]:
    """A token's claim and MAC, unchecked; raises BadToken if it is not shaped like one."""
    parts = token.split(":")
    if len(parts) == 4 and parts[0] == _OLD_VERSION:
        parts = [TOKEN_VERSION, parts[1], "0", parts[2], parts[3]]
    if len(parts) != 5 or parts[0] != TOKEN_VERSION or not all(is_count(part) for part in parts[1:3]):
        raise BadToken("the resume token is malformed")
    return TokenClaim(parts[3], int(parts[1]), int(parts[2])), parts[4]


def is_count(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


def new_epoch() -> str:
    """A fresh epoch: random, so two data dirs never share one."""
    return secrets.token_hex(8)
