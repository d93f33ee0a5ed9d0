"""The real ``interlock serve``, as a newcomer runs it from the README.

Starts the console script as a subprocess on a free loopback port, reads the admin key
its first start prints, walks through the README over real HTTP, stops it with SIGTERM
and starts it again on the same database: no second key is printed and the first one
still works. Runs once on SQLite and once on PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.support.server import (
    CLI_TIMEOUT,
    KEY_LINE,
    environment,
    interlock_command,
    serving,
)


def _cli(workdir: Path, *args: str) -> str:
    done = subprocess.run(
        [*interlock_command(), *args], capture_output=True, text=True, cwd=workdir,
        env=environment(workdir), timeout=CLI_TIMEOUT, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _declare(api: httpx.Client) -> str:
    """Declare an incident with an Idempotency-Key, retry it, misuse the key."""
    declaration = {"title": "Checkout returns 502", "severity": "high", "service": "checkout"}
    retry_safe = {"Idempotency-Key": "7d1c0e52-retry-me"}
    created = api.post("/incidents", json=declaration, headers=retry_safe)
    assert created.status_code == 201, created.text
    incident = created.json()
    reference = incident["reference"]
    assert (incident["status"], incident["version"]) == ("triggered", 1)
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/api/v1/incidents/{incident['id']}"

    replay = api.post("/incidents", json=declaration, headers=retry_safe)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == incident["id"]
    misuse = api.post("/incidents", json={"title": "Something else"}, headers=retry_safe)
    assert misuse.status_code == 422
    assert misuse.headers["Content-Type"] == "application/problem+json"
    return reference


def _work_on(api: httpx.Client, reference: str) -> None:
    """List, acknowledge, comment, assign with If-Match (then stale: 412), resolve."""
    listed = api.get("/incidents", params={"status": "triggered", "service": "checkout"})
    assert [item["reference"] for item in listed.json()["data"]] == [reference]
    assert listed.json()["next_cursor"] is None

    acknowledged = api.post(f"/incidents/{reference}/acknowledge")
    assert acknowledged.json()["status"] == "acknowledged"
    comment = api.post(f"/incidents/{reference}/comments",
                       json={"body": "Rolled back deploy 2291; error rate falling."})
    assert comment.status_code == 201
    assert comment.json()["kind"] == "incident.comment_added"

    current = api.get(f"/incidents/{reference}")
    assert current.headers["ETag"] == '"3"'
    assigned = api.patch(f"/incidents/{reference}", json={"assignee": "alice"},
                         headers={"If-Match": '"3"'})
    assert assigned.status_code == 200
    assert assigned.headers["ETag"] == '"4"'
    stale = api.patch(f"/incidents/{reference}", json={"assignee": "bob"},
                      headers={"If-Match": '"3"'})
    assert stale.status_code == 412
    assert stale.headers["Content-Type"] == "application/problem+json"
    assert stale.json()["status"] == 412

    resolved = api.post(f"/incidents/{reference}/resolve")
    assert (resolved.json()["status"], resolved.json()["version"]) == ("resolved", 5)
    timeline = api.get(f"/incidents/{reference}/timeline").json()["data"]
    assert [(entry["incident_version"], entry["kind"]) for entry in timeline] == [
        (1, "incident.created"),
        (2, "incident.acknowledged"),
        (3, "incident.comment_added"),
        (4, "incident.updated"),
        (5, "incident.resolved"),
    ]
    assert all(entry["origin"]["kind"] == "api_key" for entry in timeline)


def _private_stays_hidden(api: httpx.Client, reference: str, reader_key: str) -> None:
    """A key without incidents:private neither lists nor reads a private incident."""
    private = api.post("/incidents", json={"title": "Suspected credential leak",
                                           "severity": "critical", "visibility": "private"})
    private_reference = private.json()["reference"]
    as_reader = _bearer(reader_key)
    visible = api.get("/incidents", headers=as_reader).json()["data"]
    assert private_reference not in [item["reference"] for item in visible]
    assert reference in [item["reference"] for item in visible]
    hidden = api.get(f"/incidents/{private_reference}", headers=as_reader)
    assert hidden.status_code == 404
    assert hidden.headers["Content-Type"] == "application/problem+json"
    assert api.get(f"/incidents/{private_reference}").status_code == 200
    assert api.post(f"/incidents/{reference}/reopen", headers=as_reader).status_code == 403
    assert api.get("/incidents", headers=_bearer("ilk_not-a-key")).status_code == 401


def test_serve_walkthrough_restart(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path, "first") as server:
        printed = KEY_LINE.findall(server.output())
        assert len(printed) == 1, server.output()
        admin_key = printed[0]
        with httpx.Client(base_url=server.base_url + "/api/v1", headers=_bearer(admin_key),
                          timeout=10.0) as api:
            reference = _declare(api)
            _work_on(api, reference)
            created = _cli(tmp_path, "keys", "create", "--name", "status-bot",
                           "--scope", "incidents:read", "--db", database_url)
            reader_key = created.splitlines()[-1]  # the secret, alone on the last line
            assert reader_key.startswith("ilk_"), created
            _private_stays_hidden(api, reference, reader_key)
        server.stop()

    with serving(database_url, tmp_path, "second") as server:
        assert "INTERLOCK_KEY" not in server.output()
        assert "ilk_" not in server.output()
        with httpx.Client(base_url=server.base_url + "/api/v1", headers=_bearer(admin_key),
                          timeout=10.0) as api:
            assert api.get("/keys").status_code == 200
            assert api.get(f"/incidents/{reference}").json()["status"] == "resolved"
        server.stop()
