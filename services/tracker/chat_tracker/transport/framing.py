"""RFC 6455 frames after the opening handshake, for a connection without compression.

websockets' sans-I/O ``ServerProtocol`` reads the upgrade request and answers it
(``handshake.py``), and stays for a connection that negotiated permessage-deflate.
Every other connection then switches to this ``FrameCodec``: the same calls the
``/ws`` adapter makes of websockets' parser (``receive_data``, ``events_received``,
``send_close``, ``send_ping``, ``fail``, ``data_to_send``), kept in one small object.
websockets' parser keeps about 2 KB per connection for its life (its generator, its
stream reader, the handshake's request and response, a UUID, the last frame); an idle
member of a big room holds nothing else of it.

What a peer may send is bounded before it is held: a frame's header is checked (the
reserved bits, the opcode, the mask a client must use, a control frame's 125 bytes and
``fin``, the continuation rules, and the message's size against ``--max-frame-bytes``)
as soon as it is in, so at most one message's bytes, and a header, are ever buffered.
A broken rule fails the connection as websockets would: a close frame with 1002 (1009
for a message over the limit, 1007 for a close reason that is not UTF-8), and nothing
more is read.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from websockets.frames import EXTERNAL_CLOSE_CODES, CloseCode, Opcode

from chat_tracker.core.frames import server_frame

OPCODES = {int(opcode): opcode for opcode in Opcode}
CONTROL_PAYLOAD = 125  # the most a ping, pong or close may carry


class Close(NamedTuple):
    """A close frame's code and reason, sent or received."""

    code: int
    reason: str


class InFrame(NamedTuple):
    """One frame from the peer, unmasked: what the adapter reads of websockets' ``Frame`` (opcode, data, fin)."""

    opcode: Opcode
    data: bytes
    fin: bool


class FramingError(Exception):
    """The peer broke a framing rule: the connection is failed (``FrameCodec.parser_exc``)."""


class FrameCodec:
    """One connection's frames in and out, after the handshake (no extension negotiated)."""

    __slots__ = (
        "_events",
        "_message_bytes",
        "_output",
        "_reading",
        "_tail",
        "close_rcvd",
        "close_sent",
        "limit",
        "parser_exc",
    )

    handshake_exc = None  # the handshake is over: websockets' parser answered it

    def __init__(self, limit: int) -> None:
        self.limit = limit  # the most a message may carry, over all its fragments (--max-frame-bytes)
        self.close_rcvd: Close | None = None
        self.close_sent: Close | None = None
        self.parser_exc: FramingError | None = None
        self._tail: bytes | bytearray = b""  # the start of a frame not yet whole (a bytearray while it grows)
        # Made when something comes in or goes out, and handed over whole: an idle member keeps no empty lists.
        self._events: list[InFrame] | None = None
        self._output: list[bytes] | None = None
        self._message_bytes: int | None = None  # a fragmented message under way: its bytes so far
        self._reading = True  # until the peer's close is in, or the connection failed

    # --- in -------------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Parse whatever whole frames ``data`` completes; nothing once a close is received or a rule broken."""
        if not self._reading:
            return
        buffer = self._tail
        if buffer:
            buffer += data  # a bytearray: appended in place, however many pieces a big frame comes in
        else:
            buffer = data
        used = self._parse(buffer)
        if not self._reading or used == len(buffer):
            self._tail = b""
        elif isinstance(buffer, bytearray):
            del buffer[:used]  # in place: a frame still coming in is not copied again
            self._tail = buffer
        else:
            self._tail = bytearray(buffer[used:])

    def events_received(self) -> Sequence[InFrame]:
        events, self._events = self._events, None
        return events or ()

    def close_expected(self) -> bool:
        """The peer's close is answered, or the connection failed: the socket may close."""
        return not self._reading

    def _parse(self, data: bytes | bytearray) -> int:
        """Take every whole frame at the start of ``data``; how many bytes they used."""
        used, size = 0, len(data)
        while size - used >= 2 and self._reading:
            first, second = data[used], data[used + 1]
            length, start = second & 0x7F, used + 2
            if length == 126:
                if size - start < 2:
                    break
                length, start = int.from_bytes(data[start : start + 2], "big"), start + 2
            elif length == 127:
                if size - start < 8:
                    break
                length, start = int.from_bytes(data[start : start + 8], "big"), start + 8
            broken = self._broken_rule(first, second, length)
            if broken is not None:
                self._fail_parsing(*broken)
                break
            end = start + 4 + length
            if size < end:
                break  # checked, and not all in yet
            self._take(first, _unmask(data[start + 4 : end], data[start : start + 4]))
            used = end
        return used

    def _broken_rule(self, first: int, second: int, length: int) -> tuple[int, str] | None:
        """The close code and reason for a frame header that breaks a rule; None for a good one.

        In websockets' order, so a header breaking two rules closes with the same code there and here.
        """
        opcode = first & 0x0F
        if opcode not in OPCODES:
            return 1002, f"invalid opcode {opcode}"
        if not second & 0x80:
            return 1002, "a client's frames must be masked"
        under_way = self._message_bytes
        if length > self.limit - (under_way or 0):
            return 1009, f"a message over {self.limit} bytes"
        if first & 0x70:
            return 1002, "reserved bits must be 0"
        if opcode >= 8:
            if length > CONTROL_PAYLOAD:
                return 1002, "a control frame carries at most 125 bytes"
            if not first & 0x80:
                return 1002, "a control frame cannot be fragmented"
            return None
        if opcode == 0 and under_way is None:
            return 1002, "a continuation frame with no message under way"
        if opcode != 0 and under_way is not None:
            return 1002, "a new message before the last one's final frame"
        return None

    def _take(self, first: int, payload: bytes) -> None:
        opcode, fin = OPCODES[first & 0x0F], bool(first & 0x80)
        if opcode is Opcode.CLOSE:
            self._closed_by_peer(payload)
        elif opcode is Opcode.PING and self.close_sent is None:
            self._send(server_frame(0x8A, payload))  # the pong, with the ping's bytes
        elif opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
            so_far = (self._message_bytes or 0) + len(payload)
            self._message_bytes = None if fin else so_far
        if self.parser_exc is None:
            if self._events is None:
                self._events = [InFrame(opcode, payload, fin)]
            else:
                self._events.append(InFrame(opcode, payload, fin))

    def _closed_by_peer(self, payload: bytes) -> None:
        if len(payload) == 1:
            self._fail_parsing(1002, "a close frame's code takes two bytes")
            return
        code = int.from_bytes(payload[:2], "big") if payload else CloseCode.NO_STATUS_RCVD
        try:  # the reason before the code, as websockets reads them
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            self._fail_parsing(1007, "a close reason that is not UTF-8")
            return
        if payload and code not in EXTERNAL_CLOSE_CODES and not 3000 <= code <= 4999:
            self._fail_parsing(1002, f"invalid close code {code}")
            return
        self.close_rcvd = Close(code, reason)
        if self._message_bytes is not None:
            self._fail_parsing(1002, "a close frame inside a fragmented message")  # as websockets has it
            return
        self._reading = False  # nothing after a close frame is read (RFC 6455 section 5.5.1)
        if self.close_sent is None:  # the answer: its own code and reason back (RFC 6455 section 5.5.1)
            self.close_sent = self.close_rcvd
            self._send(server_frame(0x88, payload))

    def _fail_parsing(self, code: int, reason: str) -> None:
        self.fail(code, reason)
        self.parser_exc = FramingError(reason)

    # --- out ------------------------------------------------------------------------------------------

    def send_close(self, code: int, reason: str = "") -> None:
        """Our close frame; nothing if a close went out already (ours, or the answer to the peer's)."""
        if self.close_sent is not None:
            return
        self.close_sent = Close(code, reason)
        # A close frame carries at most 123 bytes of reason: a longer one is cut (at a character's end).
        said = reason.encode("utf-8")[: CONTROL_PAYLOAD - 2].decode("utf-8", "ignore").encode("utf-8")
        self._send(server_frame(0x88, struct.pack("!H", code) + said))

    def fail(self, code: int, reason: str = "") -> None:
        """Close with ``code`` and read nothing more (the socket is closed once the frame is out)."""
        self.send_close(code, reason)
        self._reading = False  # no answer is awaited: nothing more is parsed

    def send_text(self, data: bytes) -> None:
        """A text frame of UTF-8 ``data`` (fan-out writes the frames the room built instead: ``wire.Wire.write``)."""
        if self.close_sent is None:
            self._send(server_frame(0x81, data))

    def send_ping(self, payload: bytes) -> None:
        if self.close_sent is None:
            self._send(server_frame(0x89, payload))

    def data_to_send(self) -> Sequence[bytes]:
        output, self._output = self._output, None
        return output or ()

    def _send(self, frame: bytes) -> None:
        if self._output is None:
            self._output = [frame]
        else:
            self._output.append(frame)


def _unmask(payload: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``mask``, as one big integer operation."""
    length = len(payload)
    if not length:
        return b""
    repeated = (bytes(mask) * (length // 4 + 1))[:length]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(length, "little")
