"""The README, pasted in order, prints what it says it prints.

Every ```` ```sh ```` block runs, in document order, in one bash session against a real
``interlock serve`` on a fresh SQLite database (and, for "Scaling out", two more on a
database of their own on the test PostgreSQL server), with a real Prometheus
Alertmanager for the connector section. Each block with an output fence after it must
print that output, ids, secrets and times masked. One test per block, so a failure
names the README line, and a block marked ``skip`` is reported with its reason. A
change that breaks the README breaks the build.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from interlock.store.engine import normalise_url
from tests.support.alertmanager import RunningAlertmanager
from tests.support.readme import Step, steps
from tests.support.readme_runner import Runner

REPOSITORY = Path(__file__).resolve().parents[2]
README = REPOSITORY / "README.md"
STEPS = steps(README)
POSTGRES_URL = os.environ.get("INTERLOCK_TEST_POSTGRES_URL")
#: While editing the README: run every block even after one fails, to see all at once.
KEEP_GOING = os.environ.get("INTERLOCK_README_KEEP_GOING") == "1"


def _readme_key() -> str | None:
    for step in STEPS:
        if step.kind == "output" and step.block.argument.startswith("server"):
            found = re.search(r"export INTERLOCK_KEY=(ilk_\S+)", step.block.text)
            if found:
                return found[1]
    return None


@pytest.fixture(scope="module")
def postgres_for_readme() -> Iterator[str | None]:
    """A database of its own on the test server for "Scaling out", dropped afterwards."""
    if not POSTGRES_URL:
        yield None
        return
    name = f"interlock_readme_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory,
           postgres_for_readme: str | None) -> Iterator[Runner]:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        reason = f"the README's commands need {', '.join(missing)}"
        if os.environ.get("INTERLOCK_REQUIRE_README_TOOLS") == "1":  # under `make test`
            pytest.fail(reason)
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("readme")
    variables = {"README_TEST_POSTGRES_URL": postgres_for_readme or ""}
    with RunningAlertmanager("http://127.0.0.1:9/unused") as alertmanager:
        session = Runner(workdir, REPOSITORY, _readme_key(), variables=variables)
        session.ports[9093] = alertmanager.port
        session.start()
        try:
            yield session
        finally:
            session.close()


@pytest.mark.parametrize("step", STEPS, ids=lambda step: f"{step.name}-{step.kind}")
def test_readme(step: Step, runner: Runner) -> None:
    if runner.broken:
        pytest.skip(f"an earlier block failed: {runner.broken}")
    if step.kind == "skip":
        pytest.skip(step.block.argument or "marked skip")
    if step.kind == "instead" and "README_TEST_POSTGRES_URL" in step.block.argument \
            and not runner.variables["README_TEST_POSTGRES_URL"]:
        runner.broken = "no PostgreSQL for Scaling out (INTERLOCK_TEST_POSTGRES_URL)"
        pytest.skip(runner.broken)
    try:
        runner.perform(step)
    except AssertionError:
        if not KEEP_GOING:
            runner.broken = runner.broken or f"{step.name} failed"
        raise
