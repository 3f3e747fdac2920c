"""The public site of decisions, at the edge: gather the frozen records, write the files.

`gather` reads every decided request's frozen record segments (the same bytes `export`
returns) and the applicant's country, kind and consent; `bot.domain.publish.build_site`
renders them; `write_site` writes the files into a fresh temporary directory beside the
target and swaps it in by renaming, so a web server never serves a half-written site.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.domain.countries import Country, lookup
from bot.domain.lifecycle import RequestState
from bot.domain.publish import Decision, PublishOptions, build_site, groups_index
from bot.domain.record_render import render_markdown
from bot.i18n.catalog import SOURCE_LANGUAGE, Language
from bot.services.clock import Clock
from bot.services.settings import Settings
from storage.backend import Backend
from storage.repo import Repository

log = logging.getLogger(__name__)


async def gather(repo: Repository, group_id: str, lang: Language | None = None) -> list[Decision]:
    """A group's decided requests with their frozen record segments (undecided ones
    never), the minutes said in `lang` (the group's language)."""
    decisions = []
    for req in await repo.requests(group_id, [RequestState.DECIDED]):
        frozen = await repo.frozen_records(req.id)
        if req.outcome is None or not frozen:
            continue
        a = req.applicant
        country = lookup(a.country) if a.country else None
        decisions.append(
            Decision(
                segments=tuple(f.body for f in frozen),
                markdown=tuple(render_markdown(json.loads(f.body), lang) for f in frozen),
                kind=a.kind,
                country=_country_name(country, lang) if country else a.country,
                consent=req.publish_consent is True,
            )
        )
    return decisions


def _country_name(country: Country, lang: Language | None) -> str:
    """The country's name in the site's language (CLDR); in English, the bot's own table's
    name, as every English text says it."""
    if lang is None or lang.code == SOURCE_LANGUAGE:
        return country.name
    return lang.territory(country.alpha2)


def write_site(files: dict[str, str], out: Path) -> None:
    """Write `files` (relative path → text) as the directory `out`, swapped in by rename.

    The new site is written in full beside `out` first; an existing `out` is moved aside
    and the new one renamed into place (two renames: a reader sees the old site or the new
    one, at worst for an instant neither), then the old one is removed."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        for rel, text in files.items():
            path = tmp / rel
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise ValueError(f"refusing to write outside the site: {rel!r}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="")
        os.chmod(tmp, 0o755)  # noqa: S103  # mkdtemp makes it private; a web server reads it
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "site")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


async def site_files(
    repo: Repository,
    *,
    groups: Sequence[SiteGroup],
    options: PublishOptions,
    now_ms: int,
) -> dict[str, str]:
    """Gather the decisions of these groups and render the site's files (`write_site`
    writes them): one group's site at the top, several in a folder each, each in its
    group's language."""
    decisions = {g.id: await gather(repo, g.id, g.lang) for g in groups}
    return render_sites(groups, decisions, options, _iso(now_ms))


@dataclass(frozen=True, slots=True)
class SiteGroup:
    """A group as its site shows it: id (its folder, with several), name and language
    (None: English)."""

    id: str
    name: str
    lang: Language | None = None


def render_sites(
    groups: Sequence[SiteGroup],
    decisions: Mapping[str, Sequence[Decision]],
    options: PublishOptions,
    updated_iso: str,
) -> dict[str, str]:
    """The files of each group's site: at the top for a bot of one group; otherwise each in
    the folder of its id, under a page that lists the groups."""

    def site(g: SiteGroup) -> dict[str, str]:
        return build_site(
            decisions[g.id], group=g.name, options=options, updated_iso=updated_iso, lang=g.lang
        )

    if len(groups) == 1:
        return site(groups[0])
    files = {"index.html": groups_index([(g.id, g.name) for g in groups])}
    for g in groups:
        files.update({f"{g.id}/{rel}": text for rel, text in site(g).items()})
    return files


def _iso(ms: int) -> str:
    """The feed's `updated` time."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Publisher:
    """Keeps `publish.dir` current for the running bot: after a decision, an appeal answer or
    a reopen has committed, the site is built again from the database and swapped in. The
    files are written in a worker thread so the event loop keeps syncing. Construction does
    no I/O."""

    def __init__(self, db: Backend, clock: Clock, every: Sequence[Settings]) -> None:
        self.db = db
        self.clock = clock
        self.settings = every[0]  # the bot-wide [publish] choices
        self.groups = [SiteGroup(s.group_id, s.group_name, s.lang) for s in every]

    async def refresh(self) -> bool:
        """Regenerate the site; False (logged) when it could not be written — a decision
        never fails for its publication, and the next one writes the whole site again."""
        s = self.settings
        if not s.publish_dir:
            return False
        options = s.publish
        now = self.clock.now_ms()
        out = Path(s.publish_dir)

        def build_and_write(decisions: dict[str, list[Decision]]) -> None:
            # Rendering and writing both run in the worker thread: only the read is async.
            write_site(render_sites(self.groups, decisions, options, _iso(now)), out)

        try:
            async with self.db.transaction() as tx:
                repo = Repository(tx)
                decisions = {g.id: await gather(repo, g.id, g.lang) for g in self.groups}
            await asyncio.to_thread(build_and_write, decisions)
        except (OSError, ValueError) as exc:
            log.warning("the public site in %s was not regenerated: %s", s.publish_dir, exc)
            return False
        return True
