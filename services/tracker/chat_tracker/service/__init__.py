"""The running tracker assembled: ``tracker.py`` wires the room, the journal, chat.log and the password
gate from ``settings.py``, the one place every setting and its default live.
"""
