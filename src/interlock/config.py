"""Settings: defaults, then an optional ``interlock.toml``, then ``INTERLOCK_*``
environment variables, then command-line flags; later ones win."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from interlock.logs import AccessLogMode

ENV_PREFIX = "INTERLOCK_"


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and why."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = "sqlite:///./interlock.db"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    #: The address people and tools use to reach this server (ingest URLs are built on it).
    public_url: str | None = None
    #: Largest request body the API accepts, in bytes.
    max_body_bytes: int = Field(1_048_576, ge=1024)
    #: Threads that run API requests' database work.
    api_threads: int = Field(8, ge=1, le=200)
    #: Largest alert payload a source may send, in bytes (an Alertmanager group of
    #: 10,000 alerts is about 5 MB).
    ingest_max_body_bytes: int = Field(8 * 1_048_576, ge=1024)
    #: SQLite's durability: NORMAL survives a crash of Interlock; FULL also a power cut.
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    #: Upgrade the schema when ``interlock serve`` starts.
    auto_migrate: bool = True
    #: Networks webhook URLs may point into although private or local, comma-separated
    #: CIDRs (e.g. "127.0.0.0/8,10.1.0.0/16"). Empty: only public addresses.
    allowed_targets: str = ""
    #: Run the delivery worker inside ``interlock serve`` (off for scale-out).
    embedded_worker: bool = True
    #: Deliveries claimed per round, in flight per process, in flight per endpoint.
    worker_batch: int = Field(200, ge=1, le=5000)
    worker_max_in_flight: int = Field(1024, ge=1)
    worker_per_endpoint: int = Field(32, ge=1)
    #: Milliseconds the delivery worker lets new deliveries gather before it claims
    #: them (fewer, larger write transactions); 0: at once.
    worker_gather_ms: float = Field(5.0, ge=0, le=1000)
    #: Milliseconds finished attempts wait to be written together (an incident's next
    #: message waits on that write only ``worker_gather_ms``); 0: at once.
    worker_record_ms: float = Field(50.0, ge=0, le=1000)
    #: Received payloads a worker claims and applies in one transaction, at most.
    worker_alert_batch: int = Field(500, ge=1, le=5000)
    #: On SQLite, the milliseconds a processing transaction aims to hold the one write
    #: lock (batches shrink to fit, down to 50 payloads; twice this while the worker is
    #: behind); 0 for no aim.
    worker_alert_transaction_ms: float = Field(50.0, ge=0, le=10_000)
    #: Linux: worker processes run under the SCHED_BATCH policy, so that waking one
    #: (every commit of work does) does not take the CPU from the API request that woke
    #: it; their share of the CPU is unchanged. False: the default policy.
    worker_batch_scheduling: bool = True
    #: ``interlock serve`` kills and restarts a worker process of its own that has not
    #: been heard from for this many seconds: frozen (SIGSTOP, a stopped container) or
    #: its event loop stuck. A frozen worker keeps its locks (on SQLite the alert turn,
    #: and the write lock if it froze in a transaction), so without this nothing would
    #: process alerts until someone restarted it. 0: never.
    worker_watchdog_seconds: float = Field(60.0, ge=0, le=86_400)
    #: Alerts joining an incident within this many seconds of its last
    #: incident.alert_attached are told together in the next one (an alert raising the
    #: incident's severity is told at once); 0 tells every processed batch at once.
    alert_digest_seconds: float = Field(10.0, ge=0, le=3600)
    #: How long a claimed delivery stays leased to its worker; a worker that dies
    #: mid-delivery has its deliveries sent again after this.
    worker_lease_seconds: float = Field(120.0, ge=1)
    #: Longest wait between looks at the queue when nothing woke the worker.
    worker_poll_seconds: float = Field(1.0, gt=0, le=60)
    #: Encrypts connector credentials at rest (and signs console sessions). Any long
    #: random string; every process of one deployment needs the same one. Unset: a key
    #: is generated once into ``secret_key_file``.
    secret_key: str | None = None
    secret_key_file: str = "./interlock.key"
    #: How often each connector link is pulled from its tool to heal missed webhooks.
    reconcile_seconds: float = Field(300.0, ge=5)
    #: Seconds a connector call may take before it counts as failed.
    connector_timeout: float = Field(10.0, gt=0, le=120)
    #: Outbound mail (status page subscribers). No host: mail waits in its queue, unsent,
    #: until one is configured. The password is a SecretStr: it never reaches a log.
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    #: The From address of every mail, e.g. "Status <status@example.com>".
    smtp_from: str | None = None
    #: Upgrade the connection with STARTTLS before authenticating (port 587). Off only
    #: for a relay on the same machine or network.
    smtp_starttls: bool = True
    #: Seconds one SMTP conversation may take before it counts as failed.
    smtp_timeout: float = Field(10.0, gt=0, le=120)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    #: Which HTTP requests get a line in the log: "errors" (answered 4xx or 5xx), "all",
    #: or "off". Every request is counted in /metrics either way.
    access_log: AccessLogMode = "errors"

    @field_validator("allowed_targets")
    @classmethod
    def _networks(cls, value: str) -> str:
        from interlock.domain.targets import parse_allowed_networks

        parse_allowed_networks(value)
        return value

    @model_validator(mode="after")
    def _mail_sender(self) -> Settings:
        if self.smtp_host and not self.smtp_from:
            raise ValueError("smtp_from is required when smtp_host is set (the From address)")
        if self.smtp_password is not None and not self.smtp_username:
            raise ValueError("smtp_password is set but smtp_username is not")
        return self

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def load(overrides: dict[str, Any] | None = None, *, environ: dict[str, str] | None = None
         ) -> Settings:
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    config_path = Path(environ.get(ENV_PREFIX + "CONFIG", "interlock.toml"))
    if config_path.is_file():
        try:
            values.update(tomllib.loads(config_path.read_text()))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{config_path}: {error}") from error
    fields = Settings.model_fields
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX):].lower()
            if key in fields:
                values[key] = value
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return Settings(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from error
