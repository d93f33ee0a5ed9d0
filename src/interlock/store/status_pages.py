"""Status page rows: pages, components and their status history, public updates, and
each page's view of an incident."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from interlock.domain.errors import Conflict
from interlock.domain.status_maintenance import PublicMaintenance
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
from interlock.store.tables import (
    component_status_changes,
    incidents,
    public_incidents,
    public_updates,
    status_components,
    status_maintenances,
    status_pages,
)

#: A page's incident whose incident has since been made private: never shown. A
#: correlated EXISTS, so each row costs one lookup by the incidents' unique id.
_NOW_PRIVATE = sa.exists().where(incidents.c.id == public_incidents.c.incident_id,
                                 incidents.c.visibility == "private")


class SqlStatusPages:
    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    # -- pages ---------------------------------------------------------------------------

    def insert_page(self, page: StatusPage) -> None:
        try:
            with self._connection.begin_nested():
                self._connection.execute(status_pages.insert().values(**_page_row(page)))
        except sa.exc.IntegrityError as error:
            raise Conflict(f"a status page already has the slug {page.slug}") from error

    def save_page(self, page: StatusPage) -> None:
        values = _page_row(page)
        del values["id"], values["created_at"]
        try:
            with self._connection.begin_nested():
                self._connection.execute(status_pages.update().where(
                    status_pages.c.id == page.id).values(**values))
        except sa.exc.IntegrityError as error:
            raise Conflict(f"a status page already has the slug {page.slug}") from error

    def get_page(self, page_id: str) -> StatusPage | None:
        return self._one_page(status_pages.c.id == page_id)

    def find_page(self, slug: str) -> StatusPage | None:
        return self._one_page(status_pages.c.slug == slug)

    def _one_page(self, where: Any) -> StatusPage | None:
        row = self._connection.execute(sa.select(status_pages).where(where)).mappings().first()
        return _page(row) if row else None

    def get_pages(self, page_ids: Collection[str]) -> dict[str, StatusPage]:
        query = sa.select(status_pages).where(status_pages.c.id.in_(sorted(page_ids)))
        return {row["id"]: _page(row) for row in self._connection.execute(query).mappings()}

    def delete_page(self, page_id: str) -> bool:
        self._connection.execute(public_incidents.delete().where(
            public_incidents.c.page_id == page_id))
        self._connection.execute(component_status_changes.delete().where(
            component_status_changes.c.component_id.in_(
                sa.select(status_components.c.id).where(
                    status_components.c.page_id == page_id))))
        self._connection.execute(status_components.delete().where(
            status_components.c.page_id == page_id))
        return self._connection.execute(
            status_pages.delete().where(status_pages.c.id == page_id)).rowcount == 1

    def list_pages(self, *, after: str | None, limit: int) -> list[StatusPage]:
        query = sa.select(status_pages).order_by(status_pages.c.id).limit(limit)
        if after is not None:
            query = query.where(status_pages.c.id > after)
        return [_page(row) for row in self._connection.execute(query).mappings()]

    def touch(self, page_ids: Collection[str], at: datetime) -> None:
        """What these pages show changed: their version goes up (caches follow)."""
        if page_ids:
            self._connection.execute(status_pages.update().where(
                status_pages.c.id.in_(sorted(page_ids))).values(
                version=status_pages.c.version + 1, updated_at=at))

    def hidden_count(self, page_id: str) -> int:
        """How many of the page's incidents were made private since they were published
        (part of the cache key: making one private must take it off the page)."""
        query = sa.select(sa.func.count()).select_from(public_incidents).where(
            public_incidents.c.page_id == page_id, _NOW_PRIVATE)
        return int(self._connection.execute(query).scalar_one())

    # -- components ----------------------------------------------------------------------

    def insert_component(self, component: Component) -> None:
        self._connection.execute(status_components.insert().values(
            **_component_row(component)))

    def get_component(self, component_id: str) -> Component | None:
        row = self._connection.execute(sa.select(status_components).where(
            status_components.c.id == component_id)).mappings().first()
        return _component(row) if row else None

    def get_components(self, component_ids: Collection[str]) -> dict[str, Component]:
        query = sa.select(status_components).where(
            status_components.c.id.in_(sorted(component_ids)))
        return {row["id"]: _component(row) for row in self._connection.execute(query).mappings()}

    def components(self, page_id: str) -> list[Component]:
        """The page's components in display order."""
        query = sa.select(status_components).where(
            status_components.c.page_id == page_id).order_by(
            status_components.c.position, status_components.c.id)
        return [_component(row) for row in self._connection.execute(query).mappings()]

    def components_for_service(self, service: str) -> list[Component]:
        """Every page's components (for suggestions); few rows, filtered in Python
        because ``services`` is a JSON list on both databases."""
        query = sa.select(status_components).order_by(status_components.c.page_id,
                                                      status_components.c.position)
        return [component for component in
                (_component(row) for row in self._connection.execute(query).mappings())
                if service in component.services]

    def save_component(self, component: Component) -> None:
        values = _component_row(component)
        del values["id"], values["created_at"], values["page_id"]
        self._connection.execute(status_components.update().where(
            status_components.c.id == component.id).values(**values))

    def delete_component(self, component_id: str) -> bool:
        self._connection.execute(component_status_changes.delete().where(
            component_status_changes.c.component_id == component_id))
        return self._connection.execute(status_components.delete().where(
            status_components.c.id == component_id)).rowcount == 1

    def next_position(self, page_id: str) -> int:
        query = sa.select(sa.func.max(status_components.c.position)).where(
            status_components.c.page_id == page_id)
        current = self._connection.execute(query).scalar_one()
        return 0 if current is None else int(current) + 1

    # -- status history ------------------------------------------------------------------

    def record_statuses(self, changes: Sequence[StatusChange]) -> None:
        if changes:
            self._connection.execute(component_status_changes.insert(), [
                {"component_id": change.component_id, "status": change.status.value,
                 "at": change.at} for change in changes])

    def history(self, component_ids: Collection[str], since: datetime
                ) -> dict[str, list[StatusChange]]:
        """Each component's changes since ``since``, oldest first, led by the last change
        before it (the status the component had at ``since``)."""
        table = component_status_changes
        ids = sorted(component_ids)
        found: dict[str, list[StatusChange]] = {component_id: [] for component_id in ids}
        if not ids:
            return found
        latest_before = sa.select(table.c.component_id, sa.func.max(table.c.position)
                                  .label("position")).where(
            table.c.component_id.in_(ids), table.c.at < since).group_by(table.c.component_id)
        positions = [row.position for row in self._connection.execute(latest_before)]
        query = sa.select(table).where(
            sa.or_(sa.and_(table.c.component_id.in_(ids), table.c.at >= since),
                   table.c.position.in_(positions))).order_by(table.c.at, table.c.position)
        for row in self._connection.execute(query).mappings():
            found[row["component_id"]].append(StatusChange(
                row["component_id"], ComponentStatus(row["status"]), row["at"]))
        return found

    # -- public updates and incidents ----------------------------------------------------

    def insert_update(self, update: PublicUpdate) -> None:
        self._connection.execute(public_updates.insert().values(
            id=update.id, incident_id=update.incident_id, status=update.status.value,
            title=update.title, body=update.body,
            components={key: value.value for key, value in update.components.items()},
            page_ids=list(update.page_ids),
            estimated_resolution_at=update.estimated_resolution_at,
            published_at=update.published_at, author=update.author))

    def updates(self, incident_ids: Collection[str]) -> dict[str, list[PublicUpdate]]:
        """Each incident's public updates, newest first."""
        ids = sorted(incident_ids)
        found: dict[str, list[PublicUpdate]] = {incident_id: [] for incident_id in ids}
        if not ids:
            return found
        query = sa.select(public_updates).where(public_updates.c.incident_id.in_(ids)
                                                ).order_by(public_updates.c.position.desc())
        for row in self._connection.execute(query).mappings():
            found[row["incident_id"]].append(_update(row))
        return found

    def put_incident(self, item: PublicIncident) -> None:
        """Insert or replace the page's view of the incident."""
        table = public_incidents
        self._connection.execute(table.delete().where(
            table.c.page_id == item.page_id, table.c.incident_id == item.incident_id))
        self._connection.execute(table.insert().values(
            page_id=item.page_id, incident_id=item.incident_id, title=item.title,
            status=item.status.value, impact=item.impact,
            components={key: value.value for key, value in item.components.items()},
            created_at=item.created_at, updated_at=item.updated_at,
            resolved_at=item.resolved_at, monitoring_at=item.monitoring_at,
            estimated_resolution_at=item.estimated_resolution_at))

    def incident_views(self, incident_id: str) -> list[PublicIncident]:
        """Every page's view of one incident (to publish its next update)."""
        query = sa.select(public_incidents).where(public_incidents.c.incident_id == incident_id)
        return [_public_incident(row) for row in self._connection.execute(query).mappings()]

    def page_incidents(self, page_id: str, *, open_only: bool = False, limit: int = 50
                       ) -> list[PublicIncident]:
        """The page's incidents, most recently updated first, without their updates;
        never one that is private now."""
        table = public_incidents
        query = sa.select(table).where(
            table.c.page_id == page_id, ~_NOW_PRIVATE
        ).order_by(table.c.updated_at.desc(), table.c.incident_id).limit(limit)
        if open_only:
            query = query.where(table.c.status != UpdateStatus.RESOLVED.value)
        return [_public_incident(row) for row in self._connection.execute(query).mappings()]

    # -- planned maintenance -------------------------------------------------------------

    def insert_maintenance(self, item: PublicMaintenance) -> None:
        self._connection.execute(status_maintenances.insert().values(**_maintenance_row(item)))

    def save_maintenance(self, item: PublicMaintenance) -> None:
        values = _maintenance_row(item)
        del values["id"], values["page_id"], values["created_at"]
        self._connection.execute(status_maintenances.update().where(
            status_maintenances.c.id == item.id).values(**values))

    def get_maintenance(self, maintenance_id: str) -> PublicMaintenance | None:
        row = self._connection.execute(sa.select(status_maintenances).where(
            status_maintenances.c.id == maintenance_id)).mappings().first()
        return _maintenance(row) if row else None

    def delete_maintenance(self, maintenance_id: str) -> bool:
        return self._connection.execute(status_maintenances.delete().where(
            status_maintenances.c.id == maintenance_id)).rowcount == 1

    def maintenances(self, page_id: str, *, limit: int = 50, shown_only: bool = False
                     ) -> list[PublicMaintenance]:
        """The page's maintenances, latest window first (upcoming ones lead); with
        ``shown_only``, never a cancelled one."""
        table = status_maintenances
        query = sa.select(table).where(table.c.page_id == page_id).order_by(
            table.c.scheduled_for.desc(), table.c.id.desc()).limit(limit)
        if shown_only:
            query = query.where(table.c.cancelled_at.is_(None))
        return [_maintenance(row) for row in self._connection.execute(query).mappings()]

    def maintenance_phase(self, page_id: str, now: datetime) -> int:
        """How many starts and ends of the page's (uncancelled) windows lie at or before
        ``now``: part of the cache key, as a window starting or ending changes the page
        with nobody changing anything."""
        table = status_maintenances
        query = sa.select(
            sa.func.count().filter(table.c.scheduled_for <= now),
            sa.func.count().filter(table.c.scheduled_until <= now),
        ).where(table.c.page_id == page_id, table.c.cancelled_at.is_(None))
        started, ended = self._connection.execute(query).one()
        return int(started or 0) + int(ended or 0)


def _maintenance_row(item: PublicMaintenance) -> dict[str, Any]:
    return {"id": item.id, "page_id": item.page_id, "title": item.title, "body": item.body,
            "components": list(item.components), "scheduled_for": item.scheduled_for,
            "scheduled_until": item.scheduled_until, "cancelled_at": item.cancelled_at,
            "created_at": item.created_at, "updated_at": item.updated_at}


def _maintenance(row: sa.RowMapping) -> PublicMaintenance:
    return PublicMaintenance(
        id=row["id"], page_id=row["page_id"], title=row["title"], body=row["body"],
        components=tuple(row["components"] or ()), scheduled_for=row["scheduled_for"],
        scheduled_until=row["scheduled_until"], cancelled_at=row["cancelled_at"],
        created_at=row["created_at"], updated_at=row["updated_at"])


def _page_row(page: StatusPage) -> dict[str, Any]:
    return {"id": page.id, "name": page.name, "slug": page.slug, "title": page.title,
            "logo_url": page.logo_url, "link_url": page.link_url,
            "visibility": page.visibility.value, "version": page.version,
            "created_at": page.created_at, "updated_at": page.updated_at}


def _page(row: sa.RowMapping) -> StatusPage:
    return StatusPage(id=row["id"], name=row["name"], slug=row["slug"], title=row["title"],
                      logo_url=row["logo_url"], link_url=row["link_url"],
                      visibility=PageVisibility(row["visibility"]), version=row["version"],
                      created_at=row["created_at"], updated_at=row["updated_at"])


def _component_row(component: Component) -> dict[str, Any]:
    return {"id": component.id, "page_id": component.page_id, "name": component.name,
            "group_name": component.group, "description": component.description,
            "services": list(component.services), "status": component.status.value,
            "position": component.position, "created_at": component.created_at,
            "updated_at": component.updated_at}


def _component(row: sa.RowMapping) -> Component:
    return Component(id=row["id"], page_id=row["page_id"], name=row["name"],
                     group=row["group_name"], description=row["description"],
                     services=tuple(row["services"] or ()),
                     status=ComponentStatus(row["status"]), position=row["position"],
                     created_at=row["created_at"], updated_at=row["updated_at"])


def _update(row: sa.RowMapping) -> PublicUpdate:
    return PublicUpdate(
        id=row["id"], incident_id=row["incident_id"], status=UpdateStatus(row["status"]),
        title=row["title"], body=row["body"],
        components={key: ComponentStatus(value) for key, value in
                    (row["components"] or {}).items()},
        page_ids=tuple(row["page_ids"] or ()),
        estimated_resolution_at=row["estimated_resolution_at"],
        published_at=row["published_at"], author=row["author"])


def _public_incident(row: sa.RowMapping) -> PublicIncident:
    return PublicIncident(
        page_id=row["page_id"], incident_id=row["incident_id"], title=row["title"],
        status=UpdateStatus(row["status"]), impact=row["impact"],
        components={key: ComponentStatus(value) for key, value in
                    (row["components"] or {}).items()},
        created_at=row["created_at"], updated_at=row["updated_at"],
        resolved_at=row["resolved_at"], monitoring_at=row["monitoring_at"],
        estimated_resolution_at=row["estimated_resolution_at"])
