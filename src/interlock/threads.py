"""Where the API and the console run blocking work (database transactions, hashing a
key): a pool of threads, off the event loop.

Starlette's ``run_in_threadpool`` (anyio's ``to_thread``) enters a cancel scope and a
capacity limiter and looks up the running backend on every call: measured here, a
hand-over of a function that does nothing cost 145-180 µs of the process's CPU, against
63-73 µs through ``loop.run_in_executor`` (4 at a time, uvloop). A comment through the
API makes one hand-over, a read one, an ingest commit one per batch.

As with anyio, the function sees the caller's context variables (the request's log
fields). Unlike it, a caller cancelled while waiting stops waiting at once; the function
runs to its end regardless (a transaction commits or rolls back whole), and what it
returns is dropped.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: Until :func:`size` is called (serve sets ``api_threads``).
DEFAULT_THREADS = 8

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_threads = DEFAULT_THREADS


def size(threads: int) -> None:
    """Run at most ``threads`` functions at once from now on; those already handed over
    finish in the threads they have (which end when the old pool is collected)."""
    global _pool, _threads
    with _lock:
        _pool, _threads = None, threads


def _executor() -> ThreadPoolExecutor:
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(_threads, thread_name_prefix="interlock-api")
            pool = _pool
    return pool


async def run_sync(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)`` in one of the pool's threads."""
    call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)
