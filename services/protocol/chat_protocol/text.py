"""Making untrusted text safe: one-line escaping for chat.log and terminal sanitising.

Peers control usernames and message text. Nothing they send may break a line of
chat.log, forge another line, or drive a terminal. ``escape`` makes any string a
single printable line that ``unescape`` turns back into the exact original, so a
program can parse chat.log without ambiguity and a person can ``tail -f`` it.
"""

from __future__ import annotations

import re

# Bidirectional controls can reorder what a terminal shows (the "Trojan Source" trick).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_SIMPLE_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SIMPLE_UNESCAPES = {v[1]: k for k, v in _SIMPLE_ESCAPES.items()}

# Characters that are never written raw: C0 and C1 controls, DEL, line and paragraph
# separators, lone surrogates, bidi controls, and the backslash that introduces escapes.
_CONTROL_CLASS = "\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff" + "".join(sorted(BIDI_CONTROLS))
_UNSAFE = re.compile("[\\\\" + _CONTROL_CLASS + "]")
_ESCAPE_SEQUENCE = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|.)", re.DOTALL)


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    simple = _SIMPLE_ESCAPES.get(char)
    if simple is not None:
        return simple
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """Return ``text`` as one line of printable characters; reversible with ``unescape``."""
    if _UNSAFE.search(text) is None:
        return text  # the common case: nothing to do, no copy
    return _UNSAFE.sub(_escape_one, text)


def _unescape_one(match: re.Match[str]) -> str:
    body = match.group()[1:]
    if body[0] in "xu" and len(body) > 1:
        return chr(int(body[1:], 16))
    try:
        return _SIMPLE_UNESCAPES[body]
    except KeyError:
        raise ValueError(f"invalid escape sequence: \\{body!r}") from None


def unescape(line: str) -> str:
    """Invert ``escape``. Raises ValueError on a malformed escape."""
    if "\\" not in line:
        return line
    return _ESCAPE_SEQUENCE.sub(_unescape_one, line)


_DISPLAY_UNSAFE = re.compile("[" + _CONTROL_CLASS + "]")


def sanitize_for_terminal(text: str) -> str:
    """Replace every control, separator and bidi character with a visible escape.

    Unlike ``escape`` this leaves backslashes alone: it is for showing text to a
    person, not for storing it.
    """
    if _DISPLAY_UNSAFE.search(text) is None:
        return text
    return _DISPLAY_UNSAFE.sub(_escape_one, text)


def has_lone_surrogate(text: str) -> bool:
    """True if ``text`` cannot be encoded as UTF-8 (JSON allows ``"\\ud800"``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
