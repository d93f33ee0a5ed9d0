"""Console sessions: the API key a person signed in with, kept in a cookie.

The cookie is encrypted and authenticated (Fernet, with a key derived from the server's
secret), so the browser holds the API key without being able to read or alter it,
and it is HttpOnly so page scripts cannot either. Every request re-checks the key, so
a key revoked elsewhere signs its sessions out.

CSRF: each session carries a random nonce; forms carry an HMAC of it, which only this
server can compute and only this session's pages hold. A new nonce is drawn at sign-in
and sign-out, so a token seen before signing in is worthless after.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response

from interlock.domain.errors import Forbidden
from interlock.domain.events import Origin, OriginKind
from interlock.domain.keys import ApiKey, Scope
from interlock.services.incidents import Viewer

COOKIE = "interlock_session"
#: A session lasts a working day and a night shift; then the key is asked for again.
SESSION_SECONDS = 16 * 3600
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class SessionData:
    nonce: str
    key: str | None = None
    #: A one-time message for the next page ("INC-4 acknowledged").
    flash: str | None = None
    flash_kind: str = "info"

    @staticmethod
    def fresh(key: str | None = None) -> SessionData:
        return SessionData(nonce=secrets.token_urlsafe(18), key=key)


class Sessions:
    """Seals and opens session cookies, and makes and checks CSRF tokens."""

    def __init__(self, secret: bytes) -> None:
        sealing = hmac.new(secret, b"interlock console session cookie", hashlib.sha256)
        self._fernet = Fernet(base64.urlsafe_b64encode(sealing.digest()))
        self._csrf_key = hmac.new(secret, b"interlock console csrf", hashlib.sha256).digest()

    def open(self, request: Request) -> SessionData | None:
        """The request's session; None when absent, expired, or not one we sealed."""
        sealed = request.cookies.get(COOKIE)
        if not sealed:
            return None
        try:
            data: dict[str, Any] = json.loads(
                self._fernet.decrypt(sealed.encode(), ttl=SESSION_SECONDS))
            return SessionData(nonce=str(data["n"]), key=data.get("k"),
                               flash=data.get("f"), flash_kind=data.get("fk", "info"))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None

    def seal(self, session: SessionData) -> str:
        data = {"n": session.nonce, "k": session.key, "f": session.flash,
                "fk": session.flash_kind}
        return self._fernet.encrypt(json.dumps(data).encode()).decode()

    def store(self, response: Response, request: Request, session: SessionData) -> None:
        response.set_cookie(
            COOKIE, self.seal(session), max_age=SESSION_SECONDS, path="/", httponly=True,
            samesite="lax", secure=is_https(request),
        )

    def csrf_token(self, session: SessionData) -> str:
        mac = hmac.new(self._csrf_key, session.nonce.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def csrf_valid(self, session: SessionData, token: object) -> bool:
        return isinstance(token, str) and hmac.compare_digest(
            token.encode(), self.csrf_token(session).encode())


def is_https(request: Request) -> bool:
    """Secure cookies when the browser talks HTTPS to us, or to a proxy in front of us
    (a public URL that is https). Plain http on 127.0.0.1 (``make run``) keeps working."""
    settings = request.app.state.container.settings
    return request.url.scheme == "https" or settings.base_url.startswith("https://")


@dataclass
class Visitor:
    """A signed-in person: the key they hold, and their session."""

    key: ApiKey
    session: SessionData
    csrf: str
    #: Set when the session cookie must be written back (a flash was shown).
    changed: bool = field(default=False)

    @property
    def viewer(self) -> Viewer:
        return Viewer(
            origin=Origin(kind=OriginKind.API_KEY, id=self.key.id, name=self.key.name),
            can_see_private=self.key.allows(Scope.INCIDENTS_PRIVATE),
        )

    def can(self, scope: Scope | str) -> bool:
        return self.key.allows(Scope(scope))

    def require(self, scope: Scope) -> Visitor:
        """This visitor, or Forbidden (a 403 page) when their key lacks ``scope``: the
        server checks again what the page only hid."""
        if not self.can(scope):
            raise Forbidden(f"your API key lacks the {scope.value} scope")
        return self

    def take_flash(self) -> tuple[str, str] | None:
        if self.session.flash is None:
            return None
        flash = (self.session.flash, self.session.flash_kind)
        self.session = replace(self.session, flash=None)
        self.changed = True
        return flash
