"""The whole app on a real uvicorn server in a thread, with serve's HTTP protocol, for
requests a test client cannot make (raw sockets, pipelining, HTTP/1.0)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from interlock.asgi import create_app
from interlock.cli.http_protocol import ServerProtocol, server_config
from interlock.services.container import Container
from tests.support.server import free_port

#: How long a loopback answer may take.
PROMPT = 5.0


class ServingApp:
    def __init__(self, container: Container,
                 protocol: type[ServerProtocol] = ServerProtocol) -> None:
        self.port = free_port()
        config = server_config(create_app(container), "127.0.0.1", self.port, "warning")
        config.http = protocol
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ServingApp:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=PROMPT)
