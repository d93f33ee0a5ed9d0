"""The few Jira Cloud REST v3 calls the connector makes, and nothing else.

Every call authenticates with HTTP Basic ``email:api_token`` (Atlassian's scheme for
API tokens) and goes through the injected :class:`ToolHttp`, so the worker records it
and the target guard applies. Errors come back as ``ToolFailed`` from
``ToolResponse.expect``: retryable for 408/409/429/5xx, final for other 4xx. The
answers are returned as JSON dicts; the driver picks what it needs from them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from interlock.domain.errors import ToolCredentialsRefused, ToolFailed
from interlock.ports.connector import ToolHttp, ToolResponse

API = "/rest/api/3"
#: Comments asked for per page when an issue has more than its answer embeds.
COMMENT_PAGE = 100


class IssueGone(ToolFailed):
    """Jira answered 404 for an issue: it was deleted, or Interlock's account may no
    longer see it. Jira keeps answering so; retrying cannot help."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, retryable=False, status_code=404)


class JiraApi:
    def __init__(self, http: ToolHttp, base_url: str, email: str, api_token: str) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        token = base64.b64encode(f"{email}:{api_token}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}

    def browse_url(self, key: str) -> str:
        """Where a person opens the issue."""
        return f"{self.base_url}/browse/{key}"

    async def myself(self) -> dict[str, Any]:
        """The account the API token belongs to: Interlock's own identity in Jira."""
        response = await self._call("GET", "/myself")
        return _object(_expect(response, "reading Interlock's own Jira account"))

    async def create_issue(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``{"id", "key", "self"}`` of the new issue."""
        response = await self._call("POST", "/issue", {"fields": dict(fields)})
        answer = _object(_expect(response, "creating the Jira issue"))
        if not isinstance(answer.get("key"), str):
            raise ToolFailed(f"Jira created an issue but did not say its key: {answer}",
                             retryable=False, status_code=response.status)
        return answer

    async def update_issue(self, key: str, fields: Mapping[str, Any]) -> None:
        response = await self._call("PUT", f"/issue/{_path(key)}", {"fields": dict(fields)})
        _expect(response, f"updating Jira issue {key}", key)

    async def issue(self, key: str, fields: str) -> dict[str, Any]:
        response = await self._call("GET", f"/issue/{_path(key)}?{urlencode({'fields': fields})}")
        return _object(_expect(response, f"reading Jira issue {key}", key))

    async def transitions(self, key: str) -> list[dict[str, Any]]:
        """The transitions the workflow offers from the issue's current status."""
        response = await self._call("GET", f"/issue/{_path(key)}/transitions")
        answer = _object(_expect(response, f"listing the transitions of Jira issue {key}",
                                 key))
        return [item for item in answer.get("transitions") or [] if isinstance(item, dict)]

    async def transition(self, key: str, transition_id: str) -> None:
        response = await self._call("POST", f"/issue/{_path(key)}/transitions",
                                    {"transition": {"id": transition_id}})
        _expect(response, f"moving Jira issue {key}", key)

    async def add_comment(self, key: str, body: Mapping[str, Any]) -> dict[str, Any]:
        response = await self._call("POST", f"/issue/{_path(key)}/comment", {"body": dict(body)})
        return _object(_expect(response, f"commenting on Jira issue {key}", key))

    async def comments(self, key: str, start_at: int) -> dict[str, Any]:
        """One page of an issue's comments, oldest first."""
        query = urlencode({"startAt": start_at, "maxResults": COMMENT_PAGE})
        response = await self._call("GET", f"/issue/{_path(key)}/comment?{query}")
        return _object(_expect(response, f"reading the comments of Jira issue {key}", key))

    async def search(self, jql: str, fields: list[str], limit: int) -> list[dict[str, Any]]:
        """Issues matching ``jql`` (``POST /search/jql``, the search that replaced
        ``/search``). Its results may lag a few seconds behind a create."""
        response = await self._call("POST", "/search/jql",
                                    {"jql": jql, "fields": fields, "maxResults": limit})
        answer = _object(_expect(response, "searching Jira issues"))
        return [item for item in answer.get("issues") or [] if isinstance(item, dict)]

    async def _call(self, method: str, path: str, body: Any = None) -> ToolResponse:
        return await self._http.request(method, f"{self.base_url}{API}{path}", json=body,
                                        headers=self._headers)


def _expect(response: ToolResponse, doing: str, key: str | None = None) -> ToolResponse:
    """``response.expect`` with Jira's two answers that no retry mends told apart: 401
    (the API token expired or was revoked) and 404 for an issue (deleted)."""
    if response.status == 401:
        raise ToolCredentialsRefused(
            f"{doing}: Jira refused the connector's email and API token (HTTP 401); API "
            f"tokens expire: create a new one and update the connector's credentials",
            status_code=401)
    if response.status == 404 and key is not None:
        raise IssueGone(f"{doing}: Jira answers 404: the issue was deleted, or "
                        f"Interlock's account may no longer see it")
    return response.expect(doing)


def _path(key: str) -> str:
    """An issue key as one path segment (keys are ``PROJ-12``; quoting guards the rest)."""
    return quote(key, safe="")


def _object(response: ToolResponse) -> dict[str, Any]:
    """The answer's JSON object; an empty 204 answer is an empty object."""
    if not response.body:
        return {}
    answer = response.json()
    if not isinstance(answer, dict):
        raise ToolFailed(f"Jira answered {response.status} with JSON that is not an object",
                         retryable=False, status_code=response.status)
    return answer
