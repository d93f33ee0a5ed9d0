"""What ``interlock serve`` writes to its log: never a secret, even one in a URL, and by
default a line only for requests it refused or failed.

Tools that cannot send headers put a source's token in the ingest URL (``?token=``);
uvicorn's access log used to print that URL whole, right or wrong token alike.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.support.server import KEY_LINE, serving

ALERT = {"version": "4", "status": "firing", "alerts": []}


def _accepted_and_refused(tmp_path: Path, extra: dict[str, str] | None
                          ) -> tuple[str, str, str, str, dict[str, str]]:
    """Serve, post one alert with the right token in the query and one with a wrong
    one; the log, the admin key, both tokens and the source."""
    database_url = f"sqlite:///{tmp_path / 'interlock.db'}"
    with serving(database_url, tmp_path, "serve", extra) as server:
        admin_key = KEY_LINE.findall(server.output())[0]
        with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
            created = http.post("/api/v1/sources", json={"name": "am", "kind": "alertmanager"},
                                headers={"Authorization": f"Bearer {admin_key}"})
            assert created.status_code == 201, created.text
            source = created.json()
            token = source["token"]
            wrong = "ilt_" + "x" * 40
            accepted = http.post(f"/ingest/{source['id']}", params={"token": token},
                                 json=ALERT)
            assert accepted.status_code == 202, accepted.text
            refused = http.post(f"/ingest/{source['id']}?token={wrong}&other=1", json=ALERT)
            assert refused.status_code == 401
        server.stop()
    return server.output(), admin_key, token, wrong, source


def _request_lines(log: str, source_id: str) -> list[str]:
    return [line for line in log.splitlines() if f"/ingest/{source_id}" in line]


def test_by_default_only_refused_requests_are_logged_and_tokens_never(tmp_path: Path
                                                                      ) -> None:
    log, admin_key, token, wrong, source = _accepted_and_refused(tmp_path, None)
    lines = _request_lines(log, source["id"])
    assert len(lines) == 1, lines  # the 401; the 202 is only counted in /metrics
    assert re.search(rf'"POST /ingest/{source["id"]}\?token=\*\*\*&other=\*\*\* HTTP/1.1" '
                     r'401$', lines[0]), lines
    assert token not in log
    assert wrong not in log
    assert admin_key not in log.replace(f"INTERLOCK_KEY={admin_key}", "")


@pytest.mark.parametrize("mode", ["all", "off"])
def test_access_log_setting(tmp_path: Path, mode: str) -> None:
    log, _, token, wrong, source = _accepted_and_refused(
        tmp_path, {"INTERLOCK_ACCESS_LOG": mode})
    lines = _request_lines(log, source["id"])
    if mode == "off":
        assert lines == []
        return
    assert [line.rsplit(" ", 1)[-1] for line in lines] == ["202", "401"], lines
    assert all("token=***" in line for line in lines), lines
    assert token not in log
    assert wrong not in log
