"""The whole application: the API (with its raw ingest path) and the web console.

``interlock.api`` and ``interlock.web`` are independent adapters that may not import
each other; this module is where they meet.
"""

from __future__ import annotations

import hashlib

from interlock.api.app import Interlock
from interlock.api.app import create_app as create_api_app
from interlock.crypto import secret_key
from interlock.services.container import Container
from interlock.web import app as console
from interlock.web import status_public


def create_app(container: Container) -> Interlock:
    """The API and the console in one ASGI app; ingest stays on its raw fast path."""
    app = create_api_app(container)
    console.install(app.api, container, session_secret(container))
    app.add_fast_path("/status/", status_public.FastPath(app.state.status_cache, app.api))
    return app


def begin_shutdown(app: Interlock) -> None:
    """The server was asked to stop: end the console's open event streams, which would
    otherwise hold the shutdown until each browser went away."""
    app.state.console_feed.close()


def session_secret(container: Container) -> bytes:
    """Derived from the deployment's secret (INTERLOCK_SECRET_KEY, else the key file that
    also encrypts connector credentials), so sessions survive restarts and work on
    every process that shares it."""
    secret = secret_key(container.settings)
    return hashlib.sha256(b"interlock console\0" + secret.encode()).digest()
