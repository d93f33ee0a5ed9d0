"""Fuzzing the HTTP API from its own OpenAPI document with schemathesis.

Whatever a client sends, valid or not, Interlock must answer with a 4xx that says what
was wrong, never a 5xx; what it answers must match what /openapi.json promises (status
codes, media types, bodies); what the schema rules out must be refused, and what it
allows accepted unless the reason is one tests/schemathesis.toml names. Two runs per
database: single requests (valid and invalid, some aimed at real rows), and sequences
that follow the links between operations (create a source, then read, change, rotate
and delete it). Both are derandomised and bounded, so they repeat exactly and stay
well under a minute; bench/fuzz.py runs far more of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from interlock.domain.keys import Scope
from interlock.services.container import Container

CONFIG = Path(__file__).parents[1] / "schemathesis.toml"
#: Single requests per database.
CASES = 250
#: Sequences per database, and requests in each at most.
SEQUENCES = 12
STEPS = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
BOUNDED = settings(derandomize=True, database=None, deadline=None,
                   suppress_health_check=list(HealthCheck))


def load(client: TestClient) -> Any:
    """The API's schema as schemathesis reads it, with the shared settings."""
    config = SchemathesisConfig.from_path(CONFIG)
    return schemathesis.openapi.from_asgi("/openapi.json", client.app, config=config)


@pytest.fixture
def targets(client: TestClient, container: Container, admin: dict[str, str]
            ) -> dict[str, list[str]]:
    """Real ids for path parameters: a few incidents in different states (by id and by
    reference), a spare API key and a status page with a component, so that fuzzed
    paths like /api/v1/incidents/INC-1 reach rows and state transitions, not only
    404s."""
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
    page = client.post("/api/v1/status-pages", headers=admin,
                       json={"name": "Acme", "slug": "acme"}).json()
    component = client.post(f"/api/v1/status-pages/{page['id']}/components", headers=admin,
                            json={"name": "API", "services": ["api"]}).json()
    return {"incident_id": incidents, "key_id": [spare.id], "page_id": [page["id"]],
            "component_id": [component["id"]]}


def test_single_requests_are_answered_as_the_schema_says(
    client: TestClient, admin: dict[str, str], targets: dict[str, list[str]]
) -> None:
    schema = load(client)
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE),
        schema.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(BOUNDED, max_examples=CASES,
              phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=cases, pick=st.one_of(st.none(), st.integers(min_value=0, max_value=63)))
    def check(case: Case, pick: int | None) -> None:
        if pick is not None:
            _aim(case, targets, pick)
        case.headers = {**(case.headers or {}), **admin}
        response = case.call()
        case.validate_response(response, checks=CHECKS)

    check()


def test_sequences_following_links_are_answered_as_the_schema_says(
    client: TestClient, admin: dict[str, str]
) -> None:
    workflow = load(client).as_state_machine()
    assert workflow.bundles, "no links between operations: nothing to follow"

    class Sequences(workflow):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"headers": admin}

        def validate_response(self, response: Any, case: Case,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    run_state_machine_as_test(Sequences, settings=settings(
        BOUNDED, max_examples=SEQUENCES, stateful_step_count=STEPS,
        phases=[Phase.generate]))


def _aim(case: Case, targets: dict[str, list[str]], pick: int) -> None:
    """Replace generated ids in the path with real ones."""
    path: dict[str, Any] = dict(case.path_parameters or {})
    for name, values in targets.items():
        if name in path:
            path[name] = values[pick % len(values)]
    if path:
        case.path_parameters = path
