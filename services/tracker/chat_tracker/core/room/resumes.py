"""Connections lost and resumed: a JSON member whose connection drops goes AWAY instead of leaving.

It keeps its name and its place for the resume grace and receives nothing; it either
resumes (``resume``: RESUMING on a new connection, its live events held back while the
adapter replays what it missed, then JOINED, with no leave or join logged) or leaves
with reason ``lost`` when the grace ends. Members in the room when the tracker last
stopped come back the same way (``restore``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chat_protocol import CloseCode, NameRefused, name_key
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.dialects import JSON
from chat_tracker.core.events import MEMBER_EVENTS, MESSAGE, Event
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room.member import DETACHED, Member, Resuming
from chat_tracker.core.room.requests import RoomRequests
from chat_tracker.core.room.states import SERVED_ELSEWHERE, MemberState, Step
from chat_tracker.errors import BadToken, Recover, Refused
from chat_tracker.records import Present

REPLACED_MESSAGE = "this session was resumed on another connection"


class RoomResumes(RoomRequests):
    __slots__ = ()

    def restore(self, present: Sequence[Present], resumes: Mapping[int, int] | None = None) -> int:
        """Bring back, as AWAY for the grace, the members who were in the room when the tracker last stopped.

        ``resumes``: join seq -> how many times that membership had resumed (``resume.counts``).
        """
        counts = resumes or {}
        restored = 0
        for was in present:
            try:
                key = self._claims.claim(was.name)
            except (NameRefused, Refused):
                continue  # the rules changed, or a duplicate: it cannot come back under that name
            member = Member(
                id=next(self._ids),
                name=was.name,
                key=key,
                dialect=JSON,
                outbox=DETACHED,
                address="",
                joined_at=was.joined_at,
                last_active=self._monotonic(),
                allowance=self.policy.allowance(),
                state=MemberState.AWAY,
                since_seq=was.since_seq,
                resumes=counts.get(was.since_seq, 0),
            )
            self._enter(member)
            self._start_grace(member)
            restored += 1
        return restored

    # --- away ----------------------------------------------------------------------------

    def connection_lost(self, member: Member, outbox: Outbox, reason: str, resumable: bool) -> None:
        """``member``'s connection (the one with ``outbox``) ended without a leave.

        A resumable member goes AWAY for the grace; any other leaves with ``reason``
        (``slow`` if its outbox overflowed). A connection the member has since resumed
        away from changes nothing.
        """
        if member.outbox is not outbox or member.left:
            return
        if resumable and self.grace > 0 and member.can(Step.GO_AWAY) and not outbox.overflowed and not self.closed:
            self._go_away(member)
        else:
            self.leave(member, reason)

    def _go_away(self, member: Member) -> None:
        member.advance(Step.GO_AWAY)
        member.outbox = DETACHED
        del self._by_id[member.id]
        self.stats.away += 1
        self._start_grace(member)
        if self.replicas is not None:
            self.replicas.went_away(member.id)
        if self.on_away is not None:
            self.on_away(member)

    def _start_grace(self, member: Member) -> None:
        self._away[member.id] = self._call_later(self.grace, lambda: self._grace_over(member))

    def _grace_over(self, member: Member) -> None:
        self._away.pop(member.id, None)
        if member.state is MemberState.AWAY:  # every way out of AWAY cancels the timer; this is belt and braces
            self.leave(member, LeaveReason.LOST)

    # --- resume --------------------------------------------------------------------------

    def resume(self, token: str, epoch: str, after: int, outbox: Outbox, address: str) -> Resuming:
        """Bring the member ``token`` speaks for back on ``outbox``. Raises Refused (resume_* codes).

        Its live events are held back (RESUMING) from here on; the caller replays
        (``after``, ``until``] from the journal, then ``catch_up`` hands it the rest.
        """
        try:
            resuming = self._resume(token, epoch, after, outbox, address)
        except Refused:
            self.stats.resumes_refused += 1
            raise
        self.stats.resumes += 1
        return resuming

    def _resume(self, token: str, epoch: str, after: int, outbox: Outbox, address: str) -> Resuming:
        if self.closed:
            raise Refused("shutting_down", "the tracker is shutting down")
        tokens = self.tokens
        if tokens is None:
            raise Refused("resume_bad_token", "this tracker does not resume sessions")
        if epoch != tokens.epoch:
            self._recover(token, epoch, after)
            raise Refused("resume_wrong_epoch", "chat.log has started anew (another epoch): nothing can be resumed")
        try:
            claim = tokens.check(token)
        except BadToken as error:
            raise Refused("resume_bad_token", str(error)) from None
        if after > self._delivered_seq and not self.shared:
            raise Refused("resume_beyond_end", f"seq {after} is beyond the end of chat.log ({self._delivered_seq})")
        member = self._members.get(name_key(claim.name))
        if member is None or member.since_seq != claim.since_seq:
            raise Refused("resume_expired", f"the session of {claim.name} has ended (it left, or its grace ran out)")
        if claim.resumes != member.resumes:
            raise Refused("resume_bad_token", "the resume token was used already: only the latest one resumes")
        self._spend_token(member)
        self._attach(member, outbox, address)
        if self.replicas is not None:  # the other replicas learn who serves it now
            self.replicas.take_over(member.name, member.id, member.resumes)
        # Never replay from before its own join: it saw that as its welcome. A shared
        # room may not have read up to ``after`` yet: then nothing is replayed, and
        # live events up to ``after`` are skipped (``until``).
        after = max(after, claim.since_seq)
        member.seen_through = max(after, self._delivered_seq)  # a reader behind ``after`` delivers those again
        return Resuming(member, after=after, until=member.seen_through)

    def _spend_token(self, member: Member) -> None:
        """The token just checked is used up: the next count, persisted before its token is sent."""
        member.resumes += 1
        if self.on_token_spent is not None:
            self.on_token_spent(member)

    def _recover(self, token: str, epoch: str, after: int) -> None:
        """A token of the epoch this shared room's journal lost: raise Recover (join again), else return."""
        previous = self.previous_tokens
        if previous is None or epoch != previous.epoch:
            return
        try:
            claim = previous.check(token)
        except BadToken:
            return
        raise Recover(claim.name, after)

    def _attach(self, member: Member, outbox: Outbox, address: str) -> None:
        was = member.advance(Step.RESUME)
        if was is MemberState.AWAY:
            self._end_grace(member)
        elif was in SERVED_ELSEWHERE:
            member.owner = 0
        else:  # its old connection is still open (it may not know yet that it is dead): it is replaced
            member.outbox.close(CloseCode.REPLACED, "replaced", (member.dialect.error("replaced", REPLACED_MESSAGE),))
        member.outbox = outbox
        member.address = address
        member.held = []
        self._by_id[member.id] = member

    # --- the replay --------------------------------------------------------------------

    def catch_up(self, member: Member, *, last: bool) -> list[Event]:
        """The events held back for a resuming member; with ``last``, it receives live ones from now on."""
        held = member.held or []
        member.held = []
        self._answer_resends(member)
        member.advance(Step.CAUGHT_UP if last else Step.CATCH_UP)
        return held

    @staticmethod
    def _answer_resends(member: Member) -> None:
        """The first echoes owed to resends made during the replay, now that it is out; only those the replay
        covered (the held and live events bring the later ones): they go before the held events, which follow."""
        for first in member.owed_echoes or ():
            if first.seq <= member.seen_through:
                member.outbox.push(first.own_json_frame())
        member.owed_echoes = []

    def replay_frames(self, member: Member, events: Sequence[Event], after: int) -> tuple[list[str], int]:
        """``member``'s frames for replayed events after seq ``after`` (its own messages with their ids).

        Also the seq of the last event framed (``after`` if none): where the member's cursor ends up.
        """
        kept, _ = self.replayable(member, events, after)
        frames = [
            event.own_json_frame() if event.origin == member.id else member.dialect.shared(event) for event in kept
        ]
        self.stats.replayed += len(frames)
        return frames, kept[-1].seq if kept else after

    @staticmethod
    def replayable(member: Member, events: Sequence[Event], after: int) -> tuple[list[Event], bool]:
        """The ``events`` after seq ``after`` that ``member`` is replayed; True once its own leave is among them."""
        kept: list[Event] = []
        for event in events:
            if event.seq <= after or event.kind not in MEMBER_EVENTS:
                continue
            if event.origin == member.id and event.kind is not MESSAGE:
                return kept, True  # its own leave: nothing after it is its business
            kept.append(event)
        return kept, False
