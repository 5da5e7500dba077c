"""Redis's wire format (RESP2), as far as the journal's blocked reader needs it: commands out, replies in.

The reader (``redis_reader.py``) sends a few commands and reads their replies: bulk strings
(``$``), arrays (``*``), the nil of either, integers (``:``), simple strings (``+``) and errors
(``-``). ``RespParser`` takes the bytes as the socket gives them, split anywhere, and hands back
each reply once it is whole. An error reply is a ``ReplyError`` value (the caller decides what it
raises); anything else Redis might send is a ``ProtocolError``: the connection is out of step.

A reply not yet whole is parsed again from its start when more bytes come; what it still lacks
(at least) is remembered, so a huge bulk string arriving in many pieces is looked at once, not
once per piece.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["INCOMPLETE", "ProtocolError", "Reply", "ReplyError", "RespParser", "command"]


@dataclass(frozen=True)
class ReplyError:
    """An error reply (``-ERR ...``): its text, without the ``-``."""

    message: str


Reply = bytes | int | None | list["Reply"] | ReplyError


class ProtocolError(Exception):
    """Bytes that are no RESP2 reply: the connection cannot be trusted any further."""


class _Incomplete(Exception):
    """The reply goes on past the bytes at hand: ``needed`` is the buffer length it takes at least."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class _Nothing:
    """What ``RespParser.pop`` gives while no whole reply is at hand (None is a reply: nil)."""


INCOMPLETE: Final = _Nothing()
_CRLF = b"\r\n"


def command(*words: bytes | str | int) -> bytes:
    """One command as Redis reads it: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(words)]
    for word in words:
        data = word if isinstance(word, bytes) else str(word).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RespParser:
    """Bytes in (``feed``), whole replies out (``pop``), in the order Redis sent them."""

    def __init__(self) -> None:
        self._buffer = b""
        self._pos = 0  # where the next reply starts in ``_buffer``
        self._chunks: list[bytes] = []  # fed since ``_buffer`` was last joined
        self._available = 0  # bytes from ``_pos`` on, the chunks included
        self._needed = 1  # bytes from ``_pos`` the next reply takes at least

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._available += len(data)

    def pop(self) -> Reply | _Nothing:
        """The next whole reply, or ``INCOMPLETE``. Raises ProtocolError on bytes that are no reply."""
        if self._available < self._needed:
            return INCOMPLETE
        if self._chunks:
            self._buffer = self._buffer[self._pos :] + b"".join(self._chunks)
            self._pos, self._chunks = 0, []
        try:
            reply, end = _parse(self._buffer, self._pos)
        except _Incomplete as short:
            self._needed = short.needed - self._pos
            return INCOMPLETE
        self._available -= end - self._pos
        self._pos, self._needed = end, 1
        if self._available == 0:
            self._buffer, self._pos = b"", 0
        return reply


def _parse(buffer: bytes, pos: int) -> tuple[Reply, int]:
    """The reply that starts at ``pos``, and where the next one starts."""
    end = buffer.find(_CRLF, pos)
    if end < 0:
        raise _Incomplete(len(buffer) + 1)
    kind, head = buffer[pos], buffer[pos + 1 : end]
    if kind == 0x24:  # $: a bulk string, or nil
        size = _number(head)
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if len(buffer) < stop + 2:
            raise _Incomplete(stop + 2)
        if buffer[stop : stop + 2] != _CRLF:
            raise ProtocolError(f"a bulk string of {size} bytes does not end there")
        return buffer[end + 2 : stop], stop + 2
    if kind == 0x2A:  # *: an array, or nil
        count = _number(head)
        if count < 0:
            return None, end + 2
        items: list[Reply] = []
        pos = end + 2
        for _ in range(count):
            item, pos = _parse(buffer, pos)
            items.append(item)
        return items, pos
    if kind == 0x3A:  # :
        return _number(head), end + 2
    if kind == 0x2B:  # +
        return head, end + 2
    if kind == 0x2D:  # -
        return ReplyError(head.decode(errors="replace")), end + 2
    raise ProtocolError(f"no RESP2 reply starts with {bytes([kind])!r}")


def _number(head: bytes) -> int:
    try:
        return int(head)
    except ValueError:
        raise ProtocolError(f"not a number: {head[:40]!r}") from None
