"""Reading the object's current state with the ``fetch`` request, in Interlock's words.

A pull answers what the object looks like now (status, assignee, comments, each where
the fetch's JMESPath says); it does not decide what is new. The sync service compares
the answer with the link's ``seen`` state and known comment ids and writes both back,
so a pull returns no LinkWrite, and webhooks arriving late, twice or out of order all
end in the same place.
"""

from __future__ import annotations

from typing import Any

from interlock.connectors.http.calls import Caller
from interlock.connectors.http.config import CommentsMapping, FetchState
from interlock.connectors.http.rendering import scalar_text, search, truthy
from interlock.domain.connectors import FieldMapping, Link
from interlock.domain.errors import ToolFailed
from interlock.ports.connector import PullResult, RemoteComment

#: Comments read at most from one answer, so a runaway object cannot stall a worker.
COMMENTS_MAX = 1000


async def pull_object(caller: Caller, fetch: FetchState, link: Link, mapping: FieldMapping
                      ) -> PullResult:
    linked = {"external_id": link.external_id, "url": link.url}
    values = caller.values(link=linked, with_event=False)
    answer = (await caller.call("fetch", fetch.request, values)).json()
    key = link.external_id
    said = []
    status = None
    if fetch.status is not None and mapping.pulls("status"):
        word = _text(search(fetch.status, answer, "fetch.status"), "fetch.status")
        status = mapping.status_from_tool(word)
        said.append(f"{key} is {word}" if status is not None or word is None
                    else f"{key} is {word!r}, which mapping.status_in does not name")
    assignee: Any = ...  # Ellipsis: not pulled
    if fetch.assignee is not None and mapping.pulls("assignee"):
        assignee = _text(search(fetch.assignee, answer, "fetch.assignee"), "fetch.assignee")
        said.append(f"assigned to {assignee}" if assignee else "unassigned")
    comments: list[RemoteComment] = []
    if fetch.comments is not None and mapping.pulls("comments"):
        source = answer
        if fetch.comments.request is not None:
            source = (await caller.call("fetch.comments", fetch.comments.request,
                                        values)).json()
        comments = _comments(fetch.comments, source)
        said.append(f"{len(comments)} comment{'s' if len(comments) != 1 else ''} from people")
    return PullResult(summary=", ".join(said) or f"read {key}", status=status,
                      assignee=assignee, comments=comments)


def _comments(mapping: CommentsMapping, source: Any) -> list[RemoteComment]:
    items = search(mapping.items, source, "fetch.comments.items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise ToolFailed(f"fetch.comments.items ({mapping.items!r}) is not a list in the "
                         "answer", retryable=False)
    found = []
    for item in items[:COMMENTS_MAX]:
        if mapping.by_interlock is not None and truthy(
                search(mapping.by_interlock, item, "fetch.comments.by_interlock")):
            continue
        comment_id = _text(search(mapping.id, item, "fetch.comments.id"), "fetch.comments.id")
        if not comment_id:
            continue
        author = _text(search(mapping.author, item, "fetch.comments.author"),
                       "fetch.comments.author")
        body = _text(search(mapping.body, item, "fetch.comments.body"), "fetch.comments.body")
        found.append(RemoteComment(id=comment_id, author=author or "someone in the tool",
                                   body=body or ""))
    return found


def _text(value: Any, where: str) -> str | None:
    try:
        return scalar_text(value)
    except ValueError as error:
        raise ToolFailed(f"{where}: {error}", retryable=False) from error
