"""The API's route class: one trip to the thread pool, and requests answered by a plan
made once per route instead of FastAPI solving the route's dependencies anew each time.

FastAPI runs a ``def`` endpoint in its thread pool, and then, for a route with a
``response_model``, sends the answer back there a second time to validate it. Each trip
costs the API CPU and the caller latency (a GET of one incident paid it twice). Here
such an endpoint becomes a coroutine that runs the function in the pool once; the
answer is validated on the event loop, which for these small documents costs less than
the trip.

FastAPI (0.16x) then works out, on every request, what each dependency is (generator?
coroutine? which scopes?) and walks a generic solver over the route's parameters:
measured in-process, that was about 300 µs of a request's CPU before the endpoint ran,
more than reading an incident from SQLite. The API's routes take only a few kinds of
parameter (path, query and header values, one JSON body, the request, and
``async def (request)`` dependencies such as the key check), so :class:`_Plan` sorts
them once, when the route is made, and answers with FastAPI's own pieces: its parameter
and body validation (so the 422s are the same), its response serialisation, its
exceptions. A route with anything else (cookies, forms, streaming, dependencies with
parameters of their own or ``yield``) keeps FastAPI's handler. :class:`PlannedRoutes`
then sends requests under ``/api/v1/`` straight to their route's plan, past FastAPI's
router and middleware stack, which cost about as much again.
"""

from __future__ import annotations

import email.message
import functools
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, cast

from fastapi import FastAPI, params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.routing import APIRoute
from fastapi.utils import is_body_allowed_for_status_code
from pydantic.fields import FieldInfo
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Receive, Scope, Send

from interlock.threads import run_sync

_Handler = Callable[[Request], Coroutine[Any, Any, Response]]

try:  # the FastAPI functions a plan answers with; its own handler does without them
    from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
    from fastapi.routing import serialize_response
except ImportError:  # pragma: no cover - a FastAPI that moved them
    request_body_to_args = request_params_to_args = serialize_response = None  # type: ignore[assignment]


def _fastapi_fits() -> bool:
    """Whether this FastAPI's functions take what a plan hands them (as FastAPI 0.165
    does). A FastAPI that changed them still answers every request, by its own
    handler; ``test_every_api_route_is_answered_by_its_plan`` says so in ``make test``."""
    try:
        params_args = list(inspect.signature(request_params_to_args).parameters)
        body_args = list(inspect.signature(request_body_to_args).parameters)
        serialise_args = inspect.signature(serialize_response).parameters
    except (TypeError, ValueError):
        return False
    return (params_args[:2] == ["fields", "received_params"]
            and body_args[:3] == ["body_fields", "received_body", "embed_body_fields"]
            and {"field", "response_content", "dump_json"} <= set(serialise_args))


_FITS = _fastapi_fits()

#: FastAPI's marker for "no body was sent" (pydantic_core's PydanticUndefined).
_UNDEFINED: Any = FieldInfo().default


class OneHopRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _in_threadpool(endpoint), **kwargs)

    #: How requests are answered; None: by FastAPI's own handler.
    plan: _Plan | None = None

    def get_route_handler(self) -> _Handler:
        self.plan = _Plan.of(self)
        return self.plan.handle if self.plan is not None else super().get_route_handler()


def _in_threadpool(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` as a coroutine function with the same signature (FastAPI reads the
    parameters through ``__wrapped__``); a coroutine function is left as it is."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_sync(endpoint, *args, **kwargs)

    return run


@dataclass(frozen=True, slots=True)
class _Plan:
    call: Callable[..., Awaitable[Any]]
    #: ``(name, dependency)`` in FastAPI's order; a router's dependencies have no name
    #: (their answer is not passed on).
    dependencies: tuple[tuple[str | None, Callable[[Request], Awaitable[Any]]], ...]
    request_name: str | None
    path: Sequence[Any]
    query: Sequence[Any]
    headers: Sequence[Any]
    body: list[Any]
    embed_body: bool
    strict_content_type: bool
    response_field: Any
    response_class: type[Response]
    dump_json: bool
    status_code: int
    serialise: dict[str, Any]

    @classmethod
    def of(cls, route: APIRoute) -> _Plan | None:
        """The plan for ``route``, or None when it takes something a plan does not."""
        try:
            return cls._of(route)
        except AttributeError:  # a FastAPI whose routes keep these elsewhere
            return None

    @classmethod
    def _of(cls, route: APIRoute) -> _Plan | None:
        dependant = route.dependant
        if (not _FITS or dependant.call is None
                or not inspect.iscoroutinefunction(dependant.call)
                or _special(dependant) or dependant.cookie_params
                or route.dependency_overrides_provider is not None
                or route.stream_item_field is not None or route.is_sse_stream
                or route.is_json_stream or getattr(route, "max_body_size", None) is not None
                or (route.body_field is not None
                    and isinstance(route.body_field.field_info, params.Form))):
            return None
        dependencies = []
        for sub in dependant.dependencies:
            call = _simple_dependency(sub)
            if call is None:
                return None
            dependencies.append((sub.name, call))
        response_class = route.response_class
        default_class = isinstance(response_class, DefaultPlaceholder)
        strict = route.strict_content_type
        return cls(
            call=dependant.call,
            dependencies=tuple(dependencies),
            request_name=dependant.request_param_name,
            path=dependant.path_params,
            query=dependant.query_params,
            headers=dependant.header_params,
            body=dependant.body_params,
            embed_body=route._embed_body_fields,
            strict_content_type=bool(strict.value if isinstance(strict, DefaultPlaceholder)
                                     else strict),
            response_field=route.response_field,
            response_class=cast(type[Response], response_class.value
                                if isinstance(response_class, DefaultPlaceholder)
                                else response_class),
            dump_json=route.response_field is not None and default_class,
            status_code=route.status_code or 200,  # as the response classes default
            serialise={
                "include": route.response_model_include,
                "exclude": route.response_model_exclude,
                "by_alias": route.response_model_by_alias,
                "exclude_unset": route.response_model_exclude_unset,
                "exclude_defaults": route.response_model_exclude_defaults,
                "exclude_none": route.response_model_exclude_none,
            },
        )

    async def handle(self, request: Request) -> Response:
        # In FastAPI's order: the body is read and parsed first, then the dependencies
        # run (the key check), then the parameters are validated all together.
        body = await self._read_body(request) if self.body else _UNDEFINED
        values: dict[str, Any] = {}
        for name, dependency in self.dependencies:
            answer = await dependency(request)
            if name is not None:
                values[name] = answer
        errors: list[Any] = []
        for fields, received in ((self.path, request.path_params),
                                 (self.query, request.query_params),
                                 (self.headers, request.headers)):
            if fields:
                found, wrong = request_params_to_args(fields, received)
                values.update(found)
                errors.extend(wrong)
        if self.body:
            found, wrong = await request_body_to_args(self.body, body, self.embed_body)
            values.update(found)
            errors.extend(wrong)
        if errors:
            raise RequestValidationError(errors, body=None if body is _UNDEFINED else body)
        if self.request_name is not None:
            values[self.request_name] = request
        answer = await self.call(**values)
        if isinstance(answer, Response):
            return answer
        content = await serialize_response(field=self.response_field, response_content=answer,
                                           dump_json=self.dump_json, **self.serialise)
        response = (Response(content, status_code=self.status_code,
                             media_type="application/json")
                    if self.dump_json else self.response_class(content,
                                                               status_code=self.status_code))
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        return response

    async def _read_body(self, request: Request) -> Any:
        """The body as FastAPI reads it: JSON when the Content-Type says so (or is
        missing and the route is not strict), else the bytes; nothing when empty."""
        raw = await request.body()
        if not raw:
            return _UNDEFINED
        content_type = request.headers.get("content-type")
        if not (_is_json(content_type) if content_type else not self.strict_content_type):
            return raw
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body", error.pos),
                  "msg": "JSON decode error", "input": {}, "ctx": {"error": error.msg}}],
                body=error.doc) from error
        except ValueError as error:  # not UTF-8, or another decoding failure
            raise HTTPException(status_code=400,
                                detail="There was an error parsing the body") from error


def _is_json(content_type: str) -> bool:
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _special(dependant: Dependant) -> bool:
    """Whether ``dependant`` asks for something other than the request."""
    return bool(dependant.response_param_name or dependant.background_tasks_param_name
                or dependant.security_scopes_param_name or dependant.websocket_param_name
                or dependant.http_connection_param_name)


def _simple_dependency(dependant: Dependant) -> Callable[[Request], Awaitable[Any]] | None:
    """The dependency's ``async def (request)``, or None for anything richer."""
    call = dependant.call
    if (call is None or _special(dependant) or dependant.dependencies
            or dependant.path_params or dependant.query_params or dependant.header_params
            or dependant.cookie_params or dependant.body_params):
        return None
    if not (inspect.iscoroutinefunction(call)
            or inspect.iscoroutinefunction(type(call).__call__)):  # an instance's method
        return None
    name = dependant.request_param_name
    if name is None:
        return lambda _request: call()
    return lambda request: call(**{name: request})


class PlannedRoutes:
    """Requests under ``prefix`` answered straight by their route's plan, without the
    FastAPI application around it: its middleware stack, its router walking the routes
    one by one, its per-request exit stacks. Measured in-process, those were about as
    much of a request's CPU again as solving its dependencies had been.

    What the application still decides is kept: the routes are the application's own,
    tried in its order; a path no route takes whole (a 404, a 405) goes to the
    application, which answers it as before; exceptions go to the handlers the
    application registered. Only used where every route that could match a path under
    ``prefix`` has a plan, so the answer is the one FastAPI would have given.
    """

    def __init__(self, api: FastAPI, prefix: str) -> None:
        self.api = api
        self.prefix = prefix
        self._routes: dict[str, tuple[tuple[re.Pattern[str], OneHopRoute], ...]] = {}
        routes = [route for route in api.router.routes if _could_take(route, prefix)]
        if not all(isinstance(route, OneHopRoute) and route.plan is not None
                   for route in routes):
            return  # something FastAPI answers itself may match: leave it all to FastAPI
        for route in routes:
            assert isinstance(route, OneHopRoute)
            for method in route.methods or ():
                self._routes[method] = (*self._routes.get(method, ()),
                                        (route.path_regex, route))
        self._handlers = api.exception_handlers

    def find(self, scope: Scope) -> OneHopRoute | None:
        """The route that takes this request whole, with the scope made ready for it."""
        path: str = scope["path"]
        if not path.startswith(self.prefix) or scope.get("root_path"):
            return None
        for pattern, route in self._routes.get(scope["method"], ()):
            if pattern.match(path) is None:
                continue
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                scope["app"] = self.api
                scope["router"] = self.api.router
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: OneHopRoute = scope["route"]
        assert route.plan is not None
        request = Request(scope, receive, send)
        try:
            response = await route.plan.handle(request)
        except Exception as error:  # answered as the application's handlers answer it
            handler = next(self._handlers[kind] for kind in type(error).__mro__
                           if kind in self._handlers)
            answer = handler(request, error)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)


def _could_take(route: BaseRoute, prefix: str) -> bool:
    """Whether ``route`` might match some path under ``prefix``: its path up to the
    first parameter (the whole path when it has none) and ``prefix`` overlap."""
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return True  # not a route with a path template: assume the worst
    literal = path.split("{", 1)[0]
    if literal == path and not isinstance(route, Mount):  # a Mount takes what follows
        return path.startswith(prefix)
    return literal.startswith(prefix) or prefix.startswith(literal)
