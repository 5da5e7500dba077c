"""The REST API: who is online, chat.log (its tail, or a page after a seq), health and metrics.

``/members`` and ``/log`` need the server password (Bearer, or HTTP Basic with any
user name); ``/healthz`` and ``/metrics`` are open and reveal no names or text.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.datastructures import State

from chat_tracker.core.auth import PasswordGate, password_from_authorization
from chat_tracker.core.ratelimit import Wait
from chat_tracker.core.room import Room
from chat_tracker.http.metrics import metrics_registry, render
from chat_tracker.journal.protocol import History, Journal
from chat_tracker.replicas.replica import ARCHIVER_LAG_EVENTS
from chat_tracker.service.tracker import Tracker

MAX_LOG_LINES = 1000
DEFAULT_LOG_LINES = 20
CHALLENGE = 'Basic realm="chat", charset="UTF-8", Bearer realm="chat"'


class MemberOut(BaseModel):
    name: str = Field(description="Username")
    joined_at: str = Field(description="When the member joined, UTC ISO-8601")
    idle_seconds: float = Field(description="Seconds since the member last sent a message (or joined)")
    away: bool = Field(description="Its connection dropped; it stays in the room and may resume for the resume grace")
    online: bool = Field(description="False: a registered member with no connection, still a member (until she parts)")
    last_seen: str | None = Field(None, description="An offline member: when she was last online, UTC ISO-8601")
    registered: bool = Field(description="Signed in to the account of its name")


class MembersOut(BaseModel):
    count: int = Field(description="Members listed: those in the room (away ones included) and offline registered ones")
    members: list[MemberOut]


class LogEventOut(BaseModel):
    seq: int = Field(description="chat.log sequence number")
    ts: str = Field(description="UTC ISO-8601 timestamp")
    kind: str = Field(description="start, stop, join, msg or leave")
    name: str = Field(description="Member name, or '-' for start/stop")
    text: str = Field(description="Message text, leave reason or note (unescaped)")


class LogOut(BaseModel):
    events: list[LogEventOut]


class GoneOut(BaseModel):
    first: int = Field(description="First seq that can no longer be read")
    last: int = Field(description="Last seq that can no longer be read")


class LogPageOut(LogOut):
    """``/log?after=SEQ``: a page of events in seq order, and where the next page starts."""

    next_after: int = Field(description="Pass as `after` for the next page (the last seq covered)")
    gone: GoneOut | None = Field(
        description="Seqs after `after` no longer kept (their segment was deleted), reported, not skipped"
    )
    beyond_end: bool = Field(description="`after` is past the newest event")
    epoch: str = Field(description="chat.log's identity: seqs from another epoch are not these seqs")


class ProblemOut(BaseModel):
    detail: str = Field(description="Why the request was refused")


# Documented so the schema tells clients (and schemathesis) what a missing or wrong password gets.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemOut, "description": "Missing or wrong server password (with WWW-Authenticate)"},
    429: {"model": ProblemOut, "description": "Too many wrong passwords: refused unchecked (with Retry-After)"},
}


class HealthOut(BaseModel):
    status: str = Field(description="ok, or degraded (a replica: Redis unreachable, the archiver missing or behind)")
    members: int
    log_writable: bool
    replica: int | None = Field(default=None, description="A replica (--redis-url): its number")
    redis: bool | None = Field(default=None, description="A replica: whether Redis answers")
    archiver: str | None = Field(
        default=None, description="A replica: ok, behind (more than 10,000 events not in chat.log yet) or missing"
    )
    archiver_lag: int | None = Field(default=None, description="A replica: events in Redis not yet in chat.log")


def get_tracker(request: Request) -> Tracker:
    tracker: Tracker = request.app.state.tracker
    return tracker


TrackerDep = Annotated[Tracker, Depends(get_tracker)]


async def require_password(request: Request, tracker: TrackerDep) -> None:
    """401 with a challenge unless the request carries the server password; 429 if it guessed too often."""
    check_server_password(tracker.gate, request)


def check_server_password(gate: PasswordGate, request: Request) -> None:
    """The server password check of ``/members`` and ``/log``, here and in the archiver (``runtime/archive_cli.py``)."""
    candidate = password_from_authorization(request.headers.get("authorization"))
    address = request.client.host if request.client else "unknown"
    checked = gate.check(address, candidate)
    if checked.wait is not None:
        raise too_many_guesses(checked.wait)
    if not checked.ok:
        raise HTTPException(
            status_code=401, detail="the server password is required", headers={"WWW-Authenticate": CHALLENGE}
        )


def too_many_guesses(wait: Wait) -> HTTPException:
    """429 with Retry-After: the guess was refused unchecked (``core/auth.py``'s ``PasswordGate``), at once."""
    detail = (
        "too many wrong passwords from your address"
        if wait.own
        else "too many wrong passwords from many addresses; password checks are paused"
    )
    return HTTPException(
        status_code=429,
        detail=f"{detail}; retry in {wait.retry_after} s",
        headers={"Retry-After": str(wait.retry_after)},
    )


Authorized = Depends(require_password)
router = APIRouter()


@router.get(
    "/members", response_model=MembersOut, dependencies=[Authorized], responses=UNAUTHORIZED, summary="Who is online"
)
async def members(tracker: TrackerDep) -> MembersOut:
    return members_of(tracker.room)


def members_of(room: Room) -> MembersOut:
    """A room's members, as ``/members`` lists the default room's and ``/rooms/{room}/members`` any room's."""
    listed = room.who()
    return MembersOut(
        count=len(listed),
        members=[
            MemberOut(
                name=m.name,
                joined_at=m.joined_at,
                idle_seconds=m.idle_seconds,
                away=m.away,
                online=m.online,
                last_seen=m.last_seen,
                registered=m.registered,
            )
            for m in listed
        ],
    )


@router.get(
    "/log",
    response_model=LogOut | LogPageOut,
    dependencies=[Authorized],
    responses=UNAUTHORIZED,
    summary="The last events of chat.log, or the events after a seq (across rotated segments)",
)
async def log_events(
    tracker: TrackerDep,
    lines: Annotated[
        int | None, Query(ge=1, le=MAX_LOG_LINES, description="How many events, newest last (default 20)")
    ] = None,
    after: Annotated[
        int | None,
        Query(ge=0, description="Instead: the events after this seq, oldest first (resume); wins over `lines`"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_LINES, description="With `after`: at most this many")] = 100,
) -> LogOut | LogPageOut:
    return await log_of(tracker.journal, lines, after, limit)


async def log_of(journal: Journal, lines: int | None, after: int | None, limit: int) -> LogOut | LogPageOut:
    """A room's log as ``/log`` answers it (``/rooms/{room}/log`` too)."""
    # Both read in a worker thread: the room never waits on the file.
    if after is None:
        entries = await journal.tail(lines or DEFAULT_LOG_LINES)
        return LogOut(events=[LogEventOut(**entry.__dict__) for entry in entries])
    return _page(after, await journal.read_after(after, limit), journal.epoch)


def _page(after: int, history: History, epoch: str) -> LogPageOut:
    events = [
        LogEventOut(seq=e.seq, ts=e.ts, kind=e.kind.value, name=e.name, text=e.logged_text()) for e in history.events
    ]
    covered = history.gone[1] if history.gone else after
    return LogPageOut(
        events=events,
        next_after=events[-1].seq if events else covered,
        gone=GoneOut(first=history.gone[0], last=history.gone[1]) if history.gone else None,
        beyond_end=history.beyond_end,
        epoch=epoch,
    )


@router.get("/healthz", response_model=HealthOut, summary="Liveness for health checks (no password)")
async def healthz(tracker: TrackerDep) -> HealthOut:
    members, writable = tracker.room.member_count, tracker.room.log_available
    link = tracker.link
    if link is None:
        return HealthOut(status="ok", members=members, log_writable=writable)
    health = link.health
    lag = health.archiver_lag(tracker.journal.last_seq)
    archiver = "missing" if not health.archiver_alive else "behind" if lag > ARCHIVER_LAG_EVENTS else "ok"
    healthy = health.redis and writable and archiver == "ok"
    return HealthOut(
        status="ok" if healthy else "degraded",
        members=members,
        log_writable=writable,
        replica=link.replica,
        redis=health.redis and writable,
        archiver=archiver,
        archiver_lag=lag,
    )


@router.get("/metrics", summary="Prometheus metrics (no password)", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(render(request.app.state.metrics), media_type="text/plain; version=0.0.4; charset=utf-8")


def attach_metrics(state: State, tracker: Tracker) -> None:
    state.metrics = metrics_registry(tracker)
