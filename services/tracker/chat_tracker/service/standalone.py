"""The tracker alone: chat.log in the data dir is the journal, and the room survives restarts through room.json.

At start chat.log is opened and repaired (``storage/rotation.py``), the room's epoch
and who was in it are read from ``room.json`` brought up to date with chat.log's
tail, and the members of a restart come back as away, free to resume. While it runs,
``room.json`` is rewritten at most once a minute (and at once after an address ban),
``resume.counts`` records every spent token, and chat.log is watched for changes made
underneath (truncated, replaced). At the end ``room.json`` is written once more.
"""

from __future__ import annotations

import asyncio
import logging

from chat_tracker import __version__
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.room import Member, Room
from chat_tracker.core.tokens import ResumeTokens, new_epoch
from chat_tracker.errors import LogWriteError
from chat_tracker.journal.local import LocalJournal
from chat_tracker.journal.protocol import Journal
from chat_tracker.records import Present
from chat_tracker.service.lifecycle import retire_previous_key
from chat_tracker.service.settings import Settings
from chat_tracker.storage.chatlog import ChatLog, DiscardingChatLog
from chat_tracker.storage.checkpoint import Checkpoint, fold, read_checkpoint, write_checkpoint
from chat_tracker.storage.resume_keys import COUNTS_FILE, ResumeCounts, drop_previous_key, load_key, load_previous_key
from chat_tracker.storage.rotation import RotatingLog, RotationPolicy
from chat_tracker.storage.segments import RetentionPolicy

log = logging.getLogger("chat_tracker")

LOG_WATCH_SECONDS = 1.0
CHECKPOINT_SECONDS = 60.0  # room.json at most this old, so a start folds at most a minute of chat.log


class Standalone:
    """The room of a single process, kept in chat.log (its journal) and room.json (who is in, the bans)."""

    link = None  # no other replicas to keep in touch with
    replication = None

    def __init__(self, settings: Settings, policy: MemberPolicy) -> None:
        self.settings = settings
        log_class = DiscardingChatLog if settings.bench_disable_log else ChatLog
        self.chat_log = RotatingLog(settings.data_dir, log_class, rotation_policy(settings))
        report = self.chat_log.open()
        if settings.bench_disable_log:
            log.warning("TRACKER_BENCH_DISABLE_LOG is set: chat.log is NOT written (benchmarks only)")
        if report.torn_bytes_removed:
            log.warning(
                "Repaired %s: removed a torn last line of %d bytes", self.chat_log.path, report.torn_bytes_removed
            )
        self.last_seq_at_start = report.last_seq
        self.was_present = self._who_was_present(report.last_seq)
        journal = LocalJournal(
            self.chat_log, last_seq=report.last_seq, history_size=settings.history_size, epoch=self.was_present.epoch
        )
        journal.on_trouble = _on_log_trouble
        # The members who come back after a restart ask for what they missed: read it once, now.
        journal.preload(self.chat_log.tail(min(settings.history_size, report.last_seq)))
        self.journal: Journal = journal
        previous_key = load_previous_key(settings.data_dir)  # ``rotate-key`` made a new key: the old one, for a grace
        tokens = ResumeTokens(load_key(settings.data_dir), journal.epoch, previous_key)
        self.room = Room(journal, policy, tokens=tokens, grace=settings.resume_grace)
        self.resume_counts = ResumeCounts(settings.data_dir, journal.epoch)
        self.room.on_token_spent = self._record_resume
        self._checkpoint_seq = -1
        self._stopping = False

    def _who_was_present(self, last_seq: int) -> Checkpoint:
        """The room's epoch and who was in the room at chat.log's end: ``room.json`` brought up to date.

        A new epoch when chat.log is new, or no longer reaches the checkpoint's seq
        (replaced by an older copy: its seqs will be used again).
        """
        checkpoint = read_checkpoint(self.settings.data_dir)
        if checkpoint is None or last_seq == 0 or checkpoint.seq > last_seq:
            if last_seq > 0:
                log.warning("chat.log has no matching %s: a new epoch; no earlier session can resume", "room.json")
            checkpoint = Checkpoint(new_epoch(), 0)
        return fold(checkpoint, self.chat_log.read_after, last_seq)

    def start(self) -> None:
        """Log the start, bring back who was in the room, and begin the periodic work (needs the event loop)."""
        room = self.room
        room.start(f"tracker {__version__} started")
        log.info("Chat log: %s (continuing after seq %d)", self.chat_log.path, self.last_seq_at_start)
        room.moderation.restore(self.was_present.moderation)
        room.on_address_ban = lambda: self._write_checkpoint(self._checkpoint(*room.present()))
        restored = room.restore(self.was_present.members, self.resume_counts.read())
        self.resume_counts.rewrite(room.resume_counts())  # only the members still in: the file stays small
        retire_previous_key(room, lambda: drop_previous_key(self.settings.data_dir))
        if restored:
            log.info("%d member(s) were in the room: away until they resume (%g s)", restored, room.grace)
        self._write_checkpoint(self._checkpoint(*room.present()))  # the epoch is on disk before any token
        self._watch_log()
        asyncio.get_running_loop().call_later(CHECKPOINT_SECONDS, self._checkpoint_now)

    def stopping(self) -> None:
        """The shutdown began: no periodic room.json any more (the last one is written by ``close``)."""
        self._stopping = True

    async def close(self) -> None:
        """After the journal is closed: room.json as the room ends, and resume.counts closed."""
        self._write_checkpoint(self._checkpoint(*self.room.present()))
        self.resume_counts.close()

    def _record_resume(self, member: Member) -> None:
        """A resume spent ``member``'s token: its count in ``resume.counts`` before the new token goes out."""
        try:
            self.resume_counts.record(member.since_seq or 0, member.resumes)
        except OSError as error:
            # The resume goes on (the old token is refused from memory); only a restart before the
            # disk is writable again would let the replaced token resume once more.
            log.error("Cannot write %s (%s): the replaced token is refused until a restart", COUNTS_FILE, error)

    def _checkpoint_now(self) -> None:
        """Every minute while the room changes: room.json, written in a worker thread."""
        if self._stopping:
            return
        seq, members = self.room.present()
        if seq != self._checkpoint_seq:
            self._checkpoint_seq = seq
            checkpoint = self._checkpoint(seq, members)  # taken here, on the loop; written in a thread
            asyncio.get_running_loop().run_in_executor(None, self._write_checkpoint, checkpoint)
        asyncio.get_running_loop().call_later(CHECKPOINT_SECONDS, self._checkpoint_now)

    def _checkpoint(self, seq: int, members: list[Present]) -> Checkpoint:
        return Checkpoint(self.journal.epoch, seq, tuple(members), self.room.moderation.snapshot())

    def _write_checkpoint(self, checkpoint: Checkpoint) -> None:
        if self.settings.bench_disable_log:
            return
        try:
            write_checkpoint(self.settings.data_dir, checkpoint)
        except OSError as error:
            log.warning("Cannot write room.json (%s); a restart reads more of chat.log", error.strerror)

    def _watch_log(self) -> None:
        """About once a second, off the hot path: has chat.log been truncated or replaced underneath?"""
        if not self._stopping:
            self.chat_log.check_underneath()
            asyncio.get_running_loop().call_later(LOG_WATCH_SECONDS, self._watch_log)


def _on_log_trouble(error: LogWriteError | None) -> None:
    if error is None:
        log.warning("chat.log is writable again; pending events written")
    else:
        log.error("Cannot write chat.log (%s); messages are refused until it is writable", error.strerror)


def rotation_policy(settings: Settings) -> RotationPolicy:
    """chat.log's rotation and retention, from the flags."""
    retention = RetentionPolicy(settings.keep_segments, settings.keep_days, settings.keep_bytes)
    return RotationPolicy(settings.rotate_bytes, settings.rotate_daily, retention, settings.compress)
