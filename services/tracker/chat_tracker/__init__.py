"""The chat tracker: one room, many members, every event in chat.log.

Layers, lowest first (each imports only those before it; tests/tracker/test_layout.py):
``records.py`` -> ``errors.py`` -> ``core/`` (pure chat logic) -> ``journal/`` -> ``storage/`` ->
``replicas/`` -> ``service/`` -> ``transport/`` -> ``http/`` -> ``runtime/``.

Where a message travels, by file: ``transport/native.py`` (the socket: frames in and
out) -> ``core/session.py`` (the dialogue: password, name, chat) -> ``core/room/requests.py``
(checks it against ``core/claims.py`` and ``core/policy.py``) ->
``journal/local.py`` (gives it its seq) -> ``storage/chatlog.py`` (one write, durable
first) -> ``core/room/delivering.py`` (delivery, frames from ``core/delivery.py`` and
``core/dialects.py``) -> ``core/outbox.py`` (one bounded queue per member) ->
``transport/native.py`` (straight onto each member's socket).
"""

__version__ = "0.1.0"
