"""One ``/ws`` connection's way out: frames onto its socket, and the socket's end.

Fan-out sends the same text to many members. A server-to-client text frame with no
compression is the same bytes for every recipient, so the core builds it once per
event (``core/frames.py``) and the outbox hands those bytes to ``Wire.write``, which
puts them on the transport as they are, the way ``websockets.broadcast()`` does.

A connection that negotiated permessage-deflate (``--ws-deflate``) cannot take them:
its frames are compressed with a context of its own, which the parser keeps. Its
outbox holds texts instead, and ``send_texts`` passes each through the parser, which
compresses it. Everything else the parser produces (the handshake's answer, pongs,
pings, close frames) goes out through ``flush``, on either kind of connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from websockets.exceptions import InvalidState
from websockets.server import ServerProtocol

from chat_tracker.transport.framing import FrameCodec


class Wire:
    """The socket of one connection, its parser's output, and whether it is keeping up."""

    __slots__ = ("_close_timer", "close_sent", "conn", "paused", "transport")

    def __init__(self, conn: ServerProtocol | FrameCodec) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None  # set once the socket is handed over
        self.paused = False  # the transport's buffer is over its high-water mark
        self.close_sent = False  # nothing but the parser's answers goes out any more
        self._close_timer: asyncio.TimerHandle | None = None

    # --- what outboxes need of a socket (outbox.WireLike) ---------------------------

    def ready(self) -> bool:
        """True when a write goes out now: open, not closing, and the peer is keeping up."""
        transport = self.transport
        return not self.paused and not self.close_sent and transport is not None and not transport.is_closing()

    def write(self, frames: bytes) -> None:
        """Pre-built frames, as they are (a connection without compression only)."""
        assert self.transport is not None
        self.transport.write(frames)

    @property
    def gone(self) -> bool:
        """Nothing but the parser's answers may go out: our close is sent, or the socket is closing."""
        transport = self.transport
        return self.close_sent or transport is None or transport.is_closing()

    # --- through the parser -----------------------------------------------------------

    def send_texts(self, texts: Sequence[str]) -> None:
        """Texts as frames the parser builds: compressed when permessage-deflate was negotiated."""
        conn = self.conn
        with contextlib.suppress(InvalidState):  # the peer's close is in: only the answer to it goes out
            for text in texts:
                conn.send_text(text.encode())
        self.flush()

    def send_close(self, code: int, reason: str) -> None:
        """Our close frame, after what is written; from now on only the parser's answers go out."""
        self.close_sent = True
        with contextlib.suppress(InvalidState):
            self.conn.send_close(code, reason)
        self.flush()

    def flush(self) -> None:
        """Write what the parser has to send: a handshake answer, pongs, a close frame, compressed frames."""
        output = self.conn.data_to_send()
        transport = self.transport
        if output and transport is not None and not transport.is_closing():
            transport.write(b"".join(output))

    # --- the socket's end -------------------------------------------------------------

    def close_after(self, timeout: float, then: Callable[[], None]) -> None:
        """Run ``then`` (``close`` or ``abort``) in ``timeout`` seconds, unless the socket ends first."""
        self.cancel_close()
        self._close_timer = asyncio.get_running_loop().call_later(timeout, then)

    def cancel_close(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def close(self) -> None:
        """Close the socket once what is written has gone out."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the socket at once: a peer that reads nothing cannot be closed politely."""
        if self.transport is not None:
            self.transport.abort()
