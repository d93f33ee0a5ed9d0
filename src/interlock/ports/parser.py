"""Turning a source's payload into signals (implemented in interlock.sources)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from interlock.domain.alerts import Signal, SourcePlugin


class PayloadParser(Protocol):
    @property
    def kinds(self) -> Mapping[str, SourcePlugin]:
        """Every installed source kind."""
        ...

    def plugin(self, kind: str) -> SourcePlugin:
        """The kind's plugin; InvalidInput (field ``kind``) if it is not installed."""
        ...

    def __call__(self, kind: str, payload: Any, options: Any) -> list[Signal]:
        """Raise interlock.domain.alerts.ParseError for a payload that is not this
        kind's format; never anything else."""
        ...

    def reader(self, kind: str, options: Any) -> Callable[[Any], list[Signal]]:
        """What ``__call__`` does with ``kind`` and ``options`` checked once, for a batch
        of one source's payloads (invalid options fail each payload with ParseError)."""
        ...

    def check_options(self, kind: str, options: Any) -> Any:
        """Validate a source's parser options when it is saved (InvalidInput if bad)
        and return them normalised."""
        ...
