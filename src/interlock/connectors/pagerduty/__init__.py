"""The PagerDuty connector: an incident per Interlock incident over REST API v2, and
PagerDuty's v3 webhooks back."""

from interlock.connectors.pagerduty.driver import PagerDutyDriver

__all__ = ["PagerDutyDriver"]
