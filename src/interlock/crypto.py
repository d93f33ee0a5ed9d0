"""Credentials encrypted at rest (implements ports.connector.SecretBox).

Fernet (AES-128-CBC with HMAC-SHA256) from ``cryptography``, keyed from
INTERLOCK_SECRET_KEY. Without that setting a random key is generated once into
``secret_key_file`` (mode 0600), so ``make run`` works on a laptop; processes sharing
a PostgreSQL database must share the key, so set INTERLOCK_SECRET_KEY there.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from interlock.config import Settings
from interlock.domain.errors import InvalidInput


class FernetBox:
    """``secret`` is called on first use, so a deployment without connectors never
    needs (or creates) a key."""

    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret = secret
        self._key: Fernet | None = None

    @property
    def _fernet(self) -> Fernet:
        if self._key is None:
            digest = hashlib.sha256(b"interlock-credentials\0" + self._secret().encode())
            self._key = Fernet(base64.urlsafe_b64encode(digest.digest()))
        return self._key

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as error:
            raise InvalidInput(
                "stored credentials cannot be decrypted with this INTERLOCK_SECRET_KEY "
                "(was the key changed?); save the connector's credentials again") from error


def secret_key(settings: Settings) -> str:
    """The deployment's secret: the setting, else the key file (created on first use)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.secret_key_file)
    if path.is_file():
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key
