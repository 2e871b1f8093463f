"""Calls in flight across replicas: alone, an instance uses the whole limit; with peers that
want slots too, each keeps to its fair share, so slots freed everywhere at once are not taken
twice; a peer that turns nobody away lends what it leaves unused; a silent peer stops counting."""

from __future__ import annotations

from router.calls_in_flight import TTL_S, WAITING_S, CallsInFlight

NOW = 1000.0


def _filled(calls: CallsInFlight, limit: int = 16) -> int:
    """Take slots while admitted; how many this instance then holds."""
    while calls.admits("k", limit, NOW):
        calls.taken("k")
    return calls.own("k")


def _with_peer(count: int, waiting: bool, sent: float = NOW) -> CallsInFlight:
    calls = CallsInFlight(lambda: NOW)
    calls.apply("peer", "k", count, sent, waiting)
    return calls


def test_alone_an_instance_uses_the_whole_limit() -> None:
    assert _filled(CallsInFlight(lambda: NOW)) == 16


def test_instances_that_all_want_slots_keep_to_their_share() -> None:
    # the peer has just freed its slots too and is taking them again: its count is stale at 0
    assert _filled(_with_peer(0, waiting=True)) == 8


def test_a_peer_turning_nobody_away_lends_what_it_leaves_unused() -> None:
    assert _filled(_with_peer(3, waiting=False)) == 13  # 8 + the peer's 5 unused
    assert _filled(_with_peer(3, waiting=True)) == 8  # it wants them back


def test_the_limit_holds_whatever_the_shares() -> None:
    assert _filled(_with_peer(12, waiting=False)) == 4
    assert _filled(_with_peer(16, waiting=True)) == 0


def test_a_silent_peer_no_longer_counts() -> None:
    assert _filled(_with_peer(16, waiting=True, sent=NOW - TTL_S)) == 16


def test_a_refusal_makes_this_instance_waiting_for_a_while() -> None:
    calls = CallsInFlight(lambda: NOW)
    assert not calls.waiting("k", NOW)
    calls.refused("k", NOW)
    assert calls.waiting("k", NOW + WAITING_S / 2)
    assert not calls.waiting("k", NOW + WAITING_S)
