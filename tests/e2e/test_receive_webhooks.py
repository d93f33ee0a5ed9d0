"""``scripts/receive_webhooks.py``, the receiver the README starts: it says it is
listening only once it is, and under load prints one whole line per request."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from standardwebhooks import Webhook

from tests.support.server import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "receive_webhooks.py"
SECRET = "whsec_" + base64.b64encode(b"r" * 24).decode()
LINE = re.compile(r"^(evt_\d{4}) incident\.created INC-\d+ v1: \{\}$")
REQUESTS = 300


def _send(client: httpx.Client, url: str, number: int) -> int:
    message_id = f"evt_{number:04d}"
    body = json.dumps({"type": "incident.created", "data": {
        "incident": {"reference": f"INC-{number}", "version": 1}, "changes": {}}})
    now = datetime.now(UTC)
    signature = Webhook(SECRET).sign(message_id, now, body)
    answer = client.post(url, content=body, timeout=10, headers={
        "webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature, "content-type": "application/json"})
    return answer.status_code


def test_lines_stay_whole_under_load(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "receiver.out"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--port", str(port), "--secret", SECRET],
            stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while "listening" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/"
        with httpx.Client() as client, ThreadPoolExecutor(max_workers=16) as pool:
            assert _send(client, url, 0) == 200  # listening means it takes requests now
            statuses = list(pool.map(lambda n: _send(client, url, n), range(1, REQUESTS)))
        assert set(statuses) == {200}
        deadline = time.monotonic() + 20
        while log.read_text().count("\n") < REQUESTS + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=10)
    lines = log.read_text().splitlines()
    assert lines[0] == f"listening on http://127.0.0.1:{port}/"
    broken = [line for line in lines[1:] if not LINE.match(line)]
    assert not broken, broken[:5]
    assert sorted(LINE.match(line)[1] for line in lines[1:]) == [  # type: ignore[index]
        f"evt_{n:04d}" for n in range(REQUESTS)]
