"""Managing sources and maintenance windows."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from interlock.domain import sources as rules
from interlock.domain.alerts import Alert, ReceivedPayload, SourcePlugin, SourceSigning
from interlock.domain.endpoints import generate_secret as generate_webhook_secret
from interlock.domain.errors import BadRequest, InvalidInput, NotFound
from interlock.domain.filters import Filter
from interlock.domain.ids import new_id
from interlock.domain.maintenance import MaintenanceMode, MaintenanceWindow
from interlock.domain.pagination import Page, check_limit, decode_cursor, encode_cursor
from interlock.domain.sources import Source
from interlock.ports.clock import Clock
from interlock.ports.parser import PayloadParser
from interlock.ports.store import Store, Transaction

NAME_MAX = 200
REOPEN_WINDOW_MAX = timedelta(days=30)


#: Reads of one page of alerts at most, when alerts of private incidents are left out.
PRIVATE_SCAN_ROUNDS = 10


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str
    options: Mapping[str, Any] | None = None
    grouping: str = rules.DEFAULT_GROUPING
    auto_resolve: bool = True
    reopen_window: timedelta = rules.DEFAULT_REOPEN_WINDOW
    rate_limit: float | None = None
    enabled: bool = True
    #: Grafana: sign with an HMAC secret; generic: with a Standard Webhooks secret.
    signed: bool = False
    timestamp_header: str | None = None


@dataclass(frozen=True)
class Credentials:
    """What a new source's tool must present: shown once."""

    token: str
    signing_secret: str | None


class SourceService:
    def __init__(self, store: Store, clock: Clock, parser: PayloadParser) -> None:
        self._store = store
        self._clock = clock
        self._parser = parser

    @property
    def kinds(self) -> Mapping[str, SourcePlugin]:
        """Every installed source kind, by kind."""
        return self._parser.kinds

    def create(self, spec: SourceSpec) -> tuple[Source, Credentials]:
        now = self._clock.now()
        token = rules.generate_token()
        signing = self._parser.plugin(spec.kind).signing
        if spec.signed and signing is SourceSigning.NONE:
            raise InvalidInput("only grafana and generic sources sign their requests",
                               errors=[{"field": "signed", "message":
                                        f"{spec.kind} sources do not sign requests"}])
        secret = _signing_secret(signing) if spec.signed else None
        source = Source(
            id=new_id("src", now), name=spec.name.strip(), kind=spec.kind,
            token_digest=rules.token_digest(token), created_at=now, updated_at=now,
            signing_secret=secret, timestamp_header=spec.timestamp_header,
            options=spec.options or {}, grouping=spec.grouping,
            auto_resolve=spec.auto_resolve, reopen_window=spec.reopen_window,
            rate_limit=spec.rate_limit, enabled=spec.enabled,
        )
        source = self._checked(source)
        with self._store.transaction(write=True) as tx:
            tx.sources.insert(source)
        return source, Credentials(token, secret)

    def get(self, source_id: str) -> Source:
        with self._store.transaction() as tx:
            return _source(tx, source_id)

    def list(self, *, cursor: str | None, limit: int) -> Page[Source]:
        limit = check_limit(limit)
        if cursor is not None and not cursor.startswith("src_"):
            raise BadRequest("cursor is not one this API issued")
        with self._store.transaction() as tx:
            rows = tx.sources.list(after=cursor, limit=limit + 1)
        more = len(rows) > limit
        return Page(rows[:limit], rows[limit - 1].id if more else None)

    def update(self, source_id: str, changes: Mapping[str, Any]) -> Source:
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            updated = self._checked(dataclasses.replace(
                _source(tx, source_id), **changes, updated_at=now))
            tx.sources.save(updated)
            return updated

    def rotate_token(self, source_id: str) -> tuple[Source, Credentials]:
        """A new token; the old one stops working at once."""
        token = rules.generate_token()
        with self._store.transaction(write=True) as tx:
            source = dataclasses.replace(
                _source(tx, source_id), token_digest=rules.token_digest(token),
                updated_at=self._clock.now())
            tx.sources.save(source)
        return source, Credentials(token, None)

    def delete(self, source_id: str) -> None:
        with self._store.transaction(write=True) as tx:
            if not tx.sources.delete(source_id):
                raise NotFound(f"no source {source_id}")

    def payloads(self, source_id: str, *, cursor: str | None, limit: int
                 ) -> Page[ReceivedPayload]:
        """Newest first. The first page starts with payloads still waiting in the ingest
        spool (pending, not yet numbered), then the stored ones."""
        limit = check_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        # The spool before the table: a payload moved in between is then seen twice (and
        # shown once), never missed.
        waiting = [] if before is not None else self._store.received_waiting(source_id, limit)
        with self._store.transaction() as tx:
            _source(tx, source_id)
            stored = tx.payloads.list(source_id, before=before, limit=limit + 1)
        moved = {payload.id for payload in stored}
        waiting = [payload for payload in waiting if payload.id not in moved]
        rows = [*waiting, *stored][:limit]
        if len(waiting) + len(stored) <= limit:
            return Page(rows, None)
        # The next page goes on from the last stored payload shown (or from the newest,
        # when waiting ones filled this page).
        last = rows[-1].position if len(rows) > len(waiting) else stored[0].position + 1
        return Page(rows, encode_cursor(last))

    def alerts(self, *, cursor: str | None, limit: int, source_id: str | None = None,
               suppressed: bool | None = None, include_private: bool = False
               ) -> Page[Alert]:
        """Newest first. Alerts attached to a private incident are left out unless
        ``include_private``: they carry its id and what it is about. Pages are filled by
        reading further, up to PRIVATE_SCAN_ROUNDS reads; past that a page may be short
        (its cursor still leads on)."""
        limit = check_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        found: list[tuple[int, Alert]] = []
        with self._store.transaction() as tx:
            for _ in range(PRIVATE_SCAN_ROUNDS):
                rows = tx.alerts.list(before=before, limit=limit + 1, source_id=source_id,
                                      suppressed=suppressed)
                hidden = set() if include_private else tx.incidents.private_among(
                    {alert.incident_id for _, alert in rows if alert.incident_id})
                found += [row for row in rows if row[1].incident_id not in hidden]
                if len(found) > limit:
                    return Page([alert for _, alert in found[:limit]],
                                encode_cursor(found[limit - 1][0]))
                if len(rows) <= limit:
                    return Page([alert for _, alert in found], None)
                before = rows[-1][0]
        assert before is not None  # set by every round that did not return
        return Page([alert for _, alert in found], encode_cursor(before))

    def _checked(self, source: Source) -> Source:
        if not source.name or len(source.name) > NAME_MAX:
            raise InvalidInput(f"name must be 1 to {NAME_MAX} characters",
                               errors=[{"field": "name", "message": "1 to 200 characters"}])
        rules.check_grouping(source.grouping)
        if not timedelta(0) <= source.reopen_window <= REOPEN_WINDOW_MAX:
            raise InvalidInput("reopen_window_seconds must be between 0 and 30 days")
        rules.check_rate_limit(source.rate_limit)
        if (source.signing_secret
                and self._parser.plugin(source.kind).signing is SourceSigning.NONE):
            raise InvalidInput("only grafana and generic sources sign their requests")
        options = self._parser.check_options(source.kind, source.options)
        return dataclasses.replace(source, options=options)


class MaintenanceService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create(self, name: str, starts_at: datetime, ends_at: datetime, mode: MaintenanceMode,
               matchers: Mapping[str, Any] | None, source_id: str | None
               ) -> MaintenanceWindow:
        now = self._clock.now()
        window = MaintenanceWindow(
            id=new_id("mw", now), name=name.strip(), starts_at=starts_at, ends_at=ends_at,
            mode=mode, created_at=now, matchers=dict(matchers or {}), source_id=source_id)
        with self._store.transaction(write=True) as tx:
            _check_window(tx, window)
            tx.maintenance.insert(window)
        return window

    def get(self, window_id: str) -> tuple[MaintenanceWindow, tuple[int, int]]:
        with self._store.transaction() as tx:
            window = tx.maintenance.get(window_id)
            if window is None:
                raise NotFound(f"no maintenance window {window_id}")
            return window, tx.maintenance.counts(window_id)

    def list(self) -> list[tuple[MaintenanceWindow, tuple[int, int]]]:
        with self._store.transaction() as tx:
            return [(window, tx.maintenance.counts(window.id))
                    for window in tx.maintenance.every()]

    def update(self, window_id: str, changes: Mapping[str, Any]) -> MaintenanceWindow:
        with self._store.transaction(write=True) as tx:
            window = tx.maintenance.get(window_id)
            if window is None:
                raise NotFound(f"no maintenance window {window_id}")
            updated = dataclasses.replace(window, **changes)
            _check_window(tx, updated)
            tx.maintenance.save(updated)
            return updated

    def delete(self, window_id: str) -> None:
        with self._store.transaction(write=True) as tx:
            if not tx.maintenance.delete(window_id):
                raise NotFound(f"no maintenance window {window_id}")


def _check_window(tx: Transaction, window: MaintenanceWindow) -> None:
    if not window.name or len(window.name) > NAME_MAX:
        raise InvalidInput(f"name must be 1 to {NAME_MAX} characters")
    if window.ends_at <= window.starts_at:
        raise InvalidInput("ends_at must be after starts_at",
                           errors=[{"field": "ends_at", "message": "after starts_at"}])
    Filter.parse(window.matchers)
    if window.source_id is not None and tx.sources.get(window.source_id) is None:
        raise InvalidInput(f"no source {window.source_id}",
                           errors=[{"field": "source_id", "message": "no such source"}])


def _source(tx: Transaction, source_id: str) -> Source:
    source = tx.sources.get(source_id)
    if source is None:
        raise NotFound(f"no source {source_id}")
    return source


def _signing_secret(signing: SourceSigning) -> str:
    if signing is SourceSigning.STANDARD_WEBHOOKS:
        return generate_webhook_secret()
    return rules.generate_token().replace(rules.TOKEN_PREFIX, "", 1)
