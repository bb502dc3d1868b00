"""The simulation's time and scheduling: an asyncio loop on virtual time, and an executor in its hands.

The loop's clock is virtual: when nothing is ready it jumps to its next timer instead of sleeping, so
an hour of backoff costs nothing. The worker's blocking Stripe calls (`asyncio.to_thread`) go to an
executor that runs each call on the loop itself, after a latency drawn from the seed, and answers it
after another: no thread decides any ordering, so a run is a function of its seed alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import selectors
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

EPOCH = 1_800_000_000.0  # the Unix time at which every simulated run starts (2027-01-15)


class Stalled(RuntimeError):
    """Nothing is ready and no timer is set: the simulated world would wait for ever."""


class VirtualTime:
    """Seconds since the run started; only the loop moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


class _VirtualSelector(selectors.DefaultSelector):
    """Polls the real descriptors (the loop's self-pipe) without waiting; a wait advances virtual time."""

    def __init__(self, time: VirtualTime) -> None:
        super().__init__()
        self._time = time

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise Stalled("nothing is ready and no timer is set")
        self._time.now += timeout
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, time: VirtualTime) -> None:
        super().__init__(_VirtualSelector(time))
        self._virtual = time

    def time(self) -> float:
        return self._virtual.now

    def forget_timers(self, spare: Collection[asyncio.TimerHandle] = ()) -> None:
        """A crash: no timer of the dead process may fire in the next one (`spare`: the world's own)."""
        for handle in list(self._scheduled):  # type: ignore[attr-defined]  # asyncio's own timer heap
            if handle not in spare:
                handle.cancel()


@dataclass
class _Job:
    call: Callable[[], Any]
    future: concurrent.futures.Future[Any]
    applied: bool = False


class SimExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs each submitted call on `loop` after a seeded latency (the request on its way), and
    answers it after another (the response on its way, plus what `extra_delay` says the call cost:
    a response lost after applying is noticed only at the read timeout). Never starts a thread."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, rng: random.Random, extra_delay: Callable[[], float] = lambda: 0.0
    ) -> None:
        super().__init__(max_workers=1)  # asyncio takes only a ThreadPoolExecutor; no thread is started
        self.loop = loop
        self.rng = rng
        self.extra_delay = extra_delay
        self.pending: list[_Job] = []

    def latency(self) -> float:
        return self.rng.choice((0.002, 0.01, 0.05, 0.2, 0.8))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        job = _Job(lambda: fn(*args, **kwargs), future)
        self.pending.append(job)
        self.loop.call_later(self.latency(), self._apply, job)
        return future

    def _apply(self, job: _Job) -> None:
        if job not in self.pending:
            return  # the process that sent it died before it left
        job.applied = True
        try:
            result, error = job.call(), None
        except BaseException as exc:  # delivered to the awaiting coroutine, as a thread's would be
            result, error = None, exc
        self.loop.call_later(self.latency() + self.extra_delay(), self._deliver, job, result, error)

    def _deliver(self, job: _Job, result: Any, error: BaseException | None) -> None:
        if job not in self.pending:
            return  # its process died: nobody reads the answer
        self.pending.remove(job)
        if job.future.set_running_or_notify_cancel():
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)

    def crash(self) -> int:
        """The process dies: a request already on the wire may still reach Stripe (drawn from the
        seed), no answer is read. Answers how many unapplied requests were sent anyway."""
        sent = 0
        for job in list(self.pending):
            if not job.applied and self.rng.random() < 0.5:
                job.applied, sent = True, sent + 1
                with contextlib.suppress(Exception):  # the answer to a dead process is lost
                    job.call()
        self.pending.clear()
        return sent
