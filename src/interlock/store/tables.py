"""The schema. Alembic migrations under migrations/ must produce exactly this; a test
compares the two on both databases."""

from __future__ import annotations

import sqlalchemy as sa

from interlock.store.types import BigSerial, Json, UtcDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

incidents = sa.Table(
    "incidents",
    metadata,
    # ``number`` gives the human reference INC-<number> and the keyset for pagination.
    sa.Column("number", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("service", sa.String(200)),
    sa.Column("assignee", sa.String(200)),
    sa.Column("labels", Json, nullable=False),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("acknowledged_at", UtcDateTime),
    sa.Column("resolved_at", UtcDateTime),
    sa.Index(None, "status", "number"),
    sa.Index(None, "service", "number"),
    sa.Index(None, "created_at"),
)

timeline_entries = sa.Table(
    "timeline_entries",
    metadata,
    sa.Column("position", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("incident_id", sa.String(40), sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("origin", Json, nullable=False),
    sa.Column("incident_version", sa.Integer, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("changes", Json, nullable=False),
    sa.Column("body", sa.Text),
    sa.Index(None, "incident_id", "position"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("sequence", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("origin", Json, nullable=False),
    sa.Column("incident_id", sa.String(40)),
    sa.Column("incident_version", sa.Integer),
    sa.Column("data", Json, nullable=False),
    #: Set once the event has been fanned out to endpoints (the outbox flag).
    sa.Column("dispatched_at", UtcDateTime),
    sa.Index(None, "incident_id", "sequence"),
    sa.Index(
        "ix_events_undispatched", "sequence",
        sqlite_where=sa.text("dispatched_at IS NULL"),
        postgresql_where=sa.text("dispatched_at IS NULL"),
    ),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("scopes", Json, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("owner", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("body", Json, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index(None, "created_at"),
)

flags = sa.Table(
    "flags",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("event_types", Json, nullable=False),
    sa.Column("filter", Json, nullable=False),
    sa.Column("headers", Json, nullable=False),
    sa.Column("template", sa.Text),
    sa.Column("timeout", sa.Float, nullable=False),
    sa.Column("rate_limit", sa.Float),
    sa.Column("secrets", Json, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("disabled_at", UtcDateTime),
    sa.Column("failing_since", UtcDateTime),
    sa.Column("last_success_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("position", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("event_sequence", sa.BigInteger, nullable=False),
    sa.Column("endpoint_id", sa.String(40),
              sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("incident_id", sa.String(40)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires_at", UtcDateTime),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_failure", sa.String(32)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("event_id", "endpoint_id"),
    # Claiming: due pending rows in the order they are claimed, so LIMIT stops early.
    sa.Index(
        "ix_deliveries_due", "next_attempt_at", "event_sequence",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
    # Per-incident order: is there an older pending delivery to this endpoint?
    sa.Index(None, "endpoint_id", "incident_id", "status", "event_sequence"),
    sa.Index(None, "endpoint_id", "status", "created_at"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("position", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("delivery_id", sa.String(40),
              sa.ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("endpoint_id", sa.String(40),
              sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("response_body", sa.Text, nullable=False),
    sa.Column("failure", sa.String(32)),
    sa.Column("detail", sa.Text),
    sa.Column("next_attempt_at", UtcDateTime),
    sa.Index(None, "endpoint_id", "position"),
    sa.Index(None, "delivery_id", "position"),
)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("token_digest", sa.String(64), nullable=False, unique=True),
    sa.Column("signing_secret", sa.Text),
    sa.Column("timestamp_header", sa.String(100)),
    sa.Column("options", Json, nullable=False),
    sa.Column("grouping", sa.String(200), nullable=False),
    sa.Column("auto_resolve", sa.Boolean, nullable=False),
    sa.Column("reopen_window_seconds", sa.Float, nullable=False),
    sa.Column("rate_limit", sa.Float),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

payloads = sa.Table(
    "payloads",
    metadata,
    sa.Column("position", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("source_id", sa.String(40),
              sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("content_type", sa.String(200), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("alerts", sa.Integer, nullable=False),
    sa.Column("dropped", sa.Integer, nullable=False),
    sa.Column("suppressed", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("processed_at", UtcDateTime),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires_at", UtcDateTime),
    sa.Index(None, "source_id", "position"),
    # The ingest queue: only pending payloads, in arrival order.
    sa.Index(
        "ix_payloads_pending", "position",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
    # And each source's (store.claiming, PostgreSQL). Without it, the claim of one
    # source's oldest pending payloads took 1.6-2.9 ms in two storms of five where it
    # took 0.15 in the others (a plan that walked more than the source's pending
    # payloads); with it 0.13-0.15 ms in four of four (pg_stat_statements, bench/storm.py).
    sa.Index(
        "ix_payloads_pending_by_source", "source_id", "position",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
    # PostgreSQL: pages filled half at insert, so a claim's new row version (the lease
    # columns, indexed nowhere) fits on the row's own page, a HOT update that adds no
    # index entries. Full pages made 3,632 of 15,000 claims HOT in a storm (see
    # migration 0014).
    postgresql_with={"fillfactor": 50},
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("position", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("source_id", sa.String(40),
              sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    sa.Column("fingerprint", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("service", sa.String(200)),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("labels", Json, nullable=False),
    sa.Column("annotations", Json, nullable=False),
    sa.Column("url", sa.Text),
    sa.Column("starts_at", UtcDateTime),
    sa.Column("ends_at", UtcDateTime),
    sa.Column("first_seen_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("incident_id", sa.String(40)),
    sa.Column("group_key", sa.String(400)),
    sa.Column("suppressed_by", sa.String(40)),
    sa.Column("payload_position", sa.BigInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("source_id", "fingerprint"),
    sa.Index(None, "incident_id", "status"),
)

correlations = sa.Table(
    "correlations",
    metadata,
    sa.Column("source_id", sa.String(40),
              sa.ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("group_key", sa.String(400), primary_key=True),
    sa.Column("incident_id", sa.String(40), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

#: Per incident, what it was last told of its alerts and what waits to be told
#: (domain/digests.py): one incident.alert_attached per incident per window in a storm.
alert_digests = sa.Table(
    "alert_digests",
    metadata,
    sa.Column("incident_id", sa.String(40), primary_key=True),
    sa.Column("last_event_at", UtcDateTime, nullable=False),
    sa.Column("waiting", sa.Integer, nullable=False),
    sa.Column("alert_ids", Json, nullable=False),
    sa.Column("source_id", sa.String(40)),
    sa.Column("due_at", UtcDateTime, index=True),
)

maintenance_windows = sa.Table(
    "maintenance_windows",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("starts_at", UtcDateTime, nullable=False),
    sa.Column("ends_at", UtcDateTime, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("matchers", Json, nullable=False),
    sa.Column("source_id", sa.String(40)),
    sa.Column("dropped", sa.Integer, nullable=False),
    sa.Column("suppressed", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index(None, "ends_at"),
)

connectors = sa.Table(
    "connectors",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("settings", Json, nullable=False),
    #: Encrypted (ports.connector.SecretBox): the key never reaches the database.
    sa.Column("credentials", sa.Text, nullable=False),
    sa.Column("mapping", Json, nullable=False),
    sa.Column("filter", Json),
    sa.Column("state", Json, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("last_success_at", UtcDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("last_error_at", UtcDateTime),
    sa.Column("failing_since", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

incident_links = sa.Table(
    "incident_links",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("connector_id", sa.String(40),
              sa.ForeignKey("connectors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("incident_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("external_id", sa.String(400), nullable=False),
    sa.Column("url", sa.Text),
    sa.Column("state", Json, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("reconciled_at", UtcDateTime),
    sa.UniqueConstraint("connector_id", "incident_id"),
    sa.Index(None, "connector_id", "external_id"),
    sa.Index(None, "incident_id"),
)

sync_jobs = sa.Table(
    "sync_jobs",
    metadata,
    sa.Column("position", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("connector_id", sa.String(40),
              sa.ForeignKey("connectors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("incident_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("event_id", sa.String(40)),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires_at", UtcDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(
        "ix_sync_jobs_due", "next_attempt_at", "position",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
    # Per-incident order: one job of an incident per connector runs at a time.
    sa.Index(None, "connector_id", "incident_id", "status", "position"),
    # Whether a connector has a job due (store.connectors._ANY_DUE).
    sa.Index(
        "ix_sync_jobs_connector_due", "connector_id", "next_attempt_at",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
    # The jobs leased now, by connector: whether another worker runs a paced
    # connector's lane (store.connectors.SqlSyncJobs.held_elsewhere).
    sa.Index(
        "ix_sync_jobs_leased", "connector_id", "lease_expires_at",
        sqlite_where=sa.text("status = 'pending' AND lease_expires_at IS NOT NULL"),
        postgresql_where=sa.text("status = 'pending' AND lease_expires_at IS NOT NULL"),
    ),
)

connector_activity = sa.Table(
    "connector_activity",
    metadata,
    sa.Column("position", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("connector_id", sa.String(40),
              sa.ForeignKey("connectors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("incident_id", sa.String(40)),
    sa.Column("job_id", sa.String(40)),
    sa.Column("attempt", sa.Integer),
    sa.Column("calls", Json, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("next_attempt_at", UtcDateTime),
    sa.Index(None, "connector_id", "position"),
)

#: Inbound tool deliveries already seen, by the tool's delivery id: duplicates are
#: answered but not applied twice.
hook_receipts = sa.Table(
    "hook_receipts",
    metadata,
    sa.Column("connector_id", sa.String(40),
              sa.ForeignKey("connectors.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("delivery_id", sa.String(200), primary_key=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Index(None, "received_at"),
)

#: One row per running worker process: what it runs and how each part is doing, written
#: every few seconds, so ``/readyz`` of any API process can tell a worker that is stuck.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("beat_at", UtcDateTime, nullable=False),
    sa.Column("tasks", Json, nullable=False),
    sa.Index(None, "beat_at"),
)

# -- status pages (migration 0008) ---------------------------------------------------------

status_pages = sa.Table(
    "status_pages",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("logo_url", sa.Text),
    sa.Column("link_url", sa.Text),
    sa.Column("visibility", sa.String(16), nullable=False),
    #: Goes up on every change to what the page shows; caches key on it.
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

status_components = sa.Table(
    "status_components",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("page_id", sa.String(40), sa.ForeignKey("status_pages.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("group_name", sa.String(200)),
    sa.Column("description", sa.Text),
    sa.Column("services", Json, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(None, "page_id", "position"),
)

component_status_changes = sa.Table(
    "component_status_changes",
    metadata,
    sa.Column("position", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("component_id", sa.String(40),
              sa.ForeignKey("status_components.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Index(None, "component_id", "at"),
)

public_updates = sa.Table(
    "public_updates",
    metadata,
    sa.Column("position", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("incident_id", sa.String(40), sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("components", Json, nullable=False),
    sa.Column("page_ids", Json, nullable=False),
    sa.Column("estimated_resolution_at", UtcDateTime),
    sa.Column("published_at", UtcDateTime, nullable=False),
    sa.Column("author", sa.String(200)),
    sa.Index(None, "incident_id", "position"),
)

#: An incident as one page shows it: the state its latest public update left.
public_incidents = sa.Table(
    "public_incidents",
    metadata,
    sa.Column("page_id", sa.String(40), sa.ForeignKey("status_pages.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("incident_id", sa.String(40), sa.ForeignKey("incidents.id"), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("impact", sa.String(16), nullable=False),
    sa.Column("components", Json, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("monitoring_at", UtcDateTime),
    sa.Column("estimated_resolution_at", UtcDateTime),
    sa.Index(None, "page_id", "updated_at"),
    sa.Index(None, "incident_id"),
)

#: Outgoing mail (status page subscribers), sent and retried by the worker: a message
#: is written in the transaction that decides it and is never lost to a mail server
#: that is down (domain.mail).
outgoing_mail = sa.Table(
    "outgoing_mail",
    metadata,
    sa.Column("position", BigSerial, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("headers", Json, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subscriber_id", sa.String(40)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires_at", UtcDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("sent_at", UtcDateTime),
    sa.Index(
        "ix_outgoing_mail_due", "next_attempt_at", "position",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
    sa.Index(None, "subscriber_id", "position"),
)

#: Who hears of a status page's public updates: confirmed email addresses (double
#: opt-in) and webhook URLs, each delivered through its own endpoint (domain.subscribers).
status_subscribers = sa.Table(
    "status_subscribers",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("page_id", sa.String(40), sa.ForeignKey("status_pages.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("endpoint_id", sa.String(40), sa.ForeignKey("endpoints.id", ondelete="CASCADE")),
    sa.Column("url", sa.String(2048)),
    #: Component ids followed; [] for the whole page.
    sa.Column("components", Json, nullable=False),
    sa.Column("nonce", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("requested_at", UtcDateTime),
    sa.Column("confirmed_at", UtcDateTime),
    sa.Column("unsubscribed_at", UtcDateTime),
    sa.UniqueConstraint("page_id", "email"),
    sa.Index(None, "page_id", "status"),
)

#: Planned maintenance announced on a status page (domain.status_maintenance); not the
#: alert-silencing ``maintenance_windows``, which are never published.
status_maintenances = sa.Table(
    "status_maintenances",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("page_id", sa.String(40), sa.ForeignKey("status_pages.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("title", sa.String(255), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    #: Component ids of the page, in the order given.
    sa.Column("components", Json, nullable=False),
    sa.Column("scheduled_for", UtcDateTime, nullable=False),
    sa.Column("scheduled_until", UtcDateTime, nullable=False),
    sa.Column("cancelled_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(None, "page_id", "scheduled_for"),
)


def is_pending(table: sa.Table) -> sa.ColumnElement[bool]:
    """``status = 'pending'`` with the word written into the SQL, as the queues' partial
    indexes are defined: a bound value matches none of them. SQLite's planner cannot use
    a partial index for ``status = ?``; nor can PostgreSQL's generic plan, which it
    settles on for a statement the driver has prepared (psycopg, after five runs). The
    payloads' claim then walked every payload of a source ever processed, in order: 6 ms
    for 10,000, growing with the queue's history (EXPLAIN, bench/storm.py)."""
    return table.c.status == sa.literal_column("'pending'")
