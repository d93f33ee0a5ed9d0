"""Moving an issue through its project's workflow to a status category.

Jira has no "set status": a status changes only through one of the transitions the
issue's workflow offers from where it stands, and workflows (and their transition ids)
differ per project. What every workflow shares are the three status *categories*
(``new``, ``indeterminate``, ``done``), so Interlock's mapping names a category and this
module picks whichever offered transition leads into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.connectors.jira.api import JiraApi
from interlock.domain.errors import ToolFailed


def category_of(status: Any) -> str | None:
    """The ``statusCategory.key`` of a status object, as Jira nests it."""
    if not isinstance(status, Mapping):
        return None
    category = status.get("statusCategory")
    key = category.get("key") if isinstance(category, Mapping) else None
    return str(key) if key else None


async def move_to_category(api: JiraApi, key: str, category: str) -> str | None:
    """Transition issue ``key`` into a status of ``category``; the name of that status,
    or None when the issue already is in one (a retried push finds it moved).

    Raises ToolFailed, not retryable, when the workflow offers no way there: retrying
    will not change the workflow, a person has to (or change the connector's mapping).
    """
    offered = await api.transitions(key)
    for transition in offered:
        target = transition.get("to")
        if category_of(target) == category and transition.get("isAvailable", True):
            await api.transition(key, str(transition.get("id")))
            return str(target.get("name") or category) if isinstance(target, Mapping) \
                else category
    issue = await api.issue(key, "status")
    status = (issue.get("fields") or {}).get("status")
    if category_of(status) == category:
        return None
    where = status.get("name") if isinstance(status, Mapping) else None
    names = ", ".join(f"{item.get('name')} (to {category_of(item.get('to'))})"
                      for item in offered) or "none"
    raise ToolFailed(
        f"Jira issue {key} cannot be moved to a status in category '{category}': from "
        f"'{where or 'its status'}' its workflow offers only these transitions: {names}. "
        f"Add a transition in Jira or change the connector's status mapping.",
        retryable=False)
