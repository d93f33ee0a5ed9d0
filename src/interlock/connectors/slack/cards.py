"""What Interlock writes in Slack: an incident's card, and one thread line per change.

The card is one channel message per incident, always redrawn from the incident's
*current* state (so an old push can never show stale data), with Block Kit blocks for
people and a plain ``text`` that Slack uses for notifications and screen readers. Its
buttons carry the incident id as their ``value``; the action ids are what
:mod:`.commands` reads back when someone presses one.

A private incident shows only its reference, a redacted title and its status: no
summary, service, labels, severity, assignee or buttons (nobody in Slack may act on a
private incident), and its thread lines name neither people nor values.

Everything Interlock did not write itself is escaped: Slack's ``mrkdwn`` turns
``<!channel>`` or ``<@U123>`` into pings and ``<url|text>`` into links, and an alert
title must not be able to do that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlock.domain.connectors import redacted_title
from interlock.domain.events import Event, EventType, Origin, OriginKind
from interlock.domain.incidents import Incident, Status

ACKNOWLEDGE = "interlock.acknowledge"
RESOLVE = "interlock.resolve"
REOPEN = "interlock.reopen"

#: Slack's limits: a header's plain text, a section's text, a field's text.
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
#: A thread line is a chat message, not a document.
LINE_MAX = 3000

STATUS_LABELS = {
    Status.TRIGGERED: ":red_circle: Triggered",
    Status.ACKNOWLEDGED: ":large_yellow_circle: Acknowledged",
    Status.RESOLVED: ":white_check_mark: Resolved",
}

#: A private incident's thread lines: what happened, never to what or by whom.
PRIVATE_LINES = {
    EventType.INCIDENT_ACKNOWLEDGED: "Acknowledged",
    EventType.INCIDENT_RESOLVED: "Resolved",
    EventType.INCIDENT_REOPENED: "Reopened",
    EventType.INCIDENT_UPDATED: "Updated",
    EventType.INCIDENT_COMMENT_ADDED: "Comment added",
    EventType.INCIDENT_ALERT_ATTACHED: "Alerts attached",
}


@dataclass(frozen=True)
class Card:
    #: The notification fallback (Slack's top-level ``text``).
    text: str
    blocks: list[dict[str, Any]]


def escape(text: str) -> str:
    """``text`` safe inside Slack mrkdwn: the three characters Slack asks apps to escape."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit(escaped: str, limit: int) -> str:
    """Already escaped mrkdwn cut to ``limit`` characters as Slack counts them (after
    escaping: ``&`` is five), never inside an ``&amp;``/``&lt;``/``&gt;``."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    entity = cut.rfind("&")
    if entity != -1 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return cut + "…"


def card(incident: Incident, incident_url: str) -> Card:
    """The card for ``incident`` as it is now, linking to ``incident_url``."""
    private = incident.is_private
    title = redacted_title(incident) if private else f"{incident.reference}: {incident.title}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": shorten(title, HEADER_MAX)}},
    ]
    if not private and incident.summary.strip():
        blocks.append(_section(fit(escape(incident.summary), SECTION_MAX)))
    blocks.append({"type": "section", "fields": _fields(incident)})
    if not private and incident.labels:
        labels = "  ".join(f"`{escape(name)}={escape(value)}`"
                           for name, value in sorted(incident.labels.items()))
        blocks.append(_context(fit(f"Labels: {labels}", FIELD_MAX)))
    blocks.append(_context(f"<{incident_url}|Open {incident.reference} in Interlock>"))
    if not private:
        blocks.append({"type": "actions", "elements": _buttons(incident)})
    state = incident.status.value if private else (
        f"{incident.status.value}, {incident.severity.value}")
    return Card(text=f"{escape(title)} ({state})", blocks=blocks)


def _fields(incident: Incident) -> list[dict[str, str]]:
    shown = [("Status", STATUS_LABELS[incident.status])]
    if not incident.is_private:
        shown.append(("Severity", incident.severity.value.capitalize()))
        if incident.service:
            shown.append(("Service", escape(incident.service)))
        shown.append(("Assignee", escape(incident.assignee) if incident.assignee
                      else "_nobody_"))
    return [{"type": "mrkdwn", "text": fit(f"*{name}*\n{value}", FIELD_MAX)}
            for name, value in shown]


def _buttons(incident: Incident) -> list[dict[str, Any]]:
    """Only the buttons that would change something now: a press on a stale card still
    reaches Interlock, whose rules make it a no-op or a clear refusal."""
    if incident.status is Status.RESOLVED:
        return [_button(REOPEN, "Reopen", incident.id)]
    buttons = []
    if incident.status is Status.TRIGGERED:
        buttons.append(_button(ACKNOWLEDGE, "Acknowledge", incident.id, style="primary"))
    buttons.append(_button(RESOLVE, "Resolve", incident.id))
    return buttons


def _button(action_id: str, label: str, value: str, *, style: str | None = None
            ) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": action_id,
                              "text": {"type": "plain_text", "text": label}, "value": value}
    if style:
        button["style"] = style
    return button


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def thread_line(event: Event, incident: Incident) -> str | None:
    """The one thread reply announcing ``event``, or None when it needs none (the card
    itself announces a new incident). Private if the incident is private now or was
    when the event happened."""
    if event.type is EventType.INCIDENT_CREATED:
        return None
    was = event.data.get("incident")
    if incident.is_private or (isinstance(was, Mapping) and was.get("visibility") == "private"):
        return PRIVATE_LINES.get(event.type)
    by = _by(event.origin)
    match event.type:
        case EventType.INCIDENT_ACKNOWLEDGED:
            line = f"Acknowledged{by}"
        case EventType.INCIDENT_RESOLVED:
            line = f"Resolved{by}"
        case EventType.INCIDENT_REOPENED:
            line = f"Reopened{by}"
        case EventType.INCIDENT_UPDATED:
            line = _changes(event.data.get("changes")) + by
        case EventType.INCIDENT_COMMENT_ADDED:
            line = _comment(event)
        case EventType.INCIDENT_ALERT_ATTACHED:
            line = _alerts(event)
        case _:
            return None
    return fit(line, LINE_MAX)


def _by(origin: Origin) -> str:
    """" by alice (via API)": who made the change and through what, when known."""
    who = origin.actor or origin.name
    match origin.kind:
        case OriginKind.API_KEY:
            return f" by {escape(who)} (via API)" if who else " (via API)"
        case OriginKind.CONNECTOR if origin.actor and origin.name:
            return f" by {escape(origin.actor)} (via {escape(origin.name)})"
        case OriginKind.CONNECTOR | OriginKind.SOURCE if who:
            return f" (via {escape(who)})"
        case _:
            return ""


def _changes(changes: object) -> str:
    if not isinstance(changes, Mapping) or not changes:
        return "Updated"
    return "; ".join(_change(str(name), change) for name, change in changes.items()
                     if isinstance(change, Mapping)) or "Updated"


def _change(name: str, change: Mapping[str, Any]) -> str:
    before, after = change.get("from"), change.get("to")
    match name:
        case "title":
            return f"Title changed to “{escape(str(after))}”"
        case "summary":
            return "Summary updated"
        case "labels":
            return "Labels changed"
        case "assignee":
            return f"Assigned to {escape(str(after))}" if after else "Unassigned"
        case "visibility":
            return f"Made {escape(str(after))}"
        case _ if before in (None, "") and after not in (None, ""):
            return f"{name.capitalize()} set to {escape(str(after))}"
        case _ if after in (None, ""):
            return f"{name.capitalize()} cleared"
        case _:
            return f"{name.capitalize()} changed from {escape(str(before))} to {escape(str(after))}"


def _comment(event: Event) -> str:
    comment = event.data.get("comment")
    body = comment.get("body") if isinstance(comment, Mapping) else None
    actor = comment.get("actor") if isinstance(comment, Mapping) else None
    who = actor or event.origin.actor or event.origin.name or "Someone"
    if not body:
        return f"Comment added by {escape(str(who))}"
    return f"{escape(str(who))}: {escape(str(body))}"


def _alerts(event: Event) -> str:
    count = event.data.get("alert_count")
    if not isinstance(count, int) or count < 1:
        alerts = event.data.get("alerts")
        count = len(alerts) if isinstance(alerts, list) and alerts else 1
    line = "1 alert attached" if count == 1 else f"{count} alerts attached"
    changes = event.data.get("changes")
    severity = changes.get("severity") if isinstance(changes, Mapping) else None
    if isinstance(severity, Mapping) and severity.get("to"):
        line += f"; severity raised to {escape(str(severity['to']))}"
    return line
