"""``/admin``: moderation over REST - kick, mute, ban, unban, announce - for the holder of the admin password.

Off (not mounted: every ``/admin`` path answers 404) unless the tracker has an admin password
(``TRACKER_ADMIN_PASSWORD_FILE`` or ``TRACKER_ADMIN_PASSWORD``). The password travels as
``Authorization: Bearer <admin password>`` only, is compared in constant time and
wrong guesses are refused per address, as for the room password. ``AdminGate`` checks it
in front of FastAPI, before anything reads the request's body (FastAPI reads a body whole
before any dependency runs): a stranger's 300 MB body is answered 401 unread. The routes
are left out of the public ``/openapi.json``; ``/admin/openapi.json`` gives their schema
to the holder of the admin password. Each action is a
journal event (``core/room/moderating.py``, ``core/moderation.py``): the answer comes once it is durable
in chat.log, so what a moderator was told was done survives a SIGKILL.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, model_validator

from chat_protocol import NameRefused, check_name, format_ts
from chat_tracker.core.moderation import Ban, network
from chat_tracker.core.room import Member
from chat_tracker.http.rest import too_many_guesses
from chat_tracker.service.tracker import Tracker
from chat_tracker.transport.asgi import ASGIApp, Receive, Scope, Send

MAX_REASON_CHARS = 500
MAX_SECONDS = 10 * 365 * 24 * 3600.0  # ten years: longer is "for ever" (no ``seconds``)
CHALLENGE = 'Bearer realm="chat admin"'


class KickIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="The member to remove")
    reason: str = Field(default="", max_length=MAX_REASON_CHARS, description="Shown to everyone and logged")


class MuteIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="The member to mute")
    seconds: float = Field(ge=0, le=MAX_SECONDS, description="How long; 0 lifts a mute")
    reason: str = Field(default="", max_length=MAX_REASON_CHARS)


class BanIn(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=64, description="A name (lookalikes too)")
    address: str | None = Field(default=None, min_length=1, max_length=64, description="An address or network")
    seconds: float | None = Field(default=None, gt=0, le=MAX_SECONDS, description="How long; null: for ever")
    reason: str = Field(default="", max_length=MAX_REASON_CHARS)

    @model_validator(mode="after")
    def one_target(self) -> BanIn:
        if (self.name is None) == (self.address is None):
            raise ValueError("give exactly one of 'name' and 'address'")
        if self.address is not None:
            network(self.address)  # ValueError: not an address or network
        if self.name is not None:
            try:
                check_name(self.name)
            except NameRefused as refused:
                raise ValueError(f"not a possible name: {refused}") from None
        return self


class AnnounceIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000, description="The notice everyone sees")


class ActionOut(BaseModel):
    action: str = Field(description="kick, mute or announce")
    name: str | None = Field(default=None, description="The member it concerned")
    reason: str = ""
    seconds: float | None = None
    until: str | None = Field(default=None, description="When a mute ends (UTC ISO-8601)")
    text: str | None = None


class BanOut(BaseModel):
    id: str = Field(description="Pass to DELETE /admin/bans/{id} to lift it")
    name: str | None
    address: str | None
    until: str | None = Field(description="When it ends (UTC ISO-8601); null: never")
    reason: str


class BansOut(BaseModel):
    bans: list[BanOut]


class LiftedOut(BaseModel):
    id: str
    lifted: bool


def get_tracker(request: Request) -> Tracker:
    tracker: Tracker = request.app.state.tracker
    return tracker


TrackerDep = Annotated[Tracker, Depends(get_tracker)]


ADMIN_PREFIX = "/admin"


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def _bearer(scope: Scope) -> str | None:
    """The credentials of ``Authorization: Bearer ...`` in an ASGI scope, else None."""
    for key, value in scope.get("headers", []):
        if key.lower() == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None
    return None


class AdminGate:
    """In front of the app: ``/admin`` requests without the admin password are answered 401, body unread.

    404 when moderation is off (the routes are not mounted then, and this says why).
    """

    def __init__(self, tracker: Tracker, app: ASGIApp) -> None:
        self.tracker = tracker
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_admin_path(scope["path"]):
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    # Not rest.check_server_password: Bearer only, the admin gate and realm, answered before FastAPI reads the body.
    def _refusal(self, scope: Scope) -> JSONResponse | None:
        gate = self.tracker.admin_gate
        if gate is None:
            return JSONResponse({"detail": "moderation is off: the tracker has no admin password"}, status_code=404)
        client = scope.get("client")
        address = client[0] if client else "unknown"
        checked = gate.check(address, _bearer(scope))
        if checked.wait is not None:
            refused = too_many_guesses(checked.wait)
            return JSONResponse({"detail": refused.detail}, status_code=429, headers=refused.headers)
        if checked.ok:
            return None
        return JSONResponse(
            {"detail": "the admin password is required"}, status_code=401, headers={"WWW-Authenticate": CHALLENGE}
        )


PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON"},
    401: {"description": "Missing or wrong admin password"},
    429: {"description": "Too many wrong admin passwords: refused unchecked (with Retry-After)"},
    404: {"description": "Moderation is off, or no such member or ban"},
}
router = APIRouter(prefix=ADMIN_PREFIX, responses=PROBLEMS, tags=["moderation"])


async def method_not_allowed(request: Request, error: Exception) -> JSONResponse:
    """405 with every method the path takes in ``Allow``.

    Starlette answers with the first route whose path matched, so a path served by two routes
    (``GET`` and ``POST /admin/accounts``) would name one method only.
    """
    path = request.url.path
    allowed = {
        method
        for route in request.app.router.routes
        if isinstance(route, APIRoute) and route.path_regex.match(path)
        for method in route.methods or ()
    }
    return JSONResponse(
        {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(sorted(allowed))}
    )


def mount(api: FastAPI, *others: APIRouter) -> None:
    """The admin routes (and ``others``, such as /admin/accounts) on ``api``, out of its public schema;
    their own schema at /admin/openapi.json."""
    routes = list(router.routes)
    api.add_exception_handler(405, method_not_allowed)
    api.include_router(router, include_in_schema=False)
    for other in others:
        api.include_router(other, include_in_schema=False)
        routes += other.routes
    schema = get_openapi(title=f"{api.title}: moderation", version=api.version, routes=routes)

    @api.get(ADMIN_PREFIX + "/openapi.json", include_in_schema=False)
    def admin_schema() -> dict[str, Any]:
        return schema


def _member(tracker: Tracker, name: str) -> Member:
    member = tracker.room.find(name)
    if member is None:
        raise HTTPException(status_code=404, detail=f"no member named {name!r} is in the room")
    return member


@router.post("/kick", response_model=ActionOut, summary="Remove a member (close 4011: its client does not return)")
async def kick(body: KickIn, tracker: TrackerDep) -> ActionOut:
    member = _member(tracker, body.name)
    tracker.room.kick(member, body.reason)
    await tracker.journal.sync()
    return ActionOut(action="kick", name=member.name, reason=body.reason)


@router.post("/mute", response_model=ActionOut, summary="Refuse a member's messages for a while (0: unmute)")
async def mute(body: MuteIn, tracker: TrackerDep) -> ActionOut:
    member = _member(tracker, body.name)
    until = tracker.room.mute(member, body.seconds, body.reason)
    await tracker.journal.sync()
    return ActionOut(
        action="mute",
        name=member.name,
        reason=body.reason,
        seconds=body.seconds,
        until=format_ts(until) if until is not None else None,
    )


@router.post("/ban", response_model=BanOut, summary="Ban a name or an address; whoever matches now is removed")
async def ban(body: BanIn, tracker: TrackerDep) -> BanOut:
    made = tracker.room.ban(name=body.name, address=body.address, seconds=body.seconds, reason=body.reason)
    if body.name is not None:  # a registered name's membership ends, and its devices are signed out
        tracker.memberships.banned(body.name)
    await tracker.journal.sync()
    return _ban_out(made)


@router.get("/bans", response_model=BansOut, summary="The bans in force, with their expiry")
async def bans(tracker: TrackerDep) -> BansOut:
    return BansOut(bans=[_ban_out(ban) for ban in tracker.room.moderation.active()])


@router.delete("/bans/{ban_id}", response_model=LiftedOut, summary="Lift a ban")
async def unban(ban_id: str, tracker: TrackerDep) -> LiftedOut:
    if not tracker.room.unban(ban_id):
        raise HTTPException(status_code=404, detail=f"no ban {ban_id!r} is in force")
    await tracker.journal.sync()
    return LiftedOut(id=ban_id, lifted=True)


@router.post("/announce", response_model=ActionOut, summary="A notice from the operators to everyone, logged")
async def announce(body: AnnounceIn, tracker: TrackerDep) -> ActionOut:
    tracker.room.announce(body.text)
    await tracker.journal.sync()
    return ActionOut(action="announce", text=body.text)


def _ban_out(ban: Ban) -> BanOut:
    return BanOut(**ban.public())
