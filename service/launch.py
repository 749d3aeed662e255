"""Start `heichan serve` in a subprocess and wait until it is ready (tests and benchmarks)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import httpx


class Server(subprocess.Popen):
    """The server process, and the file its output goes to."""

    log_path: str


def start_server(port: int, args: Sequence[str] = (), env: dict | None = None, timeout: float = 60) -> Server:
    """Run the server on 127.0.0.1:`port`; return once /readyz answers 200, or raise with its output."""
    # the log goes to a file: a pipe nobody reads fills up and blocks the server
    log = tempfile.NamedTemporaryFile(prefix="heichan-serve-", suffix=".log", delete=False)
    proc = Server(
        [sys.executable, "-m", "heichan", "serve", "--port", str(port), *args],
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.log_path = log.name
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            output = open(proc.log_path, encoding="utf-8", errors="replace").read()
            raise RuntimeError(f"the server did not become ready:\n{output[-3000:]}")
        time.sleep(0.2)


def stop_server(proc: Server) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    os.unlink(proc.log_path)
