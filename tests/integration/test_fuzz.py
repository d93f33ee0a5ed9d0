"""Fuzzing the HTTP API from its own OpenAPI document with schemathesis.

Whatever a client sends, valid or not, Interlock must answer with a 4xx that says what
was wrong, never a 5xx; and what it answers must match what /openapi.json promises
(status codes, media types, bodies). A few hundred derandomised cases per database keep
this bounded and repeatable in CI.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from interlock.domain.keys import Scope
from interlock.services.container import Container

CASES = 300
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def targets(client: TestClient, container: Container, admin: dict[str, str]
            ) -> dict[str, list[str]]:
    """Real ids for path parameters: a few incidents in different states (by id and by
    reference) and a spare API key, so that fuzzed paths like /api/v1/incidents/INC-1
    reach rows and state transitions, not only 404s."""
    incidents: list[str] = []
    for title, visibility, action in [
        ("Checkout is down", "public", None),
        ("Disk full on db-2", "private", "acknowledge"),
        ("Old outage", "public", "resolve"),
    ]:
        response = client.post("/api/v1/incidents", headers=admin,
                               json={"title": title, "visibility": visibility})
        assert response.status_code == 201, response.text
        incident = response.json()
        if action:
            acted = client.post(f"/api/v1/incidents/{incident['id']}/{action}", headers=admin)
            assert acted.status_code == 200, acted.text
        incidents += [incident["id"], incident["reference"]]
    spare, _ = container.keys.create("spare", [Scope.INCIDENTS_READ])
    return {"incident_id": incidents, "key_id": [spare.id]}


def test_no_server_errors_and_answers_match_the_schema(
    client: TestClient, admin: dict[str, str], targets: dict[str, list[str]]
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE),
        schema.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=CASES, derandomize=True, database=None, deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, pick=st.one_of(st.none(), st.integers(min_value=0, max_value=63)))
    def check(case: Case, pick: int | None) -> None:
        if pick is not None:
            _aim(case, targets, pick)
        case.headers = {**(case.headers or {}), **admin}
        response = case.call()
        case.validate_response(response, checks=CHECKS)

    check()


def _aim(case: Case, targets: dict[str, list[str]], pick: int) -> None:
    """Replace generated ids in the path with real ones."""
    path: dict[str, Any] = dict(case.path_parameters or {})
    for name, values in targets.items():
        if name in path:
            path[name] = values[pick % len(values)]
    if path:
        case.path_parameters = path
