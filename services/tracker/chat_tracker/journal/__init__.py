"""The journal: where a request becomes a logged event with its seq, in one order for everyone.

``protocol.py`` is the interface the core and the runtime use; ``local.py`` is the
in-process journal on chat.log (the default); ``redis_stream.py`` is the shared one of
replicas, with its keys, Lua scripts and client in ``redis_*.py``.
"""
