"""Alerts in, first half: authenticate and durably store what sources send.

Accepting is the hot path and does the least: check the credentials, store the body,
answer. Parsing, deduplication and correlation follow in a worker, in bulk
(:mod:`interlock.services.processing`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from interlock.domain import json_input
from interlock.domain import sources as rules
from interlock.domain.alerts import (
    PayloadStatus,
    ReceivedPayload,
)
from interlock.domain.errors import MalformedJson, Unauthenticated
from interlock.domain.ids import new_id
from interlock.domain.sources import Source
from interlock.logs import get_logger
from interlock.ports.clock import Clock
from interlock.ports.store import Store

log = get_logger(__name__)

#: How long a source's settings are trusted from memory on the hot path.
SOURCE_CACHE_SECONDS = 2.0


class Intake:
    """Authenticate and durably store what sources send."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._cache: dict[str, tuple[float, Source | None]] = {}
        self._last_stored = 0.0

    def source(self, source_id: str) -> Source | None:
        """The source, from a short-lived cache: the ingest path reads it per request."""
        cached = self._fresh(source_id)
        if cached is not None:
            return cached[1]
        if len(source_id) > 40:
            return None
        with self._store.transaction() as tx:
            found = tx.sources.get(source_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[source_id] = (time.monotonic(), found)
        return found

    def cached_source(self, source_id: str) -> Source | None:
        """The source if it is in the cache and fresh, without touching the database."""
        cached = self._fresh(source_id)
        return cached[1] if cached is not None else None

    def _fresh(self, source_id: str) -> tuple[float, Source | None] | None:
        cached = self._cache.get(source_id)
        if cached is not None and time.monotonic() - cached[0] < SOURCE_CACHE_SECONDS:
            return cached
        return None

    def forget(self, source_id: str) -> None:
        self._cache.pop(source_id, None)

    def authenticate(self, source: Source, *, token: str | None, signature: str | None,
                     timestamp: str | None, body: bytes,
                     standard_headers: dict[str, str] | None = None) -> None:
        """Accept a valid token (Bearer, Basic password or ?token=) or a valid signature
        from a tool that signs; raise Unauthenticated otherwise."""
        if token is not None and rules.token_matches(source, token):
            return
        if signature is not None and rules.grafana_signature_valid(
                source, body, signature, timestamp, self._clock.now()):
            return
        if standard_headers and source.signing_secret and rules.standard_signature_valid(
                source.signing_secret, body, standard_headers):
            return
        raise Unauthenticated("missing or wrong source credentials")

    def received(self, source: Source, body: bytes, content_type: str) -> ReceivedPayload:
        """The payload to store. A body that is not JSON, or nests deeper than the
        parsers read, is stored as failed at once, so the sender can be told (400), the
        user can see what arrived, and the worker never decodes it."""
        now = self._clock.now()
        payload = ReceivedPayload(id=new_id("pl", now), source_id=source.id, received_at=now,
                                  content_type=content_type[:200], body=body)
        try:
            json_input.loads(body)
        except MalformedJson as error:
            return dataclasses.replace(payload, status=PayloadStatus.FAILED, processed_at=now,
                                       error=error.detail[:1000])
        return payload

    def store(self, payloads: Sequence[ReceivedPayload], *, priority_after: float = 0.0
              ) -> None:
        """Commit a batch of payloads: once this returns, they survive a crash.
        ``priority_after``: see ``Store.transaction``."""
        self._store.receive(payloads, priority_after=priority_after)
        self._last_stored = time.monotonic()

    def store_now(self, payloads: Sequence[ReceivedPayload]) -> bool:
        """:meth:`store`, if that can be done on the calling thread without waiting
        (``Store.receive_now``); whether it was."""
        if not self._store.receive_now(payloads):
            return False
        self._last_stored = time.monotonic()
        return True

    def busy(self, within: float = 0.05) -> bool:
        """Whether this process stored payloads in the last ``within`` seconds."""
        return time.monotonic() - self._last_stored < within
