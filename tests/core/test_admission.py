"""Members before strangers (admission.py), the socket guard's counts (guard.py), the descriptor check."""

from __future__ import annotations

import resource

import pytest

from chat_tracker.core.addresses import proxy_list
from chat_tracker.core.admission import Admission, AdmissionRefusal, Budget
from chat_tracker.errors import ConfigError
from chat_tracker.runtime.descriptors import RESERVED, ROOM_LOGS_MOST, check_fits, raise_soft_limit, shared_out
from chat_tracker.service.rooms import LOG_DESCRIPTORS
from chat_tracker.transport.guard import SocketGuard, SocketRefusal, Ticket


def admission(total: int = 4, strangers: int = 3, per_address: int = 2) -> Admission[str]:
    return Admission(Budget(total=total, strangers=strangers, strangers_per_address=per_address))


def test_an_address_gets_its_share_of_strangers_and_no_more() -> None:
    """The third stranger from one address is refused; another address is not affected."""
    slots = admission()
    assert slots.admit("a1", "A").refusal is None
    assert slots.admit("a2", "A").refusal is None
    assert slots.admit("a3", "A").refusal is AdmissionRefusal.ADDRESS
    assert slots.admit("b1", "B").refusal is None


def test_authenticating_frees_the_addresss_stranger_share() -> None:
    """A member does not count as a stranger: its address may open another stranger."""
    slots = admission()
    slots.admit("a1", "A")
    slots.admit("a2", "A")
    slots.authenticated("a1")
    assert slots.admit("a3", "A").refusal is None
    assert slots.strangers_from("A") == 2 and slots.members == {"a1"}


def test_when_full_the_oldest_stranger_of_the_biggest_address_makes_room() -> None:
    """A newcomer from a fresh address takes the place of the flooding address's oldest stranger."""
    slots = admission(total=4, strangers=4, per_address=3)
    for conn in ("a1", "a2", "a3"):
        slots.admit(conn, "A")
    slots.admit("b1", "B")
    verdict = slots.admit("c1", "C")
    assert verdict.refusal is None and verdict.dropped == "a1"
    assert slots.total == 4 and slots.strangers_from("A") == 2


def test_the_stranger_budget_makes_room_before_the_tracker_is_full() -> None:
    """At the overall stranger budget a stranger is dropped though slots are free."""
    slots = admission(total=10, strangers=2, per_address=2)
    slots.admit("a1", "A")
    slots.admit("b1", "B")
    verdict = slots.admit("c1", "C")
    assert verdict.dropped == "a1" and slots.strangers == 2


def test_a_member_is_never_dropped_and_a_tracker_of_members_is_full() -> None:
    """When every slot is a member's the newcomer is refused: nobody is dropped."""
    slots = admission(total=2, strangers=2, per_address=2)
    for conn in ("m1", "m2"):
        slots.admit(conn, "M")
        slots.authenticated(conn)
    verdict = slots.admit("x", "X")
    assert verdict.refusal is AdmissionRefusal.FULL and verdict.dropped is None
    assert slots.members == {"m1", "m2"}


def test_removal_is_idempotent_and_forgets_the_address() -> None:
    """Closing twice, or closing a dropped connection, changes nothing."""
    slots = admission()
    slots.admit("a1", "A")
    slots.remove("a1")
    slots.remove("a1")
    slots.authenticated("a1")
    assert slots.total == 0 and slots.strangers_from("A") == 0 and not slots.members


def _guard(per_address: int = 2, ceiling: int = 10, proxies: str = "") -> SocketGuard:
    return SocketGuard(per_address, ceiling, proxy_list(proxies))


def _ticket(guard: SocketGuard, peer: str, drops: list[str] | None = None) -> Ticket:
    verdict = guard.admit(peer, lambda: (drops if drops is not None else []).append(peer))
    assert isinstance(verdict, Ticket), verdict
    return verdict


def test_guard_caps_sockets_per_address_and_ipv6_by_its_64() -> None:
    """Two sockets per address; a second IPv6 address of the same /64 is the same address."""
    guard = _guard()
    _ticket(guard, "192.0.2.1")
    _ticket(guard, "192.0.2.1")
    assert guard.admit("192.0.2.1", lambda: None) is SocketRefusal.ADDRESS
    _ticket(guard, "2001:db8::1")
    _ticket(guard, "2001:db8::2")
    assert guard.admit("2001:db8::ffff", lambda: None) is SocketRefusal.ADDRESS
    assert guard.refused[SocketRefusal.ADDRESS] == 2 and guard.open == 4


def test_released_sockets_free_their_place() -> None:
    """Release (twice) gives the address its place back."""
    guard = _guard(per_address=1)
    ticket = _ticket(guard, "192.0.2.1")
    ticket.release()
    ticket.release()
    _ticket(guard, "192.0.2.1")
    assert guard.open == 1


def test_at_the_ceiling_the_oldest_socket_still_sending_headers_is_dropped() -> None:
    """A newcomer takes the place of the oldest half-open socket; established ones are kept."""
    guard = _guard(per_address=10, ceiling=3)
    drops: list[str] = []
    established = _ticket(guard, "192.0.2.1", drops)
    established.headers_done()
    _ticket(guard, "192.0.2.2", drops)
    _ticket(guard, "192.0.2.3", drops)
    _ticket(guard, "192.0.2.4", drops)
    assert drops == ["192.0.2.2"] and guard.open == 3 and guard.dropped == 1


def test_at_the_ceiling_with_nothing_half_open_a_newcomer_is_refused() -> None:
    """Nothing to drop: refused at once, nothing counted."""
    guard = _guard(per_address=10, ceiling=1)
    _ticket(guard, "192.0.2.1").headers_done()
    assert guard.admit("192.0.2.2", lambda: None) is SocketRefusal.FULL
    assert guard.open == 1


def test_a_trusted_proxy_is_not_capped_but_the_clients_it_names_are() -> None:
    """The proxy's sockets are counted under the client each request names."""
    guard = _guard(per_address=1, proxies="10.0.0.1")
    first, second, third = (_ticket(guard, "10.0.0.1") for _ in range(3))
    assert first.attribute("203.0.113.1")
    assert not second.attribute("203.0.113.1")
    assert third.attribute("203.0.113.2")
    assert guard.by_key == {"203.0.113.1": 1, "203.0.113.2": 1}
    assert third.attribute("203.0.113.1") is False  # a keep-alive socket re-used for a full address
    first.release()
    assert third.attribute("203.0.113.1")
    assert guard.by_key == {"203.0.113.1": 1}


def test_a_max_connections_that_does_not_fit_is_a_one_line_config_error() -> None:
    """The message says how many descriptors are needed, what the limit is, and what to change."""
    check_fits(1000 - RESERVED, 1000)
    with pytest.raises(ConfigError, match=r"--max-connections 1000 needs 1064 .* allows 1000; lower .* to 936"):
        check_fits(1000, 1000)


def test_descriptors_to_spare_keep_more_rooms_logs_open_and_the_sockets_keep_the_other_half() -> None:
    """Half of what the limit leaves beyond --max-connections and the reserve goes to the rooms' chat.log files."""
    tight = shared_out(1000, 1000 - RESERVED)  # nothing to spare: the rooms' logs keep their share of the reserve
    assert (tight.sockets, tight.room_logs) == (1000 - RESERVED, LOG_DESCRIPTORS)
    roomy = shared_out(1000, 500)  # 436 to spare: 218 more logs open, 218 more sockets than the members'
    assert (roomy.sockets, roomy.room_logs) == (1000 - RESERVED - 218, LOG_DESCRIPTORS + 218)
    assert roomy.sockets - 500 == 218
    plenty = shared_out(1_048_576, 10_000)  # at most ROOM_LOGS_MOST logs, whatever the limit
    assert plenty.room_logs == ROOM_LOGS_MOST
    assert plenty.sockets == 1_048_576 - RESERVED - (ROOM_LOGS_MOST - LOG_DESCRIPTORS)


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one() -> None:
    """raise_soft_limit leaves soft = hard (this process keeps the higher limit; that is harmless)."""
    soft = raise_soft_limit()
    now_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == now_soft and (hard == resource.RLIM_INFINITY or now_soft == hard)


def test_refusals_are_logged_once_a_minute_per_address() -> None:
    """A flood from one address writes one log line a minute, not one per socket; a /64 is one address."""
    guard = _guard()
    assert guard.should_warn("2001:db8::1", 1000.0)
    assert not guard.should_warn("2001:db8::2", 1030.0)
    assert guard.should_warn("192.0.2.1", 1030.0)
    assert guard.should_warn("2001:db8::3", 1060.0)
