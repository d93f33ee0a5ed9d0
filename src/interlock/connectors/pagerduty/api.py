"""The few PagerDuty REST API v2 calls the connector makes, and nothing else.

Every call sends ``Authorization: Token token=<key>`` and the versioning ``Accept``
header; every write also sends ``From`` (the email of the user Interlock acts as),
which PagerDuty requires on writes and records as who made the change.

Rate limits: PagerDuty allows 960 requests a minute per API key (more for none), and
incident creation is "heavily rate limited" on top (developer.pagerduty.com, REST API
Rate Limits; Incident Creation API). A limited request is answered 429 with
``ratelimit-reset``, the seconds until the window resets (not ``Retry-After``). A short
wait is taken here, once; a longer one becomes a retryable ToolFailed whose
``retry_after`` is that wait, so the sync queue tries the job again then instead of
holding a worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from interlock.domain.errors import ToolFailed
from interlock.ports.connector import ToolHttp, ToolResponse

ACCEPT = "application/vnd.pagerduty+json;version=2"
#: The longest ratelimit-reset waited for in the call itself, in seconds.
INLINE_WAIT = 2.0
#: Notes read at most per incident (PagerDuty answers them all in one list).
NOTES_MAX = 1000

Sleep = Callable[[float], Awaitable[None]]


class PagerDutyApi:
    def __init__(self, http: ToolHttp, api_base: str, api_key: str, from_email: str, *,
                 sleep: Sleep = asyncio.sleep) -> None:
        self._http = http
        self._base = api_base.rstrip("/")
        self._headers = {"Authorization": f"Token token={api_key}", "Accept": ACCEPT}
        self._from = from_email
        self._sleep = sleep

    async def create_incident(self, incident: Mapping[str, Any]) -> dict[str, Any]:
        """The new incident. A 400 because an open incident already has this
        ``incident_key`` on the service raises DuplicateKey: the caller adopts it."""
        response = await self._call("POST", "/incidents", {"incident": dict(incident)},
                                    write=True)
        if response.status == 400 and "dedup key" in _error_text(response):
            raise DuplicateKey(_error_text(response))
        return _wrapped(response, "incident", "creating the PagerDuty incident")

    async def find_incident(self, incident_key: str, service_id: str) -> dict[str, Any] | None:
        """The open incident on the service carrying ``incident_key``, if any (the one
        that made PagerDuty refuse a second)."""
        query = urlencode([("incident_key", incident_key), ("service_ids[]", service_id),
                           ("statuses[]", "triggered"), ("statuses[]", "acknowledged"),
                           ("date_range", "all")])
        response = await self._call("GET", f"/incidents?{query}")
        answer = _object(response.expect("looking up the PagerDuty incident by key"))
        found = [item for item in answer.get("incidents") or [] if isinstance(item, dict)]
        return found[0] if found else None

    async def update_incident(self, incident_id: str, fields: Mapping[str, Any]
                              ) -> dict[str, Any]:
        body = {"incident": {"type": "incident_reference", **fields}}
        response = await self._call("PUT", f"/incidents/{_path(incident_id)}", body,
                                    write=True)
        return _wrapped(response, "incident", f"updating PagerDuty incident {incident_id}")

    async def incident(self, incident_id: str) -> dict[str, Any]:
        response = await self._call("GET", f"/incidents/{_path(incident_id)}")
        return _wrapped(response, "incident", f"reading PagerDuty incident {incident_id}")

    async def notes(self, incident_id: str) -> list[dict[str, Any]]:
        """The incident's notes, oldest first."""
        response = await self._call("GET", f"/incidents/{_path(incident_id)}/notes")
        answer = _object(response.expect(f"reading the notes of PagerDuty incident "
                                         f"{incident_id}"))
        notes = [item for item in answer.get("notes") or [] if isinstance(item, dict)]
        return notes[:NOTES_MAX]

    async def add_note(self, incident_id: str, content: str) -> dict[str, Any]:
        response = await self._call("POST", f"/incidents/{_path(incident_id)}/notes",
                                    {"note": {"content": content}}, write=True)
        return _wrapped(response, "note", f"adding a note to PagerDuty incident {incident_id}")

    async def user_id(self, email: str) -> str | None:
        """The id of the user with this email (the From user), if PagerDuty knows one."""
        response = await self._call("GET", f"/users?{urlencode({'query': email})}")
        answer = _object(response.expect("looking up the PagerDuty From user"))
        for user in answer.get("users") or []:
            if isinstance(user, dict) and str(user.get("email", "")).lower() == email.lower():
                return str(user.get("id") or "") or None
        return None

    async def _call(self, method: str, path: str, body: Any = None, *, write: bool = False
                    ) -> ToolResponse:
        headers = {**self._headers, "From": self._from} if write else self._headers
        url = f"{self._base}{path}"
        response = await self._http.request(method, url, json=body, headers=headers)
        if response.status == 429:
            wait = _reset_seconds(response)
            if wait <= INLINE_WAIT:
                await self._sleep(wait)
                response = await self._http.request(method, url, json=body, headers=headers)
            if response.status == 429:
                wait = _reset_seconds(response)
                raise ToolFailed(f"PagerDuty rate limit reached ({method} {path}); "
                                 f"it resets in {wait:g} s", retryable=True,
                                 retry_after=wait, status_code=429)
        return response


class DuplicateKey(ToolFailed):
    """PagerDuty refused a second open incident with the same incident_key."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, retryable=False, status_code=400)


def _reset_seconds(response: ToolResponse) -> float:
    """Seconds to wait after a 429: ``ratelimit-reset``, else Retry-After, else 1 (the
    documentation warns a 429 may come without the headers)."""
    for name in ("ratelimit-reset", "Retry-After"):
        value = response.header(name)
        try:
            if value is not None:
                return max(float(value), 0.0)
        except ValueError:
            continue
    return 1.0


def _path(incident_id: str) -> str:
    return quote(incident_id, safe="")


def _error_text(response: ToolResponse) -> str:
    try:
        answer = response.json()
    except ToolFailed:
        return ""
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        return ""
    parts = [str(error.get("message") or ""), *map(str, error.get("errors") or [])]
    return "; ".join(part for part in parts if part)


def _wrapped(response: ToolResponse, name: str, doing: str) -> dict[str, Any]:
    """The object PagerDuty wraps in ``{name: …}``; a refusal with PagerDuty's words."""
    if not response.ok and response.status != 429 and response.status < 500:
        text = _error_text(response)
        if text:
            raise ToolFailed(f"{doing}: HTTP {response.status} {text}",
                             retryable=response.status in (408, 409),
                             status_code=response.status)
    answer = _object(response.expect(doing)).get(name)
    if not isinstance(answer, dict):
        raise ToolFailed(f"{doing}: PagerDuty's answer has no {name}", retryable=False,
                         status_code=response.status)
    return answer


def _object(response: ToolResponse) -> dict[str, Any]:
    answer = response.json() if response.body else {}
    if not isinstance(answer, dict):
        raise ToolFailed(f"PagerDuty answered {response.status} with JSON that is not an "
                         "object", retryable=False, status_code=response.status)
    return answer
