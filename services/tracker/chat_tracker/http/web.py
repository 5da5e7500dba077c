"""The browser client: ``/`` and its static files (``chat_tracker/web/``), with strict headers.

The files ship inside the package (no CDN, nothing fetched at run time) and are read
once, at import: a handful of small files, so each request is a dictionary lookup and
no request can name a path outside them. Every answer carries a Content-Security-Policy
that allows scripts, styles and connections from the tracker's own origin only, no
inline script, no ``innerHTML`` (Trusted Types with no policy), no framing, and no form
that could put the password in a URL if the script failed to load.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

from fastapi import APIRouter, Request, Response

WEB_PATH = "/web/"  # where the static files are served; "/" is index.html

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    "script-src 'self'; "
    "style-src 'self'; "
    "img-src 'self'; "
    "connect-src 'self'; "  # the page's own /ws (ws: and wss: of the same host count as 'self')
    "base-uri 'none'; "
    "form-action 'none'; "
    "frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; "  # a string assigned to innerHTML throws
    "trusted-types 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    # Revalidate every time (cheap: an ETag): a tracker upgrade reaches every open tab's next load.
    "Cache-Control": "no-cache",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def _load() -> dict[str, StaticFile]:
    """Every servable file of ``chat_tracker/web``, by name."""
    loaded = {}
    for entry in files("chat_tracker").joinpath("web").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in CONTENT_TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            loaded[entry.name] = StaticFile(body, CONTENT_TYPES[suffix], etag)
    return loaded


FILES = _load()
router = APIRouter(include_in_schema=False)


def _answer(name: str, request: Request) -> Response:
    found = FILES.get(name)
    if found is None:
        return Response("not found\n", status_code=404, media_type="text/plain", headers=SECURITY_HEADERS)
    headers = {**SECURITY_HEADERS, "ETag": found.etag}
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.content_type, headers=headers)


@router.get("/")
def index(request: Request) -> Response:
    """The page: password, then name, then the room."""
    return _answer("index.html", request)


@router.get(WEB_PATH + "{name}")
def static_file(name: str, request: Request) -> Response:
    """One of the page's scripts, its style sheet or its icon."""
    return _answer(name, request)
