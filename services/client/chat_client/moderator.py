"""``--admin``: the moderation commands as calls to the tracker's ``/admin`` REST API.

The admin password goes in ``Authorization: Bearer`` on each call, over its own httpx
client beside the WebSocket, never in a URL. The answers become lines for the user
(``* kicked alpha``, ``! wrong admin password``); building the request and wording the
answer are pure functions, so only ``Moderator.perform`` touches the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from . import trust
from .commands import Moderate, Verb
from .config import admin_base_url
from .render import Fragments, error, moment, notice, safe

Body = dict[str, Any] | None


@dataclass(frozen=True)
class Call:
    """One REST call: ``method`` on ``path`` (under the tracker's base URL) with a JSON ``body``."""

    method: str
    path: str
    body: Body = None


def call_for(request: Moderate) -> Call:
    """The ``/admin`` call that carries out ``request``."""
    if request.verb is Verb.KICK:
        return Call("POST", "/admin/kick", {"name": request.target, "reason": request.reason})
    if request.verb is Verb.MUTE:
        return Call(
            "POST", "/admin/mute", {"name": request.target, "seconds": request.seconds, "reason": request.reason}
        )
    if request.verb is Verb.BAN:
        key = "address" if request.is_address else "name"
        return Call("POST", "/admin/ban", {key: request.target, "seconds": request.seconds, "reason": request.reason})
    if request.verb is Verb.UNBAN:
        return Call("DELETE", "/admin/bans/" + quote(request.target, safe=""))
    if request.verb is Verb.BANS:
        return Call("GET", "/admin/bans")
    return Call("POST", "/admin/announce", {"text": request.text})


def answer_lines(
    request: Moderate, answer: Any, *, tz: tzinfo | None = None, now: datetime | None = None
) -> list[Fragments]:
    """What a successful answer tells the user."""
    verb = request.verb
    body = answer if isinstance(answer, dict) else {}
    if verb is Verb.KICK:
        return [notice(f"kicked {safe(str(body.get('name') or request.target))}")]
    if verb is Verb.MUTE:
        return [notice(_muted(request, body, tz=tz, now=now))]
    if verb is Verb.BAN:
        return [notice(ban_text(body, tz=tz, now=now))]
    if verb is Verb.UNBAN:
        return [notice(f"ban {safe(request.target)} lifted")]
    if verb is Verb.BANS:
        return bans_lines(body.get("bans"), tz=tz, now=now)
    return [notice("announced")]


def _muted(request: Moderate, body: dict[str, Any], *, tz: tzinfo | None, now: datetime | None) -> str:
    name = safe(str(body.get("name") or request.target))
    if not request.seconds:
        return f"unmuted {name}"
    until = body.get("until")
    when = f" (until {moment(until, seconds=False, tz=tz, now=now)})" if isinstance(until, str) else ""
    return f"muted {name} for {request.seconds:g} s{when}"


def ban_text(ban: Any, *, tz: tzinfo | None = None, now: datetime | None = None) -> str:
    """``ban b1a2c3d4: alpha, for good: trolling`` - one ban as the tracker describes it."""
    if not isinstance(ban, dict):
        return "a ban (not described by the tracker)"
    target = ban.get("name") or ban.get("address") or "?"
    until = ban.get("until")
    how_long = f"until {moment(until, seconds=False, tz=tz, now=now)}" if isinstance(until, str) else "for good"
    reason = ban.get("reason")
    because = f": {safe(reason)}" if isinstance(reason, str) and reason else ""
    return f"ban {safe(str(ban.get('id', '?')))}: {safe(str(target))}, {how_long}{because}"


def bans_lines(bans: Any, *, tz: tzinfo | None = None, now: datetime | None = None) -> list[Fragments]:
    """``/bans``: a heading, then one line per ban in force."""
    if not isinstance(bans, list) or not bans:
        return [notice("no bans in force")]
    return [notice(f"bans in force ({len(bans)}):")] + [notice("  " + ban_text(ban, tz=tz, now=now)) for ban in bans]


def refusal_line(status: int, answer: Any) -> Fragments:
    """What a refusal tells the user: the tracker's ``detail``, in words."""
    detail = answer.get("detail") if isinstance(answer, dict) else None
    if status == 401:
        return error("wrong admin password")
    if status == 404 and isinstance(detail, str) and detail.startswith("moderation is off"):
        return error("moderation is off on this tracker")
    if isinstance(detail, str) and detail:
        return error(safe(detail))
    if status == 422 and isinstance(detail, list):
        return error("refused: " + "; ".join(_problem(item) for item in detail))
    return error(f"the tracker answered HTTP {status}")


def _problem(item: Any) -> str:
    """One of FastAPI's validation problems: ``seconds: Input should be less than or equal to ...``."""
    if not isinstance(item, dict):
        return safe(str(item))
    where = [str(part) for part in item.get("loc", []) if part != "body"]
    message = safe(str(item.get("msg", "invalid")))
    return f"{safe('.'.join(where))}: {message}" if where else message


class Moderator:
    """The ``/admin`` API of the tracker at a WebSocket URL, used with the admin password."""

    def __init__(self, ws_url: str, password: str | None, *, timeout: float) -> None:
        self.base_url = admin_base_url(ws_url)
        self.password = password  # None until interactive mode has asked for it
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, verify=trust.context())

    async def __aenter__(self) -> Moderator:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self._client.aclose()

    async def perform(self, request: Moderate) -> list[Fragments]:
        """Carry out ``request``; the lines to show, whether it worked or not."""
        call = call_for(request)
        try:
            response = await self._client.request(call.method, call.path, json=call.body, headers=self._headers())
        except httpx.HTTPError as exc:
            return [error(f"cannot reach the tracker's admin API at {self.base_url}: {_reason(exc)}")]
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.is_success:
            return answer_lines(request, answer)
        return [refusal_line(response.status_code, answer)]

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.password}"} if self.password else {}


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    tls = trust.tls_failure(exc)
    if tls is not None:
        return tls
    return str(exc) or type(exc).__name__
