"""Connectors' HTTP to their tools, with aiohttp: the same guarded resolver, no
redirects and no proxies as webhook delivery, and a bounded response size."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp

from interlock.domain.errors import InvalidInput, ToolFailed
from interlock.domain.targets import Network
from interlock.ports.connector import ToolResponse
from interlock.worker.sender import GuardedResolver, checked_url, classify

USER_AGENT = "Interlock-Connectors/1"
#: Largest tool answer read (a Jira issue with many comments is well under this).
RESPONSE_LIMIT = 4 * 1024 * 1024


class AiohttpToolHttp:
    """Implements ports.connector.ToolHttp. One session per worker, made in its loop."""

    def __init__(self, *, allowed_networks: Iterable[Network] = (), timeout: float = 10.0
                 ) -> None:
        self._allowed = tuple(allowed_networks)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self, method: str, url: str, *, json: Any = None, data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ToolResponse:
        sent_headers = dict(headers or {})
        if json is not None:
            data = jsonlib.dumps(json).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        try:
            async with self._session_in_loop().request(
                method, checked_url(url, self._allowed), data=data, headers=sent_headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as response:
                body = await _read_whole(response, method, url)
                return ToolResponse(response.status, body, dict(response.headers))
        except ToolFailed:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError, InvalidInput, ValueError) as error:
            _, detail = classify(error, self._timeout)
            raise ToolFailed(f"{method} {url}: {detail}", retryable=True) from error

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _session_in_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64,
                                               resolver=GuardedResolver(self._allowed)),
                trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": USER_AGENT})
        return self._session


async def _read_whole(response: aiohttp.ClientResponse, method: str, url: str) -> bytes:
    """The whole body, read until the end. One ``content.read(n)`` returns only what
    has arrived so far (over TLS, often the first 16 KB record), which would cut a large
    answer and make it "not JSON". An answer larger than :data:`RESPONSE_LIMIT` is
    refused rather than cut: a cut body is never what the tool said."""
    pieces: list[bytes] = []
    size = 0
    while True:
        piece = await response.content.read(min(RESPONSE_LIMIT - size + 1, 64 * 1024))
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)
        size += len(piece)
        if size > RESPONSE_LIMIT:
            raise ToolFailed(f"{method} {url}: the answer is larger than "
                             f"{RESPONSE_LIMIT} bytes; not read", retryable=False,
                             status_code=response.status)
