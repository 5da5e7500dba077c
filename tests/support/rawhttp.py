"""HTTP over a plain socket, for what HTTP clients will not do: a body that stops, or never ends.

``stream_body`` sends a request head and then its body from an iterator, piece by piece,
watching for an answer between pieces; it stops at the answer, as a client reading the
answer would, and says how much of the body had gone. No body is ever held whole.
"""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from support.timing import UNIT

_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


@dataclass
class Answer:
    status: int | None  # None: the tracker closed (or never answered) without a status line
    head: str  # the status line and headers
    seconds: float  # from the first byte of the head to the answer (or the end)
    sent: int  # body bytes that went out before the answer
    closed: bool  # the tracker closed the connection after answering


def head(method: str, path: str, host: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def zeros(total: int, piece: int = 65_536) -> Iterator[bytes]:
    """``total`` bytes of body, made as they are sent."""
    block = b"0" * piece
    while total > 0:
        yield block[: min(piece, total)]
        total -= piece


def chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """``pieces`` in HTTP/1.1 chunked framing, then the last chunk."""
    for piece in pieces:
        yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


def stream_body(port: int, request_head: bytes, body: Iterable[bytes], timeout: float) -> Answer:
    """Send ``request_head``, then ``body`` while no answer has come; the answer, or None after ``timeout``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(request_head)
        sock.setblocking(False)
        pieces, pending, sent, received = iter(body), b"", 0, b""
        while (left := started + timeout - time.monotonic()) > 0:
            if not pending:
                pending = next(pieces, b"")
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], min(left, 0.2))
            if readable:
                received, ended = _read_some(sock, received)
                if b"\r\n\r\n" in received or ended:
                    return _answer(sock, received, started, sent)
            elif writable:
                try:
                    written = sock.send(pending)
                except OSError:  # the tracker closed: its answer, if any, is still readable
                    return _answer(sock, received, started, sent)
                sent, pending = sent + written, pending[written:]
        return Answer(None, received.decode("latin-1"), time.monotonic() - started, sent, False)


def _read_some(sock: socket.socket, received: bytes) -> tuple[bytes, bool]:
    try:
        data = sock.recv(65_536)
    except BlockingIOError:
        return received, False
    except OSError:
        return received, True
    return received + data, not data


def _answer(sock: socket.socket, received: bytes, started: float, sent: int) -> Answer:
    seconds = time.monotonic() - started
    sock.setblocking(True)
    sock.settimeout(0.6 * UNIT)
    closed = False
    try:
        while b"\r\n\r\n" not in received and (data := sock.recv(65_536)):
            received += data
        while sock.recv(65_536):  # the rest of the answer, then the close (or a timeout: kept open)
            pass
        closed = True
    except TimeoutError:
        closed = False
    except OSError:
        closed = True
    match = _STATUS.match(received)
    status = int(match.group(1)) if match else None
    return Answer(status, received.split(b"\r\n\r\n")[0].decode("latin-1"), seconds, sent, closed)


def status_of(port: int, request_head: bytes, timeout: float) -> int | None:
    """The status of the answer to a request with no body (a WebSocket upgrade answers 101 or an error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request_head)
        received = b""
        while b"\r\n" not in received and (data := sock.recv(4096)):
            received += data
    match = _STATUS.match(received)
    return int(match.group(1)) if match else None
