"""Terminal client for the group chat tracker: interactive in a TTY, scriptable when piped.

Layout: ``cli`` (arguments, exit statuses), ``config`` (URL and password),
``connection`` (one httpx-ws connection), ``link`` (the session across connections:
reconnect, resume, resend), ``resume`` (what survives a connection, sans-I/O),
``backoff`` (the reconnection delays), ``interactive`` and ``scripted`` (the two
modes), ``render`` (how events look), ``commands`` (typed commands, moderation ones
included), ``moderator`` (``--admin``: the tracker's ``/admin`` REST API), ``pacing``
(staying under the rate limit), ``errors`` (one exception base, with exit statuses).
"""

from .errors import ClientError

__all__ = ["ClientError"]
