"""Net Promoter Score: survey answers (0-10) imported from CSV or recorded from a
dispatch, summarised overall and per segment.

Promoters answer 9-10, passives 7-8, detractors 0-6; the score is
100 x (promoters - detractors) / responses, from -100 to 100. Answers belong to one shop
and are kept per (shop, source, external id), so importing a file again changes nothing
it already holds; they are matched to that shop's profiles only and summed per shop.

CSV columns (header line first, names case-insensitive, any order):

- ``response_id`` (required): the survey tool's id of the answer;
- ``profile_id``, ``email``, ``phone``: who answered, at least one per row (matched in
  that order; a key two profiles share matches neither);
- ``score`` (required): a whole number 0-10;
- ``responded_at`` (required): '2024-05-01 14:30' (shop time) or ISO 8601 with offset;
- ``comment`` (optional).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, case, func, select

from omnicrm.crm.analytics._sql import TOKYO
from omnicrm.crm.analytics.reports import Column, Kind, Report
from omnicrm.crm.csv_import import (
    IDENTITY_COLUMNS,
    CsvRow,
    CsvTarget,
    ImportResult,
    RowChecker,
    import_rows,
    save_row,
)
from omnicrm.crm.schema import nps_responses, profiles

__all__ = [
    "NpsSummary",
    "import_nps_csv",
    "nps_by_segment",
    "nps_report",
    "nps_summary",
    "record_response",
]

COLUMNS_REQUIRED = ("response_id", "score", "responded_at")
COLUMNS_OPTIONAL = (*IDENTITY_COLUMNS, "comment")
_CSV = CsvTarget(
    nps_responses, "response_id", COLUMNS_REQUIRED, COLUMNS_OPTIONAL, keep_unmatched=True
)


@dataclass(frozen=True)
class NpsSummary:
    responses: int
    promoters: int
    passives: int
    detractors: int

    @property
    def score(self) -> float | None:
        """100 x (promoters - detractors) / responses; None without responses."""
        if not self.responses:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.responses


# --------------------------------------------------------------------------- writing


def _score(text: str) -> int:
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or not 0 <= int(value) <= 10:
        raise ValueError(f"not a score from 0 to 10: {text!r}")
    return int(value)


def _check_score(score: int) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError(f"score: must be a whole number from 0 to 10, got {score!r}")
    return score


def record_response(
    conn: Connection,
    *,
    shop: str,
    source: str,
    external_id: str,
    profile_id: int | None,
    score: int,
    responded_at: dt.datetime,
    comment: str | None = None,
) -> int:
    """Record one answer in ``shop`` (e.g. collected through a dispatch); returns its
    row id. ``profile_id`` must be one of ``shop``'s profiles.

    Recording the same (shop, source, external_id) again updates that answer.
    """
    _check_score(score)
    if responded_at.tzinfo is None:
        raise ValueError("responded_at: must be timezone-aware")
    if not source or not external_id:
        raise ValueError("source and external_id: both are required")
    if profile_id is not None:
        known = conn.execute(
            select(profiles.c.id).where(profiles.c.id == profile_id, profiles.c.shop == shop)
        ).first()
        if known is None:
            raise ValueError(f"profile_id: no profile {profile_id} in shop {shop!r}")
    values = {
        "profile_id": profile_id,
        "score": score,
        "comment": comment,
        "responded_at": responded_at,
    }
    return save_row(conn, nps_responses, source, external_id, values, shop=shop)


def import_nps_csv(
    conn: Connection,
    path: Path,
    *,
    shop: str,
    source: str = "csv",
    tz: ZoneInfo = TOKYO,
    encoding: str = "auto",
    region: str = "JP",
) -> ImportResult:
    """Import survey answers from ``path`` into ``shop`` (columns in the module docstring).

    Respondents are matched to ``shop``'s profiles only. Every row is checked first;
    any problem (a profile id of another shop too) raises ``CsvImportError`` listing
    file:line:field for each, and nothing is written. Respondents that match no
    profile are stored with profile_id NULL and listed in the result. Runs in the
    caller's transaction.
    """

    def values(check: RowChecker, row: CsvRow) -> dict[str, Any]:
        return {
            "score": check.value(row, "score", _score, required=True),
            "responded_at": check.moment(row, "responded_at", tz, required=True),
            "comment": row.values.get("comment"),
        }

    return import_rows(
        conn, path, _CSV, values, shop=shop, source=source, encoding=encoding, region=region
    )


# --------------------------------------------------------------------------- reading


def nps_summary(
    conn: Connection,
    where: ColumnElement[bool] | None = None,
    *,
    shop: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> NpsSummary:
    """Promoters, passives, detractors and responses of ``shop``'s answers; the score is
    ``.score``.

    ``where`` is a boolean over the profiles table (a compiled segment): only answers
    of matched profiles it selects count. ``since``/``until`` bound responded_at
    (inclusive, exclusive).
    """
    r = nps_responses.c
    query = select(
        func.count().label("responses"),
        func.coalesce(func.sum(case((r.score >= 9, 1), else_=0)), 0).label("promoters"),
        func.coalesce(func.sum(case((r.score.between(7, 8), 1), else_=0)), 0).label("passives"),
        func.coalesce(func.sum(case((r.score <= 6, 1), else_=0)), 0).label("detractors"),
    ).select_from(nps_responses)
    # (shop, responded_at) is indexed: another shop's answers are never read.
    query = query.where(r.shop == shop)
    if where is not None:
        query = query.join(
            profiles, and_(profiles.c.id == r.profile_id, profiles.c.shop == shop)
        ).where(where)
    if since is not None:
        query = query.where(r.responded_at >= since)
    if until is not None:
        query = query.where(r.responded_at < until)
    row = conn.execute(query).one()
    return NpsSummary(
        int(row.responses), int(row.promoters), int(row.passives), int(row.detractors)
    )


def nps_by_segment(
    conn: Connection,
    segments: Mapping[str, ColumnElement[bool] | None],
    *,
    shop: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict[str, NpsSummary]:
    """``nps_summary`` in ``shop`` for each named condition (None: every response)."""
    return {
        name: nps_summary(conn, where, shop=shop, since=since, until=until)
        for name, where in segments.items()
    }


def nps_report(
    conn: Connection,
    segments: Mapping[str, ColumnElement[bool]] | None = None,
    *,
    shop: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Report:
    """NPS of every response of ``shop``, then of each named segment."""
    columns = (
        Column("segment"),
        Column("responses", Kind.INT),
        Column("promoters", Kind.INT),
        Column("passives", Kind.INT),
        Column("detractors", Kind.INT),
        Column("NPS", Kind.NUMBER),
    )
    wanted: dict[str, ColumnElement[bool] | None] = {"all responses": None, **(segments or {})}
    found = nps_by_segment(conn, wanted, shop=shop, since=since, until=until)
    title = "Net Promoter Score"
    if found["all responses"].responses == 0:
        return Report(
            title, columns, (), ("no NPS responses yet: import some with `omnicrm nps import`",)
        )
    rows = tuple(
        (name, s.responses, s.promoters, s.passives, s.detractors, s.score)
        for name, s in found.items()
    )
    every = found["all responses"].responses
    matched = nps_summary(
        conn, profiles.c.id.is_not(None), shop=shop, since=since, until=until
    ).responses
    unmatched = every - matched
    notes = [
        "promoters answer 9-10, passives 7-8, detractors 0-6; NPS = % promoters - % detractors",
    ]
    if segments:
        notes.append("segment rows count only answers matched to a profile in the segment")
    if unmatched:
        notes.append(f"{unmatched:,} response(s) are not matched to a profile")
    return Report(title, columns, rows, tuple(notes))
