"""The scale profile as users run it: Redis, the archiver, three replicas and HAProxy, one replica killed.

`docker compose --profile scale up`, six real chat-clients through the balancer (`docker compose
run --no-deps client`: `tracker` is the balancer's alias), a round of chat, `docker compose kill -s
SIGKILL` of a replica that holds members, another round once its members have resumed elsewhere;
then the archiver's chat.log must hold every message exactly once, in the one order every member saw.
Real Docker engine, real Compose v2, the images built from the Dockerfiles (deploy/ for Redis and
HAProxy). The project is the test's own (``-p``) and is removed (volumes included) at the end.
"""

from __future__ import annotations

import os
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from support.compose import PASSWORD, Compose, Event, JsonClient, get_json
from support.timing import UNIT

pytestmark = [pytest.mark.docker, pytest.mark.timeout(int(120 * UNIT))]

SERVICES = ("redis", "archiver", "replica1", "replica2", "replica3", "balancer")
REPLICAS = ("replica1", "replica2", "replica3")
MEMBERS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")
REDIS_PASSWORD = "compose-redis-secret"
# Not the default 172.31.250: a developer's own scale stack may be up while the tests run.
SCALE_NET = "172.31.249"
BALANCER_ADDRESS = f"{SCALE_NET}.2"


# Run inside the balancer's container: HAProxy's statistics as CSV (deploy/haproxy/haproxy.cfg).
STATS = (
    "import urllib.request as u; "
    f"print(u.build_opener(u.ProxyHandler({{}})).open('http://127.0.0.1:8404/stats;csv', timeout={0.4 * UNIT:g})"
    ".read().decode())"
)


def wait_until_the_balancer_has_every_replica(compose: Compose) -> None:
    """HAProxy's checks have found all three replicas UP (`up --wait` asks for one)."""
    deadline = time.monotonic() + 12 * UNIT
    while True:
        done = compose.run("exec", "-T", "balancer", "python3", "-c", STATS, check=False)
        rows = [line.split(",") for line in done.stdout.splitlines() if line.startswith("replicas,")]
        states = {row[1]: row[17] for row in rows if row[1] in REPLICAS}
        if sorted(state for state in states.values() if state == "UP") == ["UP"] * len(REPLICAS):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"HAProxy does not have every replica UP: {states}\n{done.stdout}{done.stderr}")
        time.sleep(0.5)


def members_by_replica(compose: Compose) -> dict[str, dict[str, str]]:
    """replica -> {member: the address its log line shows} from the replicas' `... has been added (ADDR, ...)`."""
    placed: dict[str, dict[str, str]] = {}
    for replica in REPLICAS:
        logs = compose.run("logs", "--no-color", "--no-log-prefix", replica).stdout
        placed[replica] = {
            match[1]: match[2] for match in re.finditer(r"(\w+) has been added \(([^,)]+)", logs) if match[1] in MEMBERS
        }
    return placed


def is_message(text: str) -> Callable[[Event], bool]:
    return lambda event: event["type"] == "message" and event["text"] == text


def is_in_room(name: str) -> Callable[[Event], bool]:
    """In a welcome's or resume's member list, or joining."""
    return lambda event: name in event.get("members", ()) or (event["type"] == "joined" and event["name"] == name)


def messages_seen(client: JsonClient) -> list[Event]:
    return [event for event in client.events if event["type"] == "message"]


def expect_round(clients: dict[str, JsonClient], texts: list[str]) -> None:
    """Every member sees every text of the round."""
    for client in clients.values():
        for text in texts:
            client.expect(f"the message {text!r}", is_message(text))


def archived(compose: Compose, wanted: int) -> list[list[str]]:
    """chat.log's lines, split, once the archiver has written ``wanted`` leaves (it follows the stream)."""
    deadline = time.monotonic() + 12 * UNIT
    while True:
        done = compose.run("exec", "-T", "archiver", "cat", "/data/chat.log", check=False)
        log = [line.split(" ", 4) for line in done.stdout.splitlines()]
        if sum(1 for fields in log if len(fields) > 2 and fields[2] == "leave") >= wanted:
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"the archiver's chat.log lacks the leaves after {12 * UNIT:g} s:\n{done.stdout}")
        time.sleep(0.5)


def redis_secret(directory: Path) -> Path:
    """The Redis password file, as scripts/make-redis-secret makes it: 0600, readable by the app's UID 10001."""
    path = directory / "redis_password"
    path.write_text(REDIS_PASSWORD + "\n", encoding="utf-8")
    if os.geteuid() == 0:
        os.chown(path, 10001, 10001)
        path.chmod(0o600)
    else:  # not root (a developer's machine): the containers' user must still read it
        path.chmod(0o644)
    return path


def test_members_through_the_balancer_keep_chatting_when_a_replica_is_killed(
    compose: Compose, scale_images: tuple[str, str], tmp_path: Path
) -> None:
    """A replica SIGKILLed mid-chat: its members resume on another one; chat.log has every message once, in order."""
    compose.profiles = ("scale",)
    compose.env["GROUPCHAT_SCALE_NET"] = SCALE_NET
    compose.env["REDIS_PASSWORD_SECRET"] = str(redis_secret(tmp_path))
    compose.run("up", "--detach", "--wait", *SERVICES, timeout=24 * UNIT)
    # Redis: a password or nothing (the replicas and the archiver above got in with it), no port published.
    refused = compose.run("exec", "-T", "redis", "redis-cli", "ping", check=False)
    assert "NOAUTH" in refused.stdout + refused.stderr, refused
    published = compose.run("port", "redis", "6379", check=False).stdout.strip()
    assert published in ("", ":0"), f"Redis's port is published: {published}"  # ":0": none
    wait_until_the_balancer_has_every_replica(compose)
    balancer = compose.http_base("balancer", 8000)
    assert get_json(compose.http_base("archiver", 8001) + "/healthz", None)[0] == 200
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(balancer + "/", timeout=UNIT) as page:  # the web page, through the balancer
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")

    clients = {name: compose.client(name, deps=False) for name in MEMBERS}
    try:
        for client in clients.values():
            client.expect("its welcome", lambda e: e["type"] == "welcome")
            for other in MEMBERS:
                client.expect(f"{other} in the room", is_in_room(other))
        status, room = get_json(balancer + "/members", PASSWORD)
        assert status == 200 and room["count"] == len(MEMBERS), f"the whole room on any replica: {room}"

        placed = members_by_replica(compose)
        assert sorted(name for names in placed.values() for name in names) == sorted(MEMBERS), placed
        addresses = {address for names in placed.values() for address in names.values()}
        assert BALANCER_ADDRESS not in addresses, f"the replicas trust the balancer's X-Forwarded-For: {placed}"
        assert sum(1 for names in placed.values() if names) >= 2, f"leastconn spreads the members: {placed}"

        before = [f"{name} before the kill" for name in MEMBERS]
        for name, text in zip(MEMBERS, before, strict=True):
            clients[name].say(text)
        expect_round(clients, before)

        victim = max(REPLICAS, key=lambda replica: len(placed[replica]))
        moved = sorted(placed[victim])
        compose.run("kill", "--signal", "SIGKILL", victim)
        for name in moved:
            resumed = clients[name].expect("its resume on another replica", lambda e: e["type"] == "resumed")
            assert resumed["recovered"], resumed
            assert sorted(resumed["members"]) == sorted(MEMBERS), resumed

        after = [f"{name} after the kill" for name in MEMBERS]
        for name, text in zip(MEMBERS, after, strict=True):
            clients[name].say(text)
        expect_round(clients, after)
        assert compose.run("ps", "--status", "running", "--services").stdout.split().count(victim) == 0

        for client in clients.values():
            client.close_input()
        for name, client in clients.items():
            assert client.finish() == 0, f"{name}: {client.stderr}"
    finally:
        for client in clients.values():
            client.kill()

    log = archived(compose, len(MEMBERS))
    seqs = [int(fields[0]) for fields in log]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "chat.log's seqs are contiguous"
    joins = sorted(fields[3] for fields in log if fields[2] == "join")
    assert joins == sorted(MEMBERS), "nobody joined twice: the killed replica's members resumed"
    leaves = sorted(fields[3] for fields in log if fields[2] == "leave")
    assert leaves == sorted(MEMBERS), "each left once, at the end"
    logged = [(int(fields[0]), fields[3], fields[4]) for fields in log if fields[2] == "msg"]
    assert sorted(text for _, _, text in logged) == sorted(before + after), "every message exactly once"
    for name, client in clients.items():
        seen = [(event["seq"], event["name"], event["text"]) for event in messages_seen(client)]
        assert seen == logged, f"{name} saw chat.log's messages, each once, in chat.log's order and seqs"
