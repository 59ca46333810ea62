"""A profile's history of inquiries, complaints and the like.

Added one at a time (``add_interaction``, the CLI) or imported from CSV
(``import_interactions_csv``), each kept per (shop, source, external id) so a file
imported again changes nothing it already holds. Everything here works in one shop: a
row is matched only to that shop's profiles, and a profile of another shop is unknown.

CSV columns (header line first, names case-insensitive, any order):

- ``interaction_id`` (required): the id in the system the file comes from;
- ``profile_id``, ``email``, ``phone``: whose it is, at least one per row (matched in
  that order; a key two profiles share matches neither);
- ``kind`` (required): inquiry, complaint, request, return, feedback, praise, other or
  a word of your own (Japanese labels such as 問い合わせ, クレーム, 返品 are understood);
- ``occurred_at`` (required): '2024-05-01 14:30' (shop time) or ISO 8601 with offset;
- ``subject``, ``body``, ``medium`` (phone, email, store, line, web, chat, letter, ...).

A row whose person matches no profile is not imported (an interaction belongs to a
profile) and is listed in the result; importing the file again once that person's
profile exists brings it in.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, select

from omnicrm.crm.csv_import import (
    IDENTITY_COLUMNS,
    CsvRow,
    CsvTarget,
    ImportResult,
    RowChecker,
    import_rows,
    save_row,
)
from omnicrm.crm.schema import interactions, profiles

__all__ = [
    "KINDS",
    "MEDIA",
    "Interaction",
    "add_interaction",
    "import_interactions_csv",
    "interactions_for",
]

TOKYO = ZoneInfo("Asia/Tokyo")
KINDS = ("inquiry", "complaint", "request", "return", "feedback", "praise", "other")
MEDIA = ("phone", "email", "store", "line", "web", "chat", "letter", "other")

# Labels a Japanese support log writes, to the kinds and media above.
_KIND_ALIASES = {
    "問い合わせ": "inquiry",
    "問合せ": "inquiry",
    "お問い合わせ": "inquiry",
    "質問": "inquiry",
    "クレーム": "complaint",
    "苦情": "complaint",
    "要望": "request",
    "依頼": "request",
    "返品": "return",
    "返品・交換": "return",
    "交換": "return",
    "意見": "feedback",
    "ご意見": "feedback",
    "感想": "feedback",
    "お褒め": "praise",
    "その他": "other",
}
_MEDIUM_ALIASES = {
    "電話": "phone",
    "メール": "email",
    "店頭": "store",
    "店舗": "store",
    "来店": "store",
    "フォーム": "web",
    "問い合わせフォーム": "web",
    "ウェブ": "web",
    "チャット": "chat",
    "手紙": "letter",
    "郵便": "letter",
    "はがき": "letter",
    "その他": "other",
}
COLUMNS_REQUIRED = ("interaction_id", "kind", "occurred_at")
COLUMNS_OPTIONAL = (*IDENTITY_COLUMNS, "subject", "body", "medium")
_CSV = CsvTarget(
    interactions, "interaction_id", COLUMNS_REQUIRED, COLUMNS_OPTIONAL, keep_unmatched=False
)

_LABEL_MAX = 32


@dataclass(frozen=True)
class Interaction:
    id: int
    profile_id: int
    kind: str
    medium: str | None
    occurred_at: dt.datetime
    subject: str | None
    body: str | None
    source: str
    external_id: str
    created_at: dt.datetime


def _label(value: str, aliases: dict[str, str], what: str) -> str:
    """A kind or medium: a known Japanese label mapped, else NFKC, lower-case."""
    text = unicodedata.normalize("NFKC", value).strip()
    text = aliases.get(text, text).lower()
    if not text:
        raise ValueError(f"{what}: must not be empty")
    if len(text) > _LABEL_MAX:
        raise ValueError(f"{what}: longer than {_LABEL_MAX} characters")
    return text


def _kind(value: str) -> str:
    return _label(value, _KIND_ALIASES, "kind")


def _medium(value: str) -> str:
    return _label(value, _MEDIUM_ALIASES, "medium")


def add_interaction(
    conn: Connection,
    profile_id: int,
    kind: str,
    occurred_at: dt.datetime,
    subject: str | None,
    body: str | None = None,
    medium: str | None = None,
    source: str = "cli",
    *,
    shop: str,
    external_id: str | None = None,
    now: dt.datetime | None = None,
) -> Interaction:
    """Add one interaction to ``profile_id``'s history in ``shop`` (ValueError naming the
    bad field, also when the profile is not one of ``shop``'s).

    Without ``external_id`` a new one is made up, so each call adds a row; with one,
    the same (shop, source, external_id) again updates that row.
    """
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at: must be timezone-aware")
    if not source:
        raise ValueError("source: must not be empty")
    if subject is not None and len(subject) > 255:
        raise ValueError(f"subject: longer than 255 characters ({len(subject)})")
    known = conn.execute(
        select(profiles.c.id).where(profiles.c.id == profile_id, profiles.c.shop == shop)
    ).first()
    if known is None:
        raise ValueError(f"profile_id: no profile {profile_id} in shop {shop!r}")
    values = {
        "profile_id": profile_id,
        "kind": _kind(kind),
        "medium": _medium(medium) if medium else None,
        "occurred_at": occurred_at,
        "subject": subject or None,
        "body": body or None,
    }
    row_id = save_row(
        conn,
        interactions,
        source,
        external_id or uuid.uuid4().hex,
        values,
        shop=shop,
        inserted_with={"created_at": now or dt.datetime.now(dt.UTC)},
    )
    found = conn.execute(select(interactions).where(interactions.c.id == row_id)).one()
    return _interaction(found)


def import_interactions_csv(
    conn: Connection,
    path: Path,
    *,
    shop: str,
    source: str = "csv",
    tz: ZoneInfo = TOKYO,
    encoding: str = "auto",
    region: str = "JP",
    now: dt.datetime | None = None,
) -> ImportResult:
    """Import interactions from ``path`` into ``shop`` (columns in the module docstring).

    Rows are matched to ``shop``'s profiles only. Every row is checked first; any
    problem (a profile id of another shop too) raises ``CsvImportError`` listing
    file:line:field for each, and nothing is written. Rows whose person matches no
    profile are skipped and listed in the result. Runs in the caller's transaction.
    """

    def values(check: RowChecker, row: CsvRow) -> dict[str, Any]:
        return {
            "kind": check.value(row, "kind", _kind, required=True),
            "medium": check.value(row, "medium", _medium),
            "occurred_at": check.moment(row, "occurred_at", tz, required=True),
            "subject": check.text(row, "subject", 255),
            "body": row.values.get("body"),
        }

    return import_rows(
        conn,
        path,
        _CSV,
        values,
        shop=shop,
        source=source,
        encoding=encoding,
        region=region,
        inserted_with={"created_at": now or dt.datetime.now(dt.UTC)},
    )


def interactions_for(
    conn: Connection, profile_id: int, *, shop: str, limit: int | None = None
) -> list[Interaction]:
    """``profile_id``'s interactions in ``shop``, newest first."""
    query = (
        select(interactions)
        .where(interactions.c.profile_id == profile_id, interactions.c.shop == shop)
        .order_by(interactions.c.occurred_at.desc(), interactions.c.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [_interaction(row) for row in conn.execute(query)]


def _interaction(row: Row[Any]) -> Interaction:
    return Interaction(
        id=row.id,
        profile_id=row.profile_id,
        kind=row.kind,
        medium=row.medium,
        occurred_at=row.occurred_at,
        subject=row.subject,
        body=row.body,
        source=row.source,
        external_id=row.external_id,
        created_at=row.created_at,
    )
