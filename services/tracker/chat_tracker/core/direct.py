"""Direct messages: a conversation of two, with its own order and its own log, in no room.

A direct message (``say`` with ``to``, ``/msg NAME text``) is appended to the journal of
the pair's conversation (the service opens it: ``<data-dir>/direct/<key>+<key>/chat.log``)
and, once durable, handed to every connection of the two (``connected`` keeps them by
name): the recipient sees it from its sender (``[alice] hi`` in plain text; JSON a
``message`` with ``to``), the sender's connections get it as its echo (the one that sent
it with its ``id``). A registered member who is offline gets it when she signs in again,
with what she missed (``missed``, from the conversation's memory and her read position).

The operator can read every conversation: it is plain text on the tracker's disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chat_protocol import name_key, sanitize_for_terminal
from chat_tracker.core.catchup import catch_up
from chat_tracker.core.dialects import PLAIN, Dialect
from chat_tracker.core.events import MESSAGE, Event
from chat_tracker.core.policy import MemberPolicy, Verdict
from chat_tracker.core.room import Member
from chat_tracker.core.room_dialects import tagged
from chat_tracker.errors import Refused
from chat_tracker.journal.protocol import Journal

DIRECT_PREFIX = "@"  # a conversation's name in the account store: "@alice+bob" (the two name keys, in order)


def conversation_name(one: str, other: str) -> str:
    """The name of the conversation between ``one`` and ``other`` (either order gives the same)."""
    return DIRECT_PREFIX + "+".join(sorted((name_key(one), name_key(other))))


@dataclass(eq=False)
class Conversation:
    """Two members' messages: their journal, and how each of them is called (by name key)."""

    name: str
    journal: Journal
    names: dict[str, str] = field(default_factory=dict)  # name key -> her name as last seen

    def other(self, name: str) -> str:
        """The other member's name, as last seen (her key if not seen since the start)."""
        keys = self.name[len(DIRECT_PREFIX) :].split("+")
        mine = name_key(name)
        other = keys[1] if keys[0] == mine else keys[0]
        return self.names.get(other, other)


OpenConversation = Callable[[str], Journal]


class Directs:
    """Every conversation of the tracker, and every connection by name (to hand each message to both members)."""

    def __init__(self, open_conversation: OpenConversation, policy: MemberPolicy) -> None:
        self._open = open_conversation
        self.policy = policy
        self._conversations: dict[str, Conversation] = {}
        self.sent = 0  # direct messages appended (the metrics' count)
        # name key -> her connections here (default-room members); a tuple, as most have one (a list is 40 B more)
        self._connections: dict[str, tuple[Member, ...]] = {}
        self.is_member: Callable[[str], bool] = lambda name: False  # a registered member, online or not
        self.elsewhere: Callable[[str], str | None] = lambda name: None  # replicas: her name, if online on another
        self.is_muted: Callable[[str], bool] = lambda name: False
        self.kept: Callable[[str], bool] = lambda name: False  # a conversation not open now has a log already
        self.on_delivered: Callable[[Conversation, Event, list[Member]], None] | None = None  # read positions
        self.on_caught_up: Callable[[str, str, int], None] | None = None  # (name, conversation, seq): she has read it

    # --- who is connected ----------------------------------------------------------------

    def connected(self, member: Member) -> None:
        held = self._connections.get(member.key, ())
        if member not in held:
            self._connections[member.key] = (*held, member)

    def disconnected(self, member: Member) -> None:
        held = self._connections.get(member.key, ())
        if member in held:
            rest = tuple(other for other in held if other is not member)
            if rest:
                self._connections[member.key] = rest
            else:
                del self._connections[member.key]

    def online(self, name: str) -> list[Member]:
        return [m for m in self._connections.get(name_key(name), ()) if not m.left and not m.outbox.closing]

    # --- sending and delivering ---------------------------------------------------------------

    def send(self, sender: Member, to: str, text: str, msg_id: str | None = None) -> None:
        """``sender`` writes ``text`` to ``to`` alone. Raises Refused."""
        recipients = self.online(to)
        held = recipients[0].name if recipients else self.elsewhere(to)
        if held is None and not self.is_member(to):
            raise Refused("no_such_member", f"nobody called {to} is online or registered here")
        conversation = self.conversation(conversation_name(sender.name, to))
        conversation.names[sender.key] = sender.name
        conversation.names[name_key(to)] = held or to
        refusal = self.policy.check_text(text, conversation.journal.writable)
        if refusal is None and self.is_muted(sender.name):
            refusal = Refused("muted", "you are muted by a moderator; your message was not sent")
        if refusal is None and self.policy.check_rate(sender.allowance) is not Verdict.ACCEPT:
            refusal = self.policy.rate_refusal()
        if refusal is not None:
            raise refusal
        conversation.journal.append(MESSAGE, sender.name, text, origin=sender.id, msg_id=msg_id)
        self.sent += 1

    def is_open(self, name: str) -> bool:
        return name in self._conversations

    def existing(self, name: str) -> Conversation | None:
        """The conversation called ``name`` if anything was ever said in it (a ``history`` opens no new one)."""
        if name in self._conversations or self.kept(name):
            return self.conversation(name)
        return None

    def conversation(self, name: str) -> Conversation:
        """The conversation called ``name`` (``@a+b``), opened (and subscribed to) if it was not."""
        found = self._conversations.get(name)
        if found is None:
            found = self._conversations[name] = Conversation(name, self._open(name))
            conversation = found
            found.journal.subscribe(lambda batch: self.deliver(conversation, batch))
        return found

    def deliver(self, conversation: Conversation, batch: Sequence[Event]) -> None:
        """Durable direct messages to the connections of their two members here."""
        for event in batch:
            if event.kind is not MESSAGE:
                continue
            conversation.names[name_key(event.name)] = event.name
            to = self._spelled(conversation, conversation.other(event.name))
            reached = self.online(to)
            for member in reached:
                member.outbox.push(direct_frame(member.dialect, event, to))
            for member in self.online(event.name):
                if member.dialect.echo_own_messages:
                    member.outbox.push(direct_frame(member.dialect, event, to, own=member.id == event.origin))
            if self.on_delivered is not None:
                self.on_delivered(conversation, event, reached)

    def _spelled(self, conversation: Conversation, name: str) -> str:
        """``name`` as its holder spells it (a conversation opened here by a message from another replica
        knows only the two name keys until then)."""
        key = name_key(name)
        if key not in conversation.names:
            here = self.online(name)
            spelled = here[0].name if here else self.elsewhere(name)
            if spelled is not None:
                conversation.names[key] = spelled
        return conversation.names.get(key, name)

    # --- coming back -----------------------------------------------------------------------

    def missed(self, member: Member, conversations: Sequence[tuple[str, int]]) -> list[str]:
        """The direct messages ``member`` missed in her ``conversations`` (name, read position), as her frames."""
        frames: list[str] = []
        for name, read in conversations:
            journal = self.conversation(name).journal
            if journal.last_seq <= read:
                continue
            missed = catch_up(member.name, read, journal.last_seq + 1, journal.recent).missed
            for event in missed:
                if event.kind is MESSAGE and event.name != member.name:
                    frames.append(direct_frame(member.dialect, event, member.name))
            if self.on_caught_up is not None:
                self.on_caught_up(member.name, name, journal.last_seq)
        return frames

    def close_all(self) -> list[Journal]:
        """The conversations' journals, for the service to close; none is open afterwards."""
        journals = [conversation.journal for conversation in self._conversations.values()]
        self._conversations.clear()
        return journals


def direct_frame(dialect: Dialect, event: Event, to: str, own: bool = False) -> str:
    """A direct message as ``dialect`` shows it: JSON ``message`` with ``to``; plain text ``[sender] text``."""
    if dialect.name == PLAIN.name:
        return f"[{event.name}] {sanitize_for_terminal(event.text)}"
    frame = event.own_json_frame() if own else event.json_frame()
    return tagged(frame, ',"to":' + json.dumps(to))


__all__ = ["DIRECT_PREFIX", "Conversation", "Directs", "conversation_name", "direct_frame"]
