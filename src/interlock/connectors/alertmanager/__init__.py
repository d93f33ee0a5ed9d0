"""The Alertmanager connector: acknowledging an incident silences its alerts."""

from interlock.connectors.alertmanager.driver import AlertmanagerDriver

__all__ = ["AlertmanagerDriver"]
