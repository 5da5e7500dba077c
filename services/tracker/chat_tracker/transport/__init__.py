"""Bytes on sockets: the ``/ws`` adapter (``native.py``), the HTTP guard in front of uvicorn
(``http_guard.py``, ``guard.py``), direct frame writes (``wire.py``), TLS, and a resume's replay.
"""
