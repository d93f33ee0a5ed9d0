"""Reading an issue's current state and saying it in Interlock's words.

A pull answers what the issue looks like *now* (status category, assignee, comments);
it does not decide what is new. The sync service compares the answer with the link's
``seen`` state and its known comment ids, and it writes both back itself, so a pull
returns no link state: one merged over the service's would put back the old comment ids
and import the same comments again. (A LinkWrite with an empty state only moves the link
to the issue's new key after the issue moved project.) A webhook that arrives late or twice, or a
reconcile after missed ones, all end in the same place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.connectors.jira import adf
from interlock.connectors.jira.api import JiraApi
from interlock.connectors.jira.workflow import category_of
from interlock.domain.connectors import FieldMapping, Link
from interlock.ports.connector import LinkWrite, PullResult, RemoteComment

PULLED_FIELDS = "status,assignee,comment,summary"
#: Pages of comments read at most, so a runaway issue cannot stall a worker.
MAX_COMMENT_PAGES = 50


async def pull_issue(api: JiraApi, link: Link, mapping: FieldMapping, own_account: str | None
                     ) -> PullResult:
    """``own_account`` is Interlock's Jira account id: its comments are echoes."""
    key = link.external_id
    issue = await api.issue(key, PULLED_FIELDS)
    fields: Mapping[str, Any] = issue.get("fields") or {}
    status_name = (fields.get("status") or {}).get("name") or "an unknown status"
    status = None
    if mapping.pulls("status"):
        status = mapping.status_from_tool(category_of(fields.get("status")))
    assignee: Any = ...  # Ellipsis: the mapping does not pull it
    if mapping.pulls("assignee"):
        person = fields.get("assignee")
        assignee = (person.get("displayName") or person.get("accountId")
                    if isinstance(person, Mapping) else None)
    comments: list[RemoteComment] = []
    if mapping.pulls("comments"):
        every = await _all_comments(api, key, fields.get("comment"))
        comments = [_remote(item) for item in every
                    if own_account is None or _author_id(item) != own_account]
    said = [f"Jira issue {key} is {status_name}"]
    if assignee is not ...:
        said.append(f"assigned to {assignee}" if assignee else "unassigned")
    if mapping.pulls("comments"):
        said.append(f"{len(comments)} comment{'s' if len(comments) != 1 else ''} from people")
    moved = _moved(api, link, issue)
    if moved is not None:
        said.append(f"now {moved.external_id} (moved from {key})")
    return PullResult(summary=", ".join(said), status=status, assignee=assignee,
                      comments=comments, link=moved)


def _moved(api: JiraApi, link: Link, issue: Mapping[str, Any]) -> LinkWrite | None:
    """The link under the issue's new key when it moved to another project (Jira still
    answers for the old key). The state is left to the service: an empty one merges
    over nothing."""
    key = issue.get("key")
    if not isinstance(key, str) or not key or key == link.external_id:
        return None
    return LinkWrite(kind=link.kind, external_id=key, url=api.browse_url(key), state={})


async def _all_comments(api: JiraApi, key: str, embedded: Any) -> list[Mapping[str, Any]]:
    """Every comment on the issue. The issue answer embeds the first page; later pages
    come from the comment resource."""
    page = embedded if isinstance(embedded, Mapping) else {}
    found = [item for item in page.get("comments") or [] if isinstance(item, Mapping)]
    total = int(page.get("total") or len(found))
    pages = 0
    while len(found) < total and pages < MAX_COMMENT_PAGES:
        page = await api.comments(key, len(found))
        more = [item for item in page.get("comments") or [] if isinstance(item, Mapping)]
        if not more:
            break
        found.extend(more)
        total = int(page.get("total") or total)
        pages += 1
    return found


def _author_id(comment: Mapping[str, Any]) -> str | None:
    author = comment.get("author")
    value = author.get("accountId") if isinstance(author, Mapping) else None
    return str(value) if value else None


def _remote(comment: Mapping[str, Any]) -> RemoteComment:
    author = comment.get("author")
    name = (author.get("displayName") or author.get("accountId")
            if isinstance(author, Mapping) else None)
    return RemoteComment(id=str(comment.get("id")), author=str(name or "someone in Jira"),
                         body=adf.to_text(comment.get("body")))
