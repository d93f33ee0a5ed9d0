"""``POST /ingest/{source_id}``: the hot path, in raw ASGI.

A FastAPI route costs several times what this does per request (measured here: raw
ASGI ~24,000 POSTs/s, a FastAPI route ~5,700/s), and monitoring tools in a storm send
many. Each request is authenticated from a cached source, then handed to a writer that
commits whatever has queued up in one transaction (group commit) and answers every
request in it once the commit is durable.

While batches stay small, the writer lets payloads gather for :data:`GATHER` after the
first of a batch arrived, so a storm's single-alert payloads share commits: a commit
handed to a thread costs 0.6-0.8 ms of its CPU however few payloads it holds (on SQLite
the event loop now makes most commits itself, for less: ``Store.receive_now``; the
pause was measured before that). In bench/storm.py
(1,000 POSTs/s from senders that do not wait for each other) the API process spent 528
µs of CPU per alert with no pause and 489 µs with 2 ms; with 10 ms, 412 µs (397-418)
against 460 µs (428-466) for 2 ms, lower in 3 pairs of runs of 3, for up to 10 ms more
before the ``202``. Two kinds of sender gain nothing from a pause, and the writer
watches for both:

* Senders that wait for their answer before sending again, many at once (bench/ingest.py,
  16 connections): batches fill while the previous one commits. Once batches average
  :data:`GATHER_BELOW` payloads or more when taken, before any pause, there is none
  (with a 2 ms pause whatever the batch size, 18 % fewer POSTs were answered).
* A sender posting one payload at a time: nothing arrives during its pause. Once pauses
  gather on average fewer than one more payload, there is none.

While batches are small, every :data:`PROBE_EVERY` th one does the other thing, so the
average of what pauses gather follows a change of the senders.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from interlock.api.problems import problem_parts, send_problem
from interlock.domain.alerts import PayloadStatus, ReceivedPayload
from interlock.domain.errors import InterlockError, StoreUnavailable
from interlock.domain.sources import GRAFANA_SIGNATURE_HEADER, Source
from interlock.services.ingest import Intake
from interlock.threads import run_sync

#: A payload, its request's answer, and when it was queued (the event loop's clock).
_Item = tuple[ReceivedPayload, "asyncio.Future[None]", float]
_Queue = asyncio.Queue[_Item]
BATCH_MAX = 500
#: Once the oldest payload of a batch has waited this long (seconds), the batch goes
#: ahead of the workers' writes, as a person's write does. Not at once: in a storm the
#: writer is never idle, and going first always would shut the workers out.
PRIORITY_AFTER = 0.02
#: How long (seconds) the first payload of a batch waits for others before the commit,
#: while batches taken at once average fewer than GATHER_BELOW payloads and a pause
#: gathers on average at least one more (GATHER_COMPANY).
GATHER = 0.01
GATHER_BELOW = 4.0
GATHER_COMPANY = 1.0
PROBE_EVERY = 8
#: Signed requests whose bodies are read at once before they are authenticated (a
#: signature covers the body); up to 16 x INTERLOCK_INGEST_MAX_BODY_BYTES held in memory.
PRE_AUTH_READS = 16
_STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class GroupCommit:
    """Commit payloads in batches: one transaction for everything queued meanwhile."""

    def __init__(self, intake: Intake, gather: float = GATHER) -> None:
        self._intake = intake
        self._gather = gather
        self._queues: dict[asyncio.AbstractEventLoop, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def write(self, payload: ReceivedPayload) -> None:
        """Return once ``payload`` is committed."""
        await self.submit(payload)

    def submit(self, payload: ReceivedPayload) -> asyncio.Future[None]:
        """Queue ``payload``; the future is done once it is committed. Called from the
        running event loop."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            # One writer per event loop (uvicorn has one; test clients may have several).
            queue = self._queues[loop] = asyncio.Queue()
            task = loop.create_task(self._run(queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            for old in [known for known in self._queues if known.is_closed()]:
                del self._queues[old]
        done: asyncio.Future[None] = loop.create_future()
        queue.put_nowait((payload, done, loop.time()))
        return done

    async def _run(self, queue: _Queue) -> None:
        pacing = _Pacing()
        while True:
            batch = [await queue.get()]
            try:
                await self._commit(queue, batch, pacing)
            except Exception as error:  # every waiter hears of it; the writer goes on
                outcome: BaseException | None = error
            else:
                outcome = None
            for _, done, _ in batch:
                if done.done():
                    continue
                if outcome is None:
                    done.set_result(None)
                else:
                    done.set_exception(outcome)

    async def _commit(self, queue: _Queue, batch: list[_Item], pacing: _Pacing) -> None:
        """Commit ``batch`` and whatever joins it: what is queued now, and, while
        batches are small, what arrives within the pause."""
        loop = asyncio.get_running_loop()
        _take_queued(queue, batch)
        at_once = len(batch)
        pause = batch[0][2] + self._gather - loop.time()
        if pacing.pause(at_once) and pause > 0:
            await asyncio.sleep(pause)
            _take_queued(queue, batch)
            pacing.paused(len(batch) - at_once)
        payloads = [item for item, _, _ in batch]
        if self._intake.store_now(payloads):
            return
        waited = loop.time() - batch[0][2]
        await run_sync(self._intake.store, payloads,
                       priority_after=max(PRIORITY_AFTER - waited, 1e-3))


def _take_queued(queue: _Queue, batch: list[_Item]) -> None:
    """Add what waits in ``queue`` to ``batch``, up to BATCH_MAX payloads."""
    while not queue.empty() and len(batch) < BATCH_MAX:
        batch.append(queue.get_nowait())


class _Pacing:
    """Whether the group commit's next batch waits for company (see the module's
    docstring): two running averages, recent batches counting most."""

    def __init__(self) -> None:
        #: Payloads a batch held when taken, before any pause.
        self.at_once = 1.0
        #: Payloads that arrived during a pause.
        self.company = GATHER_COMPANY
        self._batches = 0

    def pause(self, at_once: int) -> bool:
        """Whether to pause for a batch holding ``at_once`` payloads when taken."""
        self._batches += 1
        self.at_once = 0.7 * self.at_once + 0.3 * at_once
        if self.at_once >= GATHER_BELOW:
            return False
        probe = self._batches % PROBE_EVERY == 0
        return (self.company >= GATHER_COMPANY) != probe

    def paused(self, arrived: int) -> None:
        self.company = 0.7 * self.company + 0.3 * arrived


class _Bucket:
    """A per-source token bucket for the rate limit (per process)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = max(rate, 1.0)
        self.updated = time.monotonic()

    def take(self) -> float:
        """0 when allowed, else the seconds until a token is free."""
        now = time.monotonic()
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class IngestApp:
    """Checks who is sending before reading what they send: a token (or an unknown or
    disabled source) is judged on the headers alone, so an unauthenticated client never
    makes this process read and hold a body. Only a request that proves itself by a
    signature needs its body first, and at most PRE_AUTH_READS of those are read at
    once; past that the answer is 503 with Retry-After."""

    def __init__(self, intake: Intake, writer: GroupCommit, max_body: int,
                 pre_auth_reads: int = PRE_AUTH_READS) -> None:
        self._intake = intake
        self._writer = writer
        self._max_body = max_body
        self._buckets: dict[str, _Bucket] = {}
        self._pre_auth_reads = pre_auth_reads
        self._reading_unauthenticated = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        source_id = path[len("/ingest/"):].strip("/")
        if scope["method"] != "POST":
            await send_problem(send, 405, "Method not allowed", "send alerts with POST",
                               headers=[(b"allow", b"POST")], close=True)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1")
                   for key, value in scope["headers"]}
        try:
            source = await self._source(source_id)
            if source is None or not source.enabled:
                # Same answer as bad credentials: do not tell which sources exist.
                raise _Refused(401, "Unauthenticated", "missing or wrong source credentials")
            credentials = _credentials(source, headers, scope.get("query_string", b""))
            if credentials.signed:
                body = await self._read_unauthenticated(receive, headers)
                self._authenticate(source, credentials, body)
            else:
                self._authenticate(source, credentials, b"")
                body = await _body(receive, headers, self._max_body)
            wait = self._rate(source)
            if wait:
                retry = str(math.ceil(wait))
                await send_problem(send, 429, "Too many requests",
                                   f"this source accepts {source.rate_limit:g} requests per "
                                   f"second; retry in {retry} s",
                                   headers=[(b"retry-after", retry.encode())])
                return
            payload = self._intake.received(source, body, headers.get("content-type", ""))
            await self._writer.write(payload)
        except _Refused as refused:
            # The body may be unread: close the connection, or it would be taken for the
            # next request.
            extra = ([(b"www-authenticate", b'Basic realm="interlock", Bearer')]
                     if refused.status == 401 else list(refused.headers))
            await send_problem(send, refused.status, refused.title, refused.detail,
                               headers=extra, close=True)
            return
        except StoreUnavailable as error:
            await _send(send, 503, _unavailable(error))
            return
        if payload.status is PayloadStatus.FAILED:
            await send_problem(send, 400, "Bad request",
                               f"{payload.error}; kept as payload {payload.id}")
            return
        await _send(send, 202, _accepted(payload))

    def admitted(self, scope: Scope, body_limit: int) -> Admitted | None:
        """The request, if its head alone shows that it is to be accepted once its body
        turns out to be JSON: a ``POST`` with the token of an enabled source (known to
        the cache) that has no rate limit, and a Content-Length within ``body_limit``
        and the ingest limit. The server may then answer it without the ASGI app (see
        :mod:`interlock.cli.http_protocol`); every other request, and an admitted one
        whose body is not JSON, goes through :meth:`__call__`, which answers it the same
        way or tells what is wrong."""
        if scope["method"] != "POST":
            return None
        source = self._intake.cached_source(scope["path"][len("/ingest/"):].strip("/"))
        if source is None or not source.enabled or source.rate_limit:
            return None
        length = authorization = content_type = None
        for name, value in scope["headers"]:  # the last of a repeated header counts
            if name == b"content-length":
                length = value
            elif name == b"authorization":
                authorization = value
            elif name == b"content-type":
                content_type = value
            elif name == b"transfer-encoding":
                return None
        if length is None or not length.isdigit() or int(length) > min(self._max_body,
                                                                        body_limit):
            return None
        token = _token(authorization.decode("latin-1") if authorization else None,
                       scope.get("query_string", b""))
        if token is None:
            return None
        try:
            self._intake.authenticate(source, token=token, signature=None, timestamp=None,
                                      body=b"")
        except InterlockError:
            return None
        return Admitted(self._intake, self._writer, source,
                        content_type.decode("latin-1") if content_type else "")

    async def _read_unauthenticated(self, receive: Receive, headers: dict[str, str]) -> bytes:
        """The body of a request not yet authenticated, if one of the few slots is free.
        A counter, not a semaphore: a request over the limit is answered at once rather
        than queued (its sender retries), and one event loop runs all of this."""
        if self._reading_unauthenticated >= self._pre_auth_reads:
            raise _Refused(503, "Service unavailable",
                           "too many signed requests are being received at once; retry",
                           headers=[(b"retry-after", b"1")])
        self._reading_unauthenticated += 1
        try:
            return await _body(receive, headers, self._max_body)
        finally:
            self._reading_unauthenticated -= 1

    async def _source(self, source_id: str) -> Source | None:
        cached = self._intake.cached_source(source_id)
        if cached is not None:
            return cached
        return await run_sync(self._intake.source, source_id)

    def _authenticate(self, source: Source, credentials: _Credentials, body: bytes) -> None:
        try:
            self._intake.authenticate(
                source, token=credentials.token, signature=credentials.grafana_signature,
                timestamp=credentials.timestamp, body=body,
                standard_headers=credentials.standard_headers)
        except InterlockError as error:
            raise _Refused(401, "Unauthenticated", error.detail) from error

    def _rate(self, source: Source) -> float:
        if not source.rate_limit:
            return 0.0
        bucket = self._buckets.get(source.id)
        if bucket is None or bucket.rate != source.rate_limit:
            bucket = self._buckets[source.id] = _Bucket(source.rate_limit)
        return bucket.take()


class _Refused(Exception):
    def __init__(self, status: int, title: str, detail: str,
                 headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers = status, title, detail, headers


@dataclass(frozen=True)
class _Credentials:
    token: str | None
    grafana_signature: str | None
    timestamp: str | None
    standard_headers: dict[str, str] | None

    @property
    def signed(self) -> bool:
        """Whether a signature (checked over the body) may vouch for the request."""
        return self.grafana_signature is not None or self.standard_headers is not None


def _credentials(source: Source, headers: dict[str, str], query: bytes) -> _Credentials:
    """What the request offers as proof; signatures only where the source has a secret
    to check them with (else the token alone decides, before any body is read)."""
    token = _token(headers.get("authorization"), query)
    if not source.signing_secret:
        return _Credentials(token, None, None, None)
    # A Standard Webhooks signature counts only with all three of its headers; a lone
    # webhook-signature is just another wrong credential (401).
    standard = ({name: headers[name] for name in _STANDARD_HEADERS}
                if all(name in headers for name in _STANDARD_HEADERS) else None)
    timestamp = headers.get(source.timestamp_header.lower()) if source.timestamp_header \
        else None
    return _Credentials(token, headers.get(GRAFANA_SIGNATURE_HEADER), timestamp, standard)


def _token(authorization: str | None, query: bytes) -> str | None:
    """A token from ``Bearer``, a Basic-auth password, or ``?token=``."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return decoded.partition(":")[2]
    if query:
        values = parse_qs(query.decode("latin-1")).get("token")
        if values:
            return values[0]
    return None


async def _body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Refused(400, "Bad request", "the client went away before sending its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> _Refused:
    return _Refused(413, "Payload too large", f"the body is larger than {limit} bytes")


class Admitted:
    """A request admitted on its head (:meth:`IngestApp.admitted`), answered by the
    server itself."""

    __slots__ = ("_content_type", "_intake", "_payload", "_source", "_writer")

    def __init__(self, intake: Intake, writer: GroupCommit, source: Source,
                 content_type: str) -> None:
        self._intake = intake
        self._writer = writer
        self._source = source
        self._content_type = content_type
        self._payload: ReceivedPayload | None = None

    def accept(self, body: bytes) -> asyncio.Future[None] | None:
        """Queue the payload for the group commit, or None when ``body`` is not JSON
        (the ASGI app answers that request: it stores the payload as failed and
        says why)."""
        payload = self._intake.received(self._source, body, self._content_type)
        if payload.status is PayloadStatus.FAILED:
            return None
        self._payload = payload
        return self._writer.submit(payload)

    def response(self, committed: asyncio.Future[None]) -> tuple[int, Answer]:
        """The answer once the group commit is done with the payload: what
        :meth:`IngestApp.__call__` answers. An unexpected error is raised, for the
        server to answer 500 as it does for an app that raised."""
        assert self._payload is not None
        error = committed.exception()
        if error is None:
            return 202, _accepted(self._payload)
        if isinstance(error, StoreUnavailable):
            return 503, _unavailable(error)
        raise error


#: An answer's headers (bar the server's own) and body.
Answer = tuple[list[tuple[bytes, bytes]], bytes]


def _accepted(payload: ReceivedPayload) -> Answer:
    body = b'{"id": "%s", "status": "accepted"}' % payload.id.encode()
    return [(b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body))], body


def _unavailable(error: StoreUnavailable) -> Answer:
    return problem_parts(503, "Store unavailable", error.detail,
                         headers=[(b"retry-after", b"5")])


async def _send(send: Send, status: int, answer: Answer) -> None:
    await send({"type": "http.response.start", "status": status, "headers": answer[0]})
    await send({"type": "http.response.body", "body": answer[1]})
