"""The protocol package's exception base: every error it raises on purpose is a ``ChatProtocolError``."""

from __future__ import annotations


class ChatProtocolError(ValueError):
    """Base of the protocol's errors (a malformed message, a refused name); ``code`` is its error code."""

    code: str = "malformed"


class ProtocolError(ChatProtocolError):
    """A frame that does not follow the protocol; ``code`` is the error code to report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NameRefused(ChatProtocolError):
    """Base of the reasons a name is refused; ``code`` is the protocol error code."""

    code = "name_invalid"


class InvalidName(NameRefused):
    code = "name_invalid"


class ReservedName(NameRefused):
    code = "name_reserved"
