"""The chat protocol shared by tracker and client: messages, close codes, names, safe text.

Pure code with no I/O: both sides import it, and tests exercise it without sockets.
"""

from .codes import CloseCode, describe, should_retry
from .messages import (
    PROTOCOL_VERSION,
    SUBPROTOCOL,
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
    ProtocolError,
    Say,
    ServerMessage,
    Welcome,
    Who,
    decode_client,
    decode_server,
    encode,
    format_ts,
    parse_ts,
)
from .names import InvalidName, NameRefused, ReservedName, check_name, name_key
from .text import escape, has_lone_surrogate, sanitize_for_terminal, unescape

__all__ = [
    "PROTOCOL_VERSION", "SUBPROTOCOL", "Auth", "Authenticated", "Bye", "ChatMessage",
    "ClientMessage", "CloseCode", "Error", "Hello", "InvalidName", "Join", "Joined", "Leave",
    "Left", "Limits", "MemberInfo", "Members", "NameRefused", "ProtocolError", "ReservedName",
    "Say", "ServerMessage", "Welcome", "Who", "check_name", "decode_client", "decode_server",
    "describe", "encode", "escape", "has_lone_surrogate", "format_ts", "name_key", "parse_ts", "sanitize_for_terminal",
    "should_retry", "unescape",
]
