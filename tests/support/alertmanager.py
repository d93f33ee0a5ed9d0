"""A real Prometheus Alertmanager on loopback, started and stopped by the test.

``scripts/alertmanager.sh ensure`` (run by ``make test``) installs Debian's
``prometheus-alertmanager`` and ``scripts/test.sh`` exports its path as
INTERLOCK_TEST_ALERTMANAGER. Without it the tests that need Alertmanager are skipped,
unless INTERLOCK_REQUIRE_ALERTMANAGER is set (as ``make test`` does), where they fail.

    with Receiver() as receiver, RunningAlertmanager(receiver.url) as am:
        am.post_alerts([alert("DiskFull", service="db")])
        receiver.wait_for(1)

Each instance gets its own temp dir (config, storage, log) and a free loopback port;
clustering is disabled (``--cluster.listen-address=``), so there is no gossip port and
no settle wait. The config is one route to one webhook receiver with
``send_resolved: true``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.waiting import eventually

BINARY_ENV = "INTERLOCK_TEST_ALERTMANAGER"
REQUIRE_ENV = "INTERLOCK_REQUIRE_ALERTMANAGER"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0

T = TypeVar("T")


def alertmanager_binary() -> str:
    """The Alertmanager binary to run, or skip (fail under ``make test``) without one."""
    binary = os.environ.get(BINARY_ENV)
    if binary:
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            pytest.fail(f"{BINARY_ENV}={binary} is not an executable file")
        return binary
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{BINARY_ENV} is not set; run the tests with `make test`")
    pytest.skip(f"no Alertmanager (set {BINARY_ENV} or run `make test`)")


def timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 in UTC with milliseconds, as Alertmanager's API takes it."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert(alertname: str, *, starts_at: datetime | None = None,
          annotations: Mapping[str, str] | None = None,
          generator_url: str = "http://prometheus.invalid/graph?g0.expr=up",
          **labels: str) -> dict[str, Any]:
    """One firing alert in the shape ``POST /api/v2/alerts`` takes."""
    return {
        "labels": {"alertname": alertname, **labels},
        "annotations": dict(annotations or {"summary": f"{alertname} is firing"}),
        "startsAt": timestamp(starts_at),
        "generatorURL": generator_url,
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment() -> dict[str, str]:
    """The caller's environment minus proxies: webhooks and API calls stay on loopback."""
    return {name: value for name, value in os.environ.items()
            if name.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}}


class RunningAlertmanager:
    """``with RunningAlertmanager(webhook_url) as am:`` runs a real Alertmanager whose
    single route sends every group to ``webhook_url``; ``am.url`` is its base URL."""

    def __init__(
        self,
        webhook_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        group_by: Sequence[str] = ("alertname", "service"),
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "1h",
        resolve_timeout: str = "5m",
        binary: str | None = None,
    ) -> None:
        self.webhook_url = webhook_url
        self.username = username
        self.password = password
        self.group_by = list(group_by)
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self.resolve_timeout = resolve_timeout
        self.binary = binary
        self.port = 0
        self.output = ""  # the log, kept after exit for failure messages
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._http: httpx.Client | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        webhook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": True}
        if self.username is not None or self.password is not None:
            webhook["http_config"] = {"basic_auth": {
                "username": self.username or "", "password": self.password or ""}}
        return {
            "global": {"resolve_timeout": self.resolve_timeout},
            "route": {
                "receiver": "interlock",
                "group_by": self.group_by,
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [{"name": "interlock", "webhook_configs": [webhook]}],
        }

    def __enter__(self) -> RunningAlertmanager:
        binary = self.binary or alertmanager_binary()
        self._dir = Path(tempfile.mkdtemp(prefix="interlock-alertmanager-"))
        config_path = self._dir / "alertmanager.yml"
        # JSON is YAML; no YAML writer needed.
        config_path.write_text(json.dumps(self.config(), indent=2))
        self.port = _free_port()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [binary, f"--config.file={config_path}",
                 f"--storage.path={self._dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 # Else externalURL in webhooks is http://<hostname>:PORT.
                 f"--web.external-url={self.url}",
                 "--cluster.listen-address=",
                 "--log.level=debug"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self._dir, env=_environment(),
            )
        self._http = httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT, trust_env=False)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._dir is not None:
            self.output = self.log()
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def log_path(self) -> Path:
        assert self._dir is not None, "Alertmanager is not running"
        return self._dir / "alertmanager.log"

    def log(self) -> str:
        """What Alertmanager has logged so far (``output`` once it has stopped)."""
        if self._dir is None:
            return self.output
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise AssertionError(
                    f"Alertmanager exited with {self._process.returncode}:\n{self.log()}")
            try:
                if self.client.get("/-/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"Alertmanager not ready after {START_TIMEOUT} s:\n{self.log()}")

    @property
    def client(self) -> httpx.Client:
        assert self._http is not None, "Alertmanager is not running"
        return self._http

    def _check(self, response: httpx.Response, *expected: int) -> httpx.Response:
        if response.status_code not in (expected or (200,)):
            raise AssertionError(
                f"{response.request.method} {response.request.url} -> "
                f"{response.status_code}: {response.text}\n--- alertmanager log ---\n"
                f"{self.log()}")
        return response

    # -- alerts ----------------------------------------------------------------------

    def post_alerts(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        """``POST /api/v2/alerts``: each alert has labels and optionally annotations,
        startsAt, endsAt and generatorURL (see :func:`alert`)."""
        self._check(self.client.post("/api/v2/alerts", json=[dict(a) for a in alerts]))

    def resolve(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        """Post ``alerts`` again with endsAt now, which Alertmanager treats as resolved."""
        ends_at = timestamp()
        self.post_alerts([{**a, "endsAt": ends_at} for a in alerts])

    def alerts(self, **params: Any) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (params such as ``active``, ``silenced``, ``filter``)."""
        found: list[dict[str, Any]] = self._check(
            self.client.get("/api/v2/alerts", params=params)).json()
        return found

    # -- silences --------------------------------------------------------------------

    def silences(self) -> list[dict[str, Any]]:
        """``GET /api/v2/silences``: every silence, with ``status.state`` active,
        pending or expired."""
        found: list[dict[str, Any]] = self._check(self.client.get("/api/v2/silences")).json()
        return found

    def silence(self, silence_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._check(
            self.client.get(f"/api/v2/silence/{silence_id}")).json()
        return found

    def create_silence(
        self,
        matchers: Mapping[str, str] | Sequence[Mapping[str, Any]],
        *,
        duration: timedelta = timedelta(hours=1),
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        created_by: str = "interlock-tests",
        comment: str = "silenced by a test",
    ) -> str:
        """``POST /api/v2/silences``; returns the new silence's id. ``matchers`` is
        either ``{label: value}`` (equality) or Alertmanager's own matcher objects
        (``name``, ``value``, ``isRegex``, optionally ``isEqual``)."""
        if isinstance(matchers, Mapping):
            matcher_list = [{"name": name, "value": value, "isRegex": False, "isEqual": True}
                            for name, value in matchers.items()]
        else:
            matcher_list = [{"isRegex": False, "isEqual": True, **m} for m in matchers]
        start = starts_at or datetime.now(UTC)
        body = {
            "matchers": matcher_list,
            "startsAt": timestamp(start),
            "endsAt": timestamp(ends_at or start + duration),
            "createdBy": created_by,
            "comment": comment,
        }
        created = self._check(self.client.post("/api/v2/silences", json=body)).json()
        silence_id: str = created["silenceID"]
        return silence_id

    def expire_silence(self, silence_id: str) -> None:
        """``DELETE /api/v2/silence/{id}``."""
        self._check(self.client.delete(f"/api/v2/silence/{silence_id}"))

    # -- waiting ---------------------------------------------------------------------

    def wait_until(self, probe: Callable[[], T | None], timeout: float = 10.0,
                   what: str = "condition") -> T:
        """Poll ``probe`` until it returns something truthy; fail with the log."""
        return eventually(probe, what, timeout=timeout, interval=0.05,
                          explain=lambda: f"--- alertmanager log ---\n{self.log()}")
