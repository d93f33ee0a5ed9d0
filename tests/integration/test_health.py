"""Liveness, readiness, metrics and the API description."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from interlock import config
from interlock.asgi import create_app
from interlock.bootstrap import build


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "workers": []}


def test_readyz_fails_when_the_database_is_unreachable() -> None:
    settings = config.load(
        {"database_url": "postgresql://nobody@127.0.0.1:1/none", "secret_key": "x" * 32},
        environ={}
    )
    container = build(settings)
    with TestClient(create_app(container)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "database" in response.json()["detail"]


def test_metrics_count_requests_by_route_template(client: TestClient, writer: dict[str, str]
                                                  ) -> None:
    client.get("/api/v1/incidents/INC-1", headers=writer)
    client.get("/api/v1/incidents/INC-2", headers=writer)
    text = client.get("/metrics").text
    assert ('interlock_http_requests_total{method="GET",'
            'route="/api/v1/incidents/{incident_id}",status="404"} 2.0') in text
    assert "INC-1" not in text
    assert "process_cpu_seconds_total" in text


def test_openapi_and_docs_describe_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/v1/incidents", "/api/v1/incidents/{incident_id}",
                 "/api/v1/incidents/{incident_id}/acknowledge",
                 "/api/v1/incidents/{incident_id}/timeline", "/api/v1/keys"):
        assert path in paths
    assert "bearer" in str(schema["components"]["securitySchemes"]).lower()
    assert "swagger" in client.get("/docs").text.lower()


def test_docs_page_forbids_framing_and_foreign_scripts_and_works_offline(
    client: TestClient,
) -> None:
    """Swagger UI used to come from a CDN with an inline script and no CSP: any site
    could frame it, and it showed nothing without internet access."""
    page = client.get("/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'self'"
    assert "script-src" not in directives  # scripts fall back to 'self' only
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text  # nothing inline, so the policy can forbid it
    assert "https://" not in page.text and "http://" not in page.text
    for asset in re.findall(r'(?:src|href)="(/[^"]+)"', page.text):
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert served.headers["x-frame-options"] == "DENY", asset
    assert "SwaggerUIBundle" in client.get("/docs/start.js").text
