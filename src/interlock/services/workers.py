"""Worker health: every worker process reports, every few seconds, how each of its
background tasks is doing; any API process answers ``/readyz`` from those reports.

A task that fails is restarted by its supervisor and reported as failing (with the
error) until it has run cleanly again, so a dead loop is never silent: it is in the log,
in the report, and ``/readyz`` says which worker and which task.

A worker that falls silent (killed, crashed, its machine gone) leaves what it leased
behind: payloads, deliveries, sync jobs, mail. The next report of any other worker
hands that work back, to be claimed at once, instead of when each lease lapses (two
minutes by default: in a storm, two minutes' delay for the alerts a dead worker had
claimed). A worker that was only frozen finds, when it wakes, that its leases are
gone: what it was applying is undone (``LeaseLost``), and deliveries it was sending go
out twice at most, as at-least-once allows.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from interlock.logs import get_logger
from interlock.ports.clock import Clock
from interlock.ports.store import Store, WorkerBeat

log = get_logger(__name__)


def worker_name(tag: str | None = None, pid: int | None = None) -> str:
    """A worker process's name, which it leases and reports under: the host, its pid
    (this process's by default) and ``tag`` (random if not given). serve tags the
    workers it starts, to know each one's name should it die."""
    return f"{socket.gethostname()}:{pid or os.getpid()}:{tag or uuid.uuid4().hex[:6]}"

#: How often a worker reports.
BEAT_SECONDS = 5.0
#: A worker silent this long is gone (crashed, or stopped without saying so).
SILENT_AFTER = timedelta(seconds=30)
OK = "ok"
#: A task another worker process is doing, which this one takes over if that one stops
#: (alert processing on SQLite: one writer at a time).
STANDBY = "standby"
#: States that are not a problem.
HEALTHY = frozenset({OK, STANDBY})


@dataclass
class TaskStates:
    """One worker process's tasks and their state: ``ok``, or what went wrong."""

    states: dict[str, str] = field(default_factory=dict)

    def ok(self, task: str) -> None:
        self.states[task] = OK

    def standby(self, task: str) -> None:
        self.states[task] = STANDBY

    def failed(self, task: str, error: str) -> None:
        self.states[task] = f"failing: {error}"[:500]

    def failing(self) -> dict[str, str]:
        return {task: state for task, state in self.states.items()
                if state not in HEALTHY}


@dataclass(frozen=True)
class Readiness:
    workers: list[WorkerBeat]
    #: "worker name / task" → what is wrong.
    problems: Mapping[str, str]

    @property
    def ready(self) -> bool:
        return not self.problems


class WorkerRegistry:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def beat(self, name: str, started_at: datetime, tasks: TaskStates) -> None:
        """Record this worker's report, and take over the work of any worker silent
        for SILENT_AFTER."""
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            tx.workers.beat(name, started_at, now, dict(tasks.states))
            silent = tx.workers.silent(now - SILENT_AFTER)
            taken = tx.workers.take_over(silent) if silent else {}
        if any(taken.values()):
            log.warning("took over the work of workers not heard from", worker=name,
                        silent=silent, seconds=SILENT_AFTER.seconds, **taken)

    def take_over(self, names: Sequence[str]) -> dict[str, int]:
        """Free what these workers lease now (serve, when a worker process it started
        has died)."""
        with self._store.transaction(write=True) as tx:
            return tx.workers.take_over(names)

    def leave(self, name: str) -> None:
        """This worker stops: its report goes, and what it still holds (deliveries it
        had no time to send) is handed back, for the next worker to take now."""
        taken = self.take_over([name])
        if any(taken.values()):
            log.info("handed back the work this worker did not finish", worker=name,
                     **taken)

    def doing(self, task: str) -> int:
        """How many workers heard from lately are doing ``task`` (not standing by)."""
        return sum(1 for beat in self._heard_from() if beat.tasks.get(task) == OK)

    def readiness(self) -> Readiness:
        """The workers heard from recently, and any of their tasks that are failing."""
        seen = self._heard_from()
        problems = {f"{beat.name} / {task}": str(state)
                    for beat in seen for task, state in beat.tasks.items()
                    if state not in HEALTHY}
        problems.update(self._turns_held_by_the_silent(seen))
        return Readiness(seen, problems)

    def _heard_from(self) -> list[WorkerBeat]:
        """The workers' reports of the last SILENT_AFTER."""
        with self._store.transaction() as tx:
            return tx.workers.seen_since(self._clock.now() - SILENT_AFTER)

    def _turns_held_by_the_silent(self, seen: list[WorkerBeat]) -> dict[str, str]:
        """Tasks every worker heard from stands by for, while the turn is held by a
        worker not heard from: a process frozen whole (SIGSTOP, a paused machine) keeps
        its lock, so nobody does the task. A holder that stopped let go of the turn, and
        one that died lost it: then one standing by takes over within a second."""
        names = {beat.name for beat in seen}
        problems: dict[str, str] = {}
        for task in {task for beat in seen for task, state in beat.tasks.items()
                     if state == STANDBY}:
            if any(beat.tasks.get(task) == OK for beat in seen):
                continue
            holder = self._store.turn_holder(task)
            if holder is None or holder in names:
                continue
            for beat in seen:
                if beat.tasks.get(task) == STANDBY:
                    problems[f"{beat.name} / {task}"] = (
                        f"standing by, but {holder}, which has the turn at {task}, has "
                        f"not reported for over {SILENT_AFTER.seconds} s (frozen?): no "
                        f"worker process does {task}; restart {holder}")
        return problems
