"""transport/wire.py: a connection's way out, pre-built frames as they are or texts through its parser.

A client on websockets' sans-I/O protocol reads what the wire wrote, as a browser would.
"""

from __future__ import annotations

from typing import Any

from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode

from chat_protocol import CloseCode
from chat_tracker.core.frames import text_frame
from chat_tracker.transport.wire import Wire
from support.wskit import Socket, open_pair


def wired(*, deflate: bool) -> tuple[Wire, Socket, Any]:
    server, peer = open_pair(deflate=deflate)
    wire, socket = Wire(server), Socket()
    wire.transport = socket
    return wire, socket, peer


def read(peer: Any, socket: Socket) -> list[Frame]:
    """What the client makes of everything written so far (its extension inflates compressed frames)."""
    peer.receive_data(bytes(socket.written))
    socket.written.clear()
    return [event for event in peer.events_received() if isinstance(event, Frame)]


def test_ready_follows_the_socket_and_the_close() -> None:
    """Ready while the buffer keeps up; not while paused, once our close is sent, or once the socket closes."""
    wire, socket, _ = wired(deflate=False)
    assert wire.ready() and not wire.gone
    wire.paused = True
    assert not wire.ready() and not wire.gone
    wire.paused = False
    socket.close()
    assert not wire.ready() and wire.gone
    fresh, _, _ = wired(deflate=False)
    fresh.close_sent = True
    assert not fresh.ready() and fresh.gone
    assert not Wire(fresh.conn).ready()  # no socket yet


def test_pre_built_frames_go_out_as_they_are() -> None:
    wire, socket, peer = wired(deflate=False)
    wire.write(text_frame("one") + text_frame("two"))
    assert [bytes(frame.data) for frame in read(peer, socket)] == [b"one", b"two"]


def test_texts_through_the_parser_are_compressed_and_read_back_whole() -> None:
    """With deflate each text becomes a compressed frame of this connection's context, smaller than the text."""
    wire, socket, peer = wired(deflate=True)
    texts = ["first " * 50, "second " * 50, "first " * 50]
    wire.send_texts(texts)
    assert len(socket.written) < sum(len(text) for text in texts) // 4
    frames = read(peer, socket)
    assert [(frame.opcode, bytes(frame.data).decode()) for frame in frames] == [(Opcode.TEXT, t) for t in texts]


def test_after_the_peers_close_texts_are_dropped_and_only_the_answer_goes_out() -> None:
    wire, socket, peer = wired(deflate=True)
    peer.send_close(1000)
    wire.conn.receive_data(b"".join(peer.data_to_send()))
    wire.send_texts(["too late"])  # the parser refuses it (InvalidState), quietly
    frames = read(peer, socket)
    assert [frame.opcode for frame in frames] == [Opcode.CLOSE]


def test_send_close_marks_the_wire_and_writes_the_close_frame() -> None:
    wire, socket, peer = wired(deflate=True)
    wire.send_close(CloseCode.SLOW_CONSUMER, "slow")
    assert wire.close_sent and not wire.ready()
    [frame] = read(peer, socket)
    assert frame.opcode is Opcode.CLOSE and peer.close_rcvd.code == CloseCode.SLOW_CONSUMER
    try:
        wire.conn.send_text(b"x")
    except InvalidState:
        pass  # the parser agrees: nothing more goes out
    else:
        raise AssertionError("the parser still sends after our close")
