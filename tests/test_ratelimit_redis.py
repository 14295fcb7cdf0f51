"""Rate limits shared across worker processes through a real Redis (127.0.0.1:6379; started by
.ci/run), and the in-process fallback when Redis cannot be reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.core.ratelimit import RateLimiter
from tests.conftest import ROOT, need_server

REDIS_URL = os.environ.get("SAHAYAK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

pytestmark = pytest.mark.timeout(600)


@pytest.fixture()
def redis_prefix() -> str:
    """A key prefix of this test's own on the shared Redis; its keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        need_server(f"Redis at {REDIS_URL} not reachable: {exc}")
    prefix = f"sahayak-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


WORKER = """
import json, sys
from app.core.ratelimit import RateLimiter
rl = RateLimiter(5, 60, name="shared")
sys.stdin.readline()  # both workers start counting together
allowed = sum(rl.allow("asha") for _ in range(5))
print(json.dumps({"backend": rl.backend, "allowed": allowed, "retry_after": rl.retry_after("asha")}))
"""


def test_two_processes_share_one_limit(redis_prefix: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SAHAYAK_REDIS_URL": REDIS_URL, "SAHAYAK_REDIS_PREFIX": redis_prefix}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER], env=env, text=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for w in workers:
        w.stdin.write("go\n")
        w.stdin.flush()
    results = []
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert {r["backend"] for r in results} == {"redis"}
    assert sum(r["allowed"] for r in results) == 5, results  # 10 tries, one budget of 5
    assert all(0 < r["retry_after"] <= 60 for r in results)


def test_limiters_with_different_windows_do_not_share_counts(redis_prefix: str, monkeypatch) -> None:
    from app.core.settings import reset_settings

    monkeypatch.setenv("SAHAYAK_REDIS_PREFIX", redis_prefix)
    reset_settings()
    per_minute = RateLimiter(2, 60, redis_url=REDIS_URL)
    per_hour = RateLimiter(2, 3600, redis_url=REDIS_URL)
    assert [per_minute.allow("ravi") for _ in range(3)] == [True, True, False]
    assert per_hour.allow("ravi"), "the hourly limiter has its own count"
    reset_settings()


def test_unreachable_redis_falls_back_to_counting_in_process() -> None:
    rl = RateLimiter(2, 60, redis_url="redis://127.0.0.1:1/0")
    assert rl.backend == "redis"
    assert [rl.allow("asha") for _ in range(3)] == [True, True, False]
    assert rl.retry_after("asha") > 0


class Worker:
    """One chat worker's conversation pipeline: a long-lived `sahayak turn --jsonl` process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "turn", "--jsonl"], cwd=ROOT, env=env,
                                     text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def say(self, text: str) -> dict:
        self.proc.stdin.write(json.dumps({"user": "asha", "session": "lb", "text": text}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read()
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=120)


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
def test_message_limit_holds_across_two_workers(shared: bool, redis_prefix: str, tmp_path: Path) -> None:
    """A customer whose messages alternate between two workers gets 3 a minute in all with Redis
    (and, for contrast, 3 per worker without it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SAHAYAK_HOME": str(tmp_path),
           "SAHAYAK_RATE_LIMIT_MESSAGES_PER_MINUTE": "3", "SAHAYAK_REDIS_PREFIX": redis_prefix}
    env.pop("SAHAYAK_DATABASE_URL", None)
    env.pop("SAHAYAK_REDIS_URL", None)
    if shared:
        env["SAHAYAK_REDIS_URL"] = REDIS_URL
    subprocess.run([sys.executable, "-m", "app.cli", "bank", "seed"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)
    workers = [Worker(env), Worker(env)]
    try:
        replies = [workers[i % 2].say("what's my balance") for i in range(6)]
    finally:
        for w in workers:
            w.close()
    limited = ["faster than I can safely handle" in r["reply"] for r in replies]
    if shared:
        assert limited == [False, False, False, True, True, True]
    else:
        assert limited == [False] * 6
