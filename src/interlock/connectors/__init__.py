"""Connector kinds: one package per external tool, each a ConnectorPlugin
(ports.plugins) registered under the entry point group ``interlock.connectors``, with a
driver implementing the capabilities of ports.connector it needs."""
