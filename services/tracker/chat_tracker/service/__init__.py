"""The running tracker assembled: ``tracker.py`` wires the room, its journal and the password gates from
``settings.py``, the one place every setting and its default live. Where the room is kept is the
tracker's mode: ``standalone.py`` (chat.log in the data dir) or ``replicated.py`` (a room in Redis
shared by replicas); ``lifecycle.py`` holds what both do alike.
"""
