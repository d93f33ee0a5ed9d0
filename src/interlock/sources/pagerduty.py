"""PagerDuty Events API v2 (``POST /v2/enqueue``), so any tool that can page PagerDuty
can send to Interlock. See
https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ and the schema at
https://github.com/PagerDuty/api-schema/blob/main/reference/events-v2/openapiv3.json

One request is one event: ``event_action`` (trigger|acknowledge|resolve), ``dedup_key``,
and for a trigger a ``payload`` with ``summary``, ``source``, ``severity``
(critical|error|warning|info) and optionally ``timestamp``, ``component``, ``group``,
``class``, ``custom_details``; plus ``client``, ``client_url``, ``links``, ``images``.
``routing_key`` is PagerDuty's credential: Interlock authenticates with the source's
own token instead, and never stores the routing key.

What Interlock takes:

- fingerprint: ``dedup_key``. A trigger without one gets, in PagerDuty, a random key
  returned in the response; Interlock instead derives a stable one, the SHA-256 of
  ``summary``, ``source``, ``component``, ``group`` and ``class`` (or of
  ``fingerprint_fields`` among those and ``custom_details``), so a repeated identical
  trigger deduplicates. Acknowledge and resolve need ``dedup_key``, as in PagerDuty.
- action: ``trigger`` fires, ``acknowledge`` acknowledges, ``resolve`` resolves.
- title: ``payload.summary`` (for an acknowledge or resolve without a payload, the
  dedup key). summary: the same text.
- severity: the ``severity_label`` key of ``custom_details`` if it names a severity,
  else ``payload.severity``: critical→critical, error→high, warning→medium,
  info→info. A trigger with any other word is refused, as PagerDuty does.
- name: ``payload.class``, else ``payload.component``.
- service: the ``service_label`` key of ``custom_details``, else ``payload.group``
  ("logical grouping of components of a service"), else ``payload.component``. Never
  ``source``: that is a host.
- labels: ``source``, ``component``, ``group``, ``class`` and ``severity`` as given.
  annotations: ``custom_details`` (non-string values as compact JSON) and ``client``.
- url: ``client_url``, else the first of ``links``. starts_at: ``payload.timestamp``
  of a trigger; ends_at: that of a resolve.
"""

from __future__ import annotations

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
    MAX_TEXT,
    as_list,
    as_object,
    at,
    checked,
    details_text,
    fingerprint_of,
    required_text,
    text,
    timestamp,
    title_line,
)

ACTIONS = {
    "trigger": SignalAction.FIRING,
    "acknowledge": SignalAction.ACKNOWLEDGE,
    "resolve": SignalAction.RESOLVED,
}
SEVERITIES = {"critical": Severity.CRITICAL, "error": Severity.HIGH,
              "warning": Severity.MEDIUM, "info": Severity.INFO}
LABEL_FIELDS = ("source", "component", "group", "class", "severity")
IDENTITY_FIELDS = ("summary", "source", "component", "group", "class")


def parse_pagerduty(payload: Any, options: ParseOptions) -> list[Signal]:
    event = as_object(payload, "")
    word = required_text(event, "event_action", "", MAX_ID)
    action = ACTIONS.get(word.strip().lower())
    if action is None:
        raise ParseError(
            f"event_action: expected trigger, acknowledge or resolve, got {word!r}")
    dedup_key = text(event, "dedup_key", "", MAX_ID)
    if dedup_key is None and action is not SignalAction.FIRING:
        raise ParseError(f"dedup_key: missing; {word} needs the dedup_key of its trigger")

    details_raw = event.get("payload")
    if details_raw is None and action is SignalAction.FIRING:
        raise ParseError("payload: missing; a trigger needs summary, source and severity")
    body = as_object(details_raw, "payload") if details_raw is not None else {}
    fields = {key: value for key in LABEL_FIELDS
              if (value := text(body, key, "payload", MAX_ID)) is not None}
    summary = text(body, "summary", "payload", MAX_TEXT)
    if action is SignalAction.FIRING:
        if summary is None:
            raise ParseError("payload.summary: missing")
        if "source" not in fields:
            raise ParseError("payload.source: missing")
        if "severity" not in fields:
            raise ParseError("payload.severity: missing")
    custom = _custom_details(body.get("custom_details"))

    severity = _severity(fields.get("severity"), custom.get(options.severity_label), action)
    if dedup_key is None:
        identity = {**custom, **fields, "summary": summary or ""}
        chosen = options.fingerprint_fields or IDENTITY_FIELDS
        dedup_key = fingerprint_of(identity, chosen, "payload")
    when = timestamp(body.get("timestamp"), "payload.timestamp")
    annotations = dict(custom)
    first_link = _first_link(event.get("links"))
    client = text(event, "client", "")
    if client is not None:
        annotations.setdefault("client", client)
    return [Signal(
        fingerprint=dedup_key,
        action=action,
        title=title_line(summary) if summary else dedup_key[:200],
        severity=severity,
        name=fields.get("class") or fields.get("component") or "",
        service=(_word(custom.get(options.service_label)) or fields.get("group")
                 or fields.get("component")),
        summary=(summary or "").strip(),
        labels=fields,
        annotations=annotations,
        starts_at=when if action is SignalAction.FIRING else None,
        ends_at=when if action is SignalAction.RESOLVED else None,
        url=text(event, "client_url", "") or first_link,
    )]


def _severity(word: str | None, label: str | None, action: SignalAction) -> Severity:
    if label is not None and label.strip().lower() in SEVERITY_WORDS:
        return severity_from(label)
    if word is None:
        return Severity.MEDIUM
    known = SEVERITIES.get(word.strip().lower()) or SEVERITY_WORDS.get(word.strip().lower())
    if known is None:
        if action is SignalAction.FIRING:
            raise ParseError(
                f"payload.severity: expected critical, error, warning or info, got {word!r}")
        return Severity.MEDIUM
    return known


def _custom_details(value: object) -> dict[str, str]:
    """custom_details as annotations. PagerDuty allows any JSON here; a string is kept
    under ``details``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        return {"details": details_text(value, "payload.custom_details")}
    where = "payload.custom_details"
    result: dict[str, str] = {}
    for key, item in value.items():
        checked(key, f"{where}: a name", MAX_ID)
        if item is not None:
            result[key] = details_text(item, at(where, key))
    return result


def _word(value: str | None) -> str | None:
    """A short single-line value, fit to be a service name; else None."""
    if value is None or not value.strip() or len(value) > MAX_ID or "\n" in value:
        return None
    return value.strip()


def _first_link(value: object) -> str | None:
    if value is None:
        return None
    for index, item in enumerate(as_list(value, "links")):
        href = text(as_object(item, f"links[{index}]"), "href", f"links[{index}]")
        if href is not None:
            return href
    return None
