"""The few Statuspage REST v1 calls the connector makes.

Every call authenticates with ``Authorization: OAuth <api key>`` (Statuspage's scheme),
waits for its slot under the 1 request/s limit (:mod:`.throttle`), and goes through
the injected :class:`ToolHttp`, so the worker records it and the target guard applies.
Errors come back as ``ToolFailed`` from ``ToolResponse.expect``: a 429 or 5xx is
retryable (with Statuspage's Retry-After), another 4xx is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from interlock.connectors.statuspage.config import StatuspageCredentials, StatuspageSettings
from interlock.connectors.statuspage.throttle import Throttle
from interlock.domain.errors import ToolFailed
from interlock.ports.connector import ToolHttp, ToolResponse


class StatuspageApi:
    def __init__(self, http: ToolHttp, settings: StatuspageSettings,
                 credentials: StatuspageCredentials, throttle: Throttle) -> None:
        self._http = http
        self._throttle = throttle
        self._key = credentials.api_key.get_secret_value()
        self._base = f"{settings.base_url}/v1/pages/{quote(settings.page_id, safe='')}"
        self.page_id = settings.page_id

    def incident_url(self, incident_id: str) -> str:
        """Where a person opens the incident in Statuspage's management UI."""
        return (f"https://manage.statuspage.io/pages/{quote(self.page_id, safe='')}"
                f"/incidents/{quote(incident_id, safe='')}")

    async def create_incident(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        response = await self._call("POST", "/incidents", {"incident": dict(fields)})
        answer = _object(response.expect("creating the Statuspage incident"))
        if not isinstance(answer.get("id"), str):
            raise ToolFailed("Statuspage created an incident but did not say its id",
                             retryable=False, status_code=response.status)
        return answer

    async def update_incident(self, incident_id: str, fields: Mapping[str, Any]
                              ) -> dict[str, Any]:
        response = await self._call("PATCH", f"/incidents/{_segment(incident_id)}",
                                    {"incident": dict(fields)})
        return _object(response.expect(f"updating Statuspage incident {incident_id}"))

    async def incident(self, incident_id: str) -> dict[str, Any]:
        response = await self._call("GET", f"/incidents/{_segment(incident_id)}")
        return _object(response.expect(f"reading Statuspage incident {incident_id}"))

    async def _call(self, method: str, path: str, body: Any = None) -> ToolResponse:
        await self._throttle.wait(self._key)
        try:
            return await self._http.request(
                method, f"{self._base}{path}", json=body,
                headers={"Authorization": f"OAuth {self._key}",
                         "Accept": "application/json"})
        finally:
            # Statuspage counts a request when it arrives, which may be late (a slow
            # network, a busy machine): the next one waits a full interval from the answer.
            self._throttle.answered(self._key)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _object(response: ToolResponse) -> dict[str, Any]:
    if not response.body:
        return {}
    answer = response.json()
    if not isinstance(answer, dict):
        raise ToolFailed(f"Statuspage answered {response.status} with JSON that is not an "
                         "object", retryable=False, status_code=response.status)
    return answer


def updates_of(incident: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The incident's updates, oldest first (Statuspage lists them newest first)."""
    updates = [item for item in incident.get("incident_updates") or []
               if isinstance(item, dict) and isinstance(item.get("id"), str)]
    return list(reversed(updates))
