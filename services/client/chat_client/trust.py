"""Which certificates the client trusts for ``wss://`` and ``https://`` trackers.

The system's trust store (OpenSSL's default paths, as ``curl`` and ``openssl`` use; on
Debian ``/etc/ssl/certs``, and ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set), not the
``certifi`` bundle httpx would pick by itself: a tracker's certificate from a company CA
that the system trusts is trusted here too. ``--cafile FILE`` (``CHAT_CLIENT_CAFILE``)
adds one more PEM file of certificates to trust, for a tracker with a self-signed
certificate or a private CA. Host names are always checked.

Like ``SSL_CERT_FILE``, the trust is one setting of the whole process: the chat
connection (``connection.connect``) and the moderator's REST calls (``moderator.py``)
both use ``context()``.
"""

from __future__ import annotations

import ssl

from .errors import UsageError


class _Trust:
    """The process's one trust setting (set by ``use_cafile``, built lazily otherwise)."""

    context: ssl.SSLContext | None = None


_TRUST = _Trust()

CAFILE_HINT = "trust its certificate with --cafile FILE or CHAT_CLIENT_CAFILE"


def trust_context(cafile: str | None) -> ssl.SSLContext:
    """The system's trust store, plus the certificates in ``cafile``; UsageError if it cannot be read."""
    context = ssl.create_default_context()
    if cafile:
        try:
            context.load_verify_locations(cafile=cafile)
        except ssl.SSLError as exc:  # an OSError too: caught first
            raise UsageError(
                f"--cafile {cafile} holds no PEM certificate: {getattr(exc, 'reason', None) or exc}"
            ) from None
        except OSError as exc:
            raise UsageError(f"cannot read --cafile {cafile}: {exc.strerror or exc}") from None
    return context


def use_cafile(cafile: str | None) -> None:
    """Trust ``cafile`` too from now on (None: the system's trust store only)."""
    _TRUST.context = trust_context(cafile)


def context() -> ssl.SSLContext:
    """The context every TLS connection of this process verifies the tracker with."""
    if _TRUST.context is None:
        _TRUST.context = trust_context(None)
    return _TRUST.context


def tls_failure(error: BaseException) -> str | None:
    """What went wrong in TLS, said for a person, if ``error`` (or what caused it) is a TLS failure."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate verify failed ({seen.verify_message}): {CAFILE_HINT}"
        if isinstance(seen, ssl.SSLError):
            reason = getattr(seen, "reason", None) or str(seen)
            if reason == "WRONG_VERSION_NUMBER":
                return "TLS handshake failed: the tracker does not seem to serve TLS there (ws:// or http:// instead?)"
            return f"TLS handshake failed ({reason})"
        seen = seen.__cause__ or seen.__context__
    return None
