"""The decision record of a request (`consensus-bot export`, `!cb export`).

`live_record` gathers the raw rows of one request — the eligible snapshot, every position
input, every redaction aimed at one, objections with their times — and builds the record
with the pure `bot.domain.record.build_record`, which counts with the same rule as the draft.
When the chair decides, `freeze` stores that record in the deciding transaction; from then on
`export_record` returns the frozen bytes, whatever happens to the roster or the room.
`render` turns a record into the file to upload or print (`bot.domain.record_render`).

A record of a 10,000-member ballot takes most of a second to build and a good part of one to
render, so both run off the event loop (`asyncio.to_thread`): they are pure functions of rows
already read, which nothing else holds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Literal

from bot.domain.counting import DEFAULT_SKEW_MS
from bot.domain.errors import Refusal
from bot.domain.lifecycle import FINAL
from bot.domain.record import (
    DatedObjection,
    HumAggregate,
    Record,
    build_record,
    continues_decision,
    counted_inputs,
)
from bot.domain.record_render import render_csv, render_json, render_markdown
from bot.domain.request import Request
from bot.domain.text import Speaker
from storage.repo import Repository

Format = Literal["json", "csv", "md"]
FORMATS: tuple[Format, ...] = ("json", "csv", "md")
MEDIA_TYPES: dict[Format, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "md": "text/markdown",
}


class ExportError(Refusal):
    """The record cannot be exported; the message is fit to show a member or operator."""


async def _dated_objections(repo: Repository, request_id: int) -> list[DatedObjection]:
    rows = await repo.tx.fetchall(
        "SELECT id, event_id, created_at, disposed_at FROM objections WHERE request_id = ?",
        (request_id,),
    )
    times = {int(r["id"]): r for r in rows}
    dated = []
    for o in await repo.objections(request_id):
        row = times[o.id]
        dated.append(
            DatedObjection(
                objection=o,
                raised_at=int(row["created_at"]),
                disposed_at=None if row["disposed_at"] is None else int(row["disposed_at"]),
                event_id=row["event_id"],
            )
        )
    return dated


async def live_record(
    repo: Repository,
    req: Request,
    *,
    group_name: str,
    quorum: float,
    skew_ms: int,
    appeal_window_ms: int | None = None,
    hums: HumAggregate | None = None,
    tidier: str | None = None,
) -> Record:
    """The record of a request as it stands now, built from the stored rows by the one
    counting rule. A request reopened after a decision continues the chain of its last
    frozen segment; a later segment of the same decision counts only what it counted."""
    rows = await repo.rows(req.id)
    frozen = await repo.frozen_records(req.id)
    carried = None
    if frozen:
        earlier: Record = await asyncio.to_thread(json.loads, frozen[-1].body)
        if continues_decision(earlier, req):
            # An appeal answered without a reopen: the decision's counts carry unchanged.
            carried = counted_inputs(earlier)
    return await asyncio.to_thread(
        build_record,
        group=group_name,
        request=req,
        eligible=rows.snapshot,
        removed=rows.removed,
        inputs=rows.inputs,
        redactions=rows.redactions,
        objections=await _dated_objections(repo, req.id),
        quorum=quorum,
        skew_ms=skew_ms,
        appeal_window_ms=appeal_window_ms,
        hums=hums,
        segment=len(frozen) + 1,
        previous_head=frozen[-1].head if frozen else None,
        tidier=tidier,
        history=await repo.objection_history(req.id),
        appeals=await repo.appeals(req.id),
        edits=await repo.edits(req.id),
        carried=carried,
    )


async def freeze(repo: Repository, record: Record, now: int) -> str:
    """Store a decided request's record for good (inside the deciding transaction)."""
    body = await asyncio.to_thread(render_json, record)
    await repo.freeze_record(
        int(record["request"]["id"]),
        int(record["segment"]),
        str(record["head"]),
        body,
        now,
    )
    return str(record["head"])


async def export_record(
    repo: Repository,
    request_id: int,
    *,
    group_name: str,
    quorum: float,
    skew_ms: int = DEFAULT_SKEW_MS,
    appeal_window_ms: int | None = None,
    tidier: str | None = None,
) -> Record:
    """The record of request `request_id`: for a decided request the record frozen at the
    decision, byte for byte; otherwise the record as it stands. ExportError when there is
    no such request."""
    req = await repo.request(request_id)
    if req is None:
        raise ExportError(f"there is no request #{request_id}")
    frozen = await repo.frozen_records(request_id)
    if req.state in FINAL and frozen:
        record: Record = await asyncio.to_thread(json.loads, frozen[-1].body)
        return record
    return await live_record(
        repo,
        req,
        group_name=group_name,
        quorum=quorum,
        skew_ms=skew_ms,
        appeal_window_ms=appeal_window_ms,
        tidier=tidier,
    )


async def render_file(record: Mapping[str, Any], fmt: Format, lang: Speaker | None = None) -> str:
    """`render`, off the event loop (a big record takes a good part of a second)."""
    return await asyncio.to_thread(render, record, fmt, lang)


def render(record: Mapping[str, Any], fmt: Format, lang: Speaker | None = None) -> str:
    """The record as the text of a `json`, `csv` or `md` file; the Markdown minutes are
    said in `lang` (the group's language), the JSON and CSV data are language-free."""
    if fmt == "json":
        return render_json(record)
    if fmt == "csv":
        return render_csv(record)
    if fmt == "md":
        return render_markdown(record, lang)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def filename(record: Record, fmt: Format) -> str:
    """A file name for the upload, e.g. `request-7-record.md`."""
    return f"request-{int(record['request']['id'])}-record.{fmt}"
