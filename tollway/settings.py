"""Connection settings, read from `TOLLWAY_*` environment variables.

Policy (providers, models, keys, budgets…) lives in `tollway.yaml`; this class holds only
where things are and how to reach them, so the same config file serves the embedded default
and the distributed setup.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLWAY_", extra="ignore")

    config: Path | None = Field(
        default=None, description="Path to tollway.yaml; the built-in demo config when unset."
    )
    config_reload_s: float = Field(
        default=2.0, ge=0, description="How often tollway.yaml is checked for changes (0: never)."
    )
    data_dir: Path = Field(default=Path("tollway-data"), description="Embedded state lives here.")
    host: str = "127.0.0.1"
    port: int = 8080
    dashboard_port: int = 8501

    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port list of a Kafka cluster; unset starts the embedded broker.",
    )
    kafka_broker_port: int | None = Field(
        default=None, description="Loopback port of the embedded broker; a free one when unset."
    )
    kafka_session_timeout_s: float = Field(
        default=10.0,
        description="Consumer-group session timeout. Tansu answers a join after half of it.",
    )
    topic_namespace: str = Field(
        default="", description="Prefix for every topic name (isolates tests and tenants)."
    )

    clickhouse_url: str | None = Field(
        default=None,
        description="http(s)://user:password@host:port of a ClickHouse server; unset uses chDB.",
    )
    clickhouse_database: str = "tollway"

    admin_key: SecretStr | None = Field(
        default=None, description="Bearer key with the admin role for /v1/admin and analytics."
    )

    sink_batch_size: int = 5000
    sink_batch_seconds: float = 0.5
    sink_max_batch: int = Field(
        default=20_000,
        ge=1,
        description="The most call events one ledger write takes: batches gathered while the"
        " store is busy are written together, up to this many.",
    )
    ready_max_lag: int = Field(
        default=50_000,
        ge=0,
        description="A worker is ready while at most this many call events await the ledger.",
    )
    budget_reconcile_seconds: float = Field(
        default=60.0, description="How often budget spend is re-checked against the ledger."
    )
    event_buffer: int = Field(
        default=10_000,
        ge=1,
        description="Call events a proxy holds in memory for Kafka; more go to the on-disk spool.",
    )
    event_spool_after_s: float = Field(
        default=5.0,
        ge=0,
        description="Kafka unreachable this long: a proxy moves waiting call events to disk.",
    )
    routing_stats_interval_s: float = Field(
        default=30.0, gt=0, description="How often routing statistics are recomputed."
    )
    routing_stats_window_s: float = Field(
        default=7 * 86400.0, gt=0, description="How far back routing statistics look."
    )
    anomaly_check_s: float = Field(
        default=300.0,
        ge=0,
        description="How often the last hour is scanned for spend anomalies (0: never).",
    )
    anomaly_zscore: float = Field(
        default=4.0, gt=0, description="Standard deviations above its baseline a spike is."
    )
    anomaly_min_usd: Decimal = Field(
        default=Decimal(1), ge=0, description="An hour of spend below this is never a spike."
    )
    session_check_s: float = Field(
        default=60.0,
        ge=0,
        description="How often the last day's sessions are checked against "
        "sessions.alert_usd (0: never).",
    )

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.host}:{self.dashboard_port}"

    @property
    def event_spool_path(self) -> Path:
        return self.data_dir / "spool"

    @property
    def chdb_path(self) -> Path:
        return self.data_dir / "clickhouse"

    @property
    def embedded_broker(self) -> bool:
        return self.kafka_bootstrap is None
