"""Compose roles into one ASGI app — the single-binary idea of Loki's `-target`.

`build_app` mounts what each requested role serves and starts what it runs, in an order
that makes a graceful stop lose nothing: on shutdown the proxy flushes its events to Kafka
first, then the worker drains the calls topic into the ledger, then the worker and the store
stop. The roles know nothing of each other beyond the topics and the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from tollway import health
from tollway.auth import KeyRegistry
from tollway.budget_overlay import BudgetOverlay
from tollway.config import ConfigError
from tollway.config.schema import KeyConfig, TollwayConfig
from tollway.kafka import ensure_topics
from tollway.reload_audit import audit_rejected, audit_reload
from tollway.settings import Settings
from tollway.topics import Topics

log = logging.getLogger(__name__)

ROLES = ("proxy", "worker", "analytics")


class RoleError(ValueError):
    pass


def parse_roles(text: str) -> frozenset[str]:
    """`all`, one role, or a comma list such as `worker,analytics`."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    if "all" in names:
        return frozenset(ROLES)
    unknown = names - set(ROLES)
    if unknown or not names:
        raise RoleError(f"unknown role(s) {sorted(unknown)}; choose from all, {', '.join(ROLES)}")
    return frozenset(names)


@dataclass
class Runtime:
    """Everything a set of roles needs from outside: settings, policy, engines' addresses."""

    settings: Settings
    config: TollwayConfig  # what the roles run with: the file's, with the API's budgets
    bootstrap: str
    roles: frozenset[str] = frozenset(ROLES)
    extra_keys: list[KeyConfig] = field(default_factory=list)
    admin_key: str | None = None
    store: object | None = None  # an analytics Store to use instead of opening one
    #: embedded default: API keys and budgets survive a broker restart in snapshots here
    snapshot_dir: Path | None = None
    budgets: BudgetOverlay = field(default_factory=BudgetOverlay)
    file_config: TollwayConfig | None = None  # tollway.yaml as loaded; `config` until set

    def snapshot(self, name: str) -> Path | None:
        return self.snapshot_dir / name if self.snapshot_dir is not None else None


def build_app(runtime: Runtime) -> FastAPI:
    from router.app import GatewayApp, install_error_handlers, install_proxy

    roles = runtime.roles
    app = GatewayApp(title="tollway", version="0.1.0", lifespan=_lifespan(runtime))
    app.state.config = runtime.config
    app.state.keys = KeyRegistry([*runtime.config.keys, *runtime.extra_keys], runtime.admin_key)
    install_error_handlers(app)
    app.include_router(health.router)
    if "proxy" in roles:
        from router.admin_budgets_api import router as admin_budgets_router
        from router.admin_keys_api import router as admin_keys_router
        from router.feedback_api import router as feedback_router

        install_proxy(app)
        app.include_router(admin_keys_router)
        app.include_router(admin_budgets_router)
        app.include_router(feedback_router)
    if "analytics" in roles:
        from analytics.api import router as analytics_router

        app.include_router(analytics_router)
    if "worker" in roles:
        from ingest.webhooks.admin_api import router as webhooks_router

        app.state.webhook_dispatcher = None
        app.include_router(webhooks_router)
    return app


def _lifespan(runtime: Runtime):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await _start(app, runtime, stack)
            yield
            log.info("stopping: flushing events and draining the pipeline")

    return lifespan


async def _start(app: FastAPI, runtime: Runtime, stack: AsyncExitStack) -> None:
    settings, roles = runtime.settings, runtime.roles
    topics = Topics(settings.topic_namespace)
    if runtime.bootstrap:  # /readyz's broker check, on one client kept between probes
        app.state.broker_probe = probe = health.BrokerProbe(runtime.bootstrap)
        stack.push_async_callback(probe.close)
    await ensure_topics(runtime.bootstrap, topics.specs())
    reload = _Reloader(app, runtime)

    from tollway.budget_sync import BudgetSync

    # before the roles start, so they start with the budgets set through the API
    budget_sync = BudgetSync(
        runtime.bootstrap,
        topics.budgets,
        runtime.budgets,
        on_change=reload.budgets_changed,
        snapshot=runtime.snapshot("budgets.json"),
    )
    await budget_sync.start()
    stack.push_async_callback(budget_sync.stop)
    app.state.budget_sync = budget_sync
    runtime.file_config = runtime.file_config or runtime.config
    runtime.config = app.state.config = runtime.budgets.merged(runtime.file_config)

    if roles & {"worker", "analytics"}:
        from analytics.migrate import migrate
        from analytics.retention import apply_retention
        from analytics.store import open_store

        store = runtime.store
        if store is None:
            store = open_store(settings)
            stack.push_async_callback(store.close)
        await migrate(store)  # type: ignore[arg-type]
        await apply_retention(store, runtime.config.logging)  # type: ignore[arg-type]
        app.state.store = store

    if "analytics" in roles:
        from analytics.routing_stats import RoutingStatsPublisher

        # entered before the worker and proxy, so it stops after them and before the store
        publisher = RoutingStatsPublisher(
            app.state.store,
            runtime.bootstrap,
            topics.routing_stats,
            window=timedelta(seconds=settings.routing_stats_window_s),
            interval_s=settings.routing_stats_interval_s,
        )
        await stack.enter_async_context(publisher.running())
        app.state.routing_stats = publisher
        if settings.anomaly_check_s > 0:
            from analytics.anomaly_alerts import AnomalyAlerts

            anomalies = AnomalyAlerts(
                app.state.store,
                runtime.bootstrap,
                topics.budget_alerts,
                interval_s=settings.anomaly_check_s,
                zscore=settings.anomaly_zscore,
                min_usd=settings.anomaly_min_usd,
            )
            await stack.enter_async_context(anomalies.running())
            app.state.anomaly_alerts = anomalies
        if settings.session_check_s > 0:
            from analytics.session_alerts import SessionAlerts

            sessions = SessionAlerts(
                app.state.store,
                runtime.bootstrap,
                topics.budget_alerts,
                lambda: runtime.config.sessions.alert_usd,
                interval_s=settings.session_check_s,
            )
            await stack.enter_async_context(sessions.running())
            app.state.session_alerts = sessions

    if "worker" in roles:
        from analytics.ledger import Ledger
        from ingest.worker import LedgerWorker

        worker = LedgerWorker(
            settings, runtime.bootstrap, Ledger(app.state.store), config=runtime.config
        )
        await stack.enter_async_context(worker.running())
        stack.push_async_callback(worker.drain)  # runs after the proxy flushed (LIFO)
        app.state.worker = worker
        app.state.webhook_dispatcher = worker.dispatcher

    if roles & {"proxy", "worker"}:  # the roles that serve admin endpoints
        from tollway.audit import AuditLog
        from tollway.kafka import new_producer

        audit_producer = new_producer(runtime.bootstrap)
        await audit_producer.start()
        stack.push_async_callback(audit_producer.stop)
        app.state.audit = AuditLog(audit_producer, topics.audit)

    if roles & {"proxy", "analytics"}:  # the roles that answer callers' keys
        from tollway.key_sync import KeySync

        key_sync = KeySync(
            runtime.bootstrap, topics.keys, app.state.keys, runtime.snapshot("keys.json")
        )
        await key_sync.start()
        stack.push_async_callback(key_sync.stop)
        app.state.key_sync = key_sync

    if "proxy" in roles:
        from router.events import EventPublisher
        from router.gateway import Gateway
        from tollway.kafka import new_producer

        feedback_producer = new_producer(runtime.bootstrap)
        await feedback_producer.start()
        stack.push_async_callback(feedback_producer.stop)
        app.state.feedback_producer = feedback_producer
        app.state.feedback_topic = topics.feedback

        from router.budget_gate import BudgetGate
        from router.routing_feed import RoutingFeed, RoutingView

        # one instance per gateway process (each `--workers` process too): replicas count
        # each other's reservations and uncounted costs from the holds topic
        budgets = BudgetGate(
            lambda: runtime.config,
            runtime.bootstrap,
            topics.budget_status,
            holds_topic=topics.budget_holds,
        )
        from router.budget_holds import new_instance_id
        from router.proxy_alerts import ProxyAlerts
        from router.rate_limits import RateLimiter
        from router.rate_sharing import RatePublisher

        # per-key rate limits, counted across replicas on the gate's consumer
        rates = RateLimiter(new_instance_id())
        rate_sharing = RatePublisher(runtime.bootstrap, topics.rate_usage, rates)
        budgets.follow_also(topics.rate_usage, rate_sharing.on_record)
        from router.session_sharing import SessionSpendPublisher
        from router.session_spend import SessionSpend

        # what each session has cost, summed across replicas, against sessions.limit_usd and
        # sessions.downgrade_usd
        session_spend = SessionSpend(lambda: runtime.config.sessions, rates.instance_id)
        session_sharing = SessionSpendPublisher(
            runtime.bootstrap, topics.session_spend, session_spend
        )
        budgets.follow_also(topics.session_spend, session_sharing.on_record)
        routing = RoutingView()
        gateway = Gateway(
            runtime.config,
            EventPublisher(
                runtime.bootstrap,
                topics.calls,
                spool_dir=settings.event_spool_path / topics.calls,
                buffer_size=settings.event_buffer,
                spool_after_s=settings.event_spool_after_s,
                topic_specs=topics.specs(),  # re-created if the broker comes back empty
            ),
            budgets=budgets,
            routing=routing,
            rates=rates,
            sessions=session_spend,
            alerts=ProxyAlerts(runtime.bootstrap, topics.budget_alerts),
            sharing=[rate_sharing, session_sharing],
        )
        await gateway.start()
        stack.push_async_callback(gateway.stop)
        feed = RoutingFeed(runtime.bootstrap, topics.routing_stats, routing)
        await feed.start()
        stack.push_async_callback(feed.stop)
        app.state.gateway = gateway

    if settings.config is not None and settings.config_reload_s > 0:
        from tollway.reload import ConfigWatcher

        watcher = ConfigWatcher(
            settings.config,
            reload.file_changed,
            settings.config_reload_s,
            on_rejected=reload.file_rejected,
        )
        watcher.start()
        stack.push_async_callback(watcher.stop)


class _Reloader:
    """What a changed tollway.yaml, or a budget set through the API, updates in each running
    role: both give a new merged config, applied one at a time."""

    def __init__(self, app: FastAPI, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self._lock = asyncio.Lock()

    async def file_changed(self, file_config: TollwayConfig) -> None:
        async with self._lock:
            before = self.runtime.file_config or self.runtime.config
            self.runtime.file_config = file_config
            await self._apply(self.runtime.budgets.merged(file_config))
        path = self.runtime.settings.config
        if path is not None:
            await audit_reload(self.app, path, before, file_config, self.runtime.roles)

    async def file_rejected(self, error: ConfigError) -> None:
        path = self.runtime.settings.config
        if path is not None:
            await audit_rejected(self.app, path, str(error), self.runtime.roles)

    async def budgets_changed(self) -> None:
        async with self._lock:
            file_config = self.runtime.file_config or self.runtime.config
            merged = self.runtime.budgets.merged(file_config)
            if merged.budgets != self.runtime.config.budgets:
                await self._apply(merged)

    async def _apply(self, config: TollwayConfig) -> None:
        app, runtime = self.app, self.runtime
        runtime.config = config
        app.state.config = config
        app.state.keys.replace_file_keys([*config.keys, *runtime.extra_keys])
        if gateway := getattr(app.state, "gateway", None):
            await gateway.reload(config)
        if worker := getattr(app.state, "worker", None):
            await worker.reload(config)
        if store := getattr(app.state, "store", None):
            from analytics.retention import apply_retention

            await apply_retention(store, config.logging)


def describe(roles: Iterable[str]) -> str:
    return "+".join(r for r in ROLES if r in set(roles))
