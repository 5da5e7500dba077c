"""RESP2 as the blocked reader parses it: replies split anywhere, nils, errors, a huge bulk string, garbage."""

from __future__ import annotations

import itertools
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_tracker.journal import resp
from chat_tracker.journal.redis_keys import entries_of, event_of
from chat_tracker.journal.redis_reader import page_of
from chat_tracker.journal.resp import INCOMPLETE, ProtocolError, Reply, ReplyError, RespParser, command


def encode(reply: Reply) -> bytes:
    """What Redis would send for ``reply`` (the test's own writer, independent of the parser)."""
    if reply is None:
        return b"$-1\r\n"
    if isinstance(reply, ReplyError):
        return b"-" + reply.message.encode() + b"\r\n"
    if isinstance(reply, int):
        return b":%d\r\n" % reply
    if isinstance(reply, bytes):
        return b"$%d\r\n%s\r\n" % (len(reply), reply)
    return b"*%d\r\n" % len(reply) + b"".join(encode(item) for item in reply)


EPOCH = encode(b"epoch-01")
XREAD = encode(
    [
        [
            b"{c}events",
            [
                [b"7-0", [b"t", b"12.5", b"e", b'{"k":"msg","n":"ann","x":"hi"}']],
                [b"7-1", [b"e", b'{"c":"away","o":3}']],
            ],
        ]
    ]
)


def parse_all(chunks: list[bytes]) -> list[Reply]:
    parser, replies = RespParser(), list[Reply]()
    for chunk in chunks:
        parser.feed(chunk)
        while (reply := parser.pop()) is not INCOMPLETE:
            replies.append(cast(Reply, reply))
    return replies


def test_the_epoch_and_a_stream_page_parse_into_what_the_journal_takes() -> None:
    epoch, page = parse_all([EPOCH + XREAD])
    assert epoch == b"epoch-01"
    [(stream, entries)] = page_of(page)
    assert stream == b"{c}events"
    (seq, sub, fields), (_, control_sub, control) = entries_of(entries)
    assert (seq, sub, control_sub) == (7, 0, 1)
    assert event_of(seq, fields).name == "ann" and control == {b"e": b'{"c":"away","o":3}'}


@pytest.mark.parametrize("cut", range(1, len(EPOCH + XREAD)))
def test_the_replies_split_at_any_byte_are_the_same(cut: int) -> None:
    data = EPOCH + XREAD
    assert parse_all([data[:cut], data[cut:]]) == parse_all([data])


def test_the_replies_fed_one_byte_at_a_time_are_the_same() -> None:
    data = EPOCH + XREAD
    assert parse_all([data[i : i + 1] for i in range(len(data))]) == parse_all([data])


def test_nils_errors_integers_and_simple_strings() -> None:
    data = b"$-1\r\n*-1\r\n-NOPERM no permissions\r\n:-42\r\n+OK\r\n*0\r\n$0\r\n\r\n"
    assert parse_all([data]) == [None, None, ReplyError("NOPERM no permissions"), -42, b"OK", [], b""]


def test_a_blocked_read_that_ran_out_is_an_empty_page() -> None:
    assert page_of(None) == []


def test_a_huge_bulk_string_in_many_pieces_is_parsed_once_it_is_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each piece of a 16 MiB bulk string must not parse the reply again: what it lacks is remembered."""
    body = bytes(range(256)) * (1 << 16)
    data = encode([body, b"after"])
    piece = 1 << 16
    attempts = []
    real_parse = resp._parse

    def counted(buffer: bytes, pos: int) -> tuple[Reply, int]:
        attempts.append(pos)
        return real_parse(buffer, pos)

    monkeypatch.setattr(resp, "_parse", counted)
    parser = RespParser()
    for start in range(0, len(data) - piece, piece):
        parser.feed(data[start : start + piece])
        assert parser.pop() is INCOMPLETE
    parser.feed(data[len(data) // piece * piece :] if len(data) % piece else data[-piece:])
    assert parser.pop() == [body, b"after"]
    assert len([pos for pos in attempts if pos == 0]) <= 4, "the reply was parsed again for every piece"


@pytest.mark.parametrize(
    "garbage",
    [b"?what\r\n", b"$abc\r\n", b"*x\r\n", b"$3\r\nabcdef\r\n", b":1.5\r\n"],
    ids=["unknown type", "bulk size", "array size", "bulk too long", "integer"],
)
def test_bytes_that_are_no_reply_are_a_protocol_error(garbage: bytes) -> None:
    parser = RespParser()
    parser.feed(garbage)
    with pytest.raises(ProtocolError):
        parser.pop()


def test_a_command_is_an_array_of_bulk_strings() -> None:
    assert command("HGET", b"{c}room", 5) == b"*3\r\n$4\r\nHGET\r\n$7\r\n{c}room\r\n$1\r\n5\r\n"


replies = st.recursive(
    st.none()
    | st.binary(max_size=40)
    | st.integers()
    | st.builds(ReplyError, st.from_regex(r"[A-Z]+ [a-z ]*", fullmatch=True)),
    lambda children: st.lists(children, max_size=5),
    max_leaves=30,
)


@given(st.lists(replies, min_size=1, max_size=4), st.lists(st.integers(min_value=0), max_size=8))
def test_any_replies_cut_anywhere_come_back_whole_and_in_order(sent: list[Reply], cuts: list[int]) -> None:
    data = b"".join(encode(reply) for reply in sent)
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    chunks = [data[start:stop] for start, stop in itertools.pairwise(points)]
    assert parse_all(chunks) == sent
