"""rooms/<name>/room-info.json: written whole, 0600, read back; a tampered or broken one is skipped, never followed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from chat_tracker.core.places import RoomMeta
from chat_tracker.storage.room_files import INFO_FILE, read_room_infos, room_dir, write_room_info


def test_a_rooms_info_is_written_private_and_read_back(tmp_path: Path) -> None:
    meta = RoomMeta("#dev", "alice", 1_795_485_040.5, private=True, invited=frozenset({"bob", "carol"}))
    write_room_info(tmp_path, meta)
    path = room_dir(tmp_path, "#dev") / INFO_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert room_dir(tmp_path, "#dev").stat().st_mode & 0o777 == 0o700
    assert read_room_infos(tmp_path) == [meta]


def test_an_unreadable_or_tampered_info_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_room_info(tmp_path, RoomMeta("#good", "alice", 1.0))
    broken = tmp_path / "rooms" / "broken"
    broken.mkdir()
    (broken / INFO_FILE).write_text("{not json")
    escaping = tmp_path / "rooms" / "escaping"
    escaping.mkdir()
    (escaping / INFO_FILE).write_text(json.dumps({"name": "../../etc", "owner": "x", "created": 1}))
    with caplog.at_level(logging.WARNING, logger="chat_tracker"):
        found = read_room_infos(tmp_path)
    assert [meta.name for meta in found] == ["#good"]
    assert sum("unreadable" in record.getMessage() for record in caplog.records) == 2
