"""The one exception tree of Interlock.

Every error a caller can see derives from :class:`InterlockError`. Each class carries
the HTTP status and problem type the API answers with, and whether retrying the same
operation later could succeed (``retryable``); foreign errors are translated into these
at the boundary with ``raise ... from``.
"""

from __future__ import annotations

from typing import Any


class InterlockError(Exception):
    """Base class. ``title`` is stable per class; ``detail`` says what happened this time."""

    status: int = 500
    title: str = "Internal error"
    slug: str = "internal"
    retryable: bool = False

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors

    @property
    def type_uri(self) -> str:
        return f"https://interlock.dev/problems/{self.slug}"


class InvalidInput(InterlockError):
    """The request is well-formed but its content is not acceptable."""

    status = 422
    title = "Invalid input"
    slug = "invalid-input"


class BadRequest(InterlockError):
    """The request itself cannot be read (malformed JSON, bad cursor, bad header)."""

    status = 400
    title = "Bad request"
    slug = "bad-request"


class Unauthenticated(InterlockError):
    status = 401
    title = "Unauthenticated"
    slug = "unauthenticated"


class Forbidden(InterlockError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(InterlockError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(InterlockError):
    """The operation does not fit the resource's current state (e.g. acknowledging a
    resolved incident)."""

    status = 409
    title = "Conflict"
    slug = "conflict"


class PreconditionFailed(InterlockError):
    """``If-Match`` named a version that is no longer current."""

    status = 412
    title = "Precondition failed"
    slug = "precondition-failed"


class PayloadTooLarge(InterlockError):
    status = 413
    title = "Payload too large"
    slug = "payload-too-large"


class ConcurrentUpdate(InterlockError):
    """Someone else changed the row between our read and our write; safe to retry."""

    status = 409
    title = "Concurrent update"
    slug = "concurrent-update"
    retryable = True


class LeaseLost(InterlockError):
    """Work a worker leased was handed to another worker, because this one was not
    heard from for too long (frozen, or unable to write its reports). What it was
    writing is undone: the other worker does it, once."""

    status = 409
    title = "Lease lost"
    slug = "lease-lost"


class StoreUnavailable(InterlockError):
    """The database could not be reached or refused the operation for a transient reason."""

    status = 503
    title = "Store unavailable"
    slug = "store-unavailable"
    retryable = True


class DatabaseUnusable(InterlockError):
    """The database answers but is not one this Interlock can use: not a database at all,
    another application's, or at another schema revision. Retrying will not help; the
    detail says what to do."""

    status = 503
    title = "Database unusable"
    slug = "database-unusable"


class ToolFailed(InterlockError):
    """A connector's call to its tool failed. Whether to try again depends on how (a
    timeout or a 503 may pass; a 400 or a missing project will not), so ``retryable``
    is set per instance. ``retry_after`` is the tool's own Retry-After, in seconds."""

    status = 502
    title = "Tool call failed"
    slug = "tool-failed"

    def __init__(self, detail: str, *, retryable: bool, retry_after: float | None = None,
                 status_code: int | None = None) -> None:
        super().__init__(detail)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status_code = status_code


class ToolCredentialsRefused(ToolFailed):
    """The tool refused the connector's credentials (an expired or revoked token, a
    deleted app). Retrying cannot help until a person replaces them, so it is final,
    and the connector is shown as needing attention until a call succeeds again."""

    def __init__(self, detail: str, *, status_code: int | None = None) -> None:
        super().__init__(detail, retryable=False, status_code=status_code)


class MalformedJson(BadRequest):
    """A body that is not JSON, or JSON nested deeper than Interlock reads."""

    slug = "malformed-json"
