"""The tracker's end: a stop (everyone leaves, 1001) or a restart (the JSON members are kept to resume, 1012)."""

from __future__ import annotations

from collections.abc import Callable

from chat_protocol import CloseCode
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.dialects import JSON
from chat_tracker.core.events import LEAVE, STOP
from chat_tracker.core.room.delivering import RoomDelivery
from chat_tracker.core.room.member import Member, logged_reason
from chat_tracker.core.room.states import MemberState, RoomStep, Step

Bye = Callable[[Member], tuple[str, ...]]


class RoomClosing(RoomDelivery):
    __slots__ = ()

    def shutdown(self, note: str, bye: Bye) -> int:
        """Log every member's leave and the stop, then close every outbox with 1001.

        Members are not told of each other's leaving: each gets one goodbye instead.
        Deliver what is pending first (``await journal.sync()``); the leaves and the
        stop become durable with the journal's next commit. Returns the number told.
        """
        if self.closed:
            return 0
        members = list(self._by_id.values())
        for member in members:
            if not member.left:
                self._log_leave(member)
        away = self._away_members()
        for member in away:
            self._log_leave(member)
        if self.owns_connections or not self.shared:  # a replica's share of another room: it goes on elsewhere
            self.journal.append(STOP, text=note)
        self._close_all(members, CloseCode.GOING_AWAY, "tracker shutting down", bye)
        for member in away:
            member.advance(Step.CLOSE)
        self._members.clear()
        return len(members)

    def suspend(self, note: str, bye: Bye) -> int:
        """The tracker restarts (SIGTERM): close every connection with 1012, keep the resumable members.

        JSON members stay in the room - nothing is logged for them, and after the
        restart they come back as AWAY (``room.json``) and resume. Plain-text members
        cannot resume: they leave (reason ``shutdown``). Returns the number told.
        """
        if self.closed:
            return 0
        members = list(self._by_id.values())
        kept = {m.id for m in members if not m.left and m.dialect is JSON and m.since_seq is not None}
        for member in members:
            if not member.left and member.id not in kept:
                self._log_leave(member)
                self._unlist(member)
        self.journal.append(STOP, text=note)
        away = self._away_members()
        self._close_all(members, CloseCode.SERVICE_RESTART, "tracker restarting", bye, kept)
        for member in away:
            member.advance(Step.SUSPEND)
        return len(members)

    def _log_leave(self, member: Member) -> None:
        if member.extra:
            return  # an extra connection of an account: its leaving is no event (devices.py)
        reason = logged_reason(member, LeaveReason.SHUTDOWN)
        self.journal.append(LEAVE, member.name, reason, origin=member.id)
        if self.on_leave is not None:  # a registered member's going offline is kept (service/membership.py)
            self.on_leave(member, reason)

    def _away_members(self) -> list[Member]:
        return [member for member in self._members.values() if member.state is MemberState.AWAY]

    def _close_all(
        self, members: list[Member], code: int, reason: str, bye: Bye, kept: frozenset[int] | set[int] = frozenset()
    ) -> None:
        """Close the room and every connection; the members in ``kept`` (ids) stay for after a restart."""
        self._room_step(RoomStep.CLOSE)
        for timer in self._away.values():
            timer.cancel()
        self._away.clear()
        for member in members:
            member.advance(Step.SUSPEND if member.id in kept else Step.CLOSE)
            if self.owns_connections:  # another room's members' connections are the default room's to close
                member.outbox.close(code, reason, bye(member))
        self._claims.clear()
        self._by_id.clear()
