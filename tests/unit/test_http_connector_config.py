"""The generic HTTP connector's configuration: signatures as the tools document them,
and a check on save that names each field it refuses."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from interlock.connectors.http import HttpDriver
from interlock.connectors.http.config import EVENT_NAMES, HmacCheck
from interlock.connectors.http.hooks import signature, verify
from interlock.connectors.http.plugin import PLUGIN
from interlock.connectors.slack import signature as slack
from interlock.domain.connectors import PUSHED_EVENTS
from interlock.domain.errors import InvalidInput, Unauthenticated
from tests.support.http_examples import GITHUB, HELPDESK, readme_example

NOW = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)


def check(body: dict[str, Any]) -> None:
    HttpDriver().check({**PLUGIN.default_settings(), **body["settings"]}, body["credentials"])


def problems(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as refused:
        check(body)
    return {item["field"]: item["message"] for item in refused.value.errors or []}


def test_every_pushed_event_can_have_a_request() -> None:
    assert set(EVENT_NAMES) == {event.value for event in PUSHED_EVENTS}


def test_the_readme_examples_pass_the_check() -> None:
    for name in (GITHUB, HELPDESK):
        check(readme_example(name))


def test_githubs_documented_signature_example() -> None:
    """docs.github.com, "Validating webhook deliveries": this secret and payload give
    this X-Hub-Signature-256."""
    github = HmacCheck(header="X-Hub-Signature-256", prefix="sha256=")
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature(github, "It's a Secret to Everybody", b"Hello, World!") == expected
    verify(github, "It's a Secret to Everybody", {"x-hub-signature-256": expected},
           b"Hello, World!", NOW)


def test_a_timestamped_scheme_can_say_what_slack_signs() -> None:
    """Slack's v0 scheme, written as settings, agrees with the Slack connector's."""
    scheme = HmacCheck(header="X-Slack-Signature", prefix="v0=",
                       signed="v0:{timestamp}:{body}",
                       timestamp_header="X-Slack-Request-Timestamp")
    timestamp, body = str(int(NOW.timestamp())), b"token=x&command=%2Fincident"
    sent = slack.signature("signing-secret", timestamp, body)
    assert signature(scheme, "signing-secret", body, timestamp) == sent
    headers = {"x-slack-signature": sent, "x-slack-request-timestamp": timestamp}
    verify(scheme, "signing-secret", headers, body, NOW)
    with pytest.raises(Unauthenticated, match="away from now"):
        verify(scheme, "signing-secret", headers, body,
               datetime.fromtimestamp(NOW.timestamp() + 301, UTC))


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda s: s["hmac"].update(signed="{body}{timestamp}"), "settings.hmac",
     'signed must end with "{body}"'),
    (lambda s: s["hmac"].update(signed="{timestamp}.{body}"), "settings.hmac",
     "set timestamp_header"),
    (lambda s: s["hmac"].update(algorithm="md5"), "settings.hmac.algorithm", "'sha256'"),
    (lambda s: s["requests"].update({"incident.deleted": s["requests"]["incident.updated"]}),
     "settings.requests", "incident.deleted: not an event type"),
    (lambda s: s["requests"]["incident.resolved"].update(method="BREW"),
     "settings.requests.incident.resolved.method", "'GET'"),
    (lambda s: s["requests"]["incident.created"].pop("external_id"),
     "settings.requests.incident.created.external_id", "required"),
    (lambda s: s["requests"]["incident.created"].update(headers={"Bad Header": "x"}),
     "settings.requests.incident.created.headers.Bad Header.[key]", "not an HTTP header"),
    (lambda s: s["requests"]["incident.created"].update(url="/issues"),
     "settings.requests.incident.created.url", "URL scheme must be http or https"),
    (lambda s: s["requests"]["incident.updated"].update(body={"title": "{{ incident."}),
     "settings.requests.incident.updated.body", "title: line 1"),
    (lambda s: s["requests"]["incident.created"].update(
        body={"title": "{{ incident.labels.team }}"}),
     "settings.requests.incident.created.body.title", "for a private incident"),
    (lambda s: s["requests"]["incident.resolved"].update(
        headers={"X-Note": "{{ comment.body }}"}),
     "settings.requests.incident.resolved.headers.X-Note", "'None' has no attribute"),
    (lambda s: s.pop("fetch"), "settings.fetch", "required with settings.hook"),
    (lambda s: s["hook"].update(external_id="issue.[number"), "settings.hook.external_id",
     "not a valid JMESPath expression"),
    (lambda s: s.update(unknown=1), "settings.unknown", "Extra inputs are not permitted"),
    (lambda s: s.update(base_url="ftp://example.com"), "settings.base_url", "http(s) URL"),
])
def test_the_check_names_the_field(change: Any, field: str, message: str) -> None:
    body = copy.deepcopy(readme_example(GITHUB))
    change(body["settings"])
    found = problems(body)
    assert field in found, found
    assert message in found[field], found


def test_the_check_names_credential_problems() -> None:
    body = copy.deepcopy(readme_example(GITHUB))
    body["credentials"] = {"bearer_token": "t", "username": "u"}
    assert problems(body) == {
        "credentials": "give one way to authenticate, not bearer_token and username and "
                       "password",
        "credentials.password": "required: basic auth needs both",
        "credentials.hmac_secret": "required with settings.hmac: the secret the tool signs "
                                   "webhooks with",
    }
    body = copy.deepcopy(readme_example(HELPDESK))
    del body["settings"]["api_key_header"]
    assert "settings.api_key_header" in problems(body)
