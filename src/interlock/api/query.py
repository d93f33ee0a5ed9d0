"""Unknown query parameters are refused (400), not ignored.

A typo in a filter (``?statsu=open``) that is silently ignored answers with every
incident, which a person in the middle of an outage reads as the answer to the question
they meant to ask. Each API route accepts exactly the query parameters its OpenAPI
operation declares; anything else is a 400 naming it.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from interlock.domain.errors import BadRequest

_DECLARED: dict[int, frozenset[str]] = {}


def _declared(dependant: Dependant) -> frozenset[str]:
    """The query parameters a route (and its dependencies) declare, by name."""
    known = _DECLARED.get(id(dependant))
    if known is None:
        names: set[str] = set()
        pending = [dependant]
        while pending:
            item = pending.pop()
            names.update(param.alias for param in item.query_params)
            pending.extend(item.dependencies)
        known = _DECLARED[id(dependant)] = frozenset(names)
    return known


async def known_query_only(request: Request) -> None:
    """A router dependency: refuse a query parameter the route does not declare. Async
    on purpose, as the dependencies in api.auth: FastAPI runs a plain ``def`` in its
    thread pool, and that hop cost about a third of a comment's CPU in the API."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _declared(route.dependant))
    if unknown:
        names = ", ".join(repr(name) for name in unknown[:5])
        raise BadRequest(f"unknown query parameter{'s' if len(unknown) > 1 else ''} {names}; "
                         f"this operation takes "
                         f"{', '.join(sorted(_declared(route.dependant))) or 'none'}")


#: The dependency of every API router but health and the tools' webhooks.
STRICT = [Depends(known_query_only)]
