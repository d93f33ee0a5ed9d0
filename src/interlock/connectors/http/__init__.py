"""The generic HTTP connector (kind ``http``): templated requests per event type,
JMESPath mappings for what comes back, an optional fetch-current-state request and an
optional HMAC check on its inbound hook. See the README's "The generic HTTP connector"."""

from interlock.connectors.http.driver import HttpDriver

__all__ = ["HttpDriver"]
