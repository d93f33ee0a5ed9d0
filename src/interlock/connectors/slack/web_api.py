"""The three Slack Web API methods Interlock calls, and how their failures are judged.

Slack's Web API answers most failures with HTTP 200 and ``{"ok": false, "error":
"channel_not_found"}``, so an HTTP status check alone would record a failed post as a
success. Every answer is read: ``ok`` true is the only success. Whether a failure is
worth retrying depends on the error code: rate limits and Slack's own transient errors
pass, a wrong channel or a revoked token will not until a person fixes the connector
(a refused token is a ToolCredentialsRefused: the connector then needs attention).
Rate-limited calls come back as HTTP 429 with ``Retry-After`` (seconds), which the
sync queue waits out without counting an attempt.

Cards carry message metadata (``interlock_incident`` with the incident id), which is
how ``conversations.history`` finds a card whose post answer was lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlencode

from interlock.domain.errors import ToolCredentialsRefused, ToolFailed
from interlock.ports.connector import ToolHttp, ToolResponse

POST_MESSAGE = "chat.postMessage"
UPDATE = "chat.update"
HISTORY = "conversations.history"
#: The message metadata type on Interlock's cards (https://api.slack.com/metadata).
CARD_EVENT = "interlock_incident"

#: Error codes after which the same call may succeed later.
RETRYABLE_ERRORS = frozenset({
    "ratelimited", "rate_limited", "internal_error", "service_unavailable",
    "request_timeout",
})

#: What a person should do about the usual configuration errors.
HINTS = {
    "channel_not_found": "check settings.channel (a channel ID such as C0123456789)",
    "not_in_channel": "invite the Slack app to the channel (/invite @your-app)",
    "is_archived": "the channel is archived; choose another in settings.channel",
    "invalid_auth": "check credentials.bot_token (a bot token, xoxb-…)",
    "not_authed": "set credentials.bot_token",
    "token_revoked": "the bot token was revoked; reinstall the Slack app",
    "account_inactive": "the bot token's app or workspace is gone; reinstall the app",
    "missing_scope": "the Slack app lacks a scope (chat:write, channels:history); add it "
                     "and reinstall the app",
    "token_expired": "the bot token expired; reinstall the app or turn off token "
                     "rotation",
    "invalid_blocks": "Slack refused the card's Block Kit layout",
    "msg_too_long": "the message is longer than Slack takes",
    "message_not_found": "the card was deleted in Slack",
}


class SlackApiError(ToolFailed):
    """Slack answered ``ok: false``; ``error`` is Slack's error code."""

    def __init__(self, detail: str, *, error: str, retryable: bool,
                 retry_after: float | None = None, status_code: int | None = None) -> None:
        super().__init__(detail, retryable=retryable, retry_after=retry_after,
                         status_code=status_code)
        self.error = error


class SlackWebApi:
    """Calls on behalf of one connector: its API base and its bot token."""

    def __init__(self, http: ToolHttp, api_base: str, bot_token: str) -> None:
        self._http = http
        self._base = api_base.rstrip("/")
        self._token = bot_token

    async def post_message(self, channel: str, text: str, *,
                           blocks: list[dict[str, Any]] | None = None,
                           thread_ts: str | None = None, incident_id: str | None = None
                           ) -> tuple[str, str]:
        """Post to ``channel`` (a reply when ``thread_ts`` is given); return the channel
        ID Slack posted to (it resolves names) and the new message's ``ts``."""
        payload: dict[str, Any] = {"channel": channel, "text": text}
        if blocks is not None:
            payload["blocks"] = blocks
        if incident_id is not None:
            payload["metadata"] = {"event_type": CARD_EVENT,
                                   "event_payload": {"incident_id": incident_id}}
        if thread_ts is not None:
            payload["thread_ts"] = thread_ts
        answer = await self._call(POST_MESSAGE, payload)
        return str(answer.get("channel") or channel), _ts(answer, POST_MESSAGE)

    async def find_card(self, channel: str, incident_id: str, oldest: float
                        ) -> str | None:
        """The ``ts`` of the card posted for ``incident_id`` since ``oldest`` (unix
        seconds), found by its metadata; None when there is none."""
        query = urlencode({"channel": channel, "oldest": f"{oldest:.6f}", "limit": 200,
                           "include_all_metadata": "true"})
        answer = await self._call(HISTORY, None, query=query)
        for message in answer.get("messages") or []:
            metadata = message.get("metadata") if isinstance(message, dict) else None
            payload = metadata.get("event_payload") if isinstance(metadata, dict) else None
            if (isinstance(payload, dict) and isinstance(metadata, dict)
                    and metadata.get("event_type") == CARD_EVENT
                    and payload.get("incident_id") == incident_id):
                return str(message.get("ts"))
        return None

    async def update(self, channel: str, ts: str, text: str,
                     blocks: list[dict[str, Any]]) -> None:
        """Replace the message at ``ts`` in ``channel`` (which must be an ID)."""
        await self._call(UPDATE, {"channel": channel, "ts": ts, "text": text,
                                  "blocks": blocks})

    async def _call(self, method: str, payload: Mapping[str, Any] | None, *,
                    query: str | None = None) -> Mapping[str, Any]:
        if query is not None:  # a read: GET with its arguments in the query string
            response = await self._http.request(
                "GET", f"{self._base}/{method}?{query}",
                headers={"Authorization": f"Bearer {self._token}"})
        else:
            response = await self._http.request(
                "POST", f"{self._base}/{method}", json=payload,
                # Slack warns (missing_charset) about JSON bodies sent without a charset.
                headers={"Authorization": f"Bearer {self._token}",
                         "Content-Type": "application/json; charset=utf-8"})
        response.expect(method)
        answer = response.json()
        if not isinstance(answer, dict):
            raise ToolFailed(f"{method}: Slack answered {response.status} with "
                             f"{type(answer).__name__} instead of an object",
                             retryable=True, status_code=response.status)
        if answer.get("ok") is True:
            return answer
        _refused(method, answer, response)


#: Error codes that mean the token itself is refused: a person must act.
CREDENTIAL_ERRORS = frozenset({"not_authed", "invalid_auth", "token_expired",
                               "token_revoked", "account_inactive"})


def _refused(method: str, answer: Mapping[str, Any], response: ToolResponse) -> NoReturn:
    error = str(answer.get("error") or "unknown_error")
    hint = HINTS.get(error)
    if error in CREDENTIAL_ERRORS:
        raise ToolCredentialsRefused(
            f"{method}: Slack answered {error}" + (f" ({hint})" if hint else ""),
            status_code=response.status)
    raise SlackApiError(
        f"{method}: Slack answered {error}" + (f" ({hint})" if hint else ""),
        error=error, retryable=error in RETRYABLE_ERRORS,
        retry_after=_retry_after(response.headers), status_code=response.status)


def _ts(answer: Mapping[str, Any], method: str) -> str:
    ts = answer.get("ts")
    if not isinstance(ts, str) or not ts:
        raise ToolFailed(f"{method}: Slack's answer has no message ts", retryable=False,
                         status_code=200)
    return ts


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(float(value), 0.0)
            except ValueError:
                return None
    return None
