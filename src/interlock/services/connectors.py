"""Configuring connectors, and reading what they did.

Credentials are sealed (ports.connector.SecretBox) before they reach the store and
never leave this service except to the connector's own driver. Everything a user sets
is checked when saved: the kind, its settings and required credentials, any URL
(against the same target rules as webhook endpoints), the mapping and the sharing
filter.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interlock.domain.connectors import Activity, Connector, Link, parse_mapping
from interlock.domain.errors import BadRequest, ConcurrentUpdate, InvalidInput, NotFound
from interlock.domain.filters import Filter
from interlock.domain.ids import new_id
from interlock.domain.pagination import Page, check_limit, decode_cursor, encode_cursor
from interlock.ports.clock import Clock
from interlock.ports.connector import ConnectorDriver, SecretBox
from interlock.ports.sender import TargetGuard
from interlock.ports.store import Store, StoredConnector

NAME_MAX = 200
#: Settings whose value is a URL Interlock will call.
_URL_SETTINGS = ("base_url", "api_base", "url")


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
    def __init__(self, store: Store, clock: Clock, drivers: Mapping[str, ConnectorDriver],
                 box: SecretBox, guard: TargetGuard) -> None:
        self._store = store
        self._clock = clock
        self._drivers = drivers
        self._box = box
        self._guard = guard

    @property
    def kinds(self) -> Sequence[str]:
        return sorted(self._drivers)

    def driver(self, kind: str) -> ConnectorDriver:
        driver = self._drivers.get(kind)
        if driver is None:
            raise InvalidInput(f"unknown connector kind {kind!r}", errors=[
                {"field": "kind", "message": f"one of {', '.join(self.kinds)}"}])
        return driver

    def create(self, spec: ConnectorSpec) -> Connector:
        driver = self.driver(spec.kind)
        now = self._clock.now()
        connector = Connector(
            id=new_id("con", now), name=_name(spec.name), kind=spec.kind,
            settings=_settings(driver, {}, spec.settings),
            credentials=_credentials(driver, {}, spec.credentials),
            mapping=parse_mapping(spec.mapping or {}, base=driver.default_mapping),
            filter=_filter(spec.filter), enabled=spec.enabled, created_at=now, updated_at=now,
        )
        self._check(driver, connector)
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
        """The checks (a URL's DNS lookup, a driver rendering its templates) run before
        the write transaction, not inside it; the write is refused (409, safe to retry)
        if the connector was changed meanwhile."""
        current = self.get(connector_id)
        driver = self.driver(current.kind)
        values: dict[str, Any] = {"updated_at": self._clock.now()}
        if "name" in changes:
            values["name"] = _name(changes["name"])
        if "settings" in changes:
            values["settings"] = _settings(driver, current.settings, changes["settings"])
        if "credentials" in changes:
            values["credentials"] = _credentials(driver, current.credentials,
                                                 changes["credentials"])
        if "mapping" in changes:
            values["mapping"] = current.mapping.merged(changes["mapping"] or {})
        if "filter" in changes:
            values["filter"] = _filter(changes["filter"])
        if "enabled" in changes:
            values["enabled"] = bool(changes["enabled"])
        changed = dataclasses.replace(current, **values)
        self._check(driver, changed)
        sealed = self._seal(changed.credentials) if "credentials" in changes else None
        with self._store.transaction(write=True) as tx:
            stored = tx.connectors.get(connector_id)
            if stored is None:
                raise NotFound(f"no connector {connector_id}")
            if stored.connector.updated_at != current.updated_at:
                raise ConcurrentUpdate(f"connector {connector_id} was changed while this "
                                       "change was being checked; send it again")
            # What the sync loop wrote meanwhile (health, learned state) is kept.
            fresh = stored.connector
            changed = dataclasses.replace(
                changed, state=fresh.state, last_success_at=fresh.last_success_at,
                last_error=fresh.last_error, last_error_at=fresh.last_error_at,
                failing_since=fresh.failing_since)
            tx.connectors.save(dataclasses.replace(changed, credentials={}), sealed)
        return changed

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

    def _check(self, driver: ConnectorDriver, connector: Connector) -> None:
        driver.check(connector.settings, connector.credentials)
        for name in _URL_SETTINGS:
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
            rows = [stored.connector for stored in tx.connectors.list(after=cursor,
                                                                      limit=limit + 1)]
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more else None)


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX:
        raise InvalidInput("a connector needs a name", errors=[
            {"field": "name", "message": f"1 to {NAME_MAX} characters"}])
    return value.strip()


def _settings(driver: ConnectorDriver, current: Mapping[str, Any], given: object
              ) -> dict[str, Any]:
    if not isinstance(given, Mapping):
        raise InvalidInput("settings must be an object", errors=[
            {"field": "settings", "message": "must be an object"}])
    unknown = sorted(set(given) - set(driver.defaults))
    if unknown:
        raise InvalidInput(f"unknown settings for {driver.kind}: {', '.join(unknown)}",
                           errors=[{"field": f"settings.{name}",
                                    "message": f"one of {', '.join(sorted(driver.defaults))}"}
                                   for name in unknown])
    return {**driver.defaults, **current, **given}


def _credentials(driver: ConnectorDriver, current: Mapping[str, str], given: object
                 ) -> dict[str, str]:
    if not isinstance(given, Mapping) or not all(
            isinstance(value, str) for value in given.values()):
        raise InvalidInput("credentials must map names to strings", errors=[
            {"field": "credentials", "message": "must map names to strings"}])
    # A driver may take credentials it does not always need (the generic HTTP
    # connector: a bearer token or basic auth or none); it names them in
    # ``optional_credentials``.
    optional: tuple[str, ...] = getattr(driver, "optional_credentials", ())
    accepted = (*driver.required_credentials, *optional)
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise InvalidInput(f"unknown credentials for {driver.kind}: {', '.join(unknown)}",
                           errors=[{"field": f"credentials.{name}", "message":
                                    f"one of {', '.join(accepted) or '(none)'}"}
                                   for name in unknown])
    merged = {**current, **given}
    missing = [name for name in driver.required_credentials if not merged.get(name)]
    if missing:
        raise InvalidInput(f"{driver.kind} needs credentials: {', '.join(missing)}",
                           errors=[{"field": f"credentials.{name}", "message": "required"}
                                   for name in missing])
    return merged


def _filter(raw: object) -> dict[str, Any] | None:
    if raw is None or raw == {}:
        return None
    return dict(Filter.parse(raw).to_json())
