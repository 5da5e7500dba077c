"""REFERENCE, NOT PRODUCT CODE: the fastest fan-out plain Python offers.

A bare ``websockets`` asyncio server on uvloop, no compression, that speaks the
tracker's plain-text dialogue (password, name, lines) and fans every message out
with ``websockets.broadcast()``: one encoding, one synchronous write per member,
nothing awaited per recipient, no log, no limits, no backpressure. The benchmark
runs it beside the tracker to give a ceiling the tracker's figures are divided by.

    python -m bench.ref_ceiling --port 8001 --password alphonso
"""

from __future__ import annotations

import argparse
import contextlib

import uvloop
import websockets
from websockets.asyncio.server import ServerConnection, serve

MEMBERS: dict[ServerConnection, str] = {}


def others(sender: ServerConnection) -> list[ServerConnection]:
    return [connection for connection in MEMBERS if connection is not sender]


async def dialogue(connection: ServerConnection, password: str) -> None:
    await connection.send("Enter server password...")
    if str(await connection.recv()).rstrip("\r\n") != password:
        await connection.send("Wrong password. Bye.")
        await connection.close(4001)
        return
    await connection.send("Welcome to our server...")
    await connection.send("Enter your username...")
    name = str(await connection.recv()).rstrip("\r\n")
    online = ", ".join([*MEMBERS.values(), name])
    for line in (
        f"Hi {name}, You have been added to the server.",
        f"Online now ({len(MEMBERS) + 1}): {online}",
        "Limits: none (reference server).",
        "Just type your message and press Enter; send exit to leave.",
    ):
        await connection.send(line)
    websockets.broadcast(list(MEMBERS), f"* {name} joined the chat")
    MEMBERS[connection] = name
    try:
        async for frame in connection:
            text = str(frame).rstrip("\r\n")
            if text == "exit":
                await connection.send(f"Bye, {name}.")
                break
            websockets.broadcast(others(connection), f"{name}: {text}")
    finally:
        del MEMBERS[connection]
        websockets.broadcast(list(MEMBERS), f"* {name} left the chat")


async def main(host: str, port: int, password: str, ping_interval: float, ping_timeout: float) -> None:
    async def handler(connection: ServerConnection) -> None:
        await dialogue(connection, password)

    async with serve(
        handler, host, port, compression=None, max_size=65536, ping_interval=ping_interval, ping_timeout=ping_timeout
    ) as server:
        print(f"Listening on http://{host}:{port} (reference: ceiling)", flush=True)
        await server.serve_forever()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--ping-interval", type=float, default=20.0)
    parser.add_argument("--ping-timeout", type=float, default=20.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main(args.host, args.port, args.password, args.ping_interval, args.ping_timeout))


if __name__ == "__main__":
    cli()
