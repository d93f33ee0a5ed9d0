"""uvicorn's HTTP/1.1 protocol, writing a response's head and body in one system call.

uvicorn writes the status line and headers (``http.response.start``) and then the body
as two writes to the socket; the event loop sends each at once. On these virtual
machines a send costs as much as a good part of the request: in a py-spy profile of
``serve`` taking single-alert POSTs, the two writes were a fifth of the event loop's
samples. Here the head waits for the body when the body follows in the same step of the
event loop (every plain response: a JSON answer, a 202, a problem), and goes out on its
own at the next step otherwise (a stream that has nothing to send yet still shows its
headers at once).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeadWithBody(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not before:
            self.cycle.transport = cast(asyncio.Transport,
                                        _JoinedWrites(self.transport, self.loop))


class _JoinedWrites:
    """The connection's transport for one request: its first write (the head) is held
    until the next write or the end of the event loop's step, whichever comes first."""

    __slots__ = ("_first", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._first = True

    def write(self, data: bytes) -> None:
        if self._first:
            self._first = False
            self._held = data
            self._loop.call_soon(self._flush)
            return
        held, self._held = self._held, None
        self._transport.write(data if held is None else held + data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
