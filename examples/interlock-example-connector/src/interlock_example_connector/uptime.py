"""``uptime_check``: an example source kind, for a tool that posts
``{"check": "api", "state": "down", "url": "…"}`` when a check changes state.

A source kind is a pure parser (decoded JSON in, signals out, ParseError for anything
else) and a pydantic model of the options a source of this kind takes.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interlock.domain.alerts import ParseError, ParseOptions, Signal, SignalAction, SourcePlugin
from interlock.domain.incidents import Severity
from interlock.sources.models import SourceOptions


class UptimeOptions(SourceOptions):
    down_word: str = Field("down", min_length=1, max_length=50, title="Down word",
                           description="The state that means the check is failing")


def parse_uptime(payload: Any, options: ParseOptions) -> list[Signal]:
    if not isinstance(payload, dict) or not isinstance(payload.get("check"), str):
        raise ParseError("expected an object with a string 'check'")
    check, state = payload["check"], str(payload.get("state") or "")
    down = state.lower() == str(options.extra.get("down_word", "down")).lower()
    return [Signal(
        fingerprint=f"uptime:{check}",
        action=SignalAction.FIRING if down else SignalAction.RESOLVED,
        title=f"{check} is {state or 'unknown'}", severity=Severity.HIGH, name=check,
        service=check, url=payload.get("url") if isinstance(payload.get("url"), str) else None,
    )]


SOURCE = SourcePlugin(
    kind="uptime_check", title="Uptime check",
    description="A check that posts its state when it changes.",
    parse=parse_uptime, options=UptimeOptions)
