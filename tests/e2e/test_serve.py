"""The real ``interlock serve``, as a newcomer runs it from the README.

Starts the console script as a subprocess on a free loopback port, reads the admin key
its first start prints, walks through the README over real HTTP, stops it with SIGTERM
and starts it again on the same database: no second key is printed and the first one
still works. Runs once on SQLite and once on PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 30.0
KEY_LINE = re.compile(r"export INTERLOCK_KEY=(ilk_[A-Za-z0-9_-]+)")


def _interlock() -> list[str]:
    """The console script next to this interpreter, or the module when not installed."""
    script = Path(sys.executable).parent / "interlock"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "interlock.cli.main"]


def _environment(workdir: Path) -> dict[str, str]:
    """The caller's environment without any INTERLOCK_* setting that could leak in."""
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith("INTERLOCK_")}
    environ["INTERLOCK_CONFIG"] = str(workdir / "no-such-interlock.toml")
    environ["PYTHONUNBUFFERED"] = "1"
    return environ


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"interlock serve exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.base_url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not ready after {START_TIMEOUT} s:\n{self.output()}")

    def stop(self) -> None:
        """SIGTERM, as a service manager would; uvicorn finishes its requests, shuts the
        app down and then re-raises the signal, so -SIGTERM is as clean as 0."""
        self.process.send_signal(signal.SIGTERM)
        returncode = self.process.wait(timeout=STOP_TIMEOUT)
        output = self.output()
        assert returncode in (0, -signal.SIGTERM), output
        assert "Application shutdown complete" in output, output
        assert "Traceback" not in output, output


@contextmanager
def serving(database_url: str, workdir: Path, name: str) -> Iterator[Server]:
    port = _free_port()
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*_interlock(), "serve", "--db", database_url, "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=_environment(workdir),
        )
        try:
            server = Server(process, f"http://127.0.0.1:{port}", log_path)
            server.wait_ready()
            yield server
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)


def _cli(workdir: Path, *args: str) -> str:
    done = subprocess.run(
        [*_interlock(), *args], capture_output=True, text=True, cwd=workdir,
        env=_environment(workdir), timeout=CLI_TIMEOUT, check=False,
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
