"""Status pages: what customers see of an incident, and only what a person published.

A page has components; each component maps to one or more services and has a status.
Responders write *public updates* on an incident (its public status, a text, an
estimated resolution time, the components it affects and their statuses). The pages of
an update are those of its components. Nothing else of the incident (timeline,
comments, alerts, its internal title unless the person kept it) reaches a page: a page
is built from pages, components, their status history and public updates alone.

Everything here is pure; :mod:`interlock.domain.uptime` turns a component's
status history into its 90 days of uptime bars.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from interlock.domain.errors import Conflict, InvalidInput
from interlock.domain.events import EventType
from interlock.domain.incidents import Incident, Severity, Transition
from interlock.domain.timestamps import rfc3339

#: Public update text: long enough for a paragraph or three, short enough for an email
#: and a feed entry (incident.io's public API stops at 4,096 too).
BODY_MAX = 4096
TITLE_MAX = 200
NAME_MAX = 200
URL_MAX = 2048
SERVICES_MAX = 50
#: A page shows at most this many components; more is a 422, not a slow page.
COMPONENTS_MAX = 200
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


class ComponentStatus(StrEnum):
    OPERATIONAL = "operational"
    UNDER_MAINTENANCE = "under_maintenance"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"

    @property
    def rank(self) -> int:
        """Higher is worse; a page shows its worst component's status."""
        return _RANK[self]

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


_RANK = {status: rank for rank, status in enumerate(ComponentStatus)}


class UpdateStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class PageVisibility(StrEnum):
    #: Anyone, without a key.
    PUBLIC = "public"
    #: Only people signed in to the console (a page for the rest of the company).
    INTERNAL = "internal"


@dataclass(frozen=True)
class StatusPage:
    id: str
    name: str
    slug: str
    title: str
    visibility: PageVisibility
    #: Goes up by one on every change to what the page shows (a component, an update):
    #: rendered pages, feeds and JSON are cached under it.
    version: int
    created_at: datetime
    updated_at: datetime
    logo_url: str | None = None
    link_url: str | None = None

    @property
    def is_public(self) -> bool:
        return self.visibility is PageVisibility.PUBLIC


@dataclass(frozen=True)
class Component:
    id: str
    page_id: str
    name: str
    #: The services whose incidents affect it; never empty.
    services: tuple[str, ...]
    status: ComponentStatus
    position: int
    created_at: datetime
    updated_at: datetime
    group: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class StatusChange:
    """A component's status from ``at`` on (its history, for the uptime bars)."""

    component_id: str
    status: ComponentStatus
    at: datetime


@dataclass(frozen=True)
class PublicUpdate:
    id: str
    incident_id: str
    status: UpdateStatus
    #: The public name of the incident as of this update.
    title: str
    body: str
    #: Component id → the status this update gave it.
    components: Mapping[str, ComponentStatus]
    #: The pages it was published on (those of its components, or of the incident's
    #: earlier updates when it names none).
    page_ids: tuple[str, ...]
    published_at: datetime
    estimated_resolution_at: datetime | None = None
    #: Who published it, for the console; never shown on a page.
    author: str | None = None


@dataclass(frozen=True)
class PublicIncident:
    """An incident as one page shows it: the state its latest public update left."""

    page_id: str
    incident_id: str
    title: str
    status: UpdateStatus
    impact: str
    #: Components of this page the incident affected, with their latest status.
    components: Mapping[str, ComponentStatus]
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    monitoring_at: datetime | None = None
    estimated_resolution_at: datetime | None = None
    updates: tuple[PublicUpdate, ...] = field(default_factory=tuple)

    @property
    def is_open(self) -> bool:
        return self.status is not UpdateStatus.RESOLVED


# -- checks ------------------------------------------------------------------------------


def check_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise InvalidInput(
            "slug must be 1 to 64 lowercase letters, digits and inner hyphens",
            errors=[{"field": "slug", "message": "lowercase letters, digits, hyphens"}])
    return slug


def check_url(value: str | None, name: str) -> str | None:
    """Logo and link-back URLs are shown to every visitor: web links only."""
    if value is None or value == "":
        return None
    if not value.lower().startswith(("https://", "http://")) or len(value) > URL_MAX:
        raise InvalidInput(f"{name} must be an http(s) URL",
                           errors=[{"field": name, "message": "an http(s) URL"}])
    return value


def check_services(services: Sequence[str]) -> tuple[str, ...]:
    """A component mapped to no service could never be suggested for an incident."""
    cleaned = tuple(dict.fromkeys(service.strip() for service in services if service.strip()))
    if not cleaned:
        raise InvalidInput("a component must map to at least one service", errors=[
            {"field": "services", "message": "at least one service"}])
    if len(cleaned) > SERVICES_MAX:
        raise InvalidInput(f"a component maps to at most {SERVICES_MAX} services", errors=[
            {"field": "services", "message": f"at most {SERVICES_MAX}"}])
    return cleaned


def check_body(body: str) -> str:
    if not body.strip():
        raise InvalidInput("a public update needs a body", errors=[
            {"field": "body", "message": "must not be empty"}])
    if len(body) > BODY_MAX:
        raise InvalidInput(f"a public update is at most {BODY_MAX} characters, "
                           f"this one is {len(body)}",
                           errors=[{"field": "body", "message": f"at most {BODY_MAX}"}])
    return body


def check_publishable(incident: Incident) -> None:
    if incident.is_private:
        raise Conflict(f"{incident.reference} is private; private incidents are never "
                       "published on a status page")


# -- what a page shows --------------------------------------------------------------------


def worst(statuses: Iterable[ComponentStatus]) -> ComponentStatus:
    """The page's status: its worst component's (operational with no components)."""
    return max(statuses, key=lambda status: status.rank, default=ComponentStatus.OPERATIONAL)


#: Statuspage's page indicator and description for a page's worst status.
_INDICATORS = {
    ComponentStatus.OPERATIONAL: ("none", "All Systems Operational"),
    ComponentStatus.UNDER_MAINTENANCE: ("maintenance", "Service Under Maintenance"),
    ComponentStatus.DEGRADED_PERFORMANCE: ("minor", "Minor Service Outage"),
    ComponentStatus.PARTIAL_OUTAGE: ("major", "Partial System Outage"),
    ComponentStatus.MAJOR_OUTAGE: ("critical", "Major System Outage"),
}
#: Statuspage's incident impact for the worst status an incident gave a component.
_IMPACTS = {
    ComponentStatus.OPERATIONAL: "none",
    ComponentStatus.UNDER_MAINTENANCE: "maintenance",
    ComponentStatus.DEGRADED_PERFORMANCE: "minor",
    ComponentStatus.PARTIAL_OUTAGE: "major",
    ComponentStatus.MAJOR_OUTAGE: "critical",
}


def indicator(status: ComponentStatus) -> tuple[str, str]:
    """(indicator, description) as Statuspage's status.json gives them."""
    return _INDICATORS[status]


def impact(statuses: Iterable[ComponentStatus]) -> str:
    return _IMPACTS[worst(statuses)]


#: What an incident of each severity suggests for the components of its service.
_SUGGESTED = {
    Severity.CRITICAL: ComponentStatus.MAJOR_OUTAGE,
    Severity.HIGH: ComponentStatus.PARTIAL_OUTAGE,
    Severity.MEDIUM: ComponentStatus.DEGRADED_PERFORMANCE,
    Severity.LOW: ComponentStatus.DEGRADED_PERFORMANCE,
    Severity.INFO: ComponentStatus.OPERATIONAL,
}


def suggest(incident: Incident, components: Iterable[Component]
            ) -> dict[str, ComponentStatus]:
    """Component id → suggested status for the components mapped to the incident's
    service. Only a suggestion: the composer fills it in and a person publishes."""
    if incident.service is None:
        return {}
    status = _SUGGESTED[incident.severity]
    return {component.id: status for component in components
            if incident.service in component.services}


def statuses_on_resolve(affected: Iterable[str], given: Mapping[str, ComponentStatus],
                        held_elsewhere: Iterable[str]) -> dict[str, ComponentStatus]:
    """The component statuses a ``resolved`` update sets: what it names, and
    operational for the other components the incident affected, unless another open
    public incident still holds them (its own updates decide those)."""
    held = set(held_elsewhere)
    result = {component_id: ComponentStatus.OPERATIONAL
              for component_id in affected if component_id not in held}
    result.update(given)
    return result


def published(incident: Incident, now: datetime) -> Transition:
    """Publishing is a change to the incident: its version goes up so that webhook
    consumers can order the ``incident.public_update`` event among the others."""
    return Transition(
        incident=dataclasses.replace(incident, version=incident.version + 1, updated_at=now),
        event_type=EventType.INCIDENT_PUBLIC_UPDATE,
        changes={},
    )


def timeline_line(update: PublicUpdate, component_names: Mapping[str, str]) -> str:
    """The short line responders read on the timeline."""
    affected = ", ".join(f"{component_names.get(component_id, component_id)} "
                         f"{status.value.replace('_', ' ')}"
                         for component_id, status in update.components.items())
    suffix = f" ({affected})" if affected else ""
    return f"Public update published: {update.status.value}{suffix}"


def update_to_dict(update: PublicUpdate) -> dict[str, Any]:
    """A public update as the API, the event and (later) subscribers show it."""
    return {
        "id": update.id,
        "incident_id": update.incident_id,
        "status": update.status.value,
        "title": update.title,
        "body": update.body,
        "components": {key: value.value for key, value in update.components.items()},
        "page_ids": list(update.page_ids),
        "estimated_resolution_at": rfc3339(update.estimated_resolution_at),
        "published_at": rfc3339(update.published_at),
    }
