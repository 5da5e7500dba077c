"""Delivery: the journal hands the room each durable batch, in seq order, and the room hands it to the members.

A request (join, say, leave) is only appended to the journal; the room acts on the
event when the journal hands it back durable (``_deliver``). So a member receives
exactly the events from its own join to its own leave, in chat.log order, and nothing
that is not already in chat.log. Delivery calls nothing that calls back into the room:
the frames are rendered from data (``delivery.WelcomeTerms``), and a member whose
outbox overflowed on the way is dropped once the batch is out.
"""

from __future__ import annotations

from collections.abc import Sequence

from chat_tracker.core.delivery import SharedFrames, WelcomeTerms, frames_for
from chat_tracker.core.events import JOIN, LEAVE, MEMBER_EVENTS, Event
from chat_tracker.core.room.member import Member
from chat_tracker.core.room.shared import SharedRoom
from chat_tracker.core.room.states import Step


class RoomDelivery(SharedRoom):
    __slots__ = ()

    def _deliver(self, batch: Sequence[Event]) -> None:
        """Hand each member its frames for a durable batch (the journal's subscriber).

        Most members receive exactly the shared rendering of every event in the
        batch: that is built once per dialect and handed over as one piece. Only
        the members the batch concerns (its senders, joiners, leavers) get frames
        assembled for them alone.
        """
        self._delivered_seq = batch[-1].seq
        self._apply_moderation(batch)
        self._note_presence(batch)
        if self.closed:
            return
        if self.shared:
            # Another replica's start and stop lines are in the stream too: not for members.
            batch = [event for event in batch if event.kind in MEMBER_EVENTS]
            if not batch:
                return
            leavers = self._apply_shared_membership(batch)
        else:
            leavers = self._apply_membership(batch)
        too_slow = self._push(batch)
        _forget_presence_renderings(batch)
        self._forget_welcoming(batch)
        for leaver in leavers:
            self._finish_leaving(leaver)
        for member in too_slow:
            self.drop_slow(member)

    def _apply_membership(self, batch: Sequence[Event]) -> list[Member]:
        """Note where each local member's join takes effect; the members whose leave is in ``batch``."""
        leavers: list[Member] = []
        for event in batch:
            kind = event.kind
            if (kind is not JOIN and kind is not LEAVE) or event.origin is None:
                continue
            member = self._by_id.get(event.origin)
            if member is None:
                continue  # not one of this process's members
            if kind is JOIN:
                member.since_seq = event.seq
                member.advance(Step.JOIN_DELIVERED)
                if self.on_welcomed is not None:
                    self.on_welcomed(member)
            else:
                leavers.append(member)
        return leavers

    def _forget_welcoming(self, batch: Sequence[Event]) -> None:
        """Each joiner's welcome is out: what only it read (``Member.welcoming``) is let go."""
        for event in batch:
            if event.kind is JOIN and event.origin is not None:
                member = self._by_id.get(event.origin)
                if member is not None:
                    member.welcoming = None

    def _push(self, batch: Sequence[Event]) -> list[Member]:
        """Queue ``batch`` for every member connected here; the members whose outbox overflowed."""
        concerned = {event.origin for event in batch}  # its senders, joiners and leavers
        shared: SharedFrames[Member] = SharedFrames(batch, self._rides, self._by_id)
        terms = WelcomeTerms(self.limits, self.tokens, self.grace, self.journal.recent)
        deliveries = 0
        for member in self._by_id.visiting(concerned, everyone=shared.notices):
            held = member.held
            if held is not None:  # RESUMING (only then has it the list): after its replay
                held.extend(batch)
            elif member.since_seq is None:
                continue  # its join is not out yet: nothing before its welcome
            elif member.id in concerned or member.seen_through >= batch[0].seq:  # its own, or some seen already
                deliveries += frames_for(member, batch, terms)
                if member.recent_ids is not None:
                    _note_ids(member.recent_ids, member.id, batch)
                if member.outbox.overflowed:
                    shared.behind.append(member)
            else:
                deliveries += shared.push_to(member)
        shared.finish()
        self.stats.deliveries += deliveries
        return shared.behind


def _forget_presence_renderings(batch: Sequence[Event]) -> None:
    """Each join and leave of ``batch`` is out: keep of it, in the journal's ring, its fields alone."""
    for event in batch:
        if event.kind is JOIN or event.kind is LEAVE:
            event.forget_renderings()


def _note_ids(ids: dict[str, Event | None], member_id: int, batch: Sequence[Event]) -> None:
    """Remember the delivered event of each message id the member sent, to acknowledge a resend."""
    for event in batch:
        if event.origin == member_id and event.msg_id is not None and event.msg_id in ids:
            ids[event.msg_id] = event
