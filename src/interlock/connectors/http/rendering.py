"""Turning a configured request into a real one, and reading values out of answers.

Templates see these variables (the same sandbox, budget and limits as webhook payload
templates):

* ``incident``: the incident as the API shows it, plus ``url`` (where it is opened in
  Interlock). A private incident keeps the same keys but only its id, reference,
  status, version and times: ``title`` is ``"INC-7: private incident"``, ``summary`` is
  empty, ``labels`` empty, ``severity``, ``service`` and ``assignee`` null.
* ``link``: ``{"external_id", "url"}`` of the tool's object; null before it exists (in
  the incident.created request).
* ``event``: ``{"type", "changes"}`` of the event being pushed (null on a refresh).
* ``comment``: ``{"body", "actor"}`` in the incident.comment_added request.
* ``tool_status`` and ``tool_severity``: the incident's status and severity in the
  tool's words (the mapping's ``status_out`` and ``severity_out``), or null.
* ``base_url``: the ``base_url`` setting.

Rendering is CPU work bounded at two seconds per template: the driver runs it in a
thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from jmespath.exceptions import JMESPathError

from interlock.connectors.http.config import RequestTemplate, compiled_expression, compiled_template
from interlock.domain import incidents
from interlock.domain.connectors import FieldMapping, redacted_title
from interlock.domain.errors import InvalidInput, ToolFailed
from interlock.domain.incidents import Incident
from interlock.domain.targets import parse_endpoint_url
from interlock.domain.templates import TemplateError

#: Incident keys a private incident keeps as they are.
_PRIVATE_KEEPS = ("id", "reference", "status", "visibility", "version", "created_at",
                  "updated_at", "acknowledged_at", "resolved_at")


@dataclass(frozen=True)
class Rendered:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


def incident_view(incident: Incident, url: str) -> dict[str, Any]:
    """What templates see of the incident (redacted when it is private)."""
    shown = incidents.to_dict(incident)
    if incident.is_private:
        shown = {name: shown[name] for name in _PRIVATE_KEEPS} | {
            "title": redacted_title(incident), "summary": "", "severity": None,
            "service": None, "assignee": None, "labels": {}}
    return shown | {"url": url}


def variables(*, incident: Incident, incident_url: str, mapping: FieldMapping,
              base_url: str | None, link: Mapping[str, Any] | None = None,
              event: Mapping[str, Any] | None = None,
              comment: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "incident": incident_view(incident, incident_url),
        "link": dict(link) if link is not None else None,
        "event": dict(event) if event is not None else None,
        "comment": dict(comment) if comment is not None else None,
        "tool_status": mapping.status_for_tool(incident.status),
        "tool_severity": (None if incident.is_private
                          else mapping.severity_for_tool(incident.severity)),
        "base_url": base_url,
    }


def render(request: RequestTemplate, values: Mapping[str, Any], where: str) -> Rendered:
    """The request for ``values``, or InvalidInput naming the part that failed
    (``{where}.url``, ``{where}.headers.X``, ``{where}.body``). Slow: call in a thread."""
    url = _text(request.url, values, f"{where}.url")
    try:
        parse_endpoint_url(url)  # the shape webhook URLs must have, checked the same way
    except InvalidInput as error:
        _refuse(f"{where}.url", f"renders {url[:200]!r}: {error.detail}")
    headers = {}
    for name, source in request.headers.items():
        value = _text(source, values, f"{where}.headers.{name}")
        if "\r" in value or "\n" in value:
            _refuse(f"{where}.headers.{name}", "renders a line break, which a header "
                                               "value cannot hold")
        headers[name] = value
    body = None
    if isinstance(request.body, str):
        try:
            body = compiled_template(request.body).render(values)
        except TemplateError as error:
            _refuse(f"{where}.body", error.message)
    elif request.body is not None:
        body = json.dumps(_filled(request.body, values, f"{where}.body")).encode()
    return Rendered(request.method, url, headers, body)


def _filled(value: Any, values: Mapping[str, Any], where: str) -> Any:
    """A JSON body with each string rendered as a text template."""
    if isinstance(value, str):
        try:
            return compiled_template(value).render_text(values)
        except TemplateError as error:
            _refuse(where, error.message)
    if isinstance(value, dict):
        return {key: _filled(item, values, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_filled(item, values, f"{where}[{index}]") for index, item in enumerate(value)]
    return value


def _text(source: str, values: Mapping[str, Any], where: str) -> str:
    try:
        return compiled_template(source).render_text(values).strip()
    except TemplateError as error:
        _refuse(where, error.message)


def _refuse(where: str, message: str) -> NoReturn:
    raise InvalidInput(f"{where}: {message}", errors=[{"field": where, "message": message}])


def search(expression: str, data: Any, where: str) -> Any:
    """``expression`` over ``data``; ToolFailed (not retryable: the same answer fails the
    same way) when it cannot be evaluated."""
    try:
        return compiled_expression(expression).search(data)
    except (JMESPathError, RecursionError) as error:
        raise ToolFailed(f"{where} ({expression!r}) could not be evaluated: "
                         f"{str(error).splitlines()[0][:200]}", retryable=False) from error


def scalar_text(value: Any) -> str | None:
    """A string, number or boolean as text (ids are often numbers: ``42`` is ``"42"``);
    None for null, ValueError for an object or a list."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise ValueError(f"expected text or a number, found {json.dumps(value)[:100]}")


def truthy(value: Any) -> bool:
    """JMESPath's truth: false, null, "", [] and {} are false; 0 is true."""
    return value is not None and value is not False and value not in ("", [], {})
