"""The real ``interlock serve`` as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 30.0
KEY_LINE = re.compile(r"export INTERLOCK_KEY=(ilk_[A-Za-z0-9_-]+)")


def interlock_command() -> list[str]:
    """The console script next to this interpreter, or the module when not installed."""
    script = Path(sys.executable).parent / "interlock"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "interlock.cli.main"]


def environment(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any INTERLOCK_* setting that could leak in, plus
    ``extra``."""
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith("INTERLOCK_")}
    environ["INTERLOCK_CONFIG"] = str(workdir / "no-such-interlock.toml")
    environ["PYTHONUNBUFFERED"] = "1"
    environ.update(extra or {})
    return environ


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"interlock serve exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.base_url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not ready after {START_TIMEOUT} s:\n{self.output()}")

    def stop(self) -> None:
        """SIGTERM, as a service manager would; uvicorn finishes its requests, shuts the
        app down and then re-raises the signal, so -SIGTERM is as clean as 0."""
        self.process.send_signal(signal.SIGTERM)
        returncode = self.process.wait(timeout=STOP_TIMEOUT)
        output = self.output()
        assert returncode in (0, -signal.SIGTERM), output
        assert "Application shutdown complete" in output, output
        assert "Traceback" not in output, output


@contextmanager
def serving(database_url: str, workdir: Path, name: str,
            extra: dict[str, str] | None = None, args: tuple[str, ...] = ()
            ) -> Iterator[Server]:
    """``interlock serve`` with ``args`` and the settings ``extra``, ready; killed at
    the end if still running."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*interlock_command(), "serve", "--db", database_url, "--host", "127.0.0.1",
             "--port", str(port), *args],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=environment(workdir, extra),
        )
        try:
            server = Server(process, f"http://127.0.0.1:{port}", log_path)
            server.wait_ready()
            yield server
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
