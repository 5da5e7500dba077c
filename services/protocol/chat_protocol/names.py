"""Username rules, shared so the client can check a name before sending it.

A name is 1-32 characters from an ASCII allowlist, so no Unicode lookalike
(Cyrillic U+0430 for Latin "a"), control, space or bidi character can ever be part of
one. Two names that a person could confuse are the same name: comparison is by a
*key* that ignores case, folds the ASCII lookalikes 0/o and 1/l/i, and drops the
separators - _ . ; so once "alpha" is online "ALPHA", "a1pha" and "alp.ha" are
taken too.
"""

from __future__ import annotations

import re
import sys

from .errors import InvalidName, ReservedName

MAX_NAME_LENGTH = 32
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
ALLOWED_DESCRIPTION = (
    f"1-{MAX_NAME_LENGTH} characters: letters A-Z, digits, '_', '-' or '.', starting with a letter or digit"
)

_LOOKALIKES = str.maketrans({"0": "o", "1": "l", "i": "l", "-": None, ".": None, "_": None})

RESERVED_NAMES = frozenset(
    {
        "admin",
        "administrator",
        "all",
        "bye",
        "everyone",
        "exit",
        "help",
        "moderator",
        "nobody",
        "quit",
        "root",
        "server",
        "system",
        "tracker",
        "who",
    }
)


def name_key(name: str) -> str:
    """The identity of a name: equal keys mean the names may not both be online."""
    # Interned: a member's key is kept by every room she is in, its events and its indexes; one copy serves them all.
    return sys.intern(name.lower().translate(_LOOKALIKES))


_RESERVED_KEYS = frozenset(name_key(n) for n in RESERVED_NAMES)


def check_name(name: str) -> str:
    """Return ``name`` if it is allowed; raise InvalidName or ReservedName otherwise."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise InvalidName(f"invalid name: use {ALLOWED_DESCRIPTION}")
    if name_key(name) in _RESERVED_KEYS:
        raise ReservedName(f"the name {name!r} is reserved")
    return name
