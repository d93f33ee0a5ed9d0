"""Request and response bodies for status pages, their components and public updates.

The patterns below say in the schema what the domain checks, so that a request the
schema allows is one the API accepts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, StrictInt
from pydantic.json_schema import WithJsonSchema

from interlock.api.schemas import NO_NUL, DateTime, omissible, text
from interlock.api.schemas import Request as Body
from interlock.domain import status_maintenance as planned
from interlock.domain import status_pages as rules
from interlock.domain.status_pages import ComponentStatus, PageVisibility, UpdateStatus
from interlock.domain.timestamps import rfc3339

Name = text(rules.NAME_MAX, 1)
Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=rules.SLUG.pattern,
                            examples=["acme"])]
WebUrl = Annotated[str, Field(max_length=rules.URL_MAX,
                              pattern=r"^[hH][tT][tT][pP][sS]?://[^\u0000]*$")]
#: A service name with something other than spaces in it.
Service = Annotated[str, Field(min_length=1, max_length=200,
                               pattern=r"^[^\u0000]*[^\u0000\s][^\u0000]*$")]
Services = Annotated[list[Service], Field(min_length=1, max_length=rules.SERVICES_MAX)]
ComponentStatuses = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=40)], ComponentStatus],
    Field(max_length=rules.COMPONENTS_MAX),
    WithJsonSchema({"type": "object",
                    "additionalProperties": {"enum": [status.value
                                                      for status in ComponentStatus]},
                    "propertyNames": {"minLength": 1, "maxLength": 40, "pattern": NO_NUL},
                    "maxProperties": rules.COMPONENTS_MAX,
                    "description": "Component id → its status"})]


class PageCreate(Body):
    name: Name  # type: ignore[valid-type]
    slug: Slug = Field(description="The page's path: /status/{slug}")
    title: text(rules.TITLE_MAX, 1) | None = Field(  # type: ignore[valid-type]
        None, description="Shown at the top of the page; the name when absent")
    logo_url: WebUrl | None = None
    link_url: WebUrl | None = Field(None, description="Where the logo links back to")
    visibility: PageVisibility = Field(
        PageVisibility.PUBLIC,
        description="public: anyone; internal: people signed in to the console")


class PagePatch(Body):
    """Only the fields present are changed; null clears ``logo_url`` and ``link_url``."""

    name: Name = omissible()  # type: ignore[valid-type]
    slug: Slug = omissible()
    title: text(rules.TITLE_MAX, 1) = omissible()  # type: ignore[valid-type]
    logo_url: WebUrl | None = None
    link_url: WebUrl | None = None
    visibility: PageVisibility = omissible()


class PageOut(BaseModel):
    id: str = Field(examples=["spg_01JD3K2Q6W4Y8Z0A1B2C3D4E5F"])
    name: str
    slug: str
    title: str
    logo_url: str | None
    link_url: str | None
    visibility: PageVisibility
    version: int
    url: str = Field(description="The public page")
    created_at: datetime
    updated_at: datetime


class ComponentCreate(Body):
    name: Name  # type: ignore[valid-type]
    services: Services = Field(description="The services whose incidents affect it")
    group: text(rules.NAME_MAX, 1) | None = None  # type: ignore[valid-type]
    description: text(1000) | None = None  # type: ignore[valid-type]
    status: ComponentStatus = ComponentStatus.OPERATIONAL


def _whole(value: object) -> object:
    """JSON Schema counts 3.0 as an integer: take it as 3 (strings and 3.5 stay refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class ComponentPatch(Body):
    """Only the fields present are changed; null clears ``group`` and ``description``."""

    name: Name = omissible()  # type: ignore[valid-type]
    services: Services = omissible()
    group: text(rules.NAME_MAX, 1) | None = None  # type: ignore[valid-type]
    description: text(1000) | None = None  # type: ignore[valid-type]
    status: ComponentStatus = omissible()
    # The Field before the validator: after it, pydantic wrote "ge"/"le" into the
    # OpenAPI schema, which JSON Schema ignores, so clients were told any integer goes.
    position: Annotated[StrictInt, Field(ge=0, le=10_000), BeforeValidator(_whole)
                        ] = omissible()


class ComponentOut(BaseModel):
    id: str = Field(examples=["cmp_01JD3K2Q6W4Y8Z0A1B2C3D4E5F"])
    page_id: str
    name: str
    group: str | None
    description: str | None
    services: list[str]
    status: ComponentStatus
    position: int
    created_at: datetime
    updated_at: datetime


class PublicUpdateCreate(Body):
    status: UpdateStatus
    body: text(rules.BODY_MAX, 1) = Field(  # type: ignore[valid-type]
        description=f"What customers read, at most {rules.BODY_MAX} characters")
    components: ComponentStatuses = Field(
        default_factory=dict,
        description="The components it affects and their status; the update goes on "
                    "their pages (the first update must name one)")
    title: text(rules.TITLE_MAX, 1) | None = Field(  # type: ignore[valid-type]
        None, description="The public name of the incident; the last one published, "
                          "or the incident's title, when absent")
    estimated_resolution_at: DateTime | None = None


class PublicUpdateOut(BaseModel):
    id: str = Field(examples=["pub_01JD3K2Q6W4Y8Z0A1B2C3D4E5F"])
    incident_id: str
    status: UpdateStatus
    title: str
    body: str
    components: dict[str, ComponentStatus]
    page_ids: list[str]
    estimated_resolution_at: datetime | None
    published_at: datetime


ComponentIds = Annotated[list[Annotated[str, Field(min_length=1, max_length=40,
                                                   pattern=NO_NUL)]],
                         Field(min_length=1, max_length=planned.COMPONENTS_MAX)]


class StatusMaintenanceCreate(Body):
    title: text(planned.TITLE_MAX, 1)  # type: ignore[valid-type]
    body: text(rules.BODY_MAX, 1) = Field(  # type: ignore[valid-type]
        description="What customers read about the work")
    components: ComponentIds = Field(description="Ids of components of this page; they "
                                                 "show under_maintenance during the window")
    scheduled_for: DateTime
    scheduled_until: DateTime = Field(
        description=f"After scheduled_for, at most {planned.LONGEST.days} days later")


class StatusMaintenancePatch(Body):
    """Only the fields present are changed; ``cancelled`` true takes it off the page."""

    title: text(planned.TITLE_MAX, 1) = omissible()  # type: ignore[valid-type]
    body: text(rules.BODY_MAX, 1) = omissible()  # type: ignore[valid-type]
    components: ComponentIds = omissible()
    scheduled_for: DateTime = omissible()
    scheduled_until: DateTime = omissible()
    cancelled: bool = omissible()


class StatusMaintenanceOut(BaseModel):
    id: str = Field(examples=["smt_01JD3K2Q6W4Y8Z0A1B2C3D4E5F"])
    page_id: str
    title: str
    body: str
    components: list[str]
    scheduled_for: datetime
    scheduled_until: datetime
    status: planned.MaintenanceStatus = Field(description="From the clock; a cancelled "
                                                          "one is completed")
    cancelled: bool
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime


def maintenance_view(item: planned.PublicMaintenance, now: datetime) -> dict[str, Any]:
    return {"id": item.id, "page_id": item.page_id, "title": item.title, "body": item.body,
            "components": list(item.components),
            "scheduled_for": rfc3339(item.scheduled_for),
            "scheduled_until": rfc3339(item.scheduled_until),
            "status": item.status(now).value, "cancelled": item.cancelled_at is not None,
            "cancelled_at": rfc3339(item.cancelled_at),
            "created_at": rfc3339(item.created_at), "updated_at": rfc3339(item.updated_at)}


def page_view(page: rules.StatusPage, base_url: str) -> dict[str, Any]:
    return {"id": page.id, "name": page.name, "slug": page.slug, "title": page.title,
            "logo_url": page.logo_url, "link_url": page.link_url,
            "visibility": page.visibility.value, "version": page.version,
            "url": f"{base_url}/status/{page.slug}",
            "created_at": rfc3339(page.created_at), "updated_at": rfc3339(page.updated_at)}


def component_view(component: rules.Component) -> dict[str, Any]:
    return {"id": component.id, "page_id": component.page_id, "name": component.name,
            "group": component.group, "description": component.description,
            "services": list(component.services), "status": component.status.value,
            "position": component.position, "created_at": rfc3339(component.created_at),
            "updated_at": rfc3339(component.updated_at)}
