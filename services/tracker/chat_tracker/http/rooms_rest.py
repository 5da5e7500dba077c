"""The rooms over REST: ``GET /rooms``, and each room's ``members`` and ``log`` as ``/members`` and ``/log`` answer.

Like ``/members`` and ``/log`` they need the server password. A private room is not
listed and its members and log answer 404 here, as for a room that does not exist: its
members read it through the protocol (``history`` with ``room``), signed in.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from chat_protocol import ProtocolError, room_name
from chat_tracker.core.room import Room
from chat_tracker.http.rest import (
    MAX_LOG_LINES,
    UNAUTHORIZED,
    Authorized,
    LogOut,
    LogPageOut,
    MembersOut,
    ProblemOut,
    TrackerDep,
    log_of,
    members_of,
)
from chat_tracker.journal.protocol import Journal
from chat_tracker.service.tracker import Tracker

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ProblemOut, "description": "No public room of that name"}}


class RoomOut(BaseModel):
    name: str = Field(description="The room's name, '#' and 1-32 of a-z 0-9 _ -")
    members: int = Field(description="Its members, online or not (registered members stay members while offline)")
    online: int = Field(description="Its members connected now")


class RoomsOut(BaseModel):
    count: int = Field(description="Public rooms listed, the default room first")
    rooms: list[RoomOut]


RoomName = Annotated[str, Path(description="The room's name, with or without its '#' (URL-encoded as %23)")]
router = APIRouter()


@router.get("/rooms", response_model=RoomsOut, dependencies=[Authorized], responses=UNAUTHORIZED, summary="Rooms")
async def rooms(tracker: TrackerDep) -> RoomsOut:
    listed = [info for info in tracker.rooms.listing() if not info.private]
    return RoomsOut(count=len(listed), rooms=[RoomOut(name=i.room, members=i.members, online=i.online) for i in listed])


@router.get(
    "/rooms/{room}/members",
    response_model=MembersOut,
    dependencies=[Authorized],
    responses={**UNAUTHORIZED, **NOT_FOUND},
    summary="Who is in a room (as /members for the default room)",
)
async def room_members(tracker: TrackerDep, room: RoomName) -> MembersOut:
    return members_of(_public_room(tracker, room)[0])


@router.get(
    "/rooms/{room}/log",
    response_model=LogOut | LogPageOut,
    dependencies=[Authorized],
    responses={**UNAUTHORIZED, **NOT_FOUND},
    summary="A room's log (the parameters of /log)",
)
async def room_log(
    tracker: TrackerDep,
    room: RoomName,
    lines: Annotated[int | None, Query(ge=1, le=MAX_LOG_LINES, description="How many events, newest last")] = None,
    after: Annotated[int | None, Query(ge=0, description="Instead: the events after this seq, oldest first")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_LINES, description="With `after`: at most this many")] = 100,
) -> LogOut | LogPageOut:
    return await log_of(_public_room(tracker, room)[1], lines, after, limit)


def _public_room(tracker: Tracker, text: str) -> tuple[Room, Journal]:
    """The room named ``text`` and its journal; 404 for no such room, or a private one."""
    try:
        name = room_name(text)
    except ProtocolError as error:
        raise HTTPException(status_code=404, detail=f"no such room: {error.message}") from None
    if tracker.rooms.is_default(name):
        return tracker.room, tracker.journal
    place = tracker.rooms.place(name)
    if place is None or place.meta.private:
        raise HTTPException(status_code=404, detail=f"no public room {name}")
    return place.room, place.room.journal
