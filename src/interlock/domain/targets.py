"""Which URLs a webhook endpoint may have, and which IP addresses Interlock may call.

Interlock sends HTTP requests to URLs its users type in, from inside the operator's
network. Without a guard that is server-side request forgery: an endpoint pointed at
``http://169.254.169.254/`` or ``http://10.0.0.5:9200/`` would let a user read the cloud
metadata service or an internal database through the attempt log. So every address a
delivery would connect to is checked here, after DNS (the host name alone proves
nothing), and operators who really mean to call an internal receiver list its network in
``INTERLOCK_ALLOWED_TARGETS``.

Pure: no DNS, no sockets. Callers resolve and pass the addresses in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import SplitResult, urlsplit

from interlock.domain.errors import InvalidInput

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})

#: Cloud instance-metadata services (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba). They hand
#: out credentials to anyone who can make the host send a GET, so a broad allowed network
#: does not open them: only an entry naming exactly that one address does.
METADATA_ADDRESSES: frozenset[Address] = frozenset(
    {ip_address("169.254.169.254"), ip_address("fd00:ec2::254"), ip_address("100.100.100.200")}
)

_CARRIER_GRADE_NAT = ip_network("100.64.0.0/10")
_RFC1918 = (ip_network("10.0.0.0/8"), ip_network("172.16.0.0/12"), ip_network("192.168.0.0/16"))
_UNIQUE_LOCAL = ip_network("fc00::/7")
_NAT64 = ip_network("64:ff9b::/96")

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_FORBIDDEN_URL_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True)
class EndpointUrl:
    """A URL that passed :func:`parse_endpoint_url`; ``host`` is lower-case, without
    brackets, and ``address`` is set when the host is an IP literal."""

    url: str
    scheme: str
    host: str
    port: int
    address: Address | None


def parse_endpoint_url(url: str) -> EndpointUrl:
    """Check the shape of an endpoint URL; raises InvalidInput saying what is wrong.

    Credentials in the URL are refused because they would be stored and shown in
    plain text; numeric hosts in legacy forms (``2130706433``, ``127.1``, ``0x7f.1``) are
    refused because resolvers quietly map them onto addresses the user cannot read.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"URL is {len(url)} characters long; the limit is {MAX_URL_LENGTH}")
    if _FORBIDDEN_URL_CHARACTERS.search(url):
        raise InvalidInput("URL must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise InvalidInput(f"URL cannot be parsed: {error}") from error
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"{parts.scheme!r}" if parts.scheme else "none"
        raise InvalidInput(f"URL scheme must be http or https, not {shown}")
    if "@" in parts.netloc:
        raise InvalidInput("URL must not contain credentials (user:password@); "
                           "use a secret header or the signing secret instead")
    host = _host(parts)
    return EndpointUrl(url=url, scheme=scheme, host=host, port=_port(parts, scheme),
                       address=ip_literal(host))


def _host(parts: SplitResult) -> str:
    host = parts.hostname
    if not host:
        raise InvalidInput("URL must have a host, as in https://hooks.example.com/path")
    if ip_literal(host) is not None:
        return host
    if ":" in host or "%" in host:
        raise InvalidInput(f"URL host {host!r} is not a valid IPv6 address")
    _check_host_name(host)
    return host


def _check_host_name(host: str) -> None:
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise InvalidInput(f"URL host {host!r} is not a valid host name") from error
    labels = ascii_host.removesuffix(".").split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidInput(f"URL host {host!r} is not a valid host name")
    if all(_NUMERIC_LABEL.match(label) for label in labels):
        raise InvalidInput(f"URL host {host!r} looks like an IP address but is not written "
                           "as one; use dotted form such as 192.0.2.10")


def _port(parts: SplitResult, scheme: str) -> int:
    try:
        port = parts.port
    except ValueError as error:
        raise InvalidInput(f"URL port is not a number from 1 to 65535: {error}") from error
    if port == 0:
        raise InvalidInput("URL port is not a number from 1 to 65535")
    return port if port is not None else (443 if scheme == "https" else 80)


def ip_literal(host: str) -> Address | None:
    """The address if ``host`` is written as a canonical IP address (IPv6 with or without
    brackets), else None."""
    try:
        return ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def parse_allowed_networks(text: str) -> tuple[Network, ...]:
    """Parse INTERLOCK_ALLOWED_TARGETS: comma-separated CIDR networks such as
    ``127.0.0.0/8,::1/128``. Raises ValueError naming the bad entry; a network with host
    bits set (``10.0.0.1/8``) is refused because it usually means a typo."""
    networks: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ip_network(entry, strict=True))
        except ValueError as error:
            raise ValueError(f"allowed target {entry!r} is not a CIDR network "
                             f"like 10.0.0.0/8 or fd00::/8: {error}") from error
    return tuple(networks)


def is_forbidden(address: Address | str, allowed: Iterable[Network] = ()) -> str | None:
    """Why Interlock must not connect to ``address``, or None if it may.

    Addresses inside an allowed network may be called, except the metadata addresses,
    which need an allowed entry naming exactly them. IPv6 forms that carry an IPv4
    address (``::ffff:10.0.0.1``, NAT64 ``64:ff9b::a00:1``) are judged by that address.
    """
    if isinstance(address, str):
        address = ip_address(address)
    allowed = tuple(allowed)
    for candidate in _meanings(address):
        reason = _reason(candidate)
        if reason is None or _allowed(candidate, allowed):
            continue
        return reason if candidate == address else f"{reason} (written as {address})"
    return None


def _meanings(address: Address) -> tuple[Address, ...]:
    """The address itself and any IPv4 address it stands for."""
    if isinstance(address, IPv4Address):
        return (address,)
    embedded = address.ipv4_mapped
    if embedded is None and address in _NAT64:
        embedded = IPv4Address(int(address) & 0xFFFFFFFF)
    if embedded is None:
        embedded = address.sixtofour
    if embedded is None:
        return (address,)
    return (embedded,) if address.ipv4_mapped is not None else (address, embedded)


def _allowed(address: Address, allowed: tuple[Network, ...]) -> bool:
    """A metadata address counts as allowed only through an entry naming it alone, so
    allowing ``169.254.0.0/16`` or ``fd00::/8`` for a lab network does not open it."""
    if address in METADATA_ADDRESSES:
        return any(network.num_addresses == 1 and address in network for network in allowed)
    return any(address in network for network in allowed)


def _reason(address: Address) -> str | None:
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata service address"
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if any(address in network for network in (*_RFC1918, _UNIQUE_LOCAL)):
        return f"{address} is a private address"
    if address in _CARRIER_GRADE_NAT:
        return f"{address} is a carrier-grade NAT address (100.64.0.0/10)"
    if address.is_reserved:
        return f"{address} is in a reserved range"
    if not address.is_global:
        return f"{address} is in a special-purpose range that is not reachable on the internet"
    return None
