"""Payload templates: the body a receiver gets, and the templates refused before they run."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from interlock.domain import incidents
from interlock.domain.errors import InvalidInput
from interlock.domain.events import EventType
from interlock.domain.templates import (
    RENDER_SECONDS,
    PayloadTemplate,
    TemplateError,
    check,
    sample_payloads,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CHAT = '{"text": {{ ("[" ~ data.incident.reference ~ "] " ~ data.incident.title) | tojson }}}'
GUARDED_CHAT = """{% if data.incident.title is defined -%}
{"text": {{ ("[" ~ data.incident.reference ~ "] " ~ data.incident.title) | tojson }}}
{%- else -%}
{"text": {{ ("A private incident changed (version " ~ data.incident.version ~ ")") | tojson }}}
{%- endif %}"""


def payload(title: str = "Checkout down", **data: Any) -> dict[str, Any]:
    declared = incidents.declare(
        incident_id="inc_1", title=title, severity=incidents.Severity.HIGH, now=NOW
    )
    transition = incidents.update(
        dataclasses.replace(declared, number=7),
        {"severity": incidents.Severity.CRITICAL}, NOW,
    )
    assert transition is not None
    return {
        "type": "incident.updated", "timestamp": "2026-01-01T00:00:00Z",
        "data": {"incident": incidents.to_dict(transition.incident),
                 "changes": transition.changes, **data},
    }


def render(source: str, body: dict[str, Any] | None = None) -> bytes:
    return PayloadTemplate.compile(source).render(body or payload())


def refusal(source: str, body: dict[str, Any] | None = None) -> str:
    with pytest.raises(TemplateError) as caught:
        render(source, body)
    assert caught.value.errors == [{"field": "template", "message": caught.value.message}]
    return caught.value.message


def test_a_chat_template_renders_the_shape_the_receiver_wants() -> None:
    assert json.loads(render(CHAT)) == {"text": "[INC-7] Checkout down"}


def test_tojson_makes_quotes_and_newlines_safe_to_embed() -> None:
    body = render(CHAT, payload(title='Say "hi"\nthen </script> & leave'))
    assert json.loads(body) == {"text": '[INC-7] Say "hi"\nthen </script> & leave'}


def test_the_template_sees_type_timestamp_data_and_the_whole_payload() -> None:
    source = ('{"t": {{ type|tojson }}, "at": {{ timestamp|tojson }}, '
              '"from": {{ data.changes.severity.from|tojson }}, "all": {{ payload|tojson }}}')
    rendered = json.loads(render(source))
    assert rendered["t"] == "incident.updated"
    assert rendered["at"] == "2026-01-01T00:00:00Z"
    assert rendered["from"] == "high"
    assert rendered["all"] == payload()


def test_large_incident_numbers_pass_through_filters() -> None:
    body = payload()
    body["data"]["incident"]["version"] = 1_234_567
    assert render('{"v": {{ data.incident.version|string|tojson }}}', body) == b'{"v": "1234567"}'


def test_a_syntax_error_names_the_line() -> None:
    with pytest.raises(InvalidInput) as caught:
        PayloadTemplate.compile('{"text": "x",\n "more": {{ data.incident.title }\n}')
    assert caught.value.errors is not None
    assert caught.value.errors[0]["field"] == "template"
    assert caught.value.errors[0]["message"].startswith("line 2: ")


def test_an_unclosed_block_is_refused_when_compiled() -> None:
    with pytest.raises(TemplateError, match="endif"):
        PayloadTemplate.compile("{% if data %}\n{}")


def test_an_overlong_source_is_refused() -> None:
    with pytest.raises(TemplateError, match="at most 20000 characters"):
        PayloadTemplate.compile("{}" + " " * 20_000)


def test_a_misspelt_field_is_named_with_its_line() -> None:
    message = refusal('{\n"text": {{ data.incident.titel|tojson }}\n}')
    assert message == "line 2: 'dict object' has no attribute 'titel'"


def test_output_that_is_not_json_is_refused_with_the_fix() -> None:
    message = refusal('{"text": "{{ data.incident.title }}" trailing}')
    assert "output is not JSON" in message
    assert "tojson" in message


def test_nan_is_not_json_to_receivers() -> None:
    assert "NaN is not JSON" in refusal('{"x": NaN}')


def test_plain_string_interpolation_that_breaks_json_is_caught() -> None:
    assert "not JSON" in refusal('{"text": "{{ data.incident.title }}"}', payload(title='a "b"'))


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ data.__class__ }}",
    "{{ lipsum.__globals__ }}",
])
def test_python_internals_are_out_of_reach(source: str) -> None:
    assert "unsafe" in refusal(source)


def test_the_payload_cannot_be_changed_from_a_template() -> None:
    body = payload()
    assert "unsafe" in refusal('{{ data.update({"x": 1}) }}', body)
    assert "x" not in body["data"]


@pytest.mark.parametrize(("source", "words"), [
    ("{% for i in range(10**9) %}x{% endfor %}", "range() may produce at most 10000"),
    ("{% for i in range(9000) %}{% for j in range(9000) %}{% endfor %}{% endfor %}",
     "range() may produce at most 10000"),
    ("{{ 'x' * 10**9 }}", "repeating to more than"),
    ("{{ 2 ** (10**9) }}", "too large"),
    ("{{ 'x'|center(10**9) }}", "too large an argument"),
    ("{{ 'x'.ljust(10**9) }}", "too large an argument"),
    ("{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}", "larger than 256 KiB"),
])
def test_runaway_templates_are_stopped_fast(source: str, words: str) -> None:
    started = time.monotonic()
    assert words in refusal(source)
    assert time.monotonic() - started < 1


def test_a_modest_loop_is_fine() -> None:
    source = '[{% for i in range(3) %}{{ i }}{% if not loop.last %}, {% endif %}{% endfor %}]'
    assert render(source) == b"[0, 1, 2]"


def test_runtime_errors_become_template_errors() -> None:
    assert refusal("{{ 1 / 0 }}") == "line 1: division by zero"


def test_check_returns_a_preview_rendered_from_a_real_incident() -> None:
    assert json.loads(check(GUARDED_CHAT)) == {"text": "[INC-7] Checkout down"}


def test_check_covers_every_incident_event_type() -> None:
    samples = sample_payloads()
    assert set(samples) == {kind for kind in EventType if kind.startswith("incident.")}
    assert samples[EventType.INCIDENT_UPDATED]["data"]["changes"] == {
        "severity": {"from": "high", "to": "critical"}
    }
    comment = samples[EventType.INCIDENT_COMMENT_ADDED]["data"]["comment"]
    assert set(comment) == {"id", "body", "actor"}


def test_check_catches_fields_that_only_some_events_have() -> None:
    comment_only = '{"text": {{ data.comment.body|tojson }}}'
    with pytest.raises(TemplateError, match="has no attribute 'comment'"):
        check(comment_only, private_incidents=False)
    preview = check(
        comment_only, event_types=[EventType.INCIDENT_COMMENT_ADDED], private_incidents=False
    )
    assert json.loads(preview) == {"text": "Rolled back to v412."}


def test_check_refuses_a_template_that_breaks_on_private_incidents() -> None:
    with pytest.raises(TemplateError) as caught:
        check(CHAT)
    message = caught.value.message
    assert message.startswith("fails for private incidents")
    assert "has no attribute 'reference'" in message
    assert "is defined" in message


def test_private_comments_carry_no_body_so_a_comment_template_must_guard_it() -> None:
    with pytest.raises(TemplateError, match="fails for private incidents"):
        check('{"text": {{ data.comment.body|tojson }}}',
              event_types=[EventType.INCIDENT_COMMENT_ADDED])


def test_check_accepts_an_unguarded_template_when_private_incidents_are_filtered_out() -> None:
    assert json.loads(check(CHAT, private_incidents=False))["text"] == "[INC-7] Checkout down"


def test_a_guarded_template_renders_private_incidents_without_leaking() -> None:
    redacted = {"type": "incident.updated", "timestamp": "2026-01-01T00:00:00Z",
                "data": {"incident": {"id": "inc_1", "version": 4}}}
    assert json.loads(render(GUARDED_CHAT, redacted)) == {
        "text": "A private incident changed (version 4)"
    }


def test_check_without_incident_events_only_compiles() -> None:
    assert check("{}", event_types=[EventType.ENDPOINT_DISABLED]) == b""
    with pytest.raises(TemplateError, match="line 1"):
        check("{{", event_types=[EventType.ENDPOINT_DISABLED])


BOMBS = {
    "printf width": "{{ (('%0999999999d' % 1)|length)|tojson }}",
    "printf star": "{{ (('%*d' % (999999999, 1))|length)|tojson }}",
    "format filter": "{{ ('%0999999999d'|format(1)|length)|tojson }}",
    "str.format": '{{ ("{:0999999999d}".format(1)|length)|tojson }}',
    "nested loops": '{% set s = "x" * 262144 %}{% for a in s %}{% for b in s %}'
                    "{% endfor %}{% endfor %}1",
    "joined repeats": '{{ ((["x" * 200000] * 200000)|join|length)|tojson }}',
    "repeat": '{{ ("x" * 10 ** 9)|length }}',
}


@pytest.mark.parametrize("source", BOMBS.values(), ids=BOMBS.keys())
def test_a_template_bomb_fails_its_render_quickly_and_small(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError):
        PayloadTemplate.compile(source).render(sample_payloads()[EventType.INCIDENT_CREATED])
    assert time.monotonic() - started < RENDER_SECONDS + 1


def test_a_bomb_that_spares_the_sample_fails_only_its_own_render() -> None:
    source = ('{% if data.incident.title is defined and data.incident.title != "Checkout down" %}'
              '{% set s = "x" * 262144 %}'
              "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}{% endif %}1")
    assert check(source) == b"1"  # cheap on the sample
    payload = sample_payloads()[EventType.INCIDENT_CREATED]
    payload["data"]["incident"]["title"] = "Something else"
    with pytest.raises(TemplateError, match="loop iterations"):
        PayloadTemplate.compile(source).render(payload)


def test_loops_and_formatting_within_bounds_still_work() -> None:
    source = ('{"text": {{ (("%5d|" % 3) ~ "{:>4}|".format("ab") ~ '
              '(range(3)|join(","))) | tojson }}, '
              '"n": {% for i in [1, 2] %}{{ loop.index }}{% endfor %}}')
    body = PayloadTemplate.compile(source).render(sample_payloads()[EventType.INCIDENT_CREATED])
    assert json.loads(body) == {"text": "    3|  ab|0,1,2", "n": 12}
