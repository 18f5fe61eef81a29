"""A shard's URLs, handed to the download threads host by host as politeness allows.

URLs are queued by origin (scheme, host, port: what robots.txt covers). A thread asks
:meth:`HostQueue.take` for work and gets one of three tasks:

- :class:`RobotsTask`: the first time an origin comes up, one thread fetches its robots.txt
  while the origin's URLs wait (the others go on with other origins);
- :class:`DropTask`: a URL robots.txt disallows, dropped before any request;
- :class:`FetchTask`: a URL and a politeness lease on its host, taken from the machine-wide
  :class:`~vlcurate.pipeline.download.politeness.HostGate` without waiting: an origin whose
  host is busy or too recent is set aside until the gate says it may go again, so threads work
  on the hosts that are ready instead of queueing behind the one that is not.

Origins ready now go round in turn (one URL each), origins waiting sit in a heap by the time they
may go again: :meth:`take` costs a few heap operations, whatever the number of hosts.
"""

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from vlcurate.pipeline.download.robots import ROBOTS_DISALLOWED

WAIT_SECONDS = 0.05  # longest nap before asking the gate again (other processes release too)


@dataclass
class Item:
    row: int  # the URL's row in the shard
    url: str
    origin: str
    host: str
    attempt: int = 0
    not_before: float = 0.0


@dataclass
class FetchTask:
    item: Item
    lease: object


@dataclass
class RobotsTask:
    origin: str
    url: str  # a URL of the origin


@dataclass
class DropTask:
    item: Item
    reason: str


@dataclass
class _Origin:
    host: str
    items: deque = field(default_factory=deque)
    rules: object = None  # RobotsRules, once known
    asked: bool = False  # a RobotsTask is out
    queued: bool = False  # in the ring or the heap


class HostQueue:
    """``take()`` blocks until there is a task, and returns None once every URL is done."""

    def __init__(self, items: list[Item], gate, delay: Callable[[object], float], rules=None):
        """``delay(rules)``: seconds between requests to a host whose robots.txt says
        ``rules``; ``rules``: every origin's rules when robots.txt is not read."""
        self.gate = gate
        self.delay = delay
        self.origins: dict[str, _Origin] = {}
        for item in items:
            state = self.origins.setdefault(item.origin, _Origin(item.host, rules=rules))
            state.items.append(item)
        self.ring = deque(self.origins)
        for state in self.origins.values():
            state.queued = True
        self.heap: list[tuple[float, str]] = []
        self.outstanding = len(items)
        self.cond = threading.Condition()

    def take(self):
        with self.cond:
            while self.outstanding:
                task, wake = self._next(time.monotonic())
                if task is not None:
                    return task
                self.cond.wait(min(WAIT_SECONDS, max(0.001, wake - time.monotonic())))
            return None

    def _next(self, now: float):
        """A task, or (None, when to look again)."""
        while self.heap and self.heap[0][0] <= now:
            self.ring.append(heapq.heappop(self.heap)[1])
        wake = self.heap[0][0] if self.heap else now + WAIT_SECONDS
        for _ in range(len(self.ring)):
            origin = self.ring.popleft()
            state = self.origins[origin]
            task, again = self._from(origin, state, now)
            if again is None:
                state.queued = False
            elif again <= now:
                self.ring.append(origin)
            else:
                heapq.heappush(self.heap, (again, origin))
                wake = min(wake, again)
            if task is not None:
                return task, wake
        return None, wake

    def _from(self, origin: str, state: _Origin, now: float):
        """(a task or None, when the origin may go again: None when it has nothing to give)."""
        if not state.items:
            return None, None
        if state.rules is None:
            if state.asked:
                return None, None  # requeued when its rules come
            state.asked = True
            return RobotsTask(origin, state.items[0].url), None
        item = state.items[0]
        if item.not_before > now:
            return None, item.not_before
        if not state.rules.allowed(item.url):
            state.items.popleft()
            return DropTask(item, ROBOTS_DISALLOWED), now
        delay = self.delay(state.rules)
        lease, ready_at = self.gate.try_acquire(state.host, delay)  # its clock, under its lock
        if lease is None:
            if ready_at > now + delay + 0.001:  # every slot taken (or held off): ask again soon
                return None, now + WAIT_SECONDS
            return None, max(ready_at, now + 0.001)
        state.items.popleft()
        return FetchTask(item, lease), now

    def set_rules(self, origin: str, rules) -> None:
        with self.cond:
            state = self.origins[origin]
            state.rules = rules
            self._requeue(origin, state)

    def retry(self, item: Item, not_before: float) -> None:
        """Put ``item`` back at the head of its origin's queue, not to go before ``not_before``."""
        with self.cond:
            item.attempt += 1
            item.not_before = not_before
            state = self.origins[item.origin]
            state.items.appendleft(item)
            self._requeue(item.origin, state)

    def done(self) -> None:
        """One URL is finished (kept or dropped)."""
        with self.cond:
            self.outstanding -= 1
            self.cond.notify_all()

    def _requeue(self, origin: str, state: _Origin) -> None:
        if not state.queued:
            state.queued = True
            self.ring.append(origin)
        self.cond.notify_all()
