"""The Jira Cloud connector: an issue per incident, synced both ways over REST API v3."""

from interlock.connectors.jira.driver import JiraDriver

__all__ = ["JiraDriver"]
