"""Members that send as fast as they can, in a process of their own (so the test's own loop stays calm).

``python flooder.py URL PASSWORD COUNT`` joins COUNT members ``flood0``... , prints "joined",
floods until each is closed, then prints, as JSON, each one's close code and how many messages it sent.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the support package, as for pytest

from websockets.exceptions import ConnectionClosed

from support.bots import Bot, open_bot


async def flood(bot: Bot) -> tuple[int | None, int]:
    """Send ``spam N`` until the tracker closes the connection: the close code, and how many went out."""
    sent = 0
    try:
        for index in range(100_000):
            await bot.say(f"spam {index}")
            sent += 1
            if index % 100 == 0:
                await asyncio.sleep(0)
    except ConnectionClosed:
        pass
    return await bot.close_code(), sent


async def main(url: str, password: str, count: int) -> None:
    bots = [await open_bot(url, password, f"flood{i}") for i in range(count)]
    print("joined", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # go
    results = await asyncio.gather(*(flood(b) for b in bots))
    print(json.dumps({"codes": [code for code, _ in results], "sent": [sent for _, sent in results]}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
