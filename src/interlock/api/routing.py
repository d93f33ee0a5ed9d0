"""The API's route class: a plain ``def`` endpoint makes one trip to the thread pool.

FastAPI runs a ``def`` endpoint in its thread pool, and then, for a route with a
``response_model``, sends the answer back there a second time to validate it. Each trip
costs the API CPU and the caller latency (a GET of one incident paid it twice). Here
such an endpoint becomes a coroutine that runs the function in the pool once; FastAPI
then validates the answer on the event loop, which for these small documents costs less
than the trip.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute

from interlock.threads import run_sync


class OneHopRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _in_threadpool(endpoint), **kwargs)


def _in_threadpool(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` as a coroutine function with the same signature (FastAPI reads the
    parameters through ``__wrapped__``); a coroutine function is left as it is."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_sync(endpoint, *args, **kwargs)

    return run
