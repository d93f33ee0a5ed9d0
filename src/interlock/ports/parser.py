"""Turning a source's payload into signals (implemented in interlock.sources)."""

from __future__ import annotations

from typing import Any, Protocol

from interlock.domain.alerts import Signal, SourceKind


class PayloadParser(Protocol):
    def __call__(self, kind: SourceKind, payload: Any, options: Any) -> list[Signal]:
        """Raise interlock.domain.alerts.ParseError for a payload that is not this
        kind's format; never anything else."""
        ...

    def check_options(self, kind: SourceKind, options: Any) -> Any:
        """Validate a source's parser options when it is saved (InvalidInput if bad)
        and return them normalised."""
        ...
