"""The journal: where a request becomes a logged event with its seq, in one order for everyone.

``protocol.py`` holds the interfaces: ``Journal``, all the core and the runtime use, and
``Replication``, what only a journal shared by replicas adds. ``local.py`` is the
in-process journal on chat.log (the default); ``redis_stream.py`` is the shared one of
replicas, with its keys, Lua scripts, password and clients in ``redis_*.py``
(``redis_client.py`` makes every Redis client of the tracker).
"""
