"""The Link's state machine: every move of its table, and every move it lacks raising InvalidState.

tests/web/test_link_parity.py feeds the web page's port the same events; here the
Python table is checked on its own, and the ``Link``'s operations in the wrong state.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import pytest

from chat_client.connection import Connection, Incoming
from chat_client.errors import ClientError, InvalidState, Unreachable
from chat_client.link import Link
from chat_client.link_state import RECONNECTING, TRANSITIONS, LinkEvent, LinkMachine, LinkState
from support.timing import UNIT


def path_to(target: LinkState) -> list[LinkEvent]:
    """The shortest list of events that leads from IDLE to ``target`` (breadth first over the table)."""
    paths: dict[LinkState, list[LinkEvent]] = {LinkState.IDLE: []}
    todo = deque([LinkState.IDLE])
    while todo:
        state = todo.popleft()
        for event, after in TRANSITIONS[state].items():
            if after not in paths:
                paths[after] = [*paths[state], event]
                todo.append(after)
    return paths[target]


def machine_in(state: LinkState) -> LinkMachine:
    machine = LinkMachine()
    for event in path_to(state):
        machine.fire(event)
    assert machine.state is state
    return machine


LEGAL = [(state, event) for state, row in TRANSITIONS.items() for event in row]
ILLEGAL = [(state, event) for state in LinkState for event in LinkEvent if event not in TRANSITIONS[state]]


def test_every_state_has_a_row_and_is_reachable() -> None:
    """The table names every state, and each can be reached from IDLE; nothing leads out of ENDED."""
    assert set(TRANSITIONS) == set(LinkState)
    assert all(path_to(state) is not None for state in LinkState)
    assert [state for state, row in TRANSITIONS.items() if set(row.values()) == {state}] == [LinkState.ENDED]


@pytest.mark.parametrize(("state", "event"), LEGAL, ids=[f"{s}-{e}" for s, e in LEGAL])
def test_a_move_in_the_table_goes_where_the_table_says(state: LinkState, event: LinkEvent) -> None:
    machine = machine_in(state)
    assert machine.fire(event) is TRANSITIONS[state][event]
    assert machine.state is TRANSITIONS[state][event]


@pytest.mark.parametrize(("state", "event"), ILLEGAL, ids=[f"{s}-{e}" for s, e in ILLEGAL])
def test_a_move_not_in_the_table_raises_and_changes_nothing(state: LinkState, event: LinkEvent) -> None:
    machine = machine_in(state)
    with pytest.raises(InvalidState, match=f"^cannot {event} in state {state}$") as raised:
        machine.fire(event)
    assert (raised.value.operation, raised.value.state) == (event.value, state.value)
    assert machine.state is state


def test_reconnecting_is_from_the_loss_to_the_next_welcome_or_resumed() -> None:
    """The scripted mode's silence rule asks this; it is read off the state, not kept beside it."""
    assert {LinkState.WAITING, LinkState.CONNECTING, LinkState.RESUMING, LinkState.JOINING} == RECONNECTING


def test_invalid_state_is_a_client_error() -> None:
    """Reported as any client error would be (chat-client: ..., exit 1), never a bare traceback."""
    assert issubclass(InvalidState, ClientError)


# --- the Link's operations before the first welcome ---------------------------------------------

Operation = Callable[[Link], Awaitable[object]]


async def _name(link: Link) -> object:
    return link.name


async def _unsendable(link: Link) -> object:
    return link.unsendable("hi")


OPERATIONS: dict[str, Operation] = {
    "say": lambda link: link.say("hi"),
    "offer": lambda link: link.offer("hi"),
    "who": lambda link: link.who(),
    "leave": lambda link: link.leave(),
    "name": _name,
    "check a line": _unsendable,
}


async def _never(connection: Connection, name: str) -> Incoming:
    raise AssertionError("no rejoin in these tests")


def new_link() -> Link:
    # Port 9 (discard) on loopback: nothing listens, so the first connection fails at once.
    return Link("ws://127.0.0.1:9/ws", "secret", timeout=UNIT, reconnect_for=0.0, rejoin=_never)


async def _awaited(step: Awaitable[object]) -> object:
    return await step


async def _enter(connection: Connection) -> Incoming:
    raise AssertionError("never connected")


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_person_operation_before_running_raises(operation: str) -> None:
    link = new_link()
    with pytest.raises(InvalidState, match=f"^cannot {operation} in state idle$"):
        asyncio.run(_awaited(OPERATIONS[operation](link)))


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_person_operation_while_entering_raises(operation: str) -> None:
    async def attempt() -> None:
        link = new_link()
        async with link.running(_enter):
            assert link.state is LinkState.ENTERING
            await OPERATIONS[operation](link)

    with pytest.raises(InvalidState, match=f"^cannot {operation} in state entering$"):
        asyncio.run(attempt())


@pytest.mark.parametrize("operation", ["wait for the join", "receive"])
def test_waiting_on_a_link_not_running_raises(operation: str) -> None:
    link = new_link()
    waits = {"wait for the join": link.joined, "receive": link.receive}
    with pytest.raises(InvalidState, match=f"^cannot {operation} in state idle$"):
        asyncio.run(waits[operation]())


def test_running_twice_raises() -> None:
    async def twice() -> None:
        link = new_link()
        async with link.running(_enter), link.running(_enter):
            pass

    with pytest.raises(InvalidState, match=r"^cannot start in state entering$"):
        asyncio.run(twice())


def test_a_first_connection_that_fails_ends_the_link_and_nothing_can_be_said() -> None:
    """The first connection's failure is the mode's to report; the link is ENDED, with no room to say anything in."""

    async def fail() -> Link:
        link = new_link()
        async with link.running(_enter):
            with pytest.raises(Unreachable):
                await link.joined()
            assert link.state is LinkState.ENDED
            with pytest.raises(InvalidState, match=r"^cannot offer in state ended$"):
                await link.offer("hi")
        return link

    assert asyncio.run(fail()).state is LinkState.ENDED
