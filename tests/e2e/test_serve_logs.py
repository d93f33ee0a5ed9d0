"""What ``interlock serve`` writes to its log: never a secret, even one in a URL.

Tools that cannot send headers put a source's token in the ingest URL (``?token=``);
uvicorn's access log used to print that URL whole, right or wrong token alike.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.server import KEY_LINE, serving


def test_source_tokens_in_query_strings_never_reach_the_log(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'interlock.db'}"
    with serving(database_url, tmp_path, "serve") as server:
        admin_key = KEY_LINE.findall(server.output())[0]
        with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
            created = http.post("/api/v1/sources", json={"name": "am", "kind": "alertmanager"},
                                headers={"Authorization": f"Bearer {admin_key}"})
            assert created.status_code == 201, created.text
            source = created.json()
            token = source["token"]
            wrong = "ilt_" + "x" * 40
            alert = {"version": "4", "status": "firing", "alerts": []}
            accepted = http.post(f"/ingest/{source['id']}", params={"token": token},
                                 json=alert)
            assert accepted.status_code < 300, accepted.text
            refused = http.post(f"/ingest/{source['id']}?token={wrong}&other=1", json=alert)
            assert refused.status_code == 401
        server.stop()
    log = server.output()
    assert f"/ingest/{source['id']}" in log  # the access log is there ...
    assert token not in log  # ... but neither token is
    assert wrong not in log
    assert admin_key not in log.replace(f"INTERLOCK_KEY={admin_key}", "")
