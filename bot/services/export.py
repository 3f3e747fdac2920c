"""Export the decision record of a request (`consensus-bot export`, `!cb export`).

`export_record` gathers what the repository holds about one request — the eligible snapshot,
the full append-only history of position inputs, the redactions that removed some of them,
objections with the moments they were raised and disposed of — and builds the record with
the pure `bot.domain.record.build_record`. `render` turns a record into the file to upload
or print (`bot.domain.record_render`). Call both inside one transaction so the record is a
consistent snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from bot.domain.hums import Hum, Side, Strength, hum_report
from bot.domain.record import (
    DatedObjection,
    HumAggregate,
    Record,
    Retraction,
    build_record,
)
from bot.domain.record_render import render_csv, render_json, render_markdown
from bot.domain.sense import Voter
from storage.repo import Repository

Format = Literal["json", "csv", "md"]
FORMATS: tuple[Format, ...] = ("json", "csv", "md")
MEDIA_TYPES: dict[Format, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "md": "text/markdown",
}


class ExportError(Exception):
    """The record cannot be exported; the message is fit to show a member or operator."""


async def _eligible_snapshot(repo: Repository, request_id: int) -> list[Voter]:
    rows = await repo.tx.fetchall(
        "SELECT user_id, stakeholder, region FROM eligible WHERE request_id = ? ORDER BY user_id",
        (request_id,),
    )
    return [Voter(r["user_id"], r["stakeholder"], r["region"]) for r in rows]


async def _retractions(repo: Repository, request_id: int) -> list[Retraction]:
    rows = await repo.tx.fetchall(
        "SELECT r.event_id, r.redacts, r.sender, r.ts FROM redactions r "
        "JOIN position_inputs p ON p.event_id = r.redacts "
        "WHERE p.request_id = ? ORDER BY r.ts, r.event_id",
        (request_id,),
    )
    return [Retraction(r["event_id"], r["redacts"], r["sender"], r["ts"]) for r in rows]


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


async def export_record(
    repo: Repository,
    request_id: int,
    *,
    group_name: str,
    quorum: float,
    appeal_window_ms: int | None = None,
) -> Record:
    """The decision record of request `request_id`; ExportError when there is no such request.

    `quorum` and `appeal_window_ms` come from the `[process]` config; the sense in the record
    is drafted with that quorum from the record's own timeline.
    """
    req = await repo.request(request_id)
    if req is None:
        raise ExportError(f"there is no request #{request_id}")
    eligible = await _eligible_snapshot(repo, request_id)
    counted = {v.user_id for v in await repo.voters(request_id)}
    # Only the loudness of each side, and only once enough members hummed (see hums.py).
    report = hum_report([Hum(Side(s), Strength(t)) for s, t in await repo.hums(request_id)])
    hums = HumAggregate(report.for_.value, report.against.value) if report.reported else None
    return build_record(
        group=group_name,
        request=req,
        eligible=eligible,
        counted=counted,
        inputs=await repo.inputs(request_id),
        retractions=await _retractions(repo, request_id),
        objections=await _dated_objections(repo, request_id),
        quorum=quorum,
        appeal_window_ms=appeal_window_ms,
        hums=hums,
    )


def render(record: Mapping[str, Any], fmt: Format) -> str:
    """The record as the text of a `json`, `csv` or `md` file."""
    if fmt == "json":
        return render_json(record)
    if fmt == "csv":
        return render_csv(record)
    if fmt == "md":
        return render_markdown(record)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def filename(record: Record, fmt: Format) -> str:
    """A file name for the upload, e.g. `request-7-record.md`."""
    return f"request-{int(record['request']['id'])}-record.{fmt}"
