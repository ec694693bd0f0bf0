"""Fakes served from a child process, so they do not share the GIL with the code under test.

`RemoteFakes({"hook": (FakeWebhookReceiver, {})})` starts `python -m tests.notify.fakes.remote`,
which builds and starts each fake, then runs method calls sent as JSON lines on its stdin:
`fakes.call("hook", "deliveries", ids)`. Arguments and results cross as JSON, so keep them small
(counts, ids, timestamps). Benchmarks use this; tests keep the in-process fakes, whose state they
inspect directly.

A plain subprocess rather than `multiprocessing`: a spawned worker re-imports the parent's main
module (for a benchmark: the whole app, Ray included), which took seconds of CPU on a small machine
while the measurement ran; this child imports the fakes only.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from tests.notify.fakes.http import FakeHTTPServer

FakeSpec = tuple[type[FakeHTTPServer], dict[str, Any]]
ROOT = Path(__file__).resolve().parents[3]


class RemoteFakes:
    """Fake servers running in a child process; `urls[name]` is where each one listens."""

    def __init__(self, specs: dict[str, FakeSpec]) -> None:
        self._specs = {
            name: (f"{cls.__module__}:{cls.__qualname__}", kwargs) for name, (cls, kwargs) in specs.items()
        }
        self._process: subprocess.Popen[str] | None = None
        # Calls may come from worker threads (asyncio.to_thread); one request/answer at a time.
        self._lock = threading.Lock()
        self.urls: dict[str, str] = {}

    def start(self) -> RemoteFakes:
        """Start the child and wait until every fake listens."""
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.notify.fakes.remote", json.dumps(self._specs)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.urls = self._answer()
        return self

    def _answer(self) -> Any:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake servers' process ended (exit code {self._process.poll()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"fake servers: {reply['error']}")
        return reply["value"]

    def call(self, name: str, method: str, *args: Any) -> Any:
        """Run `method(*args)` on the fake called `name` in the child; its result."""
        assert self._process is not None and self._process.stdin is not None, "start() first"
        with self._lock:
            self._process.stdin.write(json.dumps([name, method, list(args)]) + "\n")
            self._process.stdin.flush()
            return self._answer()

    def stop(self) -> None:
        """Stop the fakes and the child."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        # End of input: the child stops its fakes and exits (OSError: it is gone already).
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _reply(out: IO[str], **fields: Any) -> None:
    out.write(json.dumps(fields) + "\n")
    out.flush()


def main() -> None:
    """The child: start every fake, report their URLs, answer calls until stdin closes."""
    out = sys.stdout
    # Only the protocol goes to stdout; anything a fake prints goes to stderr instead.
    sys.stdout = sys.stderr
    fakes: dict[str, FakeHTTPServer] = {}
    for name, (path, kwargs) in json.loads(sys.argv[1]).items():
        module, _, qualname = path.partition(":")
        fakes[name] = getattr(importlib.import_module(module), qualname)(**kwargs)
    for fake in fakes.values():
        fake.start()
    try:
        _reply(out, value={name: fake.url for name, fake in fakes.items()})
        for line in sys.stdin:
            name, method, args = json.loads(line)
            try:
                value = getattr(fakes[name], method)(*args)
            except Exception as exc:  # handed to the caller, who raises it
                _reply(out, error=f"{name}.{method}: {type(exc).__name__}: {exc}")
            else:
                _reply(out, value=value)
    finally:
        for fake in fakes.values():
            fake.stop()


if __name__ == "__main__":
    main()
