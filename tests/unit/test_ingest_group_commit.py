"""The ingest writer's group commit: payloads arriving a moment apart share one
commit, and every request hears how its commit went."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from interlock.api import ingest as ingest_module
from interlock.api.ingest import PROBE_EVERY, GroupCommit
from interlock.domain.alerts import ReceivedPayload


class Recording:
    """Stands in for the intake: records each commit's payloads."""

    def __init__(self, fail: bool = False, at_once: bool = False) -> None:
        self.commits: list[list[str]] = []
        self.fail = fail
        self.at_once = at_once
        #: Commits made by store_now (on the event loop's thread).
        self.made_at_once = 0

    def store_now(self, payloads: Sequence[ReceivedPayload]) -> bool:
        if not self.at_once:
            return False
        self.store(payloads)
        self.made_at_once += 1
        return True

    def store(self, payloads: Sequence[ReceivedPayload], *, priority_after: float = 0.0
              ) -> None:
        self.commits.append([payload.id for payload in payloads])
        if self.fail:
            raise OSError("disk full")


def payload(number: int) -> ReceivedPayload:
    return ReceivedPayload(id=f"pl_{number}", source_id="src_1",
                           received_at=datetime.now(UTC), content_type="application/json",
                           body=b"{}")


async def arriving(writer: GroupCommit, spacing: float, count: int) -> None:
    async def one(number: int) -> None:
        await asyncio.sleep(number * spacing)
        await writer.write(payload(number))

    await asyncio.wait_for(asyncio.gather(*(one(number) for number in range(count))), 10)


def test_payloads_arriving_within_the_pause_share_one_commit() -> None:
    intake = Recording()
    # 4 payloads 20 ms apart, within a pause of 1 s: one commit. Without the pause the
    # first would be committed alone, the moment it arrived.
    asyncio.run(arriving(GroupCommit(intake, gather=1.0), spacing=0.02, count=4))  # type: ignore[arg-type]
    assert intake.commits == [["pl_0", "pl_1", "pl_2", "pl_3"]]


def test_without_a_pause_each_lone_payload_is_committed_at_once() -> None:
    intake = Recording()
    asyncio.run(arriving(GroupCommit(intake, gather=0.0), spacing=0.2, count=3))  # type: ignore[arg-type]
    assert intake.commits == [["pl_0"], ["pl_1"], ["pl_2"]]


def test_a_commit_that_waits_for_nothing_is_made_on_the_event_loop() -> None:
    intake = Recording(at_once=True)
    asyncio.run(arriving(GroupCommit(intake, gather=0.0), spacing=0.05, count=3))  # type: ignore[arg-type]
    assert intake.commits == [["pl_0"], ["pl_1"], ["pl_2"]]
    assert intake.made_at_once == 3


@pytest.mark.parametrize("at_once", [False, True], ids=["in a thread", "on the loop"])
def test_every_request_of_a_failed_commit_hears_of_it(at_once: bool) -> None:
    intake = Recording(fail=True, at_once=at_once)
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(arriving(GroupCommit(intake, gather=0.5), spacing=0.01, count=3))  # type: ignore[arg-type]
    assert intake.commits == [["pl_0", "pl_1", "pl_2"]]


def test_once_batches_are_large_a_lone_payload_does_not_wait() -> None:
    # Senders that wait for each answer before sending again fill batches while the
    # previous one commits; a pause then only holds them up.
    intake = Recording()

    async def scenario() -> float:
        writer = GroupCommit(intake, gather=1.0)  # type: ignore[arg-type]
        many = [writer.write(payload(number)) for number in range(40)]
        await asyncio.wait_for(asyncio.gather(*many), 10)
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(writer.write(payload(40)), 10)
        return asyncio.get_running_loop().time() - started

    lone = asyncio.run(scenario())
    assert [len(commit) for commit in intake.commits] == [40, 1]
    assert lone < 0.5, f"a lone payload waited {lone:.2f} s for company"


def test_a_sender_posting_one_payload_at_a_time_stops_waiting_for_company() -> None:
    # Nothing arrives while its lone payload waits: after a pause that gathered nothing,
    # payloads are committed at once, but for a probe every PROBE_EVERY batches.
    intake = Recording()

    async def one_at_a_time() -> list[float]:
        writer = GroupCommit(intake, gather=0.3)  # type: ignore[arg-type]
        waits = []
        for number in range(PROBE_EVERY + 4):
            started = asyncio.get_running_loop().time()
            await asyncio.wait_for(writer.write(payload(number)), 10)
            waits.append(asyncio.get_running_loop().time() - started)
        return waits

    waits = asyncio.run(one_at_a_time())
    assert len(intake.commits) == PROBE_EVERY + 4
    paused = [number for number, wait in enumerate(waits) if wait >= 0.25]
    assert paused == [0, PROBE_EVERY - 1], f"waits: {[round(wait, 3) for wait in waits]}"


def test_payloads_arriving_steadily_keep_sharing_commits() -> None:
    # A storm's senders do not wait for each other: 40 payloads 5 ms apart, a pause of
    # 50 ms, so about ten to a commit, all the way through.
    intake = Recording()
    asyncio.run(arriving(GroupCommit(intake, gather=0.05), spacing=0.005, count=40))  # type: ignore[arg-type]
    assert [item for commit in intake.commits for item in commit] == [f"pl_{n}" for n in range(40)]
    assert len(intake.commits) <= 6, [len(commit) for commit in intake.commits]


def test_a_batch_that_fails_before_its_commit_is_told_and_the_writer_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Whatever goes wrong while a batch is gathered, its senders hear of it (the server
    # answers 500) rather than wait for ever, and the next payloads are committed.
    intake = Recording()
    failures = iter([RuntimeError("a bug while pacing")])

    def pause_once_broken(self: object, at_once: int) -> bool:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return False

    monkeypatch.setattr(ingest_module._Pacing, "pause", pause_once_broken)

    async def scenario() -> list[BaseException | None]:
        writer = GroupCommit(intake, gather=0.0)  # type: ignore[arg-type]
        first = await asyncio.wait_for(
            asyncio.gather(writer.write(payload(0)), return_exceptions=True), 10)
        await asyncio.wait_for(writer.write(payload(1)), 10)
        return list(first)

    outcomes = asyncio.run(scenario())
    assert isinstance(outcomes[0], RuntimeError)
    assert intake.commits == [["pl_1"]]
