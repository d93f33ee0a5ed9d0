"""API keys and scopes.

A key is shown once, at creation; only its SHA-256 digest is stored. Keys are 256-bit
random strings, so a fast digest is as safe as a slow one and keeps every request cheap.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

KEY_PREFIX = "ilk_"


class Scope(StrEnum):
    INCIDENTS_READ = "incidents:read"
    INCIDENTS_WRITE = "incidents:write"
    INCIDENTS_PRIVATE = "incidents:private"
    WEBHOOKS_MANAGE = "webhooks:manage"
    SOURCES_MANAGE = "sources:manage"
    CONNECTORS_MANAGE = "connectors:manage"
    #: Manage status pages and publish public updates on incidents.
    STATUS_PUBLISH = "status:publish"
    ADMIN = "admin"


#: A scope also grants the scopes listed here; ``admin`` grants everything.
_IMPLIED: dict[Scope, frozenset[Scope]] = {
    Scope.INCIDENTS_WRITE: frozenset({Scope.INCIDENTS_READ}),
}


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[Scope]
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: Scope) -> bool:
        if Scope.ADMIN in self.scopes or scope in self.scopes:
            return True
        return any(scope in _IMPLIED.get(held, frozenset()) for held in self.scopes)


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def display_prefix(secret: str) -> str:
    """The part of a key that may be shown later to tell keys apart."""
    return secret[: len(KEY_PREFIX) + 6]
