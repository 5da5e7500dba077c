"""``/metrics``: Prometheus exposition of the room's counters, read at scrape time.

The room counts with plain integers (free on the hot path); this collector turns
them into metric families only when Prometheus asks.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from chat_tracker.journal.protocol import LOG_WRITE_BUCKETS
from chat_tracker.service.replica_rooms import ReplicaRooms
from chat_tracker.service.tracker import Tracker
from chat_tracker.storage.chatlog import READS


class TrackerCollector(Collector):
    """Reads a Tracker's counters on every scrape."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def collect(self) -> Iterator[Metric]:
        room, stats, journal = self.tracker.room, self.tracker.room.stats, self.tracker.journal.stats
        connections = self.tracker.connections
        yield GaugeMetricFamily("chat_connections", "Open WebSocket connections", len(connections.sessions))
        yield CounterMetricFamily("chat_connections_opened", "WebSocket connections accepted", connections.total_opened)
        yield GaugeMetricFamily("chat_members", "Members in the room", room.member_count)
        yield CounterMetricFamily("chat_joins", "Members joined", stats.joins)
        yield CounterMetricFamily("chat_leaves", "Members left", stats.leaves)
        yield CounterMetricFamily("chat_messages", "Messages accepted and logged", stats.messages)
        yield CounterMetricFamily("chat_messages_refused", "Messages refused (limits)", stats.refused_messages)
        yield CounterMetricFamily("chat_deliveries", "Frames queued to members", stats.deliveries)
        yield CounterMetricFamily("chat_auth_failures", "Wrong or missing passwords", self.tracker.gate.failures)
        yield CounterMetricFamily("chat_slow_member_drops", "Members dropped for not reading", stats.slow_drops)
        yield CounterMetricFamily("chat_flood_drops", "Members dropped for flooding", stats.flood_drops)
        yield GaugeMetricFamily(
            "chat_members_away", "Members whose connection dropped, within their grace", room.away_count
        )
        yield CounterMetricFamily(
            "chat_members_gone_away", "Times a member's connection dropped and it went away", stats.away
        )
        yield CounterMetricFamily("chat_resumes", "Resumes accepted", stats.resumes)
        yield CounterMetricFamily(
            "chat_resumes_refused", "Resumes refused (token, epoch, seq, expired)", stats.resumes_refused
        )
        yield CounterMetricFamily("chat_events_replayed", "Events replayed to resuming members", stats.replayed)
        yield CounterMetricFamily(
            "chat_replays_stopped", "Replays stopped: session replaced or closed", stats.replays_stopped
        )
        yield CounterMetricFamily("chat_log_lines_read", "chat.log lines read back (resumes, /log, start)", READS.lines)
        yield CounterMetricFamily(
            "chat_messages_deduplicated", "Resent messages not logged again (known id)", stats.duplicates
        )
        yield CounterMetricFamily("chat_log_write_errors", "Failed chat.log writes", journal.log_write_errors)
        yield GaugeMetricFamily("chat_log_writable", "1 if chat.log is writable", int(room.log_available))
        yield _log_write_histogram(journal.log_write_buckets, journal.log_write_seconds)
        yield from _segment_metrics(self.tracker)
        yield from _rooms_metrics(self.tracker)


def _rooms_metrics(tracker: Tracker) -> Iterator[Metric]:
    """The rooms besides the default one, all together, and the direct messages (the chat_* above: the default room)."""
    places = tracker.rooms.places
    yield GaugeMetricFamily("chat_rooms", "Rooms besides the default room", len(places))
    yield CounterMetricFamily(
        "chat_room_messages",
        "Messages logged in the rooms besides the default",
        sum(p.room.stats.messages for p in places),
    )
    yield CounterMetricFamily(
        "chat_room_deliveries",
        "Frames queued to members of the other rooms",
        sum(p.room.stats.deliveries for p in places),
    )
    directs = tracker.rooms.directs
    yield CounterMetricFamily("chat_direct_messages", "Direct messages logged", directs.sent if directs else 0)
    if isinstance(tracker.house, ReplicaRooms):  # what this replica reads of Redis besides the default room
        hub = tracker.house.hub
        yield GaugeMetricFamily("chat_redis_streams", "Rooms and conversations this replica reads", hub.streams)
        yield CounterMetricFamily("chat_redis_read_bytes", "Bytes of their events read from Redis", hub.bytes_read)


def _segment_metrics(tracker: Tracker) -> Iterator[Metric]:
    """chat.log's rotation: read from counters the rotation keeps, never from a directory listing here."""
    chat_log = tracker.chat_log
    if chat_log is None:
        return  # a replica: chat.log is the archiver's
    stats = chat_log.stats
    yield GaugeMetricFamily("chat_log_segment_bytes", "Size of the current chat.log", chat_log.size)
    yield GaugeMetricFamily("chat_log_segments", "Rotated chat.log segments on disk", stats.count)
    yield GaugeMetricFamily("chat_log_segments_bytes", "Total size of the rotated segments", stats.total_bytes)
    yield CounterMetricFamily("chat_log_rotations", "chat.log rotations by this process", stats.rotations)
    yield CounterMetricFamily("chat_log_segments_deleted", "Segments deleted by retention", stats.deleted)
    yield GaugeMetricFamily(
        "chat_log_last_rotation_timestamp_seconds",
        "Unix time of the last rotation (0: none since the tracker started)",
        stats.last_rotation,
    )


def _log_write_histogram(counts: list[int], total_seconds: float) -> HistogramMetricFamily:
    cumulative, buckets = 0, []
    for bound, count in zip(LOG_WRITE_BUCKETS, counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    return HistogramMetricFamily(
        "chat_log_write_seconds", "Time of one chat.log batch write", buckets=buckets, sum_value=total_seconds
    )


def metrics_registry(tracker: Tracker) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TrackerCollector(tracker))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
