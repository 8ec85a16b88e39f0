"""Per-key request rate limits: a token bucket per API key (by its hash), in this API process's memory.

Checked by the authentication dependency on every authenticated route, after the key is known (unknown keys
never fill the table). No database round trip: with several API processes (uvicorn workers, replicas) each
keeps its own buckets, so a key may send up to that many times the limit in all."""

import math
import time

from docflow.errors import DocflowError


class RateLimited(DocflowError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """`per_minute` requests a minute per key, up to `burst` at once; `per_minute` 0 = no limit. Used from
    the event loop's thread only (no lock)."""

    MAX_KEYS = 10_000  # past this many keys, the buckets that are full again are forgotten

    def __init__(self, per_minute: int, burst: int) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0  # tokens a second
        self.burst = float(max(1, burst))
        self._buckets: dict[str, list[float]] = {}  # key hash -> [tokens, when they were counted]

    def take(self, key_hash: str, now: float | None = None) -> None:
        """Spend one of the key's tokens; raises RateLimited (with the seconds until the next token) when it
        has none."""
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key_hash)
        if bucket is None:
            if len(self._buckets) >= self.MAX_KEYS:
                self._forget_full(now)
            self._buckets[key_hash] = [self.burst - 1, now]
            return
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return
        bucket[0] = tokens
        wait = max(1, math.ceil((1 - tokens) / self.rate))
        raise RateLimited(f"rate limit: {self.per_minute} requests per minute for this API key", wait)

    def _forget_full(self, now: float) -> None:
        for key_hash, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.burst:
                del self._buckets[key_hash]
