"""A replica's journal on a real Redis, driven directly: what the journal tests start and watch."""

from __future__ import annotations

from chat_tracker.core.events import Event
from chat_tracker.journal.redis_keys import Keys
from chat_tracker.journal.redis_stream import RedisJournal
from support.redis_server import RedisServer, add_events, event


def started_journal(
    url: str, epoch: str, last_seq: int, gather: float = 0.0, history_size: int = 8
) -> tuple[RedisJournal, list[Event]]:
    """Replica 1's journal on ``url``'s room in ``epoch`` after ``last_seq``, started, and the events it delivers.

    ``gather``: seconds the writer and the reader gather before each call (``Coalescer.gather``). Close it.
    """
    journal = RedisJournal(
        url,
        Keys(),
        replica=1,
        epoch=epoch,
        last_seq=last_seq,
        history_size=history_size,
        gather=lambda: gather,
        password=None,
    )
    delivered: list[Event] = []
    journal.subscribe(delivered.extend)
    journal.start()
    return journal, delivered


def registered_room(server: RedisServer, epoch: str, seq: int) -> None:
    """The room ``epoch`` at ``seq`` (one event), with replica 1 registered in it, as its link would have it."""
    add_events(server.url, [event(seq)], epoch=epoch)
    with server.client() as client:
        client.hset(Keys().replicas, "1", "{}")
