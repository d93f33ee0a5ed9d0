"""Loading plugins from entry points, for connector kinds and source kinds alike.

A kind is whatever object an installed package names in an entry point group
(``interlock.connectors``, ``interlock.sources``); Interlock's own kinds are listed in
its ``pyproject.toml`` like anyone else's. Two packages claiming one kind stop the
start with a message naming both: silently taking either would run the wrong code.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Protocol, TypeVar

from interlock.domain.errors import InterlockError


class PluginError(InterlockError):
    """An installed plugin cannot be used; Interlock does not start with it."""


class _Kinded(Protocol):
    @property
    def kind(self) -> str: ...


K = TypeVar("K", bound=_Kinded)


def load_group(group: str, wanted: type[K], found: Iterable[EntryPoint] | None = None
               ) -> dict[str, K]:
    """Every plugin of ``group``, by kind. ``found`` replaces the installed entry points
    (for tests)."""
    chosen: dict[str, tuple[K, str]] = {}
    for entry in entry_points(group=group) if found is None else found:
        provider = describe(entry)
        plugin = load(entry, wanted, provider)
        if plugin.kind != entry.name:
            raise PluginError(f"{provider} registers {group} kind {entry.name!r} but its "
                              f"plugin says kind {plugin.kind!r}; they must match")
        if plugin.kind in chosen:
            earlier = chosen[plugin.kind][1]
            if earlier == provider:
                continue  # one package seen twice on the path
            raise PluginError(f"{group} kind {plugin.kind!r} is registered twice: by "
                              f"{earlier} and by {provider}; uninstall one of them")
        chosen[plugin.kind] = (plugin, provider)
    return {kind: plugin for kind, (plugin, _) in sorted(chosen.items())}


def describe(entry: EntryPoint) -> str:
    """Who provides an entry point, for a message: ``value (package name)``."""
    dist = getattr(entry, "dist", None)
    return f"{entry.value} (package {dist.name})" if dist is not None else entry.value


def load(entry: EntryPoint, wanted: type[K], provider: str) -> K:
    """The object an entry point names (or what it returns, if it names a function)."""
    try:
        value = entry.load()
    except Exception as error:  # an installed package that does not import
        raise PluginError(f"{provider} could not be loaded: {type(error).__name__}: "
                          f"{error}") from error
    if inspect.isfunction(value):
        try:
            value = value()
        except Exception as error:
            raise PluginError(f"{provider} failed to make its plugin: "
                              f"{type(error).__name__}: {error}") from error
    if not isinstance(value, wanted):
        raise PluginError(f"{provider} is not a {wanted.__name__} "
                          f"(it is a {type(value).__name__})")
    return value
