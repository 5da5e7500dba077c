"""Once started, the tracker keeps its start-up objects out of the garbage collector's walks."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from chat_tracker.runtime import heap


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored")
def test_settle_freezes_what_exists_and_spaces_young_collections_out() -> None:
    before = gc.get_freeze_count()
    kept = [{"made": "before the server started"} for _ in range(100)]
    heap.settle()
    assert gc.get_freeze_count() >= before + len(kept)
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    assert not any(found is kept[0] for found in gc.get_objects(generation=2))  # frozen: walked by no collection
