"""The PagerDuty connector kind: its settings and credentials, and what it can do."""

from __future__ import annotations

from interlock.connectors.pagerduty.config import PagerDutyCredentials, PagerDutySettings
from interlock.connectors.pagerduty.driver import DEFAULT_MAPPING, LINK_KIND, PagerDutyDriver
from interlock.ports.plugins import ConnectorPlugin

PLUGIN = ConnectorPlugin(
    kind="pagerduty",
    title="PagerDuty",
    description="A PagerDuty incident per shared incident (REST API v2): urgency, "
                "acknowledge, resolve and notes follow; PagerDuty's v3 webhooks bring "
                "acknowledgements, reassignments and notes back.",
    settings=PagerDutySettings,
    credentials=PagerDutyCredentials,
    driver=PagerDutyDriver,
    link_kind=LINK_KIND,
    default_mapping=DEFAULT_MAPPING,
    reconciles=True,
)
