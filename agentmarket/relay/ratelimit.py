"""Token buckets per key (client address, maker), in memory of one relay process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """``rate`` tokens per second, at most ``burst`` saved up. ``rate <= 0`` disables the limit."""

    rate: float
    burst: float


class RateLimiter:
    """One token bucket per key; :meth:`take` answers 0 (allowed) or the seconds to wait."""

    def __init__(self, limit: Limit, max_keys: int = 100_000):
        self.limit = limit
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def take(self, key: str, cost: float = 1.0) -> float:
        if self.limit.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.limit.burst, now))
            tokens = min(self.limit.burst, tokens + (now - last) * self.limit.rate)
            if tokens < cost:
                self._buckets[key] = (tokens, now)
                return (cost - tokens) / self.limit.rate
            if len(self._buckets) >= self._max_keys and key not in self._buckets:
                # forget full buckets first: a full bucket is the same as no bucket
                full = [k for k, (t, _) in self._buckets.items() if t >= self.limit.burst]
                for k in full or list(self._buckets)[: self._max_keys // 10]:
                    del self._buckets[k]
            self._buckets[key] = (tokens - cost, now)
            return 0.0
