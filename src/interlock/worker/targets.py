"""Checking an endpoint URL against the target guard when it is saved.

Saving is where a user can still fix a mistake, so the URL's host is resolved here and
every address checked; the sender checks again at each delivery, after its own lookup,
because DNS answers change (DNS rebinding) and the setting may have changed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable

from interlock.domain.errors import InvalidInput
from interlock.domain.targets import Network, is_forbidden, parse_endpoint_url


async def check_target(url: str, allowed: Iterable[Network] = ()) -> None:
    """Raise InvalidInput if ``url`` is malformed, its host does not resolve, or any
    address it resolves to is one Interlock may not call.

    Any forbidden address fails the check, not only all of them: a name that resolves
    to both a public and a private address would otherwise reach the private one on
    the day the public one stops answering.
    """
    endpoint = parse_endpoint_url(url)
    allowed = tuple(allowed)
    if endpoint.address is not None:
        addresses = [str(endpoint.address)]
    else:
        addresses = await _resolve(endpoint.host, endpoint.port)
    for address in addresses:
        reason = _reason(address, allowed)
        if reason is not None:
            raise InvalidInput(f"URL host {endpoint.host!r} resolves to a forbidden address: "
                               f"{reason}. An operator can allow it in "
                               "INTERLOCK_ALLOWED_TARGETS")


async def _resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise InvalidInput(f"URL host {host!r} could not be resolved: {error}") from error
    return [str(info[4][0]) for info in infos]


def _reason(address: str, allowed: tuple[Network, ...]) -> str | None:
    try:
        return is_forbidden(address, allowed)
    except ValueError:
        return f"{address!r} is not an IP address"
