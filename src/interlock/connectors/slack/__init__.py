"""Slack: incident cards in a channel, updates in their threads, and buttons and a
``/incident`` slash command that act on incidents from Slack."""

from interlock.connectors.slack.driver import SlackDriver

__all__ = ["SlackDriver"]
