"""The structured protocol codec: every message survives encode -> decode; bad frames are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_protocol import (
    Auth,
    Authenticated,
    Bye,
    ChatMessage,
    ClientMessage,
    Error,
    Hello,
    Join,
    Joined,
    Leave,
    Left,
    Limits,
    MemberInfo,
    Members,
    ProtocolError,
    Say,
    ServerMessage,
    Welcome,
    Who,
    decode_client,
    decode_server,
    encode,
)

# Any Unicode scalar value (no surrogates): what a UTF-8 WebSocket frame can carry.
SPECIALS = st.sampled_from(["\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\u202e", "😀", "\\", '"'])
TEXT = st.text(st.one_of(st.characters(), SPECIALS))
SEQ = st.integers(min_value=0, max_value=2**53)
FLOAT = st.floats(allow_nan=False, allow_infinity=False)

LIMITS = st.builds(
    Limits,
    max_message_chars=st.integers(1, 10**6),
    max_frame_bytes=st.integers(1, 10**9),
    rate_per_second=FLOAT,
    rate_burst=st.integers(1, 10**6),
    queue_size=st.integers(1, 10**6),
)
MEMBER_INFO = st.builds(MemberInfo, name=TEXT, joined_at=TEXT, idle_seconds=FLOAT)

CLIENT_MESSAGES: st.SearchStrategy[ClientMessage] = st.one_of(
    st.builds(Auth, password=TEXT),
    st.builds(Join, name=TEXT),
    st.builds(Say, text=TEXT),
    st.just(Who()),
    st.just(Leave()),
)
SERVER_MESSAGES: st.SearchStrategy[ServerMessage] = st.one_of(
    st.builds(Hello, version=st.integers(0, 1000), authenticated=st.booleans()),
    st.just(Authenticated()),
    st.builds(Welcome, seq=SEQ, ts=TEXT, name=TEXT, greeting=TEXT, members=st.lists(TEXT), limits=LIMITS),
    st.builds(Joined, seq=SEQ, ts=TEXT, name=TEXT),
    st.builds(ChatMessage, seq=SEQ, ts=TEXT, name=TEXT, text=TEXT),
    st.builds(Left, seq=SEQ, ts=TEXT, name=TEXT, reason=TEXT),
    st.builds(Members, members=st.lists(MEMBER_INFO, max_size=5)),
    st.builds(Error, code=TEXT, message=TEXT),
    st.builds(Bye, reason=TEXT, message=TEXT),
)


def _is_one_json_line(frame: str) -> bool:
    return "\n" not in frame and "\r" not in frame and isinstance(json.loads(frame), dict)


@given(CLIENT_MESSAGES)
def test_client_messages_round_trip(message: ClientMessage) -> None:
    """Every client message decodes to an equal message, from a single compact UTF-8 frame."""
    frame = encode(message)
    assert _is_one_json_line(frame)
    frame.encode("utf-8")  # a text frame must be UTF-8
    assert decode_client(frame) == message


@given(SERVER_MESSAGES)
def test_server_messages_round_trip(message: ServerMessage) -> None:
    """Every tracker message decodes to an equal message, from a single compact UTF-8 frame."""
    frame = encode(message)
    assert _is_one_json_line(frame)
    frame.encode("utf-8")
    assert decode_server(frame) == message


def test_frame_is_compact_json_with_its_type_first() -> None:
    """A frame is compact JSON with ``type`` first and non-ASCII text written as UTF-8."""
    assert encode(Say("héllo 😀")) == '{"type":"message","text":"héllo 😀"}'
    assert encode(Who()) == '{"type":"who"}'


WITH_SURROGATES = st.text(st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)))


@given(WITH_SURROGATES)
def test_lone_surrogates_are_sent_as_json_escapes(text: str) -> None:
    """Text with lone surrogates still encodes to a UTF-8 frame (as \\uXXXX escapes) that decodes to the same text.

    JSON strings are UTF-16: a high surrogate directly followed by a low one is, by
    JSON's own rule, the one character they encode; every other surrogate stays lone,
    so the tracker can answer ``invalid_text``.
    """
    frame = encode(Say(text))
    frame.encode("utf-8")  # no UnicodeEncodeError when the client sends it
    as_utf16 = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    assert decode_client(frame) == Say(as_utf16)


def test_a_lone_surrogate_survives_the_trip() -> None:
    """A lone high surrogate reaches the tracker as exactly that character."""
    frame = encode(Say("a\ud800b"))
    assert frame == '{"type":"message","text":"a\\ud800b"}'
    assert decode_client(frame) == Say("a\ud800b")


def test_unknown_fields_are_ignored_by_both_sides() -> None:
    """Fields a newer peer adds do not break an older one (docs: unknown fields are ignored)."""
    assert decode_client('{"type":"message","text":"hi","mood":"happy"}') == Say("hi")
    frame = '{"type":"joined","seq":3,"ts":"t","name":"beta","avatar":"x"}'
    assert decode_server(frame) == Joined(seq=3, ts="t", name="beta")
    welcome = json.loads(encode(Welcome(1, "t", "a", "g", ["a"], Limits())))
    welcome["limits"]["max_upload_bytes"] = 5
    welcome["theme"] = "dark"
    assert decode_server(json.dumps(welcome)) == Welcome(1, "t", "a", "g", ["a"], Limits())


MALFORMED_CLIENT = [
    "",
    "not json",
    "{",
    "[1, 2]",
    '"message"',
    "null",
    "42",
    "{}",
    '{"type": 7}',
    '{"type": null, "text": "x"}',
    '{"type": "message"}',
    '{"type": "message", "text": 5}',
    '{"type": "message", "text": null}',
    '{"type": "message", "text": ["hi"]}',
    '{"type": "join"}',
    '{"type": "join", "name": {"first": "a"}}',
    '{"type": "auth"}',
    '{"type": "auth", "password": 1234}',
    "[" * 100_000,  # deeper than the JSON parser's recursion limit: fits in one 64 KiB... and more
    '{"a":' * 30_000,
]


@pytest.mark.parametrize("frame", MALFORMED_CLIENT, ids=lambda f: repr(f[:30]))
def test_malformed_client_frames_are_refused(frame: str) -> None:
    """Not JSON, not an object, no string type, a missing or wrongly typed field: ``malformed``."""
    with pytest.raises(ProtocolError) as caught:
        decode_client(frame)
    assert caught.value.code == "malformed"
    assert caught.value.message


@pytest.mark.parametrize("kind", ["hello", "welcome", "shout", "Message", "MESSAGE", ""])
def test_unknown_client_type_is_refused(kind: str) -> None:
    """A type the tracker does not accept from clients (even a tracker-only one) is ``unknown_type``."""
    with pytest.raises(ProtocolError) as caught:
        decode_client(json.dumps({"type": kind, "text": "x"}))
    assert caught.value.code == "unknown_type"


def test_unknown_type_message_is_truncated() -> None:
    """The error for an unknown type quotes at most 40 characters of it."""
    with pytest.raises(ProtocolError) as caught:
        decode_client(json.dumps({"type": "x" * 10_000}))
    assert len(caught.value.message) < 100


def _welcome_body() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(encode(Welcome(1, "t", "alpha", "hi", ["alpha"], Limits())))
    return body


MALFORMED_SERVER: list[Any] = [
    {"type": "joined", "seq": 1, "ts": "t"},  # no name
    {"type": "joined", "seq": "1", "ts": "t", "name": "a"},
    {"type": "joined", "seq": 1.5, "ts": "t", "name": "a"},
    {"type": "joined", "seq": True, "ts": "t", "name": "a"},
    {"type": "joined", "seq": 1, "ts": None, "name": "a"},
    {"type": "message", "seq": 1, "ts": "t", "name": "a", "text": 3},
    {"type": "left", "seq": 1, "ts": "t", "name": "a"},
    {"type": "hello", "version": 1, "authenticated": "yes"},
    {"type": "hello", "version": "1", "authenticated": True},
    {"type": "error", "code": "x"},
    {"type": "error", "code": 1, "message": "m"},
    {"type": "bye", "reason": None},
    {"type": "members", "members": "alpha"},
    {"type": "members", "members": [1, 2]},
    {"type": "members", "members": [{"name": "a"}]},
    {"type": "members", "members": [{"name": "a", "joined_at": "t", "idle_seconds": "0"}]},
    {**_welcome_body(), "limits": 5},
    {**_welcome_body(), "limits": {**_welcome_body()["limits"], "queue_size": "big"}},
    {**_welcome_body(), "members": "alpha"},
    {**_welcome_body(), "members": [1]},
]


@pytest.mark.parametrize("body", MALFORMED_SERVER, ids=lambda b: json.dumps(b)[:60])
def test_malformed_server_frames_are_refused(body: dict[str, Any]) -> None:
    """A tracker frame with a missing or wrongly typed field is ``malformed``, never a half-built message."""
    with pytest.raises(ProtocolError) as caught:
        decode_server(json.dumps(body))
    assert caught.value.code == "malformed"


@pytest.mark.parametrize("frame", ["", "nope", "[]", "{}", '{"type": 1}', "[" * 100_000], ids=lambda f: repr(f[:20]))
def test_server_frames_that_are_not_objects_are_malformed(frame: str) -> None:
    """A tracker frame that is not a JSON object with a string type is ``malformed``."""
    with pytest.raises(ProtocolError) as caught:
        decode_server(frame)
    assert caught.value.code == "malformed"


@pytest.mark.parametrize("kind", ["auth", "join", "who", "shout"])
def test_unknown_server_type_is_refused(kind: str) -> None:
    """A type the tracker never sends (a client-only one included) is ``unknown_type``."""
    with pytest.raises(ProtocolError) as caught:
        decode_server(json.dumps({"type": kind}))
    assert caught.value.code == "unknown_type"


def test_numbers_where_floats_are_expected_may_be_integers() -> None:
    """An integral rate or idle time (``10`` rather than ``10.0``) is accepted as a float."""
    body = _welcome_body()
    body["limits"]["rate_per_second"] = 10
    welcome = decode_server(json.dumps(body))
    assert isinstance(welcome, Welcome) and welcome.limits.rate_per_second == 10.0
    members = decode_server('{"type":"members","members":[{"name":"a","joined_at":"t","idle_seconds":0}]}')
    assert members == Members([MemberInfo("a", "t", 0.0)])
