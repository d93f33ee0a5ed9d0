"""Configuring connectors, and reading what they did.

Credentials are sealed (ports.connector.SecretBox) before they reach the store and
never leave this service except to the connector's own driver. Everything a user sets
is checked when saved: the kind, its settings and credentials (by the kind's plugin
models, ports.plugins), every URL setting (found by its type, against the same target
rules as webhook endpoints), the mapping and the sharing filter.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interlock.domain.connectors import Activity, Connector, Link, parse_mapping
from interlock.domain.errors import BadRequest, Conflict, InvalidInput, NotFound
from interlock.domain.filters import Filter
from interlock.domain.ids import new_id
from interlock.domain.pagination import Page, check_limit, decode_cursor, encode_cursor
from interlock.ports.clock import Clock
from interlock.ports.connector import (
    ChecksSettings,
    ConnectorDriver,
    InboundHooks,
    Pull,
    Push,
    SecretBox,
)
from interlock.ports.plugins import ConnectorPlugin
from interlock.ports.sender import TargetGuard
from interlock.ports.store import Store, StoredConnector

NAME_MAX = 200
#: Times an update is checked again when someone else saved the connector meanwhile.
UPDATE_ATTEMPTS = 3


@dataclass(frozen=True)
class ConnectorSpec:
    name: str
    kind: str
    settings: Mapping[str, Any]
    credentials: Mapping[str, str]
    mapping: Mapping[str, Any] | None = None
    filter: Mapping[str, Any] | None = None
    enabled: bool = True


class ConnectorService:
    def __init__(self, store: Store, clock: Clock, plugins: Mapping[str, ConnectorPlugin],
                 box: SecretBox, guard: TargetGuard) -> None:
        self._store = store
        self._clock = clock
        self._plugins = dict(plugins)
        # Each kind's driver, made once: drivers keep no state between calls.
        self._drivers: dict[str, ConnectorDriver] = {
            kind: plugin.driver() for kind, plugin in self._plugins.items()}
        self._box = box
        self._guard = guard

    @property
    def kinds(self) -> Sequence[str]:
        return sorted(self._plugins)

    @property
    def drivers(self) -> Mapping[str, ConnectorDriver]:
        return self._drivers

    def plugin(self, kind: str) -> ConnectorPlugin:
        plugin = self._plugins.get(kind)
        if plugin is None:
            raise InvalidInput(f"unknown connector kind {kind!r}", errors=[
                {"field": "kind", "message": f"one of {', '.join(self.kinds)}"}])
        return plugin

    def capabilities(self, kind: str) -> tuple[str, ...]:
        """What a kind's driver can do, in the words the API uses."""
        driver, plugin = self.driver(kind), self.plugin(kind)
        found = [name for name, capability in (("push", Push), ("pull", Pull),
                                               ("hooks", InboundHooks))
                 if isinstance(driver, capability)]
        if plugin.reconciles and isinstance(driver, Pull):
            found.append("reconcile")
        return tuple(found)

    def driver(self, kind: str) -> ConnectorDriver:
        self.plugin(kind)
        return self._drivers[kind]

    def create(self, spec: ConnectorSpec) -> Connector:
        plugin = self.plugin(spec.kind)
        now = self._clock.now()
        settings, credentials = _configuration(plugin, {}, spec.settings, {},
                                               spec.credentials)
        connector = Connector(
            id=new_id("con", now), name=_name(spec.name), kind=spec.kind,
            settings=settings, credentials=credentials,
            mapping=parse_mapping(spec.mapping or {}, base=plugin.default_mapping),
            filter=_filter(spec.filter), enabled=spec.enabled, created_at=now, updated_at=now,
        )
        self._check(plugin, connector)
        with self._store.transaction(write=True) as tx:
            tx.connectors.insert(dataclasses.replace(connector, credentials={}),
                                 self._seal(connector.credentials))
        return connector

    def get(self, connector_id: str) -> Connector:
        with self._store.transaction() as tx:
            stored = tx.connectors.get(connector_id)
        if stored is None:
            raise NotFound(f"no connector {connector_id}")
        return self.open(stored)

    def open(self, stored: StoredConnector) -> Connector:
        """The connector with its credentials decrypted, for its driver."""
        credentials = json.loads(self._box.open(stored.sealed_credentials))
        return dataclasses.replace(stored.connector, credentials=credentials)

    def update(self, connector_id: str, changes: Mapping[str, Any]) -> Connector:
        """Checks run before the write transaction (the URL check resolves DNS, and on
        SQLite a write transaction holds the one write lock); the write then happens
        only if nobody changed the connector meanwhile, else it is checked again."""
        for _ in range(UPDATE_ATTEMPTS):
            with self._store.transaction() as tx:
                stored = tx.connectors.get(connector_id)
            if stored is None:
                raise NotFound(f"no connector {connector_id}")
            changed, sealed = self._changed(stored, changes)
            with self._store.transaction(write=True) as tx:
                now_stored = tx.connectors.get(connector_id)
                if now_stored is None:
                    raise NotFound(f"no connector {connector_id}")
                if (now_stored.connector.updated_at != stored.connector.updated_at
                        or now_stored.sealed_credentials != stored.sealed_credentials):
                    continue
                # What the sync worker wrote meanwhile (health, what it learned) stays.
                latest = now_stored.connector
                changed = dataclasses.replace(
                    changed, state=latest.state, last_success_at=latest.last_success_at,
                    last_error=latest.last_error, last_error_at=latest.last_error_at,
                    failing_since=latest.failing_since)
                tx.connectors.save(dataclasses.replace(changed, credentials={}), sealed)
            return changed
        raise Conflict(f"connector {connector_id} is being changed by someone else; "
                       f"try again")

    def _changed(self, stored: StoredConnector, changes: Mapping[str, Any]
                 ) -> tuple[Connector, str | None]:
        """The connector as ``changes`` leave it, checked, and its newly sealed
        credentials (None: unchanged)."""
        given_credentials = changes.get("credentials")
        try:
            current = self.open(stored)
        except InvalidInput as error:
            # Sealed with another INTERLOCK_SECRET_KEY: only a change that gives every
            # credential again can be saved; it replaces the unreadable ones.
            if "credentials" not in changes:
                raise InvalidInput(f"{error.detail}: give all of its credentials in this "
                                   f"change", errors=[{"field": "credentials",
                                                       "message": error.detail}]) from error
            current = dataclasses.replace(stored.connector, credentials={})
        plugin = self.plugin(current.kind)
        values: dict[str, Any] = {"updated_at": self._clock.now()}
        if "name" in changes:
            values["name"] = _name(changes["name"])
        settings, credentials = _configuration(
            plugin, current.settings, changes.get("settings", {}), current.credentials,
            given_credentials if "credentials" in changes else {})
        values["settings"], values["credentials"] = settings, credentials
        if "mapping" in changes:
            values["mapping"] = current.mapping.merged(changes["mapping"] or {})
        if "filter" in changes:
            values["filter"] = _filter(changes["filter"])
        if "enabled" in changes:
            values["enabled"] = bool(changes["enabled"])
        changed = dataclasses.replace(current, **values)
        self._check(plugin, changed)
        sealed = self._seal(changed.credentials) if "credentials" in changes else None
        return changed, sealed

    def delete(self, connector_id: str) -> None:
        with self._store.transaction(write=True) as tx:
            if not tx.connectors.delete(connector_id):
                raise NotFound(f"no connector {connector_id}")

    def activity(self, connector_id: str, *, cursor: str | None, limit: int,
                 incident_id: str | None = None) -> Page[Activity]:
        limit = check_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        with self._store.transaction() as tx:
            if tx.connectors.get(connector_id) is None:
                raise NotFound(f"no connector {connector_id}")
            rows = tx.connector_activity.list(connector_id, before=before, limit=limit + 1,
                                              incident_id=incident_id)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page([item for _, item in rows],
                    encode_cursor(rows[-1][0]) if more else None)

    def queue(self, connector_id: str) -> dict[str, int]:
        with self._store.transaction() as tx:
            return tx.sync_jobs.counts(connector_id)

    def links(self, connector_id: str, limit: int = 50) -> list[Link]:
        with self._store.transaction() as tx:
            return tx.links.for_connector(connector_id, limit=limit)

    def links_for_incident(self, incident_id: str) -> list[Link]:
        """The incident's links (the caller has checked it may see the incident)."""
        with self._store.transaction() as tx:
            return tx.links.for_incident(incident_id)

    def _check(self, plugin: ConnectorPlugin, connector: Connector) -> None:
        """The driver's own extra check, if it has one, then every URL setting (found by
        its type, ToolUrl) against the target guard. May resolve DNS: never call it
        inside a write transaction."""
        driver = self._drivers[plugin.kind]
        if isinstance(driver, ChecksSettings):
            driver.check(connector.settings, connector.credentials)
        for name in plugin.url_settings():
            url = connector.settings.get(name)
            if isinstance(url, str) and url:
                try:
                    self._guard.check(url)
                except InvalidInput as error:
                    raise InvalidInput(error.detail, errors=[
                        {"field": f"settings.{name}", "message": error.detail}]) from error

    def _seal(self, credentials: Mapping[str, str]) -> str:
        return self._box.seal(json.dumps(dict(credentials), sort_keys=True))

    def list(self, *, cursor: str | None, limit: int) -> Page[Connector]:
        limit = check_limit(limit)
        if cursor is not None and (not cursor.startswith("con_") or len(cursor) > 40):
            raise BadRequest("cursor is not one this API issued")
        with self._store.transaction() as tx:
            stored = tx.connectors.list(after=cursor, limit=limit + 1)
        more = len(stored) > limit
        rows = [self._readable(item) for item in stored[:limit]]
        return Page(rows, rows[-1].id if more else None)

    def _readable(self, stored: StoredConnector) -> Connector:
        """The connector with its credentials, as far as they can be read: one sealed
        with another secret key is listed with none (its own page says why)."""
        try:
            return self.open(stored)
        except InvalidInput:
            return stored.connector


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX:
        raise InvalidInput("a connector needs a name", errors=[
            {"field": "name", "message": f"1 to {NAME_MAX} characters"}])
    return value.strip()


def _configuration(plugin: ConnectorPlugin, current_settings: Mapping[str, Any],
                   given_settings: object, current_credentials: Mapping[str, str],
                   given_credentials: object) -> tuple[dict[str, Any], dict[str, str]]:
    """Settings and credentials as ``given`` leaves them (given names replace current
    ones), checked by the plugin's models."""
    if not isinstance(given_settings, Mapping):
        raise InvalidInput("settings must be an object", errors=[
            {"field": "settings", "message": "must be an object"}])
    if not isinstance(given_credentials, Mapping) or not all(
            isinstance(value, str) for value in given_credentials.values()):
        raise InvalidInput("credentials must map names to strings", errors=[
            {"field": "credentials", "message": "must map names to strings"}])
    return plugin.validated({**current_settings, **given_settings},
                            {**current_credentials, **given_credentials})


def _filter(raw: object) -> dict[str, Any] | None:
    if raw is None or raw == {}:
        return None
    return dict(Filter.parse(raw).to_json())
