"""Several connections of one account at once: the first holds the name, the others are extra connections.

A registered member who signs in while her name is already in the room (her laptop is
connected and she opens the page on her phone, or her laptop's connection is away) does
not take the name from herself. The new connection is an *extra* one: it receives
everything from the moment it is attached, its messages go out under her name (so her
other connections receive them as anyone's), and it logs no join or leave - her
presence does not change while any of her connections is here. It is not listed and
offers no resume (its welcome carries no token): when it drops it signs in again with
its device token and catches up from her read position.

When the connection that holds the name goes offline while an extra one is still here,
the extra one takes the name over (no event: she is still online). A part, a kick or a
ban ends every connection of hers. On replicas, each replica attaches extra connections
under its own listing of her; a take-over happens only within one tracker (on replicas
her presence goes offline with the connection that holds the name; docs/replicas.md).
"""

from __future__ import annotations

from chat_protocol import CloseCode, name_key
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.delivery import WelcomeTerms, own_texts
from chat_tracker.core.dialects import Dialect
from chat_tracker.core.events import JOIN, Event
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room.member import Goodbye, Member, signed_in_as
from chat_tracker.core.room.resumes import RoomResumes
from chat_tracker.core.room.states import MemberState, Step
from chat_tracker.core.signin import AccountChecked
from chat_tracker.errors import Refused

# What ends every connection of an account, and how each of them is closed.
_CLOSES: dict[str, tuple[int, str]] = {
    LeaveReason.PART: (CloseCode.NORMAL, "you have left the room for good (from another of your devices)"),
    LeaveReason.KICKED: (CloseCode.KICKED, "you were removed by a moderator"),
    LeaveReason.BANNED: (CloseCode.BANNED, "you are banned by a moderator"),
}


class RoomDevices(RoomResumes):
    __slots__ = ()

    def join(
        self,
        name: str,
        dialect: Dialect,
        outbox: Outbox,
        address: str,
        recover_after: int | None = None,
        signed_in: AccountChecked | None = None,
    ) -> Member:
        """Join; a member signed in to the account whose name is in the room already gets an extra connection."""
        if signed_in is not None:
            holder = self._members.get(name_key(name))
            if holder is not None and not holder.left:
                return self._attach_extra(holder, dialect, outbox, address, signed_in)
        return super().join(name, dialect, outbox, address, recover_after, signed_in)

    def _attach_extra(
        self, holder: Member, dialect: Dialect, outbox: Outbox, address: str, signed_in: AccountChecked
    ) -> Member:
        if self.closed:
            raise Refused("shutting_down", "the tracker is shutting down")
        member = Member(
            id=next(self._ids),
            name=holder.name,
            key=holder.key,
            dialect=dialect,
            outbox=outbox,
            address=address,
            joined_at=self._clock(),
            last_active=self._monotonic(),
            allowance=self.policy.allowance(),
            extra=True,
        )
        signed_in_as(member, signed_in)
        member.since_seq, member.seen_through = self._delivered_seq + 1, self._delivered_seq  # live from here
        member.advance(Step.JOIN_DELIVERED)
        self._by_id[member.id] = member
        self.stats.joins += 1
        here = Event(self._delivered_seq, self._clock(), JOIN, holder.name, members=tuple(self.names()))
        outbox.push_texts(own_texts(dialect, here, WelcomeTerms(self.limits, None, 0.0, self.journal.recent), member))
        return member

    def leave(self, member: Member, reason: str, close: Goodbye | None = None) -> None:
        """As ever for a guest; for an account, its other connections are closed, or one takes the name over."""
        if member.extra:
            self._detach(member, close)
            holder = self._members.get(member.key)
            if reason in _CLOSES and holder is not None and holder.id in self._by_id:
                self.leave(holder, reason, _goodbye(holder, reason))  # a part from an extra connection is hers
            elif reason in _CLOSES and self.on_leave is not None:
                self.on_leave(member, reason)  # her name is held on another replica: the store still learns it
            return
        extras = self._extras_of(member) if member.registered else []
        if reason in _CLOSES:
            for extra in extras:
                self._detach(extra, _goodbye(extra, reason))
        elif extras and not self.shared and member.id in self._by_id and not member.left:
            self._hand_over(member, extras[0], close)
            return
        super().leave(member, reason, close)

    def connection_lost(self, member: Member, outbox: Outbox, reason: str, resumable: bool) -> None:
        """An extra connection never goes away to resume: it is out at once (nothing logged)."""
        super().connection_lost(member, outbox, reason, resumable and not member.extra)

    def sign_out(self, name: str, device: str | None) -> int:
        """Close this tracker's connections of ``name`` from ``device`` (None: all of them); how many (4015)."""
        key = name_key(name)
        chosen = [m for m in self._by_id.values() if m.key == key and not m.left and device in (None, m.device_id)]
        for member in chosen:
            message = "this device was signed out; sign in again with your passphrase"
            goodbye = (CloseCode.SIGNED_OUT, "signed_out", (member.dialect.bye("signed_out", message),))
            self.leave(member, LeaveReason.CLOSED, goodbye)
        return len(chosen)

    def _extras_of(self, member: Member) -> list[Member]:
        return [other for other in self._by_id.values() if other.extra and other.key == member.key and not other.left]

    def _hand_over(self, holder: Member, successor: Member, close: Goodbye | None) -> None:
        """``holder``'s connection ends while ``successor`` (hers too) stays: it holds the name now, silently."""
        successor.extra = False
        self._members[holder.key] = successor
        holder.extra = True
        self._detach(holder, close)

    def _detach(self, member: Member, close: Goodbye | None) -> None:
        """Close an extra connection (or one whose name was handed over) without logging anything."""
        was = member.advance(Step.LEAVE)
        if member.state is was:
            return
        if was is MemberState.AWAY:
            self._end_grace(member)  # no connection to close
            return
        if close is not None:
            member.goodbye = close
        self._finish_leaving(member)


def _goodbye(member: Member, reason: str) -> Goodbye:
    code, message = _CLOSES[reason]
    return code, str(reason), (member.dialect.bye(str(reason), message),)
