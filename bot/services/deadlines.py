"""Timers: deadlines, reminders and digests live in the database; APScheduler only wakes us.

The job store is in memory and rebuilt from the database at every start, so nothing is lost
with the process. Date jobs run at `max(due, now)` with no misfire grace limit: APScheduler 3
would otherwise skip a job that is more than a second late, also after a restart. Every job
callback re-checks the database, so a double wake-up does no harm.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.services.clock import Clock

log = logging.getLogger(__name__)

Job = Callable[..., Awaitable[None]]


def _require_async(func: Job) -> None:
    if not inspect.iscoroutinefunction(func):
        # APScheduler 3 runs a plain callable that returns a coroutine in a thread and
        # silently drops the coroutine: the job would never really run.
        raise TypeError(f"{func!r} must be an async function")


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Timers:
    """A thin face of APScheduler's asyncio scheduler, in integer milliseconds."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._scheduler: AsyncIOScheduler | None = None

    @property
    def scheduler(self) -> AsyncIOScheduler:
        """The running scheduler."""
        if self._scheduler is None:
            raise RuntimeError("timers not started")
        return self._scheduler

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

    def at(self, job_id: str, when_ms: int, func: Job, *args: Any) -> None:
        """Run `func(*args)` once at `when_ms` (at once when that is past); replaces `job_id`."""
        _require_async(func)
        run_at = max(when_ms, self.clock.now_ms())
        self.scheduler.add_job(
            func, "date", run_date=_dt(run_at), args=list(args), id=job_id, replace_existing=True
        )

    def cancel(self, job_id: str) -> None:
        """Remove a job if it exists."""
        if self.scheduler.get_job(job_id):
            self.scheduler.remove_job(job_id)

    def cancel_prefix(self, prefix: str) -> None:
        """Remove every job whose ID starts with `prefix`."""
        for job in self.scheduler.get_jobs():
            if job.id.startswith(prefix):
                job.remove()

    def cron(self, job_id: str, fields: dict[str, str], tz: ZoneInfo, func: Job) -> None:
        """Run `func()` on a cron schedule in a time zone; a missed run is run once."""
        _require_async(func)
        self.scheduler.add_job(
            func, CronTrigger(timezone=tz, **fields), id=job_id, replace_existing=True
        )

    def every(self, job_id: str, seconds: float, func: Job) -> None:
        """Run `func()` every `seconds`."""
        _require_async(func)
        self.scheduler.add_job(func, "interval", seconds=seconds, id=job_id, replace_existing=True)

    @staticmethod
    def next_cron_ms(fields: dict[str, str], tz: ZoneInfo, after_ms: int) -> int | None:
        """The first time after `after_ms` the cron schedule fires (to detect a missed run)."""
        trigger = CronTrigger(timezone=tz, **fields)
        nxt = trigger.get_next_fire_time(None, _dt(after_ms + 1))
        return None if nxt is None else int(nxt.timestamp() * 1000)

    def scheduled(self) -> dict[str, int]:
        """Job IDs and their next run times in ms (for status and tests)."""
        if self._scheduler is None:
            return {}
        return {
            job.id: int(job.next_run_time.timestamp() * 1000)
            for job in self._scheduler.get_jobs()
            if job.next_run_time is not None
        }
