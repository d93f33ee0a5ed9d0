"""Sending the mail queue over SMTP.

The standard library's ``smtplib`` in a thread, not an asyncio client: mail is a
trickle next to webhooks (a confirmation now and then, one message per subscriber
per public update), a round sends its whole batch over one connection, and the
thread keeps the event loop free while a slow server answers. No new dependency, and
STARTTLS and AUTH as every mail server expects them.

The transport never raises: a server that cannot be reached makes every message of
the round retryable; a 4xx answer (greylisting, a full queue) is retryable; a 5xx
answer for a recipient (no such mailbox) is final for that message.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from interlock.domain.mail import MailResult, OutgoingMail
from interlock.logs import get_logger
from interlock.services.mail import CLAIM_BATCH, MailService
from interlock.worker.loops import Health, record_with_retries, run_rounds
from interlock.worker.wakeup import Wakeup

log = get_logger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int = 587
    sender: str | None = None
    username: str | None = None
    #: Plain only here, handed over from the settings' SecretStr where it is used.
    password: str | None = None
    starttls: bool = True
    timeout: float = 10.0

    def __repr__(self) -> str:  # never the password, in a log or a traceback
        return (f"SmtpSettings(host={self.host!r}, port={self.port}, sender={self.sender!r}, "
                f"username={self.username!r}, starttls={self.starttls})")


def build_message(mail: OutgoingMail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(idstring=mail.id, domain=domain)
    for name, value in mail.headers.items():
        message[name] = value
    message.set_content(mail.body)
    return message


class SmtpTransport:
    """Implements ports.mail.MailTransport with smtplib."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    @property
    def configured(self) -> bool:
        return bool(self._settings.host and self._settings.sender)

    async def send(self, messages: Sequence[OutgoingMail]) -> list[MailResult]:
        if not messages:
            return []
        return await asyncio.to_thread(self._send_all, list(messages))

    def _send_all(self, messages: list[OutgoingMail]) -> list[MailResult]:
        settings = self._settings
        where = f"{settings.host}:{settings.port}"
        try:
            connection = self._connect()
        except (OSError, smtplib.SMTPException) as error:
            detail = f"could not reach the mail server at {where}: {_said(error)}"
            return [MailResult(mail.id, detail, retryable=True) for mail in messages]
        results: list[MailResult] = []
        try:
            for index, mail in enumerate(messages):
                try:
                    refused = connection.send_message(
                        build_message(mail, settings.sender or ""),
                        from_addr=parseaddr(settings.sender or "")[1],
                        to_addrs=[mail.recipient])
                except smtplib.SMTPRecipientsRefused as error:
                    code, text = next(iter(error.recipients.values()), (0, b""))
                    results.append(_refused(mail, code, text))
                    continue
                except smtplib.SMTPResponseException as error:
                    results.append(_refused(mail, error.smtp_code, error.smtp_error))
                    continue
                except (OSError, smtplib.SMTPException) as error:
                    # The connection is gone: this and every message after it wait.
                    detail = f"the mail server at {where} hung up: {_said(error)}"
                    results.extend(MailResult(item.id, detail, retryable=True)
                                   for item in messages[index:])
                    return results
                if refused:
                    code, text = next(iter(refused.values()))
                    results.append(_refused(mail, code, text))
                else:
                    results.append(MailResult(mail.id))
        finally:
            try:
                connection.quit()
            except (OSError, smtplib.SMTPException):
                connection.close()
        return results

    def _connect(self) -> smtplib.SMTP:
        settings = self._settings
        connection = smtplib.SMTP(settings.host or "", settings.port, timeout=settings.timeout)
        try:
            connection.ehlo()
            if settings.starttls:
                connection.starttls(context=ssl.create_default_context())
                connection.ehlo()
            if settings.username:
                connection.login(settings.username, settings.password or "")
        except BaseException:
            connection.close()
            raise
        return connection


def _refused(mail: OutgoingMail, code: int, text: bytes | str) -> MailResult:
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return MailResult(mail.id, f"the mail server refused it: {code} {said}".strip()[:500],
                      retryable=not 500 <= code < 600)


def _said(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error
        said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        return f"{error.smtp_code} {said}"[:300]
    return (f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)[:300]


class MailWorker:
    """Claims due mail, sends it, records each try. One round at a time: a batch goes
    over one SMTP connection, and mail volume never needs more."""

    def __init__(self, mail: MailService, transport: SmtpTransport, wakeup: Wakeup,
                 name: str, *, poll_interval: float = 1.0, batch: int = CLAIM_BATCH) -> None:
        self._mail = mail
        self._transport = transport
        self._wakeup = wakeup
        self._poll_interval = poll_interval
        self._batch = batch
        self.name = name
        self.health = Health()

    async def run(self, stop: asyncio.Event) -> None:
        if not self._transport.configured:
            log.info("no mail server configured (INTERLOCK_SMTP_HOST): mail stays queued")
            await stop.wait()
            return
        await run_rounds(self.step, self._wakeup, stop, self._poll_interval)

    async def step(self) -> bool:
        """One round; True when a full batch was sent (more may be due)."""
        claimed = await asyncio.to_thread(self._mail.claim, self.name, self._batch)
        if not claimed:
            return False
        results = await self._transport.send(claimed)
        tries = list(zip(claimed, results, strict=True))
        failed = sum(1 for result in results if not result.sent)
        if failed:
            log.info("mail not sent; it waits for a retry", failed=failed, sent=len(results) -
                     failed, error=next(r.error for r in results if not r.sent))
        await record_with_retries(lambda: self._mail.record(self.name, tries), "mail",
                                  self.health)
        return len(claimed) >= self._batch
