"""REFERENCE, NOT PRODUCT CODE: the WebSocket chat most people write.

The FastAPI documentation's pattern (tutorial "WebSockets", "Handling
disconnections and multiple clients"): a ``ConnectionManager`` holding the open
WebSockets, whose ``broadcast`` awaits ``send_text`` to each member in turn.
It speaks the tracker's plain-text dialogue and runs under uvicorn with the
tracker's settings (websockets-sansio, no per-message deflate, uvloop,
httptools, 64 KiB frames), so the difference from the tracker is the fan-out
design, not the stack.

    python -m bench.ref_typical --port 8002 --password alphonso
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect


class ConnectionManager:
    """As in the FastAPI docs, plus the member's name for the dialogue."""

    def __init__(self) -> None:
        self.active_connections: dict[WebSocket, str] = {}

    def connect(self, websocket: WebSocket, name: str) -> None:
        self.active_connections[websocket] = name

    def disconnect(self, websocket: WebSocket) -> None:
        self.active_connections.pop(websocket, None)

    async def broadcast(self, message: str, sender: WebSocket | None = None) -> None:
        for connection in list(self.active_connections):
            if connection is not sender:
                await connection.send_text(message)


def create_app(password: str) -> FastAPI:
    app = FastAPI()
    manager = ConnectionManager()

    @app.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("Enter server password...")
        try:
            if (await websocket.receive_text()).rstrip("\r\n") != password:
                await websocket.send_text("Wrong password. Bye.")
                await websocket.close(4001)
                return
            await websocket.send_text("Welcome to our server...")
            await websocket.send_text("Enter your username...")
            name = (await websocket.receive_text()).rstrip("\r\n")
        except WebSocketDisconnect:
            return
        online = ", ".join([*manager.active_connections.values(), name])
        for line in (
            f"Hi {name}, You have been added to the server.",
            f"Online now ({len(manager.active_connections) + 1}): {online}",
            "Limits: none (reference server).",
            "Just type your message and press Enter; send exit to leave.",
        ):
            await websocket.send_text(line)
        await manager.broadcast(f"* {name} joined the chat")
        manager.connect(websocket, name)
        try:
            while True:
                text = (await websocket.receive_text()).rstrip("\r\n")
                if text == "exit":
                    await websocket.send_text(f"Bye, {name}.")
                    await websocket.close()
                    manager.disconnect(websocket)
                    break
                await manager.broadcast(f"{name}: {text}", sender=websocket)
        except WebSocketDisconnect:
            manager.disconnect(websocket)
        await manager.broadcast(f"* {name} left the chat")

    return app


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--ping-interval", type=float, default=20.0)
    parser.add_argument("--ping-timeout", type=float, default=20.0)
    args = parser.parse_args()
    print(f"Listening on http://{args.host}:{args.port} (reference: typical)", flush=True)
    uvicorn.run(
        create_app(args.password),
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_max_size=65536,
        ws_per_message_deflate=False,
        ws_ping_interval=args.ping_interval,
        ws_ping_timeout=args.ping_timeout,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    cli()
