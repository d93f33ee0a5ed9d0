"""The outgoing mail queue against a real SMTP server on loopback: mail is sent, a
server that is down delays it (retried, visible) and loses nothing, a mailbox that
does not exist fails it for good, and the SMTP password reaches no log or message."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from interlock import config
from interlock.clock import ManualClock
from interlock.domain.ids import new_id
from interlock.domain.mail import MailKind, MailStatus, OutgoingMail
from interlock.services.container import Container
from interlock.worker.mail import MailWorker, SmtpTransport
from interlock.worker.runner import smtp_settings
from interlock.worker.wakeup import Wakeup
from tests.support.smtp import SmtpSink


def _queue(hub: Container, *recipients: str) -> list[OutgoingMail]:
    now = hub.clock.now()
    mails = [OutgoingMail(id=new_id("mail", now), recipient=recipient,
                          subject="[Example] Elevated API errors", body="We are on it.\n",
                          kind=MailKind.UPDATE, created_at=now,
                          headers={"List-Unsubscribe": "<https://status.example.com/u/1>"})
             for recipient in recipients]
    with hub.store.transaction(write=True) as tx:
        hub.mail.enqueue_in(tx, mails)
    return mails


def _worker(hub: Container, sink: SmtpSink, **extra: object) -> MailWorker:
    settings = config.load({"database_url": hub.settings.database_url, **sink.settings,
                            **extra}, environ={})
    return MailWorker(hub.mail, SmtpTransport(smtp_settings(settings)), Wakeup(), "test-mail")


def _round(worker: MailWorker) -> bool:
    return asyncio.run(asyncio.wait_for(worker.step(), 20))


def test_queued_mail_reaches_the_smtp_server(hub: Container, smtp_server: SmtpSink) -> None:
    [mail] = _queue(hub, "ada@example.org")
    _round(_worker(hub, smtp_server))
    [received] = smtp_server.wait_for(1)
    assert received.recipients == ["ada@example.org"]
    assert received.subject == "[Example] Elevated API errors"
    assert received.message["From"] == "Status <status@example.com>"
    assert received.message["List-Unsubscribe"] == "<https://status.example.com/u/1>"
    assert received.message["Message-ID"]
    assert received.text.strip() == "We are on it."
    stored = hub.mail.get(mail.id)
    assert stored is not None and stored.status is MailStatus.SENT and stored.attempts == 1


def test_a_server_that_is_down_delays_mail_and_loses_none(
        hub: Container, smtp_sink: SmtpSink, manual_clock: ManualClock) -> None:
    mails = _queue(hub, "ada@example.org", "bob@example.org")
    worker = _worker(hub, smtp_sink)
    _round(worker)  # nobody listens on the port yet
    for mail in mails:
        waiting = hub.mail.get(mail.id)
        assert waiting is not None and waiting.status is MailStatus.PENDING
        assert waiting.attempts == 1 and waiting.next_attempt_at is not None
        assert "could not reach the mail server" in (waiting.last_error or "")
    assert hub.mail.counts()["pending"] == 2
    assert not _round(worker)  # not due again yet: nothing is sent, nothing is lost
    smtp_sink.start()
    manual_clock.advance(timedelta(seconds=10))
    _round(worker)
    received = smtp_sink.wait_for(2)
    assert sorted(item.recipients[0] for item in received) == [
        "ada@example.org", "bob@example.org"]
    assert hub.mail.counts() == {"pending": 0, "sent": 2, "failed": 0}


def test_a_mailbox_that_does_not_exist_fails_at_once(
        hub: Container, smtp_server: SmtpSink) -> None:
    smtp_server.refuse.add("nobody@example.org")
    gone, fine = _queue(hub, "nobody@example.org", "ada@example.org")
    _round(_worker(hub, smtp_server))
    refused = hub.mail.get(gone.id)
    assert refused is not None and refused.status is MailStatus.FAILED
    assert refused.next_attempt_at is None and "550" in (refused.last_error or "")
    sent = hub.mail.get(fine.id)
    assert sent is not None and sent.status is MailStatus.SENT
    assert [item.recipients for item in smtp_server.wait_for(1)] == [["ada@example.org"]]


def test_the_smtp_password_is_never_shown(hub: Container, smtp_server: SmtpSink,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    settings = config.load({"database_url": "sqlite://", **smtp_server.settings,
                            "smtp_username": "relay", "smtp_password": "hunter2-secret"},
                           environ={})
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in repr(smtp_settings(settings))
    [mail] = _queue(hub, "ada@example.org")
    # The loopback server offers no AUTH: the login fails, and says so without it.
    _round(_worker(hub, smtp_server, smtp_username="relay",
                   smtp_password="hunter2-secret"))
    stored = hub.mail.get(mail.id)
    assert stored is not None and stored.status is MailStatus.PENDING
    assert stored.last_error and "hunter2-secret" not in stored.last_error
    captured = capsys.readouterr()
    assert "hunter2-secret" not in captured.out + captured.err


def test_a_mail_server_needs_a_from_address() -> None:
    with pytest.raises(config.ConfigError, match="smtp_from"):
        config.load({"smtp_host": "mail.example.com"}, environ={})
