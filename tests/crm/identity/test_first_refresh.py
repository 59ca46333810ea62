"""The first refresh after an import: every record queued, the identity tables empty.

On PostgreSQL the refresh writes every record's keys and then looks each record's keys
up in the table it has just filled, in the same transaction. Planned without statistics
of that table, a lookup by (kind, value) read the shop's whole index range and filtered
it: 94-449 s for 100,000 records against 25-55 s on SQLite (issue 14). The identity
writes now take the table's statistics again when they at least double it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import text

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.store import Store
from omnicrm.crm.identity import IdentitySettings, resolving
from omnicrm.crm.identity.resolver import SourceIdentity, resolve
from omnicrm.crm.refresh import refresh
from tests.support.identity_corpus import Corpus, generate

NOW = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)


def _import(store: Store, corpus: Corpus) -> None:
    for connection, customers in corpus.customers.items():
        for start in range(0, len(customers), 1000):
            store.write_batch(connection, Stream.CUSTOMERS, customers[start : start + 1000])


def _expected_profiles(corpus: Corpus) -> set[frozenset[tuple[str, str]]]:
    """What the in-memory resolver makes of the corpus: the records of each profile."""
    settings = IdentitySettings()
    junk = settings.junk()
    identities = [
        SourceIdentity.build(
            connection,
            c.id,
            settings=settings,
            junk=junk,
            email=c.email,
            phone=c.phone,
            member_code=c.member_code,
            family_name=c.family_name,
            given_name=c.given_name,
            family_name_kana=c.family_name_kana,
            given_name_kana=c.given_name_kana,
            birth_date=c.birth_date,
            gender=c.gender.value,
        )
        for connection, customers in corpus.customers.items()
        for c in customers
    ]
    return {frozenset(cluster) for cluster in resolve(identities, settings).clusters}


def _stored_profiles(store: Store) -> set[frozenset[tuple[str, str]]]:
    members: dict[int, set[tuple[str, str]]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(
            text("SELECT profile_id, connection, record_id FROM profile_members WHERE shop = :s"),
            {"s": DEFAULT_SHOP},
        ):
            members.setdefault(row.profile_id, set()).add((row.connection, row.record_id))
    return {frozenset(refs) for refs in members.values()}


def _key_lookup_plan(store: Store) -> str:
    """The plan of a lookup of keys by value, as the refresh's reach makes it."""
    with store.engine.connect() as conn:
        values = list(
            conn.execute(
                text("SELECT value FROM identity_keys WHERE kind = 'email' ORDER BY value LIMIT 5")
            ).scalars()
        )
        params = {"shop": DEFAULT_SHOP, **{f"v{i}": v for i, v in enumerate(values)}}
        listed = ", ".join(f":v{i}" for i in range(len(values)))
        query = (
            "SELECT connection, record_id FROM identity_keys"
            f" WHERE shop = :shop AND kind = 'email' AND value IN ({listed})"
        )
        explain = "EXPLAIN " if store.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
        return "\n".join(str(row[-1]) for row in conn.execute(text(explain + query), params))


def test_the_first_refresh_leaves_the_keys_readable_by_value(store: Store) -> None:
    corpus = generate(500, seed=3)  # about 1,200 records, 2,000 keys
    _import(store, corpus)

    result = refresh(store)

    assert _stored_profiles(store) == _expected_profiles(corpus)
    assert result.profiles_touched == len(_expected_profiles(corpus))
    plan = _key_lookup_plan(store)
    if store.dialect == "postgresql":
        # The (shop, kind, value) index searched by the value, not the shop's range
        # filtered; and statistics that count the rows the refresh wrote.
        assert "Index Cond" in plan and "value" in plan.split("Index Cond", 1)[1], plan
        assert "Filter" not in plan, plan
        with store.engine.connect() as conn:
            counted = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'identity_keys'")
            ).scalar_one()
            held = conn.execute(text("SELECT count(*) FROM identity_keys")).scalar_one()
        assert counted >= held * 0.9
    else:
        assert "value=?" in plan, plan


def _outcome(store: Store, *, whole_from: int) -> tuple[dict[str, Any], bool]:
    """Plan and apply the shop's queue with the whole-shop reading taken from
    ``whole_from`` changed records: what it wrote (rolled back), and whether the shop
    was read whole."""
    whole_shop = resolving._whole_shop
    read_whole: list[bool] = []

    def noted(*args: Any) -> Any:
        found = whole_shop(*args)
        read_whole.append(found is not None)
        return found

    with store.engine.connect() as conn, conn.begin() as transaction:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(resolving, "_WHOLE_SHOP", whole_from)
            patch.setattr(resolving, "_whole_shop", noted)
            prepared = resolving.plan(conn, IdentitySettings(), shop=DEFAULT_SHOP)
        before = set(prepared.reach)
        result = resolving.apply(conn, prepared, NOW)

        def rows(query: str) -> set[tuple[Any, ...]]:
            return {tuple(row) for row in conn.execute(text(query), {"s": DEFAULT_SHOP})}

        members: dict[Any, set[tuple[str, str]]] = {}
        for pid, connection, record in rows(
            "SELECT profile_id, connection, record_id FROM profile_members WHERE shop = :s"
        ):
            members.setdefault(pid, set()).add((connection, record))
        outcome = {
            # A new profile's id comes from a sequence PostgreSQL does not roll back.
            "profiles": {
                (pid if pid in before else None, frozenset(m)) for pid, m in members.items()
            },
            "touched": {pid if pid in before else None for pid in result.touched},
            "touched_count": len(result.touched),
            "removed": set(result.removed),
            "records": result.records,
            "reach": before,
            "keys": rows(
                "SELECT connection, record_id, kind, value FROM identity_keys WHERE shop = :s"
            ),
            "merges": rows(
                "SELECT a_connection, a_record, b_connection, b_record, rule"
                " FROM identity_merges WHERE shop = :s"
            ),
            "suggestions": rows(
                "SELECT a_connection, a_record, b_connection, b_record, conflict"
                " FROM identity_suggestions WHERE shop = :s"
            ),
        }
        transaction.rollback()
    return outcome, read_whole == [True]


def test_a_queue_naming_the_whole_shop_resolves_as_the_record_by_record_reach(
    store: Store,
) -> None:
    # A first import and a later re-import of every record (some changed, some gone):
    # reading the whole shop at once must give what looking the records up does.
    corpus = generate(150, seed=5)
    _import(store, corpus)
    first, whole = _outcome(store, whole_from=1)
    assert whole and first["profiles"] and first["merges"] and first["keys"]
    assert _outcome(store, whole_from=10**9) == (first, False)

    refresh(store)
    # Every record written again a day later; some of them changed.
    for connection, records in corpus.customers.items():
        corpus.customers[connection] = [
            c.model_copy(update={"updated_at": c.updated_at + dt.timedelta(days=1)})
            for c in records
        ]
    store_records = corpus.customers["store"]
    for i, c in enumerate(store_records[:60]):
        if i < 40:  # the name written the other way round
            change = {"family_name": c.given_name, "given_name": c.family_name}
        else:  # one address for twenty people
            change = {"email": "family@example.jp"}
        store_records[i] = c.model_copy(update=change)
    _import(store, corpus)
    store.delete_records("store", Stream.CUSTOMERS, [c.id for c in store_records[60:70]])
    again, whole = _outcome(store, whole_from=1)
    assert whole and (again["removed"] or again["touched"] - {None})
    assert _outcome(store, whole_from=10**9) == (again, False)


def test_the_whole_shop_is_read_at_once_only_when_the_queue_names_all_of_it(
    store: Store,
) -> None:
    corpus = generate(40, seed=6)
    _import(store, corpus)
    refs = {(connection, c.id) for connection, cs in corpus.customers.items() for c in cs}
    with store.engine.connect() as conn, pytest.MonkeyPatch.context() as patch:
        patch.setattr(resolving, "_WHOLE_SHOP", 1)
        assert resolving._whole_shop(conn, DEFAULT_SHOP, refs) == {}
        assert resolving._whole_shop(conn, DEFAULT_SHOP, refs - {min(refs)}) is None
        patch.setattr(resolving, "_WHOLE_SHOP", len(refs) + 1)
        assert resolving._whole_shop(conn, DEFAULT_SHOP, refs) is None
