"""What a person asked for in Slack: a button on a card, or the ``/incident`` command.

Both arrive form-encoded at the connector's hook URL, signed (see :mod:`.signature`).
A button press is an interactivity request whose ``payload`` field holds JSON of type
``block_actions``; a slash command is a flat form (``command``, ``text``,
``user_name``, ``trigger_id``, …). Slack waits three seconds for the answer, so this
module only reads: it does no I/O, and the card is redrawn later by a refresh job.

``delivery_id`` is Slack's ``trigger_id`` (unique per press or command), prefixed with
where it came from. The prefix is how :meth:`SlackDriver.answer` knows whether Slack
shows its answer to the person (a slash command: yes, as an ephemeral message) or
ignores it (a button: the refreshed card is the answer).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from interlock.connectors.slack.cards import ACKNOWLEDGE, REOPEN, RESOLVE
from interlock.domain import json_input
from interlock.domain.errors import BadRequest
from interlock.ports.connector import Command, HookNotice

BUTTON_PREFIX = "slack-action:"
COMMAND_PREFIX = "slack-command:"
DEFAULT_COMMAND = "/incident"

BUTTON_ACTIONS = {ACKNOWLEDGE: "acknowledge", RESOLVE: "resolve", REOPEN: "reopen"}
VERBS = {"ack": "acknowledge", "acknowledge": "acknowledge", "resolve": "resolve",
         "reopen": "reopen", "comment": "comment"}
REFERENCE = re.compile(r"(?i)^inc-(\d{1,18})$")
INCIDENT_ID = re.compile(r"^inc_[A-Za-z0-9]{1,64}$")
#: Longest text kept in a notice's description.
DESCRIPTION_MAX = 200


def usage(command: str = DEFAULT_COMMAND) -> str:
    return f"usage: {command} ack|resolve|reopen|comment INC-<n> [text]"


def is_slash_command(notice: HookNotice) -> bool:
    return (notice.delivery_id or "").startswith(COMMAND_PREFIX)


def read(body: bytes) -> HookNotice:
    """The notice for a verified request ``body``; BadRequest if it cannot be read."""
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as error:
        raise BadRequest("a Slack request body must be UTF-8 form data") from error
    fields = {name: values[0] for name, values in form.items() if values}
    if "payload" in fields:
        return _interaction(fields["payload"])
    if "command" in fields:
        return _slash_command(fields, body)
    if fields.get("ssl_check") == "1":
        return HookNotice(delivery_id=None, ignored="Slack's certificate check")
    return HookNotice(delivery_id=None,
                      ignored="neither a Slack interaction nor a slash command")


def _interaction(raw: str) -> HookNotice:
    payload = json_input.loads(raw, what="the Slack interaction payload")
    if not isinstance(payload, dict):
        raise BadRequest("the Slack interaction payload is not a JSON object")
    kind = payload.get("type")
    if kind != "block_actions":
        return HookNotice(delivery_id=None,
                          ignored=f"Slack interactions of type {kind!r} are not used")
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else None
    if not isinstance(action, dict):
        return HookNotice(delivery_id=None, ignored="a block_actions payload with no action")
    user = payload.get("user")
    if not isinstance(user, dict):
        user = {}
    actor = _text(user, "username") or _text(user, "name") or _text(user, "id")
    delivery = _text(payload, "trigger_id") or _digest(
        f"{_text(action, 'action_ts')}:{_text(user, 'id')}")
    command = BUTTON_ACTIONS.get(_text(action, "action_id") or "")
    incident = _text(action, "value")
    if command is None or incident is None:
        return HookNotice(delivery_id=BUTTON_PREFIX + delivery,
                          ignored=f"Slack action {_text(action, 'action_id')!r} is not "
                                  "one of Interlock's buttons")
    return HookNotice(
        delivery_id=BUTTON_PREFIX + delivery,
        command=Command(action=command, incident=incident, actor=actor),
        description=f"{actor or 'someone'} pressed {command} on {incident} in Slack",
    )


def _slash_command(fields: Mapping[str, str], body: bytes) -> HookNotice:
    name = fields.get("command") or DEFAULT_COMMAND
    text = fields.get("text", "")
    actor = fields.get("user_name") or fields.get("user_id") or None
    delivery = COMMAND_PREFIX + (fields.get("trigger_id") or _digest(body.decode()))
    parsed = parse_command_text(text)
    if parsed is None:
        return HookNotice(delivery_id=delivery, ignored=usage(name))
    action, incident, comment = parsed
    return HookNotice(
        delivery_id=delivery,
        command=Command(action=action, incident=incident, actor=actor, body=comment),
        description=f"{actor or 'someone'} ran {name} {action} {incident} in Slack",
    )


def parse_command_text(text: str) -> tuple[str, str, str | None] | None:
    """``ack INC-4`` → (action, incident, comment body or None); None if unreadable.
    Only ``comment`` takes text after the incident: for the others extra words are
    more likely a mistake than something to throw away silently."""
    parts = text.strip().split(maxsplit=2)
    if len(parts) < 2:
        return None
    action = VERBS.get(parts[0].lower())
    incident = _incident(parts[1])
    rest = parts[2].strip() if len(parts) > 2 else ""
    if action is None or incident is None:
        return None
    if action == "comment":
        return (action, incident, rest) if rest else None
    return None if rest else (action, incident, None)


def _incident(word: str) -> str | None:
    reference = REFERENCE.match(word)
    if reference:
        return f"INC-{int(reference.group(1))}"
    return word if INCIDENT_ID.match(word) else None


def _text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value[:DESCRIPTION_MAX] if isinstance(value, str) and value else None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
