"""A member that joins, then writes the first half of a frame and waits to be killed.

Run as a separate process (``python half_frame_member.py URL PASSWORD NAME``) so the
test can SIGKILL it mid-frame, the way a crashed client dies. Prints "ready" when
the half frame is on the wire.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the support package, as for pytest

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from support.timing import UNIT


def main(url: str, password: str, name: str) -> None:
    parsed = urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=2 * UNIT)
    protocol = ClientProtocol(parse_uri(url))
    protocol.send_request(protocol.connect())

    def flush() -> None:
        for data in protocol.data_to_send():
            sock.sendall(data)

    def texts(count: int) -> list[str]:
        got: list[str] = []
        while len(got) < count:
            for event in protocol.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    got.append(bytes(event.data).decode())
            if len(got) < count:
                protocol.receive_data(sock.recv(65536))
        return got

    flush()
    texts(1)  # password prompt
    protocol.send_text(password.encode())
    flush()
    texts(2)
    protocol.send_text(name.encode())
    flush()
    assert texts(4)[0].startswith(f"Hi {name},")
    payload = ("half a message " * 20).encode()
    mask = os.urandom(4)
    header = (
        struct.pack("!BB", 0x81, 0x80 | len(payload))
        if len(payload) < 126
        else struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
    )
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(header + mask + masked[: len(masked) // 2])
    print("ready", flush=True)
    time.sleep(12 * UNIT)  # holding the half frame until the test kills this process


if __name__ == "__main__":
    main(*sys.argv[1:4])
