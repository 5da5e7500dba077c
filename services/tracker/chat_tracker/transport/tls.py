"""HTTPS and WSS from the tracker itself: ``--tls-cert`` and ``--tls-key``.

Without TLS the room password, the admin password and resume tokens cross the network
in clear, so beyond loopback the tracker is served either over TLS here or behind a
reverse proxy that terminates it (docs/operations.md). The two files are checked at
start, before the password is asked for: a missing one, an unreadable one, a key that
does not match its certificate, each is a one-line configuration error (exit 2), never
a traceback once uvicorn is already starting.

uvicorn builds its own context from the same two paths (``uvicorn.Config(ssl_certfile=,
ssl_keyfile=)``); every protocol of the tracker (``http_guard``, ``native``, ``wire``)
only ever sees the transport, which is the TLS one then.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from chat_tracker.errors import ConfigError, EncryptedKey


@dataclass(frozen=True)
class TlsFiles:
    """The certificate chain (PEM, leaf first) and its private key (PEM, unencrypted)."""

    cert: Path
    key: Path


def tls_files(cert: Path | None, key: Path | None) -> TlsFiles | None:
    """Both files, or neither (None: plain HTTP); one without the other is a ConfigError."""
    if cert is None and key is None:
        return None
    if cert is None:
        raise ConfigError("--tls-key needs --tls-cert too (TRACKER_TLS_CERT): the certificate for that key")
    if key is None:
        raise ConfigError("--tls-cert needs --tls-key too (TRACKER_TLS_KEY): the private key of that certificate")
    return TlsFiles(cert, key)


def check_loadable(files: TlsFiles) -> None:
    """Load the pair into a server context as uvicorn will; a ConfigError says which file and why."""
    for flag, path in (("--tls-cert", files.cert), ("--tls-key", files.key)):
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile=files.cert, keyfile=files.key, password=_no_passphrase)
    except EncryptedKey:
        raise ConfigError(f"--tls-key {files.key} is encrypted: give the key without a passphrase") from None
    except ssl.SSLError as exc:
        raise ConfigError(
            f"cannot use --tls-cert {files.cert} with --tls-key {files.key}: {getattr(exc, 'reason', None) or exc} "
            "(both PEM, the key unencrypted and matching the certificate)"
        ) from None


def _no_passphrase() -> bytes:
    # uvicorn loads the key with no passphrase, and OpenSSL would then prompt on the terminal
    # at every start (or fail without one): refuse an encrypted key here, plainly.
    raise EncryptedKey


PLAIN_WARNING = (
    "Serving plain http and ws on %s: the room password, the admin password and resume tokens cross the "
    "network in clear. Give --tls-cert/--tls-key, or put a TLS proxy in front (docs/operations.md#tls)"
)


def clear_beyond_loopback(host: str, tls: bool, behind_proxy: bool) -> bool:
    """Whether passwords would cross a network in clear: no TLS, no proxy named, a host beyond loopback."""
    if tls or behind_proxy:
        return False  # a trusted proxy is where TLS ends (docs/operations.md#tls)
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: whatever it resolves to may be reached from elsewhere
