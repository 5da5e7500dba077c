"""The ``/ws`` opening handshake, on websockets' sans-I/O ``ServerProtocol``.

``parser`` makes a connection's parser: messages up to ``--max-frame-bytes`` (after
decompression too), the ``groupchat.v1`` subprotocol chosen when the peer offers it,
and with ``--ws-deflate`` the permessage-deflate extension (RFC 7692) for a peer that
offers it. ``answer`` decides on the upgrade request and puts the answer in the
parser's output: 101, 404 for any path but ``/ws``, 403 for a page of an origin not on
``--allowed-origins`` (before any password is tried), or the 4xx websockets gives an
invalid upgrade request. The caller writes that output and runs the session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL, WEBSOCKET_PATH
from chat_tracker.core.dialects import JSON, PLAIN, Dialect
from chat_tracker.core.origins import AllowedOrigins, handshake_allowed

_SUBPROTOCOLS = (Subprotocol(SUBPROTOCOL),)
_QUIET = logging.getLogger("uvicorn.error")  # the websockets parser's own lines, at uvicorn's level
# The deflate windows uvicorn offered when it carried --ws-deflate: 4 KiB each way, and
# zlib's memLevel 5. A peer that does not announce client_max_window_bits may still use
# 32 KiB for its own; what it sends is bounded by the message size limit all the same.
DEFLATE_WINDOW_BITS = 12
DEFLATE_MEM_LEVEL = 5
NOT_HERE = f"no WebSocket here: the chat is at {WEBSOCKET_PATH}"


@dataclass(frozen=True, slots=True)
class Opened:
    """An accepted upgrade: what the session starts from."""

    dialect: Dialect
    query: bytes  # the query string, as sent (a password may be in it)
    authorization: str | None
    compressed: bool  # permessage-deflate was negotiated: every frame goes out through the parser


def parser(max_frame_bytes: int, deflate: bool) -> ServerProtocol:
    """A new connection's parser; with ``deflate`` it accepts permessage-deflate when offered.

    ``max_size`` bounds a whole message after decompression: websockets lets zlib
    produce at most what is left of it, so a small compressed frame that inflates past
    ``--max-frame-bytes`` is refused with 1009 without ever being held whole.
    """
    extensions: Sequence[ServerExtensionFactory] = ()  # kept by the parser: shared, not a list each
    if deflate:
        extensions = [
            ServerPerMessageDeflateFactory(
                server_max_window_bits=DEFLATE_WINDOW_BITS,
                client_max_window_bits=DEFLATE_WINDOW_BITS,
                compress_settings={"memLevel": DEFLATE_MEM_LEVEL},
            )
        ]
    return ServerProtocol(
        extensions=extensions, max_size=max_frame_bytes, select_subprotocol=_select_subprotocol, logger=_QUIET
    )


def _select_subprotocol(_: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """``groupchat.v1`` when offered (the JSON dialect); otherwise none, and the plain dialect."""
    return _SUBPROTOCOLS[0] if _SUBPROTOCOLS[0] in offered else None


def answer(
    conn: ServerProtocol, request: Request, allowed: AllowedOrigins, refused_origin: Callable[[str | None], None]
) -> Opened | None:
    """Answer ``request`` into ``conn``'s output: the upgrade accepted, or None (refused: close after the answer)."""
    raw_path, _, query = request.path.partition("?")
    if unquote(raw_path) != WEBSOCKET_PATH:
        conn.send_response(conn.reject(404, NOT_HERE))
        return None
    origin_allowed, origin = handshake_allowed(allowed, _origin_headers(request))
    if not origin_allowed:
        refused_origin(origin)
        conn.send_response(conn.reject(403, ""))
        return None
    # The first, as an ASGI server would give it: ``get`` raises on a repeated header.
    authorization = next(iter(request.headers.get_all("Authorization")), None)
    response = conn.accept(request)
    request.headers.clear()  # the parser keeps the request object: do not keep its headers too
    if response.status_code != 101:  # not a valid upgrade (websockets says why in the body)
        conn.send_response(response)
        return None
    _strip(response)
    conn.send_response(response)
    dialect = JSON if "Sec-WebSocket-Protocol" in response.headers else PLAIN
    compressed = bool(conn.extensions)  # permessage-deflate is the only extension ever offered
    return Opened(dialect, query.encode("latin-1", "replace"), authorization, compressed)


def _origin_headers(request: Request) -> list[tuple[bytes, bytes]]:
    """``Origin`` and ``Host`` as ``origins.handshake_allowed`` reads them (ASGI's byte pairs)."""
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1", "replace"))
        for name, value in request.headers.raw_items()
        if name.lower() in ("origin", "host")
    ]


def _strip(response: Response) -> None:
    """No ``Date`` nor ``Server`` in the 101, as uvicorn (``server_header=False``) sends neither."""
    for name in ("Date", "Server"):
        if name in response.headers:
            del response.headers[name]
