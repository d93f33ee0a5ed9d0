"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for tests.

``SmtpSink(port)`` is built on a free port but not started, so a test can queue mail
while "the mail server is down" and start it later on the same port
(``sink.start()``): what Interlock had queued must then arrive. Every wait has a
deadline (``wait_for``).

Fixtures (tests/conftest.py imports them): ``smtp_server`` (started) and
``smtp_sink`` (not started).
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import Envelope, Session

SENDER = "Status <status@example.com>"


@dataclass(frozen=True)
class Received:
    mail_from: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        return body.get_content() if body is not None else ""  # type: ignore[no-any-return]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(self, server: SmtpServer, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        if address in self._sink.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SmtpServer, session: Session, envelope: Envelope
                          ) -> str:
        raw = envelope.original_content or envelope.content or b""
        parsed = email.message_from_bytes(raw if isinstance(raw, bytes) else raw.encode(),
                                          policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self._sink.add(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpSink:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        #: Recipients answered 550 (a mailbox that does not exist).
        self.refuse: set[str] = set()
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._controller: Any = None

    @property
    def settings(self) -> dict[str, Any]:
        """Interlock settings that send to this server (plain SMTP on loopback)."""
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_from": SENDER,
                "smtp_starttls": False, "smtp_timeout": 5.0}

    def start(self) -> SmtpSink:
        controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                ready_timeout=10.0, decode_data=False)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def add(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def to(self, address: str) -> list[Received]:
        return [item for item in self.received if address in item.recipients]

    def wait_for(self, count: int, *, timeout: float = 15.0, to: str | None = None
                 ) -> list[Received]:
        """At least ``count`` messages (to ``to``, if given), within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.to(to) if to else self.received
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"the SMTP server got {len(found)} of {count} messages"
                    f"{' to ' + to if to else ''} within {timeout} s")
            time.sleep(0.05)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """An SMTP server on loopback, not started yet (the mail server is down)."""
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_server(smtp_sink: SmtpSink) -> SmtpSink:
    """An SMTP server on loopback, running."""
    return smtp_sink.start()
