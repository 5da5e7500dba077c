"""Bytes on sockets: the HTTP guard in front of uvicorn (``http_guard.py``, ``guard.py``); the one
``/ws`` adapter, ``native.py`` (the socket's side), with ``handshake.py``, ``driver.py`` (the
member's session), ``wire.py`` (frames out) and ``keepalive.py``; a resume's replay; TLS; the ASGI types.
"""
