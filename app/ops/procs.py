"""Child processes, written once: start one with its output in a log file, wait until it is
healthy, stop it (SIGTERM, then SIGKILL after a grace period).

Used by the ``sahayak run`` stack (:mod:`app.ops.stack`), the graph-server launcher
(:mod:`app.ops.graph`) and the benchmarks. Children run in their own session, so a Ctrl-C in
the terminal reaches only the parent, which then stops them in order.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from app.core.paths import REPO_ROOT


def child_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A copy of ``base`` (default: this process's environment) with the repository first on
    ``PYTHONPATH``, so ``python -m <package>`` children import this checkout, plus ``extra``."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def spawn(cmd: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None, *,
          cwd: Path = REPO_ROOT, stdin_pipe: bool = False) -> subprocess.Popen:
    """Start ``cmd`` in its own session with stdout and stderr appended to ``log_path``; returns at once.

    ``stdin_pipe`` gives the child a pipe as stdin (a child that stops when its stdin closes can
    then never outlive its parent); otherwise stdin is /dev/null.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(list(cmd), cwd=cwd, env=dict(env) if env is not None else None,
                                stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(check: Callable[[], bool], timeout: float, proc: subprocess.Popen | None = None,
                 interval: float = 0.25) -> bool:
    """Call ``check`` until it returns True (True), ``timeout`` seconds pass or ``proc`` exits (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if check():
            return True
        time.sleep(interval)
    return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers 200."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_http_ok(url: str, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    """Poll ``url`` until it answers 200 (False on timeout or when ``proc`` exits first)."""
    return wait_healthy(lambda: http_ok(url), timeout, proc)


def terminate(proc: subprocess.Popen, grace: float = 10.0, *, eof_grace: float = 0.0) -> None:
    """Stop ``proc`` and reap it (no-op when it has exited).

    With ``eof_grace`` its stdin is closed first and it gets that many seconds to stop by itself
    (the graph server shuts its JVM down cleanly on EOF); then SIGTERM and ``grace`` seconds;
    then SIGKILL.
    """
    if proc.poll() is not None:
        if proc.stdin is not None:  # a crashed child (the supervisor restarts it): release our end of its pipe
            try:
                proc.stdin.close()
            except OSError:
                pass
        return
    if eof_grace and proc.stdin is not None:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(eof_grace)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)


def tail(path: Path | None, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file ("" when it cannot be read)."""
    if path is None:
        return ""
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""
