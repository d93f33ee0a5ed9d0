"""The ServiceNow connector kind: its settings and credentials, and what it can do."""

from __future__ import annotations

from interlock.connectors.servicenow.config import ServiceNowCredentials, ServiceNowSettings
from interlock.connectors.servicenow.driver import DEFAULT_MAPPING, LINK_KIND, ServiceNowDriver
from interlock.ports.plugins import ConnectorPlugin

PLUGIN = ConnectorPlugin(
    kind="servicenow",
    title="ServiceNow",
    description="A record in the incident table per shared incident (Table API): state, "
                "urgency and impact, work notes or comments; a Business Rule calls the "
                "hook so state, assignee and notes come back.",
    settings=ServiceNowSettings,
    credentials=ServiceNowCredentials,
    driver=ServiceNowDriver,
    link_kind=LINK_KIND,
    default_mapping=DEFAULT_MAPPING,
    reconciles=True,
)
