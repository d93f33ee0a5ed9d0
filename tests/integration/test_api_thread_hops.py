"""A person's request goes to the thread pool once, for its database work.

Every hop there and back costs the API CPU and the person latency: a plain ``def``
dependency made FastAPI hop for every request, and a comment cost the API a third more
CPU than it needed (3.1 ms against 2.1 ms, ``serve --no-worker``). These count the hops
of the requests people make most often.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

from interlock import threads
from interlock.domain.incidents import Severity
from interlock.domain.keys import Scope
from interlock.services.container import Container
from interlock.services.incidents import Declaration
from tests.conftest import make_key
from tests.integration.test_concurrency import VIEWER


class _Counting:
    """The API's thread pool, noting the name of each function handed to it."""

    def __init__(self, pool: ThreadPoolExecutor, sent: list[str]) -> None:
        self._pool = pool
        self._sent = sent

    def submit(self, func: Callable[..., Any], *args: Any) -> Future[Any]:
        # interlock.threads hands over functools.partial(context.run, function, ...)
        named = func.args[0] if isinstance(func, functools.partial) and func.args else func
        self._sent.append(getattr(named, "__qualname__", None) or repr(named))
        return self._pool.submit(func, *args)


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions sent to a thread (the API's pool, or anyio's, where
    FastAPI and Starlette send a plain ``def``), in order."""
    sent: list[str] = []
    original = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(func, "__qualname__", None) or repr(func))
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    pool = threads._executor
    monkeypatch.setattr(threads, "_executor", lambda: _Counting(pool(), sent))
    return sent


def test_reading_and_commenting_take_one_hop_each(
    client: TestClient, container: Container, hops: list[str]
) -> None:
    headers = make_key(container, Scope.INCIDENTS_READ, Scope.INCIDENTS_WRITE)
    # Declared directly, not through the API: the API's writer thread, still finishing
    # a declaration when the comment arrives, would take the comment along with no hop
    # of its own (services.writes), and this would count none.
    incident = container.incidents.declare(
        VIEWER, Declaration("Checkout is down", Severity.HIGH)).id
    warm = client.get("/api/v1/incidents", headers=headers, params={"limit": 1})
    assert warm.status_code == 200, warm.text
    hops.clear()  # the first request also authenticated the key (one more hop, once)

    for request in (
        lambda: client.post(f"/api/v1/incidents/{incident}/comments", headers=headers,
                            json={"body": "rolling back"}),
        lambda: client.get(f"/api/v1/incidents/{incident}", headers=headers),
        lambda: client.get("/api/v1/incidents", headers=headers, params={"limit": 5}),
    ):
        before = len(hops)
        response = request()
        assert response.status_code in (200, 201), response.text
        assert len(hops) - before == 1, hops[before:]
