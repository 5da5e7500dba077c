"""A room shared by several replicas (``shared=True``, Redis): every replica lists the whole room.

It also holds the members other replicas serve, as REMOTE: it learns of them from
their join events, and of their leaves the same way, so every replica refuses a name
held anywhere. A REMOTE member that resumes here becomes RESUMING here (the journal
records the move, ``Replicas.take_over``, and its old replica closes its old
connection); kicks and bans take effect at their seq on the replica serving the member.

    REMOTE --resume here--> RESUMING ... JOINED --resumed elsewhere--> REMOTE --leave delivered--> GONE
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence

from chat_protocol import CloseCode, NameRefused, name_key
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.dialects import JSON
from chat_tracker.core.events import JOIN, LEAVE, MESSAGE, Event
from chat_tracker.core.events import REPLICA_ID_SPAN as ID_SPAN
from chat_tracker.core.room.member import DETACHED, Member
from chat_tracker.core.room.moderating import RoomModeration
from chat_tracker.core.room.resumes import REPLACED_MESSAGE
from chat_tracker.core.room.states import SERVED_ELSEWHERE, MemberState, Step
from chat_tracker.errors import Refused

log = logging.getLogger("chat_tracker")

_ELSEWHERE = (MemberState.REMOTE, MemberState.REMOTE_AWAY)


class SharedRoom(RoomModeration):
    __slots__ = ()

    def install(self, members: Sequence[tuple[int, str, int, float, int, int]]) -> None:
        """A shared room at start: the members already in, ``(id, name, join seq, joined at, replica, resumes)``."""
        for member_id, name, since_seq, joined_at, owner, resumes in members:
            self._add_remote(member_id, name, since_seq, joined_at, owner).resumes = resumes

    def renumber(self, first_id: int) -> None:
        """A shared room registered under a new replica number: new members' ids start at ``first_id``."""
        self._ids = itertools.count(first_id)

    # --- joins and leaves, from every replica -------------------------------------------

    def _apply_shared_membership(self, batch: Sequence[Event]) -> list[Member]:
        """Every join and leave, this replica's and the others': the whole room, in seq order.

        Returns the members served here whose leave is in ``batch``.
        """
        leavers: list[Member] = []
        for event in batch:
            kind = event.kind
            if event.origin is None:
                continue
            if kind is MESSAGE:
                self._spoke(event.origin, event.name)
            elif kind is JOIN:
                self._joined(event, event.origin)
            elif kind is LEAVE:
                member = self._by_id.get(event.origin)
                if member is None:
                    self._remote_left(event)
                else:
                    self._left_here(member)
                    leavers.append(member)
        return leavers

    def _spoke(self, origin: int, name: str) -> None:
        if origin not in self._by_id:  # a member served elsewhere spoke: its idle time starts again
            remote = self._members.get(name_key(name))
            if remote is not None:
                remote.last_active = self._monotonic()

    def _joined(self, event: Event, origin: int) -> None:
        member = self._by_id.get(origin)
        if member is None:
            self._add_remote(origin, event.name, event.seq, event.time, origin // ID_SPAN)
        elif member.state is MemberState.JOINING:  # one that left before its join came back receives nothing
            member.since_seq = event.seq
            member.advance(Step.JOIN_DELIVERED)
            event.members = tuple(self.names())  # its welcome, as of its join
            if self.on_welcomed is not None:  # a registered member's rooms, entered as on a single tracker
                self.on_welcomed(member)

    def _left_here(self, member: Member) -> None:
        if not member.left:  # its leave was logged elsewhere (this replica was cut off and reaped)
            self._unlist(member)
            member.advance(Step.LEAVE)
            member.goodbye = (CloseCode.SERVICE_RESTART, "restart", ())

    def _add_remote(self, member_id: int, name: str, since_seq: int, joined_at: float, owner: int) -> Member:
        key = name_key(name)
        holder = self._members.get(key)
        if holder is not None:
            if holder.state is MemberState.JOINING:
                self._lost_name(holder)  # another replica's claim of the name came first
            else:
                log.warning("%s joined on replica %d while held here; the later join wins", name, owner)
                del self._members[key]
        self._claims.release(key)
        try:
            self._claims.claim(name)
        except (NameRefused, Refused):
            log.warning("%s (joined on replica %d) breaks this replica's name rules; listed anyway", name, owner)
        member = Member(
            id=member_id,
            name=name,
            key=key,
            dialect=JSON,
            outbox=DETACHED,
            address="",
            joined_at=joined_at,
            last_active=self._monotonic(),
            allowance=self.policy.allowance(),
            state=MemberState.REMOTE,
            since_seq=since_seq,
            owner=owner,
        )
        self._enter(member)
        return member

    def _remote_left(self, event: Event) -> None:
        """A member not connected here left (on its replica, or its grace ran out there): out of the list."""
        member = self._members.get(name_key(event.name))
        if member is None or member.id != event.origin or not member.can(Step.LEAVE_DELIVERED):
            return
        self._end_grace(member)
        member.advance(Step.LEAVE_DELIVERED)
        self._unlist(member)
        self._empty_now()

    def _lost_name(self, member: Member) -> None:
        """A local joiner whose name another replica claimed first: refused, as if the name had been taken."""
        self._unlist(member)
        self._by_id.pop(member.id, None)
        member.advance(Step.NAME_LOST)
        message = f"the name {member.name!r} was taken on another replica at the same moment"
        member.outbox.close(CloseCode.NORMAL, "name_taken", (member.dialect.error("name_taken", message),))

    def served_elsewhere(self, name: str) -> Member | None:
        """The member called ``name`` if another replica serves her here."""
        member = self._members.get(name_key(name))
        return member if member is not None and member.state in _ELSEWHERE else None

    def make_way(self, name: str) -> None:
        """A room besides the default, shared: ``name`` enters here, and the default room made that name hers.
        Held here by a member served elsewhere (her connection there is over, or about to be: she died with her
        replica, or resumed here), that holder gives way; the journal logs its leave with her join."""
        holder = self._members.get(name_key(name))
        if self.shared and not self.owns_connections and holder is not None and holder.state in _ELSEWHERE:
            self._unlist(holder)

    # --- what the journal tells it -------------------------------------------------------

    def refused(self, event: Event) -> None:
        """The journal would not log ``event``: a join whose name is held, a leave of a member that moved."""
        member = self._by_id.get(event.origin) if event.origin is not None else None
        if member is None:
            return
        if event.kind is JOIN and member.state is MemberState.JOINING:
            self._lost_name(member)
        elif event.kind is LEAVE and member.state is MemberState.LEAVING:
            self._finish_leaving(member)

    def logged_before(self, first: Event) -> None:
        """A resend the journal did not log: its id was logged already (maybe by another replica), as ``first``.

        Its sender is answered with the first one's echo, as a single tracker answers a resend,
        unless that echo is still on its way to it here (``first`` is past what it was handed):
        a member resuming is answered once its replay is out, which may have held it.
        """
        member = self._by_id.get(first.origin) if first.origin is not None else None
        if member is None or member.left:
            return  # it moved to another replica (which answers its resends), or left
        self.stats.duplicates += 1
        if member.owed_echoes is not None:  # RESUMING: answered once its replay is out
            member.owed_echoes.append(first)
        elif first.seq <= max(self._delivered_seq, member.seen_through):
            member.outbox.push(first.own_json_frame())

    def control(self, body: dict[str, object]) -> None:
        """A control entry from the journal: a member now served by replica ``r``, or away there; or the
        archiver's mutes and bans in force, given back to a room Redis lost (``c`` is ``moderation``)."""
        if body.get("c") == "moderation":
            self._seeded(body.get("m"))
            return
        member_id, replica = body.get("o"), body.get("r")
        member = next((m for m in self._members.values() if m.id == member_id), None)
        if member is None or not isinstance(replica, int):
            return
        if body.get("c") == "away":
            if member.can(Step.AWAY_ELSEWHERE):  # a member served here ignores it (our own notice, read back)
                member.advance(Step.AWAY_ELSEWHERE)
            return
        resumes = body.get("g")
        if isinstance(resumes, int) and resumes > member.resumes:
            member.resumes = resumes  # a resume on another replica spent the token before it
        if replica != self.replica and member.can(Step.RESUMED_ELSEWHERE):  # not our own take-over, read back
            self._moved_to(member, replica)

    def _seeded(self, items: object) -> None:
        """The archiver's mutes and bans in force: applied, and whoever a ban matches is removed as by the ban."""
        for ban in self.moderation.seeded(items if isinstance(items, list) else []):
            if not self.closed:
                self._remove_banned(ban)

    def _moved_to(self, member: Member, replica: int) -> None:
        """``member`` resumed on replica ``replica``: if it was served here, its connection here closes."""
        was = member.advance(Step.RESUMED_ELSEWHERE)
        member.owner = replica
        if was in SERVED_ELSEWHERE:
            return
        self._end_grace(member)
        if member.outbox is not DETACHED:
            member.outbox.close(CloseCode.REPLACED, "replaced", (member.dialect.error("replaced", REPLACED_MESSAGE),))
        self._by_id.pop(member.id, None)
        member.outbox = DETACHED

    def fell_behind(self, bye: Callable[[Member], tuple[str, ...]]) -> int:
        """The journal skipped events it could no longer read: close every connection here with 1012.

        None of these members may receive an event after the gap as if nothing were
        missing. A JSON member goes AWAY, as when its connection drops: its resume (here
        or on another replica) answers ``recovered: false`` with the range it cannot read
        back. A member that cannot resume leaves (``lost``). Returns the number closed.
        """
        members = [member for member in self._by_id.values() if not member.left]
        for member in members:
            outbox = member.outbox
            outbox.close(CloseCode.SERVICE_RESTART, "restart", bye(member))
            self.connection_lost(member, outbox, LeaveReason.LOST, resumable=member.dialect is JSON)
        return len(members)

    def reset(self, bye: Callable[[Member], tuple[str, ...]]) -> int:
        """A shared room whose journal lost the room (a new epoch): everyone here is closed with 1012, and forgotten."""
        members = list(self._by_id.values())
        for timer in self._away.values():
            timer.cancel()
        self._away.clear()
        for member in members:
            member.advance(Step.CLOSE)
            member.outbox.close(CloseCode.SERVICE_RESTART, "restart", bye(member))
        self._by_id.clear()
        self._members.clear()
        self._claims.clear()
        # The mutes and bans in force stay: Redis losing the room lifts none of them (the archiver gives
        # them back to the new room in Redis, for replicas that start later; docs/replicas.md).
        self._delivered_seq = self.journal.last_seq
        return len(members)
