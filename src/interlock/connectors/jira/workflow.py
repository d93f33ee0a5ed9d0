"""Moving an issue through its project's workflow to the status the mapping names.

Jira has no "set status": a status changes only through one of the transitions the
issue's workflow offers from where it stands, and workflows (and their transition ids)
differ per project. A company-managed workflow often offers no direct way: reaching
Done takes To Do → In Progress → Done, and "Won't Do" or "Cancelled" sit in the same
*done* category as Done. Jira shows only the transitions out of the current status
(reading a whole workflow needs the Administer Jira permission), so the path is found
by walking it, one hop at a time:

* the mapping names either a status category (``new``, ``indeterminate``, ``done``)
  or a status by name (``"Resolved"``);
* at each status, every offered transition is looked at before going further (breadth
  first): one into the named status wins, then one into a status literally named as
  the category's usual status (Done, In Progress, To Do), then any into the category;
* when none leads into the target, the walk steps to an unvisited status in a category
  between here and the target (To Do → In Progress on the way to done) and looks
  again, at most :data:`MAX_HOPS` times; where the walk ends, another status of the
  category is taken when the preferred one was never offered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlock.connectors.jira.api import JiraApi
from interlock.domain.errors import ToolFailed

CATEGORIES = ("new", "indeterminate", "done")
#: The status most workflows name for each category, preferred among its statuses.
USUAL_STATUS = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
MAX_HOPS = 4


def category_of(status: Any) -> str | None:
    """The ``statusCategory.key`` of a status object, as Jira nests it."""
    if not isinstance(status, Mapping):
        return None
    category = status.get("statusCategory")
    key = category.get("key") if isinstance(category, Mapping) else None
    return str(key) if key else None


@dataclass(frozen=True)
class Target:
    """Where the mapping sends the issue: a category, or a status named in it."""

    category: str | None
    name: str | None

    @classmethod
    def of(cls, mapped: str) -> Target:
        if mapped in CATEGORIES:
            return cls(category=mapped, name=USUAL_STATUS[mapped])
        return cls(category=None, name=mapped)

    def rank(self, status: Any) -> int | None:
        """0 for the named status, 1 for another status of the category, None if the
        status is not a place to stop."""
        name = status.get("name") if isinstance(status, Mapping) else None
        if self.name and isinstance(name, str) and name.casefold() == self.name.casefold():
            return 0
        if self.category is not None and category_of(status) == self.category:
            return 1
        return None

    def describe(self) -> str:
        return f"category '{self.category}'" if self.category else f"status '{self.name}'"


async def move_to(api: JiraApi, key: str, mapped: str) -> str | None:
    """Transition issue ``key`` to the status the mapping names (``mapped``); the name
    of the status it ended in, or None when it already was there.

    Raises ToolFailed, not retryable, when the workflow offers no way there: retrying
    will not change the workflow; a person has to (or change the connector's mapping).
    """
    target = Target.of(mapped)
    issue = await api.issue(key, "status")
    status = (issue.get("fields") or {}).get("status")
    if target.rank(status) is not None:
        return None
    visited = {_status_id(status)}
    offered: list[dict[str, Any]] = []
    for _ in range(MAX_HOPS):
        offered = [item for item in await api.transitions(key)
                   if item.get("isAvailable", True)]
        best = _best(offered, target)
        if best is not None and target.rank(best.get("to")) == 0:
            return await _take(api, key, best)
        step = _step(offered, status, target, visited)
        if step is None:
            break
        await api.transition(key, str(step.get("id")))
        status = step.get("to")
        visited.add(_status_id(status))
    best = _best(offered, target)
    if best is not None:  # not the preferred status, but one of the category
        return await _take(api, key, best)
    where = status.get("name") if isinstance(status, Mapping) else None
    names = ", ".join(f"{item.get('name')} (to {_name(item.get('to'))})"
                      for item in offered) or "none"
    raise ToolFailed(
        f"Jira issue {key} cannot be moved to {target.describe()}: from "
        f"'{where or 'its status'}' its workflow offers only these transitions: {names}. "
        f"Add a transition in Jira or change the connector's status mapping.",
        retryable=False)


def _best(offered: list[dict[str, Any]], target: Target) -> dict[str, Any] | None:
    ranked = [(rank, index, item) for index, item in enumerate(offered)
              if (rank := target.rank(item.get("to"))) is not None]
    return min(ranked, key=lambda entry: (entry[0], entry[1]))[2] if ranked else None


def _step(offered: list[dict[str, Any]], status: Any, target: Target, visited: set[str]
          ) -> dict[str, Any] | None:
    """A hop towards the target: to an unvisited status whose category lies between
    the current one and the target's (or, for a named target, any unvisited one)."""
    here = _order(category_of(status))
    goal = _order(target.category) if target.category else None
    candidates = []
    for index, item in enumerate(offered):
        to = item.get("to")
        if _status_id(to) in visited:
            continue
        there = _order(category_of(to))
        if goal is None or here is None or there is None:
            candidates.append((1, index, item))
        elif min(here, goal) < there < max(here, goal) or (
                there == here and here != goal):
            candidates.append((0 if there != here else 1, index, item))
    return min(candidates, key=lambda entry: (entry[0], entry[1]))[2] if candidates \
        else None


async def _take(api: JiraApi, key: str, transition: Mapping[str, Any]) -> str:
    await api.transition(key, str(transition.get("id")))
    return _name(transition.get("to"))


def _order(category: str | None) -> int | None:
    return CATEGORIES.index(category) if category in CATEGORIES else None


def _status_id(status: Any) -> str:
    return str(status.get("id") or status.get("name")) if isinstance(status, Mapping) else ""


def _name(status: Any) -> str:
    return str(status.get("name") or "?") if isinstance(status, Mapping) else "?"
