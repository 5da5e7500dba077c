"""Bytes on sockets: the HTTP guard in front of uvicorn (``http_guard.py``, ``guard.py``), the one
``/ws`` adapter (``native.py``, with its ``handshake.py``, ``wire.py`` for frames out and
``keepalive.py``), a resume's replay, TLS, and the ASGI types.
"""
