"""One place that turns every error into RFC 9457 problem+json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from interlock.api.schemas import Problem
from interlock.domain.errors import InterlockError
from interlock.logs import get_logger

MEDIA_TYPE = "application/problem+json"
#: What FastAPI says when decoding the body fails for a reason other than bad JSON
#: syntax (bytes that are not UTF-8, nesting deeper than the recursion limit).
_FASTAPI_PARSE_ERROR = "There was an error parsing the body"
_TITLES = {
    400: "Bad request", 401: "Unauthenticated", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 413: "Payload too large", 415: "Unsupported media type",
}
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


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, as they are really sent: the Problem
    schema under application/problem+json. (FastAPI's ``model=`` would document them as
    application/json, so generated clients and schema checks would expect the wrong
    media type.)"""
    content = {MEDIA_TYPE: {"schema": Problem.model_json_schema()}}
    return {
        status: {"description": HTTPStatus(status).phrase, "content": content}
        for status in statuses
    }


async def send_problem(
    send: Send, status: int, title: str, detail: str, *, slug: str | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (), close: bool = False,
) -> None:
    """The same problem+json, written straight to raw ASGI (middleware and the ingest
    path answer before or without FastAPI). ``close`` ends the connection: needed when
    answering before the request body was read, or the unread body would be taken for
    the next request."""
    head, encoded = problem_parts(status, title, detail, slug=slug, headers=headers,
                                  close=close)
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": encoded})


def problem_parts(
    status: int, title: str, detail: str, *, slug: str | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (), close: bool = False,
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of :func:`send_problem`'s answer."""
    body = {
        "type": f"https://interlock.dev/problems/{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    encoded = json.dumps(body).encode()
    extra = [*headers, (b"connection", b"close")] if close else list(headers)
    return [(b"content-type", MEDIA_TYPE.encode()),
            (b"content-length", str(len(encoded)).encode()), *extra], encoded


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


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    items = error.errors()
    malformed = next((item for item in items if item.get("type") == "json_invalid"), None)
    if malformed is not None:
        reason = (malformed.get("ctx") or {}).get("error", "malformed")
        return problem(400, "Bad request", f"the body is not valid JSON: {reason}",
                       slug="malformed-json")
    if _body_not_json(request, items):
        return problem(
            415, "Unsupported media type",
            f"the body must be sent as Content-Type: application/json, not "
            f"{request.headers.get('content-type') or 'without a Content-Type'}",
            slug="unsupported-media-type",
        )
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


def _body_not_json(request: Request, items: Sequence[Any]) -> bool:
    """FastAPI hands a non-JSON body to the model as raw bytes, which then fails as "not
    an object"; the caller's real mistake is the Content-Type, so say that instead."""
    if not any(tuple(item.get("loc", ()))[:1] == ("body",) for item in items):
        return False
    has_body = (request.headers.get("content-length", "0") != "0"
                or "transfer-encoding" in request.headers)
    return has_body and not is_json(request.headers.get("content-type"))


def is_json(content_type: str | None) -> bool:
    """``application/json`` or any ``application/*+json``, as FastAPI parses them."""
    if not content_type:
        return False
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
    if error.status_code == 400 and error.detail == _FASTAPI_PARSE_ERROR:
        return problem(400, "Bad request", _unparsable_body(error.__cause__),
                       slug="malformed-json")
    title = _TITLES.get(error.status_code, "Error")
    detail = error.detail if isinstance(error.detail, str) else title
    headers = dict(error.headers) if error.headers else None
    return problem(error.status_code, title, detail, headers=headers)


def _unparsable_body(cause: BaseException | None) -> str:
    """Why a body FastAPI could not even hand to the JSON decoder failed, in words."""
    if isinstance(cause, UnicodeDecodeError):
        return "the body is not valid JSON: it is not UTF-8 text"
    if isinstance(cause, RecursionError):
        return "the body is not valid JSON: it is nested too deeply"
    return "the body is not valid JSON"


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.error("unhandled error", path=request.url.path, error_type=type(error).__name__,
              exc_info=error)
    return problem(500, "Internal error", "an unexpected error occurred; it has been logged",
                   slug="internal")
