"""Which ``Host`` headers the tracker answers: the ``--allowed-hosts`` list (DNS rebinding).

A web page on ``http://evil.example:8000`` can make its own name resolve to 127.0.0.1
a moment after the browser loaded it (DNS rebinding). The browser then sends the page's
requests, and its WebSocket, to the tracker on the person's laptop, with
``Host: evil.example:8000`` and ``Origin: http://evil.example:8000``: the same origin as
far as the browser can tell, so neither the browser nor the ``self`` Origin rule
(``origins.py``) would stop it. Only the tracker knows that ``evil.example`` is not one of
its names, so a request whose ``Host`` is not on the list is answered ``400`` before
anything else (``transport/http_guard.py``: REST, the page and ``/ws``, before the upgrade is handed on).

The list is written as Starlette's ``TrustedHostMiddleware`` takes it: names, with
``*.example.org`` for any subdomain of ``example.org``; the port is never compared (a
proxy may publish the tracker on another one). Two words besides:

- ``auto`` (the default): on a loopback ``--host`` only the loopback names
  (``localhost``, ``127.0.0.1`` and the rest of 127.0.0.0/8, ``[::1]``), which stops DNS
  rebinding against a tracker on a laptop and costs nothing there; on any other ``--host``
  any name, because the tracker cannot know the names it is reached by (``tracker`` in
  Docker Compose, a LAN name, a proxy's), with a warning at start naming the flag;
- ``*``: any name, explicitly (still warned about when listening beyond loopback).

The loopback names are answered whatever the list: a rebinding page can only send its own name,
never ``localhost``, and the container health check (``scripts/healthcheck``) and a local
``curl`` ask ``127.0.0.1``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

AUTO = "auto"
ANY = "*"
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, as given to ``--host`` or in a Host header) is loopback."""
    bare = host.strip().strip("[]").lower()
    if bare in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header (``name[:port]``, ``[v6]:port``), lower case; None if malformed."""
    header = header.strip()
    if any(char in header for char in "@/?#\\ \t"):  # not part of a host: "evil@localhost" names evil
        return None
    try:
        parts = urlsplit(f"//{header}")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    return parts.hostname or None


@dataclass(frozen=True)
class AllowedHosts:
    """``auto``, ``*``, or names and ``*.domain`` patterns; ``resolve`` turns ``auto`` into one of the others."""

    names: frozenset[str] = frozenset()
    patterns: tuple[str, ...] = ()  # suffixes, ".example.org" for "*.example.org"
    any: bool = False
    auto: bool = False

    @classmethod
    def parse(cls, text: str) -> AllowedHosts:
        items = [item.strip().lower() for item in text.split(",") if item.strip()]
        if not items:
            raise ValueError("give at least one host name, 'auto' or '*'")
        if items == [AUTO]:
            return cls(auto=True)
        if ANY in items:
            return cls(any=True)
        names, patterns = set(), []
        for item in items:
            if item.startswith("*."):
                patterns.append(item[1:])
            elif "*" in item or "/" in item:
                raise ValueError(f"not a host name or *.domain pattern: {item!r}")
            else:
                names.add(item.strip("[]"))
        return cls(names=frozenset(names), patterns=tuple(patterns))

    def resolve(self, listen_host: str) -> AllowedHosts:
        """``auto`` made concrete for a tracker listening on ``listen_host``."""
        if not self.auto:
            return self
        return LOOPBACK if is_loopback(listen_host) else AllowedHosts(any=True)

    def allows(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header (None: none sent) is answered."""
        if self.any or self.auto:
            return True
        name = host_name(header) if header else None
        if name is None:
            return False
        if is_loopback(name):  # never a rebinding page's name (see above)
            return True
        return name in self.names or any(name.endswith(pattern) for pattern in self.patterns)

    def __str__(self) -> str:
        if self.auto:
            return AUTO
        if self.any:
            return ANY
        listed = sorted(self.names) + sorted("*" + pattern for pattern in self.patterns)
        return ",".join(listed) or "localhost"


DEFAULT = AllowedHosts(auto=True)
LOOPBACK = AllowedHosts()  # nothing listed: the loopback names only


def host_list(text: str) -> AllowedHosts:
    """``--allowed-hosts``'s type (named so that argparse's message reads well)."""
    return AllowedHosts.parse(text)
