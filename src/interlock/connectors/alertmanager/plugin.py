"""The Alertmanager connector kind: its settings, and what it can do."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from interlock.connectors.alertmanager.driver import LINK_KIND, AlertmanagerDriver
from interlock.domain.connectors import FieldMapping, Owner
from interlock.ports.plugins import ConnectorPlugin, NoCredentials, ToolUrl

WEEK_MINUTES = 7 * 24 * 60
Minutes = (Annotated[StrictInt, Field(ge=1, le=WEEK_MINUTES)]
           | Annotated[StrictFloat, Field(ge=1, le=WEEK_MINUTES)])


class AlertmanagerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: ToolUrl = Field(title="Alertmanager URL",
                         description="Alertmanager's base URL, e.g. http://alertmanager:9093")
    duration_minutes: Minutes = Field(
        240, title="Silence length (minutes)",
        description="How long a silence lasts, in minutes between 1 and 10080 (a week)")
    created_by: str = Field("interlock", min_length=1, max_length=200, title="Created by",
                            description="The author Alertmanager shows on each silence")


PLUGIN = ConnectorPlugin(
    kind="alertmanager",
    title="Prometheus Alertmanager",
    description="Acknowledging an incident silences its alerts in Alertmanager; "
                "resolving or reopening it expires the silence.",
    settings=AlertmanagerSettings,
    credentials=NoCredentials,
    driver=AlertmanagerDriver,
    link_kind=LINK_KIND,
    default_mapping=FieldMapping(owners={"status": Owner.INTERLOCK,
                                         "comments": Owner.INTERLOCK}),
    reconciles=True,
    uses_alerts=True,
)
