"""Which web pages may open a WebSocket to the tracker: the ``--allowed-origins`` allow-list.

A browser applies no same-origin rule to WebSockets: any page a person visits may open
``ws://tracker:8000/ws`` from their browser, on their network (cross-site WebSocket
hijacking). It cannot hide where it comes from, though: the browser sends the page's
``Origin`` with the handshake. So a handshake whose Origin is not on the list is refused
before the WebSocket exists (uvicorn answers HTTP 403), and the page never gets to try a
password from behind someone's firewall.

The default, ``self``, allows the tracker's own page: an Origin with the same host and
port as the request's ``Host`` header (a missing port is the scheme's default, so
``https://chat.example.org`` matches ``Host: chat.example.org`` behind a TLS proxy that
keeps the Host). The Host itself was checked before (``transport/http_guard.py``, ``--allowed-hosts``:
a request naming another host gets 400), so ``self`` always means one of the allowed hosts and a
DNS-rebinding page, whose Origin and Host both name the attacker's domain, never gets here.
Programs that are not browsers (chat-client, wscat, websocat) send no
Origin and are always let in: they could send any Origin they liked, so the check
protects browser users only, and the password still guards the room.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

SELF = "self"  # the tracker's own origin, whatever host name it is reached by
ANY = "*"  # every origin: for a page served from elsewhere, on a trusted network only
NONE = "none"  # no browser page at all, only origin-less clients

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class Origin:
    """A web origin: scheme, host and port (the default port filled in)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Origin:
        """``https://chat.example.org`` or ``http://[::1]:8000``; ValueError for anything else."""
        parts = urlsplit(text.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an origin (scheme://host[:port]): {text!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"an origin has no path, query or user: {text!r}")
        return cls(scheme, parts.hostname.lower(), parts.port or _DEFAULT_PORTS[scheme])

    def same_host(self, host_header: str) -> bool:
        """True if ``host_header`` (``host[:port]``) names this origin's host and port."""
        try:
            parts = urlsplit(f"//{host_header.strip()}")
            port = parts.port or _DEFAULT_PORTS[self.scheme]
        except ValueError:  # a port that is not a number, or out of range
            return False
        return (parts.hostname or "").lower() == self.host and port == self.port


@dataclass(frozen=True)
class AllowedOrigins:
    """The allow-list: the tracker's own origin (``self``), listed origins, or any (``*``)."""

    same_origin: bool = True
    listed: frozenset[Origin] = frozenset()
    any: bool = False

    @classmethod
    def parse(cls, text: str) -> AllowedOrigins:
        """``self``, ``none``, ``*``, or a comma-separated mix of ``self`` and origins."""
        items = [item.strip() for item in text.split(",") if item.strip()]
        if items == [NONE]:
            return cls(same_origin=False)
        if ANY in items:
            return cls(any=True)
        listed = frozenset(Origin.parse(item) for item in items if item.lower() != SELF)
        return cls(same_origin=any(item.lower() == SELF for item in items), listed=listed)

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether a handshake with this ``Origin`` header (None: none sent) and ``Host`` header may go on."""
        if not origin:
            return True  # not a browser: chat-client, wscat; nothing here could stop it anyway
        if self.any:
            return True
        try:
            parsed = Origin.parse(origin)
        except ValueError:
            return False  # "null" (a sandboxed frame, a file:// page) and anything malformed
        if parsed in self.listed:
            return True
        return self.same_origin and host is not None and parsed.same_host(host)

    def __str__(self) -> str:
        if self.any:
            return ANY
        names = ([SELF] if self.same_origin else []) + sorted(f"{o.scheme}://{o.host}:{o.port}" for o in self.listed)
        return ",".join(names) or NONE


DEFAULT = AllowedOrigins()  # "self": the tracker's own page, and clients that send no Origin


def origin_list(text: str) -> AllowedOrigins:
    """``--allowed-origins``'s type (named so that argparse's message reads well)."""
    return AllowedOrigins.parse(text)


def handshake_allowed(allowed: AllowedOrigins, headers: list[tuple[bytes, bytes]]) -> tuple[bool, str | None]:
    """(allowed?, the Origin sent) for a WebSocket handshake's headers, as (name, value) byte pairs."""
    origin = host = None
    for key, value in headers:
        name = key.lower()
        if name == b"origin":
            origin = value.decode("latin-1")
        elif name == b"host":
            host = value.decode("latin-1")
    return allowed.allows(origin, host), origin
