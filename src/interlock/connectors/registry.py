"""The drivers this build of Interlock ships, by kind."""

from __future__ import annotations

from interlock.connectors.alertmanager import AlertmanagerDriver
from interlock.connectors.http import HttpDriver
from interlock.connectors.jira import JiraDriver
from interlock.connectors.slack import SlackDriver
from interlock.ports.connector import ConnectorDriver


def drivers() -> dict[str, ConnectorDriver]:
    found: list[ConnectorDriver] = [AlertmanagerDriver(), JiraDriver(), SlackDriver(),
                                    HttpDriver()]
    return {driver.kind: driver for driver in found}
