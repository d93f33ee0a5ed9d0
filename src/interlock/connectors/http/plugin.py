"""The generic HTTP connector kind: a tool with an HTTP API and no connector of its own,
configured without code (templated requests, JMESPath mappings, an HMAC-checked hook)."""

from __future__ import annotations

from interlock.connectors.http.config import HttpCredentials, HttpSettings
from interlock.connectors.http.driver import DEFAULT_MAPPING, LINK_KIND, HttpDriver
from interlock.ports.plugins import ConnectorPlugin

PLUGIN = ConnectorPlugin(
    kind="http",
    title="Generic HTTP",
    description="Any tool with an HTTP API: a templated request per event type, JMESPath "
                "for what comes back, an optional fetch of current state, and an inbound "
                "hook checked by HMAC.",
    settings=HttpSettings,
    credentials=HttpCredentials,
    driver=HttpDriver,
    link_kind=LINK_KIND,
    default_mapping=DEFAULT_MAPPING,
    reconciles=True,
)
