"""Atlassian Statuspage: a public update on an incident becomes (or updates) a
Statuspage incident, component statuses follow, and updates people post in Statuspage
come back onto the incident's timeline."""

from interlock.connectors.statuspage.driver import StatuspageDriver

__all__ = ["StatuspageDriver"]
