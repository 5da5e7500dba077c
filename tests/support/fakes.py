"""Test doubles shared by the unit tests: a fake clock, a fake socket, and outbox readers."""

from __future__ import annotations

import struct

from chat_tracker.core.outbox import CloseRequest, Outbox


class FakeClock:
    """A clock that only moves when the test says so."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeWire:
    """A socket for pre-built frames: records what is written; ``is_ready`` False mimics a full buffer."""

    def __init__(self, ready: bool = True) -> None:
        self.is_ready = ready
        self.written = bytearray()
        self.writes = 0  # write calls: one write(2) each on a real socket

    def ready(self) -> bool:
        return self.is_ready

    def write(self, frames: bytes) -> None:
        self.written += frames
        self.writes += 1


def decode_frames(data: bytes) -> list[str]:
    """The texts of consecutive unmasked WebSocket text frames (what ``wire.text_frame`` builds)."""
    texts: list[str] = []
    position = 0
    while position < len(data):
        opcode, length = data[position], data[position + 1]
        assert opcode == 0x81 and length < 128, "an unfragmented, unmasked text frame"
        position += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, position)
            position += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, position)
            position += 8
        texts.append(data[position : position + length].decode("utf-8"))
        position += length
    return texts


def drain(outbox: Outbox) -> tuple[list[str], CloseRequest | None]:
    """Everything sent through ``outbox`` so far, as texts in order (its wire's writes first), and its close."""
    texts: list[str] = []
    wire = outbox.wire
    if isinstance(wire, FakeWire):
        texts.extend(decode_frames(bytes(wire.written)))
        wire.written.clear()
    if outbox.wired:
        data, close = outbox.take_wire_now()
        return texts + decode_frames(data), close
    queued, close = outbox.take_now()
    return texts + queued, close
