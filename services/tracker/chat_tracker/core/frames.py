"""Pre-built WebSocket frames: the bytes of one server-to-client text frame, built once per event.

A server-to-client text frame (no mask, no compression) is the same bytes for every
recipient, so the core renders each event once and the transport writes the bytes
to every member's socket as they are (``transport/wire.py``, ``transport/native.py``).
"""

from __future__ import annotations

import struct


def text_frame(text: str) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455 section 5.2)."""
    payload = text.encode("utf-8")
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + payload
