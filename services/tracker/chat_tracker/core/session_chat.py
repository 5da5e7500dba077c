"""What a joined member's frames do: say something, ask ``who``, register, leave; refusals on its own connection.

The chatting stage of ``session.Session``, kept apart because it is the hot path: one
call per frame, no state to look up. Whether a frame ended the dialogue (the member
left, or was removed for flooding) the session reads from the member afterwards; a
registration comes back as a ``CreateAccount`` for the adapter to carry out.

In the plain-text dialect ``/register PASSPHRASE`` registers; every other line is said.
"""

from __future__ import annotations

import logging

from chat_protocol import (
    LITERAL_SLASH,
    PART_COMMAND,
    CloseCode,
    History,
    Join,
    Leave,
    ListDevices,
    Members,
    NameRefused,
    Part,
    ProtocolError,
    Read,
    Register,
    Registered,
    Resume,
    Say,
    SignOut,
    Who,
    check_name,
    decode_client,
    encode,
    passphrase_problem,
)
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.dialects import PLAIN, Dialect
from chat_tracker.core.errands import Errand, MarkRead, ReadHistory, SignOutDevice
from chat_tracker.core.errands import ListDevices as ListMyDevices
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room import Member
from chat_tracker.core.rooms import Rooms
from chat_tracker.core.session_rooms import RoomChat
from chat_tracker.core.signin import CreateAccount, RegistrationDone
from chat_tracker.errors import Kicked, Refused

log = logging.getLogger("chat_tracker")

REGISTER_COMMAND = "/register"
DEVICES_COMMAND = "/devices"
SIGN_OUT_COMMAND = "/signout"


class Chat:
    """One connection's chatting: the room it speaks to, its dialect, and its outbox for answers."""

    __slots__ = ("dialect", "outbox", "room", "rooms")

    def __init__(self, rooms: Rooms, dialect: Dialect, outbox: Outbox) -> None:
        self.room = rooms.default
        self.rooms = RoomChat(rooms, dialect, outbox)
        self.dialect = dialect
        self.outbox = outbox

    def take(self, member: Member, frame: str) -> CreateAccount | Errand | None:
        """``member`` sent ``frame``; an account to make or an errand, if that is what it asked for."""
        if self.dialect is not PLAIN:
            return self._take_json(member, frame)
        text = frame.rstrip("\r\n")
        if text == "exit":
            self._leave(member)
        elif text.startswith(LITERAL_SLASH):
            self.rooms.say_here(member, text[1:])
        elif text.startswith("/"):
            return self._command(member, text)
        elif self.rooms.writing_in_default:
            self._say(member, text)
        else:
            self.rooms.say_here(member, text)
        return None

    def _command(self, member: Member, text: str) -> CreateAccount | Errand | None:
        """A plain-text line starting with ``/``: this stage's own commands, or the rooms' (``session_rooms``)."""
        word, _, rest = text.partition(" ")
        if word == PART_COMMAND:
            room = rest.strip() or self.rooms.current
            if self.rooms.rooms.is_default(room):
                self._part(member)
            else:
                self.rooms.part(member, room)
        elif text == DEVICES_COMMAND or (word == SIGN_OUT_COMMAND and rest.strip()):
            return self._device_errand(member, rest.strip() or None)
        elif word == REGISTER_COMMAND:
            return self._register(member, rest)
        else:
            self.rooms.command(member, text)
        return None

    def registration_done(self, member: Member, done: RegistrationDone) -> None:
        """Tell the member how its registration went."""
        if not done.ok:
            self._error(done.code, done.message)
            return
        member.registered = True
        member.device_id = done.device
        if self.dialect is PLAIN:
            self.outbox.push(f"Registered: {done.name} is yours now; joining under it takes your passphrase.")
        else:
            self.outbox.push(encode(Registered(done.name, done.device, done.device_token)))

    def _register(self, member: Member, passphrase: str, device: str | None = None) -> CreateAccount | None:
        if member.registered:
            self._error("already_registered", f"{member.name} is registered already")
            return None
        problem = passphrase_problem(passphrase)
        if problem is not None:
            self._error(*problem)
            return None
        return CreateAccount(member.name, passphrase, device)

    def _take_json(self, member: Member, frame: str) -> CreateAccount | Errand | None:
        try:
            request = decode_client(frame)
        except ProtocolError as error:
            self._error(error.code, error.message)
            return None
        if isinstance(request, Register):
            return self._register(member, request.passphrase, request.device)
        if isinstance(request, (History, Read)):
            return self._membership_errand(member, request)
        if isinstance(request, (ListDevices, SignOut)):
            return self._device_errand(member, request.device if isinstance(request, SignOut) else None)
        if self.rooms.take_json(member, request):
            pass  # a request about another room, a room's listing, or an invitation
        elif isinstance(request, Part):
            self._part(member)
        elif isinstance(request, Say):
            self._say(member, request.text, request.id)
        elif isinstance(request, Who):
            self._who(member)
        elif isinstance(request, Leave):
            self._leave(member)
        elif isinstance(request, (Join, Resume)):
            self._error("already_joined", f"already joined as {member.name}")
        else:
            self._error("already_authenticated", "already authenticated")
        return None

    def _say(self, member: Member, text: str, msg_id: str | None = None) -> None:
        try:
            self.room.say(member, text, msg_id)
        except Kicked:
            log.warning("%s removed for flooding", member.name)
        except Refused as refusal:
            self.outbox.push(self.dialect.error(refusal.code, refusal.message, msg_id))

    def _who(self, member: Member) -> None:
        """Answer ``who``, within the member's allowance for it: one answer can be a megabyte."""
        if member.allowance.who.take():
            self.outbox.push(encode(Members(self.room.who())))
        else:
            refusal = self.room.policy.who_refusal()
            self.outbox.push(self.dialect.error(refusal.code, refusal.message))

    def _leave(self, member: Member) -> None:
        goodbye = self.dialect.bye("left", f"Bye, {member.name}.")
        self.room.leave(member, LeaveReason.EXIT, close=(CloseCode.NORMAL, "left", (goodbye,)))

    def _membership_errand(self, member: Member, request: History | Read) -> Errand | None:
        """History and read positions are a registered member's: her membership keeps them."""
        if not member.registered:
            self._error("not_registered", "history and read positions are for registered names: /register first")
            return None
        if isinstance(request, History) and request.to is not None:
            try:
                check_name(request.to)
            except NameRefused as refused:
                self._error(refused.code, str(refused))
                return None
            return ReadHistory(request.after, request.before, request.limit, to=request.to)
        room = None if self.rooms.rooms.is_default(request.room) else request.room
        held = self.rooms.rooms.member_in(member, room or self.rooms.rooms.default_name)
        if held is None:
            self._error("not_in_room", f"you are not in {room}")
            return None
        if isinstance(request, Read):  # never past what the room has delivered: a read of the future means nothing
            return MarkRead(member.name, min(request.seq, held[0].delivered_seq), room)
        return ReadHistory(request.after, request.before, request.limit, room)

    def _device_errand(self, member: Member, sign_out: str | None) -> Errand | None:
        """``/devices`` (``devices``) lists her devices; ``/signout ID`` (``sign_out``) signs one out."""
        if not member.registered:
            self._error("not_registered", "devices are a registered name's: /register first")
            return None
        if sign_out is not None:
            return SignOutDevice(member.name, sign_out)
        return ListMyDevices(member.name, member.device_id)

    def _part(self, member: Member) -> None:
        """Leave for good: a registered member's membership ends (a guest just leaves, as with ``exit``)."""
        if not member.registered:
            self._leave(member)
            return
        goodbye = self.dialect.bye("parted", f"Bye, {member.name}: you have left the room for good.")
        self.room.leave(member, LeaveReason.PART, close=(CloseCode.NORMAL, "parted", (goodbye,)))

    def _error(self, code: str, message: str) -> None:
        self.outbox.push(self.dialect.error(code, message))
