"""The connector kinds installed with this Interlock, found by entry point.

Every kind, built-in or not, is a :class:`~interlock.ports.plugins.ConnectorPlugin`
named in the entry point group ``interlock.connectors`` of some installed package's
metadata (Interlock's own are in its ``pyproject.toml``). Two packages claiming one kind
stop the start (:class:`~interlock.plugins.PluginError`).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint

from interlock.plugins import load_group
from interlock.ports.plugins import CONNECTOR_GROUP, ConnectorPlugin


def plugins(found: Iterable[EntryPoint] | None = None) -> dict[str, ConnectorPlugin]:
    """Every installed connector kind, by kind. ``found`` replaces the installed entry
    points (for tests)."""
    return load_group(CONNECTOR_GROUP, ConnectorPlugin, found)
