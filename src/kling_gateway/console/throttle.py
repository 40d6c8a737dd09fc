"""Failed sign-ins per client address: after ``limit`` failures inside ``window`` seconds every
further attempt from that address is refused (429) until the oldest failure leaves the window. Per
process."""

from __future__ import annotations

from collections import OrderedDict, deque


class SignInThrottle:
    def __init__(self, limit: int = 5, window: float = 60.0, max_addresses: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = (
            max_addresses  # memory bound: the least recently failing address goes first
        )
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, address: str, now: float) -> bool:
        return len(self._recent(address, now)) >= self.limit

    def failed(self, address: str, now: float) -> None:
        times = self._recent(address, now)
        times.append(now)
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def retry_after(self, address: str, now: float) -> int:
        times = self._recent(address, now)
        return max(1, int(times[0] + self.window - now) + 1) if times else 0
