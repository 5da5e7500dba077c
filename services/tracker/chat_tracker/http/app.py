"""The app factory: a Tracker behind FastAPI (REST, the web page, /admin).

``/ws`` is not here: ``transport/http_guard.py`` hands every WebSocket upgrade to the
native adapter (``transport/native.py``) before uvicorn builds an ASGI scope for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chat_tracker import __version__
from chat_tracker.http import admin, admin_accounts
from chat_tracker.http.rest import attach_metrics, router
from chat_tracker.http.rooms_rest import router as rooms_router
from chat_tracker.http.web import router as web_router  # the browser client at /
from chat_tracker.service.settings import Settings
from chat_tracker.service.tracker import Tracker
from chat_tracker.transport.asgi import ASGIApp, Receive, Scope, Send


class TrackerApp:
    """The ASGI application uvicorn runs (HTTP and lifespan), and the tracker behind it."""

    def __init__(self, tracker: Tracker, api: FastAPI) -> None:
        self.tracker = tracker
        self.api: ASGIApp = admin.AdminGate(tracker, api)  # /admin's password before its body is read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.api(scope, receive, send)


def create_app(settings: Settings, room_logs: int) -> TrackerApp:
    """Build a tracker from ``settings``: opens (and repairs) chat.log at once (``room_logs``: ``RoomHouse``'s)."""
    tracker = Tracker(settings, room_logs)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tracker.start()
        yield
        await tracker.shutdown()

    api = FastAPI(
        title="Group chat tracker",
        version=__version__,
        summary="Who is online and what was said. Chat itself happens on the WebSocket endpoint /ws.",
        lifespan=lifespan,
        # No /docs or /redoc: FastAPI's pages load Swagger UI and ReDoc from a CDN with an inline
        # script, on the chat page's origin. The schema stays at /openapi.json for tools.
        docs_url=None,
        redoc_url=None,
    )
    api.state.tracker = tracker
    attach_metrics(api.state, tracker)
    api.include_router(router)
    api.include_router(rooms_router)
    if settings.admin_password is not None:  # moderation off: /admin is not there at all (404)
        admin.mount(api, admin_accounts.router)
    api.include_router(web_router)  # / and /web/*, outside the OpenAPI schema
    return TrackerApp(tracker, api)
