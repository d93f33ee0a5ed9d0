"""The Table API calls the connector makes on a ServiceNow instance, and its sign-in.

Table API (ServiceNow docs, REST API reference > Table API): records live under
``/api/now/table/{table}``; every answer wraps its payload as ``{"result": …}`` and
every refusal as ``{"error": {"message", "detail"}, "status": "failure"}``.
``sysparm_fields`` narrows an answer to the fields named, and
``sysparm_display_value=all`` gives each field as ``{"value", "display_value"}`` (the
``state`` number and its label, a user's sys_id and name);
``sysparm_exclude_reference_link`` drops the API links of reference fields.

Rate limits (Inbound REST API rate limiting): an instance's rules answer 429 with
``Retry-After`` in seconds, which ``ToolResponse.expect`` turns into the retry time.

Sign-in: Basic auth as the integration user, or OAuth 2.0 client credentials, where a
token from ``POST /oauth_token.do`` (form-encoded ``grant_type=client_credentials``)
is sent as a Bearer token until it expires or is refused.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from interlock.domain.errors import ToolFailed
from interlock.ports.connector import ToolHttp, ToolResponse

TABLE = "incident"
JOURNAL = "sys_journal_field"
#: Journal entries read at most per pull.
JOURNAL_MAX = 500
#: A token is renewed this long before ServiceNow says it expires.
TOKEN_MARGIN = 60.0


class TokenCache:
    """OAuth tokens by (instance, client id, secret digest), shared by every call of one
    driver so each job does not sign in again. Kept in memory only."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    def get(self, key: tuple[str, str, str]) -> str | None:
        found = self._tokens.get(key)
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]

    def put(self, key: tuple[str, str, str], token: str, expires_in: float) -> None:
        self._tokens[key] = (token, time.monotonic() + max(expires_in - TOKEN_MARGIN, 1.0))

    def drop(self, key: tuple[str, str, str]) -> None:
        self._tokens.pop(key, None)


class ServiceNowApi:
    def __init__(self, http: ToolHttp, base_url: str, *, auth: str, username: str,
                 client_id: str, secret: str, tokens: TokenCache) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._auth, self._username, self._client_id = auth, username, client_id
        self._secret = secret
        self._tokens = tokens
        digest = hashlib.sha256(secret.encode()).hexdigest()
        self._token_key = (self.base_url, client_id, digest)

    def record_url(self, sys_id: str) -> str:
        """Where a person opens the incident."""
        return f"{self.base_url}/{TABLE}.do?sys_id={quote(sys_id, safe='')}"

    async def create(self, fields: Mapping[str, Any], returned: str) -> dict[str, Any]:
        query = urlencode({"sysparm_fields": returned, "sysparm_exclude_reference_link": "true"})
        response = await self._call("POST", f"/api/now/table/{TABLE}?{query}", dict(fields))
        return _result(response, "creating the ServiceNow incident")

    async def update(self, sys_id: str, fields: Mapping[str, Any], returned: str
                     ) -> dict[str, Any]:
        query = urlencode({"sysparm_fields": returned, "sysparm_exclude_reference_link": "true"})
        response = await self._call("PATCH", f"/api/now/table/{TABLE}/{_path(sys_id)}?{query}",
                                    dict(fields))
        return _result(response, f"updating ServiceNow incident {sys_id}")

    async def record(self, sys_id: str, fields: str) -> dict[str, Any]:
        """The incident with each field as ``{"value", "display_value"}``."""
        query = urlencode({"sysparm_fields": fields, "sysparm_display_value": "all",
                           "sysparm_exclude_reference_link": "true"})
        response = await self._call("GET", f"/api/now/table/{TABLE}/{_path(sys_id)}?{query}")
        return _result(response, f"reading ServiceNow incident {sys_id}")

    async def find(self, correlation_id: str, returned: str) -> dict[str, Any] | None:
        """The incident Interlock made for ``correlation_id``, if there is one."""
        query = urlencode({"sysparm_query": f"correlation_id={correlation_id}",
                           "sysparm_fields": returned, "sysparm_limit": "1",
                           "sysparm_exclude_reference_link": "true"})
        response = await self._call("GET", f"/api/now/table/{TABLE}?{query}")
        found = _results(response, "looking up the ServiceNow incident by correlation_id")
        return found[0] if found else None

    async def journal(self, sys_id: str, element: str) -> list[dict[str, Any]]:
        """The incident's ``element`` journal entries (work_notes or comments), oldest
        first, from the journal table (entries do not come back with the record)."""
        query = urlencode({
            "sysparm_query": f"element_id={sys_id}^element={element}^ORDERBYsys_created_on",
            "sysparm_fields": "sys_id,element,value,sys_created_by,sys_created_on",
            "sysparm_limit": str(JOURNAL_MAX)})
        response = await self._call("GET", f"/api/now/table/{JOURNAL}?{query}")
        return _results(response, f"reading the {element} of ServiceNow incident {sys_id}")

    async def _call(self, method: str, path: str, body: Any = None) -> ToolResponse:
        url = f"{self.base_url}{path}"
        response = await self._http.request(method, url, json=body,
                                            headers=await self._headers())
        if response.status == 401 and self._auth == "oauth":
            # The token may have been revoked or expired early: sign in once more.
            self._tokens.drop(self._token_key)
            response = await self._http.request(method, url, json=body,
                                                headers=await self._headers())
        return response

    async def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._auth == "oauth":
            headers["Authorization"] = f"Bearer {await self._token()}"
        else:
            pair = base64.b64encode(f"{self._username}:{self._secret}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        return headers

    async def _token(self) -> str:
        cached = self._tokens.get(self._token_key)
        if cached:
            return cached
        form = urlencode({"grant_type": "client_credentials", "client_id": self._client_id,
                          "client_secret": self._secret}).encode()
        response = await self._http.request(
            "POST", f"{self.base_url}/oauth_token.do", data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Accept": "application/json"})
        if response.status in (400, 401):
            raise ToolFailed("ServiceNow refused the OAuth client credentials (HTTP "
                             f"{response.status}): check client_id and secret, and that "
                             "the application allows the client_credentials grant",
                             retryable=False, status_code=response.status)
        answer = response.expect("signing in to ServiceNow with OAuth").json()
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise ToolFailed("ServiceNow's OAuth answer has no access_token",
                             retryable=False, status_code=response.status)
        self._tokens.put(self._token_key, token, float(answer.get("expires_in") or 1800))
        return token


def _path(sys_id: str) -> str:
    return quote(sys_id, safe="")


def _refusal(response: ToolResponse, doing: str) -> None:
    """Raise ToolFailed with ServiceNow's own message and detail, if it refused."""
    if response.ok:
        return
    try:
        answer = response.json()
    except ToolFailed:
        answer = None
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict) and response.status != 429 and response.status < 500:
        words = ": ".join(str(part) for part in (error.get("message"), error.get("detail"))
                          if part)
        raise ToolFailed(f"{doing}: HTTP {response.status} {words}",
                         retryable=response.status in (408, 409),
                         status_code=response.status)
    response.expect(doing)


def _result(response: ToolResponse, doing: str) -> dict[str, Any]:
    _refusal(response, doing)
    answer = response.json()
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, dict):
        raise ToolFailed(f"{doing}: ServiceNow's answer has no result object",
                         retryable=False, status_code=response.status)
    return result


def _results(response: ToolResponse, doing: str) -> list[dict[str, Any]]:
    _refusal(response, doing)
    answer = response.json()
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, list):
        raise ToolFailed(f"{doing}: ServiceNow's answer has no result list",
                         retryable=False, status_code=response.status)
    return [item for item in result if isinstance(item, dict)]
