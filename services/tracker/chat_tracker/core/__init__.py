"""The pure chat logic: no file, no socket, no framework (tests/tracker/test_layout.py checks it).

``session.py`` is one connection's dialogue (password, name, chat) as a state machine;
``room/`` holds the members and turns their requests into journal appends, checked
against ``claims.py`` (names) and ``policy.py`` (text rules, rate); delivered events are
rendered once by ``events.py``/``delivery.py``/``dialects.py`` into ``frames.py`` bytes
and queued per member by ``outbox.py``. Accounts and rooms are chat logic: they land here.
"""
