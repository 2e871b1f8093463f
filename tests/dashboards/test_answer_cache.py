"""The dashboard's answer cache (`dashboards.client.AnswerCache`) and its keep-warm refresh, and
the options `dashboards.launch` starts Streamlit with. No Streamlit, no API: a fake clock and a
fake fetch that counts its requests."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dashboards import launch
from dashboards.client import (
    KEEP_WARM_ENV,
    LONGER_TTL_S,
    AnswerCache,
    ApiUnreachable,
    Request,
)


def _request(path: str = "/v1/analytics/cost") -> Request:
    return ("http://api", "key", "GET", path, (), None)


class Api:
    """Answers `{"n": how many requests so far}`; fails while `down`."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.down = False

    def __call__(self, base: str, key: str, method: str, path: str, *_: Any) -> Any:
        if self.down:
            raise ApiUnreachable(base, "down")
        self.requests.append(path)
        return {"n": len(self.requests)}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cache(keep_warm_s: float = 0.0) -> tuple[AnswerCache, Api, Clock]:
    api, clock = Api(), Clock()
    cache = AnswerCache(ttl_s=15, keep_warm_s=keep_warm_s, lead_s=5, fetch=api, clock=clock)
    cache._warmer = object()  # type: ignore[assignment]  # no thread: tests call refresh_due
    return cache, api, clock


def test_an_answer_is_reused_for_the_ttl_then_fetched_again() -> None:
    cache, _api, clock = _cache()
    assert cache.get(_request()) == {"n": 1}
    clock.now += 14.9
    assert cache.get(_request()) == {"n": 1}
    assert cache.get(_request("/v1/analytics/budgets")) == {"n": 2}  # each request apart
    clock.now += 0.2
    assert cache.get(_request()) == {"n": 3}


def test_errors_are_never_kept() -> None:
    cache, api, _ = _cache()
    api.down = True
    with pytest.raises(ApiUnreachable):
        cache.get(_request())
    api.down = False
    assert cache.get(_request()) == {"n": 1}


def test_clear_forgets_every_answer() -> None:
    cache, _api, _ = _cache()
    cache.get(_request())
    cache.clear()
    assert cache.get(_request()) == {"n": 2}


def test_the_warmer_refreshes_recently_used_answers_before_they_expire() -> None:
    cache, api, clock = _cache(keep_warm_s=60)
    cache.get(_request())
    clock.now += 9
    assert cache.refresh_due() == 0  # 6 s left: not due yet
    clock.now += 1
    assert cache.refresh_due() == 1  # 5 s left
    assert api.requests == ["/v1/analytics/cost"] * 2
    clock.now += 10  # 20 s after the visit, 10 s after the refresh: still fresh
    assert cache.get(_request()) == {"n": 2}
    assert len(api.requests) == 2


def test_the_warmer_lets_unused_answers_expire() -> None:
    cache, api, clock = _cache(keep_warm_s=60)
    cache.get(_request())
    for _ in range(12):  # a minute of refreshes without a visit
        clock.now += 5
        cache.refresh_due()
    refreshed = len(api.requests)
    assert refreshed > 1
    for _ in range(6):
        clock.now += 5
        cache.refresh_due()
    assert len(api.requests) == refreshed  # unused for a minute: no more refreshes
    clock.now += 15
    cache.get(_request())  # expired: the visit fetches it
    assert len(api.requests) == refreshed + 1


def test_off_means_no_refresh() -> None:
    cache, api, clock = _cache(keep_warm_s=0)
    cache.get(_request())
    clock.now += 12
    assert cache.refresh_due() == 0
    assert len(api.requests) == 1


def test_a_failed_refresh_drops_the_answer_so_the_page_shows_the_error() -> None:
    cache, api, clock = _cache(keep_warm_s=60)
    cache.get(_request())
    clock.now += 11
    api.down = True
    cache.refresh_due()
    with pytest.raises(ApiUnreachable):
        cache.get(_request())


def test_a_refresh_does_not_bring_back_what_clear_forgot() -> None:
    cache, api, clock = _cache(keep_warm_s=60)
    cache.get(_request())
    clock.now += 11

    def clear_while_fetching(*args: Any) -> Any:
        cache.clear()
        return api(*args)

    cache._fetch = clear_while_fetching
    cache.refresh_due()
    cache._fetch = api
    assert cache.get(_request()) == {"n": 3}  # fetched again, not the refresh's answer


def test_the_least_recently_used_answer_goes_first() -> None:
    api, clock = Api(), Clock()
    cache = AnswerCache(ttl_s=15, max_entries=2, fetch=api, clock=clock)
    cache.get(_request("/a"))
    clock.now += 1
    cache.get(_request("/b"))
    clock.now += 1
    cache.get(_request("/a"))  # /b is now the least recently used
    clock.now += 1
    cache.get(_request("/c"))
    assert cache.get(_request("/a")) == {"n": 1}
    assert cache.get(_request("/b")) == {"n": 4}


def test_routing_answers_are_kept_a_minute_and_refreshed_as_rarely() -> None:
    api, clock = Api(), Clock()
    cache = AnswerCache(
        ttl_s=15, keep_warm_s=300, lead_s=5, fetch=api, clock=clock, longer_ttl_s=LONGER_TTL_S
    )
    cache._warmer = object()  # type: ignore[assignment]
    stats, cost = _request("/v1/analytics/routing/stats"), _request()
    assert cache.ttl(stats) == 60 and cache.ttl(cost) == 15
    cache.get(stats)
    cache.get(cost)
    clock.now += 30
    assert cache.refresh_due() == 1  # the cost answer only
    assert cache.get(stats) == {"n": 1}  # still fresh after 30 s
    clock.now += 25
    assert cache.refresh_due() == 2  # 55 s: its turn (and the cost answer's again)
    assert api.requests.count("/v1/analytics/routing/stats") == 2


def test_the_warmer_thread_runs_in_the_background() -> None:
    api = Api()
    cache = AnswerCache(ttl_s=1.0, keep_warm_s=30, lead_s=0.6, fetch=api)
    cache.get(_request())
    deadline = time.monotonic() + 5
    while len(api.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(api.requests) >= 3  # refreshed twice without a visit
    assert cache.get(_request())["n"] >= 3


def test_launch_keeps_answers_warm_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEEP_WARM_ENV, raising=False)
    assert launch.environment("http://api", "k")[KEEP_WARM_ENV] == str(launch.KEEP_WARM_S)
    assert launch.environment("http://api", "k", keep_warm_s=0)[KEEP_WARM_ENV] == "0"
    monkeypatch.setenv(KEEP_WARM_ENV, "30")
    assert launch.environment("http://api", "k")[KEEP_WARM_ENV] == "30"


def test_launch_serves_streamlit_without_development_machinery() -> None:
    command = launch.command(8501)
    options = dict(zip(command[7::2], command[8::2], strict=True))
    assert options["--server.fileWatcherType"] == "none"
    assert options["--runner.magicEnabled"] == "false"
    assert options["--browser.gatherUsageStats"] == "false"
    assert command[4] == str(launch.APP)
