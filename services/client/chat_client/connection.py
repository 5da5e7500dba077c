"""One connection to the tracker over httpx-ws: connect, authenticate, join or resume, send, receive.

Speaks the structured dialect (subprotocol ``groupchat.v1``) with the message
classes of ``chat_protocol``. Everything that can go wrong surfaces as one of the
small exceptions of ``errors``, never as an httpx, wsproto or ExceptionGroup
traceback, so the modes above only decide what to print and which status to exit with.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
from httpx_ws import (
    AsyncWebSocketSession,
    HTTPXWSException,
    WebSocketDisconnect,
    WebSocketInvalidTypeReceived,
    WebSocketNetworkError,
    WebSocketUpgradeError,
    aconnect_ws,
)
from wsproto.utilities import LocalProtocolError

from chat_protocol import (
    SIGN_IN_ERRORS,
    SUBPROTOCOL,
    Auth,
    Authenticated,
    Bye,
    ClientMessage,
    CloseCode,
    Error,
    Hello,
    Join,
    Limits,
    ProtocolError,
    Resume,
    Resumed,
    Say,
    ServerMessage,
    Welcome,
    decode_server,
    describe,
    encode,
)

from . import trust
from .errors import (
    AuthenticationFailed,
    Banned,
    ClientError,
    HandshakeRefused,
    NameRejected,
    ResumeRefused,
    TrackerGone,
    TryLater,
    Unreachable,
    session_closed,
)
from .pacing import TokenBucket
from .resume import ID_LENGTH_BOUND

# Frames from the tracker are small, but a ``members`` answer in a busy room is not.
MAX_INCOMING_BYTES = 1 << 20
# A ping every 10 s, answered within 10 s: a connection that died silently (a laptop lid, a
# Wi-Fi that vanished) is noticed within 20 s and resumed, not left hanging for httpx-ws's 40.
KEEPALIVE_SECONDS = 10.0
# Refusals that say "not now": the error carries ``retry_after``; without one, this long.
TRY_LATER_ERRORS = frozenset(("too_many_guesses", "too_many_joins"))
TRY_LATER_SECONDS = 10.0


class SendFailed(TrackerGone):
    """A frame could not be sent: the connection is gone. The receiving side knows why."""


@dataclass(frozen=True)
class Incoming:
    """One frame from the tracker: the text exactly as sent (for ``--json``) and its meaning."""

    frame: str
    message: ServerMessage


class Connection:
    """An open WebSocket session with the tracker, from the handshake to the close."""

    def __init__(self, session: AsyncWebSocketSession, timeout: float) -> None:
        self._session = session
        self._timeout = timeout
        self._bucket: TokenBucket | None = None
        self.authenticated = False
        self.password: str | None = None  # the one that worked, kept for reconnecting
        self.welcome: Welcome | None = None
        self.limits: Limits | None = None  # from the welcome or the ``resumed``
        self.bye: Bye | None = None

    # --- before the welcome: every failure is a ClientError with exit status 1 -----

    async def greet(self, password: str | None) -> None:
        """Wait for ``hello``; if the header did not authenticate us, send ``password`` in an ``auth`` frame.

        With no password the connection stays unauthenticated, so the interactive
        client can ask for it only once it knows the tracker is there.
        """
        message = await self._handshake_message()
        if not isinstance(message, Hello):
            raise HandshakeRefused(f"unexpected {message.TYPE!r} frame instead of hello")
        self.authenticated = message.authenticated
        if self.authenticated:
            self.password = password
        elif password is not None:
            await self.authenticate(password)

    async def authenticate(self, password: str) -> None:
        """Send the password in an ``auth`` frame; raises AuthenticationFailed at once if it is wrong."""
        await self._handshake_send(Auth(password))
        message = await self._handshake_message()
        if not isinstance(message, Authenticated):
            raise HandshakeRefused(f"unexpected {message.TYPE!r} frame instead of authenticated")
        self.authenticated = True
        self.password = password

    async def join(
        self, name: str, passphrase: str | None = None, *, device_token: str | None = None, device: str | None = None
    ) -> Incoming:
        """Claim ``name`` (a registered one with its ``passphrase``, labelling this ``device``, or a
        ``device_token``). Returns the welcome; raises NameRejected (the connection stays usable;
        ``passphrase_required``, ``bad_passphrase``, ``bad_device_token``: try again)."""
        if device_token is not None:
            request = Join(name, device_token=device_token)
        else:
            request = Join(name, passphrase, device=device if passphrase is not None else None)
        await self._handshake_send(request)
        while True:
            incoming = await self._handshake_incoming()
            message = incoming.message
            if isinstance(message, Welcome):
                self.welcome = message
                self._enter(message.limits)
                return incoming
            if isinstance(message, Error):
                raise NameRejected(message.code, message.message)

    async def resume(self, request: Resume) -> Incoming:
        """Come back as the member ``request.token`` names. Returns the ``resumed`` answer;
        raises ResumeRefused (the connection stays usable for a fresh ``join``)."""
        await self._handshake_send(request)
        while True:
            incoming = await self._handshake_incoming()
            message = incoming.message
            if isinstance(message, Resumed):
                self._enter(message.limits)
                return incoming
            if isinstance(message, Error):
                raise ResumeRefused(message.code, message.message)

    def _enter(self, limits: Limits) -> None:
        """In the room: from now on every frame is paced below ``limits``."""
        self.limits = limits
        self._bucket = TokenBucket.below(limits)

    async def _handshake_send(self, message: ClientMessage) -> None:
        """Send before the welcome; if the tracker already closed (say, a person too slow to
        type a name: 4002), report the tracker's reason rather than a lost connection."""
        try:
            await self.send(message)
        except SendFailed:
            while True:
                await self._handshake_incoming()  # raises once it reaches the error or the close

    async def _handshake_message(self) -> ServerMessage:
        return (await self._handshake_incoming()).message

    async def _handshake_incoming(self) -> Incoming:
        """Next frame before the welcome; errors that end the connection are raised at once."""
        try:
            incoming = await self._next(timeout=self._timeout)
        except TimeoutError:
            raise HandshakeRefused(f"no answer from the tracker within {self._timeout:g} s") from None
        except WebSocketDisconnect as exc:
            raise _handshake_close(exc.code) from None
        except WebSocketNetworkError:
            raise HandshakeRefused("connection lost during the handshake") from None
        message = incoming.message
        # Report a wrong password at once: the 4001 close that follows adds nothing.
        if isinstance(message, Error) and message.code == "bad_password":
            raise AuthenticationFailed(message.message or "wrong password")
        # A ban (of our address, or of the name we asked for) is final, whenever it comes.
        if isinstance(message, Error) and message.code == "banned":
            raise Banned(message.message or describe(CloseCode.BANNED))
        # Too many guesses or joins: the tracker says when to try again (close 4013 / 4014 follows).
        if isinstance(message, Error) and message.code in TRY_LATER_ERRORS:
            raise TryLater(message.message or message.code, message.retry_after or TRY_LATER_SECONDS)
        # Refused names and refused resumes are answered on the same connection; others end it.
        if isinstance(message, Error) and not _answered_on_this_connection(message.code):
            raise HandshakeRefused(message.message or message.code)
        return incoming

    # --- in the room ----------------------------------------------------------------

    async def send(self, message: ClientMessage) -> None:
        """Send one frame, paced below the rate limit once we are in the room."""
        if self._bucket is not None:
            await self._bucket.wait()
        try:
            await self._session.send_text(encode(message))
        except (HTTPXWSException, LocalProtocolError):
            raise SendFailed(None, "connection lost") from None

    async def receive(self) -> Incoming | None:
        """The next event; None once the tracker closed normally (after our ``leave``).

        Raises TrackerGone (shutdown, connection lost) or Removed (any other close).
        """
        try:
            incoming = await self._next(timeout=None)
        except WebSocketDisconnect as exc:
            if exc.code == CloseCode.NORMAL:
                return None
            raise session_closed(exc.code, self._bye_detail(exc.code)) from None
        except WebSocketNetworkError:
            raise session_closed(None, "connection to the tracker lost") from None
        if isinstance(incoming.message, Bye):
            self.bye = incoming.message
        return incoming

    def _bye_detail(self, code: int) -> str:
        if self.bye is not None and self.bye.message:
            return self.bye.message
        return describe(code)

    async def _next(self, timeout: float | None) -> Incoming:
        """The next frame we understand; skips binary frames and types a newer tracker may add."""
        while True:
            try:
                frame = await self._session.receive_text(timeout=timeout)
            except WebSocketInvalidTypeReceived:
                continue
            try:
                return Incoming(frame, decode_server(frame))
            except ProtocolError:
                continue


def _answered_on_this_connection(code: str) -> bool:
    """Refused names, resumes and sign-ins: the connection stays open for another try."""
    return code.startswith(("name_", "resume_")) or code in SIGN_IN_ERRORS


def unsendable(text: str, limits: Limits | None) -> str | None:
    """Why ``text`` cannot go out as one message frame under ``limits``, or None.

    A frame over the tracker's ``max_frame_bytes`` would end the whole session
    (close 1009) and lose everything after it; refusing the one line is kinder.
    Measured with the longest id this client gives a message.
    """
    if limits is None:
        return None
    frame = encode(Say(text, "x" * ID_LENGTH_BOUND))
    size = len(frame.encode("utf-8", errors="surrogatepass"))
    if size <= limits.max_frame_bytes:
        return None
    return f"line not sent: {size} bytes as a frame, over the tracker's limit of {limits.max_frame_bytes}"


def _handshake_close(code: int) -> ClientError:
    if code == CloseCode.BAD_PASSWORD:
        return AuthenticationFailed("wrong password")
    if code == CloseCode.BANNED:
        return Banned(describe(code))
    if code in (CloseCode.TOO_MANY_GUESSES, CloseCode.TOO_MANY_JOINS):
        return TryLater(f"the tracker closed the connection: {describe(code)}", TRY_LATER_SECONDS)
    return HandshakeRefused(f"the tracker closed the connection: {describe(code)}")


def auth_header(password: str) -> dict[str, str]:
    """The Authorization header for ``password``, or none if it cannot travel in a header.

    HTTP headers carry printable ASCII only; any other password goes in an ``auth``
    frame instead, which the tracker accepts just the same.
    """
    if password.isascii() and password.isprintable():
        return {"Authorization": f"Bearer {password}"}
    return {}


@contextlib.asynccontextmanager
async def connect(url: str, password: str | None, *, timeout: float = 10.0) -> AsyncIterator[Connection]:
    """Open a connection to the tracker at ``url``, authenticated if ``password`` is given; closed on exit.

    The password goes in the handshake's Authorization header when it can, so a
    wrong one is refused before anything else happens; never in the URL.
    """
    headers = auth_header(password) if password is not None else {}
    try:
        async with (
            httpx.AsyncClient(timeout=timeout, verify=trust.context()) as client,
            aconnect_ws(
                url,
                client,
                subprotocols=[SUBPROTOCOL],
                headers=headers,
                max_message_size_bytes=MAX_INCOMING_BYTES,
                keepalive_ping_interval_seconds=KEEPALIVE_SECONDS,
                keepalive_ping_timeout_seconds=KEEPALIVE_SECONDS,
                session_class=AsyncWebSocketSession,
            ) as session,
        ):
            connection = Connection(session, timeout)
            await connection.greet(password)
            yield connection
    except BaseExceptionGroup as group:
        # httpx-ws runs the session in an anyio task group, which wraps whatever
        # leaves the ``async with`` (our own errors included) in an ExceptionGroup.
        raise _unwrap(group) from None
    except httpx.TransportError as exc:
        raise Unreachable(f"cannot reach the tracker at {url}: {_transport_reason(exc)}") from None
    except WebSocketUpgradeError as exc:
        raise Unreachable(f"{url} is not a chat tracker (HTTP {exc.response.status_code})") from None


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception that matters in a group: ours first, then interruptions."""
    leaves = list(_leaves(group))
    for kind in (ClientError, KeyboardInterrupt, SystemExit):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0] if len(leaves) == 1 else group


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    tls = trust.tls_failure(exc)
    if tls is not None:
        return tls
    return str(exc) or type(exc).__name__
