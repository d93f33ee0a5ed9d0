"""The Atlassian Statuspage connector kind: its settings and credentials, and what it
can do (push public updates, pull what people post there on reconcile)."""

from __future__ import annotations

from interlock.connectors.statuspage.config import StatuspageCredentials, StatuspageSettings
from interlock.connectors.statuspage.driver import DEFAULT_MAPPING, LINK_KIND, StatuspageDriver
from interlock.ports.plugins import ConnectorPlugin

PLUGIN = ConnectorPlugin(
    kind="statuspage",
    title="Atlassian Statuspage",
    description="Public updates on incidents become Statuspage incidents (status, body, "
                "component statuses); updates people post there come back to the timeline.",
    settings=StatuspageSettings,
    credentials=StatuspageCredentials,
    driver=StatuspageDriver,
    link_kind=LINK_KIND,
    default_mapping=DEFAULT_MAPPING,
    reconciles=True,
)
