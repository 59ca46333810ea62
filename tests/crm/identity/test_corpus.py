"""Precision and recall of the real pipeline (store, resolve_all) on a corpus with truth."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import Store
from omnicrm.crm.identity import IdentitySettings, RecordRef, resolve_all, resolve_pending
from omnicrm.crm.schema import profile_members
from tests.support.identity_corpus import EC, STORE, Corpus, generate, score


def _write(store: Store, records: dict[str, list[Customer]]) -> None:
    for connection, customers in records.items():
        if customers:
            store.write_batch(connection, Stream.CUSTOMERS, customers)


def _membership(store: Store) -> dict[RecordRef, int]:
    with store.engine.connect() as conn:
        return {
            (row.connection, row.record_id): row.profile_id
            for row in conn.execute(select(profile_members))
        }


def _clusters(membership: dict[RecordRef, int]) -> set[frozenset[RecordRef]]:
    groups: dict[int, set[RecordRef]] = {}
    for ref, pid in membership.items():
        groups.setdefault(pid, set()).add(ref)
    return {frozenset(g) for g in groups.values()}


def test_precision_is_perfect_and_recall_at_least_95_percent(store: Store) -> None:
    corpus = generate(1500, seed=7)
    _write(store, corpus.customers)
    with store.engine.begin() as conn:
        result = resolve_all(conn, IdentitySettings(), shop=DEFAULT_SHOP)
    membership = _membership(store)
    assert set(membership) == set(corpus.truth)  # every record has a profile
    assert result.touched == frozenset(membership.values())
    scores = score(corpus.truth, _clusters(membership))
    print(
        f"\n[{store.dialect}] {corpus.records} records of {corpus.people} people "
        f"in {corpus.households} households: {scores}"
    )
    assert scores.precision == 1.0
    assert scores.recall >= 0.95


def _second_batch(corpus: Corpus, rng: random.Random) -> tuple[dict[str, list[Customer]], ...]:
    """Split the corpus: a first sync, then a second one with new records and edits."""
    first: dict[str, list[Customer]] = {STORE: [], EC: []}
    second: dict[str, list[Customer]] = {STORE: [], EC: []}
    for connection, customers in corpus.customers.items():
        for customer in customers:
            if rng.random() < 0.7:
                first[connection].append(customer)
                if rng.random() < 0.08:
                    # Edited since: the email dropped, or the member code added late.
                    later = customer.updated_at + dt.timedelta(days=400)
                    edit = {"email": None} if rng.random() < 0.5 else {"member_code": None}
                    second[connection].append(
                        customer.model_copy(update={**edit, "updated_at": later})
                    )
            else:
                second[connection].append(customer)
    return first, second


def test_an_incremental_run_gives_the_clusters_of_a_full_run(store: Store) -> None:
    corpus = generate(600, seed=11)
    first, second = _second_batch(corpus, random.Random(3))
    settings = IdentitySettings()
    _write(store, first)
    with store.engine.begin() as conn:
        resolve_all(conn, settings, shop=DEFAULT_SHOP)
    _write(store, second)
    # Some records are deleted on the platform too.
    gone = [c.id for c in first[EC][:15]]
    store.delete_records(EC, Stream.CUSTOMERS, gone)
    with store.engine.begin() as conn:
        result = resolve_pending(conn, settings, shop=DEFAULT_SHOP)
    incremental = _membership(store)
    assert result.changes > 0
    assert not any((EC, record_id) in incremental for record_id in gone)

    with store.engine.begin() as conn:
        resolve_all(conn, settings, shop=DEFAULT_SHOP)
    full = _membership(store)
    assert _clusters(incremental) == _clusters(full)
    assert incremental == full  # and the profile ids did not move
    scores = score({r: p for r, p in corpus.truth.items() if r in full}, _clusters(full))
    assert scores.precision == 1.0


@pytest.mark.parametrize("seed", [1, 2])
def test_the_figures_hold_on_other_seeds_in_memory(seed: int) -> None:
    from omnicrm.crm.identity.resolver import SourceIdentity, resolve

    corpus = generate(3000, seed=seed)
    settings = IdentitySettings()
    identities = [
        SourceIdentity.build(
            connection,
            c.id,
            settings=settings,
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
    scores = score(corpus.truth, resolve(identities, settings).clusters)
    print(f"\n[memory, seed {seed}] {corpus.records} records: {scores}")
    assert scores.precision == 1.0
    assert scores.recall >= 0.95
