"""Checking an http connector's configuration when it is saved, field by field.

The models (:mod:`.config`) refuse what does not parse: an unknown key, a template that
does not compile, an expression that is not JMESPath. This adds what needs the whole
configuration (the create request must say where the new object's id is; a hook needs
a fetch request; a signature check needs its secret) and renders every template
against a sample incident, public and private, so a template that compiles but cannot
render (an unknown variable, a body that is not JSON, a URL without a host) is a 422
naming the field, not a failed push at 3 a.m.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from interlock.connectors.http import rendering
from interlock.connectors.http.config import (
    CREATED,
    HttpCredentials,
    HttpSettings,
    RequestTemplate,
    parse,
)
from interlock.domain import incidents
from interlock.domain.connectors import FieldMapping
from interlock.domain.errors import InvalidInput
from interlock.domain.incidents import Incident, Severity, Visibility

SAMPLE_TIME = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
SAMPLE_URL = "https://interlock.example/incidents/INC-7"
SAMPLE_LINK = {"external_id": "42", "url": "https://tool.example/items/42"}
SAMPLE_COMMENT = {"body": "Rolled back to v412.", "actor": "ana@example.com"}


def check(settings: Mapping[str, Any], credentials: Mapping[str, str],
          mapping: FieldMapping) -> tuple[HttpSettings, HttpCredentials]:
    """The parsed configuration, or InvalidInput with every problem found, by field."""
    parsed, secrets = parse(settings, credentials)
    errors = [*_rules(parsed, secrets), *_auth(parsed, secrets)]
    for where, request, linked, comment in _requests(parsed):
        errors += _render_problems(request, where, mapping, parsed.base_url, linked=linked,
                                   comment=comment)
    if errors:
        raise InvalidInput("the http connector's configuration is not usable: "
                           f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)
    return parsed, secrets


def _rules(parsed: HttpSettings, secrets: HttpCredentials) -> Iterator[dict[str, str]]:
    created = parsed.requests.get(CREATED)
    if created is None:
        yield _error(f"settings.requests.{CREATED}",
                     "required: the request that makes the tool's object for an incident")
    elif created.external_id is None:
        yield _error(f"settings.requests.{CREATED}.external_id",
                     "required: where the answer holds the new object's id (JMESPath, "
                     "like id or number)")
    if parsed.hook is not None and parsed.fetch is None:
        yield _error("settings.fetch", "required with settings.hook: a webhook only says "
                                       "that an object changed; this request reads it")
    if parsed.hmac is not None and parsed.hook is None:
        yield _error("settings.hmac", "only checks webhooks: set settings.hook too")
    if parsed.hmac is not None and secrets.hmac_secret is None:
        yield _error("credentials.hmac_secret",
                     "required with settings.hmac: the secret the tool signs webhooks with")
    if parsed.hmac is None and secrets.hmac_secret is not None:
        yield _error("credentials.hmac_secret", "not used: set settings.hmac to say how "
                                                "the tool signs its webhooks")


def _auth(parsed: HttpSettings, secrets: HttpCredentials) -> Iterator[dict[str, str]]:
    basic = secrets.username is not None or secrets.password is not None
    chosen = [name for name, given in (("bearer_token", secrets.bearer_token is not None),
                                       ("username and password", basic),
                                       ("api_key", secrets.api_key is not None)) if given]
    if len(chosen) > 1:
        yield _error("credentials", f"give one way to authenticate, not {' and '.join(chosen)}")
    if basic and (secrets.username is None or secrets.password is None):
        missing = "password" if secrets.password is None else "username"
        yield _error(f"credentials.{missing}", "required: basic auth needs both")
    if secrets.api_key is not None and parsed.api_key_header is None:
        yield _error("settings.api_key_header", "required with credentials.api_key: the "
                                                "header it is sent in, like X-API-Key")
    if parsed.api_key_header is not None and secrets.api_key is None:
        yield _error("credentials.api_key", "required with settings.api_key_header")


def _requests(parsed: HttpSettings
              ) -> Iterator[tuple[str, RequestTemplate, bool, bool]]:
    """(field, request, whether it has a link, whether it has a comment) for each."""
    for name, request in parsed.requests.items():
        yield (f"settings.requests.{name}", request, name != CREATED,
               name == "incident.comment_added")
    if parsed.fetch is not None:
        yield "settings.fetch.request", parsed.fetch.request, True, False
        comments = parsed.fetch.comments
        if comments is not None and comments.request is not None:
            yield "settings.fetch.comments.request", comments.request, True, False


def _render_problems(request: RequestTemplate, where: str, mapping: FieldMapping,
                     base_url: str | None, *, linked: bool, comment: bool
                     ) -> list[dict[str, str]]:
    for incident in _samples():
        values = rendering.variables(
            incident=incident, incident_url=SAMPLE_URL, mapping=mapping, base_url=base_url,
            link=SAMPLE_LINK if linked else None,
            event={"type": where.rsplit(".", 1)[-1], "changes": {}},
            comment=SAMPLE_COMMENT if comment else None)
        try:
            rendering.render(request, values, where)
        except InvalidInput as error:
            private = " (for a private incident, whose summary, labels, severity, service " \
                      "and assignee are empty)" if incident.is_private else ""
            return [{"field": str(item["field"]), "message": f"{item['message']}{private}"}
                    for item in error.errors or []]
    return []


def _samples() -> tuple[Incident, Incident]:
    """A realistic public incident, and the same one private."""
    declared = incidents.declare(
        incident_id="inc_sample", title="Checkout down", severity=Severity.HIGH,
        now=SAMPLE_TIME, summary="Checkout returns 502 for 40% of requests.",
        service="checkout", assignee="ana@example.com", labels={"team": "payments"})
    public = dataclasses.replace(declared, number=7)
    return public, dataclasses.replace(public, visibility=Visibility.PRIVATE)


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}
