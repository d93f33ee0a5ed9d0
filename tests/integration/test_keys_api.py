"""API keys: created by admins, shown once, stored hashed, revocable at once."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from interlock.services.container import Container
from interlock.store.tables import api_keys

Headers = dict[str, str]


def test_admin_creates_a_scoped_key_that_works_at_once(client: TestClient, admin: Headers
                                                      ) -> None:
    response = client.post("/api/v1/keys", headers=admin,
                           json={"name": "grafana", "scopes": ["incidents:read"]})
    assert response.status_code == 201
    created = response.json()
    assert created["key"].startswith("ilk_")
    assert created["scopes"] == ["incidents:read"]
    assert created["key"].startswith(created["prefix"])
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/api/v1/incidents", headers=headers).status_code == 200
    assert client.post("/api/v1/incidents", headers=headers,
                       json={"title": "x"}).status_code == 403


def test_the_secret_is_never_shown_again_nor_stored(
    client: TestClient, admin: Headers, container: Container
) -> None:
    created = client.post("/api/v1/keys", headers=admin,
                          json={"name": "ci", "scopes": ["incidents:write"]}).json()
    secret = created["key"]
    listed = client.get("/api/v1/keys", headers=admin)
    one = client.get(f"/api/v1/keys/{created['id']}", headers=admin)
    assert secret not in listed.text and secret not in one.text
    assert "key" not in one.json()
    assert {item["name"] for item in listed.json()["data"]} >= {"admin", "ci"}
    engine = container.store.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(api_keys)).mappings().all()
    assert all(secret not in str(dict(row).values()) for row in rows)


def test_a_revoked_key_is_refused_on_its_next_request(client: TestClient, admin: Headers
                                                     ) -> None:
    created = client.post("/api/v1/keys", headers=admin,
                          json={"name": "temp", "scopes": ["incidents:read"]}).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/api/v1/incidents", headers=headers).status_code == 200
    revoked = client.delete(f"/api/v1/keys/{created['id']}", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    refused = client.get("/api/v1/incidents", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert client.delete("/api/v1/keys/key_missing", headers=admin).status_code == 404


def test_only_admins_manage_keys(client: TestClient, writer: Headers) -> None:
    response = client.post("/api/v1/keys", headers=writer,
                           json={"name": "sneaky", "scopes": ["admin"]})
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    assert client.get("/api/v1/keys", headers=writer).status_code == 403


def test_unknown_scopes_are_named(client: TestClient, admin: Headers) -> None:
    response = client.post("/api/v1/keys", headers=admin,
                           json={"name": "x", "scopes": ["incidents:delete"]})
    assert response.status_code == 422
    assert any("scopes" in error["field"] for error in response.json()["errors"])


def test_bootstrap_admin_key_is_made_once_only(container: Container) -> None:
    first = container.keys.bootstrap_admin()
    assert first is not None
    assert container.keys.bootstrap_admin() is None
    assert container.keys.authenticate(first).name == "bootstrap admin"


def test_the_last_active_admin_key_cannot_be_revoked(
    client: TestClient, admin: Headers, container: Container
) -> None:
    """A fuzzer revoked its own (the only) admin key and locked everyone out of the API."""
    own = client.get("/api/v1/keys", headers=admin).json()["data"][0]["id"]
    refused = client.delete(f"/api/v1/keys/{own}", headers=admin)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert "last active admin" in refused.json()["detail"]
    assert client.get("/api/v1/keys", headers=admin).status_code == 200

    other = client.post("/api/v1/keys", headers=admin,
                        json={"name": "second admin", "scopes": ["admin"]}).json()
    assert client.delete(f"/api/v1/keys/{own}", headers=admin).status_code == 200
    second = {"Authorization": f"Bearer {other['key']}"}
    assert client.delete(f"/api/v1/keys/{other['id']}", headers=second).status_code == 409
