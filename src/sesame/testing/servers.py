"""Sesame as a subprocess on a free port, the way a user runs it; for tests and benchmarks.

with SesameProcess("serve", data_dir=tmp, database=url) as sesame:
    boto3.client("sesv2", endpoint_url=sesame.endpoint, ...)
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_LISTENING = re.compile(r"^listening (\w+) (\S+):(\d+)$")


def free_port() -> int:
    """A TCP port free on loopback now (for servers that cannot be told to bind port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SesameProcess:
    def __init__(
        self,
        mode: str = "dev",
        *,
        data_dir: Path,
        database: str | None = None,
        config_file: Path | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
        args: Sequence[str] = (),
    ) -> None:
        """``args``: more command-line flags (``["--node-id", "a"]``), after the listeners'."""
        self.args = [
            sys.executable,
            "-m",
            "sesame",
            mode,
            "--http",
            "127.0.0.1:0",
            "--smtp",
            "127.0.0.1:0",
            "--smtps",
            "127.0.0.1:0",
            "--mx",
            "127.0.0.1:0",
            "--data-dir",
            str(data_dir),
            *args,
        ]
        if database:
            self.args += ["--database", database]
        if config_file:
            self.args += ["--config", str(config_file)]
        self.data_dir = data_dir
        self.database = database
        self.env = {**os.environ, **(env or {})}
        self.startup_timeout = startup_timeout
        self.listeners: dict[str, tuple[str, int]] = {}
        self.stderr_lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._pump: threading.Thread = threading.Thread()

    @property
    def endpoint(self) -> str:
        host, port = self.listeners["http"]
        return f"http://{host}:{port}"

    def start(self) -> SesameProcess:
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        ready = threading.Event()

        def pump() -> None:  # keep reading so the child never blocks on a full pipe
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                line = line.rstrip("\n")
                self.stderr_lines.append(line)
                if m := _LISTENING.match(line):
                    self.listeners[m[1]] = (m[2], int(m[3]))
                elif line == "ready":
                    ready.set()
            ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        deadline = time.monotonic() + self.startup_timeout
        while not ready.wait(0.05):
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("sesame did not become ready:\n" + "\n".join(self.stderr_lines))
        if "ready" not in self.stderr_lines:  # the pump saw the end of stderr: the process ended
            self.stop()
            raise RuntimeError("sesame exited before listening:\n" + "\n".join(self.stderr_lines))
        return self

    def pids(self) -> list[int]:
        """The server's process and, with ``--workers``, its workers (/proc: Linux only)."""
        if self.proc is None:
            return []
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo += [int(child) for child in task.read_text().split()]
        return found

    def cpu_seconds(self) -> float:
        """User and system CPU time the server's processes (workers included) have used so far."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # The pump ends at EOF; then the pipe is closed here rather than left to the garbage collector.
        self._pump.join(5)
        if self.proc.stderr is not None and not self._pump.is_alive():
            self.proc.stderr.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer ends a process: no shutdown code runs."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(15)
        self.stop()  # closes the pipe once the pump has read it to the end

    def __enter__(self) -> SesameProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def sesame_cli(
    *args: str,
    data_dir: Path,
    database: str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> str:
    """Run a management command (``sesame accounts create x``) and return its stdout."""
    cmd = [sys.executable, "-m", "sesame", *args, "--data-dir", str(data_dir)]
    if database:
        cmd += ["--database", database]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout
