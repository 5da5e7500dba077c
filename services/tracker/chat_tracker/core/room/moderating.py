"""Moderation: the admin REST calls these; ``moderation.py`` keeps the mutes and bans in force.

Each action is logged first. Mutes and bans take effect when their event is delivered,
at its seq (the same point in every process that reads the journal). A room of its own
takes a kicked or banned member out at once; a room shared by replicas leaves that to
the replica serving the member, when the event reaches it.
"""

from __future__ import annotations

from collections.abc import Sequence

from chat_protocol import CloseCode, format_ts, name_key
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.events import ANNOUNCE, BAN, KICK, MODERATION_EVENTS, MUTE, UNBAN, Event
from chat_tracker.core.moderation import Ban, details, new_ban_id
from chat_tracker.core.room.devices import RoomDevices
from chat_tracker.core.room.member import Member
from chat_tracker.core.room.requests import because
from chat_tracker.core.room.states import SERVED_ELSEWHERE


class RoomModeration(RoomDevices):
    __slots__ = ()

    def kick(self, member: Member, reason: str) -> None:
        """Log the kick, then take the member out: close 4011, its client does not come back."""
        self.journal.append(KICK, member.name, details(reason=reason or None))
        if not self.shared:  # a shared room removes the member at the kick's seq, where it is served
            self._kick_now(member, reason)

    def mute(self, member: Member, seconds: float, reason: str) -> float | None:
        """Refuse ``member``'s messages for ``seconds`` (0: lift the mute). When it ends, or None."""
        until = self._clock() + seconds if seconds > 0 else None
        body = details(
            seconds=seconds, until=format_ts(until) if until else None, until_epoch=until, reason=reason or None
        )
        self.journal.append(MUTE, member.name, body)
        return until

    def ban(self, *, name: str | None, address: str | None, seconds: float | None, reason: str) -> Ban:
        """Ban a name (its lookalikes too) or an address or network; whoever matches now is removed."""
        until = self._clock() + seconds if seconds is not None else None
        ban = Ban(new_ban_id(), name, address, until, reason)
        if address is not None:
            self.moderation.remember_address(ban.id, address)
            self.on_address_ban()  # room.json has it before chat.log has the ban (whose line does not name it)
        body = details(
            id=ban.id,
            address=address,
            seconds=seconds,
            until=format_ts(until) if until else None,
            until_epoch=until,
            reason=reason or None,
        )
        self.journal.append(BAN, name or "-", body)
        if not self.shared:  # a shared room removes the banned at the ban's seq, where they are served
            self._remove_banned(ban)
        return ban

    def unban(self, ban_id: str) -> bool:
        """Lift a ban; False if there is no such ban (in force)."""
        if ban_id not in {ban.id for ban in self.moderation.active()}:
            return False
        self.journal.append(UNBAN, "-", details(id=ban_id))
        return True

    def announce(self, text: str) -> None:
        self.journal.append(ANNOUNCE, text=text)

    # --- taking members out ------------------------------------------------------------

    def _kick_now(self, member: Member, reason: str) -> None:
        message = f"you were removed by a moderator{because(reason)}"
        self._remove(member, LeaveReason.KICKED, CloseCode.KICKED, message)

    def _remove_banned(self, ban: Ban) -> None:
        message = f"you are banned by a moderator{because(ban.reason)}"
        for member in [m for m in self._members.values() if ban.matches_name(m.name) or ban.matches_address(m.address)]:
            self._remove(member, LeaveReason.BANNED, CloseCode.BANNED, message)

    def _remove(self, member: Member, reason: LeaveReason, code: int, message: str) -> None:
        code_name = "kicked" if reason is LeaveReason.KICKED else "banned"
        final = (member.dialect.error(code_name, message), member.dialect.bye(code_name, message))
        self.leave(member, reason, close=(code, code_name, final))

    # --- at the event's seq ------------------------------------------------------------

    def _apply_moderation(self, batch: Sequence[Event]) -> None:
        """Mutes and bans take effect at their seq (the same point in every process that reads the journal)."""
        for event in batch:
            if event.kind in MODERATION_EVENTS:
                self.moderation.apply(event.kind.value, event.name, event.details())
                if self.shared and not self.closed:
                    self._enforce(event)

    def _enforce(self, event: Event) -> None:
        """A shared room: a kick or a ban removes, at its seq, the members this replica serves."""
        if event.kind is KICK:
            member = self._members.get(name_key(event.name))
            if member is None or member.state in SERVED_ELSEWHERE:
                return
            reason = str(event.details().get("reason") or "")
            if self.owns_connections:
                self._kick_now(member, reason)
            else:  # a room besides the default: its owner removed her; her connection stays open
                said = member.dialect.bye(LeaveReason.REMOVED, f"You were {reason or 'removed from this room'}.")
                self.leave(member, LeaveReason.REMOVED, close=(0, LeaveReason.REMOVED, (said,)))
        elif event.kind is BAN:
            ban_id = event.details().get("id")
            for ban in self.moderation.active():
                if ban.id == ban_id:
                    self._remove_banned(ban)
