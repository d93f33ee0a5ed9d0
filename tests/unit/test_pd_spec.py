"""The PagerDuty spec checker the fake relies on: it accepts what PagerDuty itself
documents and refuses what PagerDuty would refuse, so "no violations" means something."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import pd_spec


@pytest.mark.parametrize(("method", "template"), pd_spec.OPERATIONS)
def test_every_documented_example_passes(method: str, template: str) -> None:
    operation = pd_spec._document()["paths"][template][method]
    content = (operation.get("requestBody") or {}).get("content", {})
    for example in content.get("application/json", {}).get("examples", {}).values():
        assert pd_spec.request_errors(method, template, example["value"]) == []
    for status, answer in operation["responses"].items():
        for example in answer.get("content", {}).get("application/json", {}).get(
                "examples", {}).values():
            assert pd_spec.response_errors(method, template, int(status),
                                           example["value"]) == []


@pytest.mark.parametrize(("body", "wrong"), [
    ({"incident": {"type": "incident", "title": "x"}}, "'service' is a required property"),
    ({"incident": {"type": "incident", "title": "x", "urgency": "urgent",
                   "service": {"id": "P1", "type": "service_reference"}}}, "'urgent' is not one"),
    ({"title": "x"}, "'incident' is a required property"),
])
def test_a_body_pagerduty_refuses_is_named(body: dict[str, Any], wrong: str) -> None:
    assert any(wrong in problem for problem in pd_spec.request_errors("POST", "/incidents",
                                                                      body))


def test_concrete_paths_find_their_operation_and_its_headers() -> None:
    assert pd_spec.template_of("/incidents/Q1000INC/notes") == "/incidents/{id}/notes"
    assert pd_spec.header_required("PUT", "/incidents/Q1", "From")
    assert not pd_spec.header_required("GET", "/incidents/Q1", "From")
    assert pd_spec.response_errors("GET", "/incidents/Q1", 418, {}) != []


def test_query_parameters_are_checked_against_the_operation() -> None:
    assert pd_spec.query_errors("GET", "/incidents", [
        ("incident_key", "k"), ("service_ids[]", "P1"), ("date_range", "all")]) == []
    assert pd_spec.query_errors("GET", "/incidents", [("service_id", "P1")]) == [
        "GET /incidents has no query parameter service_id"]
    assert pd_spec.query_errors("GET", "/incidents", [("date_range", "week")]) != []
