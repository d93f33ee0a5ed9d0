"""One place that turns every error into RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from interlock.domain.errors import InterlockError
from interlock.logs import get_logger

MEDIA_TYPE = "application/problem+json"
log = get_logger(__name__)


def problem(
    status: int, title: str, detail: str, *, slug: str | None = None,
    errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://interlock.dev/problems/{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(InterlockError, _interlock_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


async def _interlock_error(_request: Request, error: InterlockError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="interlock"'} if error.status == 401 else None
    return problem(
        error.status, error.title, error.detail, slug=error.slug, errors=error.errors,
        headers=headers,
    )


async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    items = error.errors()
    if any(item.get("type") == "json_invalid" for item in items):
        first = next(item for item in items if item.get("type") == "json_invalid")
        reason = (first.get("ctx") or {}).get("error", "malformed")
        return problem(400, "Bad request", f"the body is not valid JSON: {reason}",
                       slug="malformed-json")
    errors = [
        {
            "field": ".".join(str(part) for part in item["loc"]),
            "message": item["msg"],
            "type": item["type"],
        }
        for item in items
    ]
    detail = "; ".join(f"{entry['field']}: {entry['message']}" for entry in errors[:5])
    return problem(422, "Invalid input", detail, slug="invalid-input", errors=errors)


async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
    titles = {404: "Not found", 405: "Method not allowed", 415: "Unsupported media type"}
    title = titles.get(error.status_code, "Error")
    detail = error.detail if isinstance(error.detail, str) else title
    headers = dict(error.headers) if error.headers else None
    return problem(error.status_code, title, detail, headers=headers)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.error("unhandled error", path=request.url.path, error_type=type(error).__name__,
              exc_info=error)
    return problem(500, "Internal error", "an unexpected error occurred; it has been logged",
                   slug="internal")
