"""Managing status pages and components, and publishing public updates on incidents.

Publishing is one transaction: the update, the component statuses it sets (and their
history), each page's view of the incident, the pages' versions (what caches key on),
and an ``incident.public_update`` event with its timeline line, so responders see on
the incident what customers now see.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from interlock.domain import status_pages as rules
from interlock.domain.errors import BadRequest, InvalidInput, NotFound
from interlock.domain.events import Event
from interlock.domain.ids import has_prefix, new_id
from interlock.domain.incidents import Incident, to_dict
from interlock.domain.pagination import Page, check_limit
from interlock.domain.status_pages import (
    Component,
    ComponentStatus,
    PageVisibility,
    PublicIncident,
    PublicUpdate,
    StatusChange,
    StatusPage,
    UpdateStatus,
)
from interlock.domain.timeline import TimelineEntry
from interlock.ports.clock import Clock
from interlock.ports.store import Store, Transaction
from interlock.services.incidents import Viewer
from interlock.services.status_maintenance import StatusMaintenanceService

_IMPACT_ORDER = ["none", "maintenance", "minor", "major", "critical"]


@dataclass(frozen=True)
class PageSpec:
    name: str
    slug: str
    title: str | None = None
    logo_url: str | None = None
    link_url: str | None = None
    visibility: PageVisibility = PageVisibility.PUBLIC


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    services: Sequence[str]
    group: str | None = None
    description: str | None = None
    status: ComponentStatus = ComponentStatus.OPERATIONAL


@dataclass(frozen=True)
class Draft:
    """A public update as a person wrote it, before it is published."""

    status: UpdateStatus
    body: str
    components: Mapping[str, ComponentStatus]
    title: str | None = None
    estimated_resolution_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """What publishing a draft does: the update, and each page's view of the incident
    after it (the preview shows these; publishing writes them)."""

    update: PublicUpdate
    views: list[PublicIncident]
    statuses: dict[str, ComponentStatus]
    components: dict[str, Component]


class StatusPageService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._listeners: list[Callable[[], None]] = []
        #: Planned maintenance on the pages (its changes drop the same caches).
        self.maintenances = StatusMaintenanceService(store, clock, self.changed)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each change this process makes (caches drop at once;
        other processes' changes are seen through the page version)."""
        self._listeners = [*self._listeners, listener]

    def changed(self) -> None:
        """Tell this process's caches that a page changed (``publish_in`` callers)."""
        for listener in self._listeners:
            listener()

    # -- pages ---------------------------------------------------------------------------

    def create_page(self, spec: PageSpec) -> StatusPage:
        now = self._clock.now()
        page = _checked_page(StatusPage(
            id=new_id("spg", now), name=spec.name, slug=spec.slug,
            title=spec.title or spec.name, visibility=spec.visibility, version=1,
            created_at=now, updated_at=now, logo_url=spec.logo_url, link_url=spec.link_url))
        with self._store.transaction(write=True) as tx:
            tx.status_pages.insert_page(page)
        self.changed()
        return page

    def get_page(self, page_id: str) -> StatusPage:
        with self._store.transaction() as tx:
            return _page(tx, page_id)

    def list_pages(self, *, cursor: str | None, limit: int) -> Page[StatusPage]:
        limit = check_limit(limit)
        if cursor is not None and not has_prefix(cursor, "spg"):
            raise BadRequest("cursor is not one this API issued")
        with self._store.transaction() as tx:
            rows = tx.status_pages.list_pages(after=cursor, limit=limit + 1)
        more = len(rows) > limit
        return Page(rows[:limit], rows[limit - 1].id if more else None)

    def update_page(self, page_id: str, changes: Mapping[str, Any]) -> StatusPage:
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            page = _page(tx, page_id)
            updated = _checked_page(dataclasses.replace(
                page, **changes, version=page.version + 1, updated_at=now))
            tx.status_pages.save_page(updated)
        self.changed()
        return updated

    def delete_page(self, page_id: str) -> None:
        with self._store.transaction(write=True) as tx:
            if not tx.status_pages.delete_page(page_id):
                raise NotFound(f"no status page {page_id}")
        self.changed()

    # -- components ----------------------------------------------------------------------

    def components(self, page_id: str) -> list[Component]:
        with self._store.transaction() as tx:
            _page(tx, page_id)
            return tx.status_pages.components(page_id)

    def add_component(self, page_id: str, spec: ComponentSpec) -> Component:
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            _page(tx, page_id)
            if len(tx.status_pages.components(page_id)) >= rules.COMPONENTS_MAX:
                raise InvalidInput(f"a page has at most {rules.COMPONENTS_MAX} components")
            component = Component(
                id=new_id("cmp", now), page_id=page_id, name=spec.name,
                services=rules.check_services(spec.services), status=spec.status,
                position=tx.status_pages.next_position(page_id), created_at=now,
                updated_at=now, group=spec.group or None,
                description=spec.description or None)
            tx.status_pages.insert_component(component)
            tx.status_pages.record_statuses([StatusChange(component.id, component.status, now)])
            tx.status_pages.touch([page_id], now)
        self.changed()
        return component

    def get_component(self, page_id: str, component_id: str) -> Component:
        with self._store.transaction() as tx:
            return _component(tx, page_id, component_id)

    def update_component(self, page_id: str, component_id: str, changes: Mapping[str, Any]
                         ) -> Component:
        """Edit a component; a new ``status`` set by hand (maintenance, say) goes into
        its history like one set by a public update."""
        now = self._clock.now()
        changes = dict(changes)
        if "services" in changes:
            changes["services"] = rules.check_services(changes["services"])
        with self._store.transaction(write=True) as tx:
            component = _component(tx, page_id, component_id)
            updated = dataclasses.replace(component, **changes, updated_at=now)
            tx.status_pages.save_component(updated)
            if updated.status is not component.status:
                tx.status_pages.record_statuses([StatusChange(component_id, updated.status,
                                                              now)])
            tx.status_pages.touch([page_id], now)
        self.changed()
        return updated

    def delete_component(self, page_id: str, component_id: str) -> None:
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            _component(tx, page_id, component_id)
            tx.status_pages.delete_component(component_id)
            tx.status_pages.touch([page_id], now)
        self.changed()

    # -- public updates ------------------------------------------------------------------

    def suggestion(self, viewer: Viewer, key: str) -> dict[str, ComponentStatus]:
        """Component statuses suggested by the incident's severity and service."""
        with self._store.transaction() as tx:
            incident = _incident(tx, viewer, key)
            if incident.service is None:
                return {}
            return rules.suggest(incident, tx.status_pages.components_for_service(
                incident.service))

    def updates(self, viewer: Viewer, key: str) -> list[PublicUpdate]:
        """What was published on the incident, newest first."""
        with self._store.transaction() as tx:
            incident = _incident(tx, viewer, key)
            return tx.status_pages.updates([incident.id])[incident.id]

    def preview(self, viewer: Viewer, key: str, draft: Draft) -> Outcome:
        """What publishing ``draft`` would show, written nowhere."""
        with self._store.transaction() as tx:
            incident = _incident(tx, viewer, key)
            return self._outcome(tx, viewer, incident, draft, self._clock.now())

    def publish(self, viewer: Viewer, key: str, draft: Draft) -> PublicUpdate:
        with self._store.transaction(write=True) as tx:
            update = self.publish_in(tx, viewer, key, draft)
        self.changed()
        return update

    def publish_in(self, tx: Transaction, viewer: Viewer, key: str, draft: Draft
                   ) -> PublicUpdate:
        """Publish inside the caller's transaction (idempotent requests); the caller
        calls :meth:`changed` once it committed."""
        incident = _incident(tx, viewer, key, for_update=True)
        now = self._clock.now()
        outcome = self._outcome(tx, viewer, incident, draft, now)
        pages = tx.status_pages
        changed = [StatusChange(component_id, status, now)
                   for component_id, status in outcome.statuses.items()
                   if outcome.components[component_id].status is not status]
        for change in changed:
            pages.save_component(dataclasses.replace(
                outcome.components[change.component_id], status=change.status,
                updated_at=now))
        pages.record_statuses(changed)
        pages.insert_update(outcome.update)
        for view in outcome.views:
            pages.put_incident(view)
        pages.touch(outcome.update.page_ids, now)
        _record(tx, incident, outcome, viewer, now)
        return outcome.update

    def _outcome(self, tx: Transaction, viewer: Viewer, incident: Incident, draft: Draft,
                 now: datetime) -> Outcome:
        rules.check_publishable(incident)
        body = rules.check_body(draft.body)
        pages = tx.status_pages
        named = pages.get_components(draft.components)
        unknown = sorted(set(draft.components) - set(named))
        if unknown:
            raise InvalidInput(f"no component {', '.join(unknown)[:200]}", errors=[
                {"field": "components", "message": f"unknown component {component_id}"}
                for component_id in unknown[:20]])
        previous = {view.page_id: view for view in pages.incident_views(incident.id)}
        page_ids = sorted({component.page_id for component in named.values()} | set(previous))
        if not page_ids:
            raise InvalidInput("the first public update must name at least one component "
                               "(its pages are those of its components)",
                               errors=[{"field": "components", "message": "at least one"}])
        statuses = dict(draft.components)
        if draft.status is UpdateStatus.RESOLVED:
            affected = {component_id for view in previous.values()
                        for component_id in view.components}
            held = {component_id for page_id in page_ids
                    for view in pages.page_incidents(page_id, open_only=True, limit=200)
                    if view.incident_id != incident.id
                    for component_id, status in view.components.items()
                    if status is not ComponentStatus.OPERATIONAL}
            statuses = rules.statuses_on_resolve(affected, statuses, held)
        components = pages.get_components(statuses)
        statuses = {key: value for key, value in statuses.items() if key in components}
        title = _title(draft, previous, incident)
        update = PublicUpdate(
            id=new_id("pub", now), incident_id=incident.id, status=draft.status, title=title,
            body=body, components=statuses, page_ids=tuple(page_ids),
            published_at=now, estimated_resolution_at=draft.estimated_resolution_at,
            author=viewer.origin.actor or viewer.origin.name)
        views = [_view(previous.get(page_id), page_id, update, statuses, components, now)
                 for page_id in page_ids]
        return Outcome(update, views, statuses, components)


def _title(draft: Draft, previous: Mapping[str, PublicIncident], incident: Incident) -> str:
    if draft.title is not None and draft.title.strip():
        title = draft.title.strip()
    elif previous:
        title = max(previous.values(), key=lambda view: view.updated_at).title
    else:
        title = incident.title
    if len(title) > rules.TITLE_MAX:  # only the incident's own title can be this long
        raise InvalidInput(f"the incident's title is longer than {rules.TITLE_MAX} "
                           "characters; give the update a public title",
                           errors=[{"field": "title", "message": f"at most {rules.TITLE_MAX}"}])
    return title


def _view(previous: PublicIncident | None, page_id: str, update: PublicUpdate,
          statuses: Mapping[str, ComponentStatus], components: Mapping[str, Component],
          now: datetime) -> PublicIncident:
    """The page's view of the incident once ``update`` is published."""
    mine = {**(previous.components if previous else {}),
            **{key: value for key, value in statuses.items()
               if components[key].page_id == page_id}}
    impact = rules.impact(mine.values())
    if previous is not None and _IMPACT_ORDER.index(previous.impact) > _IMPACT_ORDER.index(
            impact):
        impact = previous.impact  # an incident's impact is the worst it reached
    resolved = update.status is UpdateStatus.RESOLVED
    monitoring_at = previous.monitoring_at if previous else None
    if update.status is UpdateStatus.MONITORING and monitoring_at is None:
        monitoring_at = now
    return PublicIncident(
        page_id=page_id, incident_id=update.incident_id, title=update.title,
        status=update.status, impact=impact, components=mine,
        created_at=previous.created_at if previous else now, updated_at=now,
        resolved_at=now if resolved else None, monitoring_at=monitoring_at,
        estimated_resolution_at=None if resolved else update.estimated_resolution_at)


def _record(tx: Transaction, incident: Incident, outcome: Outcome, viewer: Viewer,
            now: datetime) -> None:
    """The incident's version goes up, and its event and timeline line are written."""
    transition = rules.published(incident, now)
    tx.incidents.save(transition.incident, expected_version=incident.version)
    names = {key: component.name for key, component in outcome.components.items()}
    message = rules.timeline_line(outcome.update, names)
    tx.events.append(Event(
        id=new_id("evt", now), type=transition.event_type, occurred_at=now,
        origin=viewer.origin, incident_id=incident.id,
        incident_version=transition.incident.version,
        data={"incident": to_dict(transition.incident), "changes": {},
              "public_update": rules.update_to_dict(outcome.update)}))
    tx.timeline.append(TimelineEntry(
        id=new_id("tle", now), incident_id=incident.id, at=now,
        kind=transition.event_type.value, origin=viewer.origin,
        incident_version=transition.incident.version, message=message))


def _checked_page(page: StatusPage) -> StatusPage:
    rules.check_slug(page.slug)
    return dataclasses.replace(page, logo_url=rules.check_url(page.logo_url, "logo_url"),
                               link_url=rules.check_url(page.link_url, "link_url"))


def _page(tx: Transaction, page_id: str) -> StatusPage:
    page = tx.status_pages.get_page(page_id)
    if page is None:
        raise NotFound(f"no status page {page_id}")
    return page


def _component(tx: Transaction, page_id: str, component_id: str) -> Component:
    component = tx.status_pages.get_component(component_id)
    if component is None or component.page_id != page_id:
        raise NotFound(f"no component {component_id} on status page {page_id}")
    return component


def _incident(tx: Transaction, viewer: Viewer, key: str, *, for_update: bool = False
              ) -> Incident:
    """As the incident service answers: a private incident the viewer may not see is
    missing; one they may see is refused later (never published)."""
    incident = tx.incidents.get(key, for_update=for_update)
    if incident is None or (incident.is_private and not viewer.can_see_private):
        raise NotFound(f"no incident {key}")
    return incident
