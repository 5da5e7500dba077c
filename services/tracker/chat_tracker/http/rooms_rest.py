"""The rooms over REST: ``GET /rooms``, each room's ``members`` and ``log`` as ``/members`` and ``/log`` answer,
and a registered member's conversations (``/direct/{name}/log``).

``/rooms`` and a public room need the server password, as ``/members`` does. A private room
and a conversation answer only to their own members' credentials: HTTP Basic with her
registered name and passphrase (checked and throttled as a sign-in is). Anything else
gets 404, as a room that does not exist: a private room's existence is not given away.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from chat_protocol import ProtocolError, check_name, room_name
from chat_protocol.errors import NameRefused
from chat_tracker.core.auth import basic_credentials
from chat_tracker.core.direct import conversation_name
from chat_tracker.core.room import Room
from chat_tracker.core.signin import CheckAccount, Verdict
from chat_tracker.http.rest import (
    MAX_LOG_LINES,
    UNAUTHORIZED,
    Authorized,
    LogOut,
    LogPageOut,
    MembersOut,
    ProblemOut,
    TrackerDep,
    check_server_password,
    log_of,
    members_of,
    too_many_guesses,
)
from chat_tracker.journal.protocol import Journal
from chat_tracker.service.tracker import Tracker

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ProblemOut, "description": "No such room (to you)"}}


class RoomOut(BaseModel):
    name: str = Field(description="The room's name, '#' and 1-32 of a-z 0-9 _ -")
    members: int = Field(description="Its members, online or not (registered members stay members while offline)")
    online: int = Field(description="Its members connected now")


class RoomsOut(BaseModel):
    count: int = Field(description="Public rooms listed, the default room first")
    rooms: list[RoomOut]


RoomName = Annotated[str, Path(description="The room's name, with or without its '#' (URL-encoded as %23)")]
Lines = Annotated[int | None, Query(ge=1, le=MAX_LOG_LINES, description="How many events, newest last")]
After = Annotated[int | None, Query(ge=0, description="Instead: the events after this seq, oldest first")]
Limit = Annotated[int, Query(ge=1, le=MAX_LOG_LINES, description="With `after`: at most this many")]
router = APIRouter()


@router.get("/rooms", response_model=RoomsOut, dependencies=[Authorized], responses=UNAUTHORIZED, summary="Rooms")
async def rooms(tracker: TrackerDep) -> RoomsOut:
    listed = [info for info in tracker.rooms.listing() if not info.private]
    return RoomsOut(count=len(listed), rooms=[RoomOut(name=i.room, members=i.members, online=i.online) for i in listed])


@router.get(
    "/rooms/{room}/members",
    response_model=MembersOut,
    responses={**UNAUTHORIZED, **NOT_FOUND},
    summary="Who is in a room (as /members for the default room)",
)
async def room_members(tracker: TrackerDep, request: Request, room: RoomName) -> MembersOut:
    return members_of((await _readable_room(tracker, request, room))[0])


@router.get(
    "/rooms/{room}/log",
    response_model=LogOut | LogPageOut,
    responses={**UNAUTHORIZED, **NOT_FOUND},
    summary="A room's log (the parameters of /log)",
)
async def room_log(
    tracker: TrackerDep, request: Request, room: RoomName, lines: Lines = None, after: After = None, limit: Limit = 100
) -> LogOut | LogPageOut:
    return await log_of((await _readable_room(tracker, request, room))[1], lines, after, limit)


@router.get(
    "/direct/{name}/log",
    response_model=LogOut | LogPageOut,
    responses={**UNAUTHORIZED, **NOT_FOUND},
    summary="Your conversation with a member (HTTP Basic: your registered name and passphrase)",
)
async def direct_log(
    tracker: TrackerDep, request: Request, name: str, lines: Lines = None, after: After = None, limit: Limit = 100
) -> LogOut | LogPageOut:
    me = await _signed_in(tracker, request)
    directs = tracker.rooms.directs
    try:
        check_name(name)
    except NameRefused:
        raise _not_found(f"no conversation with {name[:40]!r}") from None
    conversation = directs.existing(conversation_name(me, name)) if directs is not None else None
    if conversation is None:
        raise _not_found(f"no conversation with {name}")
    return await log_of(conversation.journal, lines, after, limit)


async def _readable_room(tracker: Tracker, request: Request, text: str) -> tuple[Room, Journal]:
    """The room named ``text`` and its journal, if the request may read it; else 401, 404 or 429."""
    try:
        name = room_name(text)
    except ProtocolError as error:
        raise _not_found(f"no such room: {error.message}") from None
    place = None if tracker.rooms.is_default(name) else tracker.rooms.place(name)
    if place is not None and place.meta.private:
        member = await _signed_in(tracker, request)
        if not place.room.is_registered_member(member):
            raise _not_found(f"no room {name}")
        return place.room, place.room.journal
    check_server_password(tracker.gate, request)
    if tracker.rooms.is_default(name):
        return tracker.room, tracker.journal
    if place is None:
        raise _not_found(f"no room {name}")
    return place.room, place.room.journal


async def _signed_in(tracker: Tracker, request: Request) -> str:
    """The registered name whose passphrase the request carries (HTTP Basic); else 404 (or 429 when throttled)."""
    credentials = basic_credentials(request.headers.get("authorization"))
    if credentials is None:
        raise _not_found("no such room or conversation (its members send their name and passphrase)")
    address = request.client.host if request.client else "unknown"
    checked = await tracker.accounts.check(address, CheckAccount(credentials[0], credentials[1]))
    if checked.verdict is Verdict.THROTTLED and checked.wait is not None:
        raise too_many_guesses(checked.wait)
    if checked.verdict is not Verdict.SIGNED_IN:
        raise _not_found("no such room or conversation (its members send their name and passphrase)")
    return checked.name


def _not_found(detail: str) -> HTTPException:
    return HTTPException(status_code=404, detail=detail)
