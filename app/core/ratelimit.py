"""Per-user sliding-window rate limits (messages per minute, sensitive actions per hour).

Two backends behind one interface (:class:`RateLimiter`):

* **in-process** (default): thread-safe, one chat worker counts its own users' events;
* **Redis** (when ``SAHAYAK_REDIS_URL`` is set, e.g. ``redis://127.0.0.1:6379/0``): every worker
  counts in the same sorted set per user, so a limit holds however a load balancer spreads a
  user's requests. The check-and-record is one Lua script (atomic on the server) and uses the
  Redis server's clock, so workers with drifting clocks still agree.

If Redis cannot be reached the limiter falls back to counting in-process (and logs it, once
per outage): a limiter outage must not stop the chat, and a per-worker limit is still a limit.
OTP attempt counters and lockouts are not kept here: they live in the bank database
(``app/bank/otp.py``), which every worker already shares.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from app.core.settings import get_settings

log = logging.getLogger(__name__)

# KEYS[1] = the user's sorted set; ARGV = window_ms, limit, unique member. Returns {allowed, retry_ms}.
_ALLOW = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, window - (now - tonumber(oldest[2]))}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
"""

# KEYS[1] = the user's sorted set; ARGV = window_ms, limit. Returns ms until one more event is allowed.
_RETRY = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then return 0 end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return window - (now - tonumber(oldest[2]))
"""


class _LocalWindow:
    """The in-process sliding window: a deque of event times per key."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            events = self._events[key]
            while events and now - events[0] >= self.window_s:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True

    def retry_after(self, key: str) -> float:
        with self._lock:
            events = self._events.get(key)
            if not events or len(events) < self.limit:
                return 0.0
            return max(0.0, self.window_s - (self._clock() - events[0]))


@lru_cache(maxsize=8)
def _redis_client(url: str) -> Any:
    """One connection pool per URL and process. Short timeouts: a stalled Redis costs a turn at
    most half a second before the limiter falls back to counting in-process."""
    # Imported here, not at module top: the in-process default needs no Redis client installed.
    import redis

    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30)


class _RedisWindow:
    """The shared sliding window: one Redis sorted set per (limiter, key), scored in server ms."""

    def __init__(self, url: str, limit: int, window_s: float, namespace: str) -> None:
        self.limit, self.window_ms, self.namespace = limit, int(window_s * 1000), namespace
        client = _redis_client(url)
        self._allow = client.register_script(_ALLOW)
        self._retry = client.register_script(_RETRY)

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def allow(self, key: str) -> bool:
        allowed, _ = self._allow(keys=[self._key(key)], args=[self.window_ms, self.limit, uuid.uuid4().hex])
        return bool(int(allowed))

    def retry_after(self, key: str) -> float:
        return max(0.0, int(self._retry(keys=[self._key(key)], args=[self.window_ms, self.limit])) / 1000)


_FROM_SETTINGS = object()  # sentinel: read SAHAYAK_REDIS_URL
_UNREACHABLE = object()  # sentinel: Redis did not answer


class RateLimiter:
    """Allow at most ``limit`` events per ``window_s`` seconds for each key.

    ``redis_url`` defaults to ``SAHAYAK_REDIS_URL`` (None: in-process). ``name`` keeps two limiters
    apart in Redis (default: derived from the limit and window, so the message and the
    sensitive-action limiters never share counts). A custom ``clock`` (tests) means in-process.
    """

    PROBE_EVERY_S = 5.0  # while Redis is unreachable, try it again at most this often

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic, *,
                 name: str | None = None, redis_url: Any = _FROM_SETTINGS) -> None:
        self.limit = limit
        self.window_s = window_s
        self._local = _LocalWindow(limit, window_s, clock)
        if redis_url is _FROM_SETTINGS:
            redis_url = get_settings().redis_url if clock is time.monotonic else None
        self._shared: _RedisWindow | None = None
        self._down_since: float | None = None
        self._next_probe = 0.0  # while Redis is down, ask it again only every PROBE_EVERY_S
        if redis_url:
            namespace = f"{get_settings().redis_prefix}:rl:{name or f'{limit}per{window_s:g}s'}"
            self._shared = _RedisWindow(redis_url, limit, window_s, namespace)

    @property
    def backend(self) -> str:
        """``redis`` or ``memory``."""
        return "redis" if self._shared is not None else "memory"

    def _fallback(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("rate limiter: Redis unreachable (%s: %s); counting in-process until it is back",
                        type(exc).__name__, exc)

    def _shared_call(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` against Redis, or ``_UNREACHABLE``."""
        # heavy: redis (~0.1 s), as in _redis_client; only a Redis-backed limiter gets here
        from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeout

        if self._down_since is not None and time.monotonic() < self._next_probe:
            return _UNREACHABLE
        try:
            value = fn()
        except (RedisConnectionError, RedisTimeout, OSError) as exc:
            self._fallback(exc)
            self._next_probe = time.monotonic() + self.PROBE_EVERY_S
            return _UNREACHABLE
        if self._down_since is not None:
            log.warning("rate limiter: Redis is back after %.0fs", time.monotonic() - self._down_since)
            self._down_since = None
        return value

    def allow(self, key: str) -> bool:
        """Record an event for ``key`` and say whether it is within the limit."""
        if self._shared is not None:
            shared = self._shared
            allowed = self._shared_call(lambda: shared.allow(key))
            if allowed is not _UNREACHABLE:
                return allowed
        return self._local.allow(key)

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may act again (0 when it may now)."""
        if self._shared is not None:
            shared = self._shared
            wait = self._shared_call(lambda: shared.retry_after(key))
            if wait is not _UNREACHABLE:
                return wait
        return self._local.retry_after(key)
