"""Pre-built WebSocket frames: the bytes of one server-to-client text frame, built once per event.

A server-to-client text frame (no mask, no compression) is the same bytes for every
recipient, so the core renders each event once and the transport writes the bytes
to every member's socket as they are (``transport/wire.py``, ``transport/native.py``).
"""

from __future__ import annotations

import struct


def text_frame(text: str) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455 section 5.2)."""
    return server_frame(0x81, text.encode("utf-8"))


def server_frame(first: int, payload: bytes) -> bytes:
    """An unmasked, unfragmented frame: ``first`` is its first byte (fin and opcode), ``payload`` its bytes."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, length)
    elif length < 65536:
        header = struct.pack("!BBH", first, 126, length)
    else:
        header = struct.pack("!BBQ", first, 127, length)
    return header + payload
