"""Personal data in the store: what a data request exports and what a redaction erases
beyond the source records themselves.

A source customer's person reaches well past its row: identity keys and merge evidence
hold their email and phone, the operator's links and separations name the record (with
a note), their profile carries their name and address, interactions and NPS answers
hang on that profile, points entries on the record, and free text anywhere (a run's
error, a note, a comment) may quote them. Every function works inside the caller's
transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    RowMapping,
    Table,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)

from omnicrm.core.store.schema import (
    crm_state,
    identity_keys,
    identity_merges,
    identity_overrides,
    interactions,
    metadata,
    nps_responses,
    points_entries,
    profile_changes,
    profile_members,
    profiles,
)

RecordRef = tuple[str, str]

_CHUNK = 500
REDACTED = "[redacted]"
_NUMBER = re.compile(r"[\d\s()+.\-]+")  # a phone number, a postal code, a numeric code
# Payload keys whose values name, reach or locate a person (Shopify's and ours), at any
# depth of a raw payload.
_PERSONAL_KEYS = {
    "email",
    "phone",
    "firstname",
    "lastname",
    "first_name",
    "last_name",
    "address1",
    "address2",
    "line1",
    "line2",
    "zip",
    "postal_code",
    "company",
    "note",
}
# What a profile knows of its person; set again from the remaining members by the next
# CRM refresh.
_PROFILE_PERSON = {
    "family_name": None,
    "given_name": None,
    "family_name_kana": None,
    "given_name_kana": None,
    "email": None,
    "phone": None,
    "birth_date": None,
    "gender": "unknown",
    "postal_code": None,
    "prefecture": None,
    "company": None,
    "member_code": None,
    "search_text": None,
}
# The segment counts' snapshot (omnicrm.crm.segments.counts.SNAPSHOT_STATE): counting
# from it assumes profiles change only inside a refresh, so a redaction that blanks a
# profile drops it and the next refresh counts in full.
_SEGMENT_SNAPSHOT = "segment_counts"


# -- who the person is ----------------------------------------------------------------


def person_terms(
    customer: Mapping[str, Any] | RowMapping | None, payloads: Iterable[Any] = ()
) -> set[str]:
    """The strings that identify a person: from their stored customer row (columns and
    raw payload) and from ``payloads`` (their orders' raw data)."""
    terms: set[str] = set()
    if customer is not None:
        for column in (
            "email",
            "phone",
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "company",
            "postal_code",
            "member_code",
        ):
            _add(terms, customer.get(column))
        address = customer.get("address") or {}
        if isinstance(address, Mapping):
            for key in ("line1", "line2", "postal_code"):
                _add(terms, address.get(key))
        _add_payload(terms, customer.get("raw"))
    for payload in payloads:
        _add_payload(terms, payload)
    return terms


def _add(terms: set[str], value: Any) -> None:
    # One or two characters, or a short number (a member code 0012), say nothing about
    # anyone on their own, and would blank parts of unrelated text.
    if not isinstance(value, str) or len(value.strip()) < 2:
        return
    if _NUMBER.fullmatch(value) and len(re.sub(r"\D", "", value)) < 7:
        return
    terms.add(value.strip())


def _add_payload(terms: set[str], payload: Any) -> None:
    if isinstance(payload, Mapping):
        for key, value in payload.items():
            if isinstance(value, str) and str(key).lower() in _PERSONAL_KEYS:
                _add(terms, value)
            else:
                _add_payload(terms, value)
    elif isinstance(payload, list):
        for item in payload:
            _add_payload(terms, item)


def person_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    """A case-insensitive pattern for ``terms`` as text may write them: spaces in names
    optional, a phone number in any national or international form."""
    parts: set[str] = set()
    for term in terms:
        digits = re.sub(r"\D", "", term)
        if len(digits) >= 7 and _NUMBER.fullmatch(term):
            # Without a leading 0 or +81: 09012345678, 090-1234-5678, +81 90 1234 5678.
            local = digits[2:] if term.strip().startswith("+81") else digits.lstrip("0")
            separated = r"[\s().\-]*".join(local)
            parts.add(rf"(?:\+?\s*81[\s().\-]*|0)?{separated}")
        else:
            words = term.split()
            parts.add(r"[\s\u3000]*".join(re.escape(w) for w in words))
    if not parts:
        return None
    # Longest first: a full name wins over a part of it.
    return re.compile("|".join(sorted(parts, key=len, reverse=True)), re.IGNORECASE)


def _needles(terms: Iterable[str]) -> set[str]:
    """Substrings that any text mentioning the person contains one of (a cheap SQL
    pre-filter before the pattern): each term, a phone number's last four digits."""
    found: set[str] = set()
    for term in terms:
        digits = re.sub(r"\D", "", term)
        if len(digits) >= 7 and _NUMBER.fullmatch(term):
            found.add(digits[-4:])
        else:
            found.update(word.lower() for word in term.split())
    return found


# -- erasing ------------------------------------------------------------------------------


def free_text_columns() -> Iterator[Column[Any]]:
    """Every column the schema marks as free text (``info={"free_text": True}``)."""
    for table in metadata.sorted_tables:
        for column in table.columns:
            if column.info.get("free_text"):
                yield column


def scrub_free_text(conn: Connection, terms: Iterable[str]) -> int:
    """Replace every mention of the person in the store's free text by '[redacted]';
    how many values changed."""
    terms = set(terms)
    pattern = person_pattern(terms)
    if pattern is None:
        return 0
    needles = sorted(_needles(terms))
    changed = 0
    for column in free_text_columns():
        table = column.table
        keys = list(table.primary_key.columns)
        mentions = or_(*(column.ilike(f"%{_escape_like(n)}%", escape="\\") for n in needles))
        found = conn.execute(select(*keys, column).where(column.is_not(None), mentions)).all()
        for row in found:
            text = row[-1]
            cleaned = pattern.sub(REDACTED, text)
            if cleaned != text:
                where = and_(*(key == value for key, value in zip(keys, row[:-1], strict=True)))
                conn.execute(update(table).where(where).values({column.name: cleaned}))
                changed += 1
    return changed


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def forget_records(conn: Connection, connection: str, record_ids: Sequence[str]) -> None:
    """Erase what the CRM holds about these source customers, and queue for the next
    refresh every record whose profile that may change.

    Their identity keys and the merge edges naming them go (the evidence holds their
    email and phone), and so do the operator's links and separations naming them, notes
    included. Their profiles lose what they said of the person at once (the refresh
    rebuilds them from the remaining members); a profile they were alone in loses its
    interactions and NPS answers too, as it goes at the refresh.
    """
    ids = sorted(set(record_ids))
    if not ids:
        return
    requeue: set[RecordRef] = set()
    for chunk in _chunks(ids):
        mine = and_(identity_keys.c.connection == connection, identity_keys.c.record_id.in_(chunk))
        keys = conn.execute(select(identity_keys.c.kind, identity_keys.c.value).where(mine)).all()
        # One holder fewer can change what the others' shared key may join.
        by_kind: dict[str, list[str]] = {}
        for kind, value in keys:
            by_kind.setdefault(kind, []).append(value)
        for kind, values in sorted(by_kind.items()):
            for value_chunk in _chunks(sorted(set(values))):
                requeue.update(
                    (row.connection, row.record_id)
                    for row in conn.execute(
                        select(identity_keys.c.connection, identity_keys.c.record_id).where(
                            identity_keys.c.kind == kind, identity_keys.c.value.in_(value_chunk)
                        )
                    )
                )
        conn.execute(delete(identity_keys).where(mine))
        conn.execute(delete(identity_merges).where(_naming(identity_merges, connection, chunk)))
        naming = _naming(identity_overrides, connection, chunk)
        for row in conn.execute(select(identity_overrides).where(naming)):
            requeue.add((row.a_connection, row.a_record))
            requeue.add((row.b_connection, row.b_record))
        conn.execute(delete(identity_overrides).where(naming))
        _forget_in_profiles(conn, connection, chunk, set(ids), requeue)
    requeue -= {(connection, i) for i in ids}
    if requeue:
        rows = [{"connection": c, "record_id": r} for c, r in sorted(requeue)]
        for row_chunk in _chunks(rows, 5000):
            conn.execute(insert(profile_changes), row_chunk)


def _forget_in_profiles(
    conn: Connection,
    connection: str,
    chunk: Sequence[str],
    gone: set[str],
    requeue: set[RecordRef],
) -> None:
    """Clear the profiles of ``chunk``; drop the history of those left with no member
    outside ``gone`` (every record being erased)."""
    profile_ids = set(
        conn.execute(
            select(profile_members.c.profile_id).where(
                profile_members.c.connection == connection, profile_members.c.record_id.in_(chunk)
            )
        ).scalars()
    )
    if not profile_ids:
        return
    others: dict[int, int] = dict.fromkeys(profile_ids, 0)
    for row in conn.execute(
        select(profile_members).where(profile_members.c.profile_id.in_(sorted(profile_ids)))
    ):
        requeue.add((row.connection, row.record_id))
        if not (row.connection == connection and row.record_id in gone):
            others[row.profile_id] += 1
    alone = sorted(pid for pid, count in others.items() if count == 0)
    if alone:
        for table in (interactions, nps_responses):
            conn.execute(delete(table).where(table.c.profile_id.in_(alone)))
    conn.execute(
        update(profiles).where(profiles.c.id.in_(sorted(profile_ids))).values(_PROFILE_PERSON)
    )
    conn.execute(delete(crm_state).where(crm_state.c.key == _SEGMENT_SNAPSHOT))


def _naming(table: Table, connection: str, ids: Sequence[str]) -> ColumnElement[bool]:
    """Rows of ``table`` (a pair of records, sides a and b) naming one of ``ids``."""
    return or_(
        *(
            and_(table.c[f"{side}_connection"] == connection, table.c[f"{side}_record"].in_(ids))
            for side in ("a", "b")
        )
    )


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# -- exporting ----------------------------------------------------------------------------


def crm_export(conn: Connection, connection: str, customer_id: str) -> dict[str, Any]:
    """What the CRM holds about one source customer, JSON-ready: their profile, identity
    keys, points entries, the operator's links and separations naming them, and the
    interactions and NPS answers of their profile."""
    keys = conn.execute(
        select(identity_keys.c.kind, identity_keys.c.value)
        .where(identity_keys.c.connection == connection, identity_keys.c.record_id == customer_id)
        .order_by(identity_keys.c.kind, identity_keys.c.value)
    ).all()
    points = conn.execute(
        select(points_entries)
        .where(
            points_entries.c.connection == connection,
            points_entries.c.customer_id == customer_id,
        )
        .order_by(points_entries.c.occurred_at, points_entries.c.id)
    ).mappings()
    overrides = conn.execute(
        select(identity_overrides)
        .where(_naming(identity_overrides, connection, [customer_id]))
        .order_by(identity_overrides.c.id)
    ).mappings()
    profile_id = conn.execute(
        select(profile_members.c.profile_id).where(
            profile_members.c.connection == connection,
            profile_members.c.record_id == customer_id,
        )
    ).scalar()
    data: dict[str, Any] = {
        "identity_keys": [{"kind": kind, "value": value} for kind, value in keys],
        "points_entries": [_plain(row, drop=("id",)) for row in points],
        "identity_overrides": [_plain(row, drop=("id",)) for row in overrides],
        "profile": None,
        "interactions": [],
        "nps_answers": [],
    }
    if profile_id is None:
        return data
    profile = conn.execute(select(profiles).where(profiles.c.id == profile_id)).mappings().one()
    members = conn.execute(
        select(profile_members.c.connection, profile_members.c.record_id)
        .where(profile_members.c.profile_id == profile_id)
        .order_by(profile_members.c.connection, profile_members.c.record_id)
    ).all()
    data["profile"] = {
        **_plain(profile, drop=("search_text",)),
        "members": [{"connection": c, "record_id": r} for c, r in members],
    }
    for name, table, order in (
        ("interactions", interactions, interactions.c.occurred_at),
        ("nps_answers", nps_responses, nps_responses.c.responded_at),
    ):
        found = conn.execute(
            select(table).where(table.c.profile_id == profile_id).order_by(order, table.c.id)
        ).mappings()
        data[name] = [_plain(row, drop=("id", "profile_id")) for row in found]
    return data


def _plain(row: RowMapping, *, drop: Sequence[str] = ()) -> dict[str, Any]:
    """A row as JSON-ready data."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in drop:
            continue
        if isinstance(value, dt.datetime | dt.date):
            value = value.isoformat()
        out[key] = value
    return out
