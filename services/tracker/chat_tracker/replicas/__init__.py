"""Scaling out on Redis: a replica's membership of the shared room (``replica.py``) and the archiver
that writes chat.log from the stream (``archiver.py``).
"""
