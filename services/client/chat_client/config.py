"""Where to connect and who to be: tracker URL normalisation and password loading.

Pure functions of their inputs (arguments, environment, files), so they are
tested without a tracker. Every problem found here is a UsageError (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

from chat_protocol import WEBSOCKET_PATH

from .errors import UsageError

DEFAULT_PORT = 8000
DEFAULT_PATH = WEBSOCKET_PATH
DEFAULT_URL = f"ws://localhost:{DEFAULT_PORT}{DEFAULT_PATH}"

# What a person may type, and the WebSocket scheme it means.
_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def resolve_url(argument: str | None, environ: dict[str, str]) -> str:
    """The tracker URL from the argument, else ``TRACKER_URL``, else the default."""
    raw = argument or environ.get("TRACKER_URL") or DEFAULT_URL
    return normalize_url(raw)


def normalize_url(raw: str) -> str:
    """Turn ``host``, ``host:port``, ``http://host`` or ``ws://host:port/path`` into a ws(s) URL.

    A bare host gets port 8000 and path ``/ws``, as the seed's ``./Client $tracker_ip``
    did. Credentials and query strings are refused: the password never goes in a URL
    (the tracker would log it and refuse it with 4003).
    """
    text = raw.strip()
    if not text:
        raise UsageError("the tracker URL is empty")
    bare = "://" not in text
    parts = urlsplit(f"ws://{text}" if bare else text)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise UsageError(f"unsupported URL scheme {parts.scheme!r}: use ws://, wss://, http:// or https://")
    _check_parts(parts, raw)
    netloc = parts.netloc
    if bare and parts.port is None:
        netloc = f"{netloc}:{DEFAULT_PORT}"
    path = parts.path if parts.path not in ("", "/") else DEFAULT_PATH
    return urlunsplit((scheme, netloc, path, "", ""))


def _check_parts(parts: SplitResult, raw: str) -> None:
    if not parts.hostname:
        raise UsageError(f"no host in tracker URL {raw!r}")
    if parts.username is not None or parts.password is not None:
        raise UsageError("do not put credentials in the URL: use --password-file or TRACKER_PASSWORD")
    if parts.query or parts.fragment:
        raise UsageError("the tracker URL must not have a query string or fragment (never put the password in it)")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily, on access
    except ValueError:
        raise UsageError(f"invalid port in tracker URL {raw!r}") from None


def admin_base_url(ws_url: str) -> str:
    """The tracker's HTTP base for ``/admin`` from its WebSocket URL: ws -> http, wss -> https, ``/ws`` dropped.

    ``ws://host:8000/ws`` -> ``http://host:8000``; ``wss://example.org/chat/ws`` ->
    ``https://example.org/chat`` (a tracker mounted under a path behind a proxy).
    """
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    path = parts.path.removesuffix(DEFAULT_PATH).rstrip("/") if parts.path.endswith(DEFAULT_PATH) else parts.path
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def header_safe(password: str) -> bool:
    """Whether ``password`` can travel in an HTTP header (printable ASCII only)."""
    return password.isascii() and password.isprintable()


def resolve_admin_password(admin: bool, environ: dict[str, str]) -> str | None:
    """``TRACKER_ADMIN_PASSWORD`` when ``--admin`` is given; None means ask for it (or, scripted, a usage error)."""
    if not admin:
        return None
    password = environ.get("TRACKER_ADMIN_PASSWORD") or None
    if password is not None and not header_safe(password):
        raise UsageError("TRACKER_ADMIN_PASSWORD must be printable ASCII: it travels in an HTTP header")
    return password


def read_password_file(path: str) -> str:
    """The password in ``path``: its first line, without the line ending."""
    try:
        content = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read password file {path}: {_reason(exc)}") from None
    lines = content.splitlines()
    password = lines[0] if lines else ""
    if not password:
        raise UsageError(f"password file {path} is empty")
    return password


def resolve_password(password_file: str | None, environ: dict[str, str]) -> str | None:
    """The password from ``--password-file``, else ``TRACKER_PASSWORD``; None means ask for it."""
    if password_file is not None:
        return read_password_file(password_file)
    return environ.get("TRACKER_PASSWORD") or None


def resolve_passphrase(passphrase_file: str | None, environ: dict[str, str]) -> str | None:
    """A registered name's passphrase from ``--passphrase-file``, else ``CHAT_PASSPHRASE``; None: ask if needed."""
    if passphrase_file is not None:
        return read_password_file(passphrase_file)
    return environ.get("CHAT_PASSPHRASE") or None


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
