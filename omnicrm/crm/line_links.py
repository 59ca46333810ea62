"""Linking LINE user ids to a shop's customers from a CSV file (``omnicrm import line-links``).

A LINE user id is personal to the shop's channel: nothing in LINE says which customer
it is. A shop that collected them elsewhere (a LINE-connect app's export, a sign-up
form) imports them as a file: each row a ``line_user_id`` and the customer it belongs
to, by ``profile_id``, ``email``, ``phone`` or ``member_code`` (the first given that
names exactly one of the shop's profiles). The whole file is checked before anything is
written: a bad user id, a customer that is no profile of the shop (or is several), a
user id given twice, each is reported as ``file:line:field`` and nothing is linked.

A link names a source customer (the profile's first member), as the account link flow
does, so it follows the person through later merges. Linking grants no LINE consent:
a customer is messaged only with a recorded opt-in (see docs/line.md).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select

from omnicrm.core.consent import Member
from omnicrm.core.csvfiles import CsvProblem, CsvReader, CsvRow, Problems, RowChecker
from omnicrm.core.links import link, linked_members
from omnicrm.core.records import Medium
from omnicrm.crm.csv_import import IDENTITY_COLUMNS, ProfileMatcher, Respondent, respondent
from omnicrm.crm.schema import profile_members, profiles

USER_ID = re.compile(r"U[0-9a-f]{32}")
"""A LINE user id as the Messaging API gives it: ``U`` and 32 lower-case hex digits."""

KEYS = (*IDENTITY_COLUMNS, "member_code")
"""The columns that name the customer, tried in this order."""

METHOD = "import"
"""How an imported link is recorded (``address_links.method``)."""


@dataclass(frozen=True)
class LinkResult:
    """What an import did: rows read, links made new, moved from another customer,
    and already there."""

    file: str
    rows: int
    linked: int
    moved: int
    unchanged: int


@dataclass(frozen=True)
class _Row:
    line: int
    user_id: str | None
    who: Respondent
    member_code: str | None


def _user_id(text: str) -> str:
    if not USER_ID.fullmatch(text):
        raise ValueError(f"not a LINE user id (U and 32 lower-case hex digits): {text!r}")
    return text


def _parse(check: RowChecker, row: CsvRow, region: str) -> _Row:
    user_id = check.value(row, "line_user_id", _user_id, required=True)
    code = check.text(row, "member_code", 64)
    if any(row.values.get(c) for c in IDENTITY_COLUMNS):
        who = respondent(check, row, region)
    else:
        who = Respondent()
        if code is None:
            check.fail(row, None, f"no customer: give one of {', '.join(KEYS)}")
    return _Row(row.line, user_id, who, code)


def _by_member_code(conn: Connection, shop: str, codes: list[str]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    p = profiles.c
    for start in range(0, len(codes), 500):
        rows = conn.execute(
            select(p.member_code, p.id)
            .where(p.shop == shop, p.member_code.in_(codes[start : start + 500]))
            .order_by(p.id)
        )
        for code, profile_id in rows:
            found.setdefault(code, []).append(profile_id)
    return found


def _first_members(conn: Connection, shop: str, ids: list[int]) -> dict[int, Member]:
    """Each profile's first member (by connection, record id): whom its link names."""
    m = profile_members.c
    first: dict[int, Member] = {}
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(m.profile_id, m.connection, m.record_id)
            .where(m.shop == shop, m.profile_id.in_(ids[start : start + 500]))
            .order_by(m.profile_id, m.connection, m.record_id)
        )
        for profile_id, connection, record_id in rows:
            first.setdefault(profile_id, (connection, record_id))
    return first


def _key_field(row: _Row) -> str | None:
    """The column a row's customer was asked by, for its problem's place."""
    for column, value in zip(
        KEYS, (row.who.profile_id, row.who.email, row.who.phone, row.member_code), strict=True
    ):
        if value is not None:
            return column
    return None


def import_line_links(
    conn: Connection,
    path: Path,
    *,
    shop: str,
    now: dt.datetime,
    encoding: str = "auto",
    region: str = "JP",
) -> LinkResult:
    """Check every row of ``path``, then link each LINE user id to its customer in
    ``shop``, in the caller's transaction; ``CsvImportError`` (nothing written) lists
    every bad row."""
    reader = CsvReader(
        path, required=("line_user_id",), optional=KEYS, one_of=KEYS, encoding=encoding
    )
    problems = Problems()
    check = RowChecker(reader.file, problems)
    rows = [_parse(check, row, region) for row in reader.rows(problems)]
    first_line: dict[str, int] = {}
    for row in rows:
        if row.user_id is None:
            continue
        earlier = first_line.setdefault(row.user_id, row.line)
        if earlier != row.line:
            problems.add(
                CsvProblem(reader.file, row.line, "line_user_id", f"repeats line {earlier}")
            )
    matcher = ProfileMatcher(conn, (r.who for r in rows), shop=shop)
    codes = _by_member_code(
        conn, shop, sorted({r.member_code for r in rows if r.member_code is not None})
    )
    wanted: list[tuple[_Row, int]] = []
    for row in rows:
        if row.user_id is None or _key_field(row) is None:
            continue  # its problem is reported already
        profile_id, why = matcher.match(row.who) if row.who != Respondent() else (None, None)
        if profile_id is None and row.member_code is not None:
            owners = codes.get(row.member_code, [])
            if len(owners) == 1:
                profile_id = owners[0]
            else:
                shared = f"is shared by profiles {', '.join(map(str, owners[:5]))}"
                reason = f"member code {row.member_code} " + (
                    shared if owners else "is no profile's"
                )
                why = f"{why}; {reason}" if why else reason
        if profile_id is None:
            problems.add(
                CsvProblem(
                    reader.file, row.line, _key_field(row), f"no customer of shop {shop}: {why}"
                )
            )
            continue
        wanted.append((row, profile_id))
    members = _first_members(conn, shop, sorted({p for _, p in wanted}))
    for row, profile_id in wanted:
        if profile_id not in members:  # a profile between refreshes, with no member yet
            problems.add(
                CsvProblem(
                    reader.file,
                    row.line,
                    _key_field(row),
                    f"profile {profile_id} has no customer record",
                )
            )
    problems.raise_if_any()
    linked = moved = unchanged = 0
    for row, profile_id in wanted:
        assert row.user_id is not None
        member = members[profile_id]
        before = linked_members(conn, shop=shop, medium=Medium.LINE, address=row.user_id)
        if before == [member]:
            unchanged += 1
            continue
        link(
            conn,
            shop=shop,
            medium=Medium.LINE,
            address=row.user_id,
            member=member,
            at=now,
            method=METHOD,
        )
        if before:
            moved += 1
        else:
            linked += 1
    return LinkResult(reader.file, len(rows), linked, moved, unchanged)
