"""The chat tracker: one room, many members, every event in chat.log.

Where a message travels, by file: ``websocket.py`` (the socket: frames in and out)
-> ``session.py`` (the dialogue: password, name, chat) -> ``room.py`` (checks it
against ``claims.py`` and ``policy.py``) -> ``journal.py`` (gives it its seq) ->
``chatlog.py`` (one write, durable first) -> back to ``room.py`` (delivery, frames
from ``delivery.py`` and ``dialects.py``) -> ``outbox.py`` (one bounded queue per
member) -> ``wire.py`` (straight onto each member's socket).
"""

__version__ = "0.1.0"
