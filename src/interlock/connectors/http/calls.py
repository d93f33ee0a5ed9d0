"""Making a configured request: render its templates in a thread, add the credentials,
send it through the connector's ToolHttp (which records it and applies the target
guard to the URL the template made), and refuse any answer that is not a 2xx."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any

from interlock.connectors.http import rendering
from interlock.connectors.http.config import HttpCredentials, HttpSettings, RequestTemplate
from interlock.domain.errors import InvalidInput, ToolFailed
from interlock.domain.events import EventType
from interlock.ports.connector import SyncContext, ToolResponse


class Caller:
    """Renders a configured request (in a thread) and sends it with the credentials."""

    def __init__(self, ctx: SyncContext, settings: HttpSettings,
                 credentials: HttpCredentials) -> None:
        self.ctx = ctx
        self.settings = settings
        self._auth = _auth_headers(settings, credentials)

    def values(self, *, link: Mapping[str, Any] | None, with_event: bool = True
               ) -> dict[str, Any]:
        ctx, event = self.ctx, self.ctx.event if with_event else None
        comment = None
        shown_event = None
        if event is not None:
            private = ctx.incident.is_private
            shown_event = {"type": event.type.value,
                           "changes": {} if private else dict(event.data.get("changes") or {})}
            if event.type is EventType.INCIDENT_COMMENT_ADDED and not private:
                raw = event.data.get("comment") or {}
                comment = {"body": str(raw.get("body") or ""),
                           "actor": raw.get("actor") or "Interlock"}
        return rendering.variables(
            incident=ctx.incident, incident_url=ctx.incident_url, mapping=ctx.mapping,
            base_url=self.settings.base_url, link=link, event=shown_event, comment=comment)

    async def call(self, name: str, request: RequestTemplate, values: Mapping[str, Any]
                   ) -> ToolResponse:
        """Send the request called ``name`` (an event type, ``fetch`` or
        ``fetch.comments``): its answer if 2xx, else ToolFailed."""
        where = (f"settings.requests.{name}" if name.startswith("incident.")
                 else f"settings.{name}.request")
        try:
            rendered = await asyncio.to_thread(rendering.render, request, values, where)
        except InvalidInput as error:
            raise ToolFailed(f"the {name} request cannot be made: {error.detail}",
                             retryable=False) from error
        headers = {"Accept": "application/json", **rendered.headers}
        if rendered.body is not None and not any(name.lower() == "content-type"
                                                 for name in headers):
            headers["Content-Type"] = "application/json"
        headers.update(self._auth)
        response = await self.ctx.http.request(rendered.method, rendered.url,
                                               data=rendered.body, headers=headers)
        return response.expect(f"the {name} request ({rendered.method} {rendered.url})")


def _auth_headers(settings: HttpSettings, credentials: HttpCredentials) -> dict[str, str]:
    if credentials.bearer_token is not None:
        return {"Authorization": f"Bearer {credentials.bearer_token.get_secret_value()}"}
    if credentials.username is not None and credentials.password is not None:
        pair = (f"{credentials.username.get_secret_value()}:"
                f"{credentials.password.get_secret_value()}")
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}
    if credentials.api_key is not None and settings.api_key_header:
        return {settings.api_key_header: credentials.api_key.get_secret_value()}
    return {}
