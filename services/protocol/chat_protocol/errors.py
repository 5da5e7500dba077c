"""The protocol package's exception base: every error it raises on purpose is a ``ChatProtocolError``."""

from __future__ import annotations


class ChatProtocolError(ValueError):
    """Base of the protocol's errors (a malformed message, a refused name); ``code`` is its error code."""

    code: str = "malformed"
