"""Configuration: flags, else environment, else defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite://lockbox.db"
    broker_url: str = "memory://"
    host: str = "127.0.0.1"
    port: int = 8000
    # How often each process records due expiries/completions.
    sweep_interval_seconds: float = 1.0
    # How often each process looks for revoked tokens and disabled principals.
    lockout_poll_seconds: float = 1.0
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_connect_timeout_seconds: int = 5
    graphiql: bool = True
    # Calls per second per principal (0 turns the limit off), and the burst.
    rate_limit_per_second: float = 100.0
    rate_limit_burst: int = 200
    # Notifications (contract section 6). No SMTP URL: no mail is sent.
    smtp_url: str | None = None
    smtp_ca_file: str | None = None  # extra CA certificates to trust for STARTTLS / smtps
    mail_from: str = "lockbox@localhost"
    public_url: str | None = None  # the base of every link; default http://<host>:<port>
    webhook_allow_private: bool = False
    # How often each process looks for due deliveries (it is also woken by
    # every change that writes one), and how long a claim on one lasts.
    outbox_poll_seconds: float = 1.0
    outbox_lease_seconds: float = 60.0
    # Limits at the edge (contract section 10); 0 turns a counted limit off.
    max_body_bytes: int = 1024 * 1024
    ws_init_timeout_seconds: float = 10.0
    ws_max_frame_bytes: int = 64 * 1024
    max_pending_per_engineer: int = 50
    max_query_cost: int = 20_000
    # Sockets and clients (contract section 10, api.sockets, api.client_address).
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    ws_max_subscriptions: int = 100
    max_sockets_per_principal: int = 200
    max_sockets_per_address: int = 500
    auth_failures_per_minute: int = 20
    trusted_proxies: tuple[str, ...] = ()
    # LOCKBOX_AUDIT_KEY: a secret kept outside the database; with it every audit
    # chain link is HMAC-SHA256 under it (contract section 10).
    audit_key: str | None = field(default=None, repr=False)
    # Stock clients (contract section 11): the origins allowed to call across
    # origins (none: same origin only), and the automatic persisted queries'
    # cache (documents kept, in each process and in Redis, and their TTL there).
    cors_origins: tuple[str, ...] = ()
    persisted_queries_max: int = 1000
    persisted_queries_ttl_seconds: int = 24 * 3600
    # LOCKBOX_SIGNING_KEY: the path of an Ed25519 private key (PEM) that signs
    # every decision (contract section 9); unset: decisions are unsigned.
    signing_key: str | None = None
    # LOCKBOX_PROVIDER_APPROVAL: a support manager approves each request
    # before the customer sees it (contract section 8).
    provider_approval: bool = False
    # LOCKBOX_METRICS: serve Prometheus metrics at /metrics (lockbox.observability).
    metrics: bool = False

    @property
    def audit_key_bytes(self) -> bytes | None:
        return None if self.audit_key is None else self.audit_key.encode()

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("LOCKBOX_DATABASE_URL") or cls.database_url,
            broker_url=env.get("LOCKBOX_BROKER_URL") or cls.broker_url,
            host=env.get("LOCKBOX_HOST") or cls.host,
            port=_env_int("LOCKBOX_PORT", cls.port),
            sweep_interval_seconds=_env_float(
                "LOCKBOX_SWEEP_INTERVAL_SECONDS", cls.sweep_interval_seconds
            ),
            lockout_poll_seconds=_env_float(
                "LOCKBOX_LOCKOUT_POLL_SECONDS", cls.lockout_poll_seconds
            ),
            db_pool_min=_env_int("LOCKBOX_DB_POOL_MIN", cls.db_pool_min),
            db_pool_max=_env_int("LOCKBOX_DB_POOL_MAX", cls.db_pool_max),
            db_connect_timeout_seconds=_env_int(
                "LOCKBOX_DB_CONNECT_TIMEOUT_SECONDS", cls.db_connect_timeout_seconds
            ),
            graphiql=_env_flag("LOCKBOX_GRAPHIQL", True),
            rate_limit_per_second=_env_float(
                "LOCKBOX_RATE_LIMIT_PER_SECOND", cls.rate_limit_per_second
            ),
            rate_limit_burst=_env_int("LOCKBOX_RATE_LIMIT_BURST", cls.rate_limit_burst),
            smtp_url=env.get("LOCKBOX_SMTP_URL") or None,
            smtp_ca_file=env.get("LOCKBOX_SMTP_CA_FILE") or None,
            mail_from=env.get("LOCKBOX_MAIL_FROM") or cls.mail_from,
            public_url=env.get("LOCKBOX_PUBLIC_URL") or None,
            webhook_allow_private=_env_flag("LOCKBOX_WEBHOOK_ALLOW_PRIVATE", False),
            outbox_poll_seconds=_env_float("LOCKBOX_OUTBOX_POLL_SECONDS", cls.outbox_poll_seconds),
            outbox_lease_seconds=_env_float(
                "LOCKBOX_OUTBOX_LEASE_SECONDS", cls.outbox_lease_seconds
            ),
            max_body_bytes=_env_int("LOCKBOX_MAX_BODY_BYTES", cls.max_body_bytes),
            ws_init_timeout_seconds=_env_float(
                "LOCKBOX_WS_INIT_TIMEOUT_SECONDS", cls.ws_init_timeout_seconds
            ),
            ws_max_frame_bytes=_env_int("LOCKBOX_WS_MAX_FRAME_BYTES", cls.ws_max_frame_bytes),
            max_pending_per_engineer=_env_int(
                "LOCKBOX_MAX_PENDING_PER_ENGINEER", cls.max_pending_per_engineer
            ),
            max_query_cost=_env_int("LOCKBOX_MAX_QUERY_COST", cls.max_query_cost),
            header_timeout_seconds=_env_float(
                "LOCKBOX_HEADER_TIMEOUT_SECONDS", cls.header_timeout_seconds
            ),
            body_timeout_seconds=_env_float(
                "LOCKBOX_BODY_TIMEOUT_SECONDS", cls.body_timeout_seconds
            ),
            ws_max_subscriptions=_env_int("LOCKBOX_WS_MAX_SUBSCRIPTIONS", cls.ws_max_subscriptions),
            max_sockets_per_principal=_env_int(
                "LOCKBOX_MAX_SOCKETS_PER_PRINCIPAL", cls.max_sockets_per_principal
            ),
            max_sockets_per_address=_env_int(
                "LOCKBOX_MAX_SOCKETS_PER_ADDRESS", cls.max_sockets_per_address
            ),
            auth_failures_per_minute=_env_int(
                "LOCKBOX_AUTH_FAILURES_PER_MINUTE", cls.auth_failures_per_minute
            ),
            trusted_proxies=tuple(
                part.strip()
                for part in env.get("LOCKBOX_TRUSTED_PROXIES", "").split(",")
                if part.strip()
            ),
            audit_key=env.get("LOCKBOX_AUDIT_KEY") or None,
            cors_origins=tuple(
                part.strip()
                for part in env.get("LOCKBOX_CORS_ORIGINS", "").split(",")
                if part.strip()
            ),
            persisted_queries_max=_env_int(
                "LOCKBOX_PERSISTED_QUERIES_MAX", cls.persisted_queries_max
            ),
            persisted_queries_ttl_seconds=_env_int(
                "LOCKBOX_PERSISTED_QUERIES_TTL_SECONDS", cls.persisted_queries_ttl_seconds
            ),
            signing_key=env.get("LOCKBOX_SIGNING_KEY") or None,
            provider_approval=_env_flag("LOCKBOX_PROVIDER_APPROVAL", False),
            metrics=_env_flag("LOCKBOX_METRICS", False),
        )

    @property
    def link_base(self) -> str:
        """Where links in mails point: LOCKBOX_PUBLIC_URL, else this server."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def with_overrides(self, **values: Any) -> Settings:
        return replace(self, **{k: v for k, v in values.items() if v is not None})
