"""The chat tracker: one room, many members, every event in chat.log.

Where a message travels: ``websocket.py`` (socket, dialogue) -> ``room.py`` (names,
order, rate) -> ``chatlog.py`` (written first) -> ``fanout.py`` (backend) ->
``outbox.py`` (one bounded queue per member) -> back out through ``websocket.py``.
"""

__version__ = "0.1.0"
