"""The tracker's exceptions, under one base so a caller can catch everything the tracker raises on purpose."""

from __future__ import annotations

import enum

from chat_tracker.records import LogEntry


class TrackerError(Exception):
    """Base of every exception the tracker raises deliberately."""


class ConfigError(TrackerError):
    """A setting that makes starting impossible; the message is shown as one line."""


class Refused(TrackerError):
    """A request the room turns down; ``code`` is the protocol error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Recover(TrackerError):
    """A resume from a room the journal lost (a new epoch): join again under ``name``, told ``recovered: false``."""

    def __init__(self, name: str, after: int) -> None:
        super().__init__(f"{name} comes back from a lost epoch after seq {after}")
        self.name = name
        self.after = after


class Kicked(Refused):
    """A refusal after which the member has been removed from the room."""


class IllegalTransition(TrackerError):
    """A state machine asked to take a step its table does not list from the state it is in.

    Always a bug in the caller, never the peer's doing: the peer's input is checked
    before a step is taken, so this is raised where the program went wrong.
    """

    def __init__(self, state: enum.Enum, step: enum.Enum, detail: str | None = None) -> None:
        super().__init__(detail or f"no step {step.name} from {type(state).__name__}.{state.name}")
        self.state = state
        self.step = step


class LogWriteError(TrackerError, OSError):
    """chat.log could not be written; nothing of the failed batch is in the file."""


class LogFormatError(TrackerError, ValueError):
    """A line that is not a chat.log line."""


class RedisUnavailable(LogWriteError):
    """Redis cannot be reached: nothing can be made durable."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.strerror = why


# Internal signals, each caught inside the tracker: kept on Exception (not TrackerError) so that no
# `except TrackerError` catches them where it did not before.
class BadToken(Exception):
    """A token that is malformed or was not made by this tracker's key for this epoch."""


class EncryptedKey(Exception):
    """The key asks for a passphrase."""


class Discontinuity(TrackerError):
    """Two files (or a file and a race with rotation) did not join up seq to seq; ``entries`` were read.

    Raised inside storage only: the caller lists the files again (a rotation may have
    raced the listing) or accepts the gap as real, keeping what was read.
    """

    def __init__(self, entries: list[LogEntry]) -> None:
        super().__init__("the seqs do not join up")
        self.entries = entries


# Accounts (core/accounts.py): each a refusal with the protocol code a client would be told, so the chat
# integration and ``chat-tracker accounts`` report the same reason in the same words.
class AccountRefused(Refused):
    """Base of the reasons an account operation is turned down."""


class PassphraseTooShort(AccountRefused):
    def __init__(self, minimum: int) -> None:
        super().__init__("passphrase_too_short", f"the passphrase must have at least {minimum} characters")


class PassphraseTooLong(AccountRefused):
    def __init__(self, maximum: int) -> None:
        super().__init__("passphrase_too_long", f"the passphrase must have at most {maximum} characters")


class AccountExists(AccountRefused):
    """The name, or a lookalike of it, is registered; ``holder`` is the registered spelling."""

    def __init__(self, name: str, holder: str) -> None:
        super().__init__("name_taken", f"the name {name!r} is registered (or too close to {holder!r})")
        self.holder = holder


class UnknownAccount(AccountRefused):
    def __init__(self, name: str) -> None:
        super().__init__("unknown_account", f"no account {name!r}")


class AccountStoreError(TrackerError):
    """The accounts store cannot be used as it is (a schema newer than this version, a broken file)."""
