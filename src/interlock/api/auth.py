"""Bearer API keys and scope checks, as FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from interlock.domain.errors import Forbidden, Unauthenticated
from interlock.domain.events import Origin, OriginKind
from interlock.domain.keys import ApiKey, Scope
from interlock.services.container import Container
from interlock.services.incidents import Viewer
from interlock.threads import run_sync

_bearer = HTTPBearer(auto_error=False, description="An Interlock API key")


@dataclass(frozen=True)
class Caller:
    key: ApiKey

    @property
    def viewer(self) -> Viewer:
        return Viewer(
            origin=Origin(kind=OriginKind.API_KEY, id=self.key.id, name=self.key.name),
            can_see_private=self.key.allows(Scope.INCIDENTS_PRIVATE),
        )


# These dependencies are ``async`` on purpose: FastAPI runs a plain ``def`` dependency
# in its thread pool, and a hop there and back costs more than what they do.


async def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
    keys = (await container(request)).keys
    key = keys.recently_authenticated(credentials.credentials)
    if key is None:
        key = await run_sync(keys.authenticate, credentials.credentials)
    return Caller(key)


def requires(scope: Scope) -> object:
    """A dependency that admits callers whose key allows ``scope``."""

    async def check(caller: Annotated[Caller, Depends(authenticated)]) -> Caller:
        if not caller.key.allows(scope):
            raise Forbidden(f"this API key lacks the {scope.value} scope")
        return caller

    return Depends(check)
