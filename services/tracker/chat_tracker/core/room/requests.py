"""A member's requests: join, say, leave. Each is checked here and appended to the journal; nothing is delivered here.

A member whose outbox overflowed (it could not keep up) is out for being too slow,
whatever it asks next: the outbox reports the overflow as data (``Outbox.overflowed``),
and the room acts on it - after a delivery, or at the member's next request here.
"""

from __future__ import annotations

from chat_protocol import ONLINE_TEXT, CloseCode, check_name, format_ts, name_key
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.dialects import Dialect
from chat_tracker.core.events import JOIN, LEAVE, MESSAGE, START
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.policy import Verdict
from chat_tracker.core.room.member import Goodbye, Member, Welcoming, logged_reason, signed_in_as
from chat_tracker.core.room.queries import RoomQueries
from chat_tracker.core.room.states import MemberState, Step
from chat_tracker.core.signin import AccountChecked
from chat_tracker.errors import Kicked, Refused

RECENT_IDS = 128  # message ids remembered per member: far more than a client ever has unacknowledged


class RoomRequests(RoomQueries):
    __slots__ = ()

    def start(self, note: str) -> None:
        """Record the tracker's start."""
        self.journal.append(START, text=note)

    # --- join --------------------------------------------------------------------------

    def join(
        self,
        name: str,
        dialect: Dialect,
        outbox: Outbox,
        address: str,
        recover_after: int | None = None,
        signed_in: AccountChecked | None = None,
    ) -> Member:
        """Claim ``name`` and enter (``signed_in``: to her account). Raises NameRefused or Refused."""
        key = self._claim(name)
        if not self.journal.writable:
            self._claims.release(key)
            raise Refused("log_unavailable", "chat.log cannot be written right now; try again later")
        now = self._monotonic()
        member = Member(
            id=next(self._ids),
            name=name,
            key=key,
            dialect=dialect,
            outbox=outbox,
            address=address,
            joined_at=self._clock(),
            last_active=now,
            allowance=self.policy.allowance(),
            welcoming=None if recover_after is None else Welcoming(recover_after=recover_after),
        )
        signed_in_as(member, signed_in)
        self._enter(member)
        self.stats.joins += 1
        text = ONLINE_TEXT if member.catch_up_after is not None else ""  # back to her membership: she comes online
        self.journal.append(JOIN, name, text, origin=member.id, members=tuple(self.names()))
        if self.on_join is not None:
            self.on_join(member)
        self._dropped_if_slow(member)  # its connection fell behind before it even joined
        return member

    def _claim(self, name: str) -> str:
        """``name``'s key, claimed for a joiner. Raises NameRefused or Refused."""
        check_name(name)
        if self.closed:
            raise Refused("shutting_down", "the tracker is shutting down")
        ban = self.moderation.ban_of_name(name)
        if ban is not None:
            raise Refused("banned", f"the name {name!r} is banned by a moderator{because(ban.reason)}")
        try:
            return self._claims.claim(name)
        except Refused as taken:
            holder = self._members.get(name_key(name))
            if holder is not None and holder.state is MemberState.AWAY:
                message = f"{taken.message}; its holder's connection dropped, and it is kept for them for a while"
                raise Refused("name_taken", message) from None
            raise

    # --- say ---------------------------------------------------------------------------

    def say(self, member: Member, text: str, msg_id: str | None = None) -> None:
        """Send ``text`` from ``member`` to everyone. Raises Refused, or Kicked for flooding.

        A message whose ``msg_id`` this member already sent is not logged again: the
        sender gets the first one's echo (if it is out yet) as its acknowledgement.
        A member on its way out says nothing more (its message is ignored).
        """
        member.advance(Step.SAY)
        if member.left or self._dropped_if_slow(member):
            return
        refusal = self.policy.check_text(text, self.journal.writable)
        if self.moderation.mutes and member.key in self.moderation.mutes:
            refusal = self._muted(member) or refusal
        if refusal is None:
            verdict = self.policy.check_rate(member.allowance)
            if verdict is Verdict.REMOVE:
                raise self._remove_for_flooding(member)
            if verdict is Verdict.REFUSE:
                refusal = self.policy.rate_refusal()
        if refusal is not None:
            self.stats.refused_messages += 1
            raise refusal
        member.last_active = self._monotonic()
        if msg_id is not None and self._seen(member, msg_id):
            return
        self.stats.messages += 1
        self.journal.append(MESSAGE, member.name, text, origin=member.id, msg_id=msg_id)

    def _muted(self, member: Member) -> Refused | None:
        until = self.moderation.muted_until(member.name)
        if until is None:
            return None
        return Refused("muted", f"you are muted by a moderator until {format_ts(until)}; your message was not sent")

    def _seen(self, member: Member, msg_id: str) -> bool:
        """Whether ``msg_id`` is a resend (then acknowledge it); else remember it."""
        ids = member.recent_ids
        if ids is None:
            ids = member.recent_ids = {}
        elif msg_id in ids:
            first = ids[msg_id]
            if first is None and self.shared:
                return False  # not delivered here (pending, or trimmed unread): Redis knows if it was logged
            self.stats.duplicates += 1
            if first is not None:
                member.outbox.push(first.own_json_frame())
                self._dropped_if_slow(member)
            return True
        ids[msg_id] = None
        if len(ids) > RECENT_IDS:
            del ids[next(iter(ids))]
        return False

    def _remove_for_flooding(self, member: Member) -> Kicked:
        self.stats.refused_messages += 1
        self.stats.flood_drops += 1
        message = "you kept sending over the rate limit; disconnected"
        final = (member.dialect.error("flooding", message), member.dialect.bye("flooding", message))
        self.leave(member, LeaveReason.FLOODING, close=(CloseCode.FLOODING, "flooding", final))
        return Kicked("flooding", message)

    # --- leave -------------------------------------------------------------------------

    def leave(self, member: Member, reason: str, close: Goodbye | None = None) -> None:
        """Take ``member`` out of the room: one leave event, however often it is called."""
        if reason != LeaveReason.SLOW and self._dropped_if_slow(member):
            return
        was = member.advance(Step.LEAVE)
        if member.state is was:
            return  # out already, or served by another replica (it leaves there)
        if close is not None:
            member.goodbye = close
        self._unlist(member)
        if was is MemberState.AWAY:
            self._end_grace(member)  # no connection to tell, and none in the delivery set: logged, and done
        self.stats.leaves += 1
        if self.closed:
            return
        reason = logged_reason(member, reason)
        self.journal.append(LEAVE, member.name, reason, origin=member.id)
        if self.on_leave is not None:
            self.on_leave(member, reason)
        self._empty_now()

    def end_offline_membership(self, name: str, reason: str) -> None:
        """A registered member with no connection here stops being a member (removed, banned): one leave event."""
        if self.closed or not self.journal.writable:
            raise Refused("log_unavailable", "the room's log cannot be written right now; try again later")
        self.journal.append(LEAVE, name, reason)
        if self.on_offline_end is not None:
            self.on_offline_end(name, reason)

    def drop_slow(self, member: Member) -> None:
        """``member`` could not keep up: its outbox overflowed. It leaves with reason ``slow``."""
        if not member.left:
            self.stats.slow_drops += 1
        self.leave(member, LeaveReason.SLOW)

    def _dropped_if_slow(self, member: Member) -> bool:
        """Drop ``member`` if its outbox overflowed since the room last looked; whether it did."""
        if member.outbox.overflowed and not member.left:
            self.drop_slow(member)
            return True
        return False


def because(reason: str) -> str:
    return f": {reason}" if reason else ""
