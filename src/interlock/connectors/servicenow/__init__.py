"""The ServiceNow connector: a record in the incident table per Interlock incident over
the Table API, and a Business Rule's calls back."""

from interlock.connectors.servicenow.driver import ServiceNowDriver

__all__ = ["ServiceNowDriver"]
