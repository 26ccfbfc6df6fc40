"""Job order: fair across owners, preferring jobs whose model is already loaded.

(Named `queue` because in diffusers `scheduler` means the noise scheduler.) Pure logic, no torch
and no threads: the worker holds it under its own lock.

Fairness: each owner has a first-in-first-out line, and the owners take turns, the one served
longest ago (or never) first, so one user's twenty jobs never starve another user's one.
Affinity: among the owners' next jobs, one whose model is loaded may go before the fair choice,
since loading a FLUX transformer costs seconds to minutes; but a job passed over `max_skips`
times is not passed over again.

    >>> q = FairQueue(max_skips=3)
    >>> q.push(QueuedJob("a1", owner="ann", model="canny"))
    >>> q.push(QueuedJob("b1", owner="bob", model="dev"))
    >>> q.pop(loaded={"dev"}).id
    'b1'
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

__all__ = ["FairQueue", "QueuedJob"]


@dataclass
class QueuedJob:
    """A job waiting to run. `skips` counts the times an affinity pick passed it over."""

    id: str
    owner: str
    model: str
    skips: int = 0
    seq: int = field(default=-1, compare=False)


class FairQueue:
    """Per-owner lines served in turns, with bounded model affinity."""

    def __init__(self, max_skips: int = 3) -> None:
        if max_skips < 0:
            raise ValueError(f"max_skips must be 0 or more, got {max_skips!r}")
        self.max_skips = max_skips
        self._lines: OrderedDict[str, deque[QueuedJob]] = OrderedDict()
        self._last_served: dict[str, int] = {}
        self._pushed = 0
        self._serves = 0

    def __len__(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def __contains__(self, job_id: str) -> bool:
        return any(job.id == job_id for line in self._lines.values() for job in line)

    def push(self, job: QueuedJob) -> None:
        job.seq = self._pushed
        self._pushed += 1
        self._lines.setdefault(job.owner, deque()).append(job)

    def remove(self, job_id: str) -> bool:
        """Take a waiting job out (cancelled); False when it is not waiting."""
        for owner, line in self._lines.items():
            for job in line:
                if job.id == job_id:
                    line.remove(job)
                    if not line:
                        del self._lines[owner]
                    return True
        return False

    def candidates(self) -> list[QueuedJob]:
        """Each owner's next job, in fair order: the owner served longest ago (or never) first."""
        heads = [line[0] for line in self._lines.values()]
        return sorted(heads, key=lambda job: (self._last_served.get(job.owner, 0), job.seq))

    def pop(self, loaded: Collection[str] = ()) -> QueuedJob | None:
        """The next job to run, given the models now loaded; None when nothing waits."""
        candidates = self.candidates()
        if not candidates:
            return None
        skips: dict[str, int] = {}
        chosen = self._choose(candidates, loaded, skips)
        for job in candidates:
            job.skips = skips.get(job.id, job.skips)
        line = self._lines[chosen.owner]
        line.popleft()
        if not line:
            del self._lines[chosen.owner]
        self._serves += 1
        self._last_served[chosen.owner] = self._serves
        return chosen

    def _choose(self, candidates: list[QueuedJob], loaded: Collection[str], skips: dict[str, int]) -> QueuedJob:
        """The fair first candidate, or one whose model is loaded when nobody ahead of it has been
        passed over `max_skips` times; counts the new passes in `skips` (job id -> count)."""
        if candidates[0].model in loaded:
            return candidates[0]
        for index, job in enumerate(candidates):
            ahead = candidates[:index]
            if any(skips.get(a.id, a.skips) >= self.max_skips for a in ahead):
                break
            if job.model in loaded:
                for a in ahead:
                    skips[a.id] = skips.get(a.id, a.skips) + 1
                return job
        return candidates[0]

    def plan(self, loaded: Iterable[str] = ()) -> list[str]:
        """Job ids in the order they would run if nothing else arrived; the last job's model is
        assumed loaded after it runs. The queue itself is not changed.

        Called on every push and pop to update queue positions, so it simulates on light copies
        (the lines and counters, not the jobs), with the owners' turns in a heap: the full sorted
        order is only needed when the fair choice's model is not loaded.
        """
        lines = {owner: deque(line) for owner, line in self._lines.items()}
        turns = [(self._last_served.get(owner, 0), line[0].seq, owner) for owner, line in lines.items()]
        heapq.heapify(turns)
        serves = self._serves
        skips: dict[str, int] = {}
        loaded_now = set(loaded)
        order = []
        while turns:
            first = lines[turns[0][2]][0]
            if first.model in loaded_now:
                chosen = first
                heapq.heappop(turns)
            else:
                candidates = [lines[owner][0] for _, _, owner in sorted(turns)]
                chosen = self._choose(candidates, loaded_now, skips)
                turns = [turn for turn in turns if turn[2] != chosen.owner]
                heapq.heapify(turns)
            line = lines[chosen.owner]
            line.popleft()
            serves += 1
            if line:
                heapq.heappush(turns, (serves, line[0].seq, chosen.owner))
            else:
                del lines[chosen.owner]
            order.append(chosen.id)
            loaded_now = {chosen.model}
        return order
