"""Creating, checking and revoking API keys."""

from __future__ import annotations

from collections.abc import Iterable

from interlock.domain import keys as rules
from interlock.domain.errors import InvalidInput, NotFound, Unauthenticated
from interlock.domain.ids import new_id
from interlock.domain.keys import ApiKey, Scope
from interlock.ports.clock import Clock
from interlock.ports.store import Store

NAME_MAX = 200
BOOTSTRAP_FLAG = "bootstrap_admin_key"


class KeyService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

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
        with self._store.transaction() as tx:
            key = tx.keys.find_by_digest(rules.digest(secret))
        if key is None or not key.is_active:
            raise Unauthenticated("the API key is unknown or revoked")
        return key

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
                tx.keys.revoke(key_id, self._clock.now())
            revoked = tx.keys.get(key_id)
        assert revoked is not None
        return revoked
