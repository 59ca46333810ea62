"""The first refresh after an import: every record queued, the identity tables empty.

On PostgreSQL the refresh writes every record's keys and then looks each record's keys
up in the table it has just filled, in the same transaction. Planned without statistics
of that table, a lookup by (kind, value) read the shop's whole index range and filtered
it: 94-449 s for 100,000 records against 25-55 s on SQLite (issue 14). The identity
writes now take the table's statistics again when they at least double it.
"""

from __future__ import annotations

from sqlalchemy import text

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.store import Store
from omnicrm.crm.identity import IdentitySettings
from omnicrm.crm.identity.resolver import SourceIdentity, resolve
from omnicrm.crm.refresh import refresh
from tests.support.identity_corpus import Corpus, generate


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
