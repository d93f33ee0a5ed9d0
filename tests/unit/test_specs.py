"""The check that keeps the loopback fakes honest (tests/support/specs.py): it must
catch a request the real API would refuse and an answer the real API never gives, or
the fakes could drift again without a test noticing."""

from __future__ import annotations

import json

from tests.support import specs

BASIC = {"Authorization": "Basic eDp5", "Content-Type": "application/json"}
BEARER = {"Authorization": "Bearer xoxb-1", "Content-Type": "application/json"}


def test_a_jira_request_off_the_description_is_caught() -> None:
    checker = specs.Checker(specs.jira())
    checker.request("POST", "/rest/api/3/issue", {}, BASIC,
                    {"fields": {"summary": "ok"}})
    assert checker.violations == []

    checker.request("POST", "/rest/api/3/issue", {}, BASIC, {"fields": "summary"})
    checker.request("GET", "/rest/api/3/issue/OPS-1", {"fields": "status", "field": "x"},
                    BASIC, None)
    checker.request("GET", "/rest/api/3/issue/OPS-1/comment", {"startAt": "two"}, BASIC,
                    None)
    checker.request("GET", "/rest/api/3/myself", {}, {}, None)
    checker.request("POST", "/rest/api/3/search", {}, BASIC, {"jql": "project = OPS"})

    assert checker.violations == [
        "POST /rest/api/3/issue request: body fields: 'summary' is not of type 'object'",
        "GET /rest/api/3/issue/OPS-1 request: query parameter 'field' is not declared",
        "GET /rest/api/3/issue/OPS-1/comment request: query parameter startAt='two' is "
        "not of type integer",
        "GET /rest/api/3/myself request: no HTTP Basic Authorization header (the operation "
        "takes basicAuth or OAuth2)",
        "POST /rest/api/3/search: no such operation in the API description",
    ]


def test_a_jira_answer_off_the_description_is_caught() -> None:
    checker = specs.Checker(specs.jira())
    create = checker.request("POST", "/rest/api/3/issue", {}, BASIC,
                             {"fields": {"summary": "ok"}})
    checker.response(create, 201, {}, json.dumps({"id": "1", "key": "OPS-1"}).encode())
    checker.response(create, 201, {}, json.dumps({"id": 1, "issueKey": "OPS-1"}).encode())
    checker.response(create, 400, {}, json.dumps({"message": "bad"}).encode())
    checker.response(create, 429, {}, b"")

    assert checker.violations == [
        "POST /rest/api/3/issue answer 201: body id: 1 is not of type 'string'",
        "POST /rest/api/3/issue answer 201: body (top): Additional properties are not "
        "allowed ('issueKey' was unexpected)",
        "POST /rest/api/3/issue answer 400: body (top): Additional properties are not "
        "allowed ('message' was unexpected)",
        "POST /rest/api/3/issue answer 429: a 429 without Retry-After",
    ]


def test_slack_arguments_and_answers_are_checked_with_documented_errata() -> None:
    checker = specs.Checker(specs.slack())
    post = checker.request("POST", "/api/chat.postMessage", {}, BEARER, {
        "channel": "C0INCIDENT", "text": "hi", "blocks": [{"type": "section"}],
        "metadata": {"event_type": "x", "event_payload": {}}})
    checker.response(post, 200, {}, json.dumps(
        {"ok": False, "error": "invalid_blocks"}).encode())  # newer than the description
    assert checker.violations == []

    checker.request("POST", "/api/chat.postMessage", {}, BEARER, {"chanel": "C0INCIDENT"})
    checker.response(post, 200, {}, json.dumps({"ok": False, "error": "no_such"}).encode())
    checker.response(post, 200, {}, json.dumps(
        {"ok": True, "channel": "C123", "ts": "1.2", "message": {}}).encode())

    assert checker.violations[0] == (
        "POST /api/chat.postMessage request: argument 'chanel' is not declared")
    assert checker.violations[1] == (
        "POST /api/chat.postMessage request: required argument 'channel' is missing")
    assert "'no_such' is not one of" in checker.violations[2]
    assert any("'C123' does not match" in item for item in checker.violations[3:])
    assert any("'1.2' does not match" in item for item in checker.violations[3:])
