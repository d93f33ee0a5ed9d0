"""The endpoint form: what a person types, turned into what the endpoint service takes,
and the template preview against a sample event.

Fields stay as typed when something is wrong, so the page can show them again with
the problem beside them instead of losing the person's work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from interlock.domain import templates
from interlock.domain.endpoints import DEFAULT_TIMEOUT, Endpoint
from interlock.domain.errors import InvalidInput
from interlock.domain.events import SUBSCRIBABLE, EventType
from interlock.domain.filters import Filter
from interlock.services.endpoints import check_template

#: Shown in place of a header value that looks like a credential; sent back unchanged,
#: it means "keep the stored value".
MASK = "********"
_SECRET_HEADER = re.compile(r"auth|token|secret|key|password|cookie|signature", re.IGNORECASE)


@dataclass
class EndpointForm:
    url: str = ""
    description: str = ""
    event_types: list[str] = field(default_factory=list)
    filter: str = ""
    headers: str = ""
    template: str = ""
    timeout: str = f"{DEFAULT_TIMEOUT:g}"
    sample: str = EventType.INCIDENT_CREATED.value

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointForm:
        return cls(
            url=endpoint.url, description=endpoint.description,
            event_types=sorted(kind.value for kind in endpoint.event_types),
            filter=json.dumps(dict(endpoint.filter), indent=2) if endpoint.filter else "",
            headers="\n".join(
                f"{name}: {MASK if _SECRET_HEADER.search(name) else value}"
                for name, value in endpoint.headers.items()),
            template=endpoint.template or "", timeout=f"{endpoint.timeout:g}",
        )

    @classmethod
    def posted(cls, form: FormData) -> EndpointForm:
        def text(name: str) -> str:
            value = form.get(name, "")
            return value if isinstance(value, str) else ""

        return cls(
            url=text("url").strip(), description=text("description").strip(),
            event_types=[value for value in form.getlist("event_types")
                         if isinstance(value, str)],
            filter=text("filter").strip(), headers=text("headers"),
            template=text("template").strip(), timeout=text("timeout").strip(),
            sample=text("sample") or EventType.INCIDENT_CREATED.value,
        )

    def fields(self, stored: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Keyword arguments for EndpointSpec / EndpointService.update, or InvalidInput
        naming the field. ``stored`` are the endpoint's current headers (for MASK)."""
        known = {kind.value for kind in SUBSCRIBABLE}
        unknown = [value for value in self.event_types if value not in known]
        if unknown:
            raise InvalidInput(f"unknown event types: {', '.join(unknown)[:200]}")
        return {
            "url": self.url,
            "description": self.description,
            "event_types": frozenset(EventType(value) for value in self.event_types),
            "filter": self._filter(),
            "headers": self._headers(stored or {}),
            "template": self.template or None,
            "timeout": self._timeout(),
        }

    def _filter(self) -> dict[str, Any]:
        if not self.filter:
            return {}
        try:
            value = json.loads(self.filter)
        except ValueError as error:
            raise InvalidInput(f"the filter is not JSON: {error}") from error
        if not isinstance(value, dict):
            raise InvalidInput('the filter must be a JSON object, e.g. {"severity": '
                               '["critical", "high"]}')
        return value

    def _headers(self, stored: Mapping[str, str]) -> dict[str, str]:
        headers: dict[str, str] = {}
        for number, line in enumerate(self.headers.splitlines(), start=1):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise InvalidInput(f"headers, line {number}: write it as 'Name: value'")
            name, value = name.strip(), value.strip()
            headers[name] = stored.get(name, "") if value == MASK else value
        return headers

    def _timeout(self) -> float:
        try:
            return float(self.timeout or DEFAULT_TIMEOUT)
        except ValueError as error:
            raise InvalidInput("the timeout must be a number of seconds") from error


@dataclass(frozen=True)
class Preview:
    event_type: str
    body: str
    #: Why nothing could be rendered.
    error: str | None = None
    #: Rendered, but saving will be refused (it fails on a private incident's payload).
    warning: str | None = None


def preview(form: EndpointForm) -> Preview:
    """What the endpoint would receive for the chosen sample event: the template's
    output, or the standard payload when there is no template."""
    samples = templates.sample_payloads()
    kind = EventType(form.sample) if form.sample in samples else EventType.INCIDENT_CREATED
    payload = samples[kind]
    if not form.template:
        return Preview(kind.value, json.dumps(payload, indent=2))
    try:
        rendered = templates.PayloadTemplate.compile(form.template).render(payload)
    except templates.TemplateError as error:
        return Preview(kind.value, "", error=error.detail)
    body = json.dumps(json.loads(rendered), indent=2)
    try:  # exactly what saving checks, with the form's event types and filter
        where = Filter.parse(form._filter())
        chosen = [EventType(value) for value in form.event_types if value in _KNOWN]
    except InvalidInput:
        return Preview(kind.value, body)  # saving reports the filter itself
    try:
        check_template(form.template, chosen, where)
    except templates.TemplateError as error:
        return Preview(kind.value, body, warning=error.detail)
    return Preview(kind.value, body)


_KNOWN = {kind.value for kind in SUBSCRIBABLE}


def sample_types() -> list[str]:
    return [kind.value for kind in templates.sample_payloads()]
