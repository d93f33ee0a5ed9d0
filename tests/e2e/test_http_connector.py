"""The README's GitHub example of the generic HTTP connector, end to end: a real
``interlock serve`` with its embedded worker (on SQLite and on PostgreSQL), and a
loopback server speaking GitHub's issues API and sending GitHub's signed webhooks.

incident declared → issue opened; acknowledged → nothing (GitHub has no such state);
commented → issue comment; resolved → issue closed, and GitHub's webhook for that
(sent by Interlock's own account) dropped as an echo → a person reopens, assigns and
comments on GitHub → the incident is reopened, assigned and commented, and GitHub is
only read → a forged webhook is refused and leaves no trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support import fake_github
from tests.support.fake_github import FakeGitHub
from tests.support.http_examples import GITHUB, pointed_at, readme_example
from tests.support.server import KEY_LINE, serving
from tests.support.waiting import eventually

SETTINGS = {"INTERLOCK_ALLOWED_TARGETS": "127.0.0.0/8",
            "INTERLOCK_SECRET_KEY": "acceptance-secret",
            "INTERLOCK_WORKER_POLL_SECONDS": "0.2"}


def test_the_readme_github_example_end_to_end(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path, "interlock", SETTINGS) as server, \
            FakeGitHub() as github:
        (secret,) = KEY_LINE.findall(server.output())
        api = httpx.Client(base_url=server.base_url, timeout=10,
                           headers={"Authorization": f"Bearer {secret}"})
        body = pointed_at(readme_example(GITHUB), github.url, bearer_token=fake_github.TOKEN,
                          hmac_secret=fake_github.WEBHOOK_SECRET)
        created = api.post("/api/v1/connectors", json=body)
        assert created.status_code == 201, created.text
        connector = created.json()
        hook = f"{server.base_url}/hooks/{connector['id']}"

        def idle() -> bool:
            return api.get(f"/api/v1/connectors/{connector['id']}").json()[
                "queue"]["pending"] == 0

        def current() -> dict[str, Any]:
            found: dict[str, Any] = api.get(f"/api/v1/incidents/{key}").json()
            return found

        def activity() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = api.get(
                f"/api/v1/connectors/{connector['id']}/activity").json()["data"]
            return found

        # 1. An incident is declared: GitHub gets an issue.
        incident = api.post("/api/v1/incidents", json={
            "title": "Checkout is failing", "severity": "high",
            "summary": "Error rate above 5% on /pay."}).json()
        key = incident["id"]
        # (The first push waits for the worker's first round: generous on a busy machine.)
        issue = eventually(lambda: github.issues.get(1), "issue opened", timeout=60)
        eventually(idle, "push done")
        assert issue.title == "Checkout is failing"
        reference = incident["reference"]
        assert issue.body.startswith("Error rate above 5% on /pay.\n\n")
        assert issue.body.endswith(f"Interlock {reference}: http://127.0.0.1:8080/incidents/"
                                   f"{reference}")  # INTERLOCK_BASE_URL's default
        assert issue.labels == ["incident"]
        [link] = api.get(f"/api/v1/incidents/{key}/links").json()["data"]
        assert (link["external_id"], link["url"]) == (
            "1", "https://github.com/acme/ops/issues/1")

        # 2. Acknowledged (an open issue still), then a comment, then resolved.
        github.forget_requests()
        api.post(f"/api/v1/incidents/{key}/acknowledge")
        api.post(f"/api/v1/incidents/{key}/comments", json={"body": "Rolling back v413"})
        eventually(lambda: issue.comments, "comment posted")
        api.post(f"/api/v1/incidents/{key}/resolve")
        eventually(lambda: issue.state == "closed", "issue closed")
        eventually(idle, "pushes done")
        assert [(method, path) for method, path in github.calls()] == [
            ("POST", "/repos/acme/ops/issues/1/comments"),
            ("PATCH", "/repos/acme/ops/issues/1")]
        [comment] = issue.comments
        assert comment.author == fake_github.BOT
        assert comment.body.endswith(": Rolling back v413")
        assert issue.state_reason == "completed"

        # 3. GitHub's webhooks for Interlock's own changes come back: echoes, dropped.
        echoes = list(github.api_webhooks)
        assert len(echoes) == 2  # the comment and the close, both by interlock-bot
        for echo in echoes:
            answered = httpx.post(hook, headers=echo.headers, content=echo.body, timeout=10)
            assert answered.status_code == 200, answered.text
            assert "made by Interlock itself" in answered.json()["message"]
        assert current()["status"] == "resolved"

        # 4. A person reopens the issue, assigns it and comments, on GitHub.
        github.forget_requests()
        for webhook in (github.reopen_as(1, by="alice"),
                        github.assign_as(1, "carol", by="alice"),
                        github.comment_as(1, "Still failing for EU cards", by="alice")):
            answered = httpx.post(hook, headers=webhook.headers, content=webhook.body,
                                  timeout=10)
            assert answered.status_code == 200, answered.text
        eventually(lambda: current()["status"] == "triggered"
                   and current()["assignee"] == "carol", "reopened and assigned from GitHub")
        eventually(idle, "pulls done")
        timeline = api.get(f"/api/v1/incidents/{key}/timeline").json()["data"]
        comments = [(entry["body"], entry["origin"].get("actor")) for entry in timeline
                    if entry["kind"] == "incident.comment_added"]
        assert comments == [("Rolling back v413", None),
                            ("Still failing for EU cards", "alice")]
        reopened = next(entry for entry in timeline if entry["kind"] == "incident.reopened")
        assert reopened["origin"]["id"] == connector["id"]
        # GitHub was only read: its own changes are never written back to it.
        assert {method for method, _ in github.calls()} == {"GET"}
        assert len(issue.comments) == 2

        # 5. A forged webhook: 401, and nothing recorded.
        before = len(activity())
        forged = github.signed("issues", {"action": "closed", "issue": {"number": 1},
                                          "sender": {"login": "mallory"}},
                               secret="not-the-secret")
        refused = httpx.post(hook, headers=forged.headers, content=forged.body, timeout=10)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert len(activity()) == before
        assert current()["status"] == "triggered"
        server.stop()
