"""The client's exceptions: one base class, each subclass carrying its exit status.

The exit statuses are a contract (documented in ``chat-client --help`` and
docs/client.md); scripts and the compose tests branch on them.
"""

from __future__ import annotations

from chat_protocol import CloseCode, describe

EXIT_OK = 0
EXIT_FAILURE = 1  # cannot connect, wrong password, handshake or name refused
EXIT_USAGE = 2  # bad arguments, no username in scripted mode, unreadable password file
EXIT_TRACKER_GONE = 3  # the tracker shut down, or the connection was lost and could not be got back
EXIT_REMOVED = 4  # the tracker closed our session for a reason of its own (flooding, kicked, banned...)

# Close codes meaning "the tracker went away", as opposed to "the tracker sent us away".
_GONE_CODES = frozenset({CloseCode.GOING_AWAY, CloseCode.INTERNAL_ERROR, 1006, 1012, 1013, 1014})
# Of those, the closes after which the tracker (or another one on its address) may take us
# back: not 1001, which the tracker sends when it is stopped for good (``bye`` ``shutdown``).
# None is a connection lost without a close frame.
RECONNECT_CODES = frozenset({None, 1006, CloseCode.INTERNAL_ERROR, CloseCode.SERVICE_RESTART, 1013, 1014})


class ClientError(Exception):
    """Base of every error the client reports to its user; ``exit_status`` is the process's."""

    exit_status = EXIT_FAILURE


class UsageError(ClientError):
    """Bad arguments or settings, found before connecting."""

    exit_status = EXIT_USAGE


class Unreachable(ClientError):
    """The tracker could not be reached, or did not answer the WebSocket handshake."""


class HandshakeRefused(ClientError):
    """The tracker refused the connection before the welcome (full, timed out, protocol error)."""


class TryLater(HandshakeRefused):
    """Refused for now (too many wrong passwords, or joins from this address): try again after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthenticationFailed(ClientError):
    """The tracker refused the password."""


class NameRejected(ClientError):
    """The tracker refused the username; the connection stays open for another try."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ResumeRefused(ClientError):
    """The tracker would not resume our session (unknown token, other epoch, expired...).

    The connection stays open: a fresh ``join`` on it may still get us back in.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code


class SessionClosed(ClientError):
    """The tracker closed the session without us asking; ``code`` is None if the connection was lost."""

    def __init__(self, code: int | None, detail: str = "") -> None:
        super().__init__(detail or describe(code))
        self.code = code
        self.detail = detail or describe(code)


class TrackerGone(SessionClosed):
    """The tracker shut down (1001 after ``bye shutdown``) or the connection was lost."""

    exit_status = EXIT_TRACKER_GONE

    @property
    def reconnectable(self) -> bool:
        """A loss worth reconnecting after (see RECONNECT_CODES)."""
        return self.code in RECONNECT_CODES


class Removed(SessionClosed):
    """The tracker closed our session for a cause of ours: flooding, too slow, protocol error..."""

    exit_status = EXIT_REMOVED


class Banned(Removed):
    """A moderator's ban refused us: our address at the handshake, or our name at the join.

    Final, like a kick or a ban mid-session (4011, 4012): never retried, exit 4.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(CloseCode.BANNED, detail)


class InvalidState(ClientError):
    """An operation the ``Link`` cannot carry out in its present state: a bug in the caller, not the tracker's doing.

    Raised for a move its table does not have (``welcome`` while live) and for what the
    person does (``say``, ``offer``, ``who``, ``leave``) before the first welcome.
    """

    def __init__(self, operation: str, state: str) -> None:
        super().__init__(f"cannot {operation} in state {state}")
        self.operation = str(operation)
        self.state = str(state)


def session_closed(code: int | None, detail: str = "") -> SessionClosed:
    """The exception for a close mid-session: gone (3) or removed (4)."""
    if code is None or code in _GONE_CODES:
        return TrackerGone(code, detail)
    return Removed(code, detail)


class Quit(Exception):
    """The user pressed Ctrl+C or Ctrl+D at a prompt before joining: stop quietly."""


class BadArguments(ValueError):
    """Missing or malformed arguments; the message (possibly empty) says which."""
