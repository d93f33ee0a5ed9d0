"""The drivers this build of Interlock ships, by kind."""

from __future__ import annotations

from interlock.connectors.alertmanager import AlertmanagerDriver
from interlock.connectors.jira import JiraDriver
from interlock.connectors.pagerduty import PagerDutyDriver
from interlock.connectors.servicenow import ServiceNowDriver
from interlock.connectors.slack import SlackDriver
from interlock.ports.connector import ConnectorDriver


def drivers() -> dict[str, ConnectorDriver]:
    found: list[ConnectorDriver] = [AlertmanagerDriver(), JiraDriver(), SlackDriver()]
    found.append(PagerDutyDriver())
    found.append(ServiceNowDriver())
    return {driver.kind: driver for driver in found}
