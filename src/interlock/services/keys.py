"""Creating, checking and revoking API keys."""

from __future__ import annotations

import time
from collections.abc import Iterable

from interlock.domain import keys as rules
from interlock.domain.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from interlock.domain.ids import new_id
from interlock.domain.keys import ApiKey, Scope
from interlock.ports.clock import Clock
from interlock.ports.store import Store

NAME_MAX = 200
BOOTSTRAP_FLAG = "bootstrap_admin_key"
#: How long a successful authentication is trusted from memory (see
#: KeyService.recently_authenticated).
AUTH_CACHE_SECONDS = 1.0


class KeyService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._recent: dict[str, tuple[float, ApiKey]] = {}

    def create(self, name: str, scopes: Iterable[Scope]) -> tuple[ApiKey, str]:
        """Returns the key and its secret. The secret is never available again."""
        name = name.strip()
        if not name or len(name) > NAME_MAX:
            raise InvalidInput(f"a key needs a name of 1 to {NAME_MAX} characters")
        scope_set = frozenset(scopes)
        if not scope_set:
            raise InvalidInput("a key needs at least one scope")
        now = self._clock.now()
        secret = rules.generate_secret()
        key = ApiKey(
            id=new_id("key", now),
            name=name,
            scopes=scope_set,
            prefix=rules.display_prefix(secret),
            created_at=now,
        )
        with self._store.transaction(write=True) as tx:
            tx.keys.insert(key, rules.digest(secret))
        return key, secret

    def bootstrap_admin(self) -> str | None:
        """On the very first start, create an admin key and return its secret; on every
        later start (on any process sharing the database) return None."""
        now = self._clock.now()
        secret = rules.generate_secret()
        key = ApiKey(
            id=new_id("key", now),
            name="bootstrap admin",
            scopes=frozenset({Scope.ADMIN}),
            prefix=rules.display_prefix(secret),
            created_at=now,
        )
        with self._store.transaction(write=True) as tx:
            if not tx.flags.claim(BOOTSTRAP_FLAG, key.id):
                return None
            tx.keys.insert(key, rules.digest(secret))
        return secret

    def authenticate(self, secret: str) -> ApiKey:
        digest = rules.digest(secret)
        with self._store.transaction() as tx:
            key = tx.keys.find_by_digest(digest)
        if key is None or not key.is_active:
            raise Unauthenticated("the API key is unknown or revoked")
        if len(self._recent) > 10_000:
            self._recent.clear()
        self._recent[digest] = (time.monotonic(), key)
        return key

    def recently_authenticated(self, secret: str) -> ApiKey | None:
        """A key that authenticated within the last AUTH_CACHE_SECONDS, without touching
        the database; None means: call :meth:`authenticate`. A revocation made by this
        process applies at once; one made by another process within that time."""
        found = self._recent.get(rules.digest(secret))
        if found is None or time.monotonic() - found[0] > AUTH_CACHE_SECONDS:
            return None
        return found[1]

    def list(self) -> list[ApiKey]:
        with self._store.transaction() as tx:
            return tx.keys.list()

    def get(self, key_id: str) -> ApiKey:
        with self._store.transaction() as tx:
            key = tx.keys.get(key_id)
        if key is None:
            raise NotFound(f"no API key {key_id}")
        return key

    def revoke(self, key_id: str) -> ApiKey:
        with self._store.transaction(write=True) as tx:
            key = tx.keys.get(key_id)
            if key is None:
                raise NotFound(f"no API key {key_id}")
            if key.is_active:
                if Scope.ADMIN in key.scopes:
                    _keep_an_admin(tx.keys.lock_active(), key_id)
                tx.keys.revoke(key_id, self._clock.now())
        self._recent.clear()
        with self._store.transaction() as tx:
            revoked = tx.keys.get(key_id)
        assert revoked is not None
        return revoked


def _keep_an_admin(active: list[ApiKey], revoking: str) -> None:
    """Refuse to revoke the last active admin key: nothing could manage keys through the
    API afterwards (only the CLI, on the database's machine, could make another)."""
    if not any(Scope.ADMIN in key.scopes and key.id != revoking for key in active):
        raise Conflict(
            f"{revoking} is the last active admin API key; create another admin key "
            "before revoking this one"
        )
