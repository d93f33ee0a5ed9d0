"""The conflict rule, as pure functions: what a pull may change, and what a push leaves
remembered, given who owns which field and what Interlock last saw in the tool.

A link's ``state`` carries two things for this (the sync service writes both; drivers
only read them, and keep their own keys beside them, see :data:`SERVICE_KEYS`):

* ``seen``: ``{"status": <incident status>, "assignee": <name or None>}``, what
  Interlock last wrote to or read from the tool;
* ``comments``: ids of the tool's comments Interlock wrote or already imported.

A pull applies the tool's value of a field only if the mapping lets the tool own it
and the value differs from ``seen`` (a tool still showing what Interlock wrote is not a
change), so the change Interlock learns of last wins and neither side ever reverts the
other to an older value (see :mod:`interlock.domain.connectors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from interlock.domain.connectors import FieldMapping
from interlock.domain.incidents import Incident, Status


class _Unset:
    """The tool said nothing about a field (distinct from None, "nobody")."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()

#: The link state keys the sync service keeps; a driver's LinkWrite leaves them out
#: (the service merges a driver's state over the link's key by key).
SERVICE_KEYS = frozenset({"seen", "comments"})


def is_unset(value: object) -> bool:
    """True for UNSET and for ``...``, which PullResult used for it first."""
    return value is UNSET or value is Ellipsis


@dataclass(frozen=True)
class PulledState:
    """What the tool says now, in Interlock's words."""

    status: Status | None = None
    #: A name, None for "nobody", or UNSET when the tool said nothing.
    assignee: Any = UNSET
    #: Ids of the tool's comments not written by Interlock, oldest first.
    comment_ids: Sequence[str] = ()


@dataclass(frozen=True)
class PullDecision:
    """What to apply to the incident, and the link state to keep afterwards."""

    status: Status | None = None
    assignee: Any = UNSET
    #: Ids of the comments to import, in the order the tool gave them.
    new_comments: tuple[str, ...] = ()
    seen: Mapping[str, Any] = field(default_factory=dict)
    known_comments: tuple[str, ...] = ()

    @property
    def changes_anything(self) -> bool:
        return (self.status is not None or not is_unset(self.assignee)
                or bool(self.new_comments))


def decide_pull(mapping: FieldMapping, link_state: Mapping[str, Any],
                pulled: PulledState) -> PullDecision:
    """What a pull may change. Only fields the tool owns (``tool`` or ``both``) are
    looked at; of those, only values that differ from what Interlock last saw."""
    seen = dict(link_state.get("seen") or {})
    known = [str(item) for item in link_state.get("comments") or []]
    status: Status | None = None
    assignee: Any = UNSET
    if (pulled.status is not None and mapping.pulls("status")
            and pulled.status.value != seen.get("status")):
        status = pulled.status
        seen["status"] = status.value
    if (not is_unset(pulled.assignee) and mapping.pulls("assignee")
            and pulled.assignee != seen.get("assignee")):
        assignee = pulled.assignee
        seen["assignee"] = assignee
    new: list[str] = []
    if mapping.pulls("comments"):
        already = set(known)
        for comment_id in pulled.comment_ids:
            if comment_id not in already:
                already.add(comment_id)
                new.append(comment_id)
    return PullDecision(status=status, assignee=assignee, new_comments=tuple(new),
                        seen=seen, known_comments=tuple(sorted({*known, *new})))


def state_after_push(mapping: FieldMapping, link_state: Mapping[str, Any],
                     incident: Incident, written_comments: Iterable[str] = (), *,
                     shown: Status | None = None, succeeded: bool = True
                     ) -> dict[str, Any]:
    """The link state after a push: a push sends the incident's current status
    wherever the mapping lets Interlock own it, so once it succeeded that status is
    what the tool now shows, and a later pull finding it there is no change. Comments
    the push wrote are remembered (even when the push failed afterwards), so a pull
    does not import them back as the tool's.

    ``shown`` is the status the driver knows the tool shows when that is not the
    incident's: a new issue that starts where its workflow begins, or a push that left
    the status alone on purpose (a person moved it in the tool since, or the workflow
    refused). It is recorded as seen even after a push that failed in part.

    The assignee is not touched: no built-in driver writes it, and recording a value
    never written would make the tool's real one look like a change."""
    state = dict(link_state)
    if shown is not None or (succeeded and mapping.pushes("status")):
        seen = dict(state.get("seen") or {})
        seen["status"] = shown.value if shown is not None else incident.status.value
        state["seen"] = seen
    elif succeeded:
        state["seen"] = dict(state.get("seen") or {})
    written = [str(item) for item in written_comments]
    if written or "comments" in state:
        known = [str(item) for item in state.get("comments") or []]
        state["comments"] = [*known, *(item for item in written if item not in known)]
    return state
