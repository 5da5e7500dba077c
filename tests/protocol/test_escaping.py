"""Untrusted text made safe: chat.log escaping is one printable line and exactly reversible."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chat_protocol import escape, sanitize_for_terminal, unescape
from chat_protocol.text import BIDI_CONTROLS
from chat_tracker.core.events import JOIN, LEAVE, MESSAGE, START, STOP, Event, EventKind
from chat_tracker.storage.chatlog import parse_line

# Every code point, lone surrogates included, with the troublemakers drawn often.
NASTY = st.sampled_from(
    [
        "\\",
        "\n",
        "\r",
        "\t",
        "\x00",
        "\x1b",
        "\x7f",
        "\x85",
        "\x9f",
        "\u2028",
        "\u2029",
        "\ud800",
        "\udfff",
        "\u202e",
        "\u2066",
        "\u061c",
        "😀",
        " ",
        "x",
        "\\x41",
        "\\u2028",
        "\\n",
    ]
)
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=[])
ANY_TEXT = st.lists(st.one_of(ANY_CHAR, NASTY)).map("".join)

NEVER_RAW = (
    {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)} | {"\u2028", "\u2029"} | set(BIDI_CONTROLS)
)


def _unsafe(text: str) -> set[str]:
    return {c for c in text if c in NEVER_RAW or 0xD800 <= ord(c) <= 0xDFFF}


@given(ANY_TEXT)
@example("\\")
@example("\\x41")
@example("a\\")
@example("\ud83d\ude00")  # two lone surrogates that would form a pair in UTF-16
def test_unescape_inverts_escape(text: str) -> None:
    """``unescape(escape(s)) == s`` for every string, lone surrogates and backslashes included."""
    assert unescape(escape(text)) == text


@given(ANY_TEXT)
def test_escape_is_one_printable_line(text: str) -> None:
    """An escaped string holds no line break, control, DEL, line separator, surrogate or bidi control."""
    escaped = escape(text)
    assert _unsafe(escaped) == set()
    assert len(escaped.splitlines()) <= 1
    escaped.encode("utf-8")  # writable to chat.log as is


@given(st.text(st.characters(blacklist_characters="\\", blacklist_categories=("Cc", "Cs"))))
def test_escape_leaves_ordinary_text_alone(text: str) -> None:
    """Text without controls, separators, bidi controls or backslashes is written unchanged (emoji included)."""
    if not _unsafe(text):
        assert escape(text) == text


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\\b", "a\\\\b"),
        ("1\n2", "1\\n2"),
        ("\r\t", "\\r\\t"),
        ("\x1b[31m", "\\x1b[31m"),
        ("\x7f", "\\x7f"),
        ("\x85", "\\x85"),
        ("\u2028", "\\u2028"),
        ("\u202e", "\\u202e"),
        ("\ud800", "\\ud800"),
        ("😀", "😀"),
    ],
)
def test_escape_uses_the_documented_sequences(raw: str, escaped: str) -> None:
    """Each unsafe character becomes the escape docs/protocol.md lists for it."""
    assert escape(raw) == escaped


@pytest.mark.parametrize("bad", ["\\q", "\\", "\\x4", "\\xZZ", "\\u12", "end\\"])
def test_unescape_refuses_what_escape_never_writes(bad: str) -> None:
    """A backslash that starts no valid escape is an error, not silently kept (except a final one)."""
    if bad.endswith("\\") and not bad.endswith("\\\\"):
        assert unescape(bad) == bad  # a trailing lone backslash is left as it is
        return
    with pytest.raises(ValueError, match="invalid escape sequence"):
        unescape(bad)


@given(ANY_TEXT)
def test_sanitized_text_cannot_drive_a_terminal(text: str) -> None:
    """``sanitize_for_terminal`` output has no control, separator, surrogate or bidi character."""
    shown = sanitize_for_terminal(text)
    assert _unsafe(shown) == set()
    assert all(unicodedata.category(c) != "Cc" for c in shown)


def test_sanitize_keeps_backslashes_and_shows_escapes() -> None:
    """Backslashes are shown as typed; an escape sequence from a peer becomes visible text."""
    assert sanitize_for_terminal("C:\\dir \x1b[2J\u202eevil") == "C:\\dir \\x1b[2J\\u202eevil"


TEXT_KINDS = st.sampled_from([MESSAGE, LEAVE, START, STOP])


@given(
    seq=st.integers(1, 10**12),
    kind=TEXT_KINDS,
    name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", fullmatch=True),
    text=ANY_TEXT,
    time=st.floats(0, 4e9),
)
def test_log_line_parses_back_exactly(seq: int, kind: str, name: str, text: str, time: float) -> None:
    """An event's chat.log line is one line that ``parse_line`` turns back into its seq, kind, name and text."""
    event = Event(seq, time, EventKind(kind), name, text)
    raw = event.log_line()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    line = raw.decode("utf-8")[:-1]
    assert len(line.splitlines()) == 1  # no \r, \x85, \u2028... a line reader would split on
    entry = parse_line(line)
    assert (entry.seq, entry.kind, entry.name, entry.text) == (seq, kind, name, text)
    assert entry.ts == event.ts


def test_log_line_matches_the_documented_format() -> None:
    """Lines look like the example in docs/protocol.md; an empty text ends the line after the name."""
    assert Event(2, 1795485040.001, JOIN, "alpha").log_line() == b"2 2026-11-24T01:50:40.001Z join alpha\n"
    line = Event(3, 1795485041.5, MESSAGE, "alpha", "Hi I am alpha").log_line()
    assert line == b"3 2026-11-24T01:50:41.500Z msg alpha Hi I am alpha\n"
    assert (
        Event(1, 0.0, START, text="tracker started").log_line()
        == b"1 1970-01-01T00:00:00.000Z start - tracker started\n"
    )
