"""Personal data in the store: who a person is, in what text they are mentioned, and the
layers above the framework that hold more of them.

What the layers above build on a source customer (the CRM's profiles, identity keys and
points) is theirs to erase and export: each registers a :class:`PersonalDataHolder`
here, which the store calls inside its own transaction on a redaction, an erasure or a
data request. Free text anywhere (a run's error, a note, a comment) may quote the
person: every column marked free text is scrubbed. Every function works inside the
caller's transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    Connection,
    RowMapping,
    and_,
    or_,
    select,
    update,
)

from omnicrm.core.store.schema import (
    metadata,
)


class PersonalDataHolder(Protocol):
    """A layer above the framework that keeps personal data derived from source records.

    The store calls each registered holder inside the transaction of a redaction
    (:meth:`forget`), of erasing a connection (:meth:`erase`), and of a data request
    (:meth:`export`, whose keys join the export document).
    """

    def forget(self, conn: Connection, connection: str, record_ids: Sequence[str]) -> None:
        """Erase what is held about these source customers."""

    def erase(self, conn: Connection, connection: str, record_ids: Sequence[str]) -> None:
        """Erase everything held for the connection (``record_ids``: its source
        customers)."""

    def export(self, conn: Connection, connection: str, customer_id: str) -> dict[str, Any]:
        """What is held about one source customer, JSON-ready."""


_HOLDERS: dict[str, PersonalDataHolder] = {}


def register_holder(name: str, holder: PersonalDataHolder) -> None:
    """Register (or replace) the holder ``name``: its layer calls this on import."""
    _HOLDERS[name] = holder


def holders() -> tuple[PersonalDataHolder, ...]:
    """The registered holders, in registration order."""
    return tuple(_HOLDERS.values())


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


def scrub_free_text(conn: Connection, terms: Iterable[str], *, shop: str | None = None) -> int:
    """Replace every mention of the person in the store's free text by '[redacted]';
    how many values changed.

    With ``shop``, rows of a table that has a shop column are scrubbed in that shop
    only: another shop (client business) holding someone of the same name or email
    holds its own customer's data, which this person's redaction must leave intact.
    """
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
        scope = [column.is_not(None), mentions]
        if shop is not None and "shop" in table.c:
            scope.append(table.c.shop == shop)
        found = conn.execute(select(*keys, column).where(*scope)).all()
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


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
