"""A status page snapshot rendered as Atlassian Statuspage's public JSON, Atom and RSS.

The JSON follows Statuspage's public v2 API (``/api/v2/summary.json``, ``status.json``,
``components.json``, ``incidents.json``, ``incidents/unresolved.json``) so that the
widgets and monitors that read a Statuspage page read an Interlock page unchanged.
Shapes as documented at https://doers.statuspage.io/api/v2/ and, field by field, in
MongoDB's mirror of the same API (https://www.mongodb.com/docs/api/doc/cloud-status/
operation/operation-getstatussummary): ``page`` {id, name, url, time_zone, updated_at},
``status`` {indicator, description}, components with ``group``/``group_id``, incidents
with ``incident_updates`` and their ``affected_components``. Scheduled maintenances
(``scheduled_maintenances`` in summary.json, and ``scheduled-maintenances.json``,
``/upcoming.json``, ``/active.json``) as in the same mirror
(https://www.mongodb.com/docs/api/doc/cloud-status/operation/
operation-getallscheduledmaintenances): an incident's fields with ``impact``
"maintenance", ``status`` scheduled/in_progress/completed, plus ``scheduled_for`` and
``scheduled_until``; summary.json lists the upcoming and in-progress ones.

Only what a snapshot holds is rendered, and a snapshot holds only public updates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from xml.etree import ElementTree

from interlock.domain import status_pages as rules
from interlock.domain.status_maintenance import MaintenanceStatus, PublicMaintenance
from interlock.domain.status_pages import Component, ComponentStatus, PublicIncident
from interlock.domain.timestamps import rfc3339
from interlock.services.status_public import Snapshot

ATOM = "http://www.w3.org/2005/Atom"
#: Entries in a feed: the most recent updates across the page's incidents.
FEED_ENTRIES = 50


def page_url(snapshot: Snapshot, base_url: str) -> str:
    return f"{base_url}/status/{snapshot.page.slug}"


def _page(snapshot: Snapshot, base_url: str) -> dict[str, Any]:
    return {"id": snapshot.page.id, "name": snapshot.page.title,
            "url": page_url(snapshot, base_url), "time_zone": "Etc/UTC",
            "updated_at": rfc3339(snapshot.page.updated_at)}


def status(snapshot: Snapshot) -> dict[str, str]:
    indicator, description = rules.indicator(snapshot.status)
    return {"indicator": indicator, "description": description}


def group_id(page_id: str, group: str) -> str:
    """Groups are not rows; Statuspage gives each an id, so derive a stable one."""
    return "grp_" + hashlib.sha256(f"{page_id}\0{group}".encode()).hexdigest()[:24]


def components(snapshot: Snapshot) -> list[dict[str, Any]]:
    """Components in display order, each group once, before its first member."""
    shown: list[dict[str, Any]] = []
    groups: dict[str, dict[str, Any]] = {}
    for component in snapshot.components:
        if component.group is not None and component.group not in groups:
            members = [item for item in snapshot.components if item.group == component.group]
            groups[component.group] = {
                "id": group_id(snapshot.page.id, component.group), "name": component.group,
                "status": rules.worst(item.status for item in members).value,
                "created_at": rfc3339(min(item.created_at for item in members)),
                "updated_at": rfc3339(max(item.updated_at for item in members)),
                "position": len(shown) + 1, "description": None, "showcase": False,
                "start_date": None, "group_id": None, "page_id": snapshot.page.id,
                "group": True, "only_show_if_degraded": False,
                "components": [item.id for item in members]}
            shown.append(groups[component.group])
        shown.append(_component(snapshot, component, len(shown) + 1))
    return shown


def _component(snapshot: Snapshot, component: Component, position: int) -> dict[str, Any]:
    return {"id": component.id, "name": component.name, "status": component.status.value,
            "created_at": rfc3339(component.created_at),
            "updated_at": rfc3339(component.updated_at), "position": position,
            "description": component.description, "showcase": True,
            "start_date": component.created_at.date().isoformat(),
            "group_id": (group_id(snapshot.page.id, component.group)
                         if component.group is not None else None),
            "page_id": snapshot.page.id, "group": False, "only_show_if_degraded": False}


def incident(snapshot: Snapshot, item: PublicIncident, base_url: str) -> dict[str, Any]:
    names = snapshot.component_names()
    updates = []
    before: dict[str, ComponentStatus] = {}
    for update in reversed(item.updates):  # oldest first, to know each old status
        affected = [{"code": component_id, "name": names.get(component_id, component_id),
                     "old_status": before.get(component_id,
                                              ComponentStatus.OPERATIONAL).value,
                     "new_status": new.value}
                    for component_id, new in update.components.items()
                    if component_id in names]
        before.update(update.components)
        updates.append({
            "id": update.id, "status": update.status.value, "body": update.body,
            "incident_id": item.incident_id, "created_at": rfc3339(update.published_at),
            "updated_at": rfc3339(update.published_at),
            "display_at": rfc3339(update.published_at),
            "affected_components": affected, "deliver_notifications": True,
            "custom_tweet": None, "tweet_id": None})
    updates.reverse()
    by_id = {component.id: component for component in snapshot.components}
    return {
        "id": item.incident_id, "name": item.title, "status": item.status.value,
        "created_at": rfc3339(item.created_at), "updated_at": rfc3339(item.updated_at),
        "monitoring_at": rfc3339(item.monitoring_at),
        "resolved_at": rfc3339(item.resolved_at), "impact": item.impact,
        "shortlink": f"{page_url(snapshot, base_url)}#{item.incident_id}",
        "started_at": rfc3339(item.created_at), "page_id": snapshot.page.id,
        "incident_updates": updates,
        "components": [_component(snapshot, by_id[component_id], by_id[component_id].position)
                       for component_id in item.components if component_id in by_id],
    }


def maintenance(snapshot: Snapshot, item: PublicMaintenance, base_url: str
                ) -> dict[str, Any]:
    """A planned maintenance as Statuspage shows one. Its updates are derived from the
    clock (announced, then started, then over): nobody writes them by hand here."""
    now = snapshot.taken_at
    state = item.status(now)
    by_id = {component.id: component for component in snapshot.components}
    shown = [by_id[component_id] for component_id in item.components if component_id in by_id]
    steps = [(MaintenanceStatus.SCHEDULED, item.created_at)]
    if state is not MaintenanceStatus.SCHEDULED:
        steps.append((MaintenanceStatus.IN_PROGRESS, item.scheduled_for))
    if state is MaintenanceStatus.COMPLETED:
        steps.append((MaintenanceStatus.COMPLETED, item.scheduled_until))
    updates = [{
        "id": f"{item.id}-{step.value}", "status": step.value, "body": item.body,
        "incident_id": item.id, "created_at": rfc3339(at), "updated_at": rfc3339(at),
        "display_at": rfc3339(at), "deliver_notifications": True, "custom_tweet": None,
        "tweet_id": None,
        "affected_components": [{"code": component.id, "name": component.name,
                                 "old_status": ComponentStatus.OPERATIONAL.value,
                                 "new_status": ComponentStatus.UNDER_MAINTENANCE.value}
                                for component in shown]} for step, at in reversed(steps)]
    return {
        "id": item.id, "name": item.title, "status": state.value,
        "created_at": rfc3339(item.created_at), "updated_at": rfc3339(item.updated_at),
        "monitoring_at": None,
        "resolved_at": rfc3339(item.scheduled_until)
        if state is MaintenanceStatus.COMPLETED else None,
        "impact": "maintenance",
        "shortlink": f"{page_url(snapshot, base_url)}#{item.id}",
        "started_at": rfc3339(item.scheduled_for), "page_id": snapshot.page.id,
        "incident_updates": updates,
        "components": [_component(snapshot, component, component.position)
                       for component in shown],
        "scheduled_for": rfc3339(item.scheduled_for),
        "scheduled_until": rfc3339(item.scheduled_until),
    }


def documents(snapshot: Snapshot, base_url: str) -> dict[str, Any]:
    """Every JSON document of the page, by its path under ``api/v2/``."""
    page = _page(snapshot, base_url)
    listed = components(snapshot)
    unresolved = [incident(snapshot, item, base_url) for item in snapshot.open]
    upcoming = [maintenance(snapshot, item, base_url) for item in
                snapshot.maintenances_in(MaintenanceStatus.SCHEDULED)]
    active = [maintenance(snapshot, item, base_url) for item in
              snapshot.maintenances_in(MaintenanceStatus.IN_PROGRESS)]
    return {
        "summary.json": {"page": page, "components": listed, "incidents": unresolved,
                         "scheduled_maintenances": [*active, *upcoming],
                         "status": status(snapshot)},
        "scheduled-maintenances.json": {"page": page, "scheduled_maintenances": [
            maintenance(snapshot, item, base_url) for item in snapshot.maintenances]},
        "scheduled-maintenances/upcoming.json": {"page": page,
                                                 "scheduled_maintenances": upcoming},
        "scheduled-maintenances/active.json": {"page": page,
                                               "scheduled_maintenances": active},
        "status.json": {"page": page, "status": status(snapshot)},
        "components.json": {"page": page, "components": listed},
        "incidents.json": {"page": page, "incidents": [
            incident(snapshot, item, base_url) for item in snapshot.recent]},
        "incidents/unresolved.json": {"page": page, "incidents": unresolved},
    }


def encode(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


# -- feeds --------------------------------------------------------------------------------


def _entries(snapshot: Snapshot) -> list[tuple[PublicIncident, Any]]:
    pairs = [(item, update) for item in snapshot.recent for update in item.updates]
    pairs.sort(key=lambda pair: pair[1].published_at, reverse=True)
    return pairs[:FEED_ENTRIES]


def _entry_text(item: PublicIncident, update: Any, names: Mapping[str, str]) -> str:
    affected = ", ".join(f"{names[key]}: {value.label}" for key, value in
                         update.components.items() if key in names)
    lines = [f"{update.status.label}: {update.body}"]
    if affected:
        lines.append(f"Affected: {affected}")
    if update.estimated_resolution_at is not None:
        lines.append(f"Estimated resolution: {_human(update.estimated_resolution_at)}")
    return "\n\n".join(lines)


def atom(snapshot: Snapshot, base_url: str) -> bytes:
    url = page_url(snapshot, base_url)
    ElementTree.register_namespace("", ATOM)
    feed = ElementTree.Element(f"{{{ATOM}}}feed")
    _sub(feed, "id", url)
    _sub(feed, "title", snapshot.page.title)
    _sub(feed, "updated", rfc3339(_updated(snapshot)))
    _link(feed, url, "alternate")
    _link(feed, f"{url}/feed.atom", "self")
    names = snapshot.component_names()
    for item, update in _entries(snapshot):
        entry = _sub(feed, "entry")
        _sub(entry, "id", f"{url}#{update.id}")
        _sub(entry, "title", f"{item.title} — {update.status.label}")
        _sub(entry, "updated", rfc3339(update.published_at))
        _sub(entry, "published", rfc3339(update.published_at))
        _link(entry, f"{url}#{item.incident_id}", "alternate")
        content = _sub(entry, "content", _entry_text(item, update, names))
        content.set("type", "text")
    return _xml(feed)


def rss(snapshot: Snapshot, base_url: str) -> bytes:
    url = page_url(snapshot, base_url)
    root = ElementTree.Element("rss", {"version": "2.0"})
    channel = ElementTree.SubElement(root, "channel")
    for name, value in (("title", snapshot.page.title), ("link", url),
                        ("description", f"Status of {snapshot.page.title}"),
                        ("lastBuildDate", format_datetime(_updated(snapshot)))):
        ElementTree.SubElement(channel, name).text = value
    names = snapshot.component_names()
    for item, update in _entries(snapshot):
        element = ElementTree.SubElement(channel, "item")
        ElementTree.SubElement(element, "title").text = f"{item.title} — {update.status.label}"
        ElementTree.SubElement(element, "link").text = f"{url}#{item.incident_id}"
        ElementTree.SubElement(element, "guid", {"isPermaLink": "false"}).text = update.id
        ElementTree.SubElement(element, "pubDate").text = format_datetime(update.published_at)
        ElementTree.SubElement(element, "description").text = _entry_text(item, update, names)
    return _xml(root)


def _updated(snapshot: Snapshot) -> datetime:
    times: Iterable[datetime] = [snapshot.page.updated_at,
                                 *(item.updated_at for item in snapshot.recent)]
    return max(times).astimezone(UTC)


def _human(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _sub(parent: ElementTree.Element, name: str, text: str | None = None
         ) -> ElementTree.Element:
    tag = f"{{{ATOM}}}{name}" if parent.tag.startswith(f"{{{ATOM}}}") else name
    element = ElementTree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _link(parent: ElementTree.Element, href: str, rel: str) -> None:
    ElementTree.SubElement(parent, f"{{{ATOM}}}link", {"href": href, "rel": rel})


def _xml(root: ElementTree.Element) -> bytes:
    data: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return data
