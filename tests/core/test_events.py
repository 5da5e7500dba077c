"""An event crosses a process unchanged, ``from_bytes(to_bytes(e)) == e``; its cached renderings are not its value."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chat_tracker.core.events import MEMBER_EVENTS, Event, EventKind, kind_of

# Any text, including lone surrogates (a JSON member can send "\ud800"; the event must carry it).
ANY_TEXT = st.text(
    st.one_of(st.characters(), st.characters(categories=["Cs"]), st.sampled_from("\n\r\x00\u2028\u202e"))
)

EVENTS = st.builds(
    Event,
    seq=st.integers(),
    time=st.floats(allow_nan=False, allow_infinity=False),
    kind=st.sampled_from(EventKind),
    name=ANY_TEXT,
    text=ANY_TEXT,
    origin=st.none() | st.integers(),
    members=st.lists(ANY_TEXT, max_size=5).map(tuple),
)

# What the tracker renders: valid names, times a datetime can show.
NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", fullmatch=True)
RENDERABLE = st.builds(
    Event,
    seq=st.integers(min_value=1, max_value=2**63),
    time=st.floats(min_value=0, max_value=4_102_444_800),  # 1970 to 2100
    kind=st.sampled_from(EventKind),
    name=NAMES,
    text=ANY_TEXT,
    origin=st.none() | st.integers(min_value=1),
    members=st.lists(NAMES, max_size=5).map(tuple),
)


@given(EVENTS)
def test_any_event_survives_to_bytes_and_back(event: Event) -> None:
    """Every field comes back equal - huge or negative seqs and times, empty texts, surrogates, no origin."""
    data = event.to_bytes()
    assert data.isascii()
    again = Event.from_bytes(data)
    assert again == event
    assert (again.seq, again.time, again.kind, again.name, again.text, again.origin, again.members) == (
        event.seq,
        event.time,
        event.kind,
        event.name,
        event.text,
        event.origin,
        event.members,
    )
    assert again.to_bytes() == data


@given(RENDERABLE)
def test_renderings_are_not_part_of_the_value(event: Event) -> None:
    """An event whose renderings were computed (and cached) still equals a fresh copy, and serialises the same."""
    fresh = Event.from_bytes(event.to_bytes())
    before = event.to_bytes()
    line = event.log_line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert event.ts.endswith("Z")
    if event.kind in MEMBER_EVENTS:
        event.json_frame()
        event.plain_frame()
        event.json_wire()
        event.plain_wire()
    assert event == fresh and fresh == event
    assert event.to_bytes() == before
    assert Event.from_bytes(event.to_bytes()) == event
    fresh._ts = "not the same rendering"  # a cache, not a field: still equal
    assert fresh == event


def test_unequal_values_are_unequal() -> None:
    """Equality is by value: one field different makes another event."""
    event = Event(7, 1.5, EventKind.MESSAGE, "alpha", "hi", 3)
    assert event == Event(7, 1.5, EventKind.MESSAGE, "alpha", "hi", 3)
    assert event != Event(7, 1.5, EventKind.MESSAGE, "alpha", "hi", None)
    assert event != Event(7, 1.5, EventKind.MESSAGE, "alpha", "hi ", 3)
    assert event != Event(8, 1.5, EventKind.MESSAGE, "alpha", "hi", 3)


@given(
    st.one_of(
        st.sampled_from([kind.value for kind in EventKind]),
        st.text(max_size=10),
        st.integers(),
        st.none(),
        st.lists(st.text(max_size=3), max_size=2),
    )
)
def test_kind_of_is_the_enums_own_lookup(value: object) -> None:
    """Every kind by its value, and ValueError for anything else (a foreign stream entry, a hand-edited log)."""
    try:
        expected: EventKind | None = EventKind(value)  # type: ignore[arg-type]
    except ValueError:
        expected = None
    if expected is None:
        try:
            kind_of(value)
        except ValueError:
            return
        raise AssertionError(f"{value!r} was taken for a kind")
    assert kind_of(value) is expected


def test_kind_of_knows_every_kind() -> None:
    assert [kind_of(kind.value) for kind in EventKind] == list(EventKind)
