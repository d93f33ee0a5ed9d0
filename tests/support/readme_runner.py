"""Runs the README's steps (see :mod:`tests.support.readme`) the way a reader pastes them:
one bash session, in a directory of its own, against a real ``interlock serve``.

The directory holds links to the repository's ``docs/`` and ``scripts/`` and to the
virtualenv running the tests as ``.venv``, so ``. .venv/bin/activate`` and
``docs/examples/…`` work as written; the files a step writes (``source.json``, the
database, ``a.log``) land there, never in the working tree. The ports the README names
(8080, 9000, 9093, 8081, 8082) are swapped for free ones in each command and swapped
back in what it prints.
"""

from __future__ import annotations

import difflib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.readme import Step, contains_in_order, mask
from tests.support.server import KEY_LINE, environment, free_port, interlock_command

BLOCK_TIMEOUT = 60.0
EVENTUALLY_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
MARK = "__readme_test_done__"
README_PORTS = (8080, 9000, 9093, 8081, 8082)


class StepFailed(AssertionError):
    pass


@dataclass
class Runner:
    workdir: Path
    repository: Path
    readme_key: str | None
    ports: dict[int, int] = field(default_factory=dict)
    substitutions: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    server: subprocess.Popen[bytes] | None = None
    broken: str | None = None  # why later steps cannot run
    _bash: subprocess.Popen[str] | None = None
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _count: int = 0

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        for readme_port in README_PORTS:
            self.ports.setdefault(readme_port, free_port())
        (self.workdir / ".venv").symlink_to(Path(sys.prefix))
        for name in ("docs", "scripts"):
            (self.workdir / name).symlink_to(self.repository / name)
        (self.workdir / ".readme-test").mkdir()
        env = {name: value for name, value in environment(self.workdir).items()
               if name.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}}
        env.pop("INTERLOCK_CONFIG", None)
        env.update(self.variables)
        self._bash = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, cwd=self.workdir, env=env, text=True, bufsize=1,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._bash is not None and self._bash.stdout is not None
        for line in self._bash.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def close(self) -> None:
        self.stop_server()
        if self._bash is not None:
            for signum in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self._bash.pid, signum)  # the session and its background jobs
                except ProcessLookupError:
                    break
                try:
                    self._bash.wait(timeout=STOP_TIMEOUT)
                    break
                except subprocess.TimeoutExpired:
                    continue

    # -- the server the README's `make run` starts ------------------------------------

    def start_server(self, extra: dict[str, str]) -> None:
        self.stop_server()
        log = self.workdir / "server.log"
        env = environment(self.workdir, {"INTERLOCK_HOST": "127.0.0.1",
                                         "INTERLOCK_PORT": str(self.ports[8080]), **extra})
        env.pop("INTERLOCK_CONFIG", None)
        with log.open("ab") as output:
            self.server = subprocess.Popen(
                [*interlock_command(), "serve"], stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.workdir, env=env,
            )
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise StepFailed(f"interlock serve exited:\n{self.server_output()}")
            try:
                url = f"http://127.0.0.1:{self.ports[8080]}/readyz"
                if httpx.get(url, timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise StepFailed(f"interlock serve not ready:\n{self.server_output()}")
        printed = KEY_LINE.search(self.server_output())
        if printed and self.readme_key:
            self.substitutions[self.readme_key] = printed[1]

    def server_output(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=STOP_TIMEOUT)
        self.server = None

    # -- translating between the README and this run --------------------------------

    def to_run(self, text: str) -> str:
        for readme, actual in self.substitutions.items():
            text = text.replace(readme, actual)
        for readme_port, port in self.ports.items():
            text = re.sub(rf"(?<=127\.0\.0\.1:){readme_port}\b", str(port), text)
            text = re.sub(rf"(?<=--port ){readme_port}\b", str(port), text)
        return text

    def to_readme(self, text: str) -> str:
        for readme_port, port in self.ports.items():
            text = re.sub(rf"(?<=127\.0\.0\.1:){port}\b", str(readme_port), text)
        return text

    # -- steps -----------------------------------------------------------------------

    def perform(self, step: Step) -> None:
        if step.kind == "server":
            self.start_server(step.extra)
        elif step.kind == "output":
            self._await_output(step)
        elif step.kind == "background":
            self._background(step)
        else:
            script = step.block.argument if step.kind == "instead" else step.block.text
            self._run_and_compare(step, script)

    def _run_and_compare(self, step: Step, script: str) -> None:
        deadline = time.monotonic() + (EVENTUALLY_TIMEOUT if step.eventually else 0)
        while True:
            status, output = self.run(script)
            actual = mask(self.to_readme(output))
            if step.expected is None or step.kind == "instead":
                if status != 0:
                    raise StepFailed(f"{step.name} exited with {status}:\n{output}")
                return
            expected = mask(step.expected)
            if actual == expected:
                return
            if time.monotonic() >= deadline:
                raise StepFailed(explain(step.name, expected, actual))
            time.sleep(0.25)

    def _background(self, step: Step) -> None:
        name = step.block.argument.split()[0]
        path = self.workdir / ".readme-test" / f"{name}.out"
        script = self._script_file(step.block.text)
        self.run(f"( source {script} < /dev/null > {path} 2>&1 & )")
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while not (path.exists() and path.read_text().strip()):
            if time.monotonic() >= deadline:
                raise StepFailed(f"{step.name}: printed nothing in {BLOCK_TIMEOUT} s")
            time.sleep(0.1)

    def _await_output(self, step: Step) -> None:
        name = step.block.argument.split()[0]
        expected = mask(step.block.text)
        deadline = time.monotonic() + EVENTUALLY_TIMEOUT
        while True:
            if name == "server":
                output = self.server_output()
            else:
                path = self.workdir / ".readme-test" / f"{name}.out"
                output = path.read_text(errors="replace") if path.exists() else ""
            actual = mask(self.to_readme(output))
            if contains_in_order(actual, expected):
                return
            if time.monotonic() >= deadline:
                raise StepFailed(explain(f"{step.name} (output of {name})", expected, actual))
            time.sleep(0.25)

    def _script_file(self, text: str) -> Path:
        self._count += 1
        path = self.workdir / ".readme-test" / f"block-{self._count}.sh"
        path.write_text(self.to_run(text))
        return path

    def run(self, text: str) -> tuple[int, str]:
        """Run ``text`` in the session (stdin from /dev/null); its status and output."""
        assert self._bash is not None and self._bash.stdin is not None
        script = self._script_file(text)
        self._bash.stdin.write(f"source {script} < /dev/null; printf '\\n{MARK} %s\\n' $?\n")
        self._bash.stdin.flush()
        collected: list[str] = []
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.broken = f"a block ran for more than {BLOCK_TIMEOUT} s"
                raise StepFailed(f"no end after {BLOCK_TIMEOUT} s:\n{''.join(collected)}"
                                 ) from None
            if line is None:
                self.broken = "the shell exited"
                raise StepFailed(f"the shell exited:\n{''.join(collected)}")
            if line.startswith(MARK):
                output = "".join(collected)
                return int(line.split()[1]), output[:-1] if output.endswith("\n") else output
            collected.append(line)


def explain(name: str, expected: str, actual: str) -> str:
    diff = "\n".join(difflib.unified_diff(expected.split("\n"), actual.split("\n"),
                                          "README", "this run", lineterm=""))
    return f"{name}: the output differs from the README (masked):\n{diff}\n\n" \
           f"--- this run, masked ---\n{actual}"
