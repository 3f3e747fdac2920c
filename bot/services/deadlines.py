"""Timers: deadlines live in the database; APScheduler only wakes the bot.

The job store is in memory and rebuilt from the database at every start, so nothing about a
deadline is lost with the process. Jobs are scheduled at `max(due, now)` with no misfire
grace limit: APScheduler 3 would otherwise skip a job that is more than a second late, also
after a restart. Firing is idempotent (the callback re-checks the database), so a double
wake-up does no harm.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.services.clock import Clock

log = logging.getLogger(__name__)

Fire = Callable[[int], Awaitable[None]]


class Timers:
    """One date job per request that has a pending deadline."""

    def __init__(self, clock: Clock, fire_deadline: Fire) -> None:
        if not inspect.iscoroutinefunction(fire_deadline):
            # APScheduler 3 runs a plain callable returning a coroutine in a thread and
            # silently drops the coroutine: the deadline would never fire.
            raise TypeError("fire_deadline must be an async function")
        self.clock = clock
        self._fire_deadline = fire_deadline
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Start the scheduler on the running event loop."""
        self._scheduler = AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(),
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._scheduler.start()

    def stop(self) -> None:
        """Stop the scheduler (jobs are rebuilt from the database at next start)."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None

    def set_deadline(self, request_id: int, due_ms: int | None) -> None:
        """(Re)schedule a request's deadline; None removes it."""
        if self._scheduler is None:
            raise RuntimeError("timers not started")
        job_id = f"deadline:{request_id}"
        if due_ms is None:
            if self._scheduler.get_job(job_id):
                self._scheduler.remove_job(job_id)
            return
        run_at = max(due_ms, self.clock.now_ms())
        self._scheduler.add_job(
            self._fire_deadline,
            "date",
            run_date=datetime.fromtimestamp(run_at / 1000, tz=UTC),
            args=[request_id],
            id=job_id,
            replace_existing=True,
        )
        log.debug("deadline of request %d at %d", request_id, run_at)

    def scheduled(self) -> dict[str, float]:
        """Job IDs and their run times (seconds since the epoch), for status and tests."""
        if self._scheduler is None:
            return {}
        return {
            job.id: job.next_run_time.timestamp()
            for job in self._scheduler.get_jobs()
            if job.next_run_time is not None
        }
