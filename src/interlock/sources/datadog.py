"""Datadog's Webhooks integration.

Datadog has no fixed webhook body: the user writes a JSON template filled with
``$VARIABLES``. See https://docs.datadoghq.com/integrations/webhooks/ . Interlock reads
Datadog's default payload::

    {"body": "$EVENT_MSG", "last_updated": "$LAST_UPDATED", "event_type": "$EVENT_TYPE",
     "title": "$EVENT_TITLE", "date": "$DATE",
     "org": {"id": "$ORG_ID", "name": "$ORG_NAME"}, "id": "$ID"}

and, better, that payload plus these fields (the recommended template, in the README)::

    "aggreg_key": "$AGGREG_KEY", "alert_id": "$ALERT_ID",
    "alert_transition": "$ALERT_TRANSITION", "alert_type": "$ALERT_TYPE",
    "alert_priority": "$ALERT_PRIORITY", "alert_title": "$ALERT_TITLE",
    "alert_scope": "$ALERT_SCOPE", "alert_status": "$ALERT_STATUS",
    "hostname": "$HOSTNAME", "link": "$LINK", "tags": "$TAGS"

Leniency: keys match whatever their case and punctuation (``alertTransition``,
``ALERT_TRANSITION``), may sit in a nested ``alert`` object (``alert.transition``),
and ``transition``/``aggregation_key``/``host``/``url``/``message`` are accepted as
aliases. A value still reading ``$SOMETHING`` counts as absent.

What Interlock takes:

- fingerprint: ``$AGGREG_KEY`` (the same for a monitor's group across trigger and
  recovery); else ``$ALERT_ID`` with ``$ALERT_SCOPE`` (monitor and group); else
  ``$ALERT_CYCLE_KEY``; else a SHA-256 of the tags (``fingerprint_fields`` or all)
  and the title without its ``[Triggered]`` prefix. Never ``$ID``: that is one event.
- action: ``$ALERT_TRANSITION``, else the ``[Triggered]``/``[Recovered]`` prefix of
  ``$EVENT_TITLE``, else ``$ALERT_TYPE`` ``success`` resolves; else firing. Recovered
  (and anything saying recovered or resolved) resolves; Triggered, Re-Triggered,
  Warn, Re-Warn, No Data, Re-No Data and Renotify fire; another word is refused.
- title: ``$EVENT_TITLE`` without its ``[Triggered]``/``[P1]`` prefixes, else
  ``$ALERT_TITLE``. name: ``$ALERT_TITLE`` cleaned the same way, else the title.
- severity: the ``severity_label`` tag; else ``$ALERT_PRIORITY`` P1..P5
  (critical, high, medium, low, info), also from a ``[P1]`` title prefix; else
  ``$ALERT_TYPE``: error→high, warning→medium, info/success→info; else medium.
- service: the ``service_label`` tag (Datadog's unified ``service`` tag by default).
- labels: ``$TAGS`` and ``$ALERT_SCOPE`` (``key:value`` pairs; a bare tag has an
  empty value; repeated keys join with commas), plus ``host`` from ``$HOSTNAME``.
- summary: ``$EVENT_MSG`` (``body``), else ``$TEXT_ONLY_MSG``, else ``$ALERT_STATUS``.
  annotations: every scalar field as sent (``org.name`` for nested ones), but tags.
- url: ``$LINK``; starts_at (firing) or ends_at (resolved): ``$DATE`` (epoch ms).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from interlock.domain.alerts import (
    SEVERITY_WORDS,
    ParseError,
    ParseOptions,
    Signal,
    SignalAction,
    severity_from,
)
from interlock.domain.incidents import Severity
from interlock.sources.reading import (
    MAX_ID,
    MAX_LINE,
    MAX_TEXT,
    as_list,
    as_object,
    checked,
    epoch_or_iso,
    fingerprint_of,
    kind_of,
    scalar_text,
    title_line,
)

_UNFILLED = re.compile(r"^\$[A-Z][A-Z0-9_]*$")
_PREFIX = re.compile(r"\[([^\[\]]{0,200})\]")
_PRIORITY = re.compile(r"^p[1-5]$")
ALERT_TYPES = {"error": Severity.HIGH, "warning": Severity.MEDIUM,
               "info": Severity.INFO, "success": Severity.INFO}
TRANSITIONS = {
    "triggered": SignalAction.FIRING, "re-triggered": SignalAction.FIRING,
    "retriggered": SignalAction.FIRING, "warn": SignalAction.FIRING,
    "re-warn": SignalAction.FIRING, "warning": SignalAction.FIRING,
    "no data": SignalAction.FIRING, "re-no data": SignalAction.FIRING,
    "nodata": SignalAction.FIRING, "renotify": SignalAction.FIRING,
    "re-notify": SignalAction.FIRING, "alert": SignalAction.FIRING,
    "firing": SignalAction.FIRING,
    "recovered": SignalAction.RESOLVED, "resolved": SignalAction.RESOLVED,
    "ok": SignalAction.RESOLVED, "success": SignalAction.RESOLVED,
}
NESTED = ("alert", "event", "org")
ALIASED = ("alert", "event")


def parse_datadog(payload: Any, options: ParseOptions) -> list[Signal]:
    fields = _Fields(as_object(payload, ""))
    raw_title = fields.get("title", "eventtitle")
    alert_title = fields.get("alerttitle")
    prefixes, title = _split_prefixes(raw_title or "")
    name_prefixes, name = _split_prefixes(alert_title or "")
    title = title or name
    if not title:
        raise ParseError("title: missing (map $EVENT_TITLE to \"title\")")

    labels = _tags(fields.raw("tags"), "tags", MAX_LINE)
    for key, value in _tags(fields.get("alertscope"), "alert_scope", MAX_LINE).items():
        labels.setdefault(key, value)
    host = fields.get("hostname", "host")
    if host is not None:
        labels.setdefault("host", host)

    action = _action(fields.get("alerttransition", "transition"), prefixes + name_prefixes,
                     fields.get("alerttype"))
    when = epoch_or_iso(fields.get("date", "dateposix", "lastupdated"))
    return [Signal(
        fingerprint=_fingerprint(fields, labels, title, options),
        action=action,
        title=title_line(title),
        severity=_severity(fields, labels, prefixes, options),
        name=title_line(name or title),
        service=labels.get(options.service_label) or None,
        summary=(fields.get("body", "eventmsg", "message", "textonlymsg", "text",
                            "alertstatus") or "").strip(),
        labels=labels,
        annotations=fields.annotations,
        starts_at=when if action is SignalAction.FIRING else None,
        ends_at=when if action is SignalAction.RESOLVED else None,
        url=fields.get("link", "url", "eventurl"),
    )]


class _Fields:
    """The payload's scalar fields by normalised key (lower case, letters and digits
    only), with nested ``alert``/``event``/``org`` objects flattened (``alert.id`` →
    ``alertid``; inside ``alert`` and ``event`` also plain ``id``, unless the top level
    has it)."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.values: dict[str, str] = {}
        self.raws: dict[str, Any] = {}
        self.annotations: dict[str, str] = {}
        nested = []
        for key, value in payload.items():
            checked(key, "payload: a name", MAX_ID)
            if isinstance(value, dict) and _normal(key) in NESTED:
                nested.append((key, value))
            else:
                self._add(key, _normal(key), value)
        for key, value in nested:
            for inner, item in value.items():
                checked(inner, f"{key}: a name", MAX_ID)
                self._add(f"{key}.{inner}", _normal(key) + _normal(inner), item)
                if _normal(key) in ALIASED:
                    self._add(None, _normal(inner), item)

    def _add(self, shown: str | None, normal: str, value: Any) -> None:
        if normal in self.raws:
            return
        self.raws[normal] = value
        if isinstance(value, dict | list):
            return
        filled = scalar_text(value, shown or normal, MAX_TEXT)
        if filled is None or not filled.strip() or _UNFILLED.match(filled):
            return
        self.values[normal] = filled
        if shown is not None and normal != "tags":
            self.annotations[shown] = filled

    def get(self, *names: str) -> str | None:
        for name in names:
            if name in self.values:
                return self.values[name]
        return None

    def raw(self, name: str) -> Any:
        return self.raws.get(name)


def _normal(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def _split_prefixes(title: str) -> tuple[list[str], str]:
    """``[P1] [Triggered on {host:a}] [Memory Alert]`` → (["p1", "triggered on
    {host:a}"], "[Memory Alert]"): leading brackets naming a priority or a transition
    are removed, up to the first that does not."""
    known: list[str] = []
    rest = title.strip()
    while (match := _PREFIX.match(rest)) is not None:
        word = match.group(1).strip().lower()
        if not (_PRIORITY.match(word) or _transition(word) is not None):
            break
        known.append(word)
        rest = rest[match.end():].lstrip()
    return known, rest


def _transition(word: str) -> SignalAction | None:
    """``Triggered``, ``Re-Triggered on {host:a}``, ``Warn Recovered``… as an action."""
    base = word.strip().lower().split(" on ", 1)[0].strip()
    if base in TRANSITIONS:
        return TRANSITIONS[base]
    if "recover" in base or "resolv" in base:
        return SignalAction.RESOLVED
    return None


def _action(transition: str | None, prefixes: list[str], alert_type: str | None) -> SignalAction:
    if transition is not None:
        action = _transition(transition.strip().lower())
        if action is None:
            raise ParseError(f"alert_transition: expected Triggered, Recovered, Warn, "
                             f"No Data or Re-Triggered, got {transition[:100]!r}")
        return action
    for word in prefixes:
        found = _transition(word)
        if found is not None:
            return found
    if alert_type is not None and alert_type.strip().lower() == "success":
        return SignalAction.RESOLVED
    return SignalAction.FIRING


def _severity(
    fields: _Fields,
    labels: Mapping[str, str],
    prefixes: list[str],
    options: ParseOptions,
) -> Severity:
    tagged = labels.get(options.severity_label, "").strip().lower()
    if tagged in SEVERITY_WORDS:
        return SEVERITY_WORDS[tagged]
    for candidate in (fields.get("alertpriority"), fields.get("priority"), *prefixes):
        if candidate is not None and _PRIORITY.match(candidate.strip().lower()):
            return severity_from(candidate)
    alert_type = (fields.get("alerttype") or "").strip().lower()
    return ALERT_TYPES.get(alert_type, Severity.MEDIUM)


def _fingerprint(
    fields: _Fields, labels: Mapping[str, str], title: str, options: ParseOptions
) -> str:
    aggregation = fields.get("aggregkey", "aggregationkey")
    if aggregation is not None:
        return checked(aggregation.strip(), "aggreg_key", MAX_ID)
    alert_id = fields.get("alertid")
    if alert_id is not None:
        scope = fields.get("alertscope")
        if scope is None:
            return checked(alert_id.strip(), "alert_id", MAX_ID)
        return fingerprint_of({"alert_id": alert_id, "scope": scope}, (), "alert_id")
    cycle = fields.get("alertcyclekey")
    if cycle is not None:
        return checked(cycle.strip(), "alert_cycle_key", MAX_ID)
    return fingerprint_of({"title": title, **labels}, options.fingerprint_fields, "tags")


def _tags(value: object, where: str, limit: int) -> dict[str, str]:
    """``$TAGS`` (``monitor,name:myService,role:computing-node``) or a JSON array of
    such tags, as labels."""
    if value is None:
        return {}
    if isinstance(value, str):
        if _UNFILLED.match(value):
            return {}
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = as_list(value, where)
    else:
        raise ParseError(f"{where}: expected a comma-separated string or an array, "
                         f"got {kind_of(value)}")
    labels: dict[str, str] = {}
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise ParseError(f"{where}[{index}]: expected a string, got {kind_of(item)}")
        key, _, tag_value = checked(item, f"{where}[{index}]", limit).strip().partition(":")
        key = key.strip()
        if not key:
            continue
        tag_value = tag_value.strip()
        if key in labels and tag_value and tag_value not in labels[key].split(","):
            labels[key] = checked(f"{labels[key]},{tag_value}", f"{where}: {key}", limit)
        else:
            labels.setdefault(key, tag_value)
    return labels
