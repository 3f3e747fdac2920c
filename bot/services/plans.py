"""What a job plans inside its transaction, for once that transaction is over.

A job (a sync batch, a timer firing, an outbox hook) is one unit of work: one transaction,
and one `AfterCommit` plan, made together and dropped together. The job owns the plan; the
services it calls add to it (through the job's `Outbox`, which carries it for them, so the
outbox itself is only a queue):

- settled at the end of the job, inside its transaction, once all its events are in:
  `redraft` (drafts whose sense changed are posted again) and `retally` (live tallies are
  marked for their periodic edit);
- done only after the COMMIT (`run`): `reschedule` (timers follow the database),
  `republish` (the public site is regenerated), `digests` (the digests are posted, each
  ballot counted in its own short transaction) and `ring` (the outbox sender is woken).

A transaction that rolls back takes its plan with it: the job never runs it. A savepoint
that rolls back takes back what was planned inside it (`tentative`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol


class Timetable(Protocol):
    """What a plan needs of the calendars (a group's `bot.services.calendar.Calendar`, or
    every group's: `bot.services.groups.Groups`)."""

    async def follow(self, request_ids: Iterable[int]) -> None:
        """Make these requests' timers match the database."""
        ...

    async def fire_digests(self, group_ids: set[str]) -> None:
        """Post these groups' digests now."""
        ...


class Site(Protocol):
    """What a plan needs of the public site (`bot.services.publish.Publisher`)."""

    async def refresh(self) -> bool:
        """Regenerate the site from what is stored (False: it could not be written)."""
        ...


class Bell(Protocol):
    """What a plan needs of the outbox sender's doorbell."""

    def ring(self) -> None:
        """Something was queued: send it soon."""
        ...


@dataclass(slots=True)
class AfterCommit:
    """One job's plan (see the module)."""

    reschedule: set[int] = field(default_factory=set)  # requests whose timers must follow
    redraft: set[int] = field(default_factory=set)  # drafted requests whose draft changed
    retally: set[int] = field(default_factory=set)  # open ballots whose live tally changed
    republish: bool = False  # a decision, appeal answer or reopen: the public site follows
    digests: set[str] = field(default_factory=set)  # groups whose digest was asked for
    ring: bool = False  # something was queued: wake the outbox sender

    def schedule_changed(self, request_id: int) -> None:
        """The request's deadline or state changed: its timers follow once committed."""
        self.reschedule.add(request_id)

    @contextmanager
    def tentative(self) -> Iterator[None]:
        """Plans made inside this block are forgotten when it raises (with the savepoint it
        wraps)."""
        saved = replace(
            self,
            reschedule=set(self.reschedule),
            redraft=set(self.redraft),
            retally=set(self.retally),
            digests=set(self.digests),
        )
        try:
            yield
        except BaseException:
            self.reschedule, self.redraft, self.retally = (
                saved.reschedule,
                saved.redraft,
                saved.retally,
            )
            self.republish, self.digests, self.ring = saved.republish, saved.digests, saved.ring
            raise

    async def run(self, calendar: Timetable, site: Site | None, doorbell: Bell) -> None:
        """Do what was planned for after the commit; only once the transaction committed."""
        await calendar.follow(self.reschedule)
        if self.republish and site is not None:
            await site.refresh()  # after the commit: the site shows what is stored
        if self.digests:
            await calendar.fire_digests(self.digests)  # rings the doorbell itself
        if self.ring:
            doorbell.ring()
