"""Every dashboard page rendered by Streamlit's AppTest against a running analytics API.

Numbers on the pages are checked against the API's own answers (and, for the headline
metrics, against sums computed by hand from the seeded calls).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import get_args

import httpx
import pytest

from dashboards import theme
from tests.analytics.conftest import make_event
from tests.analytics.seed import ADMIN_KEY, FINOPS_KEY, VIEWER_KEY
from tests.dashboards.conftest import PAGES, Api, recent_events, run_page, serve_api, text_of


async def _get(api: Api, key: str, path: str, **params: str) -> httpx.Response:
    """Async, so the API (served in this test's event loop) can answer."""
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        return await client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})


async def _cost(api: Api, key: str, **params: str) -> dict:
    response = await _get(api, key, "/v1/analytics/cost", **params)
    assert response.status_code == 200, response.text
    return response.json()


def _metric(at, label: str) -> str:  # type: ignore[no-untyped-def]
    return next(m.value for m in at.metric if m.label == label)


def _days() -> tuple[str, str, str]:
    today = datetime.now(UTC).date()
    return str(today.replace(day=1)), str(today), str(today + timedelta(days=1))


@pytest.mark.parametrize("page", list(PAGES))
async def test_every_page_renders_without_error(api: Api, point_at, page: str) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, ADMIN_KEY)
    at = await run_page(page)
    assert not at.exception, at.exception
    problems = [e.value for e in at.error if "Budget **" not in e.value]
    assert not problems, problems  # budget alerts are expected: one seeded budget is exceeded
    assert at.title and at.title[0].value


async def test_overview_numbers_equal_the_api(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, FINOPS_KEY)
    at = await run_page("overview")
    assert not at.exception
    month_start, today, tomorrow = _days()
    month = (await _cost(api, FINOPS_KEY, start=month_start, end=tomorrow))["totals"]
    day = (await _cost(api, FINOPS_KEY, start=today, end=tomorrow))["totals"]
    assert _metric(at, "Month to date") == theme.usd(Decimal(month["cost_usd"]))
    assert _metric(at, "Spend today") == theme.usd(Decimal(day["cost_usd"]))
    assert _metric(at, "Calls this month") == f"{month['calls']:,}"
    # and the API agrees with the seeded calls
    start = datetime.fromisoformat(month_start).replace(tzinfo=UTC)
    by_hand = sum(e.cost_usd for e in api.events if e.ts >= start)
    assert Decimal(month["cost_usd"]) == by_hand
    assert _metric(at, "Active alerts") == "1"  # marketing-monthly is exceeded
    assert "marketing-monthly" in "\n".join(e.value for e in at.error)
    blocked = sum(1 for e in api.events if e.ts >= start and e.status == "blocked")
    assert _metric(at, "Blocked") == str(blocked)
    assert _metric(at, "Downgraded") == "0"
    # each budget as a bar of spend against its limit, and the movers as a table
    bars = [bar.proto.text for bar in at.get("progress")]
    assert len(bars) == 2 and "marketing-monthly" in bars[0] and "support-total" in bars[1]
    movers = "\n".join(m.value for m in at.markdown)
    assert "| campaigns |" in movers and "| helpdesk |" in movers


@pytest.fixture
async def spiky_api(store: object) -> AsyncIterator[Api]:
    """The seeded calls, and one more today: $5 on seo, a project that spends cents a day."""
    spike = make_event(ts=datetime.now(UTC).replace(microsecond=0), business_line="marketing",
                       project="seo", key_id="k_seo", cost_usd=Decimal(5))  # fmt: skip
    async for running in serve_api(store, [*recent_events(), spike]):
        yield running


async def test_overview_lists_the_days_a_project_spent_far_above_its_usual(
    spiky_api: Api,
    point_at,  # type: ignore[no-untyped-def]
) -> None:
    point_at(spiky_api.url, FINOPS_KEY)
    at = await run_page("overview")
    assert not at.exception
    tables = [m.value for m in at.markdown if "| how unusual |" in m.value]
    assert len(tables) == 1
    rows = [
        line for line in tables[0].splitlines() if line.startswith(f"| {datetime.now(UTC).date()}")
    ]
    assert len(rows) == 1 and "| seo |" in rows[0] and "$5.0" in rows[0], tables[0]


async def test_overview_lists_the_alerts_of_the_week_to_finops_only(
    store: object,
    api: Api,
    point_at,  # type: ignore[no-untyped-def]
) -> None:
    from ingest.alert_log import write_alerts
    from tollway.budget_events import BudgetAlert

    circuit = BudgetAlert(alert_id="circuit:openai:gpt-4o:x", type="provider.circuit_opened",
                          provider="openai", model="gpt-4o", failures=5)  # fmt: skip
    await write_alerts(store, [circuit, circuit])  # redelivered: one row
    point_at(api.url, FINOPS_KEY)
    at = await run_page("overview")
    assert not at.exception
    [expander] = [e for e in at.expander if e.label.startswith("Alerts of the last 7 days")]
    assert expander.label.endswith("(1)")
    assert "Circuit opened for gpt-4o on openai after 5" in text_of(at)

    point_at(api.url, VIEWER_KEY)  # viewers read their line's spend, not the alerts
    at = await run_page("overview")
    assert not at.exception
    assert not [e for e in at.expander if e.label.startswith("Alerts")]


async def test_explorer_drill_down_changes_the_query(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, ADMIN_KEY)
    at = await run_page("explorer")
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["business_line"]) == {"marketing", "support"}
    assert "group_by=business_line" in text_of(at)

    # a shared link: the view comes from the query string
    at = await run_page("explorer", {"business_line": "marketing", "days": "7"})
    assert not at.exception
    assert "group_by=project" in text_of(at) and "business_line=marketing" in text_of(at)
    assert set(at.dataframe[0].value["project"]) == {"campaigns", "seo"}
    start = str(datetime.now(UTC).date() - timedelta(days=6))
    api_spend = (
        await _cost(api, ADMIN_KEY, start=start, end=_days()[2], business_line="marketing")
    )["totals"]["cost_usd"]
    assert _metric(at, "Spend") == theme.usd(Decimal(api_spend))

    # clicking through: pick a project in the drill selectbox
    at.selectbox(key="drill_project").set_value("seo")
    at = await run_page("explorer", at=at)
    assert not at.exception
    assert at.query_params.get("project") == "seo"
    assert set(at.dataframe[0].value["task_type"]) == {"summarize"}
    assert "project=seo" in text_of(at)

    # the breadcrumb goes back up
    at.button(key="crumb_root").click()
    at = await run_page("explorer", at=at)
    assert "business_line" not in at.query_params
    assert set(at.dataframe[0].value["business_line"]) == {"marketing", "support"}


async def test_explorer_environment_filter(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, ADMIN_KEY)
    at = await run_page("explorer", {"environment": "staging"})
    assert not at.exception
    assert "environment=staging" in text_of(at)
    staging = sum(
        e.cost_usd
        for e in api.events
        if e.environment == "staging" and e.ts.date() >= datetime.now(UTC).date() - timedelta(29)
    )
    assert _metric(at, "Spend") == theme.usd(staging)


async def test_budgets_page_shows_each_budget(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, FINOPS_KEY)
    at = await run_page("budgets")
    assert not at.exception
    body = (await _get(api, FINOPS_KEY, "/v1/analytics/budgets")).json()["budgets"]
    assert len(at.get("progress")) == len(body) == 2
    spends = [m.value for m in at.metric if m.label == "Spend"]
    assert spends == [theme.usd(Decimal(b["spend_usd"])) for b in body]
    text = text_of(at)
    assert "EXCEEDED" in text and "marketing-monthly" in text and "support-total" in text


async def test_calls_page_lists_calls_without_content(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, ADMIN_KEY)
    at = await run_page("calls")
    assert not at.exception
    frame = at.dataframe[1].value  # after the sessions'
    assert set(frame["session_id"]) > {""}
    assert len(frame) == min(200, len(api.events))
    assert not {"request_content", "response_content"} & set(frame.columns)
    assert set(frame["guardrails"]) == {"", "pii"}  # the guardrails that matched each prompt


async def test_routing_page_explains_missing_recommendations(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, ADMIN_KEY)
    at = await run_page("routing")
    assert not at.exception
    assert "No recommendation yet" in text_of(at)
    assert not at.get("popover")  # no configuration to offer
    stats = at.dataframe[0].value
    assert {"gpt-4o", "gpt-4o-mini"} <= set(stats["model"])


@pytest.mark.parametrize("page", ["overview", "explorer", "calls"])
async def test_empty_store_shows_how_to_send_a_call(empty_api: Api, point_at, page: str) -> None:  # type: ignore[no-untyped-def]
    point_at(empty_api.url, ADMIN_KEY)
    at = await run_page(page)
    assert not at.exception
    assert "No calls yet" in text_of(at)
    assert any("curl" in c.value for c in at.code)


@pytest.mark.parametrize("page", list(PAGES))
async def test_api_down_shows_a_friendly_message(point_at, page: str) -> None:  # type: ignore[no-untyped-def]
    from tollway.broker import free_port

    point_at(f"http://127.0.0.1:{free_port()}", ADMIN_KEY)
    at = await run_page(page)
    assert not at.exception
    assert "unreachable" in text_of(at)
    assert "Traceback" not in text_of(at)


async def test_a_viewer_sees_only_its_business_line(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, VIEWER_KEY)
    at = await run_page("overview")
    assert not at.exception
    month_start, _, tomorrow = _days()
    own = (await _cost(api, VIEWER_KEY, start=month_start, end=tomorrow))["totals"]["cost_usd"]
    everyone = (await _cost(api, ADMIN_KEY, start=month_start, end=tomorrow))["totals"]["cost_usd"]
    assert Decimal(own) < Decimal(everyone)
    assert _metric(at, "Month to date") == theme.usd(Decimal(own))
    assert _metric(at, "Downgraded") == "—"  # SQL is for finops/admin

    at = await run_page("explorer")
    assert set(at.dataframe[0].value["business_line"]) == {"marketing"}
    at = await run_page("budgets")
    assert len(at.get("progress")) == 1
    at = await run_page("calls")
    assert not at.exception
    assert "Not available for this key" in text_of(at)


async def test_without_a_key_the_sidebar_asks_to_sign_in(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, None)
    at = await run_page("overview")
    assert not at.exception
    assert "Sign in" in text_of(at)
    at.sidebar.text_input(key="form_api_key").input(FINOPS_KEY)
    at.sidebar.button[0].click()
    at = await run_page("overview", at=at)
    assert not at.exception
    assert at.session_state["api_key"] == FINOPS_KEY
    assert _metric(at, "Month to date").startswith("$")


async def test_explorer_draws_the_treemap_only_when_asked(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, ADMIN_KEY)
    at = await run_page("explorer")
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 1  # the daily series
    assert not at.get("plotly_chart")
    at.toggle(key="treemap").set_value(True)
    at = await run_page("explorer", at=at)
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1  # business line → project
    assert set(at.dataframe[0].value["business_line"]) == {"marketing", "support"}


async def test_routing_lists_recommendations_with_their_configuration(  # type: ignore[no-untyped-def]
    api: Api, point_at, monkeypatch
) -> None:
    from dashboards.client import AnalyticsClient
    from dashboards.models import Recommendation

    snippet = "routes:\n  - {name: chat, strategy: ordered, candidates: [gpt-4o-mini]}"
    found = Recommendation(
        task_type="chat",
        current_model="gpt-4o",
        current_cost_usd=Decimal("12.5"),
        calls=1234,
        candidate_model="gpt-4o-mini",
        candidate_quality=0.91,
        candidate_p95_ms=812.0,
        projected_monthly_savings_usd=Decimal("9.75"),
        yaml_snippet=snippet,
    )
    monkeypatch.setattr(AnalyticsClient, "recommendations", lambda self, days=30: [found])
    point_at(api.url, ADMIN_KEY)
    at = await run_page("routing")
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["task type"]) == ["chat"]
    assert list(table["current → candidate"]) == ["gpt-4o → gpt-4o-mini"]
    assert list(table["saves / month"]) == ["$9.75"]
    assert [c.value for c in at.code] == [snippet]  # in the popover


async def test_audit_page_lists_the_trail_for_admins_only(store, api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    from ingest.audit_sink import write_audit
    from tollway.audit_events import AuditEvent

    changes = [
        AuditEvent(actor="admin", actor_role="admin", action="budget.set", target="seo-cap",
                   details={"budget": {"limit_usd": "50"}}),
        AuditEvent(actor="k_sup", actor_role="developer", action="admin.denied",
                   target="GET /v1/admin/keys"),
        AuditEvent(actor="tollway.yaml", actor_role="system", action="config.reload",
                   target="/etc/tollway.yaml", details={"version": "0123456789ab", "changes": {
                       "routes": {"removed": ["smart"]},
                       "budgets": {"added": ["seo-cap"], "changed": ["total"]},
                       "sections": ["logging"]}}),
    ]  # fmt: skip
    await write_audit(store, [e.encode() for e in changes])
    point_at(api.url, ADMIN_KEY)
    at = await run_page("audit")
    assert not at.exception
    frame = at.dataframe[0].value
    assert sorted(frame["action"]) == ["admin.denied", "budget.set", "config.reload"]
    assert _metric(at, "Refused attempts") == "1"
    assert "limit_usd" in " ".join(frame["details"])
    assert "new: $50 monthly, alert_only, everything" in list(frame["change"])
    reload = "reloaded: routes -smart; budgets +seo-cap ~total; settings: logging"
    assert reload in list(frame["change"])

    point_at(api.url, FINOPS_KEY)  # finops reads spend, not the trail
    at = await run_page("audit")
    assert not at.exception and not at.dataframe
    assert "Not available for this key" in text_of(at)


async def test_keys_page_shows_spend_unused_keys_and_ids_nobody_knows(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, ADMIN_KEY)
    at = await run_page("keys")
    assert not at.exception
    frame = at.dataframe[0].value
    # the seeded calls were made with keys the registry does not know; its own keys spent nothing
    spent = {k: sum(float(e.cost_usd) for e in api.events if e.key_id == k)
             for k in ("k_mkt", "k_seo", "k_sup")}  # fmt: skip
    rows = dict(zip(frame["key"], frame["state"], strict=True))
    assert rows == {
        "k_mkt": "unknown", "k_seo": "unknown", "k_sup": "unknown",
        "k_dev": "active, unused", "k_finops": "active, unused", "k_viewer": "active, unused",
    }  # fmt: skip
    by_key = dict(zip(frame["key"], frame["spend"], strict=True))
    assert by_key["k_mkt"] == pytest.approx(spent["k_mkt"])
    assert list(frame["key"])[:3] == sorted(spent, key=lambda k: -spent[k])  # most spent first
    assert _metric(at, "Active keys") == "3"
    assert _metric(at, "Unused for 30 days") == "3"
    assert "tollway no longer knows them" in text_of(at)

    point_at(api.url, FINOPS_KEY)
    at = await run_page("keys")
    assert not at.exception and not at.dataframe
    assert "Not available for this key" in text_of(at)


def test_the_audit_page_offers_every_action_the_audit_trail_records() -> None:
    from dashboards.models import AUDIT_ACTIONS
    from tollway.audit_events import AuditAction

    assert list(get_args(AuditAction)) == AUDIT_ACTIONS


async def test_calls_page_shows_what_sessions_cost(api: Api, point_at) -> None:  # type: ignore[no-untyped-def]
    point_at(api.url, ADMIN_KEY)
    at = await run_page("calls")
    assert not at.exception
    week = datetime.now(UTC).date() - timedelta(days=6)
    costs: dict[str, Decimal] = {}
    for event in api.events:
        if event.session_id and event.ts.date() >= week:
            costs[event.session_id] = costs.get(event.session_id, Decimal(0)) + event.cost_usd
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sessions"] == f"{len(costs):,}"
    assert metrics["Costliest"] == theme.usd(max(costs.values()))
    frame = at.dataframe[0].value
    costliest = sorted(costs, key=lambda s: (-costs[s], s))[: len(frame)]
    assert list(frame["session"]) == costliest
    assert list(frame["cost_usd"]) == [float(costs[s]) for s in costliest]
