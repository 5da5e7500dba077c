"""The lean frame codec after the handshake (``transport/framing.py``): websockets' own parser is the oracle.

Random streams of client frames (good ones, and each rule broken: opcodes, masks, reserved
bits, control frames too long or fragmented, continuations out of place, messages over the
limit, close frames with bad codes or reasons), cut at random points, go to both the codec
and websockets' ``ServerProtocol`` (already open): the frames they hand on, the frames they
answer with (pongs, close codes) and how the connection ends must be the same.
"""

from __future__ import annotations

import itertools
import struct
from typing import TypeGuard

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame
from websockets.protocol import State
from websockets.server import ServerProtocol

from chat_tracker.transport.framing import Close, FrameCodec, InFrame

LIMIT = 300  # --max-frame-bytes for both parsers: small, so messages over it are common
MASK = b"\x37\xfa\x21\x3d"


def client_frame(first: int, payload: bytes, *, masked: bool = True, mask: bytes = MASK, form: int = 0) -> bytes:
    """A client's frame: ``form`` 0 the shortest length encoding, 126 or 127 a longer one (allowed in practice)."""
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if form == 127 or length >= 65536:
        head = struct.pack("!BBQ", first, mask_bit | 127, length)
    elif form == 126 or length >= 126:
        head = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        head = struct.pack("!BB", first, mask_bit | length)
    if not masked:
        return head + payload
    masked_payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return head + mask + masked_payload


def close_payloads() -> st.SearchStrategy[bytes]:
    codes = st.sampled_from([1000, 1001, 1002, 1003, 1005, 1006, 1007, 1011, 1015, 2999, 3000, 4999, 5000, 0])
    reasons = st.one_of(st.text(max_size=20).map(str.encode), st.just(b"caf\xe9"))
    with_code = st.builds(lambda code, reason: struct.pack("!H", code) + reason, codes, reasons)
    return st.one_of(st.just(b""), st.just(b"\x03"), with_code)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    # Mostly good frames, so that streams go on long enough to break the rules of messages under way.
    opcode = draw(st.sampled_from([0x1] * 4 + [0x0] * 4 + [0x2, 0x9, 0xA, 0x8, 0x8, 0x3, 0xB]))
    fin = draw(st.booleans())
    rsv = draw(st.sampled_from([0] * 15 + [0x40, 0x20, 0x10]))
    if opcode == 0x8:
        payload = draw(close_payloads())
    else:
        edges = st.sampled_from([LIMIT - 1, LIMIT, LIMIT + 1, 125, 126, 127])
        sizes = st.one_of(st.integers(0, 20), edges, st.integers(LIMIT // 2 - 5, LIMIT // 2 + 5))
        size = draw(sizes)
        payload = draw(st.binary(min_size=size, max_size=size))
    masked = draw(st.sampled_from([True] * 20 + [False]))
    mask = draw(st.binary(min_size=4, max_size=4))
    form = draw(st.sampled_from([0, 0, 0, 126, 127]))
    return client_frame((0x80 if fin else 0) | rsv | opcode, payload, masked=masked, mask=mask, form=form)


def _answers(output: list[bytes]) -> list[tuple[int, bytes]]:
    """Server frames as (opcode, payload), a close frame's payload cut to its code (the reasons are worded apart)."""
    data = b"".join(output)
    found, at = [], 0
    while at < len(data):
        first, length = data[at], data[at + 1] & 0x7F
        at += 2
        payload = data[at : at + length]
        at += length
        found.append((first & 0x0F, payload[:2] if first & 0x0F == 0x8 else payload))
    return found


def _run(parser: ServerProtocol | FrameCodec, chunks: list[bytes]) -> tuple[object, ...]:
    events: list[tuple[int, bytes, bool]] = []
    output: list[bytes] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        events += [(int(e.opcode), bytes(e.data), e.fin) for e in parser.events_received() if _is_frame(e)]
        output += parser.data_to_send()
    sent, received = parser.close_sent, parser.close_rcvd
    return (
        events,
        _answers(output),
        parser.parser_exc is not None,
        None if sent is None else sent.code,
        None if received is None else received.code,
    )


def _is_frame(event: object) -> TypeGuard[Frame | InFrame]:
    return isinstance(event, (Frame, InFrame))


def _cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
    return [stream[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=400, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=8), st.lists(st.integers(0, 10_000), max_size=12))
def test_the_codec_reads_every_stream_as_websockets_does(stream: list[bytes], cuts: list[int]) -> None:
    chunks = _cut(b"".join(stream), cuts)
    theirs = ServerProtocol(max_size=LIMIT, state=State.OPEN)
    assert _run(FrameCodec(LIMIT), chunks) == _run(theirs, chunks)


def test_a_text_message_in_three_fragments_with_a_ping_between() -> None:
    codec = FrameCodec(LIMIT)
    stream = (
        client_frame(0x01, b"hel") + client_frame(0x89, b"hi") + client_frame(0x00, b"lo ") + client_frame(0x80, b"you")
    )
    for byte in stream:  # one byte at a time
        codec.receive_data(bytes((byte,)))
    events = codec.events_received()
    assert [(e.opcode, e.data, e.fin) for e in events] == [
        (1, b"hel", False),
        (9, b"hi", True),
        (0, b"lo ", False),
        (0, b"you", True),
    ]
    assert list(codec.data_to_send()) == [b"\x8a\x02hi"]  # the pong
    assert isinstance(events[0], InFrame) and codec.parser_exc is None


def test_a_frame_over_the_limit_is_refused_from_its_header_before_its_bytes() -> None:
    """A peer declaring 1 GiB is closed with 1009 on its 10-byte header: nothing of the payload is awaited."""
    codec = FrameCodec(LIMIT)
    codec.receive_data(struct.pack("!BBQ", 0x81, 0xFF, 1 << 30))
    assert codec.parser_exc is not None and codec.close_sent is not None and codec.close_sent.code == 1009
    assert codec.close_expected()
    codec.receive_data(b"\x00" * 1000)  # whatever follows is not read, nor kept
    assert list(codec.events_received()) == [] and codec._tail == b""


def test_a_big_frame_in_many_pieces_is_buffered_once_in_place() -> None:
    codec = FrameCodec(1 << 20)
    frame = client_frame(0x81, b"x" * 500_000)
    for at in range(0, len(frame), 1000):
        codec.receive_data(frame[at : at + 1000])
    assert [e.data for e in codec.events_received()] == [b"x" * 500_000]


def test_the_peers_close_is_answered_with_its_own_code_and_reason_then_nothing_is_read() -> None:
    codec = FrameCodec(LIMIT)
    codec.receive_data(client_frame(0x88, struct.pack("!H", 1000) + b"bye") + client_frame(0x81, b"late"))
    assert [e.opcode for e in codec.events_received()] == [8]
    assert codec.close_rcvd == Close(1000, "bye") and codec.close_sent == Close(1000, "bye")
    assert list(codec.data_to_send()) == [b"\x88\x05\x03\xe8bye"] and codec.close_expected()


def test_our_close_goes_out_once_and_a_long_reason_is_cut_to_fit_a_control_frame() -> None:
    codec = FrameCodec(LIMIT)
    codec.send_close(4001, "é" * 100)  # 200 bytes of UTF-8
    codec.send_close(1000, "again")
    (frame,) = codec.data_to_send()
    assert frame[0] == 0x88 and frame[1] <= 125 and frame[2:4] == struct.pack("!H", 4001)
    assert frame[4:].decode("utf-8") == "é" * 61
    codec.send_ping(b"p")  # after our close: no ping
    assert list(codec.data_to_send()) == []
    assert not codec.close_expected()  # the peer's answer is still awaited


def test_a_message_over_the_limit_in_fragments_is_closed_1009_as_websockets_closes_it() -> None:
    """Each fragment is within the limit; the message is not: the one that crosses it closes 1009."""
    third = LIMIT // 3 + 1
    stream = [client_frame(0x01, b"a" * third), client_frame(0x00, b"b" * third), client_frame(0x80, b"c" * third)]
    ours = _run(FrameCodec(LIMIT), stream)
    assert ours == _run(ServerProtocol(max_size=LIMIT, state=State.OPEN), stream)
    assert ours[0] == [(1, b"a" * third, False), (0, b"b" * third, False)] and ours[3] == 1009


def test_a_close_with_a_bad_code_and_a_reason_not_utf8_closes_1007_as_websockets_does() -> None:
    """websockets reads a close frame's reason before its code: the reason's error is the one reported."""
    stream = [client_frame(0x01, b"part", form=0), client_frame(0x88, struct.pack("!H", 1005) + b"caf\xe9")]
    ours = _run(FrameCodec(LIMIT), stream)
    assert ours == _run(ServerProtocol(max_size=LIMIT, state=State.OPEN), stream)
    assert ours[3] == 1007
