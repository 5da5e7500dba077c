"""The room's answers: who is in, since when, and what a resume needs to know. Nothing here changes anything."""

from __future__ import annotations

from chat_protocol import MemberInfo, format_ts, name_key
from chat_tracker.core.room.base import RoomBase
from chat_tracker.core.room.member import Member
from chat_tracker.core.room.states import MemberState
from chat_tracker.records import Present


class RoomQueries(RoomBase):
    __slots__ = ()

    @property
    def member_count(self) -> int:
        return len(self._members)

    @property
    def offline_count(self) -> int:
        """Registered members with no connection here (still members)."""
        return sum(1 for key in self._offline if key not in self._members)

    def is_registered_member(self, name: str) -> bool:
        """Whether ``name`` is a registered member of the room, online or not."""
        key = name_key(name)
        member = self._members.get(key)
        return key in self._offline if member is None else member.registered

    @property
    def away_count(self) -> int:
        return len(self._away)

    @property
    def delivered_seq(self) -> int:
        """The seq of the last event handed to the members."""
        return self._delivered_seq

    @property
    def log_available(self) -> bool:
        return self.journal.writable

    def names(self) -> list[str]:
        return [member.name for member in self._members.values()]

    def find(self, name: str) -> Member | None:
        """The member in the room under ``name`` (any spelling of it), away or not."""
        return self._members.get(name_key(name))

    def who(self) -> list[MemberInfo]:
        """Everyone in the room, then the registered members who are offline (still members)."""
        now = self._monotonic()
        online = [
            MemberInfo(
                name=m.name,
                joined_at=format_ts(m.joined_at),
                idle_seconds=round(now - m.last_active, 3),
                away=self._is_away(m),
                registered=m.registered,
            )
            for m in self._members.values()
        ]
        return online + self.offline()

    def offline(self) -> list[MemberInfo]:
        """The registered members with no connection: ``joined_at`` and ``last_seen`` say when they were last here."""
        wall = self._clock()
        return [
            MemberInfo(
                name=name,
                joined_at=format_ts(last_seen),
                idle_seconds=round(max(0.0, wall - last_seen), 3),
                online=False,
                last_seen=format_ts(last_seen),
                registered=True,
            )
            for key, (name, last_seen) in sorted(self._offline.items())
            if key not in self._members
        ]

    def _is_away(self, member: Member) -> bool:
        state = member.state
        if state is MemberState.REMOTE:
            return member.owner in self.dead_replicas  # its replica stopped answering: as good as away
        return state is MemberState.AWAY or state is MemberState.REMOTE_AWAY

    def present(self) -> tuple[int, list[Present]]:
        """Who is in the room as of the last delivered seq (``room.json``): the seq and its members."""
        seq = self._delivered_seq
        members = [
            Present(m.name, m.since_seq, m.joined_at)
            for m in self._members.values()
            if m.since_seq is not None and m.since_seq <= seq
        ]
        return seq, members

    def resume_counts(self) -> list[tuple[int, int]]:
        """``(join seq, resumes)`` of every member in the room (``resume.counts`` keeps only these)."""
        return [(m.since_seq, m.resumes) for m in self._members.values() if m.since_seq is not None]

    def token_for(self, member: Member) -> str:
        """``member``'s latest token: the one its next resume must bring ("" if this room does not resume)."""
        if self.tokens is None:
            return ""
        return self.tokens.issue(member.name, member.since_seq or 0, member.resumes)
