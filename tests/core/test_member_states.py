"""A member's life and the room's are tables: a step they do not list raises, and only the table moves a state.

One case per illegal (state, step) pair: the complement of ``MEMBER_TRANSITIONS`` and of
``ROOM_TRANSITIONS``. Each member is brought to its state by legal steps first, so a state
no path reaches would show up here as an error, not as a silently skipped case.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

from chat_protocol import Limits
from chat_tracker.core.dialects import JSON
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.room import IllegalTransition, Member, MemberState, Step
from chat_tracker.core.room.member import DETACHED
from chat_tracker.core.room.states import (
    INITIAL_STATES,
    MEMBER_TRANSITIONS,
    ROOM_TRANSITIONS,
    RoomState,
    RoomStep,
    next_state,
)
from chat_tracker.errors import TrackerError
from support.fakes import FakeClock

ROOM_PACKAGE = Path(__file__).resolve().parents[2] / "services" / "tracker" / "chat_tracker" / "core" / "room"


def _paths() -> dict[MemberState, tuple[MemberState, list[Step]]]:
    """For every state, a state a member can start in and the legal steps that lead from there to it."""
    found: dict[MemberState, tuple[MemberState, list[Step]]] = {state: (state, []) for state in INITIAL_STATES}
    queue = deque(INITIAL_STATES)
    while queue:
        state = queue.popleft()
        start, steps = found[state]
        for step, target in MEMBER_TRANSITIONS[state].items():
            if target not in found:
                found[target] = (start, [*steps, step])
                queue.append(target)
    return found


PATHS = _paths()
ILLEGAL = [(state, step) for state in MemberState for step in Step if step not in MEMBER_TRANSITIONS[state]]
ILLEGAL_FOR_ROOM = [(state, step) for state in RoomState for step in RoomStep if step not in ROOM_TRANSITIONS[state]]


def _new(state: MemberState) -> Member:
    allowance = MemberPolicy(Limits(), 20, 1.0, monotonic=FakeClock()).allowance()
    return Member(1, "ann", "ann", JSON, DETACHED, "", 0.0, 0.0, allowance, state=state)


def _member_in(state: MemberState) -> Member:
    start, steps = PATHS[state]
    member = _new(start)
    for step in steps:
        member.advance(step)
    assert member.state is state
    return member


def test_every_state_is_reachable_and_has_a_row() -> None:
    assert set(PATHS) == set(MemberState) == set(MEMBER_TRANSITIONS)
    assert set(ROOM_TRANSITIONS) == set(RoomState)


@pytest.mark.parametrize(("state", "step"), ILLEGAL, ids=[f"{state.name}-{step.name}" for state, step in ILLEGAL])
def test_a_step_the_table_does_not_list_raises_and_changes_nothing(state: MemberState, step: Step) -> None:
    member = _member_in(state)
    assert not member.can(step)
    with pytest.raises(IllegalTransition) as raised:
        member.advance(step)
    assert (raised.value.state, raised.value.step) == (state, step)
    assert isinstance(raised.value, TrackerError)
    assert member.state is state


@pytest.mark.parametrize(
    ("state", "step"), ILLEGAL_FOR_ROOM, ids=[f"{state.name}-{step.name}" for state, step in ILLEGAL_FOR_ROOM]
)
def test_a_room_step_the_table_does_not_list_raises(state: RoomState, step: RoomStep) -> None:
    with pytest.raises(IllegalTransition):
        next_state(ROOM_TRANSITIONS, state, step)


@pytest.mark.parametrize(
    ("state", "step", "target"),
    [(state, step, target) for state, row in MEMBER_TRANSITIONS.items() for step, target in row.items()],
)
def test_a_listed_step_leads_where_the_table_says(state: MemberState, step: Step, target: MemberState) -> None:
    member = _member_in(state)
    assert member.can(step)
    assert member.advance(step) is state
    assert member.state is target


def test_a_member_starts_joining_away_or_remote_only() -> None:
    for state in set(MemberState) - INITIAL_STATES:
        with pytest.raises(ValueError, match="starts joining, away or remote"):
            _new(state)


def test_held_events_go_when_the_member_stops_resuming() -> None:
    member = _member_in(MemberState.RESUMING)
    held = member.replay
    assert held is not None
    held.append(object())  # type: ignore[arg-type]
    assert member.replay == member.held == held
    member.advance(Step.LEAVE)
    assert member.held is None and member.replay is None


def test_only_the_table_writes_a_members_state() -> None:
    """No module of the room assigns ``.state`` except ``Member.advance``: every change goes through the table."""
    writers = []
    for path in sorted(ROOM_PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for node in ast.walk(function):
                targets = node.targets if isinstance(node, ast.Assign) else []
                targets += [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
                if any(isinstance(t, ast.Attribute) and t.attr == "state" for t in targets):
                    writers.append(f"{path.name}:{function.name}")
    assert writers == ["member.py:advance"]
