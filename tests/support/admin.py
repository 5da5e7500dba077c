"""The tracker's /admin REST API, called as a moderator does: with the admin password as a Bearer token."""

from __future__ import annotations

from typing import Any

import httpx

from support.timing import UNIT
from support.tracker import RunningTracker

ADMIN = "the-moderators-own-secret"
ADMIN_ENV = {"TRACKER_ADMIN_PASSWORD": ADMIN}


async def admin(
    tracker: RunningTracker, method: str, path: str, body: Any = None, secret: str = ADMIN
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=UNIT) as client:
        return await client.request(
            method, tracker.http_url + path, json=body, headers={"Authorization": f"Bearer {secret}"}
        )
