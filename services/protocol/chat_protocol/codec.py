"""Frames of the structured protocol: ``encode`` a message, ``decode_client``/``decode_server`` a frame.

The messages themselves are ``messages.py``'s dataclasses: a frame is one compact JSON
object whose ``type`` is the class's ``TYPE`` and whose other keys are its fields, None
ones left out. Decoding checks every field's type against the dataclass's annotation and
ignores keys it does not know, so a newer peer's extra fields are harmless.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from .accounts import (
    MAX_DEVICE_LABEL_CHARS,
    MAX_DEVICE_TOKEN_CHARS,
    DeviceInfo,
    Devices,
    ListDevices,
    Register,
    Registered,
    SignedOut,
    SignOut,
)
from .errors import ProtocolError
from .membership import MAX_HISTORY_PAGE, History, HistoryPage, Part, Presence, Read
from .messages import (
    MAX_MESSAGE_ID_CHARS,
    Announcement,
    Auth,
    Authenticated,
    Bye,
    ChatMessage,
    ClientMessage,
    Error,
    Hello,
    Join,
    Joined,
    Leave,
    Left,
    Limits,
    MemberInfo,
    Members,
    Moderation,
    Resume,
    Resumed,
    Say,
    ServerMessage,
    Welcome,
    Who,
)
from .names import MAX_NAME_LENGTH
from .rooms import Entered, Invite, Invited, ListRooms, Parted, Remove, RoomInfo, RoomList, room_name

_SURROGATE = re.compile("[\ud800-\udfff]")


def encode(message: ClientMessage | ServerMessage) -> str:
    """One compact JSON text frame for ``message``, always encodable as UTF-8.

    A lone surrogate (which UTF-8 cannot carry) is written as a JSON ``\\uXXXX``
    escape, so it reaches the peer as that same character and the tracker can
    refuse it with ``invalid_text`` instead of the sender failing to send.
    """
    body: dict[str, Any] = {"type": message.TYPE}
    body.update(_fields_of(message))
    frame = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if _SURROGATE.search(frame) is None:
        return frame
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", frame)


def _fields_of(message: Any) -> dict[str, Any]:
    """A message's fields as JSON values, None ones left out.

    Not ``dataclasses.asdict``: it deep-copies every list, which for a ``resumed``
    or ``members`` frame in a room of a thousand is a thousand copies per frame.
    """
    body: dict[str, Any] = {}
    for spec in fields(message):
        value = getattr(message, spec.name)
        if value is None:
            continue
        if is_dataclass(value):
            value = _fields_of(value)
        elif isinstance(value, list) and value and is_dataclass(value[0]):
            value = [_fields_of(item) for item in value]
        body[spec.name] = value
    return body


def _load_object(frame: str) -> dict[str, Any]:
    try:
        body = json.loads(frame)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested deeper than the parser goes
        raise ProtocolError("malformed", "frame is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise ProtocolError("malformed", "frame must be a JSON object with a string 'type'")
    return body


def _string_field(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise ProtocolError("malformed", f"'{body['type']}' needs a string '{key}'")
    return value


def _optional_string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ProtocolError("malformed", f"'{body['type']}' needs '{key}' to be a string when it is given")
    return value


def _bounded(body: dict[str, Any], key: str, most: int) -> str | None:
    value = _optional_string(body, key)
    if value is not None and len(value) > most:
        raise ProtocolError("malformed", f"'{key}' has at most {most} characters")
    return value


def _message_id(body: dict[str, Any]) -> str | None:
    value = body.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_MESSAGE_ID_CHARS:
        raise ProtocolError("malformed", f"'id' must be a string of 1-{MAX_MESSAGE_ID_CHARS} characters")
    return value


def _seq_field(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError("malformed", f"'{body['type']}' needs a whole number '{key}' of 0 or more")
    return int(value)


def decode_client(frame: str) -> ClientMessage:
    """Parse a frame a client sent. Raises ProtocolError (``malformed``/``unknown_type``)."""
    body = _load_object(frame)
    kind = body["type"]
    if kind == Say.TYPE:
        return Say(_string_field(body, "text"), _message_id(body), _room(body), _bounded(body, "to", MAX_NAME_LENGTH))
    if kind == Join.TYPE:
        return Join(
            (_optional_string(body, "name") or "") if "room" in body else _string_field(body, "name"),
            _optional_string(body, "passphrase"),
            _bounded(body, "device_token", MAX_DEVICE_TOKEN_CHARS),
            _bounded(body, "device", MAX_DEVICE_LABEL_CHARS),
            _room(body),
            True if body.get("private") is True else None,
        )
    if kind == ListDevices.TYPE:
        return ListDevices()
    if kind == SignOut.TYPE:
        return SignOut(_string_field(body, "device"))
    if kind == Register.TYPE:
        return Register(_string_field(body, "passphrase"), _bounded(body, "device", MAX_DEVICE_LABEL_CHARS))
    if kind == Auth.TYPE:
        return Auth(_string_field(body, "password"))
    if kind == Who.TYPE:
        return Who(_room(body))
    if kind in (ListRooms.TYPE, Invite.TYPE, Remove.TYPE):
        return _rooms_request(kind, body)
    if kind == Leave.TYPE:
        return Leave()
    if kind == Resume.TYPE:
        return Resume(_string_field(body, "token"), _string_field(body, "epoch"), _seq_field(body, "after"))
    if kind == Read.TYPE:
        return Read(_seq_field(body, "seq"), _room(body))
    if kind == Part.TYPE:
        return Part(_room(body))
    if kind == History.TYPE:
        return _history(body)
    raise ProtocolError("unknown_type", f"unknown message type {kind[:40]!r}")


def _rooms_request(kind: str, body: dict[str, Any]) -> ListRooms | Invite | Remove:
    """``rooms``, ``invite`` or ``remove`` (rooms.py)."""
    if kind == ListRooms.TYPE:
        return ListRooms()
    room, name = _required_room(body), _bounded(body, "name", MAX_NAME_LENGTH) or ""
    return Invite(room, name) if kind == Invite.TYPE else Remove(room, name)


def _history(body: dict[str, Any]) -> History:
    """A ``history`` request: exactly one of ``after`` and ``before``, and a ``limit`` of 1 to MAX_HISTORY_PAGE."""
    given = [key for key in ("after", "before") if body.get(key) is not None]
    if len(given) != 1:
        raise ProtocolError("malformed", "'history' needs exactly one of 'after' and 'before'")
    limit = body.get("limit", History.limit)
    if not _is_int(limit) or not 1 <= limit <= MAX_HISTORY_PAGE:
        raise ProtocolError("malformed", f"'history' needs a 'limit' of 1 to {MAX_HISTORY_PAGE}")
    seq = _seq_field(body, given[0])
    room, to = _room(body), _bounded(body, "to", MAX_NAME_LENGTH)
    if given[0] == "after":
        return History(after=seq, limit=limit, room=room, to=to)
    return History(before=seq, limit=limit, room=room, to=to)


def _room(body: dict[str, Any]) -> str | None:
    """A request's ``room``, as the room's name (``room_name``); None when absent."""
    value = _bounded(body, "room", 64)
    return None if value is None else room_name(value)


def _required_room(body: dict[str, Any]) -> str:
    room = _room(body)
    if room is None:
        raise ProtocolError("malformed", f"'{body['type']}' needs a string 'room'")
    return room


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# Field annotations (strings, under ``from __future__ import annotations``) -> type check.
_SCALAR_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda value: isinstance(value, str),
    "int": _is_int,
    "float": _is_number,
    "bool": lambda value: isinstance(value, bool),
    "list[str]": _is_str_list,
    "str | None": lambda value: value is None or isinstance(value, str),
    "float | None": lambda value: value is None or _is_number(value),
    "list[int] | None": lambda value: value is None or (isinstance(value, list) and all(map(_is_int, value))),
    "int | None": lambda value: value is None or _is_int(value),
    "list[dict[str, object]]": lambda value: isinstance(value, list) and all(isinstance(item, dict) for item in value),
}


_LISTS_OF: dict[str, type[Any]] = {
    "list[MemberInfo]": MemberInfo,
    "list[DeviceInfo]": DeviceInfo,
    "list[RoomInfo]": RoomInfo,
    "list[RoomInfo] | None": RoomInfo,
}


def _field_value(annotation: str, value: Any) -> Any:
    if annotation == "Limits":
        return _build(Limits, value)
    if annotation in _LISTS_OF:
        if value is None and annotation.endswith("| None"):
            return None
        if not isinstance(value, list):
            raise TypeError("a list is expected")
        return [_build(_LISTS_OF[annotation], item) for item in value]
    if not _SCALAR_CHECKS[annotation](value):
        raise TypeError(f"{annotation} expected, not {type(value).__name__}")
    return float(value) if annotation == "float" or (annotation == "float | None" and value is not None) else value


def _build(cls: type[Any], body: Any) -> Any:
    """``cls`` from a JSON object: unknown keys ignored, every known one type-checked."""
    if not isinstance(body, dict):
        raise TypeError(f"{cls.__name__} must be an object")
    values: dict[str, Any] = {}
    for spec in fields(cls):
        if spec.name in body:
            try:
                values[spec.name] = _field_value(str(spec.type), body[spec.name])
            except TypeError as exc:
                raise TypeError(f"{spec.name!r}: {exc}") from None
        elif spec.default is MISSING:
            raise TypeError(f"{spec.name!r} is missing")
    return cls(**values)


_SERVER_TYPES: dict[str, type[Any]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Authenticated,
        Welcome,
        Resumed,
        Joined,
        ChatMessage,
        Left,
        Moderation,
        Announcement,
        Members,
        Error,
        Bye,
        Registered,
        Presence,
        HistoryPage,
        Devices,
        SignedOut,
        RoomList,
        Entered,
        Parted,
        Invited,
    )
}


def decode_server(frame: str) -> ServerMessage:
    """Parse a frame the tracker sent. Raises ProtocolError on anything unexpected."""
    body = _load_object(frame)
    cls = _SERVER_TYPES.get(body.pop("type"))
    if cls is None:
        raise ProtocolError("unknown_type", "unknown message type from tracker")
    try:
        message: ServerMessage = _build(cls, body)
    except TypeError as exc:
        raise ProtocolError("malformed", f"bad {cls.TYPE!r} frame: {exc}") from None
    return message


__all__ = ["decode_client", "decode_server", "encode"]
